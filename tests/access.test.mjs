// Access and abuse hardening (SPEC §8.5): test events, masked and reserved custom headers,
// the publish idempotency namespace, token rules, per-workspace limits and authorship.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startWorker, api, token, baseClaims, waitFor, sleep, createWebhook, webhookBody, ROOT, JWT_SECRET, STRIPE_SECRET } from "./helpers.mjs";

let mf, db;
const received = [];

before(async () => {
  ({ mf, db } = await startWorker({
    receiver: async (request) => {
      received.push({ url: request.url, headers: Object.fromEntries(request.headers), body: JSON.parse(await request.text()) });
      return new Response("ok");
    },
  }));
});
after(async () => mf?.dispose());

const count = async (table, where = "1 = 1", ...args) =>
  (await db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).bind(...args).first()).n;
const at = (ws, role = "admin", claims = {}) => ({ auth: token({ workspace: ws, role, claims }) });

// ---- 1. test events ----------------------------------------------------------------------

test("the catalog shows an example data object for every type", async () => {
  const res = await api(mf, "GET", "/api/v1/webhooks/events", at("ws_cat", "member"));
  assert.equal(res.status, 200);
  const events = res.json.data.flatMap((g) => g.events);
  assert.ok(events.length >= 16);
  for (const e of events) {
    assert.equal(typeof e.example, "object", e.type);
    assert.ok(Object.keys(e.example).length > 0, e.type);
  }
  const paid = events.find((e) => e.type === "invoice.paid");
  assert.equal(typeof paid.example.invoice_id, "string");
  assert.equal(typeof paid.example.amount_paid, "number");
});

test("a test event's type must be one the webhook subscribes to; nothing is written otherwise", async () => {
  const ws = "ws_test_type";
  const hook = await createWebhook(mf, { events: ["flight.departed", "flight.arrived"], url: "https://receiver.example.com/t1" }, at(ws));
  const before = [await count("events"), await count("delivery_logs")];
  for (const role of ["admin", "manager"]) {
    const res = await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { ...at(ws, role), body: { event_type: "invoice.paid" } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, "validation_error");
    assert.match(res.json.error.fields.event_type, /does not subscribe to "invoice.paid".*flight.departed, flight.arrived/);
  }
  assert.deepEqual([await count("events"), await count("delivery_logs")], before);
  assert.equal(received.filter((r) => r.url.endsWith("/t1")).length, 0, "nothing sent");
});

test("a manager's custom payload is 403; a manager's test carries the catalog example and renders test: true", async () => {
  const ws = "ws_test_role";
  const hook = await createWebhook(mf, { events: ["flight.departed", "invoice.paid"], url: "https://receiver.example.com/t2" }, at(ws));
  const before = [await count("events"), await count("delivery_logs")];
  const denied = await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`,
    { ...at(ws, "manager"), body: { event_type: "invoice.paid", payload: { invoice_id: "inv_forged" } } });
  assert.equal(denied.status, 403, denied.text);
  assert.equal(denied.json.error.code, "forbidden");
  assert.match(denied.json.error.message, /only admins may send a custom payload/);
  assert.deepEqual([await count("events"), await count("delivery_logs")], before, "nothing written");

  const catalog = (await api(mf, "GET", "/api/v1/webhooks/events", at(ws, "manager"))).json.data.flatMap((g) => g.events);
  const example = catalog.find((e) => e.type === "invoice.paid").example;
  const sent = await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { ...at(ws, "manager"), body: { event_type: "invoice.paid" } });
  assert.equal(sent.status, 200, sent.text);
  assert.equal(sent.json.success, true);
  assert.equal(sent.json.test, true);
  assert.deepEqual(sent.json.payload.data, example);
  const got = received.filter((r) => r.url.endsWith("/t2"));
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].body.data, example, "the receiver got the catalog example");
  assert.equal(got[0].headers["x-webhook-test"], "true");

  // An admin may send its own data; without event_type the first subscribed type is used.
  const own = await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { ...at(ws), body: { payload: { tail_number: "N1AB" } } });
  assert.equal(own.status, 200, own.text);
  assert.deepEqual(own.json.payload.data, { tail_number: "N1AB" });
  assert.equal(own.json.event_type, "flight.departed");

  // A published (non-test) event's log renders test: false, in the list and the detail.
  const pub = await api(mf, "POST", "/api/v1/events", { ...at(ws), body: { type: "flight.departed", data: { flight_id: "flt_1" } } });
  assert.equal(pub.status, 202, pub.text);
  await waitFor(() => received.filter((r) => r.url.endsWith("/t2")).length >= 3, { what: "published delivery" });
  const list = await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${hook.id}`, at(ws, "manager"));
  assert.equal(list.status, 200);
  const byEvent = Object.fromEntries(list.json.data.map((l) => [l.event_id, l.test]));
  assert.equal(byEvent[sent.json.event_id], true);
  assert.equal(byEvent[own.json.event_id], true);
  assert.equal(byEvent[pub.json.id], false);
  for (const l of list.json.data) {
    const detail = await api(mf, "GET", `/api/v1/webhooks/logs/${l.id}`, at(ws, "manager"));
    assert.equal(detail.status, 200);
    assert.equal(detail.json.test, l.event_id !== pub.json.id);
  }
  const recent = await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, at(ws, "manager"));
  assert.equal(recent.json.recent_logs.filter((l) => l.test).length, 2);
});

