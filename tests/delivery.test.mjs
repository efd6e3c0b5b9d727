// Delivery engine (SPEC §4.4–4.7): publish, fan-out through the queue, signed deliveries,
// timeouts, retries, redirects, 429/410, duplicates, cron recovery, test and redeliver.
// `outboundService` plays every receiver; each webhook URL path picks a behaviour.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorker, api, token, createWebhook, waitFor, sleep, runCron, queueProducer, workerOf } from "./helpers.mjs";

/** Received requests by path, and per-path behaviour. */
const received = new Map();
const behaviours = new Map();
let mf, db;

async function receiver(request) {
  const url = new URL(request.url);
  const body = await request.text();
  const entry = { at: Date.now(), url: request.url, method: request.method, headers: Object.fromEntries(request.headers), body };
  if (!received.has(url.pathname)) received.set(url.pathname, []);
  received.get(url.pathname).push(entry);
  const behave = behaviours.get(url.pathname);
  if (behave) return behave(entry, received.get(url.pathname).length);
  return new Response("thanks", { status: 200 });
}

before(async () => ({ mf, db } = await startWorker({ receiver })));
after(async () => mf?.dispose());

let counter = 0;
/** A webhook whose receiver behaves as `behave(entry, n)` (n = 1 for the first request). */
async function hook(behave, overrides = {}, ws) {
  const path = `/r${++counter}`;
  if (behave) behaviours.set(path, behave);
  const w = await createWebhook(mf, { url: `https://receiver.example.com${path}`, events: ["flight.departed"], ...overrides },
    ws ? { auth: token({ workspace: ws }) } : {});
  return { ...w, path };
}

