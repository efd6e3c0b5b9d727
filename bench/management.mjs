// Management API latency: creating webhooks, and querying delivery logs at 1k vs 100k rows.
//   node bench/management.mjs [--creates 200] [--queries 50] [--runs 3] [--rows 1000,100000]
// Creates: sequential POST /api/v1/webhooks (valid body, secret, custom header), fresh
// workspace per run. Logs: rows are seeded straight into D1 (INSERT … SELECT over a
// recursive CTE: events, one log per (event, webhook), one attempt per log), all in one
// workspace, then GET /api/v1/webhooks/logs is timed sequentially, with and without
// filters; the same instance is grown from the small to the large row count.
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { startWorker, percentile, median, ms, num, isMain } from "./lib.mjs";

const WS = "ws_logs";
const WEBHOOKS = 10;
const TYPES = ["flight.departed", "flight.arrived", "reservation.created", "invoice.paid"];
const DAY = 86_400_000;

async function timed(fn) {
  const t = performance.now();
  const r = await fn();
  return { ms: performance.now() - t, r };
}

async function createRuns({ creates, runs }) {
  const { mf } = await startWorker({});
  try {
    const out = [];
    for (let r = 0; r < runs; r++) {
      const auth = token({ workspace: `ws_create_${r}`, role: "admin" });
      const lat = [];
      const statuses = {};
      for (let i = 0; i < creates + 10; i++) {
        const body = {
          name: `Bench hook ${i}`, url: `https://hooks${i}.customer.example.com/planeconnection`, events: ["flight.departed", "invoice.paid"],
          secret: "whsec_bench_secret_0123456789", headers: { "X-Customer": "bench" }, retry_count: 5, timeout_ms: 8000,
        };
        const { ms: t, r: res } = await timed(() => api(mf, "POST", "/api/v1/webhooks", { auth, body }));
        if (i < 10) continue; // warm-up
        lat.push(t);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
      out.push({ p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), statuses });
    }
    return out;
  } finally {
    await mf.dispose();
  }
}

/** Grows the seeded data to `events` events × WEBHOOKS logs (ids continue from `fromEvent`). */
async function seed(db, fromEvent, toEvent, now) {
  const span = 20 * DAY; // created_at spread over the last 20 days (inside the 30-day retention)
  const total = 100_000 / WEBHOOKS;
  await db.batch([
    db.prepare(
      `INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at)
       WITH RECURSIVE seq(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?2)
       SELECT printf('evt_seed%08d', n), '${WS}', ${typeCase("n")},
              '{"id":"' || printf('evt_seed%08d', n) || '","type":"' || ${typeCase("n")} || '","created_at":"2026-01-01T00:00:00Z","data":{"flight_id":"fl_' || n || '","tail":"N123PC","from":"KSFO","to":"KLAX"}}',
              NULL, 'api', ?3 - ?4 + (n * ?4) / ${total}
       FROM seq`,
    ).bind(fromEvent, toEvent - 1, now, span),
    db.prepare(
      `INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts,
         response_status, response_body, error, duration_ms, next_attempt_at, created_at, updated_at)
       SELECT printf('dlv_seed%08d_%02d', e.n, w.k), '${WS}', printf('wh_seed%02d', w.k), printf('evt_seed%08d', e.n), ${typeCase("e.n")},
              CASE WHEN (e.n * 10 + w.k) % 97 = 0 THEN 'pending' WHEN (e.n * 10 + w.k) % 23 = 0 THEN 'failed' ELSE 'success' END,
              1, 4,
              CASE WHEN (e.n * 10 + w.k) % 23 = 0 THEN 500 ELSE 200 END, 'ok', NULL, 120, NULL,
              ?3 - ?4 + (e.n * ?4) / ${total}, ?3 - ?4 + (e.n * ?4) / ${total}
       FROM (WITH RECURSIVE seq(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?2) SELECT n FROM seq) e,
            (WITH RECURSIVE ks(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM ks WHERE k < ${WEBHOOKS - 1}) SELECT k FROM ks) w`,
    ).bind(fromEvent, toEvent - 1, now, span),
    db.prepare(
      `INSERT INTO delivery_attempts (log_id, attempt, attempted_at, response_status, error, duration_ms)
       SELECT id, 1, created_at, response_status, NULL, 120 FROM delivery_logs
       WHERE id >= printf('dlv_seed%08d', ?1) AND id < printf('dlv_seed%08d', ?2)`,
    ).bind(fromEvent, toEvent),
  ]);
}

const typeCase = (n) => `CASE (${n}) % 4 ${TYPES.map((t, i) => `WHEN ${i} THEN '${t}'`).join(" ")} END`;

