// Slow receiver isolation: one event to 100 healthy webhooks (instant receiver) plus one
// whose receiver hangs past its timeout_ms (5 s). Reports the p95 of the healthy ones'
// delivery latency (publish request start → arrival at the receiver) with and without
// the slow one, under the Free and the Paid tuning.
//   node bench/isolation.mjs [--runs 3] [--healthy 100] [--slow-timeout 5000]
// The slow webhook is the oldest of the workspace, so the fan-out (which follows webhook
// creation order) puts it first in the first queue batch: the worst place for it.
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { startWorker, seedWebhooks, percentile, median, ms, num, isMain, sleep } from "./lib.mjs";
import { TUNINGS } from "./fanout.mjs";

async function once({ healthy, withSlow, slowTimeoutMs, batch, concurrency, perMessage, subrequests }) {
  // Deliveries one consumer invocation takes on (`core::outbound::packing`).
  const perBatch = Math.min(batch * perMessage, subrequests - 10);
  const arrivals = [];
  const hosts = []; // r<i>.example.com: webhook i, the (i+1)-th in fan-out order after the slow one
  let slowSeenAt = NaN;
  let healthySeenBeforeSlow = NaN;
  const SLOW_HOST = "slow.example.com";
  const { mf, db } = await startWorker({
    receiver: async (request) => {
      if (new URL(request.url).host === SLOW_HOST) {
        slowSeenAt = performance.now();
        healthySeenBeforeSlow = arrivals.length;
        // Hang past the worker's timeout, then answer (the worker has aborted by then).
        await sleep(slowTimeoutMs + 1500);
        return new Response("too late");
      }
      arrivals.push(performance.now());
      hosts.push(new URL(request.url).host);
      return new Response("ok");
    },
    bindings: { DELIVERY_CONCURRENCY: String(concurrency), DELIVERIES_PER_MESSAGE: String(perMessage), SUBREQUEST_LIMIT: String(subrequests) },
    consumer: { maxBatchSize: batch },
  });
  try {
    const ws = "ws_iso";
    await seedWebhooks(db, ws, healthy);
    if (withSlow) {
      const created = Date.now() - 60_000; // the oldest webhook: first in fan-out order
      await db.prepare(
        "INSERT INTO webhooks (id, workspace_id, name, url, events, active, headers, retry_count, timeout_ms, created_at, updated_at) " +
          "VALUES ('wh_slow', ?, 'slow', ?, '[\"flight.departed\"]', 1, '{}', 0, ?, ?, ?)",
      ).bind(ws, `https://${SLOW_HOST}/hook`, slowTimeoutMs, created, created).run();
    }
    const t0 = performance.now();
    const res = await api(mf, "POST", "/api/v1/events", { auth: token({ workspace: ws }), body: { type: "flight.departed", data: { flight_id: "fl_iso" } } });
    while (arrivals.length < healthy && performance.now() - t0 < 60_000) await sleep(5);
    const lat = arrivals.map((a) => a - t0);
    return {
      status: res.status, delivered: arrivals.length,
      p50: percentile(lat, 50), p95: percentile(lat, 95), max: Math.max(...lat),
      slowStartedMs: slowSeenAt - t0,
      // Which consumer batch the slow one was in, counted from the healthy arrivals before it.
      slowBatch: withSlow ? Math.floor(healthySeenBeforeSlow / perBatch) + 1 : null,
      // Healthy deliveries that waited for the slow one's timeout.
      // Split: those in the slow one's own batch (head-of-line in the batch) and later batches.
      delayedSameBatch: withSlow ? arrivals.filter((a, i) => a - slowSeenAt >= slowTimeoutMs * 0.9 && Number(hosts[i].slice(1).split(".")[0]) < perBatch - 1).length : 0,
      delayedLaterBatches: withSlow ? arrivals.filter((a, i) => a - slowSeenAt >= slowTimeoutMs * 0.9 && Number(hosts[i].slice(1).split(".")[0]) >= perBatch - 1).length : 0,
    };
  } finally {
    await mf.dispose();
  }
}

export async function run({ runs = 3, healthy = 100, slowTimeoutMs = 5000, tunings = [TUNINGS.free, TUNINGS.paid] } = {}) {
  const rows = [];
  const json = [];
  const figures = [];
  for (const t of tunings) {
    const variants = {};
    for (const withSlow of [false, true]) {
      const rs = [];
      for (let r = 0; r < runs; r++) rs.push(await once({ healthy, withSlow, slowTimeoutMs, batch: t.batch, concurrency: t.concurrency, perMessage: t.perMessage, subrequests: t.subrequests }));
      variants[withSlow ? "slow" : "base"] = rs;
      json.push({ tuning: t.label, batch: t.batch, concurrency: t.concurrency, withSlow, runs: rs });
      rows.push({
        tuning: `${t.label} (batch ${t.batch}, conc. ${t.concurrency})`,
        receivers: withSlow ? `${healthy} healthy + 1 hanging (timeout ${slowTimeoutMs} ms)` : `${healthy} healthy`,
        delivered: rs.map((x) => x.delivered).join("/"),
        "healthy p50": ms(median(rs.map((x) => x.p50)), 0),
        "healthy p95": ms(median(rs.map((x) => x.p95)), 0),
        "healthy max": ms(median(rs.map((x) => x.max)), 0),
        "slow one in batch #": withSlow ? rs.map((x) => x.slowBatch).join(", ") : "",
        "delayed by its timeout: same batch": withSlow ? rs.map((x) => x.delayedSameBatch).join(", ") : "",
        "… later batches": withSlow ? rs.map((x) => x.delayedLaterBatches).join(", ") : "",
      });
    }
    const p95 = (k) => median(variants[k].map((x) => x.p95));
    figures.push({
      figure: `slow receiver: healthy p95 without → with, ${t.label}`,
      value: `${ms(p95("base"), 0)} → ${ms(p95("slow"), 0)}`,
      how: `1 event to ${healthy} instant receivers ± 1 hanging to its ${slowTimeoutMs} ms timeout; publish → arrival; consumer batch ${t.batch} × ${t.perMessage} ids, DELIVERY_CONCURRENCY ${t.concurrency}; median of ${runs} fresh instances`,
    });
  }
  return {
    id: "isolation", title: "5. Slow receiver isolation", figures,
    tables: [{ title: `Slow receiver isolation (publish → arrival of the healthy deliveries; medians of ${runs} runs; per-run values joined by commas)`, rows }],
    json,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    runs: { type: "string", default: "3" }, healthy: { type: "string", default: "100" }, "slow-timeout": { type: "string", default: "5000" },
  } });
  const r = await run({ runs: Number(values.runs), healthy: Number(values.healthy), slowTimeoutMs: Number(values["slow-timeout"]) });
  console.table(r.figures);
  console.table(r.tables[0].rows);
}