const publish = (body, auth) => api(mf, "POST", "/api/v1/events", { body, ...(auth ? { auth } : {}) });
const logsOf = async (webhookId, auth) => (await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${webhookId}`, auth ? { auth } : {})).json.data;
const logDetail = async (logId) => (await api(mf, "GET", `/api/v1/webhooks/logs/${logId}`)).json;
const finalLog = (webhookId, auth) =>
  waitFor(async () => {
    const logs = await logsOf(webhookId, auth);
    return logs.length && logs.every((l) => l.status !== "pending") ? logs : null;
  }, { what: `final log of ${webhookId}`, timeoutMs: 20000 });

// The seed's verification snippet, verbatim.
const crypto = { createHmac };
function verifyWebhook(payload, signature, secret) {
  const expected = crypto.createHmac("sha256", secret).update(payload).digest("hex");
  return `sha256=${expected}` === signature;
}

test("a delivery carries the exact headers and body, and the seed snippet verifies it", async () => {
  const secret = "whsec_your_signing_secret_abc";
  const w = await hook(null, { secret, headers: { "X-Tenant": "fbo-42", Authorization: "Bearer receiver-token" } });
  const data = { flight: "N123AB", departure: "KJFK", nested: { z: 1, a: [1, 2, "ü"] } };
  const res = await publish({ type: "flight.departed", data });
  assert.equal(res.status, 202);
  assert.match(res.json.id, /^evt_/);
  assert.equal(res.json.deliveries, 1);
  const [got] = await waitFor(() => received.get(w.path), { what: "delivery" });
  assert.equal(got.method, "POST");
  const body = JSON.parse(got.body);
  assert.deepEqual(Object.keys(body), ["id", "type", "created_at", "data"]);
  assert.equal(body.id, res.json.id);
  assert.equal(body.type, "flight.departed");
  assert.deepEqual(body.data, data);
  assert.match(body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const h = got.headers;
  assert.equal(h["content-type"], "application/json");
  assert.equal(h["x-webhook-event"], "flight.departed");
  assert.equal(h["x-webhook-id"], w.id);
  assert.match(h["x-webhook-delivery"], /^dlv_[0-9a-f]{32}$/); // time, the event's fan-out, the delivery
  assert.ok(Math.abs(Date.parse(h["x-webhook-timestamp"]) - Date.now()) < 60_000);
  assert.match(h["user-agent"], /PlaneConnection/);
  assert.equal(h["x-tenant"], "fbo-42");
  assert.equal(h.authorization, "Bearer receiver-token");
  assert.ok(verifyWebhook(got.body, h["x-webhook-signature"], secret), "seed snippet accepts the signature");
  assert.ok(!verifyWebhook(got.body + " ", h["x-webhook-signature"], secret));
  // Standard Webhooks headers too (SPEC §8.2); a non-whsec key is the secret's UTF-8 bytes.
  assert.equal(h["webhook-id"], h["x-webhook-delivery"]);
  assert.ok(Math.abs(Number(h["webhook-timestamp"]) * 1000 - Date.parse(h["x-webhook-timestamp"])) < 1000);
  const signed = `${h["webhook-id"]}.${h["webhook-timestamp"]}.${got.body}`;
  assert.equal(h["webhook-signature"], "v1," + createHmac("sha256", secret).update(signed).digest("base64"));
  const [log] = await finalLog(w.id);
  assert.equal(log.status, "success");
  assert.equal(log.attempts, 1);
  assert.equal(log.response_status, 200);
  assert.equal(log.response_body, "thanks");
  assert.equal(log.id, h["x-webhook-delivery"]);
  assert.equal(log.payload, undefined, "lists leave the payload out");
  const detail = await logDetail(log.id);
  assert.equal(JSON.stringify(detail.payload), JSON.stringify(body), "the detail keeps the payload that was sent");
});

test("a webhook created without a secret gets one, and every delivery is signed with it", async () => {
  const w = await hook(null);
  assert.match(w.secret, /^whsec_/);
  await publish({ type: "flight.departed", data: {} });
  const [got] = await waitFor(() => received.get(w.path), { what: "delivery" });
  assert.ok(verifyWebhook(got.body, got.headers["x-webhook-signature"], w.secret));
  const key = Buffer.from(w.secret.slice("whsec_".length), "base64");
  const signed = `${got.headers["webhook-id"]}.${got.headers["webhook-timestamp"]}.${got.body}`;
  assert.equal(got.headers["webhook-signature"], "v1," + createHmac("sha256", key).update(signed).digest("base64"));
  assert.equal(got.headers["x-webhook-signature-previous"], undefined, "no previous secret, no header");
});

test("payloads up to 256 KB are delivered byte for byte (queue messages carry ids only)", async () => {
  const w = await hook(null, { events: ["maintenance.due"], secret: "0123456789abcdef" }, "ws_big");
  const data = { blob: "x".repeat(250 * 1024), key_order: { b: 1, a: 2 } };
  const res = await publish({ type: "maintenance.due", data }, token({ workspace: "ws_big" }));
  assert.equal(res.status, 202);
  const [got] = await waitFor(() => received.get(w.path), { what: "big delivery" });
  assert.ok(got.body.length > 250 * 1024);
  assert.ok(got.body.includes('"key_order":{"b":1,"a":2}'), "data embedded verbatim");
  assert.ok(verifyWebhook(got.body, got.headers["x-webhook-signature"], "0123456789abcdef"));
  const tooBig = await publish({ type: "maintenance.due", data: { blob: "x".repeat(262 * 1024) } }, token({ workspace: "ws_big" }));
  assert.equal(tooBig.status, 413);
});

test("fan-out: 1 event to 50 webhooks with mixed subscriptions and active flags", async () => {
  const ws = "ws_fanout";
  const auth = token({ workspace: ws });
  const expected = new Set();
  const all = [];
  for (let i = 0; i < 50; i++) {
    const subscribed = i % 3 !== 0;
    const active = i % 5 !== 0;
    const w = await hook(null, { events: subscribed ? ["invoice.paid", "flight.arrived"] : ["flight.arrived"], active }, ws);
    all.push(w);
    if (subscribed && active) expected.add(w.path);
  }
  const res = await publish({ type: "invoice.paid", data: { invoice: "inv_1" } }, auth);
  assert.equal(res.json.deliveries, expected.size);
  await waitFor(() => [...expected].every((p) => received.get(p)?.length), { what: "all fan-out deliveries" });
  await sleep(1500);
  for (const w of all) {
    const n = received.get(w.path)?.length ?? 0;
    assert.equal(n, expected.has(w.path) ? 1 : 0, `${w.path} got ${n}`);
  }
  const rows = await db.prepare("SELECT COUNT(*) AS n, SUM(status = 'success') AS ok FROM delivery_logs WHERE event_id = ?").bind(res.json.id).first();
  assert.equal(rows.n, expected.size);
  assert.equal(rows.ok, expected.size);
});

test("500 then 200: success on attempt 2, both attempts recorded", async () => {
  const w = await hook((_, n) => new Response("oops", { status: n === 1 ? 500 : 200 }));
  await publish({ type: "flight.departed", data: {} });
  const [log] = await finalLog(w.id);
  assert.equal(log.status, "success");
  assert.equal(log.attempts, 2);
  assert.deepEqual((await logDetail(log.id)).attempt_history.map((a) => [a.response_status, a.response_body]), [[500, "oops"], [200, "oops"]]);
  assert.equal(received.get(w.path).length, 2);
  const ids = received.get(w.path).map((r) => r.headers["x-webhook-delivery"]);
  assert.equal(ids[0], ids[1], "the delivery id is the same on every retry");
  const [first, second] = received.get(w.path);
  assert.equal(first.headers["webhook-id"], second.headers["webhook-id"], "webhook-id too");
  assert.ok(Number(second.headers["webhook-timestamp"]) >= Number(first.headers["webhook-timestamp"]), "each attempt's own time");
});

test("the log keeps the answer's first 2 KiB: small, exactly 2 KiB, larger, streamed without a length, empty", async () => {
  const cases = [
    ["short", () => new Response("short", { status: 200 }), "short"],
    ["exactly 2 KiB", () => new Response("x".repeat(2048), { status: 200 }), "x".repeat(2048)],
    ["larger", () => new Response("é".repeat(1500) + "tail", { status: 200 }), Buffer.from("é".repeat(1500)).subarray(0, 2048).toString("utf8")],
    ["streamed", () => new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("chunk one, ")); c.enqueue(new TextEncoder().encode("chunk two")); c.close(); } }), { status: 200 }), "chunk one, chunk two"],
    ["empty", () => new Response(null, { status: 204 }), null],
  ];
  const hooks = [];
  for (const [name, answer, want] of cases) hooks.push([name, await hook(() => answer()), want]);
  await publish({ type: "flight.departed", data: {} });
  for (const [name, w, want] of hooks) {
    const [log] = await finalLog(w.id);
    assert.equal(log.status, "success", name);
    const body = (await logDetail(log.id)).attempt_history[0].response_body;
    assert.equal(body || null, want, name);
  }
});

test("always 500: retry_count 0 → 1 attempt, retry_count 2 → 3 attempts, then failed", async () => {
  const fail = () => new Response("down", { status: 500 });
  const w0 = await hook(fail, { retry_count: 0 });
  const w2 = await hook(fail, { retry_count: 2 });
  await publish({ type: "flight.departed", data: {} });
  const [l0] = await finalLog(w0.id);
  const [l2] = await finalLog(w2.id);
  assert.equal(l0.status, "failed");
  assert.equal(l0.attempts, 1);
  assert.equal(l0.max_attempts, 1);
  assert.equal(l2.status, "failed");
  assert.equal(l2.attempts, 3);
  assert.equal((await logDetail(l2.id)).attempt_history.length, 3);
  assert.equal(l2.response_status, 500);
  assert.equal(l2.response_body, "down");
  assert.match(l2.error, /500/);
  await sleep(2500);
  assert.equal(received.get(w0.path).length, 1);
  assert.equal(received.get(w2.path).length, 3, "no send after the last attempt");
});

test("a receiver slower than timeout_ms is a timed-out attempt", async () => {
  const w = await hook(async () => { await sleep(3000); return new Response("late"); }, { timeout_ms: 1000, retry_count: 0 });
  await publish({ type: "flight.departed", data: {} });
  const [log] = await finalLog(w.id);
  assert.equal(log.status, "failed");
  assert.match(log.error, /timed out after 1000 ms/);
  assert.equal(log.response_status, null);
  assert.ok(log.duration_ms >= 900 && log.duration_ms < 2900, `duration ${log.duration_ms}`);
});

test("a connection reset by the receiver is a failed network attempt", async () => {
  // A real TCP peer that drops every connection: workerd sees a network error, not a status.
  let hits = 0;
  const server = http.createServer((req) => { hits++; req.socket.destroy(); });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const resetting = await startWorker({ outbound: { external: { address: `127.0.0.1:${server.address().port}`, http: {} } } });
  try {
    const w = await createWebhook(resetting.mf, { retry_count: 1 });
    await api(resetting.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} } });
    const log = await waitFor(async () => {
      const [l] = (await api(resetting.mf, "GET", `/api/v1/webhooks/logs?webhook_id=${w.id}`)).json.data;
      return l?.status !== "pending" && l;
    }, { what: "reset delivery to fail" });
    assert.equal(log.status, "failed");
    assert.equal(log.attempts, 2);
    assert.equal(log.response_status, null);
    assert.match(log.error, /network error/);
    assert.equal(hits, 2);
  } finally {
    await resetting.mf.dispose();
    server.close();
  }
});

test("301/302/307 are failed attempts and never followed", async () => {
  for (const status of [301, 302, 307]) {
    const target = `/redirect-target-${status}`;
    const w = await hook(() => new Response(null, { status, headers: { Location: `https://receiver.example.com${target}` } }), { retry_count: 0 });
    await publish({ type: "flight.departed", data: {} });
    const [log] = await finalLog(w.id);
    assert.equal(log.status, "failed", `${status}`);
    assert.equal(log.response_status, status);
    assert.match(log.error, /redirects are not followed/);
    assert.equal(received.get(target), undefined, `${status} was followed`);
  }
});

