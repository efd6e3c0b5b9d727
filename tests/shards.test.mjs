// Shards (SPEC §9.2) with three D1 databases: placement at first write, isolation, every
// delivery path (queue, direct send, retries, redelivery, recovery) against the right
// shard, the cron sweeping each shard, inbound invoice.paid into the workspace's shard,
// messages from before shards, and the operator API.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorker, api, token, waitFor, sleep, createWebhook, runCron, d1, queueProducer } from "./helpers.mjs";
import { stripeEvent, postStripe, paymentIntent, uid } from "./stripe.mjs";

const SHARDS = ["DB", "DB_2", "DB_3"];
const OPS_KEY = "ops-test-key-0123456789abcdef-012345";
const ops = (path, key = OPS_KEY) => api(mf, "GET", `/api/v1/ops${path}`, { auth: key });

const received = [];
const failFirst = new Set();
let mf;

before(async () => {
  ({ mf } = await startWorker({
    shards: SHARDS,
    bindings: { OPS_API_KEY: OPS_KEY },
    receiver: async (request) => {
      const path = new URL(request.url).pathname;
      const body = await request.text();
      received.push({ path, body: JSON.parse(body), id: request.headers.get("webhook-id") });
      if (failFirst.delete(path)) return new Response("try later", { status: 503 });
      return new Response("ok");
    },
  }));
});
after(async () => mf?.dispose());

const shardDb = (binding) => d1(mf, binding);
const auth = (workspace) => token({ workspace });
const arrivals = (path) => received.filter((r) => r.path === path);
async function rowsIn(binding, sql, ...args) {
  return (await (await shardDb(binding)).prepare(sql).bind(...args).all()).results;
}
async function whereIs(table, column, value) {
  const found = [];
  for (const b of SHARDS) {
    const rows = await rowsIn(b, `SELECT 1 FROM ${table} WHERE ${column} = ?1`, value);
    if (rows.length) found.push(b);
  }
  return found;
}
const hookIn = (workspace, path, events = ["flight.departed"], extra = {}) =>
  createWebhook(mf, { url: `https://receiver.example.com${path}`, events, ...extra }, { auth: auth(workspace) });
const publish = (workspace, type = "flight.departed", data = { flight_id: uid() }) =>
  api(mf, "POST", "/api/v1/events", { body: { type, data }, auth: auth(workspace) });
const logsOf = async (workspace, webhookId) =>
  (await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${webhookId}`, { auth: auth(workspace) })).json.data;

// Four workspaces written in this order: the placement rule puts them in DB, DB_2, DB_3, DB.
const WS = ["ws_sh_a", "ws_sh_b", "ws_sh_c", "ws_sh_d"];
const hooks = {};

test("placement: each new workspace goes to the shard with the fewest, ties to the first listed", async () => {
  for (const ws of WS) hooks[ws] = await hookIn(ws, `/${ws}`);
  const placed = [];
  for (const ws of WS) {
    const res = await ops(`/workspaces/${ws}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { workspace_id: ws, shard: res.json.shard, move: null });
    placed.push(res.json.shard);
  }
  assert.deepEqual(placed, ["DB", "DB_2", "DB_3", "DB"]);
  // The workspace's rows are in its shard and nowhere else; the directory only in DB.
  for (const [i, ws] of WS.entries()) {
    assert.deepEqual(await whereIs("webhooks", "workspace_id", ws), [placed[i]], ws);
  }
  assert.equal((await rowsIn("DB", "SELECT COUNT(*) AS n FROM workspace_shards WHERE workspace_id LIKE 'ws_sh_%'"))[0].n, 4);
  for (const b of ["DB_2", "DB_3"]) assert.equal((await rowsIn(b, "SELECT COUNT(*) AS n FROM workspace_shards"))[0].n, 0);
  // A read places nothing.
  const read = await api(mf, "GET", "/api/v1/webhooks", { auth: auth("ws_sh_never") });
  assert.equal(read.status, 200);
  assert.deepEqual(read.json.data, []);
  assert.equal((await ops("/workspaces/ws_sh_never")).status, 404);
});