function queries(now) {
  const from = new Date(now - 3 * DAY).toISOString();
  const to = new Date(now - 1 * DAY).toISOString();
  return [
    { name: "no filter (newest 50)", path: "/api/v1/webhooks/logs" },
    { name: "webhook_id", path: "/api/v1/webhooks/logs?webhook_id=wh_seed03" },
    { name: "status=failed", path: "/api/v1/webhooks/logs?status=failed" },
    { name: "event_type + date range", path: `/api/v1/webhooks/logs?event_type=invoice.paid&date_from=${from}&date_to=${to}` },
    { name: "no filter, offset 5000", path: "/api/v1/webhooks/logs?limit=50&offset=5000" },
  ];
}

async function logRuns({ queries: n, runs, rowCounts }) {
  const { mf, db } = await startWorker({});
  try {
    const auth = token({ workspace: WS, role: "admin" });
    const now = Date.now();
    const qs = queries(now);
    const byRows = [];
    let seededEvents = 0;
    for (const rows of rowCounts) {
      const events = Math.ceil(rows / WEBHOOKS);
      const { ms: seedMs } = await timed(() => seed(db, seededEvents, events, now));
      seededEvents = events;
      const count = (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE workspace_id = ?").bind(WS).first()).n;
      const perQuery = [];
      for (const q of qs) {
        const runsOut = [];
        let total;
        let status;
        for (let r = 0; r < runs; r++) {
          const lat = [];
          for (let i = 0; i < n + 5; i++) {
            const { ms: t, r: res } = await timed(() => api(mf, "GET", q.path, { auth }));
            status = res.status;
            total = res.json?.total;
            if (i >= 5) lat.push(t);
          }
          runsOut.push({ p50: percentile(lat, 50), p95: percentile(lat, 95) });
        }
        perQuery.push({ query: q.name, path: q.path, status, total, p50: median(runsOut.map((x) => x.p50)), p95: median(runsOut.map((x) => x.p95)) });
      }
      byRows.push({ rows: count, seedMs, perQuery });
    }
    return byRows;
  } finally {
    await mf.dispose();
  }
}

export async function run({ creates = 200, queries: n = 50, runs = 3, rowCounts = [1000, 100000] } = {}) {
  const c = await createRuns({ creates, runs });
  const create = { runs, createsPerRun: creates, p50: median(c.map((x) => x.p50)), p95: median(c.map((x) => x.p95)), p99: median(c.map((x) => x.p99)), statuses: c.map((x) => x.statuses) };
  const logs = await logRuns({ queries: n, runs, rowCounts });
  const small = logs[0];
  const large = logs[logs.length - 1];
  const rows = small.perQuery.map((q, i) => {
    const L = large.perQuery[i];
    return {
      query: q.query,
      [`p50 @${num(small.rows)}`]: ms(q.p50), [`p95 @${num(small.rows)}`]: ms(q.p95),
      [`p50 @${num(large.rows)}`]: ms(L.p50), [`p95 @${num(large.rows)}`]: ms(L.p95),
      "ratio p50": `${(L.p50 / q.p50).toFixed(2)}×`,
      "total (large)": num(L.total), status: `${q.status}/${L.status}`,
    };
  });
  const worst = small.perQuery.map((q, i) => ({ q: q.query, ratio: large.perQuery[i].p50 / q.p50 })).reduce((a, b) => (b.ratio > a.ratio ? b : a));
  const plain = rows[0];
  const figures = [
    { figure: "create webhook p50 / p95", value: `${ms(create.p50)} / ${ms(create.p95)}`,
      how: `${creates} sequential POST /api/v1/webhooks per run (after 10 warm-up), ${runs} runs, median of per-run percentiles` },
    { figure: `logs query p50, ${num(small.rows)} → ${num(large.rows)} rows`, value: `${plain[`p50 @${num(small.rows)}`]} → ${plain[`p50 @${num(large.rows)}`]} (${plain["ratio p50"]}); worst filter: ${worst.q} ${worst.ratio.toFixed(2)}×`,
      how: `GET /api/v1/webhooks/logs, ${n} sequential queries × ${runs} runs per variant, rows seeded in D1 (one workspace, ${WEBHOOKS} webhooks, one attempt each); ratio = large/small p50` },
  ];
  return {
    id: "management", title: "3. Management API", figures,
    tables: [{ title: `Logs query latency at ${num(small.rows)} vs ${num(large.rows)} log rows (GET /api/v1/webhooks/logs, limit 50; ${n} queries × ${runs} runs, medians)`, rows }],
    json: { create, logs },
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    creates: { type: "string", default: "200" }, queries: { type: "string", default: "50" }, runs: { type: "string", default: "3" },
    rows: { type: "string", default: "1000,100000" },
  } });
  const r = await run({ creates: Number(values.creates), queries: Number(values.queries), runs: Number(values.runs), rowCounts: values.rows.split(",").map(Number) });
  console.table(r.figures);
  console.table(r.tables[0].rows);
}