test("429 with Retry-After is retried after the given delay", async () => {
  const w = await hook((_, n) => (n === 1 ? new Response("slow down", { status: 429, headers: { "Retry-After": "2" } }) : new Response("ok")));
  await publish({ type: "flight.departed", data: {} });
  const [log] = await finalLog(w.id);
  assert.equal(log.status, "success");
  assert.equal(log.attempts, 2);
  const [first, second] = received.get(w.path);
  assert.ok(second.at - first.at >= 1800, `retried after ${second.at - first.at} ms`);
});

test("410 Gone disables the webhook and stops retrying", async () => {
  const w = await hook(() => new Response("gone", { status: 410 }), { retry_count: 3 });
  await publish({ type: "flight.departed", data: {} });
  const [log] = await finalLog(w.id);
  assert.equal(log.status, "failed");
  assert.equal(log.attempts, 1);
  const after = await api(mf, "GET", `/api/v1/webhooks/${w.id}`);
  assert.equal(after.json.active, false);
  assert.match(after.json.disabled_reason, /410/);
  const again = await publish({ type: "flight.departed", data: {} });
  assert.ok(again.status === 202);
  await sleep(1500);
  assert.equal(received.get(w.path).length, 1, "a disabled webhook gets nothing new");
  const back = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { active: true } });
  assert.equal(back.json.disabled_reason, null, "re-activating clears the reason");
});

