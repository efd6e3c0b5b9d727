// Fan-out: one event (and ten events) to 1,000 webhooks in Miniflare, with an instant
// receiver: Miniflare's `outboundService` (capped at 6 open requests), or a real HTTP
// server on loopback (`DEV_ALLOW_PRIVATE_TARGETS`), as the Svix figures were taken. Time
// to the last arrival, deliveries/s, the D1 statements, queue calls and queue messages
// per event, read from the worker's own structured log lines (`{"msg":"publish",…}` and
// `{"msg":"delivery batch",…}`). Run under a Free-plan and a Paid-plan tuning.
//   node bench/fanout.mjs [--webhooks 1000] [--events 1,10] [--runs 3] [--receivers service,loopback]
//                         [--batch 4] [--concurrency 6] [--per-message 10] [--subrequests 50]
//   (with --batch/--per-message/…: that one tuning; without: Free and Paid)
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { startWorker, seedWebhooks, loopbackReceiver, parseLogLines, median, num, isMain, sleep } from "./lib.mjs";

// DELIVERY_CONCURRENCY is capped at 6 by the worker (production's connections per
// invocation), and the harness holds the outboundService to 6 open requests too.
// Free: wrangler.toml (1 message of 10 ids per invocation); Paid: 16 messages of 10
// ids under 10,000 subrequests (docs/operations.md).
export const TUNINGS = {
  free: { label: "Free defaults", batch: 1, concurrency: 6, perMessage: 10, subrequests: 50 },
  paid: { label: "Paid tuning", batch: 16, concurrency: 6, perMessage: 10, subrequests: 10000 },
  legacy: { label: "one id per message (before)", batch: 10, concurrency: 6, perMessage: 1, subrequests: 50 },
};

export const RECEIVERS = { service: "outboundService", loopback: "loopback HTTP server" };

/** One fresh instance: seed `webhooks` subscribers, publish `events` events at once, wait for every arrival. */
export async function scenario({ webhooks, events, batch, concurrency, perMessage, subrequests, receiver = "service", timeoutMs = 120_000 }) {
  const arrivals = [];
  const logLines = [];
  const rx = receiver === "loopback" ? await loopbackReceiver(() => arrivals.push(performance.now())) : null;
  const { mf, db } = await startWorker({
    ...(rx
      ? { outbound: "network" }
      : { receiver: () => { arrivals.push(performance.now()); return new Response("ok"); } }),
    bindings: {
      DELIVERY_CONCURRENCY: String(concurrency), DELIVERIES_PER_MESSAGE: String(perMessage), SUBREQUEST_LIMIT: String(subrequests),
      ...(rx ? { DEV_ALLOW_PRIVATE_TARGETS: "true" } : {}),
    },
    consumer: { maxBatchSize: batch },
    onLog: (line) => logLines.push(line),
  });
  try {
    const ws = "ws_bench";
    await seedWebhooks(db, ws, webhooks, rx ? { url: () => rx.url } : {});
    arrivals.length = 0;
    logLines.length = 0;
    const expected = webhooks * events;
    const auth = token({ workspace: ws });
    const t0 = performance.now();
    const accepted = await Promise.all(Array.from({ length: events }, async (_, k) => {
      const res = await api(mf, "POST", "/api/v1/events", { auth, body: { type: "flight.departed", data: { flight_id: `fl_${k}`, tail: "N123PC" } } });
      return { status: res.status, ms: performance.now() - t0 };
    }));
    while (arrivals.length < expected && performance.now() - t0 < timeoutMs) await sleep(5);
    const last = arrivals.length ? Math.max(...arrivals) - t0 : NaN;
    const first = arrivals.length ? Math.min(...arrivals) - t0 : NaN;
    await sleep(300); // let the last batch's log line arrive
    const parsed = parseLogLines(logLines);
    const pub = parsed.filter((p) => p.msg === "publish");
    const batches = parsed.filter((p) => p.msg === "delivery batch");
    const sum = (xs, k) => xs.reduce((a, x) => a + (x[k] ?? 0), 0);
    return {
      delivered: arrivals.length, expected,
      publishStatuses: accepted.map((a) => a.status),
      acceptedMs: Math.max(...accepted.map((a) => a.ms)),
      firstArrivalMs: first, lastArrivalMs: last,
      perSecond: arrivals.length / (last / 1000),
      publishD1StatementsPerEvent: sum(pub, "d1_statements") / events,
      publishD1RoundTripsPerEvent: sum(pub, "d1_round_trips") / events,
      consumerD1StatementsPerEvent: sum(batches, "d1_statements") / events,
      consumerD1RoundTripsPerEvent: sum(batches, "d1_round_trips") / events,
      queueCallsPerEvent: sum(pub, "queue_calls") / events,
      // Messages the consumer read per delivery (each message written is read once).
      queueMessagesPerDelivery: sum(batches, "messages") / expected,
      receiverMaxOpen: rx ? rx.stats.maxOpen : NaN,
      consumerBatches: batches.length,
      // Per batch (the worker's own clock; it advances on I/O): claim / send / record.
      batchClaimMs: median(batches.map((b) => b.claim_ms)),
      batchSendMs: median(batches.map((b) => b.send_ms)),
      batchRecordMs: median(batches.map((b) => b.record_ms)),
      // Share of the wall time some consumer batch was running (Miniflare runs them one at a time).
      consumerBusyShare: (sum(batches, "claim_ms") + sum(batches, "send_ms") + sum(batches, "record_ms")) / last,
    };
  } finally {
    await mf.dispose();
    await rx?.close();
  }
}

