// Input fuzzing of every JSON route with random and malformed bodies and parameters.
// Seeded (FUZZ_SEED) so a failure can be replayed. Invariants: never a 5xx, every error
// is the JSON error shape, and a rejected request writes nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, api, token, createWebhook } from "./helpers.mjs";

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 120);

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const int = (n) => Math.floor(rand() * n);
const enc = (s) => encodeURIComponent(String(s).toWellFormed());

const STRINGS = ["", " ", "a", "flight.departed", "invoice.paid", "https://example.com/h", "http://10.0.0.1/", "https://127.0.0.1/",
  "x".repeat(300), "ünïcödé ✈", "\u0000", "\r\n", "wh_", "dlv_", "evt_", "../../etc/passwd", "' OR 1=1 --", "<script>", "null",
  "9".repeat(40), "2026-13-45", "-1", "1e309", "\ud800", "whsec_" + "a".repeat(20), "Content-Type", "X-Webhook-ID"];
const KEYS = ["name", "url", "secret", "events", "active", "headers", "retry_count", "timeout_ms", "type", "data", "idempotency_key",
  "event_type", "payload", "grace_seconds", "__proto__", "constructor", "", "extra", "ID", "nAmE"];

function value(depth = 0) {
  switch (int(depth > 3 ? 6 : 9)) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return pick([0, -1, 1, 3, 10, 11, 999, 1000, 30000, 30001, 2 ** 53 + 1, -0, 1.5, 1e308, -1e308]);
    case 3: case 4: return pick(STRINGS);
    case 5: return pick(STRINGS) + pick(STRINGS);
    case 6: return Array.from({ length: int(4) }, () => value(depth + 1));
    default: return Object.fromEntries(Array.from({ length: int(5) }, () => [pick(KEYS), value(depth + 1)]));
  }
}

/** A body: mostly JSON objects with plausible keys, sometimes raw garbage. */
function body() {
  const r = rand();
  if (r < 0.15) return { raw: pick(["{", "}", "[", "nul", "{\"a\":}", "\u0000\u0001", "{\"name\":\"x\",}", "💥", "{\"a\":1}{\"b\":2}", "   "]) };
  if (r < 0.25) return { raw: JSON.stringify(value()) };
  if (r < 0.3) return { raw: "{\"a\":" + "[".repeat(200) + "]".repeat(200) + "}" };
  const obj = Object.fromEntries(Array.from({ length: 1 + int(6) }, () => [pick(KEYS), value()]));
  return { raw: JSON.stringify(obj) };
}

function query() {
  const keys = ["webhook_id", "event_type", "status", "date_from", "date_to", "limit", "offset", "bogus", "", "trip_id"];
  return Array.from({ length: int(4) }, () => `${enc(pick(keys))}=${enc(String(value(3)))}`).join("&");
}

let mf, db, hook;
before(async () => {
  ({ mf, db } = await startWorker());
  hook = await createWebhook(mf, { secret: "0123456789abcdef" });
});
after(async () => mf?.dispose());

/**
 * Row counts and newest write times of every table a route could touch, in one query.
 * The statement is prepared once: after its first run, Miniflare's proxy knows `first`
 * returns a promise and calls it asynchronously, instead of a synchronous cross-thread
 * call per round (the path where its rare reply mix-ups happen under load).
 */
let snapshotStatement;
function snapshot() {
  snapshotStatement ??= db.prepare(`SELECT
    (SELECT COUNT(*) || ':' || IFNULL(MAX(updated_at), 0) FROM webhooks) AS webhooks,
    (SELECT COUNT(*) || ':' || IFNULL(MAX(created_at), 0) FROM events) AS events,
    (SELECT COUNT(*) || ':' || IFNULL(MAX(updated_at), 0) FROM delivery_logs) AS logs,
    (SELECT COUNT(*) FROM delivery_attempts) AS attempts,
    (SELECT COUNT(*) FROM inbound_events) AS inbound,
    (SELECT COUNT(*) FROM email_events) AS emails`);
  return snapshotStatement.first();
}

async function fuzzRoute(method, pathFn, { roles = ["admin"], withBody = true } = {}) {
  let rejected = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const before = withBody ? await snapshot() : null;
    const b = withBody ? body() : {};
    const contentType = rand() < 0.9 ? "application/json" : pick(["text/plain", "application/jsonx", "", "application/json; charset=utf-8"]);
    const path = pathFn();
    const res = await api(mf, method, path, { auth: token({ role: pick(roles) }), raw: b.raw, headers: contentType ? { "Content-Type": contentType } : {} });
    const replay = `FUZZ_SEED=${SEED} round ${i}: ${method} ${path} ${String(b.raw).slice(0, 120)}`;
    assert.ok(res.status < 500, `${res.status} ${res.text} — ${replay}`);
    if (res.status >= 400) {
      rejected++;
      assert.equal(typeof res.json?.error?.code, "string", `error shape — ${replay}`);
      if (before) assert.deepEqual(await snapshot(), before, `a rejected request wrote something — ${replay}`);
    }
  }
  return rejected;
}