test("webhook deactivated or deleted while a delivery is queued: nothing is sent", async () => {
  // Hold the first attempt with a 500 so the retry is queued, then change the webhook.
  const deact = await hook(() => new Response("no", { status: 500 }), { retry_count: 3 });
  const gone = await hook(() => new Response("no", { status: 500 }), { retry_count: 3 });
  await publish({ type: "flight.departed", data: {} });
  await waitFor(() => received.get(deact.path)?.length && received.get(gone.path)?.length, { what: "first attempts" });
  await api(mf, "PUT", `/api/v1/webhooks/${deact.id}`, { body: { active: false } });
  assert.equal((await api(mf, "DELETE", `/api/v1/webhooks/${gone.id}`)).status, 204);
  const [log] = await finalLog(deact.id);
  assert.equal(log.status, "failed");
  assert.match(log.error, /deactivated/);
  await sleep(2500);
  assert.equal(received.get(deact.path).length, 1);
  assert.equal(received.get(gone.path).length, 1);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ?").bind(gone.id).first()).n, 0);
});

test("the same queue message delivered twice sends once and logs once", async () => {
  const w = await hook(async () => { await sleep(300); return new Response("ok"); });
  const res = await publish({ type: "flight.departed", data: {} });
  const { id: logId } = await db.prepare("SELECT id FROM delivery_logs WHERE event_id = ?").bind(res.json.id).first();
  const producer = queueProducer(mf);
  // Two extra copies while the first is in flight, and two after it finished.
  await producer.send({ log_id: logId });
  await producer.send({ log_id: logId });
  await finalLog(w.id);
  await producer.sendBatch([{ body: { log_id: logId } }, { body: { log_id: logId } }]);
  await sleep(2500);
  assert.equal(received.get(w.path).length, 1);
  const [log] = await logsOf(w.id);
  assert.equal(log.attempts, 1);
  assert.equal((await logDetail(log.id)).attempt_history.length, 1);
  assert.equal(log.status, "success");
});

test("a message whose event hint is wrong still delivers the right body (read apart), never an empty one", async () => {
  // Fan-out messages name their event so the consumer reads its body by id (SPEC §9.1);
  // a hint that leaves the delivery's event out must cost a round trip, not the payload.
  const w = await hook(null, {}, "ws_hint");
  const now = Date.now();
  const body = JSON.stringify({ id: "evt_hint_real", type: "flight.departed", created_at: new Date(now).toISOString(), data: { tail: "N42PC" } });
  const logId = `dlv_${now.toString(16).padStart(12, "0")}00000000a1b2`;
  await db.batch([
    db.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES ('evt_hint_real', 'ws_hint', 'flight.departed', ?1, 'api', ?2)").bind(body, now),
    db.prepare(`INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at)
      VALUES (?1, 'ws_hint', ?2, 'evt_hint_real', 'flight.departed', 'pending', 0, 3, ?3, ?3)`).bind(logId, w.id, now),
  ]);
  const shard = (await db.prepare("SELECT shard FROM workspace_shards WHERE workspace_id = 'ws_hint'").first())?.shard ?? "DB";
  await queueProducer(mf).send({ shard, log_id: logId, event: "evt_hint_wrong" });
  const [log] = await finalLog(w.id, token({ workspace: "ws_hint" }));
  assert.equal(log.status, "success");
  assert.equal(received.get(w.path).length, 1);
  assert.equal(received.get(w.path)[0].body, body);
});