/**
 * How many outbound fetches one consumer invocation has open at once: 100 receivers that
 * each take 100 ms, one batch. Production caps this at 6 per invocation; Miniflare does not.
 */
export async function inflightProbe({ batch = 100, concurrency = 100, receivers = 100 } = {}) {
  let inflight = 0;
  let max = 0;
  let done = 0;
  const { mf, db } = await startWorker({
    receiver: async () => { inflight++; max = Math.max(max, inflight); await sleep(100); inflight--; done++; return new Response("ok"); },
    bindings: { DELIVERY_CONCURRENCY: String(concurrency) },
    consumer: { maxBatchSize: batch },
    // No harness cap here: the probe shows what the worker itself opens at once.
    connectionCap: Infinity,
  });
  try {
    await seedWebhooks(db, "ws_probe", receivers);
    const t0 = performance.now();
    await api(mf, "POST", "/api/v1/events", { auth: token({ workspace: "ws_probe" }), body: { type: "flight.departed", data: {} } });
    while (done < receivers && performance.now() - t0 < 30_000) await sleep(10);
    return { maxInFlight: max, receivers, batch, concurrency };
  } finally {
    await mf.dispose();
  }
}

export async function runTuning({ webhooks = 1000, eventCounts = [1, 10], runs = 3, receivers = ["service", "loopback"], batch, concurrency, perMessage, subrequests, label }) {
  const rows = [];
  const results = [];
  for (const receiver of receivers) for (const events of eventCounts) {
    const rs = [];
    for (let r = 0; r < runs; r++) rs.push(await scenario({ webhooks, events, batch, concurrency, perMessage, subrequests, receiver }));
    const m = (k) => median(rs.map((x) => x[k]));
    const res = {
      tuning: label, receiver, batch, concurrency, perMessage, subrequests, events, webhooks, runs,
      queueMessagesPerDelivery: m("queueMessagesPerDelivery"), receiverMaxOpen: m("receiverMaxOpen"),
      delivered: m("delivered"), expected: rs[0].expected, acceptedMs: m("acceptedMs"), firstArrivalMs: m("firstArrivalMs"), lastArrivalMs: m("lastArrivalMs"),
      perSecond: m("perSecond"), publishD1StatementsPerEvent: m("publishD1StatementsPerEvent"), publishD1RoundTripsPerEvent: m("publishD1RoundTripsPerEvent"),
      consumerD1StatementsPerEvent: m("consumerD1StatementsPerEvent"), consumerD1RoundTripsPerEvent: m("consumerD1RoundTripsPerEvent"),
      queueCallsPerEvent: m("queueCallsPerEvent"), consumerBatches: m("consumerBatches"),
      batchClaimMs: m("batchClaimMs"), batchSendMs: m("batchSendMs"), batchRecordMs: m("batchRecordMs"), consumerBusyShare: m("consumerBusyShare"),
      samples: rs,
    };
    results.push(res);
    rows.push({
      tuning: `${label} (batch ${batch} × ${perMessage} ids, conc. ${concurrency})`,
      receiver: RECEIVERS[receiver],
      scenario: `${events} event${events > 1 ? "s" : ""} → ${num(webhooks)}`,
      delivered: `${num(res.delivered)}/${num(res.expected)}`,
      "publish 202 (ms)": num(res.acceptedMs),
      "last arrival (s)": (res.lastArrivalMs / 1000).toFixed(2),
      "deliveries/s": num(res.perSecond),
      "D1 stmts/event publish+consumer": `${num(res.publishD1StatementsPerEvent)} + ${num(res.consumerD1StatementsPerEvent)}`,
      "D1 round trips/event publish+consumer": `${num(res.publishD1RoundTripsPerEvent)} + ${num(res.consumerD1RoundTripsPerEvent)}`,
      "queue sends/event": num(res.queueCallsPerEvent),
      "queue messages/delivery": num(res.queueMessagesPerDelivery, 3),
      "consumer batches": num(res.consumerBatches),
      "per batch: claim / send / record (ms)": Number.isFinite(res.batchSendMs) ? `${num(res.batchClaimMs)} / ${num(res.batchSendMs)} / ${num(res.batchRecordMs)}` : "n/a",
      "consumer busy": Number.isFinite(res.consumerBusyShare) ? `${Math.round(res.consumerBusyShare * 100)} %` : "n/a",
    });
  }
  return { rows, results };
}

