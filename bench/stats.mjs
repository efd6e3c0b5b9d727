// Webhook stats (SPEC §8.4, §9.1): what a 30-day stats call costs at 1,000 and 200,000
// logs, and what six of them at once do to another workspace.
//
// Workspace A has one webhook whose N delivered logs are spread over the last 30 days,
// written straight into D1 with the hourly rollups the worker would have kept for them
// (one row per hour; stats read only rollups). Reports the call's p50 and its D1 rows
// read (the worker's own `request` log line), then workspace B's webhook list p95 quiet
// and while six of A's stats calls run back to back (one D1 database runs one query at a
// time: round 2 read every log of the window there, 469 ms at 200,000 logs, and B's list
// went from 12 ms to 2,557 ms).
//   node bench/stats.mjs [--calls 20] [--logs 1000,200000]
import { parseArgs } from "node:util";
import { api, token, createWebhook, d1 } from "../tests/helpers.mjs";
import { startWorker, percentile, median, ms, num, isMain } from "./lib.mjs";

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** `n` more delivered logs of `hookId`, spread over 30 days, and their rollups rebuilt. */
async function seed(db, ws, hookId, from, n) {
  const now = Date.now();
  const step = Math.max(1, Math.floor((30 * DAY - HOUR) / n));
  await db.prepare(`WITH RECURSIVE i(x) AS (SELECT ?4 UNION ALL SELECT x + 1 FROM i WHERE x < ?4 + ?5 - 1)
    INSERT INTO events (id, workspace_id, type, body, source, created_at)
    SELECT printf('evt_stat%07d', x), ?1, 'flight.departed', '{}', 'api', ?2 - x * ?3 FROM i`).bind(ws, now, step, from, n).run();
  await db.prepare(`WITH RECURSIVE i(x) AS (SELECT ?5 UNION ALL SELECT x + 1 FROM i WHERE x < ?5 + ?6 - 1)
    INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts,
      response_status, duration_ms, history, created_at, updated_at)
    SELECT 'dlv_' || printf('%012x', ?3 - x * ?4) || printf('%012x', x), ?1, ?2, printf('evt_stat%07d', x), 'flight.departed',
      CASE WHEN x % 20 = 0 THEN 'failed' ELSE 'success' END, 1, 6, CASE WHEN x % 20 = 0 THEN 500 ELSE 200 END,
      12, '[]', ?3 - x * ?4, ?3 - x * ?4 FROM i`).bind(ws, hookId, now, step, from, n).run();
  // The rollups the recording batches would have written: one row per hour, durations in
  // the histogram's 12 ms bucket (d9), and the hour's latest success (migration 0017).
  await db.prepare("DELETE FROM webhook_rollups WHERE webhook_id = ?1").bind(hookId).run();
  await db.prepare(`INSERT INTO webhook_rollups (webhook_id, hour, success, failed, attempts, d9, last_success_at)
    SELECT webhook_id, (created_at / ${HOUR}) * ${HOUR}, SUM(status = 'success'), SUM(status = 'failed'), COUNT(*), COUNT(*),
      MAX(CASE WHEN status = 'success' THEN updated_at END)
    FROM delivery_logs WHERE webhook_id = ?1 GROUP BY 2`).bind(hookId).run();
}

/** Lists `ws`'s webhooks back to back until `stop()`; returns the latencies. */
async function lister(mf, ws, stop) {
  const auth = token({ workspace: ws });
  const latencies = [];
  while (!stop()) {
    const t = performance.now();
    const res = await api(mf, "GET", "/api/v1/webhooks?limit=20", { auth, contract: false });
    if (res.status !== 200) throw new Error(`list ${ws}: ${res.status} ${res.text}`);
    latencies.push(performance.now() - t);
  }
  return latencies;
}

export async function run({ calls = 20, logSizes = [1_000, 200_000] } = {}) {
  const lines = [];
  const { mf } = await startWorker({ onLog: (line) => lines.push(line) });
  const rows = [];
  try {
    const a = token({ workspace: "ws_stats_a" });
    const hook = await createWebhook(mf, { url: "https://a.example.com/hook" }, { auth: a });
    for (let i = 0; i < 20; i++) await createWebhook(mf, { url: `https://b${i}.example.com/hook` }, { auth: token({ workspace: "ws_stats_b" }) });
    const db = d1(mf, "DB");
    let seeded = 0;
    for (const size of logSizes) {
      await seed(db, "ws_stats_a", hook.id, seeded, size - seeded);
      seeded = size;
      const stats = () => api(mf, "GET", `/api/v1/webhooks/${hook.id}/stats?window=30d`, { auth: a, contract: false });
      const first = await stats();
      if (first.status !== 200) throw new Error(`stats: ${first.status} ${first.text}`);
      const total = first.json.counts.success + first.json.counts.failed;
      const latencies = [];
      lines.length = 0;
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        await stats();
        latencies.push(performance.now() - t);
      }
      const read = lines.map((l) => { try { return JSON.parse(l); } catch { return null; } })
        .filter((l) => l?.msg === "request" && String(l.path).endsWith("/stats")).map((l) => l.rows_read);
      // B's list, quiet and while six stats calls of A run back to back.
      let stop = false;
      const quiet = await (async () => { const t0 = Date.now(); return lister(mf, "ws_stats_b", () => Date.now() - t0 > 2_000); })();
      const busy = lister(mf, "ws_stats_b", () => stop);
      await Promise.all(Array.from({ length: 6 }, async () => { for (let i = 0; i < 5; i++) await stats(); }));
      stop = true;
      const during = await busy;
      rows.push({
        logs: size, counted: total, p50: median(latencies), p95: percentile(latencies, 95), rowsRead: median(read),
        quietP95: percentile(quiet, 95), busyP95: percentile(during, 95),
      });
    }
  } finally {
    await mf.dispose();
  }
  const table = rows.map((r) => ({
    logs: num(r.logs), "deliveries counted": num(r.counted), "stats p50": ms(r.p50), "stats p95": ms(r.p95),
    "D1 rows read per call": num(r.rowsRead), "B list p95 quiet": ms(r.quietP95), "B list p95, 6 stats calls": ms(r.busyP95),
  }));
  const [small, large] = [rows[0], rows.at(-1)];
  return {
    id: "stats", title: "8. Stats",
    figures: [
      {
        figure: `stats 30d p50, ${num(small.logs)} → ${num(large.logs)} logs`,
        value: `${ms(small.p50)} → ${ms(large.p50)} (${(large.p50 / small.p50).toFixed(2)}×), ${num(large.rowsRead)} D1 rows read`,
        how: `GET /api/v1/webhooks/:id/stats?window=30d, ${calls} sequential calls; logs and hourly rollups seeded in D1 over 30 days; rows read from the worker's request line`,
      },
      {
        figure: "noisy neighbour: B's list p95, quiet → six stats calls of A",
        value: `${ms(large.quietP95)} → ${ms(large.busyP95)} (at ${num(large.logs)} logs)`,
        how: "B lists 20 webhooks back to back while A runs 6 × 5 stats calls (30d) concurrently, same D1 database",
      },
    ],
    tables: [{ title: `Stats at ${logSizes.map((n) => num(n)).join(" and ")} logs`, rows: table }],
    json: rows,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { calls: { type: "string", default: "20" }, logs: { type: "string", default: "1000,200000" } } });
  const r = await run({ calls: Number(values.calls), logSizes: values.logs.split(",").map(Number) });
  console.table(r.figures);
  for (const t of r.tables) { console.log(t.title); console.table(t.rows); }
}