test("slow receiver isolation: hanging endpoints hold only their own slots, never the others'", async () => {
  // One batch of 10 with DELIVERY_CONCURRENCY 6: four endpoints hang until their 5 s
  // timeout; in whatever order the batch is sent, the six fast ones must still all
  // arrive long before that.
  const ws = "ws_iso";
  const slow = [];
  for (let i = 0; i < 4; i++) slow.push(await hook(async () => { await sleep(6000); return new Response("late"); }, { timeout_ms: 5000, retry_count: 0 }, ws));
  const fast = [];
  for (let i = 0; i < 6; i++) fast.push(await hook(null, {}, ws));
  const started = Date.now();
  await publish({ type: "flight.departed", data: {} }, token({ workspace: ws }));
  await waitFor(() => fast.every((f) => received.get(f.path)?.length), { what: "fast receivers" });
  const lastFast = Math.max(...fast.map((f) => received.get(f.path)[0].at));
  assert.ok(lastFast - started < 4000, `fast receivers done after ${lastFast - started} ms (slow ones hang 5 s)`);
  // The batch's order is not fixed: a slow one may be sent after the last fast one
  // arrived (a slot frees only when the fast answer is read), so wait for it too.
  await waitFor(() => slow.every((s) => received.get(s.path)?.length), { what: "slow receivers" });
  const slowArrival = Math.max(...slow.map((s) => received.get(s.path)[0].at));
  assert.ok(slowArrival - started < 4000, "slow ones started with the others");
  for (const s of slow) {
    const [log] = await finalLog(s.id, token({ workspace: ws }));
    assert.match(log.error, /timed out/);
  }
});

test("idempotent publish: the same key twice fans out once", async () => {
  const w = await hook(null, { events: ["customer.created"] }, "ws_idem");
  const auth = token({ workspace: "ws_idem" });
  const first = await publish({ type: "customer.created", data: { c: 1 }, idempotency_key: "cust-1" }, auth);
  const second = await publish({ type: "customer.created", data: { c: 1 }, idempotency_key: "cust-1" }, auth);
  assert.equal(first.status, 202);
  assert.equal(second.status, 202);
  assert.equal(second.json.id, first.json.id);
  assert.equal(second.json.deliveries, 1);
  const other = await publish({ type: "customer.created", data: { c: 2 }, idempotency_key: "cust-2" }, auth);
  assert.notEqual(other.json.id, first.json.id);
  await waitFor(() => received.get(w.path)?.length === 2, { what: "two deliveries" });
  await sleep(1500);
  assert.equal(received.get(w.path).length, 2);
  const events = await db.prepare("SELECT COUNT(*) AS n FROM events WHERE workspace_id = 'ws_idem'").first();
  assert.equal(events.n, 2);
});

test("an API idempotency key is remembered for 24 hours, then fans out anew", async () => {
  const w = await hook(null, { events: ["customer.updated"] }, "ws_idem_ttl");
  const auth = token({ workspace: "ws_idem_ttl" });
  const first = await publish({ type: "customer.updated", data: {}, idempotency_key: "k-ttl" }, auth);
  await db.prepare("UPDATE events SET created_at = created_at - 86400001 WHERE id = ?").bind(first.json.id).run();
  const later = await publish({ type: "customer.updated", data: {}, idempotency_key: "k-ttl" }, auth);
  assert.notEqual(later.json.id, first.json.id, "after 24 h the key starts a new event");
  assert.equal(later.json.deliveries, 1);
  await waitFor(() => received.get(w.path)?.length === 2, { what: "two deliveries" });
});

