// Moving a workspace between shards (SPEC §9.2) with three D1 databases: a workspace of
// 10,000 logs moved under a steady publish load (every event delivered exactly once, reads
// served throughout, writes 503 + Retry-After only during the cut-over, the old shard
// emptied), the old shard's fence refusing a stale writer, a move that fails half-way and
// then succeeds, and the operator API's answers to bad requests.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, api, token, waitFor, sleep, createWebhook, runCron, seedDeliveredLogs, d1 } from "./helpers.mjs";

const SHARDS = ["DB", "DB_2", "DB_3"];
const OPS_KEY = "ops-test-key-0123456789abcdef-012345";
const TABLES = ["webhooks", "events", "delivery_logs"];
const received = [];
let mf;

before(async () => {
  ({ mf } = await startWorker({
    shards: SHARDS,
    bindings: { OPS_API_KEY: OPS_KEY, MOVE_CLEANUP_DELAY_SECONDS: "1", SWEEP_GRACE_SECONDS: "1" },
    receiver: async (request) => {
      const body = JSON.parse(await request.text());
      received.push({ path: new URL(request.url).pathname, event: body.id ?? body.event_id, type: body.type });
      return new Response("ok");
    },
  }));
});
after(async () => mf?.dispose());

const ops = (method, path, body, key = OPS_KEY) => api(mf, method, `/api/v1/ops${path}`, { auth: key, body });
const auth = (workspace) => token({ workspace });
const db = (binding) => d1(mf, binding);
async function rows(binding, sql, ...args) {
  return (await (await db(binding)).prepare(sql).bind(...args).all()).results;
}
async function count(binding, table, workspace) {
  const where = table === "webhook_rollups"
    ? "webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = ?1)"
    : "workspace_id = ?1";
  return (await rows(binding, `SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, workspace))[0].n;
}
const placement = async (ws) => (await ops("GET", `/workspaces/${ws}`)).json;
/**
 * Waits for move `job` to end. The cron runs every 10 s meanwhile, as production's runs
 * every minute (it queues a move whose message went missing); on a timeout the job row
 * is in the error.
 */
async function finished(job, timeoutMs = 120_000) {
  let last;
  let cronAt = Date.now();
  try {
    return await waitFor(async () => {
      const res = await ops("GET", `/moves/${job}`);
      assert.equal(res.status, 200);
      last = res.json;
      if (Date.now() - cronAt > 10_000) {
        cronAt = Date.now();
        await runCron(mf);
      }
      return ["done", "failed"].includes(res.json.state) ? res.json : null;
    }, { timeoutMs, intervalMs: 200, what: `move ${job} finished` });
  } catch (e) {
    e.message += `; the job: ${JSON.stringify(last)}`;
    throw e;
  }
}

test("a workspace of 10,000 logs moves under a steady publish load: each event delivered once, reads throughout, the old shard emptied", async () => {
  const ws = "ws_mv_big";
  const hook = await createWebhook(mf, { url: "https://receiver.example.com/big", events: ["flight.departed"] }, { auth: auth(ws) });
  assert.equal((await placement(ws)).shard, "DB");
  await seedDeliveredLogs(await db("DB"), ws, hook.id, 10_000);

  // A steady publisher: every accepted event must arrive exactly once; a 503 is retried
  // after its Retry-After, as a client would.
  const accepted = [];
  let refused = 0;
  let readsFailed = 0;
  let stop = false;
  const publisher = (async () => {
    for (let i = 0; !stop; i++) {
      const res = await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { n: i } }, auth: auth(ws) });
      if (res.status === 202) accepted.push(res.json.id ?? res.json.event_id ?? res.json.data?.id);
      else {
        assert.equal(res.status, 503, res.text);
        assert.equal(res.headers.get("retry-after"), "1");
        assert.equal(res.json.error.code, "workspace_moving");
        refused++;
        await sleep(1000);
        i--;
        continue;
      }
      const read = await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: auth(ws) });
      if (read.status !== 200) readsFailed++;
      await sleep(40);
    }
  })();
  await sleep(500);
  const started = Date.now();
  const res = await ops("POST", `/workspaces/${ws}/move`, { to: "DB_2" });
  assert.equal(res.status, 202, res.text);
  assert.match(res.json.job, /^mv_[0-9a-f]{24}$/);
  const again = await ops("POST", `/workspaces/${ws}/move`, { to: "DB_3" });
  assert.equal(again.status, 409, "a second move while one runs");
  const running = await placement(ws);
  assert.equal(running.move.job, res.json.job);
  const job = await finished(res.json.job);
  const movedIn = Date.now() - started;
  await sleep(500);
  stop = true;
  await publisher;

  assert.equal(job.state, "done", JSON.stringify(job));
  assert.equal(job.error, null);
  assert.deepEqual([job.from, job.to, job.workspace_id], ["DB", "DB_2", ws]);
  assert.ok(job.copied.delivery_logs >= 10_000 && job.copied.events >= 10_000, JSON.stringify(job.copied));
  assert.ok(job.cutover_ms <= 5_000, `cut-over took ${job.cutover_ms} ms`);
  console.log(`moved 10,000 logs in ${movedIn} ms; cut-over ${job.cutover_ms} ms; ${accepted.length} events published meanwhile, ${refused} 503s`);
  assert.equal(readsFailed, 0, "reads keep working throughout");
  assert.deepEqual(await placement(ws), { workspace_id: ws, shard: "DB_2", move: null });

  // Every event published before, during and after the move arrives exactly once (the
  // cron takes on what was queued for the old shard).
  await waitFor(async () => {
    await runCron(mf);
    const got = new Set(received.filter((r) => r.path === "/big").map((r) => r.event));
    return accepted.every((id) => got.has(id));
  }, { timeoutMs: 60_000, intervalMs: 1_000, what: "every accepted event delivered" });
  await sleep(1500);
  await runCron(mf);
  const arrivals = received.filter((r) => r.path === "/big");
  const perEvent = new Map();
  for (const r of arrivals) perEvent.set(r.event, (perEvent.get(r.event) ?? 0) + 1);
  assert.deepEqual([...perEvent.values()].filter((n) => n > 1), [], "no event delivered twice");
  assert.equal(arrivals.length, accepted.length);

  // All of it is in DB_2, none of it in DB; the API serves it from DB_2.
  for (const table of [...TABLES, "webhook_rollups"]) assert.equal(await count("DB", table, ws), 0, `DB.${table}`);
  assert.equal(await count("DB_2", "delivery_logs", ws), 10_000 + accepted.length);
  assert.equal(await count("DB_2", "webhooks", ws), 1);
  assert.equal(await count("DB_2", "webhook_rollups", ws) > 0, true);
  const pending = await rows("DB_2", "SELECT COUNT(*) AS n FROM delivery_logs WHERE workspace_id = ?1 AND status <> 'success'", ws);
  assert.equal(pending[0].n, 0);
  const logs = await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${hook.id}&limit=5`, { auth: auth(ws) });
  assert.equal(logs.status, 200);
  assert.equal(logs.json.data.length, 5);

  // A stale isolate still believing the workspace lives in DB cannot write there: the old
  // shard's fence refuses it.
  await assert.rejects(
    (await db("DB")).prepare(`INSERT INTO events (id, workspace_id, type, body, source, created_at)
      VALUES ('evt_stale', ?1, 'flight.departed', '{}', 'api', 1)`).bind(ws).run(),
    /workspace_moved/,
  );
  await assert.rejects(
    (await db("DB")).prepare("INSERT INTO webhooks (id, workspace_id, name, url, events, retry_count, timeout_ms, created_at, updated_at) \
      VALUES ('wh_stale', ?1, 'x', 'https://x.example.com', '[]', 3, 1000, 1, 1)").bind(ws).run(),
    /workspace_moved/,
  );
  // Writes through the API go to DB_2.
  const more = await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} }, auth: auth(ws) });
  assert.equal(more.status, 202);
  assert.equal(await count("DB", "events", ws), 0);
});

