// Ordered and rate-limited endpoints (SPEC §9.3): the two fields, a rate limit measured
// by arrival times at the receiver, FIFO order over failures, retries and a restart, a
// 410 and an exhausted delivery in a FIFO lane, unscheduled webhooks left alone, and lanes
// in another shard and across a workspace move.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorker, api, createWebhook, waitFor, sleep, runCron, token, d1 } from "./helpers.mjs";

const publish = (mf, data = {}) => api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data } });

/**
 * Receiver state: arrivals `{ id, hook, at, end, status }` (`end`: when the answer went
 * back; a request cut by a restart has none), and requests per delivery id.
 */
function recorder(answer = () => 200) {
  const arrivals = [];
  const seen = new Map();
  const receiver = async (request) => {
    const hook = new URL(request.url).hostname;
    const id = request.headers.get("x-webhook-delivery");
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    const arrival = { id, hook, at: Date.now() };
    arrivals.push(arrival);
    const body = JSON.parse(await request.text());
    arrival.i = body.data?.i;
    arrival.status = await answer(id, n, hook, body);
    // Held briefly, so that a second request in flight would overlap it.
    await sleep(2);
    arrival.end = Date.now();
    return new Response(arrival.status < 300 ? "ok" : "no", { status: arrival.status });
  };
  return { receiver, arrivals, seen };
}

/** Most requests to `hook` open at once, over the requests that were answered. */
function maxInFlight(arrivals, hook) {
  const edges = arrivals.filter((a) => a.hook === hook && a.end !== undefined)
    .flatMap((a) => [[a.at, 1], [a.end, -1]])
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let open = 0, most = 0;
  for (const [, d] of edges) { open += d; most = Math.max(most, open); }
  return most;
}