test("publish validation, roles and workspace scoping", async () => {
  for (const [body, field] of [
    [{ type: "flight.landed", data: {} }, "type"], [{ data: {} }, "type"], [{ type: "flight.departed" }, "data"],
    [{ type: "flight.departed", data: [1] }, "data"], [{ type: "flight.departed", data: "x" }, "data"],
    [{ type: 5, data: {} }, "type"], [{ type: "flight.departed", data: {}, extra: 1 }, "extra"],
    [{ type: "flight.departed", data: {}, idempotency_key: "" }, "idempotency_key"],
    [{ type: "flight.departed", data: {}, idempotency_key: 12 }, "idempotency_key"],
  ]) {
    const res = await publish(body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.ok(res.json.error.fields[field], `${JSON.stringify(body)} → ${res.text}`);
  }
  assert.equal((await api(mf, "POST", "/api/v1/events", { raw: "{", headers: { "Content-Type": "application/json" } })).json.error.code, "invalid_json");
  assert.equal((await publish({ type: "flight.departed", data: {} }, token({ role: "service" }))).status, 202);
  assert.equal((await publish({ type: "flight.departed", data: {} }, token({ role: "manager" }))).status, 403);
  const other = await publish({ type: "flight.departed", data: {} }, token({ workspace: "ws_nobody" }));
  assert.equal(other.json.deliveries, 0, "events reach only the publisher's workspace");
});

test("test event goes out at once (also to an inactive webhook) and is logged", async () => {
  const secret = "test-secret-0123456789";
  const w = await hook(null, { events: ["flight.scheduled", "flight.arrived"], active: false, secret });
  const res = await api(mf, "POST", `/api/v1/webhooks/${w.id}/test`, {
    body: { event_type: "flight.arrived", payload: { id: "flt_test", departure: "KJFK", arrival: "KLAX" } },
  });
  assert.equal(res.status, 200);
  assert.equal(res.json.status, "success");
  assert.equal(res.json.success, true);
  assert.equal(res.json.attempts, 1);
  assert.equal(res.json.event_type, "flight.arrived");
  const [got] = received.get(w.path);
  assert.deepEqual(JSON.parse(got.body).data, { id: "flt_test", departure: "KJFK", arrival: "KLAX" });
  assert.ok(verifyWebhook(got.body, got.headers["x-webhook-signature"], secret));
  assert.equal(got.headers["x-webhook-test"], "true");
  assert.equal(got.headers["webhook-id"], res.json.id);
  const dflt = await api(mf, "POST", `/api/v1/webhooks/${w.id}/test`, { auth: token({ role: "manager" }) });
  assert.equal(dflt.status, 200);
  assert.equal(dflt.json.event_type, "flight.scheduled", "defaults to the first subscribed type");
  // Without a payload, the catalog's example for the type (SPEC §8.5).
  const catalog = (await api(mf, "GET", "/api/v1/webhooks/events")).json.data.flatMap((g) => g.events);
  assert.deepEqual(JSON.parse(received.get(w.path)[1].body).data, catalog.find((e) => e.type === "flight.scheduled").example);
  const logs = await logsOf(w.id);
  assert.equal(logs.length, 2);
  const bad = await api(mf, "POST", `/api/v1/webhooks/${w.id}/test`, { body: { event_type: "nope", payload: [] } });
  assert.equal(bad.status, 400);
  assert.ok(bad.json.error.fields.event_type && bad.json.error.fields.payload);
  const failing = await hook(() => new Response("no", { status: 503 }));
  const fr = await api(mf, "POST", `/api/v1/webhooks/${failing.id}/test`, {});
  assert.equal(fr.json.status, "failed");
  assert.equal(fr.json.response_status, 503);
  assert.equal(received.get(failing.path).length, 1, "tests are not retried");
  assert.equal((await api(mf, "POST", `/api/v1/webhooks/${w.id}/test`, { auth: token({ role: "member" }) })).status, 403);
});

test("redeliver sends the same event again as a new log pointing at the original", async () => {
  const w = await hook((_, n) => new Response(n === 1 ? "no" : "yes", { status: n === 1 ? 500 : 200 }), { retry_count: 0 });
  const ev = await publish({ type: "flight.departed", data: { leg: 1 } });
  const [original] = await finalLog(w.id);
  assert.equal(original.status, "failed");
  const res = await api(mf, "POST", `/api/v1/webhooks/logs/${original.id}/redeliver`, { auth: token({ role: "manager" }) });
  assert.equal(res.status, 202);
  assert.equal(res.json.redelivery_of, original.id);
  assert.equal(res.json.event_id, ev.json.id);
  assert.notEqual(res.json.id, original.id);
  await waitFor(async () => (await logsOf(w.id)).find((l) => l.id === res.json.id && l.status === "success"), { what: "redelivery" });
  const [a, b] = received.get(w.path);
  assert.equal(a.body, b.body, "same event, same bytes");
  assert.notEqual(a.headers["x-webhook-delivery"], b.headers["x-webhook-delivery"]);
  assert.equal((await api(mf, "POST", "/api/v1/webhooks/logs/dlv_doesnotexist/redeliver")).status, 404);
  assert.equal((await api(mf, "POST", `/api/v1/webhooks/logs/${original.id}/redeliver`, { auth: token({ role: "member" }) })).status, 403);
});

test("a failed queue send is recovered by the cron (outbox survives a restart)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-outbox-"));
  const got = [];
  const rx = async (req) => { got.push(await req.text()); return new Response("ok"); };
  try {
    // Through the queue (no direct send), whose producer is missing.
    const broken = await startWorker({ receiver: rx, queue: false, persist: dir, bindings: { DIRECT_SEND_MAX: "0" } });
    await createWebhook(broken.mf, { url: "https://receiver.example.com/outbox" });
    const res = await api(broken.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { n: 1 } } });
    assert.equal(res.status, 202, "publishing succeeds: the outbox holds the delivery");
    assert.equal(res.json.deliveries, 1);
    const pending = await broken.db.prepare("SELECT status, attempts FROM delivery_logs").all();
    assert.deepEqual(pending.results, [{ status: "pending", attempts: 0 }]);
    await broken.mf.dispose();

    const healthy = await startWorker({ receiver: rx, persist: dir });
    try {
      await runCron(healthy.mf);
      await waitFor(() => got.length === 1, { what: "cron re-enqueued delivery" });
      await waitFor(async () => (await healthy.db.prepare("SELECT status FROM delivery_logs").first()).status === "success", { what: "success" });
      await runCron(healthy.mf);
      await sleep(1500);
      assert.equal(got.length, 1, "a second cron run sends nothing more");
    } finally {
      await healthy.mf.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cron purges logs older than LOG_RETENTION_DAYS and fails interrupted deliveries", async () => {
  const old = Date.now() - 31 * 86_400_000;
  const now = Date.now();
  // Delivery ids sort by creation time (migration 0008): `dlv_` + 12 hex digits of ms.
  const at = (ms, tag) => `dlv_${ms.toString(16).padStart(12, "0")}${tag}`;
  const [oldId, stuckId, legacyId] = [at(old, "0000000000a1"), at(now, "0000000000a2"), "dlv_legacy00000000000000"];
  await db.batch([
    db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at) VALUES (?, 'ws_cron', 'wh_x', 'evt_old', 'flight.departed', 'success', 1, 1, ?, ?)").bind(oldId, old, old),
    db.prepare("INSERT INTO delivery_attempts (log_id, attempt, attempted_at, duration_ms) VALUES (?, 1, ?, 3)").bind(oldId, old),
    // A row from before migration 0008 (random id) is purged through its own index.
    db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, legacy, created_at, updated_at) VALUES (?, 'ws_cron', 'wh_x', 'evt_old', 'flight.departed', 'success', 1, 1, 1, ?, ?)").bind(legacyId, old, old),
    db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, lease_until, created_at, updated_at) VALUES (?, 'ws_cron', 'wh_x', 'evt_new', 'flight.departed', 'pending', 2, 2, ?, ?, ?)").bind(stuckId, now - 1000, now, now),
  ]);
  await runCron(mf);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE id IN (?, ?)").bind(oldId, legacyId).first()).n, 0);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_attempts WHERE log_id = ?").bind(oldId).first()).n, 0);
  const stuck = await db.prepare("SELECT status, error FROM delivery_logs WHERE id = ?").bind(stuckId).first();
  assert.equal(stuck.status, "failed");
  assert.match(stuck.error, /interrupted/);
});

