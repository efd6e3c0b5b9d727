// Endpoint health (SPEC §8.4), measured on purpose (not in `npm test`):
//  1. requests a dead endpoint receives per hour, with and without the breaker, on a
//     clock scaled down SCALE times (retry schedule, cooldowns and the hour alike), one
//     event per scaled minute;
//  2. recover throughput: redeliveries created (and sent) per second for N failed ones.
// Usage: node bench/health.mjs [--scale 60] [--recover 10000]
import { startWorker, api, createWebhook, sleep } from "../tests/helpers.mjs";

const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const SCALE = arg("scale", 60);
const RECOVER = arg("recover", 10000);
const PROD_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 43200, 43200, 43200, 43200];
const scaled = (secs) => Math.max(1, Math.round(secs / SCALE));

async function deadEndpoint(breaker) {
  let requests = 0;
  const bindings = {
    RETRY_SCHEDULE: PROD_SCHEDULE.map(scaled).join(","),
    BREAKER_FAILURE_THRESHOLD: breaker ? "10" : "1000000",
    BREAKER_COOLDOWN_SECONDS: String(scaled(60)),
    BREAKER_MAX_COOLDOWN_SECONDS: String(scaled(3600)),
  };
  const { mf } = await startWorker({ bindings, receiver: async () => { requests++; return new Response("down", { status: 500 }); } });
  try {
    await createWebhook(mf, { url: "https://dead.example.com/x", retry_count: 10 });
    const hourMs = 3_600_000 / SCALE;
    const t0 = Date.now();
    let events = 0;
    while (Date.now() - t0 < hourMs) {
      await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i: events++ } } });
      await sleep(60_000 / SCALE);
    }
    return { requests, events };
  } finally {
    await mf.dispose();
  }
}

async function recoverThroughput(n) {
  let sent = 0;
  const { mf, db } = await startWorker({ receiver: async () => { sent++; return new Response("ok"); } });
  try {
    const w = await createWebhook(mf, { url: "https://recover.example.com/x" });
    const since = Date.parse("2026-03-01T00:00:00Z");
    await db.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES ('evt_b', 'ws_a', 'flight.departed', '{}', 'api', ?)").bind(since).run();
    await db.prepare(`INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at)
      WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?2 - 1)
      SELECT printf('dlv_b%06d', i), 'ws_a', ?1, 'evt_b', 'flight.departed', 'failed', 4, 4, ?3, ?3 + i FROM s`).bind(w.id, n, since).run();
    const t0 = performance.now();
    const res = await api(mf, "POST", `/api/v1/webhooks/${w.id}/recover`, { body: { since: new Date(since).toISOString() } });
    if (res.json?.recovering !== n) throw new Error(`recover answered ${res.text}`);
    let created = 0, createdMs = NaN;
    while (sent < n && performance.now() - t0 < 600_000) {
      if (Number.isNaN(createdMs)) {
        created = (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE redelivery_of IS NOT NULL").first()).n;
        if (created >= n) createdMs = performance.now() - t0;
      }
      await sleep(50);
    }
    const sentMs = performance.now() - t0;
    return { n, createdMs, sentMs, sent };
  } finally {
    await mf.dispose();
  }
}

const rows = [];
for (const breaker of [false, true]) {
  const r = await deadEndpoint(breaker);
  rows.push({ breaker, ...r });
  console.log(`dead endpoint, breaker ${breaker ? "on " : "off"}: ${r.requests} requests in one scaled hour (${r.events} events, 1/min, scale 1:${SCALE})`);
}
const rec = await recoverThroughput(RECOVER);
console.log("\n| measure | value |\n|---|---|");
for (const r of rows) console.log(`| requests/hour to a dead endpoint, breaker ${r.breaker ? "on" : "off"} (1 event/min, scale 1:${SCALE}) | ${r.requests} |`);
console.log(`| recover: ${rec.n} redeliveries created | ${Math.round(rec.createdMs)} ms (${Math.round(rec.n / (rec.createdMs / 1000))}/s) |`);
console.log(`| recover: ${rec.sent} redeliveries sent | ${Math.round(rec.sentMs)} ms (${Math.round(rec.sent / (rec.sentMs / 1000))}/s) |`);
