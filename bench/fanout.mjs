// Fan-out benchmark: one event (and ten events) to 1,000 webhooks in Miniflare, with an
// instant receiver. Prints time to the last arrival, deliveries/s, and the D1 statements
// and queue calls per event, read from the worker's own structured log lines.
//   node bench/fanout.mjs [--webhooks 1000] [--events 1,10] [--runs 3]
import { parseArgs } from "node:util";
import { startWorker, api, token, migrationStatements } from "../tests/helpers.mjs";

const { values } = parseArgs({ options: {
  webhooks: { type: "string", default: "1000" }, events: { type: "string", default: "1,10" },
  runs: { type: "string", default: "3" }, batch: { type: "string", default: "100" }, concurrency: { type: "string", default: "50" },
} });
const N = Number(values.webhooks);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function scenario(eventsPerRun) {
  const arrivals = [];
  const logLines = [];
  const { mf, db } = await startWorker({
    receiver: () => { arrivals.push(performance.now()); return new Response("ok"); },
    bindings: { DELIVERY_CONCURRENCY: values.concurrency },
    consumer: { maxBatchSize: Number(values.batch) },
    onLog: (line) => logLines.push(line),
  });
  try {
    const ws = "ws_bench";
    const now = Date.now();
    const stmts = [];
    for (let i = 0; i < N; i++) {
      stmts.push(db.prepare("INSERT INTO webhooks (id, workspace_id, name, url, events, active, headers, retry_count, timeout_ms, created_at, updated_at) VALUES (?, ?, ?, ?, '[\"flight.departed\"]', 1, '{}', 3, 10000, ?, ?)")
        .bind(`wh_bench${String(i).padStart(5, "0")}`, ws, `bench ${i}`, `https://r${i}.example.com/hook`, now, now));
    }
    for (let i = 0; i < stmts.length; i += 500) await db.batch(stmts.slice(i, i + 500));
    arrivals.length = 0; logLines.length = 0;
    const expected = N * eventsPerRun;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: eventsPerRun }, (_, k) =>
      api(mf, "POST", "/api/v1/events", { auth: token({ workspace: ws }), body: { type: "flight.departed", data: { k } } })));
    const accepted = performance.now() - t0;
    while (arrivals.length < expected && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 5));
    const last = arrivals.length ? Math.max(...arrivals) - t0 : NaN;
    await new Promise((r) => setTimeout(r, 300));
    const parsed = logLines.flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });
    const pub = parsed.filter((p) => p.msg === "publish");
    const batches = parsed.filter((p) => p.msg === "delivery batch");
    const sum = (xs, k) => xs.reduce((a, x) => a + (x[k] ?? 0), 0);
    return {
      delivered: arrivals.length, expected, acceptedMs: accepted, lastArrivalMs: last,
      perSecond: arrivals.length / (last / 1000),
      d1StatementsPerEvent: (sum(pub, "d1_statements") + sum(batches, "d1_statements")) / eventsPerRun,
      d1RoundTripsPerEvent: (sum(pub, "d1_round_trips") + sum(batches, "d1_round_trips")) / eventsPerRun,
      queueCallsPerEvent: sum(pub, "queue_calls") / eventsPerRun,
      consumerBatches: batches.length,
    };
  } finally {
    await mf.dispose();
  }
}

export async function runFanout() {
  const rows = [];
  for (const e of values.events.split(",").map(Number)) {
    const runs = [];
    for (let r = 0; r < Number(values.runs); r++) runs.push(await scenario(e));
    const m = (k) => median(runs.map((x) => x[k]));
    rows.push({
      scenario: `${e} event${e > 1 ? "s" : ""} → ${N} webhooks`, runs: runs.length,
      delivered: `${m("delivered")}/${runs[0].expected}`,
      "publish accepted (ms)": m("acceptedMs").toFixed(0),
      "last arrival (s)": (m("lastArrivalMs") / 1000).toFixed(2),
      "deliveries/s": m("perSecond").toFixed(0),
      "D1 round trips/event": m("d1RoundTripsPerEvent").toFixed(1),
      "D1 statements/event": m("d1StatementsPerEvent").toFixed(0),
      "queue calls/event": m("queueCallsPerEvent").toFixed(0),
      "consumer batches": m("consumerBatches"),
    });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`fan-out: consumer batch ${values.batch}, DELIVERY_CONCURRENCY ${values.concurrency}, medians of ${values.runs} runs`);
  console.table(await runFanout());
}
