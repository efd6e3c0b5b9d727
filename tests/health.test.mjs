// Endpoint health and recovery (SPEC §8.4): the circuit breaker, auto-disable, the
// operational events, recover and stats, asserted on what receivers got and on D1.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startWorker, api, token, createWebhook, waitFor, sleep, queueProducer } from "./helpers.mjs";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const sign = (secret, body) => "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
const publish = (mf, type, data = { n: 1 }) => api(mf, "POST", "/api/v1/events", { body: { type, data } });

describe("circuit breaker", () => {
  // Threshold 3, cooldown 2 s doubling up to 4 s, retries after 1 s each (4 attempts).
  const THRESHOLD = 3, COOLDOWN_S = 2, MAX_COOLDOWN_S = 4, BATCH = 10, EVENTS = 8;
  let mf, db;
  let deadMode = "fail";
  const dead = [], healthy = [];
  const half = { open: 0, maxOpenBeforeFirstSuccess: 0, succeeded: false };

  before(async () => {
    ({ mf, db } = await startWorker({
      bindings: { BREAKER_FAILURE_THRESHOLD: String(THRESHOLD), BREAKER_COOLDOWN_SECONDS: String(COOLDOWN_S),
                  BREAKER_MAX_COOLDOWN_SECONDS: String(MAX_COOLDOWN_S) },
      receiver: async (req) => {
        const host = new URL(req.url).hostname;
        const entry = { at: Date.now(), delivery: req.headers.get("x-webhook-delivery") };
        if (host !== "dead.example.com") { healthy.push(entry); return new Response("ok"); }
        dead.push(entry);
        if (deadMode === "fail") return new Response("down", { status: 500 });
        half.open++;
        if (!half.succeeded) half.maxOpenBeforeFirstSuccess = Math.max(half.maxOpenBeforeFirstSuccess, half.open);
        await sleep(300);
        half.open--;
        half.succeeded = true;
        return new Response("ok");
      },
    }));
  });
  after(async () => mf?.dispose());

  test("a dead endpoint gets a bounded number of requests; a healthy one of the same event gets all; postponed deliveries keep their attempts; a probe closes it", async () => {
    const a = await createWebhook(mf, { name: "dead", url: "https://dead.example.com/hook" });
    const b = await createWebhook(mf, { name: "healthy", url: "https://healthy.example.com/hook" });
    const started = Date.now();
    for (let i = 0; i < EVENTS; i++) assert.equal((await publish(mf, "flight.departed", { i })).status, 202);
    await waitFor(async () => healthy.length >= EVENTS, { what: "healthy deliveries" });
    await sleep(9000);
    const elapsedS = (Date.now() - started) / 1000;
    // Bound: before the breaker opens, at most threshold - 1 failures plus one batch in
    // flight; then one probe per cooldown (2 s, then 4 s): at most 1 + elapsed / 2.
    const bound = THRESHOLD - 1 + BATCH + 1 + Math.floor(elapsedS / COOLDOWN_S);
    const withoutBreaker = EVENTS * 4;
    assert.ok(dead.length <= bound, `dead endpoint got ${dead.length} requests, bound ${bound}`);
    assert.ok(dead.length < withoutBreaker);
    assert.equal(healthy.length, EVENTS, "the healthy webhook of the same events got every one, once");
    const hb = await db.prepare("SELECT status, COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ? GROUP BY status").bind(b.id).all();
    assert.deepEqual(hb.results, [{ status: "success", n: EVENTS }]);

    // Every attempt recorded is a request the receiver got: postponing used none. Without
    // the breaker all 8 would have used their 4 attempts (1 s apart) and failed by now.
    const logs = (await db.prepare("SELECT id, status, attempts, max_attempts FROM delivery_logs WHERE webhook_id = ?").bind(a.id).all()).results;
    const attempts = logs.reduce((s, l) => s + l.attempts, 0);
    const rows = await db.prepare("SELECT COUNT(*) AS n FROM delivery_attempts WHERE log_id IN (SELECT id FROM delivery_logs WHERE webhook_id = ?)").bind(a.id).first();
    assert.equal(attempts, dead.length, "attempts in D1 = requests received");
    assert.equal(rows.n, dead.length);
    assert.ok(logs.every((l) => l.status === "pending" && l.attempts < l.max_attempts), JSON.stringify(logs));

    const ga = await api(mf, "GET", `/api/v1/webhooks/${a.id}`);
    assert.equal(ga.json.health.state, "breaker_open");
    assert.ok(ga.json.health.consecutive_failures >= THRESHOLD);
    assert.ok(ga.json.health.breaker_open_until && ga.json.health.last_failure_at);
    assert.equal(ga.json.health.last_success_at, null);
    const gb = await api(mf, "GET", `/api/v1/webhooks/${b.id}`);
    assert.deepEqual({ ...gb.json.health, last_success_at: !!gb.json.health.last_success_at },
      { state: "ok", consecutive_failures: 0, last_success_at: true, last_failure_at: null, breaker_open_until: null });

    // The endpoint recovers: one probe alone (half-open), then everything flows.
    deadMode = "slow-ok";
    const before = dead.length;
    await waitFor(async () => {
      const r = await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ? AND status = 'success'").bind(a.id).first();
      return r.n === EVENTS;
    }, { timeoutMs: 90000, what: "all deliveries of the recovered endpoint" });
    assert.equal(half.maxOpenBeforeFirstSuccess, 1, "only the probe is in flight while half-open");
    const after = dead.slice(before);
    assert.equal(new Set(after.map((h) => h.delivery)).size, EVENTS, "each delivery once after recovery");
    assert.equal(after.length, EVENTS);
    const healed = await api(mf, "GET", `/api/v1/webhooks/${a.id}`);
    assert.equal(healed.json.health.state, "ok");
    assert.equal(healed.json.health.consecutive_failures, 0);
    assert.equal(healed.json.health.breaker_open_until, null);
    assert.ok(healed.json.health.last_success_at);
  });
});