test("a move that fails half-way leaves the workspace where it was; a second try succeeds", async () => {
  const ws = "ws_mv_fail";
  const hook = await createWebhook(mf, { url: "https://receiver.example.com/fail", events: ["flight.departed"] }, { auth: auth(ws) });
  const from = (await placement(ws)).shard;
  const to = SHARDS.find((s) => s !== from && s !== "DB");
  for (let i = 0; i < 5; i++) {
    assert.equal((await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i } }, auth: auth(ws) })).status, 202);
  }
  await waitFor(() => received.filter((r) => r.path === "/fail").length === 5, { what: "5 deliveries" });
  // The target's log table goes away: the copy fails there (after the webhooks and events).
  await (await db(to)).prepare("ALTER TABLE delivery_logs RENAME TO delivery_logs_offline").run();
  let job;
  try {
    const res = await ops("POST", `/workspaces/${ws}/move`, { to });
    assert.equal(res.status, 202);
    job = await finished(res.json.job);
  } finally {
    await (await db(to)).prepare("ALTER TABLE delivery_logs_offline RENAME TO delivery_logs").run();
  }
  assert.equal(job.state, "failed");
  assert.match(job.error, /delivery_logs/);
  assert.deepEqual(await placement(ws), { workspace_id: ws, shard: from, move: null });
  // Fully working where it was: no fence left, publishing and delivering as before.
  assert.equal((await rows(from, "SELECT COUNT(*) AS n FROM shard_fence WHERE workspace_id = ?1", ws))[0].n, 0);
  assert.equal((await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i: 5 } }, auth: auth(ws) })).status, 202);
  await waitFor(() => received.filter((r) => r.path === "/fail").length === 6, { what: "delivery after the failed move" });
  const put = await api(mf, "PUT", `/api/v1/webhooks/${hook.id}`, { body: { name: "still here" }, auth: auth(ws) });
  assert.equal(put.status, 200);

  // Second try: done, with everything (and the rename made while failed) in the target.
  const res = await ops("POST", `/workspaces/${ws}/move`, { to });
  assert.equal(res.status, 202);
  const second = await finished(res.json.job);
  assert.equal(second.state, "done", JSON.stringify(second));
  assert.equal((await placement(ws)).shard, to);
  assert.equal(await count(to, "delivery_logs", ws), 6);
  assert.equal(await count(to, "events", ws), 6);
  assert.equal((await rows(to, "SELECT name FROM webhooks WHERE id = ?1", hook.id))[0].name, "still here");
  for (const table of TABLES) assert.equal(await count(from, table, ws), 0, `${from}.${table}`);
  const list = await api(mf, "GET", "/api/v1/webhooks/logs", { auth: auth(ws) });
  assert.equal(list.json.data.length, 6);
  // And it works there: a new event is delivered once.
  assert.equal((await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i: 6 } }, auth: auth(ws) })).status, 202);
  await waitFor(() => received.filter((r) => r.path === "/fail").length === 7, { what: "delivery in the new shard" });
});