/** Most arrivals in any half-open one-second window. */
function maxPerSecond(times) {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

test("fields: defaults, validation, create, update and render", { timeout: 60_000 }, async () => {
  const { mf } = await startWorker();
  try {
    const plain = await createWebhook(mf);
    assert.equal(plain.rate_limit_per_second, null);
    assert.equal(plain.ordering, "none");
    const bad = await api(mf, "POST", "/api/v1/webhooks", {
      body: { name: "x", url: "https://a.example.com/h", events: ["flight.departed"], rate_limit_per_second: 0, ordering: "lifo" },
    });
    assert.equal(bad.status, 400);
    assert.ok(bad.json.error.fields.rate_limit_per_second);
    assert.ok(bad.json.error.fields.ordering);
    for (const rate of [1001, 2.5, "5", true]) {
      const r = await api(mf, "PUT", `/api/v1/webhooks/${plain.id}`, { body: { rate_limit_per_second: rate } });
      assert.equal(r.status, 400, `rate ${rate}`);
    }
    const made = await createWebhook(mf, { rate_limit_per_second: 1000, ordering: "fifo" });
    assert.equal(made.rate_limit_per_second, 1000);
    assert.equal(made.ordering, "fifo");
    const cleared = await api(mf, "PUT", `/api/v1/webhooks/${made.id}`, { body: { rate_limit_per_second: null } });
    assert.equal(cleared.status, 200);
    assert.equal(cleared.json.rate_limit_per_second, null);
    assert.equal(cleared.json.ordering, "fifo", "omitted fields stay");
    const got = await api(mf, "GET", `/api/v1/webhooks/${made.id}`);
    assert.equal(got.json.ordering, "fifo");
    const set = await api(mf, "PUT", `/api/v1/webhooks/${plain.id}`, { body: { rate_limit_per_second: 1, ordering: "none" } });
    assert.equal(set.json.rate_limit_per_second, 1);
  } finally {
    await mf.dispose();
  }
});

test("rate limit: a backlog at 3× the rate arrives at ≤ R per second and ≥ 0.9 R on average; others unpaced", { timeout: 90_000 }, async () => {
  const R = 3;
  const rx = recorder();
  const { mf, db } = await startWorker({ receiver: rx.receiver });
  try {
    const limited = await createWebhook(mf, { url: "https://limited.example.com/h", rate_limit_per_second: R });
    const plain = await createWebhook(mf, { url: "https://plain.example.com/h" });
    // 3R events a second for three seconds: a backlog of 6R builds up.
    const total = 9 * R;
    const started = Date.now();
    for (let i = 0; i < total; i++) {
      await publish(mf, { i });
      const due = started + ((i + 1) * 1000) / (3 * R);
      if (due > Date.now()) await sleep(due - Date.now());
    }
    await waitFor(async () => rx.arrivals.filter((a) => a.hook === "limited.example.com").length >= total,
      { timeoutMs: 60_000, what: "every limited delivery" });
    const times = rx.arrivals.filter((a) => a.hook === "limited.example.com").map((a) => a.at).sort((a, b) => a - b);
    assert.equal(maxInFlight(rx.arrivals, "limited.example.com") <= R, true);
    assert.ok(maxPerSecond(times) <= R + 1, `at most R (+1 for jitter) in any second: ${maxPerSecond(times)}`);
    const rate = (times.length - 1) / ((times.at(-1) - times[0]) / 1000);
    assert.ok(rate >= 0.9 * R, `average while the backlog lasts: ${rate.toFixed(2)}/s`);
    // Held deliveries used no attempt; each log ends once.
    await waitFor(async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first()).n === 0,
      { what: "every outcome recorded" });
    const rows = (await db.prepare("SELECT status, attempts, scheduled FROM delivery_logs WHERE webhook_id = ?").bind(limited.id).all()).results;
    assert.equal(rows.length, total);
    for (const r of rows) assert.deepEqual([r.status, r.attempts, typeof r.scheduled], ["success", 1, "number"]);
    const attempts = await db.prepare("SELECT COUNT(*) AS n FROM delivery_attempts a JOIN delivery_logs l ON l.id = a.log_id WHERE l.webhook_id = ?").bind(limited.id).first();
    assert.equal(attempts.n, total);
    // The unscheduled webhook took today's path: never scheduled, never paced.
    const plainRows = (await db.prepare("SELECT status, scheduled FROM delivery_logs WHERE webhook_id = ?").bind(plain.id).all()).results;
    assert.equal(plainRows.length, total);
    for (const r of plainRows) assert.deepEqual([r.status, r.scheduled], ["success", null]);
    const plainTimes = rx.arrivals.filter((a) => a.hook === "plain.example.com").map((a) => a.at);
    assert.ok(maxPerSecond(plainTimes) > R + 1, `the plain webhook follows the publisher (${maxPerSecond(plainTimes)}/s)`);
  } finally {
    await mf.dispose();
  }
});

