// Fan-out: one event (and ten events) to 1,000 webhooks in Miniflare, with an instant
// receiver. Time to the last arrival, deliveries/s, and the D1 statements and queue calls
// per event, read from the worker's own structured log lines (`{"msg":"publish",…}` and
// `{"msg":"delivery batch",…}`). Run under a Free-plan and a Paid-plan tuning.
//   node bench/fanout.mjs [--webhooks 1000] [--events 1,10] [--runs 3] [--batch 10] [--concurrency 6]
//   (with --batch/--concurrency: that one tuning; without: Free and Paid)
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { startWorker, seedWebhooks, parseLogLines, median, num, isMain, sleep } from "./lib.mjs";

// DELIVERY_CONCURRENCY is capped at 6 by the worker (production's connections per
// invocation), and the harness holds every receiver to 6 open connections too.
export const TUNINGS = {
  free: { label: "Free defaults", batch: 10, concurrency: 6 },
  paid: { label: "Paid tuning", batch: 100, concurrency: 6 },
};

/** One fresh instance: seed `webhooks` subscribers, publish `events` events at once, wait for every arrival. */
export async function scenario({ webhooks, events, batch, concurrency, timeoutMs = 120_000 }) {
  const arrivals = [];
  const logLines = [];
  const { mf, db } = await startWorker({
    receiver: () => { arrivals.push(performance.now()); return new Response("ok"); },
    bindings: { DELIVERY_CONCURRENCY: String(concurrency) },
    consumer: { maxBatchSize: batch },
    onLog: (line) => logLines.push(line),
  });
  try {
    const ws = "ws_bench";
    await seedWebhooks(db, ws, webhooks);
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

export async function runTuning({ webhooks = 1000, eventCounts = [1, 10], runs = 3, batch, concurrency, label }) {
  const rows = [];
  const results = [];
  for (const events of eventCounts) {
    const rs = [];
    for (let r = 0; r < runs; r++) rs.push(await scenario({ webhooks, events, batch, concurrency }));
    const m = (k) => median(rs.map((x) => x[k]));
    const res = {
      tuning: label, batch, concurrency, events, webhooks, runs,
      delivered: m("delivered"), expected: rs[0].expected, acceptedMs: m("acceptedMs"), firstArrivalMs: m("firstArrivalMs"), lastArrivalMs: m("lastArrivalMs"),
      perSecond: m("perSecond"), publishD1StatementsPerEvent: m("publishD1StatementsPerEvent"), publishD1RoundTripsPerEvent: m("publishD1RoundTripsPerEvent"),
      consumerD1StatementsPerEvent: m("consumerD1StatementsPerEvent"), consumerD1RoundTripsPerEvent: m("consumerD1RoundTripsPerEvent"),
      queueCallsPerEvent: m("queueCallsPerEvent"), consumerBatches: m("consumerBatches"),
      batchClaimMs: m("batchClaimMs"), batchSendMs: m("batchSendMs"), batchRecordMs: m("batchRecordMs"), consumerBusyShare: m("consumerBusyShare"),
      samples: rs,
    };
    results.push(res);
    rows.push({
      tuning: `${label} (batch ${batch}, conc. ${concurrency})`,
      scenario: `${events} event${events > 1 ? "s" : ""} → ${num(webhooks)}`,
      delivered: `${num(res.delivered)}/${num(res.expected)}`,
      "publish 202 (ms)": num(res.acceptedMs),
      "last arrival (s)": (res.lastArrivalMs / 1000).toFixed(2),
      "deliveries/s": num(res.perSecond),
      "D1 stmts/event publish+consumer": `${num(res.publishD1StatementsPerEvent)} + ${num(res.consumerD1StatementsPerEvent)}`,
      "D1 round trips/event publish+consumer": `${num(res.publishD1RoundTripsPerEvent)} + ${num(res.consumerD1RoundTripsPerEvent)}`,
      "queue sends/event": num(res.queueCallsPerEvent),
      "consumer batches": num(res.consumerBatches),
      "per batch: claim / send / record (ms)": Number.isFinite(res.batchSendMs) ? `${num(res.batchClaimMs)} / ${num(res.batchSendMs)} / ${num(res.batchRecordMs)}` : "n/a",
      "consumer busy": Number.isFinite(res.consumerBusyShare) ? `${Math.round(res.consumerBusyShare * 100)} %` : "n/a",
    });
  }
  return { rows, results };
}

export async function run({ webhooks = 1000, eventCounts = [1, 10], runs = 3, tunings = [TUNINGS.free, TUNINGS.paid] } = {}) {
  const rows = [];
  const results = [];
  for (const t of tunings) {
    const r = await runTuning({ webhooks, eventCounts, runs, ...t });
    rows.push(...r.rows);
    results.push(...r.results);
  }
  const probe = await inflightProbe();
  const figures = results.map((r) => ({
    figure: `fan-out ${r.events} event${r.events > 1 ? "s" : ""} → ${num(r.webhooks)}, ${r.tuning}`,
    value: `last arrival ${(r.lastArrivalMs / 1000).toFixed(2)} s, ${num(r.perSecond)} deliveries/s; ${num(r.publishD1StatementsPerEvent + r.consumerD1StatementsPerEvent)} D1 statements, ${num(r.queueCallsPerEvent)} queue sends per event${r.delivered < r.expected ? ` — only ${r.delivered}/${r.expected} arrived` : ""}`,
    how: `consumer maxBatchSize ${r.batch}, DELIVERY_CONCURRENCY ${r.concurrency}; instant receiver; publish → last arrival; median of ${r.runs} fresh instances; counts from the worker's log lines`,
  }));
  figures.push({
    figure: "outbound fetches open at once (one invocation)",
    value: `${probe.maxInFlight} (production allows 6 per invocation)`,
    how: `DELIVERY_CONCURRENCY ${probe.concurrency} asked, ${probe.receivers} receivers that each take 100 ms, one consumer batch, no harness cap; peak concurrent requests seen by the outboundService: the worker itself never opens more than 6`,
  });
  return {
    id: "fanout", title: "4. Fan-out", figures,
    tables: [{ title: `Fan-out to ${num(webhooks)} webhooks (instant receiver; medians of ${runs} fresh instances)`, rows }],
    json: { results, inflightProbe: probe },
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    webhooks: { type: "string", default: "1000" }, events: { type: "string", default: "1,10" }, runs: { type: "string", default: "3" },
    batch: { type: "string" }, concurrency: { type: "string" },
  } });
  const tunings = values.batch || values.concurrency
    ? [{ label: "custom", batch: Number(values.batch ?? 10), concurrency: Number(values.concurrency ?? 6) }]
    : [TUNINGS.free, TUNINGS.paid];
  const r = await run({ webhooks: Number(values.webhooks), eventCounts: values.events.split(",").map(Number), runs: Number(values.runs), tunings });
  console.table(r.tables[0].rows);
}
