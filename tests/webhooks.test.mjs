// Webhook management API: CRUD, validation rules and boundaries, SSRF through the API,
// roles and tenant isolation (SPEC §2, §4.2, §4.3).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, api, token, createWebhook, webhookBody } from "./helpers.mjs";

let mf, db;
before(async () => ({ mf, db } = await startWorker()));
after(async () => mf?.dispose());

const manager = token({ role: "manager" });
const member = token({ role: "member" });
const otherAdmin = token({ workspace: "ws_other" });

test("create applies defaults and returns the secret only once, in the 201", async () => {
  const res = await api(mf, "POST", "/api/v1/webhooks", {
    body: webhookBody({ secret: "whsec_super_secret_value_1234" }),
  });
  assert.equal(res.status, 201);
  const w = res.json;
  assert.match(w.id, /^wh_[0-9a-f]{24}$/);
  assert.equal(w.active, true);
  assert.equal(w.retry_count, 3);
  assert.equal(w.timeout_ms, 10000);
  assert.deepEqual(w.headers, {});
  assert.equal(w.has_secret, true);
  assert.equal(w.secret_hint, "…1234");
  assert.equal(w.disabled_reason, null);
  assert.match(w.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(w.secret, "whsec_super_secret_value_1234", "the 201 carries the secret once (SPEC §8.1)");
  const got = await api(mf, "GET", `/api/v1/webhooks/${w.id}`);
  assert.ok(!got.text.includes("super_secret"));
  assert.equal(got.json.secret, undefined);
  const list = await api(mf, "GET", "/api/v1/webhooks");
  assert.ok(!list.text.includes("super_secret"));
  const row = await db.prepare("SELECT * FROM webhooks WHERE id = ?").bind(w.id).first();
  assert.equal(row.secret, null, "no clear secret at rest");
  assert.ok(!JSON.stringify(row).includes("super_secret"), "stored sealed for signing");
  assert.match(row.secrets_enc, /^v1:[0-9a-f]{8}:/);
});

test("without a secret, create generates a whsec_ secret and shows it once", async () => {
  const res = await api(mf, "POST", "/api/v1/webhooks", { body: webhookBody() });
  assert.equal(res.status, 201);
  assert.match(res.json.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(res.json.secret.slice(6), "base64").length, 32);
  assert.equal(res.json.has_secret, true);
  assert.equal(res.json.secret_hint, "…" + res.json.secret.slice(-4));
  const other = await api(mf, "POST", "/api/v1/webhooks", { body: webhookBody() });
  assert.notEqual(other.json.secret, res.json.secret);
  const got = await api(mf, "GET", `/api/v1/webhooks/${res.json.id}`);
  assert.ok(!got.text.includes(res.json.secret));
  assert.equal(got.json.has_secret, true);
});

test("full CRUD round trip with partial PUT, secret removal and DELETE of logs", async () => {
  const w = await createWebhook(mf, { name: "Round trip", secret: "0123456789abcdef", headers: { "X-Tenant": "a" } });
  const list = await api(mf, "GET", "/api/v1/webhooks");
  assert.equal(list.status, 200);
  assert.ok(list.json.data.some((x) => x.id === w.id));

  const got = await api(mf, "GET", `/api/v1/webhooks/${w.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.json.recent_logs, []);
  assert.equal(got.json.name, "Round trip");

  const put = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { name: "Renamed", timeout_ms: 5000 } });
  assert.equal(put.status, 200);
  assert.equal(put.json.name, "Renamed");
  assert.equal(put.json.timeout_ms, 5000);
  assert.equal(put.json.url, w.url, "omitted fields stay");
  assert.deepEqual(put.json.headers, { "X-Tenant": "a" });
  assert.equal(put.json.has_secret, true);

  const headers = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { headers: { "X-Other": "b" } } });
  assert.deepEqual(headers.json.headers, { "X-Other": "b" }, "headers replace the map");

  // Every webhook is signed (SPEC §8.1): the secret cannot be removed, only rotated.
  const noSecret = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { secret: null } });
  assert.equal(noSecret.status, 400);
  assert.equal(noSecret.json.error.code, "validation_error");
  assert.match(noSecret.json.error.fields.secret, /rotate/);
  const replaced = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { secret: "fedcba9876543210" } });
  assert.equal(replaced.json.has_secret, true);
  assert.equal(replaced.json.secret_hint, "…3210");
  assert.equal(replaced.json.secret, undefined, "only the create response shows a secret");
  const stored = await db.prepare("SELECT secret, name FROM webhooks WHERE id = ?").bind(w.id).first();
  assert.equal(stored.secret, null);
  assert.equal(stored.name, "Renamed");

  // Seed a log and an attempt, then delete: nothing of the webhook may remain.
  const now = Date.now();
  await db.batch([
    db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at) VALUES ('dlv_del1', 'ws_a', ?, 'evt_x', 'flight.departed', 'failed', 1, 1, ?, ?)").bind(w.id, now, now),
    db.prepare("INSERT INTO delivery_attempts (log_id, attempt, attempted_at, duration_ms) VALUES ('dlv_del1', 1, ?, 5)").bind(now),
  ]);
  const del = await api(mf, "DELETE", `/api/v1/webhooks/${w.id}`);
  assert.equal(del.status, 204);
  assert.equal(del.text, "");
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${w.id}`)).status, 404);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ?").bind(w.id).first()).n, 0);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_attempts WHERE log_id = 'dlv_del1'").first()).n, 0);
  assert.equal((await api(mf, "DELETE", `/api/v1/webhooks/${w.id}`)).status, 404);
});