test("FIFO: 300 events, 10 % failures, a restart mid-run: successes in publish order, one in flight, nothing lost or doubled", { timeout: 150_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-fifo-"));
  // A deterministic 10 % of attempts fail with a 500.
  const fails = (id, n) => createHash("sha256").update(`fifo:${id}:${n}`).digest().readUInt32BE(0) / 2 ** 32 < 0.1;
  const rx = recorder((id, n) => (fails(id, n) ? 500 : 200));
  // Short leases: the restart cuts a send whose lease must run out before it is retried.
  const options = { receiver: rx.receiver, persist: dir, bindings: { RETRY_SCHEDULE: "1", LEASE_MARGIN_SECONDS: "1" } };
  let { mf, db } = await startWorker(options);
  try {
    const hook = await createWebhook(mf, { url: "https://fifo.example.com/h", ordering: "fifo", retry_count: 10, timeout_ms: 1000 });
    const events = [];
    const total = 300;
    for (let i = 0; i < total; i++) {
      const r = await publish(mf, { i });
      assert.equal(r.status, 202);
      events.push(r.json.id);
      if (i === 150) {
        // Restart with deliveries in flight, held and not yet published.
        await waitFor(() => rx.arrivals.length >= 20, { timeoutMs: 30_000, what: "some FIFO arrivals" });
        await mf.dispose();
        ({ mf, db } = await startWorker(options));
      }
    }
    let polls = 0;
    await waitFor(async () => {
      // The cron wakes a lane whose scheduler lost its alarm in the restart.
      if (++polls % 10 === 0) await runCron(mf);
      const left = await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first();
      return left.n === 0;
    }, { timeoutMs: 120_000, intervalMs: 200, what: "every FIFO delivery to end" });

    assert.equal(maxInFlight(rx.arrivals, "fifo.example.com"), 1, "never two requests in flight");
    const logs = (await db.prepare("SELECT id, event_id, status, attempts FROM delivery_logs WHERE webhook_id = ?").bind(hook.id).all()).results;
    assert.equal(logs.length, total);
    for (const l of logs) assert.equal(l.status, "success", `${l.id} ${l.status}`);
    const eventOf = new Map(logs.map((l) => [l.id, l.event_id]));
    // The order of first successful arrivals is the publish order.
    const order = [];
    const done = new Set();
    for (const a of rx.arrivals) {
      if (a.status === 200 && !done.has(a.id)) {
        done.add(a.id);
        order.push(eventOf.get(a.id));
      }
    }
    assert.equal(order.length, total, "every delivery arrived");
    assert.deepEqual(order, events, "successes in publish order");
    // Exactly one success per log, and no attempt recorded twice.
    const rows = (await db.prepare("SELECT a.log_id, COUNT(*) AS n, SUM(a.response_status = 200) AS ok, MAX(a.attempt) AS last FROM delivery_attempts a JOIN delivery_logs l ON l.id = a.log_id WHERE l.webhook_id = ? GROUP BY a.log_id").bind(hook.id).all()).results;
    assert.equal(rows.length, total);
    for (const r of rows) {
      assert.equal(r.ok, 1, `${r.log_id}: one success recorded`);
      // A claim cut by the restart may have spent a number, never reused one.
      assert.ok(r.n <= r.last && r.last - r.n <= 1, `${r.log_id}: ${r.n} attempts recorded up to number ${r.last}`);
    }
    // Held deliveries used no attempts: attempts equal the requests the receiver saw,
    // except around the restart, off by one at most: a send cut after it reached the
    // receiver is sent again, and a claim cut before its request spent an attempt.
    const off = logs.filter((l) => rx.seen.get(l.id) !== l.attempts);
    assert.ok(off.length <= 3 && off.every((l) => Math.abs(rx.seen.get(l.id) - l.attempts) === 1),
      `receiver counts match attempts but around the restart: ${JSON.stringify(off.map((l) => [l.attempts, rx.seen.get(l.id)]))}`);
    const failures = rx.arrivals.filter((a) => a.status !== 200).length;
    assert.ok(failures >= 10, `the failures happened (${failures})`);
  } finally {
    await mf.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("FIFO: an exhausted delivery lets the next go; a 410 disables and fails the held ones unsent", { timeout: 60_000 }, async () => {
  // The first request of each lane waits until every event is published, so that all
  // four deliveries exist before the 410 disables the webhook.
  let published;
  const allPublished = new Promise((resolve) => { published = resolve; });
  const rx = recorder(async (id, n, hook, body) => {
    if (body.data.i === 0) await allPublished;
    if (hook === "exhaust.example.com" && body.data.i === 0) return 500;
    if (hook === "gone.example.com" && body.data.i === 2) return 410;
    return 200;
  });
  const { mf, db } = await startWorker({ receiver: rx.receiver, bindings: { RETRY_SCHEDULE: "1" } });
  try {
    const exhaust = await createWebhook(mf, { url: "https://exhaust.example.com/h", ordering: "fifo", retry_count: 1, events: ["flight.arrived"] });
    const gone = await createWebhook(mf, { url: "https://gone.example.com/h", ordering: "fifo", rate_limit_per_second: 50, events: ["flight.cancelled"] });
    for (let i = 0; i < 4; i++) {
      assert.equal((await api(mf, "POST", "/api/v1/events", { body: { type: "flight.arrived", data: { i } } })).status, 202);
      assert.equal((await api(mf, "POST", "/api/v1/events", { body: { type: "flight.cancelled", data: { i } } })).status, 202);
    }
    published();
    await waitFor(async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first()).n === 0,
      { timeoutMs: 40_000, what: "both lanes to end" });
    const seq = (host) => rx.arrivals.filter((a) => a.hook === host).map((a) => a.i);
    assert.deepEqual(seq("exhaust.example.com"), [0, 0, 1, 2, 3], "the head retried once, exhausted, then the rest in order");
    const ex = (await db.prepare("SELECT status, attempts FROM delivery_logs WHERE webhook_id = ? ORDER BY scheduled, id").bind(exhaust.id).all()).results;
    assert.deepEqual(ex.map((r) => [r.status, r.attempts]), [["failed", 2], ["success", 1], ["success", 1], ["success", 1]]);
    assert.deepEqual(seq("gone.example.com"), [0, 1, 2], "nothing sent after the 410");
    const gl = (await db.prepare("SELECT status, attempts, error FROM delivery_logs WHERE webhook_id = ? ORDER BY scheduled, id").bind(gone.id).all()).results;
    assert.deepEqual(gl.map((r) => r.status), ["success", "success", "failed", "failed"]);
    assert.equal(gl[3].attempts, 0, "the held delivery used no attempt");
    assert.match(gl[3].error, /deactivated/);
    const w = await api(mf, "GET", `/api/v1/webhooks/${gone.id}`);
    assert.equal(w.json.active, false);
    assert.match(w.json.disabled_reason, /410/);
  } finally {
    await mf.dispose();
  }
});

test("shards: a lane whose workspace lives in another shard is scheduled there; the cron wakes it from that shard", { timeout: 60_000 }, async () => {
  const rx = recorder((id, n, hook, body) => (hook === "sharded.example.com" && body.data?.i === 3 && n === 1 ? 500 : 200));
  const { mf } = await startWorker({ receiver: rx.receiver, shards: ["DB", "DB_2"], bindings: { RETRY_SCHEDULE: "1" } });
  try {
    const [home, second] = [d1(mf, "DB"), d1(mf, "DB_2")];
    // ws_far lives in DB_2 from its first write on.
    await home.prepare("INSERT INTO workspace_shards (workspace_id, shard, placed_at) VALUES ('ws_far', 'DB_2', ?1)").bind(Date.now()).run();
    const auth = token({ workspace: "ws_far" });
    const hook = await createWebhook(mf, { url: "https://sharded.example.com/h", ordering: "fifo", rate_limit_per_second: 20 }, { auth });
    const events = [];
    for (let i = 0; i < 12; i++) {
      const r = await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i } }, auth });
      assert.equal(r.status, 202);
      events.push(r.json.id);
    }
    // A test delivery takes its rate-limit token from the same scheduler (shard in the URL).
    const t = await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { auth });
    assert.equal(t.status, 200, t.text);
    await waitFor(async () => (await second.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first()).n === 0,
      { timeoutMs: 30_000, what: "the lane in DB_2 to end" });
    const logs = (await second.prepare("SELECT id, event_id, status, scheduled, test FROM delivery_logs WHERE webhook_id = ?1").bind(hook.id).all()).results;
    assert.equal(logs.length, 13);
    for (const l of logs) assert.equal(l.status, "success", l.id);
    assert.ok(logs.every((l) => (l.test ? l.scheduled === null : typeof l.scheduled === "number")), "lane deliveries scheduled, the test one not");
    assert.equal((await home.prepare("SELECT COUNT(*) AS n FROM delivery_logs").first()).n, 0, "nothing in DB");
    const eventOf = new Map(logs.map((l) => [l.id, l.event_id]));
    const order = [];
    const done = new Set();
    for (const a of rx.arrivals) {
      if (a.status === 200 && eventOf.get(a.id) && !done.has(a.id) && events.includes(eventOf.get(a.id))) {
        done.add(a.id);
        order.push(eventOf.get(a.id));
      }
    }
    assert.deepEqual(order, events, "successes in publish order (the failed head held the rest)");
    assert.equal(maxInFlight(rx.arrivals, "sharded.example.com"), 1);

    // A lane whose wake-up was lost (rows written straight into DB_2, no message, a
    // scheduler never woken): the cron finds it in DB_2 and wakes it with that shard.
    const lost = await createWebhook(mf, { url: "https://lost.example.com/h", ordering: "fifo" }, { auth });
    const now = Date.now() - 5_000;
    for (let i = 0; i < 3; i++) {
      const ev = `evt_lost${i}`;
      await second.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES (?1, 'ws_far', 'flight.departed', ?2, 'api', ?3)")
        .bind(ev, JSON.stringify({ id: ev, type: "flight.departed", data: { i } }), now).run();
      await second.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, next_attempt_at, created_at, updated_at, scheduled) VALUES (?1, 'ws_far', ?2, ?3, 'flight.departed', 'pending', 0, 4, ?4, ?4, ?4, ?5)")
        .bind(`dlv_lost${i}`, lost.id, ev, now, now + i).run();
    }
    await runCron(mf);
    await waitFor(async () => (await second.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ?1 AND status = 'success'").bind(lost.id).first()).n === 3,
      { timeoutMs: 20_000, what: "the cron to wake the lost lane in DB_2" });
    assert.deepEqual(rx.arrivals.filter((a) => a.hook === "lost.example.com").map((a) => a.i), [0, 1, 2]);
  } finally {
    await mf.dispose();
  }
});