// ---- 2. masked credential-like header values -------------------------------------------

test("credential-like custom header values are masked in every webhook rendering, sent in clear", async () => {
  const ws = "ws_mask";
  const headers = { Authorization: "Bearer sk_live_abcdefgh9876", "X-Api-Key": "key_0123456789", "X-Session-Token": "short", "X-Tenant": "fbo-42" };
  const masked = { Authorization: "••••9876", "X-Api-Key": "••••6789", "X-Session-Token": "••••", "X-Tenant": "fbo-42" };
  const created = await api(mf, "POST", "/api/v1/webhooks", { ...at(ws), body: webhookBody({ headers, url: "https://receiver.example.com/mask" }) });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(created.json.headers, masked);
  const id = created.json.id;
  // Managers see no custom header value at all (SPEC §9.4).
  const forManager = { ...masked, "X-Tenant": "••••" };
  assert.deepEqual((await api(mf, "GET", `/api/v1/webhooks/${id}`, at(ws, "manager"))).json.headers, forManager);
  assert.deepEqual((await api(mf, "GET", "/api/v1/webhooks", at(ws, "manager"))).json.data[0].headers, forManager);
  assert.deepEqual((await api(mf, "GET", `/api/v1/webhooks/${id}`, at(ws))).json.headers, masked);
  const updated = await api(mf, "PUT", `/api/v1/webhooks/${id}`, { ...at(ws), body: { name: "renamed" } });
  assert.deepEqual(updated.json.headers, masked);
  assert.ok(!JSON.stringify([created.json, updated.json]).includes("sk_live"));
  const sent = await api(mf, "POST", `/api/v1/webhooks/${id}/test`, { ...at(ws), body: {} });
  assert.equal(sent.status, 200);
  const got = received.find((r) => r.url.endsWith("/mask"));
  assert.equal(got.headers.authorization, headers.Authorization, "the receiver gets the real value");
  assert.equal(got.headers["x-api-key"], headers["X-Api-Key"]);
});

// ---- 3. reserved header names ------------------------------------------------------------

test("hop-by-hop, forwarding, content-*, cf-* and webhook-* header names are refused, nothing stored", async () => {
  const ws = "ws_reserved";
  for (const name of ["Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Expect", "Content-Encoding",
    "Forwarded", "X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP", "Webhook-Id", "x-webhook-test", "connection"]) {
    const res = await api(mf, "POST", "/api/v1/webhooks", { ...at(ws), body: webhookBody({ headers: { [name]: "v" } }) });
    assert.equal(res.status, 400, `${name}: ${res.text}`);
    assert.equal(res.json.error.code, "validation_error");
    assert.match(res.json.error.fields.headers, /reserved/, name);
  }
  assert.equal(await count("webhooks", "workspace_id = ?", ws), 0);
});

// ---- 4. idempotency namespace and conflicts ---------------------------------------------