export async function run({ webhooks = 1000, eventCounts = [1, 10], runs = 3, receivers = ["service", "loopback"], tunings = [TUNINGS.free, TUNINGS.paid] } = {}) {
  const rows = [];
  const results = [];
  for (const t of tunings) {
    const r = await runTuning({ webhooks, eventCounts, runs, receivers, ...t });
    rows.push(...r.rows);
    results.push(...r.results);
  }
  const probe = await inflightProbe();
  const figures = results.map((r) => ({
    figure: `fan-out ${r.events} event${r.events > 1 ? "s" : ""} → ${num(r.webhooks)}, ${r.tuning}, ${RECEIVERS[r.receiver]}`,
    value: `last arrival ${(r.lastArrivalMs / 1000).toFixed(2)} s, ${num(r.perSecond)} deliveries/s; ${num(r.publishD1StatementsPerEvent + r.consumerD1StatementsPerEvent)} D1 statements, ${num(r.queueCallsPerEvent)} queue sends per event, ${num(r.queueMessagesPerDelivery, 3)} queue messages per delivery${r.delivered < r.expected ? ` — only ${r.delivered}/${r.expected} arrived` : ""}`,
    how: `consumer maxBatchSize ${r.batch}, DELIVERIES_PER_MESSAGE ${r.perMessage}, SUBREQUEST_LIMIT ${r.subrequests}, DELIVERY_CONCURRENCY ${r.concurrency}; instant receiver (${RECEIVERS[r.receiver]}${r.receiver === "loopback" ? `, at most ${num(r.receiverMaxOpen)} requests open at once` : ", 6 open at once"}); publish → last arrival; median of ${r.runs} fresh instances; counts from the worker's log lines`,
  }));
  figures.push({
    figure: "outbound fetches open at once (one invocation)",
    value: `${probe.maxInFlight} (production allows 6 per invocation)`,
    how: `DELIVERY_CONCURRENCY ${probe.concurrency} asked, ${probe.receivers} receivers that each take 100 ms, one consumer batch, no harness cap; peak concurrent requests seen by the outboundService: the worker itself never opens more than 6`,
  });
  return {
    id: "fanout", title: "4. Fan-out", figures,
    tables: [{ title: `Fan-out to ${num(webhooks)} webhooks (instant receivers; medians of ${runs} fresh instances)`, rows }],
    json: { results, inflightProbe: probe },
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    webhooks: { type: "string", default: "1000" }, events: { type: "string", default: "1,10" }, runs: { type: "string", default: "3" },
    receivers: { type: "string", default: "service,loopback" }, tunings: { type: "string" },
    batch: { type: "string" }, concurrency: { type: "string" }, "per-message": { type: "string" }, subrequests: { type: "string" },
  } });
  const custom = values.batch || values.concurrency || values["per-message"] || values.subrequests;
  const tunings = custom
    ? [{ label: "custom", batch: Number(values.batch ?? 4), concurrency: Number(values.concurrency ?? 6),
         perMessage: Number(values["per-message"] ?? 10), subrequests: Number(values.subrequests ?? 50) }]
    : (values.tunings ?? "free,paid").split(",").map((t) => TUNINGS[t]);
  const r = await run({ webhooks: Number(values.webhooks), eventCounts: values.events.split(",").map(Number), runs: Number(values.runs),
    receivers: values.receivers.split(","), tunings });
  console.table(r.tables[0].rows);
}