test("a message the queue gives up on (dead-letter queue) ends failed with a clear error", async () => {
  // The queue allows 1 retry here while the webhook wants 5: the second failure dead-letters.
  let hits = 0;
  // Every attempt through the queue (the first is not sent directly), one id per message.
  const dlq = await startWorker({ receiver: () => { hits++; return new Response("no", { status: 500 }); }, consumer: { maxRetries: 1 },
    bindings: { DIRECT_SEND_MAX: "0" } });
  try {
    const w = await createWebhook(dlq.mf, { retry_count: 5 });
    await api(dlq.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} } });
    const log = await waitFor(async () => {
      const [l] = (await api(dlq.mf, "GET", `/api/v1/webhooks/logs?webhook_id=${w.id}`)).json.data;
      return l?.status === "failed" && l;
    }, { what: "dead-lettered delivery" });
    assert.match(log.error, /dead-lettered/);
    assert.equal(log.attempts, 2);
    assert.equal(hits, 2);
  } finally {
    await dlq.mf.dispose();
  }
});

test("a dead-lettered message naming several deliveries fails every one of them", async () => {
  const now = Date.now();
  const ids = ["dlv_dlq_a", "dlv_dlq_b", "dlv_dlq_c"];
  await db.batch(ids.map((id) => db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, next_attempt_at, created_at, updated_at) VALUES (?, 'ws_dlq', 'wh_x', 'evt_dlq', 'flight.departed', 'pending', 1, 3, ?, ?, ?)").bind(id, now, now, now)));
  const worker = await workerOf(mf);
  await worker.queue("webhook-deliveries-dlq", [
    { id: "m1", timestamp: new Date(), body: { log_ids: ids.slice(0, 2) }, attempts: 1 },
    { id: "m2", timestamp: new Date(), body: { log_id: ids[2] }, attempts: 1 },
  ]);
  const rows = (await db.prepare("SELECT id, status, error FROM delivery_logs WHERE workspace_id = 'ws_dlq' ORDER BY id").all()).results;
  assert.deepEqual(rows.map((r) => r.status), ["failed", "failed", "failed"]);
  for (const r of rows) assert.match(r.error, /dead-lettered/);
});

/** The worker's JSON log lines with this `msg`. */
const logLines = (lines, msg) => lines.flatMap((l) => { try { const v = JSON.parse(l); return v.msg === msg ? [v] : []; } catch { return []; } });

test("an event with at most DIRECT_SEND_MAX deliveries is sent by the publishing request, without a queue message", async () => {
  for (const direct of [true, false]) {
    const lines = [];
    const got = [];
    const w = await startWorker({
      receiver: async (req) => { got.push(await req.text()); return new Response("ok"); },
      bindings: direct ? {} : { DIRECT_SEND_MAX: "0" },
      onLog: (l) => lines.push(l),
    });
    try {
      await createWebhook(w.mf, { url: "https://receiver.example.com/d1" });
      await createWebhook(w.mf, { url: "https://receiver.example.com/d2" });
      const res = await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { direct } } });
      assert.equal(res.status, 202);
      assert.equal(res.json.deliveries, 2);
      await waitFor(async () => (await w.db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'success' AND attempts = 1").first()).n === 2,
        { what: "both deliveries" });
      await sleep(300);
      assert.equal(got.length, 2);
      const [pub] = logLines(lines, "publish");
      assert.equal(pub.direct, direct);
      assert.equal(pub.queue_calls, direct ? 0 : 1);
      const batches = logLines(lines, "delivery batch");
      assert.equal(batches.length, 1, "both in one invocation");
      assert.equal(batches[0].direct, direct);
      assert.equal(batches[0].deliveries, 2);
      assert.equal(batches[0].messages, direct ? 0 : 1, "one message names both deliveries");
      assert.equal(batches[0].subrequests, batches[0].fetches + batches[0].d1_round_trips);
    } finally {
      await w.mf.dispose();
    }
  }
});