function stripeHeader(body, t = Math.floor(Date.now() / 1000)) {
  return `t=${t},v1=${createHmac("sha256", STRIPE_SECRET).update(`${t}.${body}`).digest("hex")}`;
}

test("an API key shaped like an internal one does not suppress Stripe's invoice.paid", async () => {
  const ws = "ws_idem_ns";
  await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ns" }, at(ws));
  const spoof = await api(mf, "POST", "/api/v1/events", {
    ...at(ws), body: { type: "invoice.paid", data: { invoice_id: "inv_777", note: "from the API" }, idempotency_key: "stripe:invoice.paid:inv_777" },
  });
  assert.equal(spoof.status, 202, spoof.text);
  const session = {
    id: "cs_test_777", object: "checkout.session", mode: "payment", status: "complete", amount_total: 7700, currency: "usd",
    customer: "cus_777", payment_intent: "pi_777", payment_status: "paid", client_reference_id: null,
    metadata: { invoice_id: "inv_777", workspace_id: ws },
  };
  const event = { id: "evt_stripe_777", object: "event", api_version: "2025-03-31.basil", created: Math.floor(Date.now() / 1000),
    type: "checkout.session.completed", livemode: false, data: { object: session } };
  const body = JSON.stringify(event);
  const res = await api(mf, "POST", "/api/webhooks/stripe", { auth: null, raw: body,
    headers: { "Content-Type": "application/json", "Stripe-Signature": stripeHeader(body) } });
  assert.equal(res.status, 200, res.text);
  const paid = () => received.filter((r) => r.url.endsWith("/ns") && r.body.type === "invoice.paid" && r.body.data.invoice_id === "inv_777");
  await waitFor(() => paid().length >= 2, { what: "both invoice.paid deliveries" });
  const fromStripe = paid().find((r) => r.body.data.payment_provider === "stripe");
  assert.ok(fromStripe, "Stripe's invoice.paid was published");
  assert.notEqual(fromStripe.body.id, spoof.json.id);
  assert.equal(fromStripe.body.data.amount_paid, 7700);
  assert.equal(await count("events", "workspace_id = ? AND type = 'invoice.paid'", ws), 2);
});

test("reusing a key with other type or data is 409 and writes nothing; the same request replays", async () => {
  const ws = "ws_idem_conflict";
  await createWebhook(mf, { events: ["flight.departed", "flight.arrived"], url: "https://receiver.example.com/idem" }, at(ws));
  const first = await api(mf, "POST", "/api/v1/events",
    { ...at(ws, "service"), body: { type: "flight.departed", data: { flight_id: "flt_9", tail: "N9" }, idempotency_key: "k-1" } });
  assert.equal(first.status, 202, first.text);
  const before = [await count("events"), await count("delivery_logs")];
  const replay = await api(mf, "POST", "/api/v1/events", {
    ...at(ws, "service"), raw: '{"idempotency_key":"k-1","type":"flight.departed","data":{ "tail":"N9", "flight_id":"flt_9" }}',
    headers: { "Content-Type": "application/json" } });
  assert.equal(replay.status, 202, replay.text);
  assert.deepEqual(replay.json, first.json, "same event, nothing new");
  for (const body of [
    { type: "flight.departed", data: { flight_id: "flt_9", tail: "N10" }, idempotency_key: "k-1" },
    { type: "flight.arrived", data: { flight_id: "flt_9", tail: "N9" }, idempotency_key: "k-1" },
  ]) {
    const res = await api(mf, "POST", "/api/v1/events", { ...at(ws, "service"), body });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.json.error.code, "conflict");
    assert.match(res.json.error.message, /idempotency_key/);
  }
  assert.deepEqual([await count("events"), await count("delivery_logs")], before, "conflicts wrote nothing");
  // A key stored before fingerprints existed (migrated under `api:`) still replays.
  await db.prepare("INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at) VALUES (?, ?, 'flight.departed', '{}', 'api:legacy-1', 'api', ?)")
    .bind("evt_legacy_1", ws, Date.now()).run();
  const legacy = await api(mf, "POST", "/api/v1/events", { ...at(ws), body: { type: "flight.arrived", data: {}, idempotency_key: "legacy-1" } });
  assert.equal(legacy.status, 202, legacy.text);
  assert.equal(legacy.json.id, "evt_legacy_1");
  assert.equal(await count("events", "idempotency_key = 'api:k-1'"), 1, "API keys are stored in their namespace");
});

