// Migration 0008 (SPEC §9.1) upgrades a database that holds round-2 data: every log and
// attempt survives, pending deliveries stay findable by the cron, stats are rolled up,
// and the API reads the same logs as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker, api, migrationStatements, runCron, waitFor } from "./helpers.mjs";

const HOUR = 3_600_000;

test("migration 0008 moves round-2 logs and attempts without losing one", { timeout: 60_000 }, async () => {
  const hits = [];
  const { mf, db } = await startWorker({ migrate: false, receiver: async (req) => { hits.push(req.headers.get("x-webhook-delivery")); return new Response("ok"); } });
  try {
    const run = (list) => db.batch(list.map((s) => db.prepare(s)));
    await run(migrationStatements({ upTo: "0008" }));
    // Round-2 data: a webhook, two events, 40 finished logs with attempts, one pending.
    const now = Date.now();
    const hour = Math.floor(now / HOUR) * HOUR;
    await db.batch([
      db.prepare("INSERT INTO webhooks (id, workspace_id, name, url, secret, events, active, headers, retry_count, timeout_ms, created_at, updated_at) VALUES ('wh_old', 'ws_a', 'old', 'https://old.example.com/h', 'whsec_x', '[\"flight.departed\"]', 1, '{}', 3, 5000, ?1, ?1)").bind(now - 10 * HOUR),
      db.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES ('evt_old', 'ws_a', 'flight.departed', '{\"id\":\"evt_old\",\"type\":\"flight.departed\",\"data\":{}}', 'api', ?1)").bind(now - 5 * HOUR),
      ...Array.from({ length: 40 }, (_, i) => db.prepare(
        "INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, response_status, duration_ms, created_at, updated_at) VALUES (?1, 'ws_a', 'wh_old', 'evt_old', 'flight.departed', ?2, ?3, 4, ?4, 20, ?5, ?5)",
      ).bind(`dlv_${(0xabc000 + i).toString(16)}0000000000000000`.slice(0, 28), i % 4 === 0 ? "failed" : "success", 1 + (i % 3), i % 4 === 0 ? 500 : 200, now - 5 * HOUR + i * 1000)),
      ...Array.from({ length: 40 }, (_, i) => Array.from({ length: 1 + (i % 3) }, (_, k) => db.prepare(
        "INSERT INTO delivery_attempts (log_id, attempt, attempted_at, response_status, duration_ms, response_body) VALUES (?1, ?2, ?3, ?4, ?5, 'x')",
      ).bind(`dlv_${(0xabc000 + i).toString(16)}0000000000000000`.slice(0, 28), k + 1, now - 5 * HOUR + i * 1000, i % 4 === 0 ? 500 : 200, 10 + k))).flat(),
      db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, next_attempt_at, created_at, updated_at) VALUES ('dlv_pending00000000000000000', 'ws_a', 'wh_old', 'evt_old', 'flight.departed', 'pending', 0, 4, ?1, ?1, ?1)").bind(now - 2 * HOUR),
    ]);
    const before = (await db.prepare("SELECT id, status, attempts FROM delivery_logs ORDER BY id").all()).results;
    const attemptsBefore = (await db.prepare("SELECT log_id, attempt, attempted_at, response_status, duration_ms, response_body FROM delivery_attempts ORDER BY log_id, attempt").all()).results;
    assert.equal(before.length, 41);
    assert.equal(attemptsBefore.length, 79);

    const all = migrationStatements();
    await run(all.slice(migrationStatements({ upTo: "0008" }).length));

    // Every log and attempt is there, attempts now in the log rows (read through the view).
    assert.deepEqual((await db.prepare("SELECT id, status, attempts FROM delivery_logs ORDER BY id").all()).results, before);
    assert.deepEqual((await db.prepare("SELECT log_id, attempt, attempted_at, response_status, duration_ms, response_body FROM delivery_attempts ORDER BY log_id, attempt").all()).results, attemptsBefore);
    assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE legacy = 1").first()).n, 41);
    // The API reads them: a page, the total, one log's detail with its attempts.
    const page = await api(mf, "GET", "/api/v1/webhooks/logs?limit=100&webhook_id=wh_old");
    assert.equal(page.status, 200, page.text);
    assert.equal(page.json.total, 41);
    const detail = await api(mf, "GET", `/api/v1/webhooks/logs/${before[2].id}`);
    assert.equal(detail.status, 200, detail.text);
    assert.equal(detail.json.attempt_history.length, before[2].attempts);
    // Stats from the rollups the migration made: 30 successes, 10 failures, 79 attempts.
    const stats = await api(mf, "GET", "/api/v1/webhooks/wh_old/stats?window=24h");
    assert.equal(stats.status, 200, stats.text);
    assert.deepEqual([stats.json.counts.success, stats.json.counts.failed, stats.json.attempt_duration_ms.attempts], [30, 10, 79]);
    // The pending delivery is due: the cron hands it out, and it is delivered once.
    await runCron(mf);
    await waitFor(async () => (await db.prepare("SELECT status FROM delivery_logs WHERE id = 'dlv_pending00000000000000000'").first()).status === "success", { what: "the pending delivery delivered" });
    assert.deepEqual(hits, ["dlv_pending00000000000000000"]);
    assert.ok(hour > 0);
  } finally {
    await mf.dispose();
  }
});