async function expectFieldError(body, field, method = "POST", path = "/api/v1/webhooks") {
  const before = (await db.prepare("SELECT COUNT(*) AS n, MAX(updated_at) AS u FROM webhooks").first());
  const res = await api(mf, method, path, { body });
  assert.equal(res.status, 400, `${JSON.stringify(body).slice(0, 80)} → ${res.text}`);
  assert.equal(res.json.error.code, "validation_error");
  assert.ok(res.json.error.fields[field], `expected field ${field} in ${JSON.stringify(res.json.error.fields)}`);
  const afterRow = (await db.prepare("SELECT COUNT(*) AS n, MAX(updated_at) AS u FROM webhooks").first());
  assert.deepEqual(afterRow, before, "a rejected request changes nothing");
}

async function expectCreated(body) {
  const res = await api(mf, "POST", "/api/v1/webhooks", { body });
  assert.equal(res.status, 201, `${JSON.stringify(body).slice(0, 80)} → ${res.text}`);
  return res.json;
}

test("name: 100 characters pass, 101 fail, blank and non-string fail", async () => {
  await expectCreated(webhookBody({ name: "n".repeat(100) }));
  await expectFieldError(webhookBody({ name: "n".repeat(101) }), "name");
  await expectFieldError(webhookBody({ name: "   " }), "name");
  await expectFieldError(webhookBody({ name: 42 }), "name");
  const { name, ...noName } = webhookBody();
  await expectFieldError(noName, "name");
});

test("retry_count boundaries -1/0/10/11 and type errors", async () => {
  assert.equal((await expectCreated(webhookBody({ retry_count: 0 }))).retry_count, 0);
  assert.equal((await expectCreated(webhookBody({ retry_count: 10 }))).retry_count, 10);
  await expectFieldError(webhookBody({ retry_count: -1 }), "retry_count");
  await expectFieldError(webhookBody({ retry_count: 11 }), "retry_count");
  await expectFieldError(webhookBody({ retry_count: 2.5 }), "retry_count");
  await expectFieldError(webhookBody({ retry_count: "3" }), "retry_count");
});

test("timeout_ms boundaries 999/1000/30000/30001", async () => {
  assert.equal((await expectCreated(webhookBody({ timeout_ms: 1000 }))).timeout_ms, 1000);
  assert.equal((await expectCreated(webhookBody({ timeout_ms: 30000 }))).timeout_ms, 30000);
  await expectFieldError(webhookBody({ timeout_ms: 999 }), "timeout_ms");
  await expectFieldError(webhookBody({ timeout_ms: 30001 }), "timeout_ms");
  await expectFieldError(webhookBody({ timeout_ms: null }), "timeout_ms");
});

test("events: empty, unknown, wrong type rejected; duplicates collapse", async () => {
  await expectFieldError(webhookBody({ events: [] }), "events");
  await expectFieldError(webhookBody({ events: ["flight.landed"] }), "events");
  await expectFieldError(webhookBody({ events: "flight.departed" }), "events");
  await expectFieldError(webhookBody({ events: [7] }), "events");
  const w = await expectCreated(webhookBody({ events: ["invoice.paid", "invoice.paid", "flight.arrived"] }));
  assert.deepEqual(w.events, ["invoice.paid", "flight.arrived"]);
});