test("isolation: a workspace never sees another shard's (or workspace's) rows", async () => {
  const b = hooks.ws_sh_b;
  const list = await api(mf, "GET", "/api/v1/webhooks", { auth: auth("ws_sh_c") });
  assert.deepEqual(list.json.data.map((w) => w.id), [hooks.ws_sh_c.id]);
  for (const ws of ["ws_sh_a", "ws_sh_c", "ws_sh_d"]) {
    assert.equal((await api(mf, "GET", `/api/v1/webhooks/${b.id}`, { auth: auth(ws) })).status, 404, ws);
    assert.equal((await api(mf, "DELETE", `/api/v1/webhooks/${b.id}`, { auth: auth(ws) })).status, 404, ws);
  }
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${b.id}`, { auth: auth("ws_sh_b") })).status, 200);
});

test("queue path and direct send deliver from a non-DB shard; logs stay in it", async () => {
  // ws_sh_b (DB_2): 8 subscribers is more than DIRECT_SEND_MAX (queue); ws_sh_c (DB_3): 1 (direct).
  const extra = [];
  for (let i = 0; i < 7; i++) extra.push(await hookIn("ws_sh_b", `/ws_sh_b/${i}`));
  const queued = await publish("ws_sh_b");
  assert.equal(queued.status, 202);
  assert.equal(queued.json.deliveries, 8);
  const direct = await publish("ws_sh_c");
  assert.equal(direct.json.deliveries, 1);
  await waitFor(() => received.filter((r) => r.body.id === queued.json.id).length === 8, { what: "8 deliveries from DB_2" });
  await waitFor(() => received.some((r) => r.body.id === direct.json.id), { what: "direct delivery from DB_3" });
  for (const [ws, event, shard] of [["ws_sh_b", queued.json.id, "DB_2"], ["ws_sh_c", direct.json.id, "DB_3"]]) {
    assert.deepEqual(await whereIs("events", "id", event), [shard]);
    const logs = await rowsIn(shard, "SELECT status FROM delivery_logs WHERE event_id = ?1", event);
    assert.ok(logs.length > 0 && logs.every((l) => l.status === "success"), `${ws}: ${JSON.stringify(logs)}`);
    assert.deepEqual(await whereIs("delivery_logs", "event_id", event), [shard]);
  }
  const logs = await logsOf("ws_sh_b", extra[0].id);
  assert.equal(logs.length, 1);
  assert.equal(logs[0].status, "success");
});

test("a retry comes back to its shard; redelivery and recovery work there", async () => {
  const ws = "ws_sh_c"; // DB_3
  const hook = await hookIn(ws, "/ws_sh_c/retry");
  failFirst.add("/ws_sh_c/retry");
  const ev = await publish(ws);
  await waitFor(async () => (await logsOf(ws, hook.id))[0]?.status === "success", { what: "success after a retry", timeoutMs: 20000 });
  const [log] = await logsOf(ws, hook.id);
  assert.equal(log.attempts, 2);
  assert.equal(arrivals("/ws_sh_c/retry").length, 2);
  assert.deepEqual(await whereIs("delivery_logs", "event_id", ev.json.id), ["DB_3"]);

  const again = await api(mf, "POST", `/api/v1/webhooks/logs/${log.id}/redeliver`, { auth: auth(ws) });
  assert.equal(again.status, 202, again.text);
  await waitFor(() => arrivals("/ws_sh_c/retry").length === 3, { what: "redelivery" });
  assert.deepEqual(await whereIs("delivery_logs", "redelivery_of", log.id), ["DB_3"]);

  // A failed delivery, then recovered: the recovery's chunk message names DB_3.
  const dead = await hookIn(ws, "/ws_sh_c/dead", ["flight.departed"], { retry_count: 0 });
  failFirst.add("/ws_sh_c/dead");
  await publish(ws);
  await waitFor(async () => (await logsOf(ws, dead.id))[0]?.status === "failed", { what: "failed delivery" });
  const since = new Date(Date.now() - 60_000).toISOString();
  const rec = await api(mf, "POST", `/api/v1/webhooks/${dead.id}/recover`, { body: { since }, auth: auth(ws) });
  assert.equal(rec.status, 202, rec.text);
  assert.equal(rec.json.recovering, 1);
  await waitFor(async () => (await logsOf(ws, dead.id)).some((l) => l.redelivery_of && l.status === "success"), { what: "recovered" });
  assert.equal(arrivals("/ws_sh_c/dead").length, 2);
});

test("the cron sweeps every shard: deliveries left pending in two shards are all sent once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "shards-cron-"));
  const got = [];
  const receiver = async (request) => { got.push(new URL(request.url).pathname); return new Response("ok"); };
  // No queue and no direct send: publishing leaves the logs pending (a failed queue send).
  const bindings = { DIRECT_SEND_MAX: "0" };
  try {
    let w = await startWorker({ shards: SHARDS, persist: dir, queue: false, bindings, receiver });
    for (const ws of ["ws_cron_a", "ws_cron_b", "ws_cron_c"]) {
      await createWebhook(w.mf, { url: `https://receiver.example.com/${ws}` }, { auth: auth(ws) });
      const res = await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} }, auth: auth(ws) });
      assert.equal(res.status, 202);
    }
    const pendingIn = async (mfi, b) =>
      (await d1(mfi, b).prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first()).n;
    assert.deepEqual(await Promise.all(SHARDS.map((b) => pendingIn(w.mf, b))), [1, 1, 1]);
    await w.mf.dispose();
    w = await startWorker({ shards: SHARDS, persist: dir, bindings, receiver });
    try {
      await runCron(w.mf);
      await waitFor(() => got.length === 3, { what: "three swept deliveries" });
      await sleep(1000);
      assert.deepEqual(got.sort(), ["/ws_cron_a", "/ws_cron_b", "/ws_cron_c"]);
      assert.deepEqual(await Promise.all(SHARDS.map((b) => pendingIn(w.mf, b))), [0, 0, 0]);
    } finally {
      await w.mf.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a queue message from before shards (no `shard`) is delivered from DB", async () => {
  const w = await startWorker({ shards: SHARDS, bindings: { DIRECT_SEND_MAX: "0" }, queue: true, receiver: async () => new Response("ok") });
  try {
    // ws_old is the first workspace of this instance: placed in DB.
    const hook = await createWebhook(w.mf, {}, { auth: auth("ws_old") });
    const db = d1(w.mf, "DB");
    // Its delivery went out; made due again, it is named by a message in the form queued
    // before shards ({log_id}, no shard): the consumer finds it in DB and sends attempt 2.
    await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} }, auth: auth("ws_old") });
    await waitFor(async () => (await db.prepare("SELECT status FROM delivery_logs WHERE webhook_id = ?1").bind(hook.id).first())?.status === "success",
      { what: "first delivery" });
    const { id } = await db.prepare("SELECT id FROM delivery_logs WHERE webhook_id = ?1").bind(hook.id).first();
    await db.prepare("UPDATE delivery_logs SET status = 'pending', next_attempt_at = 0 WHERE id = ?1").bind(id).run();
    const producer = queueProducer(w.mf);
    await producer.send({ log_id: id });
    await waitFor(async () => (await db.prepare("SELECT status, attempts FROM delivery_logs WHERE id = ?1").bind(id).first()).attempts === 2,
      { what: "legacy message handled in DB" });
  } finally {
    await w.mf.dispose();
  }
});