test("several deliveries per message: each sent once, retries come back alone with their delay, the surplus of an invocation is re-queued", async () => {
  // SUBREQUEST_LIMIT 15 leaves 5 deliveries per invocation: 12 deliveries in messages of
  // 10 are sent 5 at a time, the rest re-queued each time.
  const lines = [];
  const hits = new Map();
  const w = await startWorker({
    receiver: (req) => {
      const path = new URL(req.url).pathname;
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      return new Response(path === "/m0" && n === 1 ? "later" : "ok", { status: path === "/m0" && n === 1 ? 503 : 200 });
    },
    bindings: { SUBREQUEST_LIMIT: "15" },
    onLog: (l) => lines.push(l),
  });
  try {
    for (let i = 0; i < 12; i++) await createWebhook(w.mf, { url: `https://receiver.example.com/m${i}`, retry_count: 1 });
    const res = await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} } });
    assert.equal(res.json.deliveries, 12);
    await waitFor(async () => (await w.db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first()).n === 0,
      { what: "every delivery to settle", timeoutMs: 30_000 });
    const logs = (await w.db.prepare("SELECT l.id, l.status, l.attempts, w.url FROM delivery_logs l JOIN webhooks w ON w.id = l.webhook_id").all()).results;
    for (const l of logs) {
      assert.equal(l.status, "success", l.url);
      assert.equal(l.attempts, l.url.endsWith("/m0") ? 2 : 1, l.url);
    }
    const [pub] = logLines(lines, "publish");
    assert.equal(pub.direct, false);
    assert.equal(pub.queue_messages, 2, "12 ids in messages of 10");
    const batches = logLines(lines, "delivery batch");
    assert.ok(batches.every((b) => b.deliveries <= 5 && b.subrequests <= 15), JSON.stringify(batches.map((b) => [b.deliveries, b.subrequests])));
    assert.ok(batches.some((b) => b.surplus > 0), "some invocation re-queued its surplus");
    // The same message again, with a duplicate id: nothing is sent twice.
    const producer = queueProducer(w.mf);
    await producer.send({ log_ids: [...logs.map((l) => l.id), logs[0].id] });
    await sleep(2500);
    assert.equal([...hits.values()].reduce((a, b) => a + b, 0), 13, "12 deliveries, one retried once");
    assert.equal(hits.get("/m0"), 2);
  } finally {
    await w.mf.dispose();
  }
});

test("a direct send leaves a webhook whose timeout would outlast waitUntil to the queue, its attempt given back", async () => {
  const lines = [];
  const got = [];
  const w = await startWorker({ receiver: async (req) => { got.push(new URL(req.url).pathname); return new Response("ok"); }, onLog: (l) => lines.push(l) });
  try {
    await createWebhook(w.mf, { url: "https://receiver.example.com/fast", timeout_ms: 10_000 });
    await createWebhook(w.mf, { url: "https://receiver.example.com/slow", timeout_ms: 30_000 });
    await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: {} } });
    await waitFor(async () => (await w.db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'success' AND attempts = 1").first()).n === 2,
      { what: "both deliveries, one attempt each" });
    assert.deepEqual(got.sort(), ["/fast", "/slow"]);
    const batches = logLines(lines, "delivery batch");
    assert.deepEqual(batches.map((b) => [b.direct, b.fetches, b.postponed]), [[true, 1, 1], [false, 1, 0]]);
  } finally {
    await w.mf.dispose();
  }
});