// ---- 5. tokens ---------------------------------------------------------------------------

function tokenWithHeader(header, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signed = `${b64(header)}.${b64({ ...baseClaims(), workspace_id: "ws_tok", role: "admin", exp: Math.floor(Date.now() / 1000) + 600, ...claims })}`;
  return `${signed}.${createHmac("sha256", JWT_SECRET).update(signed).digest("base64url")}`;
}

test("a token with a crit header is 401", async () => {
  const res = await api(mf, "GET", "/api/v1/webhooks", { auth: tokenWithHeader({ alg: "HS256", typ: "JWT", crit: ["exp"] }) });
  assert.equal(res.status, 401, res.text);
  assert.equal(res.json.error.code, "unauthorized");
  assert.match(res.json.error.message, /crit/);
  assert.match(res.headers.get("www-authenticate"), /^Bearer/);
  const plain = await api(mf, "GET", "/api/v1/webhooks", { auth: tokenWithHeader({ alg: "HS256", typ: "JWT", kid: "k1" }) });
  assert.equal(plain.status, 200);
});

test("an AUTH_JWT_SECRET under 32 bytes answers 500 (logged once), even to tokens it signed", async () => {
  const logs = [];
  const short = "short-secret-31-bytes-long-xxxx";
  assert.equal(Buffer.byteLength(short), 31);
  const w = await startWorker({ bindings: { AUTH_JWT_SECRET: short }, onLog: (l) => logs.push(l) });
  try {
    for (let i = 0; i < 2; i++) {
      const res = await api(w.mf, "GET", "/api/v1/webhooks", { auth: token({ secret: short }) });
      assert.equal(res.status, 500, res.text);
      assert.equal(res.json.error.code, "internal_error");
    }
    const created = await api(w.mf, "POST", "/api/v1/webhooks", { auth: token({ secret: short }), body: webhookBody() });
    assert.equal(created.status, 500);
    assert.equal((await w.db.prepare("SELECT COUNT(*) AS n FROM webhooks").first()).n, 0, "nothing written");
    assert.equal((await api(w.mf, "GET", "/api/v1/health", { auth: null })).status, 200, "public routes still answer");
    await sleep(200);
    const reasons = logs.filter((l) => l.includes("AUTH_JWT_SECRET is 31 bytes"));
    assert.equal(reasons.length, 1, logs.join("\n"));
  } finally {
    await w.mf.dispose();
  }
});

test("AUTH_ISSUER / AUTH_AUDIENCE, when set, must match; DEV_ALLOW_PRIVATE_TARGETS warns once", async () => {
  const logs = [];
  const w = await startWorker({
    bindings: { AUTH_ISSUER: "https://sessions.planeconnection.test", AUTH_AUDIENCE: "webhooks", DEV_ALLOW_PRIVATE_TARGETS: "true" },
    onLog: (l) => logs.push(l),
  });
  try {
    const iss = "https://sessions.planeconnection.test";
    const cases = [
      [{}, 401], [{ iss }, 401], [{ aud: "webhooks" }, 401], [{ iss: "https://evil.test", aud: "webhooks" }, 401],
      [{ iss, aud: "billing" }, 401], [{ iss, aud: ["billing"] }, 401],
      [{ iss, aud: "webhooks" }, 200], [{ iss, aud: ["billing", "webhooks"] }, 200],
    ];
    for (const [claims, status] of cases) {
      const res = await api(w.mf, "GET", "/api/v1/webhooks", { auth: token({ claims }) });
      assert.equal(res.status, status, `${JSON.stringify(claims)}: ${res.text}`);
      if (status === 401) assert.match(res.json.error.message, /issuer|audience/);
    }
    await sleep(200);
    assert.equal(logs.filter((l) => l.includes("DEV_ALLOW_PRIVATE_TARGETS is on")).length, 1, logs.join("\n"));
  } finally {
    await w.mf.dispose();
  }
  // The default worker (flag off) never warns: checked on a fresh isolate.
  const quiet = [];
  const off = await startWorker({ onLog: (l) => quiet.push(l) });
  try {
    await api(off.mf, "GET", "/api/v1/webhooks");
    await sleep(200);
    assert.equal(quiet.filter((l) => l.includes("DEV_ALLOW_PRIVATE_TARGETS")).length, 0);
  } finally {
    await off.mf.dispose();
  }
});