test("url: https only, no credentials, no fragment, length, SSRF on create and update", async () => {
  await expectFieldError(webhookBody({ url: "http://example.com/hook" }), "url");
  await expectFieldError(webhookBody({ url: "https://user:pw@example.com/hook" }), "url");
  await expectFieldError(webhookBody({ url: "https://example.com/hook#frag" }), "url");
  await expectFieldError(webhookBody({ url: "not a url" }), "url");
  await expectFieldError(webhookBody({ url: "https://example.com/" + "a".repeat(2048) }), "url");
  for (const blocked of [
    "https://127.0.0.1/x", "https://localhost/x", "https://169.254.169.254/latest/meta-data", "https://10.0.0.8/",
    "https://[::1]/", "https://0x7f.1/", "https://2130706433/", "https://[::ffff:192.168.0.1]/",
    "https://metadata.google.internal/", "https://printer.local/", "https://192.168.1.1./",
  ]) {
    await expectFieldError(webhookBody({ url: blocked }), "url");
  }
  const w = await createWebhook(mf);
  await expectFieldError({ url: "https://172.16.0.1/" }, "url", "PUT", `/api/v1/webhooks/${w.id}`);
  await expectFieldError({ url: "https://[fd00::1]/" }, "url", "PUT", `/api/v1/webhooks/${w.id}`);
  const ok = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { url: "https://8.8.8.8/hook" } });
  assert.equal(ok.status, 200);
});

test("secret length 16–256 and type", async () => {
  await expectCreated(webhookBody({ secret: "s".repeat(16) }));
  await expectCreated(webhookBody({ secret: "s".repeat(256) }));
  await expectFieldError(webhookBody({ secret: "s".repeat(15) }), "secret");
  await expectFieldError(webhookBody({ secret: "s".repeat(257) }), "secret");
  await expectFieldError(webhookBody({ secret: 1234567890123456 }), "secret");
});

test("custom headers: reserved names, CR/LF, invalid names, more than 20", async () => {
  for (const headers of [
    { "Content-Type": "text/plain" }, { host: "x" }, { "User-Agent": "x" }, { "Content-Length": "1" },
    { "Transfer-Encoding": "chunked" }, { Connection: "close" }, { "X-Webhook-Signature": "sha256=forged" },
    { "x-webhook-id": "x" }, { "webhook-signature": "v1,forged" }, { "Webhook-Id": "x" }, { "X-Ok": "a\r\nX-Injected: 1" }, { "X-Ok": "a\nb" }, { "Bad Name": "x" },
    { "X-Num": 5 }, { "X-A": "1", "x-a": "2" },
  ]) {
    await expectFieldError(webhookBody({ headers }), "headers");
  }
  const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, "v"]));
  await expectFieldError(webhookBody({ headers: many }), "headers");
  const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-H${i}`, "v"]));
  assert.equal(Object.keys((await expectCreated(webhookBody({ headers: twenty }))).headers).length, 20);
});

test("wrong JSON types, unknown field and several violations reported together", async () => {
  const res = await api(mf, "POST", "/api/v1/webhooks", {
    body: { name: "", url: 5, events: {}, active: "yes", retry_count: 99, extra: true },
  });
  assert.equal(res.status, 400);
  const fields = Object.keys(res.json.error.fields).sort();
  assert.deepEqual(fields, ["active", "events", "extra", "name", "retry_count", "url"]);
  await expectFieldError(webhookBody({ active: "true" }), "active");
});

test("PUT validates too, and an empty id path segment is not a webhook", async () => {
  const w = await createWebhook(mf);
  await expectFieldError({ retry_count: 11 }, "retry_count", "PUT", `/api/v1/webhooks/${w.id}`);
  await expectFieldError({ name: null }, "name", "PUT", `/api/v1/webhooks/${w.id}`);
  await expectFieldError({ bogus: 1 }, "bogus", "PUT", `/api/v1/webhooks/${w.id}`);
  const big = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { name: "x".repeat(70000) } });
  assert.equal(big.status, 413);
  assert.equal((await api(mf, "GET", "/api/v1/webhooks/not-an-id")).status, 404);
});

test("roles: manager reads but cannot write; member is forbidden", async () => {
  const w = await createWebhook(mf);
  assert.equal((await api(mf, "GET", "/api/v1/webhooks", { auth: manager })).status, 200);
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${w.id}`, { auth: manager })).status, 200);
  assert.equal((await api(mf, "GET", "/api/v1/webhooks/logs", { auth: manager })).status, 200);
  for (const [method, path, body] of [
    ["POST", "/api/v1/webhooks", webhookBody()],
    ["PUT", `/api/v1/webhooks/${w.id}`, { name: "hijack" }],
    ["DELETE", `/api/v1/webhooks/${w.id}`, undefined],
  ]) {
    const res = await api(mf, method, path, { auth: manager, body });
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.equal(res.json.error.code, "forbidden");
  }
  for (const path of ["/api/v1/webhooks", `/api/v1/webhooks/${w.id}`, "/api/v1/webhooks/logs"]) {
    assert.equal((await api(mf, "GET", path, { auth: member })).status, 403, path);
  }
  const still = await api(mf, "GET", `/api/v1/webhooks/${w.id}`);
  assert.equal(still.json.name, w.name, "manager's PUT changed nothing");
});