describe("auto-disable, operational events, recover, stats", () => {
  let mf, db;
  const got = {}; // host -> [{ headers, body, json }]
  const answers = { "dead.example.com": 500, "gone.example.com": 410, "loop.example.com": 500 };
  const logLines = [];
  before(async () => {
    ({ mf, db } = await startWorker({
      onLog: (line) => logLines.push(line),
      receiver: async (req) => {
        const host = new URL(req.url).hostname;
        const body = await req.text();
        (got[host] ??= []).push({ headers: Object.fromEntries(req.headers), body, json: JSON.parse(body) });
        return new Response("x", { status: answers[host] ?? 200 });
      },
    }));
  });
  after(async () => mf?.dispose());
  const received = (host) => got[host] ?? [];

  test("delivery.exhausted reaches a subscriber signed, never the webhook it is about, and never loops", async () => {
    const watch = await createWebhook(mf, { name: "watch", url: "https://watch.example.com/x", events: ["delivery.exhausted"] });
    const e = await createWebhook(mf, { name: "exhausted", url: "https://dead.example.com/e", retry_count: 0,
                                        events: ["flight.arrived", "delivery.exhausted"] });
    const loop = await createWebhook(mf, { name: "loop", url: "https://loop.example.com/l", retry_count: 0, events: ["delivery.exhausted"] });
    const pub = await publish(mf, "flight.arrived", { flight: "PC1" });
    const w = await waitFor(() => received("watch.example.com").find((r) => r.json.type === "delivery.exhausted"), { what: "exhausted event" });
    const log = await db.prepare("SELECT id, error FROM delivery_logs WHERE webhook_id = ? AND event_id = ?").bind(e.id, pub.json.id).first();
    assert.deepEqual(w.json.data, { log_id: log.id, webhook_id: e.id, event_id: pub.json.id, event_type: "flight.arrived",
                                    attempts: 1, last_error: "receiver answered 500" });
    assert.equal(w.headers["x-webhook-signature"], sign(watch.secret, w.body));
    assert.equal(w.headers["x-webhook-event"], "delivery.exhausted");
    // The loop webhook's delivery of that event fails its last attempt too: no new event.
    await waitFor(() => received("loop.example.com").length >= 1, { what: "loop delivery" });
    await sleep(2500);
    const n = await db.prepare("SELECT COUNT(*) AS n FROM events WHERE type = 'delivery.exhausted'").first();
    assert.equal(n.n, 1, "a failing operational delivery emits no operational event");
    assert.equal(received("loop.example.com").length, 1);
    assert.deepEqual(received("dead.example.com").filter((r) => r.json.data?.webhook_id === e.id), [],
      "no operational event about a webhook is sent to it");
    assert.equal(received("watch.example.com").length, 1);
    // Only the service publishes operational events.
    const spoof = await publish(mf, "delivery.exhausted", { log_id: "x" });
    assert.equal(spoof.status, 400);
    assert.equal(spoof.json.error.code, "validation_error");
    for (const id of [watch.id, e.id, loop.id]) await api(mf, "DELETE", `/api/v1/webhooks/${id}`);
  });

  test("auto-disable after the configured hours of failures (clock in D1), webhook.disabled to others, PUT active resets", async () => {
    const watch = await createWebhook(mf, { name: "watch2", url: "https://watch2.example.com/x", events: ["webhook.disabled"] });
    const a = await createWebhook(mf, { name: "old failure", url: "https://dead.example.com/a", events: ["flight.departed", "webhook.disabled"] });
    const few = await createWebhook(mf, { name: "few failures", url: "https://dead.example.com/few", events: ["flight.departed"] });
    const recent = await createWebhook(mf, { name: "recent", url: "https://dead.example.com/recent", events: ["flight.departed"] });
    const now = Date.now();
    const since = now - 121 * HOUR;
    const set = (id, n, from) => db.prepare("UPDATE webhooks SET consecutive_failures = ?, failing_since = ?, last_failure_at = ? WHERE id = ?").bind(n, from, now - HOUR, id).run();
    await set(a.id, 12, since);
    await set(few.id, 3, since);          // 4 failures after this one: too few
    await set(recent.id, 12, now - 100 * HOUR); // not long enough
    await publish(mf, "flight.departed", { flight: "PC2" });
    const w = await waitFor(() => received("watch2.example.com").find((r) => r.json.data.webhook_id === a.id), { what: "disabled event" });
    const expectedReason = `every attempt failed since ${new Date(since).toISOString()} (13 consecutive failures); webhook disabled`;
    assert.deepEqual(w.json.data, { webhook_id: a.id, name: "old failure", url: "https://dead.example.com/a", reason: expectedReason });
    assert.equal(w.json.type, "webhook.disabled");
    assert.equal(w.headers["x-webhook-signature"], sign(watch.secret, w.body));
    const ga = await api(mf, "GET", `/api/v1/webhooks/${a.id}`);
    assert.equal(ga.json.active, false);
    assert.equal(ga.json.disabled_reason, expectedReason);
    assert.equal(ga.json.health.state, "disabled");
    for (const id of [few.id, recent.id]) {
      const g = await api(mf, "GET", `/api/v1/webhooks/${id}`);
      assert.equal(g.json.active, true, g.json.name);
      assert.notEqual(g.json.health.state, "disabled");
    }
    assert.equal((await api(mf, "GET", `/api/v1/webhooks/${recent.id}`)).json.health.state, "breaker_open");
    assert.equal(received("dead.example.com").filter((r) => r.json.type === "webhook.disabled").length, 0);

    // 410 Gone disables too, with its reason, and tells the subscriber.
    const gone = await createWebhook(mf, { name: "gone", url: "https://gone.example.com/g", events: ["flight.departed"] });
    await publish(mf, "flight.departed", { flight: "PC3" });
    const g = await waitFor(() => received("watch2.example.com").find((r) => r.json.data.webhook_id === gone.id), { what: "410 event" });
    assert.equal(g.json.data.reason, "receiver answered 410 Gone; webhook disabled");
    assert.equal(g.json.data.url, "https://gone.example.com/g");

    // Re-activating starts health afresh.
    const put = await api(mf, "PUT", `/api/v1/webhooks/${a.id}`, { body: { active: true } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json.health, { state: "ok", consecutive_failures: 0, last_success_at: null,
                                        last_failure_at: put.json.health.last_failure_at, breaker_open_until: null });
    const row = await db.prepare("SELECT consecutive_failures, failing_since, breaker_open_until, active FROM webhooks WHERE id = ?").bind(a.id).first();
    assert.deepEqual(row, { consecutive_failures: 0, failing_since: null, breaker_open_until: null, active: 1 });
    await sleep(1500);
    assert.equal(received("watch2.example.com").length, 2, "one event per disable");
    for (const id of [watch.id, a.id, few.id, recent.id, gone.id]) await api(mf, "DELETE", `/api/v1/webhooks/${id}`);
  });

  test("recover: exactly the 2,000 failed deliveries of the window are redelivered once, in the background", async () => {
    const r = await createWebhook(mf, { name: "recover me", url: "https://recover.example.com/r" });
    const other = await createWebhook(mf, { name: "other", url: "https://other.example.com/o" });
    // Within the log retention (30 days): an older `since` is refused.
    const since = Math.floor((Date.now() - 10 * 86_400_000) / 1000) * 1000;
    const until = since + 2000 * 1000;
    await db.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES ('evt_rec', 'ws_a', 'flight.departed', '{\"id\":\"evt_rec\",\"type\":\"flight.departed\",\"data\":{}}', 'api', ?)").bind(since).run();
    // 2,000 failed in the window (ended at since, since + 1 s, …), 25 before, 25 after,
    // 30 successes in it, and 30 failures of another webhook in it.
    await db.prepare(`INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, error, created_at, updated_at)
      WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2109)
      SELECT printf('dlv_seed%05d', i), 'ws_a', CASE WHEN i >= 2080 THEN ?2 ELSE ?1 END, 'evt_rec', 'flight.departed',
        CASE WHEN i BETWEEN 2050 AND 2079 THEN 'success' ELSE 'failed' END, 4, 4, 'receiver answered 500', ?3,
        CASE WHEN i < 2000 THEN ?3 + i * 1000 WHEN i < 2025 THEN ?3 - (i - 1999) * 1000 WHEN i < 2050 THEN ?4 + (i - 2024) * 1000
             ELSE ?3 + (i - 2050) * 1000 END
      FROM n`).bind(r.id, other.id, since, until).run();
    const inWindow = (await db.prepare("SELECT id FROM delivery_logs WHERE webhook_id = ? AND status = 'failed' AND updated_at BETWEEN ? AND ?").bind(r.id, since, until).all()).results.map((x) => x.id);
    assert.equal(inWindow.length, 2000);
    const body = { since: new Date(since).toISOString(), until: new Date(until).toISOString() };

    // Roles, workspaces and windows are checked before anything is written.
    assert.equal((await api(mf, "POST", `/api/v1/webhooks/${r.id}/recover`, { body, auth: token({ role: "manager" }) })).status, 403);
    assert.equal((await api(mf, "POST", `/api/v1/webhooks/${r.id}/recover`, { body, auth: token({ role: "member" }) })).status, 403);
    assert.equal((await api(mf, "POST", `/api/v1/webhooks/${r.id}/recover`, { body, auth: token({ workspace: "ws_b" }) })).status, 404);
    for (const [bad, field] of [
      [{ since: body.until, until: body.since }, "until"],
      [{ since: "last tuesday" }, "since"],
      [{ since: body.since, until: "2026-02-30T00:00:00Z" }, "until"],
      [{ until: body.until }, "since"],
      [{ since: body.since, dry_run: true }, "dry_run"],
    ]) {
      const res = await api(mf, "POST", `/api/v1/webhooks/${r.id}/recover`, { body: bad });
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.json.error.code, "validation_error");
      assert.ok(res.json.error.fields[field], `${JSON.stringify(bad)}: ${res.text}`);
    }
    assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE redelivery_of IS NOT NULL").first()).n, 0, "nothing written");

    const t0 = Date.now();
    const res = await api(mf, "POST", `/api/v1/webhooks/${r.id}/recover`, { body });
    assert.equal(res.status, 202);
    assert.deepEqual(res.json, { recovering: 2000 });
    await waitFor(async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE redelivery_of IS NOT NULL").first()).n >= 2000,
      { timeoutMs: 120000, what: "redeliveries created" });
    const createdMs = Date.now() - t0;
    await waitFor(() => received("recover.example.com").length >= 2000, { timeoutMs: 90000, intervalMs: 250, what: "redeliveries sent" });
    const link = (await db.prepare("SELECT redelivery_of, webhook_id, status, recover_job FROM delivery_logs WHERE redelivery_of IS NOT NULL").all()).results;
    assert.equal(link.length, 2000);
    assert.deepEqual(link.map((l) => l.redelivery_of).sort(), [...inWindow].sort(), "exactly the failed deliveries of the window");
    assert.ok(link.every((l) => l.webhook_id === r.id && l.status === "success"));
    const sent = received("recover.example.com");
    assert.equal(new Set(sent.map((s) => s.headers["x-webhook-delivery"])).size, 2000, "each redelivery sent once");
    assert.ok(sent.every((s) => s.json.id === "evt_rec"));

    // A retried chunk (the same message again) creates nothing more.
    const job = link[0].recover_job;
    const queue = queueProducer(mf);
    await queue.send({ recover: { job, webhook_id: r.id, since, until, after: null } });
    await sleep(3000);
    assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE redelivery_of IS NOT NULL").first()).n, 2000);
    assert.equal(received("recover.example.com").length, 2000);
    assert.equal(received("other.example.com").length, 0);
    console.log(`# recover: 2,000 redeliveries created in ${createdMs} ms, all sent in ${Date.now() - t0 - 3000} ms`);
    for (const id of [r.id, other.id]) await api(mf, "DELETE", `/api/v1/webhooks/${id}`);
  });

  test("stats come from the hourly rollups kept by the batches that record outcomes", async () => {
    const s = await createWebhook(mf, { name: "stats", url: "https://stats.example.com/s", retry_count: 0, events: ["flight.cancelled"] });
    // Live outcomes: 5 successes, 2 failures (the receiver fails bodies that ask for it).
    answers["stats.example.com"] = 200;
    const ok = [], bad = [];
    for (let i = 0; i < 5; i++) ok.push((await publish(mf, "flight.cancelled", { n: i })).json.id);
    await waitFor(async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ? AND status = 'success'").bind(s.id).first()).n === 5, { what: "5 successes" });
    answers["stats.example.com"] = 500;
    for (let i = 0; i < 2; i++) bad.push((await publish(mf, "flight.cancelled", { n: 10 + i })).json.id);
    await waitFor(async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ? AND status = 'failed'").bind(s.id).first()).n === 2, { what: "2 failures" });
    const durations = (await db.prepare("SELECT duration_ms FROM delivery_attempts WHERE log_id IN (SELECT id FROM delivery_logs WHERE webhook_id = ?)").bind(s.id).all()).results.map((r) => r.duration_ms);
    assert.equal(durations.length, 7);
    // Older hours, as the rollups hold them: 3 days ago (inside 7d and 30d), 40 days ago (outside).
    const hour = (t) => Math.floor(t / HOUR) * HOUR;
    const now = Date.now();
    await db.batch([
      db.prepare("INSERT INTO webhook_rollups (webhook_id, hour, success, failed, attempts, d30) VALUES (?, ?, 4, 1, 6, 6)").bind(s.id, hour(now - 3 * DAY)),
      db.prepare("INSERT INTO webhook_rollups (webhook_id, hour, success, failed, attempts, d30) VALUES (?, ?, 9, 9, 18, 18)").bind(s.id, hour(now - 40 * DAY)),
    ]);
    // The histogram's buckets (core::outbound::rollup) and the value each stands for.
    const STARTS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 16, 20, 25, 31, 39, 48, 60, 75, 94, 117, 146, 182, 228, 285, 356, 445, 556, 694, 868, 1085, 1356, 1695, 2118, 2647, 3309, 4136, 5170, 6463, 8078, 10098, 12622, 15778, 19722, 24652, 30815, 38519, 48149];
    const value = (d) => { let b = 0; while (b + 1 < STARTS.length && STARTS[b + 1] <= d) b++; return b + 1 < STARTS.length ? STARTS[b] + Math.floor((STARTS[b + 1] - 1 - STARTS[b]) / 2) : STARTS[b]; };
    const rank = (sorted, p) => sorted[Math.max(1, Math.ceil((p * sorted.length) / 100)) - 1] ?? null;
    const expect = {
      "24h": { success: 5, failed: 2, values: durations.map(value) },
      "7d": { success: 9, failed: 3, values: [...durations.map(value), ...Array(6).fill(value(1085))] },
      "30d": { success: 9, failed: 3, values: [...durations.map(value), ...Array(6).fill(value(1085))] },
    };
    for (const [window, points, interval] of [["24h", 24, HOUR], ["7d", 7, DAY], ["30d", 30, DAY]]) {
      const res = await api(mf, "GET", `/api/v1/webhooks/${s.id}/stats?window=${window}`, { auth: token({ role: "manager" }) });
      assert.equal(res.status, 200, res.text);
      const from = Date.parse(res.json.from), to = Date.parse(res.json.to);
      assert.equal(from % interval, 0, "the window starts at a whole bucket");
      assert.equal(to - from < points * interval && to - from >= (points - 1) * interval, true);
      const e = expect[window];
      assert.deepEqual(res.json.counts, { success: e.success, failed: e.failed, pending: 0, total: e.success + e.failed }, window);
      assert.equal(res.json.success_rate, e.success / (e.success + e.failed));
      const sorted = [...e.values].sort((x, y) => x - y);
      assert.deepEqual(res.json.attempt_duration_ms, { attempts: sorted.length, p50: rank(sorted, 50), p95: rank(sorted, 95) }, window);
      assert.equal(res.json.series.points.length, points);
      const last = res.json.series.points.at(-1);
      assert.deepEqual([last.success, last.failed], window === "24h" ? [5, 2] : [5, 2], `${window}: the current bucket`);
      assert.equal(res.json.series.points.reduce((n, p) => n + p.success, 0), e.success);
    }
    // What the logs say for the live part agrees.
    const count = async (status) => (await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${s.id}&status=${status}`)).json.total;
    assert.deepEqual([await count("success"), await count("failed")], [5, 2]);
    const bad2 = await api(mf, "GET", `/api/v1/webhooks/${s.id}/stats?window=1y`);
    assert.equal(bad2.status, 400);
    assert.ok(bad2.json.error.fields.window);
    assert.equal((await api(mf, "GET", `/api/v1/webhooks/${s.id}/stats`, { auth: token({ role: "member" }) })).status, 403);
    assert.equal((await api(mf, "GET", `/api/v1/webhooks/${s.id}/stats`, { auth: token({ workspace: "ws_b" }) })).status, 404);
    assert.equal((await api(mf, "GET", `/api/v1/webhooks/${s.id}/stats`)).json.window, "24h");
  });

  test("a 30-day stats call reads at most 800 D1 rows, even for a webhook that never succeeded (SPEC §9.1)", async () => {
    // The worst case for the webhook's latest success (webhooks.rs, last_success_sql): no
    // success on its row or in any of its 720 hourly rollups, so that look-up would walk
    // them all. Stats need only the webhook's key, not its health.
    const s = await createWebhook(mf, { name: "never ok", url: "https://never.example.com/s", events: ["flight.cancelled"] });
    const now = Date.now();
    await db.prepare(`WITH RECURSIVE h(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM h WHERE x < 719)
      INSERT INTO webhook_rollups (webhook_id, hour, failed, attempts, d30) SELECT ?1, ?2 - x * ?3, 1, 1, 1 FROM h`)
      .bind(s.id, Math.floor(now / HOUR) * HOUR, HOUR).run();
    logLines.length = 0;
    const res = await api(mf, "GET", `/api/v1/webhooks/${s.id}/stats?window=30d`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.json.counts.failed >= 29 * 24, JSON.stringify(res.json.counts)); // the window starts at a whole day
    const requestLine = () => logLines.map((l) => { try { return JSON.parse(l.slice(l.indexOf("{"))); } catch { return null; } })
      .find((l) => l?.msg === "request" && String(l.path).endsWith("/stats"));
    await waitFor(async () => requestLine() !== undefined, { what: "the request's log line" });
    const line = requestLine();
    assert.ok(line.rows_read <= 800, `rows read ${line.rows_read}`);
    // Its health as the consumer leaves it after 720 hours of failures: the latest-success
    // look-up of a read or a list stays a row or two, and finds none.
    await db.prepare("UPDATE webhooks SET consecutive_failures = 720, failing_since = ?2, last_failure_at = ?3 WHERE id = ?1")
      .bind(s.id, Math.floor(now / HOUR) * HOUR - 719 * HOUR, now).run();
    logLines.length = 0;
    const got = await api(mf, "GET", `/api/v1/webhooks/${s.id}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.json.health.last_success_at, null);
    const read = () => logLines.map((l) => { try { return JSON.parse(l.slice(l.indexOf("{"))); } catch { return null; } })
      .find((l) => l?.msg === "request" && String(l.path).endsWith(s.id));
    await waitFor(async () => read() !== undefined, { what: "the read's log line" });
    assert.ok(read().rows_read <= 10, `rows read ${read().rows_read}`);
    await db.prepare("DELETE FROM webhook_rollups WHERE webhook_id = ?").bind(s.id).run();
    await api(mf, "DELETE", `/api/v1/webhooks/${s.id}`);
  });

  test("stats and recover queries are served by their indexes (EXPLAIN QUERY PLAN)", async () => {
    const plan = async (sql) => (await db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all()).results.map((r) => r.detail).join(" | ");
    const p = await plan("SELECT hour, success FROM webhook_rollups WHERE webhook_id = 'wh_x' AND hour >= 0 AND hour <= 9e15");
    assert.match(p, /SEARCH webhook_rollups USING PRIMARY KEY \(webhook_id=\? AND hour>\? AND hour<\?\)/, p);
    const w = await plan("SELECT COUNT(*) AS n FROM (SELECT 1 FROM delivery_logs INDEXED BY logs_waiting_by_webhook WHERE webhook_id = 'wh_x' AND next_attempt_at IS NOT NULL AND status = 'pending' LIMIT 50)");
    assert.match(w, /SEARCH delivery_logs USING INDEX logs_waiting_by_webhook/, w);
    const r = await plan("SELECT id FROM delivery_logs WHERE webhook_id = 'wh_x' AND status = 'failed' AND updated_at >= 0 AND updated_at <= 9e15 AND (updated_at > 0 OR (updated_at = 0 AND id > '')) ORDER BY updated_at, id LIMIT 500");
    assert.match(r, /SEARCH delivery_logs USING (COVERING )?INDEX logs_failed_by_webhook/, r);
    assert.doesNotMatch(r, /TEMP B-TREE/, r);
    const j = await plan("SELECT o.id, r.id FROM delivery_logs o LEFT JOIN delivery_logs r ON r.redelivery_of = o.id AND r.recover_job = 'rcv_x' WHERE o.id = 'x'");
    assert.match(j, /SEARCH r USING (COVERING )?INDEX logs_recovered/, j);
  });
});