test(".dev.vars.example holds a clearly-dev JWT secret of at least 32 bytes and no DEV_ALLOW_PRIVATE_TARGETS", () => {
  const text = readFileSync(join(ROOT, ".dev.vars.example"), "utf8");
  const secret = text.match(/^AUTH_JWT_SECRET=(.*)$/m)?.[1];
  assert.ok(secret && Buffer.byteLength(secret) >= 32, secret);
  assert.match(secret, /dev/);
  assert.doesNotMatch(text, /^DEV_ALLOW_PRIVATE_TARGETS/m);
});

// ---- 6. limits and authorship ------------------------------------------------------------

test("MAX_WEBHOOKS_PER_WORKSPACE: the next create is 409 and writes nothing, also under concurrency", async () => {
  const w = await startWorker({ bindings: { MAX_WEBHOOKS_PER_WORKSPACE: "3" } });
  try {
    const n = async (ws) => (await w.db.prepare("SELECT COUNT(*) AS n FROM webhooks WHERE workspace_id = ?").bind(ws).first()).n;
    for (let i = 0; i < 3; i++) assert.equal((await api(w.mf, "POST", "/api/v1/webhooks", { ...at("ws_full"), body: webhookBody() })).status, 201);
    const over = await api(w.mf, "POST", "/api/v1/webhooks", { ...at("ws_full"), body: webhookBody() });
    assert.equal(over.status, 409, over.text);
    assert.equal(over.json.error.code, "conflict");
    assert.match(over.json.error.message, /maximum of 3 webhooks/);
    assert.equal(await n("ws_full"), 3);
    assert.equal((await api(w.mf, "POST", "/api/v1/webhooks", { ...at("ws_other"), body: webhookBody() })).status, 201, "per workspace");
    const race = await Promise.all(Array.from({ length: 8 }, () => api(w.mf, "POST", "/api/v1/webhooks", { ...at("ws_race"), body: webhookBody() })));
    assert.deepEqual(race.map((r) => r.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409]);
    assert.equal(await n("ws_race"), 3);
  } finally {
    await w.mf.dispose();
  }
});

test("webhooks record and render created_by / updated_by from the token's sub", async () => {
  const ws = "ws_authors";
  const created = await api(mf, "POST", "/api/v1/webhooks", { ...at(ws, "admin", { sub: "usr_alice" }), body: webhookBody() });
  assert.equal(created.status, 201);
  assert.equal(created.json.created_by, "usr_alice");
  assert.equal(created.json.updated_by, "usr_alice");
  const updated = await api(mf, "PUT", `/api/v1/webhooks/${created.json.id}`, { ...at(ws, "admin", { sub: "usr_bob" }), body: { active: false } });
  assert.equal(updated.json.created_by, "usr_alice");
  assert.equal(updated.json.updated_by, "usr_bob");
  const got = await api(mf, "GET", `/api/v1/webhooks/${created.json.id}`, at(ws, "manager"));
  assert.deepEqual([got.json.created_by, got.json.updated_by], ["usr_alice", "usr_bob"]);
  const row = await db.prepare("SELECT created_by, updated_by FROM webhooks WHERE id = ?").bind(created.json.id).first();
  assert.deepEqual({ ...row }, { created_by: "usr_alice", updated_by: "usr_bob" });
  const rotated = await api(mf, "POST", `/api/v1/webhooks/${created.json.id}/secret/rotate`, { ...at(ws, "admin", { sub: "usr_carol" }), body: {} });
  assert.equal(rotated.status, 200);
  const after = await api(mf, "GET", `/api/v1/webhooks/${created.json.id}`, at(ws, "manager"));
  assert.deepEqual([after.json.created_by, after.json.updated_by], ["usr_alice", "usr_carol"]);
  assert.ok(Date.parse(after.json.updated_at) >= Date.parse(got.json.updated_at));
});