test("moves: a FIFO lane held by a failing head moves to another shard and goes on there in publish order", { timeout: 90_000 }, async () => {
  const OPS_KEY = "ops-test-key-0123456789abcdef-012345";
  let healthy = false;
  const rx = recorder(() => (healthy ? 200 : 500));
  const { mf } = await startWorker({ receiver: rx.receiver, shards: ["DB", "DB_2"],
    bindings: { RETRY_SCHEDULE: "1", OPS_API_KEY: OPS_KEY, MOVE_CLEANUP_DELAY_SECONDS: "1", SWEEP_GRACE_SECONDS: "1" } });
  try {
    const [home, second] = [d1(mf, "DB"), d1(mf, "DB_2")];
    const auth = token({ workspace: "ws_mover" });
    const hook = await createWebhook(mf, { url: "https://mover.example.com/h", ordering: "fifo", retry_count: 10 }, { auth });
    const events = [];
    for (let i = 0; i < 8; i++) {
      const r = await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i } }, auth });
      assert.equal(r.status, 202);
      events.push(r.json.id);
    }
    await waitFor(() => rx.arrivals.length >= 2, { timeoutMs: 20_000, what: "the head to fail twice" });
    const move = await api(mf, "POST", "/api/v1/ops/workspaces/ws_mover/move", { auth: OPS_KEY, body: { to: "DB_2" } });
    assert.equal(move.status, 202, move.text);
    let cronAt = 0;
    await waitFor(async () => {
      if (Date.now() - cronAt > 3_000) { cronAt = Date.now(); await runCron(mf); }
      const job = await api(mf, "GET", `/api/v1/ops/moves/${move.json.job}`, { auth: OPS_KEY });
      assert.notEqual(job.json.state, "failed", JSON.stringify(job.json));
      return job.json.state === "done";
    }, { timeoutMs: 40_000, intervalMs: 200, what: "the move to end" });
    healthy = true;
    await waitFor(async () => {
      if (Date.now() - cronAt > 3_000) { cronAt = Date.now(); await runCron(mf); }
      return (await second.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ?1 AND status = 'success'").bind(hook.id).first()).n === 8;
    }, { timeoutMs: 40_000, intervalMs: 200, what: "the lane to go on in DB_2" });
    assert.equal((await home.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE workspace_id = 'ws_mover'").first()).n, 0, "nothing left in DB");
    const logs = (await second.prepare("SELECT id, event_id FROM delivery_logs WHERE webhook_id = ?1").bind(hook.id).all()).results;
    const eventOf = new Map(logs.map((l) => [l.id, l.event_id]));
    const order = rx.arrivals.filter((a) => a.status === 200).map((a) => eventOf.get(a.id));
    assert.deepEqual(order, events, "each delivered once, in publish order");
    assert.ok(rx.arrivals.filter((a) => a.status !== 200).every((a) => eventOf.get(a.id) === events[0]), "only the head was tried while failing");
    assert.equal(maxInFlight(rx.arrivals, "mover.example.com"), 1);
  } finally {
    await mf.dispose();
  }
});