test("inbound invoice.paid is published into the workspace's shard, once", async () => {
  const ws = "ws_sh_b"; // DB_2
  await hookIn(ws, "/ws_sh_b/billing", ["invoice.paid"]);
  const invoice = `inv_${uid()}`;
  const pi = paymentIntent({ amount: 4200, metadata: { invoice_id: invoice, workspace_id: ws } });
  const res = await postStripe(mf, stripeEvent("payment_intent.succeeded", pi));
  assert.equal(res.status, 200, res.text);
  await waitFor(() => arrivals("/ws_sh_b/billing").length === 1, { what: "invoice.paid delivery" });
  const [paid] = arrivals("/ws_sh_b/billing");
  assert.equal(paid.body.type, "invoice.paid");
  assert.deepEqual(Object.keys(paid.body.data), ["invoice_id", "status", "amount_paid", "currency", "paid_at", "payment_provider",
    "stripe_checkout_session_id", "stripe_payment_intent_id"]);
  assert.equal(paid.body.data.invoice_id, invoice);
  assert.equal(paid.body.data.amount_paid, 4200);
  assert.equal(paid.body.data.stripe_payment_intent_id, pi.id);
  assert.match(paid.body.data.paid_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(await whereIs("events", "id", paid.body.id), ["DB_2"]);
  const [row] = await rowsIn("DB", "SELECT paid_event_status, paid_event_id FROM invoices WHERE id = ?1", invoice);
  assert.deepEqual(row, { paid_event_status: "published", paid_event_id: paid.body.id });
  // The same payment again (Stripe retries, or a second event for the invoice): no second event.
  assert.equal((await postStripe(mf, stripeEvent("payment_intent.succeeded", pi))).status, 200);
  await sleep(1500);
  assert.equal(arrivals("/ws_sh_b/billing").length, 1);
});

test("invoice.paid whose shard failed at the time is published by the cron, once", async () => {
  const ws = "ws_sh_c"; // DB_3
  await hookIn(ws, "/ws_sh_c/billing", ["invoice.paid"]);
  const invoice = `inv_${uid()}`;
  const pi = paymentIntent({ amount: 900, metadata: { invoice_id: invoice, workspace_id: ws } });
  const shard3 = await shardDb("DB_3");
  await shard3.prepare("ALTER TABLE events RENAME TO events_offline").run();
  let res;
  try {
    res = await postStripe(mf, stripeEvent("payment_intent.succeeded", pi));
  } finally {
    await shard3.prepare("ALTER TABLE events_offline RENAME TO events").run();
  }
  assert.equal(res.status, 500, "the shard failed: the provider is asked to retry");
  const [row] = await rowsIn("DB", "SELECT status, paid_event_status FROM invoices WHERE id = ?1", invoice);
  assert.deepEqual(row, { status: "paid", paid_event_status: "pending" });
  await sleep(1000);
  assert.equal(arrivals("/ws_sh_c/billing").length, 0);
  // Older than the cron's wait for a request to finish: the cron takes it up.
  await (await shardDb("DB")).prepare("UPDATE invoices SET updated_at = updated_at - 120000 WHERE id = ?1").bind(invoice).run();
  await runCron(mf);
  await waitFor(() => arrivals("/ws_sh_c/billing").length === 1, { what: "invoice.paid from the cron" });
  assert.equal(arrivals("/ws_sh_c/billing")[0].body.data.invoice_id, invoice);
  // Put back to pending (as if the mark had been lost): the cron's relay finds the event by
  // its key and publishes nothing new.
  await (await shardDb("DB")).prepare("UPDATE invoices SET paid_event_status = 'pending', updated_at = updated_at - 120000 WHERE id = ?1")
    .bind(invoice).run();
  await runCron(mf);
  await sleep(1500);
  assert.equal(arrivals("/ws_sh_c/billing").length, 1);
  assert.equal((await rowsIn("DB", "SELECT paid_event_status FROM invoices WHERE id = ?1", invoice))[0].paid_event_status, "published");
});

test("operator API: shard figures; only OPS_API_KEY opens it", async () => {
  const res = await ops("/shards");
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.data.map((s) => s.binding), SHARDS);
  const byBinding = Object.fromEntries(res.json.data.map((s) => [s.binding, s]));
  assert.equal(byBinding.DB.workspaces, 2);
  assert.equal(byBinding.DB_2.workspaces, 1);
  assert.equal(byBinding.DB_3.workspaces, 1);
  for (const b of SHARDS) {
    const n = (await rowsIn(b, "SELECT COUNT(*) AS n FROM webhooks"))[0].n;
    const logs = (await rowsIn(b, "SELECT COUNT(*) AS n FROM delivery_logs"))[0].n;
    assert.equal(byBinding[b].webhooks, n, b);
    assert.equal(byBinding[b].logs, logs, b);
    assert.ok(byBinding[b].size_bytes === null || byBinding[b].size_bytes > 0, b);
  }
  assert.ok(byBinding.DB_2.logs >= 8);

  for (const key of [null, "wrong-key-0123456789abcdef-0123456789", OPS_KEY.slice(0, -1), token({ workspace: "ws_sh_a" })]) {
    const refused = await ops("/shards", key);
    assert.equal(refused.status, 401, `key ${key}`);
    assert.equal(refused.json.error.code, "unauthorized");
  }
  assert.equal((await api(mf, "POST", "/api/v1/ops/shards", { auth: OPS_KEY })).status, 405);
});