test("a move whose queue message went missing is started by the cron", async () => {
  const ws = "ws_mv_lost";
  await createWebhook(mf, { url: "https://receiver.example.com/lost" }, { auth: auth(ws) });
  const from = (await placement(ws)).shard;
  const to = SHARDS.find((s) => s !== from);
  // What the move route records before its queue send, the send then lost; two minutes ago.
  const job = "mv_00000000000000000000beef";
  const then = Date.now() - 120_000;
  await (await db("DB")).prepare(`INSERT INTO workspace_moves (job, workspace_id, from_shard, to_shard, state, step, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, 'copying', 'clear', ?5, ?5)`).bind(job, ws, from, to, then).run();
  assert.equal((await ops("POST", `/workspaces/${ws}/move`, { to })).status, 409, "the lost move still counts as under way");
  await sleep(1500);
  assert.equal((await ops("GET", `/moves/${job}`)).json.state, "copying", "nothing runs it until the cron");
  await runCron(mf);
  const done = await finished(job);
  assert.equal(done.state, "done", JSON.stringify(done));
  assert.deepEqual(await placement(ws), { workspace_id: ws, shard: to, move: null });
  assert.equal(await count(to, "webhooks", ws), 1);
  assert.equal(await count(from, "webhooks", ws), 0);
});