test("POST /api/v1/webhooks survives random bodies", async () => {
  assert.ok(await fuzzRoute("POST", () => "/api/v1/webhooks") > ROUNDS * 0.9);
});

test("PUT /api/v1/webhooks/:id survives random bodies and ids", async () => {
  await fuzzRoute("PUT", () => (rand() < 0.8 ? `/api/v1/webhooks/${hook.id}` : `/api/v1/webhooks/${enc(pick(STRINGS))}x`));
  const still = await api(mf, "GET", `/api/v1/webhooks/${hook.id}`);
  assert.equal(still.status, 200);
});

test("POST /api/v1/events survives random bodies", async () => {
  await fuzzRoute("POST", () => "/api/v1/events", { roles: ["admin", "service"] });
});

test("POST /api/v1/webhooks/:id/test and redeliver survive random bodies", async () => {
  // Managers too: their custom payloads are 403, their tests carry the catalog example.
  const sent = await fuzzRoute("POST", () => `/api/v1/webhooks/${hook.id}/test`, { roles: ["admin", "manager"] });
  assert.ok(sent >= 0);
  await fuzzRoute("POST", () => `/api/v1/webhooks/logs/${pick(["dlv_nope", enc(pick(STRINGS)) + "z"])}/redeliver`);
});

test("POST /api/v1/webhooks/:id/secret/rotate survives random bodies and ids", async () => {
  await fuzzRoute("POST", () => (rand() < 0.8 ? `/api/v1/webhooks/${hook.id}/secret/rotate` : `/api/v1/webhooks/${enc(pick(STRINGS))}x/secret/rotate`),
    { roles: ["admin", "manager"] });
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${hook.id}`)).status, 200);
});

test("GET /api/v1/webhooks/logs/:id survives random ids, never writes", async () => {
  const before = await snapshot();
  const real = await api(mf, "GET", "/api/v1/webhooks/logs?limit=5");
  const ids = real.json.data.map((l) => l.id);
  await fuzzRoute("GET", () => `/api/v1/webhooks/logs/${ids.length && rand() < 0.3 ? pick(ids) : enc(pick(STRINGS)) + pick(["", "z", "%2F", "?x=1"])}`,
    { withBody: false, roles: ["admin", "manager", "member", "service"] });
  assert.deepEqual(await snapshot(), before, "log reads never write");
});

test("GET routes survive random query strings", async () => {
  const before = await snapshot();
  for (const path of ["/api/v1/webhooks/logs", "/api/v1/webhooks", "/api/v1/webhooks/events", "/api/v1/billing", "/api/v1/connect/splits", "/api/v1/email/analytics", "/api/v1/email/suppressions"]) {
    await fuzzRoute("GET", () => `${path}?${query()}`, { withBody: false, roles: ["admin", "manager", "member", "service"] });
  }
  assert.deepEqual(await snapshot(), before, "GET requests never write");
});

test("random methods and paths get JSON 404/405, never 5xx", async () => {
  const segs = ["api", "v1", "webhooks", "logs", "events", "test", "redeliver", "x", "", "..", "%00", "stripe", "wh_1"];
  for (let i = 0; i < ROUNDS; i++) {
    const path = "/" + Array.from({ length: 1 + int(5) }, () => pick(segs)).join("/");
    const method = pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);
    const res = await api(mf, method, path, { raw: method === "GET" ? undefined : "{}", headers: { "Content-Type": "application/json" } });
    assert.ok(res.status < 500, `${method} ${path} → ${res.status} ${res.text}`);
    if (res.status >= 400) assert.equal(typeof res.json?.error?.code, "string", `${method} ${path}`);
  }
});

test("inbound receivers: random bodies and signature headers are 400/413, never 5xx, never a write", async () => {
  const before = await snapshot();
  const garbage = () => pick(["", "t=", "t=1,v1=", `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}`, "v1,abc", "v1," + "A".repeat(44),
    pick(STRINGS), "t=abc,v1=zz", ",,,,", "t=1".repeat(3000)]);
  for (let i = 0; i < ROUNDS; i++) {
    const b = body();
    const path = pick(["/api/webhooks/stripe", "/api/webhooks/stripe-connect", "/api/webhooks/resend"]);
    const headers = path.endsWith("resend")
      ? { "svix-id": String(value(3)).toWellFormed().slice(0, 100), "svix-timestamp": String(Math.floor(Date.now() / 1000)), "svix-signature": garbage() }
      : { "Stripe-Signature": garbage() };
    for (const k of Object.keys(headers)) {
      if (rand() < 0.1) delete headers[k];
      else headers[k] = headers[k].replace(/[^\x20-\x7e]/g, "?"); // header values are byte strings
    }
    const res = await api(mf, "POST", path, { auth: null, raw: b.raw, headers: { ...headers, "Content-Type": "application/json" } });
    assert.ok([400, 413].includes(res.status), `${res.status} ${res.text} — FUZZ_SEED=${SEED} round ${i}: ${path}`);
    assert.equal(res.json?.error?.code, res.status === 400 ? "invalid_signature" : "payload_too_large");
  }
  assert.deepEqual(await snapshot(), before, "rejected inbound requests wrote nothing");
});