test("operator API is absent (404) without a usable OPS_API_KEY", async () => {
  for (const bindings of [{}, { OPS_API_KEY: "too-short-key" }]) {
    const w = await startWorker({ bindings });
    try {
      for (const path of ["/api/v1/ops/shards", "/api/v1/ops/workspaces/ws_a"]) {
        const res = await api(w.mf, "GET", path, { auth: "too-short-key" });
        assert.equal(res.status, 404, `${JSON.stringify(bindings)} ${path}`);
      }
    } finally {
      await w.mf.dispose();
    }
  }
});

test("an unusable SHARDS answers 500 on outbound routes and never writes anywhere", async () => {
  const w = await startWorker({ shards: SHARDS, bindings: { SHARDS: "DB,DB_2,DB_2" } });
  try {
    const res = await api(w.mf, "POST", "/api/v1/webhooks", { body: { name: "x", url: "https://receiver.example.com/x", events: ["flight.departed"] } });
    assert.equal(res.status, 500);
    for (const b of SHARDS) {
      const n = await d1(w.mf, b).prepare("SELECT (SELECT COUNT(*) FROM webhooks) + (SELECT COUNT(*) FROM workspace_shards) AS n").first();
      assert.equal(n.n, 0, b);
    }
  } finally {
    await w.mf.dispose();
  }
});