test("the move route refuses bad requests and changes nothing", async () => {
  const ws = "ws_mv_bad";
  await createWebhook(mf, { url: "https://receiver.example.com/bad" }, { auth: auth(ws) });
  const home = (await placement(ws)).shard;
  const other = SHARDS.find((s) => s !== home);
  for (const [body, field] of [[{}, "to"], [{ to: home }, "to"], [{ to: "DB_9" }, "to"], [{ to: 3 }, "to"], [{ to: other, now: true }, "now"]]) {
    const res = await ops("POST", `/workspaces/${ws}/move`, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.json.error.code, "validation_error");
    assert.ok(res.json.error.fields[field], JSON.stringify(res.json));
  }
  const raw = await api(mf, "POST", `/api/v1/ops/workspaces/${ws}/move`, { auth: OPS_KEY, raw: "{", headers: { "Content-Type": "application/json" } });
  assert.equal(raw.status, 400);
  assert.equal((await ops("POST", "/workspaces/ws_mv_never/move", { to: other })).status, 404);
  assert.equal((await ops("POST", `/workspaces/${ws}/move`, { to: other }, "wrong-key-0123456789abcdef-0123456789")).status, 401);
  assert.equal((await ops("POST", `/workspaces/${ws}/move`, { to: other }, auth(ws))).status, 401);
  assert.equal((await ops("GET", "/moves/mv_nope")).status, 404);
  assert.equal((await rows("DB", "SELECT COUNT(*) AS n FROM workspace_moves WHERE workspace_id = ?1", ws))[0].n, 0);
  assert.deepEqual(await placement(ws), { workspace_id: ws, shard: home, move: null });
});

test("the move triggers exist only while a move needs them: created with the fence, dropped by the cron an hour after it is gone", async () => {
  // Each trigger costs every write of its table a row read or two (SPEC §9.1): a shard
  // that no move left has none (migration 0014 created them on every shard).
  const triggers = async (binding) =>
    (await rows(binding, "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'move\\_%' ESCAPE '\\'"))[0].n;
  const fences = async (binding) => (await rows(binding, "SELECT COUNT(*) AS n FROM shard_fence"))[0].n;
  await runCron(mf);
  for (const binding of SHARDS) {
    if ((await fences(binding)) === 0) assert.equal(await triggers(binding), 0, `${binding} has no fence, so no move trigger`);
  }
  const ws = "ws_mv_triggers";
  await createWebhook(mf, { url: "https://receiver.example.com/triggers" }, { auth: auth(ws) });
  const from = (await placement(ws)).shard;
  const to = SHARDS.find((s) => s !== from);
  const started = await ops("POST", `/workspaces/${ws}/move`, { to });
  assert.equal(started.status, 202, started.text);
  assert.equal((await finished(started.json.job)).state, "done");
  assert.equal(await triggers(from), 12, "kept after the move, for stale writers");
  await runCron(mf);
  assert.equal(await triggers(from), 12, "still within the hour after the fence went");
  // An hour later (every fence of that shard aged): the cron drops them.
  await (await db(from)).prepare("UPDATE shard_fence SET gone_at = ?1 WHERE state = 'gone'").bind(Date.now() - 2 * 3_600_000).run();
  await runCron(mf);
  assert.equal(await triggers(from), 0);
  // A delivery of another workspace in that shard still works without them.
  const other = "ws_mv_after_triggers";
  const hook = await createWebhook(mf, { url: "https://receiver.example.com/after-triggers" }, { auth: auth(other) });
  const res = await api(mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} }, auth: auth(other) });
  assert.equal(res.status, 202);
  await waitFor(() => received.some((r) => r.path === "/after-triggers"), { what: "the delivery after the triggers went" });
  assert.ok(hook.id);
});