test("tenants never see each other: another workspace's id is 404 for every verb", async () => {
  const w = await createWebhook(mf, { name: "Mine" });
  const now = Date.now();
  await db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, created_at, updated_at) VALUES ('dlv_iso1', 'ws_a', ?, 'evt_iso', 'flight.departed', 'failed', 1, 1, ?, ?)").bind(w.id, now, now).run();
  for (const [method, path, body] of [
    ["GET", `/api/v1/webhooks/${w.id}`],
    ["PUT", `/api/v1/webhooks/${w.id}`, { name: "stolen" }],
    ["DELETE", `/api/v1/webhooks/${w.id}`],
    ["POST", `/api/v1/webhooks/${w.id}/test`, {}],
    ["POST", "/api/v1/webhooks/logs/dlv_iso1/redeliver", {}],
  ]) {
    const res = await api(mf, method, path, { auth: otherAdmin, body });
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(res.json.error.code, "not_found");
    assert.ok(!res.text.includes("Mine"));
  }
  const list = await api(mf, "GET", "/api/v1/webhooks", { auth: otherAdmin });
  assert.ok(!list.json.data.some((x) => x.id === w.id));
  const logs = await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${w.id}`, { auth: otherAdmin });
  assert.equal(logs.json.total, 0);
  const mine = await api(mf, "GET", `/api/v1/webhooks/${w.id}`);
  assert.equal(mine.json.name, "Mine");
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE id = 'dlv_iso1'").first()).n, 1);
});

test("dev flag lifts private-address rules and allows http", async () => {
  const dev = await startWorker({ bindings: { DEV_ALLOW_PRIVATE_TARGETS: "true" } });
  try {
    const res = await api(dev.mf, "POST", "/api/v1/webhooks", { body: webhookBody({ url: "http://localhost:9000/hook" }) });
    assert.equal(res.status, 201);
    const cred = await api(dev.mf, "POST", "/api/v1/webhooks", { body: webhookBody({ url: "http://u:p@localhost/x" }) });
    assert.equal(cred.status, 400);
  } finally {
    await dev.mf.dispose();
  }
});

test("the webhook list pages by cursor: limit 1-100 (default 50), every webhook once, newest first", async () => {
  const auth = token({ workspace: "ws_pages" });
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await createWebhook(mf, { name: `page ${i}` }, { auth })).id);
  const all = await api(mf, "GET", "/api/v1/webhooks", { auth });
  assert.equal(all.json.data.length, 7);
  assert.equal(all.json.next_cursor, null);
  assert.deepEqual(all.json.data.map((w) => w.id), [...ids].reverse(), "newest first");
  const seen = [];
  let cursor = null;
  do {
    const page = await api(mf, "GET", `/api/v1/webhooks?limit=3${cursor ? `&cursor=${cursor}` : ""}`, { auth });
    assert.equal(page.status, 200);
    assert.ok(page.json.data.length <= 3);
    seen.push(...page.json.data.map((w) => w.id));
    cursor = page.json.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, all.json.data.map((w) => w.id));
  for (const [query, field] of [["?limit=0", "limit"], ["?limit=101", "limit"], ["?cursor=zzz", "cursor"], ["?offset=2", "offset"]]) {
    const bad = await api(mf, "GET", `/api/v1/webhooks${query}`, { auth });
    assert.equal(bad.status, 400, query);
    assert.ok(bad.json.error.fields[field], `${query}: ${bad.text}`);
  }
});
