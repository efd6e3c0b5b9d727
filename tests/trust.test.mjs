// Trust, round 3 (SPEC §9.4): each finding of the security review, as a user or an
// attacker would meet it, end to end against D1, the queue and a receiver.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { spawnSync } from "node:child_process";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { startWorker, api, token, createWebhook, waitFor, ROOT } from "./helpers.mjs";

/** Every request the receiver got, by path: the exact bytes and headers. */
const received = new Map();
const behaviours = new Map();
async function receiver(request) {
  const url = new URL(request.url);
  const body = Buffer.from(await request.arrayBuffer());
  const entry = { headers: Object.fromEntries(request.headers), raw: [...request.headers], body };
  if (!received.has(url.pathname)) received.set(url.pathname, []);
  received.get(url.pathname).push(entry);
  const behave = behaviours.get(url.pathname);
  return behave ? behave(entry, received.get(url.pathname).length) : new Response("ok");
}

const logLines = [];
let mf, db;
before(async () => ({ mf, db } = await startWorker({ receiver, onLog: (l) => logLines.push(l) })));
after(async () => mf?.dispose());

let counter = 0;
async function hook(overrides = {}, { behave, workspace = "ws_trust" } = {}) {
  const path = `/t${++counter}`;
  if (behave) behaviours.set(path, behave);
  const w = await createWebhook(mf, { url: `https://receiver.example.com${path}`, events: ["flight.departed"], ...overrides },
    { auth: token({ workspace }) });
  return { ...w, path };
}
const admin = token({ workspace: "ws_trust", role: "admin" });
const manager = token({ workspace: "ws_trust", role: "manager" });
const as = (auth) => ({ auth });
const sendTest = (w, auth = admin) => api(mf, "POST", `/api/v1/webhooks/${w.id}/test`, { auth, body: { event_type: "flight.departed" } });

test("a PUT that sends back a masked header value keeps the stored value; non-ASCII values are refused", async () => {
  // Main stored the mask: the receiver then got `â¢â¢â¢â¢1234` instead of the credential.
  const w = await hook({ headers: { Authorization: "Bearer live-abcdef1234", "X-Tenant": "fbo-1" } });
  const shown = (await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(admin))).json.headers;
  assert.equal(shown.Authorization, "••••1234");
  const put = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { headers: { ...shown, "X-Region": "eu" } } });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.headers.Authorization, "••••1234");
  assert.equal((await sendTest(w)).status, 200);
  const got = received.get(w.path).at(-1).headers;
  assert.equal(got.authorization, "Bearer live-abcdef1234");
  assert.equal(got["x-region"], "eu");

  // A value outside visible ASCII (a mask of another value included) changes nothing.
  for (const bad of ["••••9999", "café", "a\u007fb", "\u00a0"]) {
    const res = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { headers: { Authorization: bad } } });
    assert.equal(res.status, 400, bad);
    assert.equal(res.json.error.code, "validation_error");
    assert.match(res.json.error.fields.headers, /visible ASCII/);
  }
  const created = await api(mf, "POST", "/api/v1/webhooks", { auth: admin, body: {
    name: "n", url: "https://receiver.example.com/x", events: ["flight.departed"], headers: { Authorization: "••••1234" } } });
  assert.equal(created.status, 400);
  assert.equal((await sendTest(w)).status, 200);
  assert.equal(received.get(w.path).at(-1).headers.authorization, "Bearer live-abcdef1234");
});

test("managers see no custom header value; log detail masks header values echoed in response excerpts", async () => {
  // Main masked by name only: a manager saw X-Credential in full, and everyone saw the
  // echoed `authorization: Bearer live-…` in the stored excerpt.
  const headers = { Authorization: "Bearer live-abcdef1234", "X-Credential": "cred-0123456789", "X-Tenant": "fbo-77" };
  const echo = (entry) => new Response(JSON.stringify(entry.headers), { headers: { "Content-Type": "application/json" } });
  const w = await hook({ headers }, { behave: echo });
  const byManager = (await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(manager))).json;
  assert.deepEqual(byManager.headers, { Authorization: "••••1234", "X-Credential": "••••6789", "X-Tenant": "••••" });
  const listed = (await api(mf, "GET", "/api/v1/webhooks", as(manager))).json.data.find((x) => x.id === w.id);
  assert.deepEqual(listed.headers, byManager.headers);
  const byAdmin = (await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(admin))).json;
  assert.deepEqual(byAdmin.headers, { Authorization: "••••1234", "X-Credential": "cred-0123456789", "X-Tenant": "fbo-77" });

  const sent = await sendTest(w, manager);
  assert.equal(sent.status, 200);
  assert.equal(received.get(w.path).at(-1).headers.authorization, "Bearer live-abcdef1234", "the receiver gets the real value");
  for (const text of [sent.text]) {
    assert.doesNotMatch(text, /live-abcdef1234|cred-0123456789|fbo-77/);
  }
  const id = sent.json.id;
  const asManager = await api(mf, "GET", `/api/v1/webhooks/logs/${id}`, as(manager));
  assert.doesNotMatch(asManager.text, /live-abcdef1234|cred-0123456789|fbo-77/);
  const excerpt = JSON.parse(asManager.json.attempt_history[0].response_body);
  assert.equal(excerpt.authorization, "••••1234");
  assert.equal(excerpt["x-tenant"], "••••");
  assert.equal(asManager.json.request_headers.find((h) => h.name === "X-Tenant").value, "••••");
  const asAdmin = await api(mf, "GET", `/api/v1/webhooks/logs/${id}`, as(admin));
  assert.doesNotMatch(asAdmin.text, /live-abcdef1234/);
  const adminExcerpt = JSON.parse(asAdmin.json.response_body);
  assert.equal(adminExcerpt.authorization, "••••1234");
  assert.equal(adminExcerpt["x-tenant"], "fbo-77");
  const recent = (await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(manager))).json.recent_logs[0];
  assert.doesNotMatch(recent.response_body, /live-abcdef1234|fbo-77/);
});

test("redelivering or recovering a test delivery makes a test delivery again", async () => {
  // Main sent the catalog example as a real event: no X-Webhook-Test, "test": false.
  const w = await hook({ retry_count: 0 }, { behave: (_, n) => new Response("no", { status: n === 1 ? 500 : 200 }) });
  const sent = await sendTest(w, manager);
  assert.equal(sent.json.status, "failed");
  assert.equal(sent.json.test, true);
  const again = await api(mf, "POST", `/api/v1/webhooks/logs/${sent.json.id}/redeliver`, as(manager));
  assert.equal(again.status, 202);
  assert.equal(again.json.test, true);
  await waitFor(() => received.get(w.path).length >= 2, { what: "the redelivery" });
  assert.equal(received.get(w.path)[1].headers["x-webhook-test"], "true");
  assert.equal(received.get(w.path)[1].body.toString(), received.get(w.path)[0].body.toString());

  const failing = await hook({ retry_count: 0 }, { behave: (_, n) => new Response("no", { status: n === 1 ? 500 : 200 }) });
  const first = await sendTest(failing);
  assert.equal(first.json.status, "failed");
  const since = new Date(Date.now() - 60_000).toISOString();
  const rec = await api(mf, "POST", `/api/v1/webhooks/${failing.id}/recover`, { auth: admin, body: { since } });
  assert.equal(rec.status, 202);
  assert.equal(rec.json.recovering, 1);
  await waitFor(() => received.get(failing.path).length >= 2, { what: "the recovered test" });
  assert.equal(received.get(failing.path)[1].headers["x-webhook-test"], "true");
  const row = await db.prepare("SELECT test, max_attempts FROM delivery_logs WHERE redelivery_of = ?").bind(first.json.id).first();
  assert.deepEqual({ ...row }, { test: 1, max_attempts: 1 });
});

test("recover skips what is already redelivered, runs once per webhook at a time, and not before the retention", async () => {
  // Main: each recover redelivered every failed original again (5 recovers → 60 logs),
  // a second recover during the first was accepted, and `since` could be 1970.
  let failing = true;
  const w = await hook({ retry_count: 0 }, { behave: () => new Response("x", { status: failing ? 500 : 200 }) });
  const auth = token({ workspace: "ws_trust", role: "admin" });
  for (let i = 0; i < 3; i++) {
    assert.equal((await api(mf, "POST", "/api/v1/events", { auth, body: { type: "flight.departed", data: { i } } })).status, 202);
  }
  const countFailed = async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ? AND status = 'failed'").bind(w.id).first()).n;
  const countAll = async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ?").bind(w.id).first()).n;
  await waitFor(async () => (await countFailed()) === 3, { what: "3 failed deliveries" });
  const since = new Date(Date.now() - 3_600_000).toISOString();
  const recover = () => api(mf, "POST", `/api/v1/webhooks/${w.id}/recover`, { auth, body: { since } });

  const old = await api(mf, "POST", `/api/v1/webhooks/${w.id}/recover`, { auth, body: { since: "1970-01-01T00:00:00Z" } });
  assert.equal(old.status, 400);
  assert.match(old.json.error.fields.since, /retention/);

  // Another recovery holds the webhook: 409, nothing created.
  await db.prepare("UPDATE webhooks SET recover_job = 'rcv_other', recover_until = ? WHERE id = ?").bind(Date.now() + 60_000, w.id).run();
  const held = await recover();
  assert.equal(held.status, 409);
  assert.equal(held.json.error.code, "conflict");
  assert.equal(await countAll(), 3);
  await db.prepare("UPDATE webhooks SET recover_job = NULL, recover_until = NULL WHERE id = ?").bind(w.id).run();

  failing = false;
  const first = await recover();
  assert.equal(first.status, 202);
  assert.equal(first.json.recovering, 3);
  await waitFor(async () => (await db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE webhook_id = ? AND status = 'success'").bind(w.id).first()).n === 3,
    { what: "3 successful redeliveries" });
  await waitFor(async () => (await db.prepare("SELECT recover_job FROM webhooks WHERE id = ?").bind(w.id).first()).recover_job === null,
    { what: "the recovery to let go" });
  for (let i = 0; i < 3; i++) {
    const again = await recover();
    assert.equal(again.status, 202);
    assert.equal(again.json.recovering, 0, "originals with a successful redelivery are skipped");
  }
  assert.equal(await countAll(), 6);
});

test("tokens: iat is required, exp − iat at most AUTH_MAX_TOKEN_LIFETIME_SECONDS, aud from wrangler.toml; npm run token mints one that works", async () => {
  // Main accepted a token without `iat` and one valid until 2100 (200).
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    [token({ workspace: "ws_trust", claims: { iat: undefined } }), 401, /iat/],
    [token({ workspace: "ws_trust", exp: 4102444800 }), 401, /lifetime/],
    [token({ workspace: "ws_trust", exp: now + 86_401, claims: { iat: now } }), 401, /lifetime/],
    [token({ workspace: "ws_trust", claims: { iat: now + 3600 } }), 401, /not valid yet/],
    [token({ workspace: "ws_trust", claims: { aud: "billing" } }), 401, /audience/],
    [token({ workspace: "ws_trust", exp: now + 86_000 }), 200],
  ];
  for (const [auth, status, message] of cases) {
    const res = await api(mf, "GET", "/api/v1/webhooks", { auth });
    assert.equal(res.status, status, res.text);
    if (message) {
      assert.match(res.json.error.message, message);
      assert.match(res.headers.get("www-authenticate"), /^Bearer/);
    }
  }
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { execFileSync } = await import("node:child_process");
  const { JWT_SECRET, ROOT } = await import("./helpers.mjs");
  const dir = mkdtempSync(join(tmpdir(), "token-"));
  try {
    writeFileSync(join(dir, ".dev.vars"), `AUTH_JWT_SECRET="${JWT_SECRET}"\n`);
    const minted = execFileSync("node", ["scripts/token.mjs", "--workspace", "ws_trust", "--role", "manager", "--vars", join(dir, ".dev.vars")],
      { cwd: ROOT, encoding: "utf8" }).trim();
    const claims = JSON.parse(Buffer.from(minted.split(".")[1], "base64url").toString());
    assert.equal(claims.aud, "planeconnection-webhooks");
    assert.equal(claims.exp - claims.iat, 86400);
    assert.equal((await api(mf, "GET", "/api/v1/webhooks", { auth: minted })).status, 200);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("one webhook whose sealed values do not open renders as undecryptable; its deliveries fail; rotating repairs it", async () => {
  // Main: swapped sealed columns on one row made the whole list 500.
  const workspace = "ws_badrow";
  const auth = token({ workspace });
  const bad = await hook({ headers: { "X-Tenant": "fbo-1" }, retry_count: 0 }, { workspace });
  const good = await hook({ retry_count: 0 }, { workspace });
  await db.prepare("UPDATE webhooks SET secrets_enc = headers_enc, headers_enc = secrets_enc WHERE id = ?").bind(bad.id).run();

  const list = await api(mf, "GET", "/api/v1/webhooks", { auth });
  assert.equal(list.status, 200, list.text);
  const status = Object.fromEntries(list.json.data.map((w) => [w.id, w.secret_status]));
  assert.deepEqual(status, { [bad.id]: "undecryptable", [good.id]: "ok" });
  const one = await api(mf, "GET", `/api/v1/webhooks/${bad.id}`, { auth });
  assert.equal(one.status, 200);
  assert.equal(one.json.secret_status, "undecryptable");
  const put = await api(mf, "PUT", `/api/v1/webhooks/${bad.id}`, { auth, body: { headers: { "X-Tenant": "fbo-2" } } });
  assert.equal(put.status, 409, put.text);
  assert.match(put.json.error.message, /rotate/);

  const before = logLines.length;
  assert.equal((await api(mf, "POST", "/api/v1/events", { auth, body: { type: "flight.departed", data: {} } })).status, 202);
  const final = async (w) => waitFor(async () => {
    const l = (await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${w.id}`, { auth })).json.data;
    return l.length && l[0].status !== "pending" ? l[0] : null;
  }, { what: `final log of ${w.id}` });
  const failed = await final(bad);
  assert.equal(failed.status, "failed");
  assert.match(failed.error, /not sent: .*decrypt/);
  assert.equal((await final(good)).status, "success");
  assert.equal(received.get(bad.path), undefined);
  await waitFor(() => logLines.slice(before).some((l) => l.includes("do not open") && l.includes(bad.id)), { what: "the logged reason" });

  const rotated = await api(mf, "POST", `/api/v1/webhooks/${bad.id}/secret/rotate`, { auth, body: {} });
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.json.previous_expires_at, null);
  const repaired = await api(mf, "GET", `/api/v1/webhooks/${bad.id}`, { auth });
  assert.equal(repaired.json.secret_status, "ok");
  const sent = await sendTest(bad, auth);
  assert.equal(sent.json.status, "success");
  const got = received.get(bad.path).at(-1);
  const { Webhook } = await import("standardwebhooks");
  assert.doesNotThrow(() => new Webhook(rotated.json.secret).verify(got.body.toString(), got.headers));
});

test("legacy_signature: false sends no X-Webhook-Signature (it covers no timestamp), only the Standard Webhooks headers", async () => {
  // Main had no such field (400 unknown field) and always sent the replayable header.
  const w = await hook({ legacy_signature: false, retry_count: 0 });
  assert.equal(w.legacy_signature, false);
  await api(mf, "POST", `/api/v1/webhooks/${w.id}/secret/rotate`, { auth: admin, body: { grace_seconds: 600 } });
  assert.equal((await sendTest(w)).status, 200);
  const got = received.get(w.path).at(-1).headers;
  assert.equal(got["x-webhook-signature"], undefined);
  assert.equal(got["x-webhook-signature-previous"], undefined);
  assert.equal(got["webhook-signature"].split(" ").length, 2, "current and previous secret, timestamped");
  const detail = await api(mf, "GET", `/api/v1/webhooks/logs/${(await sendTest(w)).json.id}`, as(admin));
  assert.ok(!detail.json.request_headers.some((h) => h.name === "X-Webhook-Signature"));

  const on = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { legacy_signature: true } });
  assert.equal(on.json.legacy_signature, true);
  await sendTest(w);
  assert.match(received.get(w.path).at(-1).headers["x-webhook-signature"], /^sha256=[0-9a-f]{64}$/);
  const def = await hook();
  assert.equal(def.legacy_signature, true, "default true");
  const bad = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { legacy_signature: "no" } });
  assert.equal(bad.status, 400);
  assert.ok(bad.json.error.fields.legacy_signature);
});

// ---- Ed25519 (v1a) ------------------------------------------------------------------

/** A `whpk_` key as Node's KeyObject: SPKI DER = Ed25519's fixed 12-byte header + the 32 raw bytes. */
function ed25519Key(whpk) {
  assert.match(whpk, /^whpk_[A-Za-z0-9+/]{43}=$/);
  const raw = Buffer.from(whpk.slice(5), "base64");
  assert.equal(raw.length, 32);
  return createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]), format: "der", type: "spki" });
}

/** The `v1a` entries of a delivery each checked with Node's `crypto.verify`: which keys verify which entry. */
function v1aVerifies(got, whpk) {
  const message = Buffer.concat([Buffer.from(`${got.headers["webhook-id"]}.${got.headers["webhook-timestamp"]}.`), got.body]);
  return got.headers["webhook-signature"].split(" ").map((entry) => {
    const [version, sig] = entry.split(",");
    return version === "v1a" && cryptoVerify(null, message, ed25519Key(whpk), Buffer.from(sig, "base64"));
  });
}

/** Runs a receiver example with deliveries on stdin; returns its output lines. */
function runExample(cmd, args, secret, deliveries) {
  const input = JSON.stringify({ secret, deliveries: deliveries.map((d) => ({ headers: d.headers, body_base64: d.body.toString("base64") })) });
  const r = spawnSync(cmd, args, { input, encoding: "utf8", cwd: ROOT });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim().split("\n");
}

const rotateKey = (w, body) => api(mf, "POST", `/api/v1/webhooks/${w.id}/secret/rotate`, { auth: admin, body });
const rowOf = (w) => db.prepare("SELECT * FROM webhooks WHERE id = ?").bind(w.id).first();

test("an ed25519 webhook signs v1a only; Node's crypto.verify and the JS, Python (and Rust) receivers verify it with the whpk_ key", async () => {
  // Main: `signing` was an unknown field (400) and every delivery was HMAC-signed.
  const w = await hook({ signing: "ed25519", retry_count: 0 });
  assert.equal(w.signing, "ed25519");
  assert.equal(w.secret, undefined, "no secret is shown, the private key never");
  assert.equal(w.has_secret, true);
  ed25519Key(w.public_key);
  assert.equal((await api(mf, "POST", "/api/v1/events", { auth: admin, body: { type: "flight.departed", data: { n: "ünï ✈" } } })).status, 202);
  assert.equal((await api(mf, "POST", "/api/v1/events", { auth: admin, body: { type: "flight.departed", data: { pad: "x".repeat(100_000) } } })).status, 202);
  await waitFor(() => (received.get(w.path)?.length ?? 0) >= 2, { what: "2 queued deliveries" });
  assert.equal((await sendTest(w)).json.status, "success");
  const all = received.get(w.path);
  assert.equal(all.length, 3);
  for (const got of all) {
    assert.match(got.headers["webhook-signature"], /^v1a,[A-Za-z0-9+/]{86}==$/, "one v1a entry, no v1");
    assert.equal(got.headers["x-webhook-signature"], undefined, "no replayable seed header");
    assert.equal(got.headers["x-webhook-signature-previous"], undefined);
    assert.deepEqual(v1aVerifies(got, w.public_key), [true]);
    assert.deepEqual(v1aVerifies({ ...got, body: Buffer.concat([got.body, Buffer.from(" ")]) }, w.public_key), [false]);
    assert.throws(() => new StandardWebhook("whsec_" + Buffer.alloc(32).toString("base64")).verify(got.body.toString(), got.headers));
  }
  assert.ok(all.some((g) => g.body.length > 100_000), "a large body too");

  const [first, second, third] = all;
  const tampered = { ...second, body: Buffer.concat([second.body, Buffer.from(" ")]) };
  const replayed = { ...first, headers: { ...first.headers, "webhook-id": "dlv_other" } };
  const noHeaders = { ...third, headers: Object.fromEntries(Object.entries(third.headers).filter(([k]) => !k.startsWith("webhook-"))) };
  const deliveries = [first, first, second, third, tampered, replayed, noHeaders];
  const expected = ["accepted", "duplicate", "accepted", "accepted", "rejected: no matching webhook-signature",
                    "rejected: no matching webhook-signature", "rejected: no webhook-signature"];
  assert.deepEqual(runExample("node", ["examples/receivers/verify.mjs"], w.public_key, deliveries), expected);
  assert.deepEqual(runExample("python3", ["examples/receivers/verify.py"], w.public_key, deliveries), expected);
  const otherKey = (await hook({ signing: "ed25519" })).public_key;
  assert.deepEqual(runExample("python3", ["examples/receivers/verify.py"], otherKey, [first]), ["rejected: no matching webhook-signature"]);
  assert.deepEqual(runExample("cargo", ["run", "--quiet", "--release", "--example", "verify_receiver"], w.public_key, deliveries), expected);

  // The public key at any time; the private key never, in any response or in clear in D1.
  const got = await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(admin));
  assert.equal(got.json.public_key, w.public_key);
  assert.equal(got.json.signing, "ed25519");
  const listed = await api(mf, "GET", "/api/v1/webhooks", as(manager));
  assert.equal(listed.json.data.find((x) => x.id === w.id).public_key, w.public_key);
  const detail = await api(mf, "GET", `/api/v1/webhooks/logs/${(await sendTest(w)).json.id}`, as(admin));
  assert.ok(!detail.json.request_headers.some((h) => /^x-webhook-signature/i.test(h.name)));
  assert.ok(detail.json.request_headers.some((h) => h.name === "webhook-signature"));
  for (const text of [got.text, listed.text, detail.text]) assert.ok(!text.includes("whsk_"));
  const row = await rowOf(w);
  assert.equal(row.signing, "ed25519");
  assert.equal(row.public_key, w.public_key);
  assert.ok(!JSON.stringify(row).includes("whsk_"), "the private key is sealed");
});

test("rotating an ed25519 webhook makes a new key pair; both keys sign during the grace period", async () => {
  // Main: rotation returned a new HMAC `secret`; there was no key pair to rotate.
  const w = await hook({ signing: "ed25519", retry_count: 0 });
  const r = await rotateKey(w, { grace_seconds: 600 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.secret, undefined);
  assert.notEqual(r.json.public_key, w.public_key);
  ed25519Key(r.json.public_key);
  assert.ok(Date.parse(r.json.previous_expires_at) > Date.now() + 590_000);
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(admin))).json.public_key, r.json.public_key);
  assert.equal((await sendTest(w)).json.status, "success");
  const got = received.get(w.path).at(-1);
  assert.deepEqual(v1aVerifies(got, r.json.public_key), [true, false], "current key first");
  assert.deepEqual(v1aVerifies(got, w.public_key), [false, true], "the previous key signs during its grace");
  assert.deepEqual(runExample("node", ["examples/receivers/verify.mjs"], w.public_key, [got]), ["accepted"]);
  assert.deepEqual(runExample("python3", ["examples/receivers/verify.py"], r.json.public_key, [got]), ["accepted"]);
  // Without grace the replaced pair stops at once; the first one keeps its own grace.
  const again = await rotateKey(w, { grace_seconds: 0 });
  assert.equal((await sendTest(w)).json.status, "success");
  const last = received.get(w.path).at(-1);
  assert.deepEqual(v1aVerifies(last, again.json.public_key), [true, false]);
  assert.deepEqual(v1aVerifies(last, r.json.public_key), [false, false]);
  assert.deepEqual(v1aVerifies(last, w.public_key), [false, true]);
});

test("a secret given with signing ed25519 is a validation_error on create, update and rotate, and changes nothing", async () => {
  // Main: create answered 400 only for the unknown `signing` field; there was no rule.
  const count = async () => (await db.prepare("SELECT COUNT(*) AS n FROM webhooks WHERE workspace_id = 'ws_trust'").first()).n;
  const before = await count();
  const created = await api(mf, "POST", "/api/v1/webhooks", { auth: admin, body: {
    name: "n", url: "https://receiver.example.com/x", events: ["flight.departed"], signing: "ed25519", secret: "s".repeat(24) } });
  assert.equal(created.status, 400);
  assert.equal(created.json.error.code, "validation_error");
  assert.match(created.json.error.fields.secret, /ed25519/);
  assert.equal(await count(), before);
  const badScheme = await api(mf, "POST", "/api/v1/webhooks", { auth: admin, body: {
    name: "n", url: "https://receiver.example.com/x", events: ["flight.departed"], signing: "rsa" } });
  assert.equal(badScheme.status, 400);
  assert.ok(badScheme.json.error.fields.signing);

  const ed = await hook({ signing: "ed25519" });
  const hmac = await hook();
  const rows = [await rowOf(ed), await rowOf(hmac)];
  for (const [w, body] of [[ed, { secret: "s".repeat(24) }], [hmac, { signing: "ed25519", secret: "s".repeat(24) }],
                           [ed, { signing: "ed25519", secret: "s".repeat(24), name: "renamed" }]]) {
    const put = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body });
    assert.equal(put.status, 400, JSON.stringify(body));
    assert.equal(put.json.error.code, "validation_error");
    assert.match(put.json.error.fields.secret, /ed25519/);
  }
  const rotated = await rotateKey(ed, { secret: "s".repeat(24) });
  assert.equal(rotated.status, 400);
  assert.match(rotated.json.error.fields.secret, /ed25519/);
  assert.deepEqual([await rowOf(ed), await rowOf(hmac)], rows, "nothing changed");
});

test("changing signing on PUT makes a credential of the new kind: a key pair, or a secret shown once", async () => {
  // Main: `signing` was an unknown field (400).
  const w = await hook({ retry_count: 0 });
  assert.equal(w.signing, "hmac");
  assert.equal(w.public_key, null);
  const toEd = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { signing: "ed25519" } });
  assert.equal(toEd.status, 200, toEd.text);
  assert.equal(toEd.json.secret, undefined);
  ed25519Key(toEd.json.public_key);
  assert.equal((await sendTest(w)).json.status, "success");
  const signed = received.get(w.path).at(-1);
  assert.deepEqual(v1aVerifies(signed, toEd.json.public_key), [true], "no v1 entry of the old secret");
  assert.equal(signed.headers["x-webhook-signature"], undefined);
  const same = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { signing: "ed25519", name: "same scheme" } });
  assert.equal(same.json.public_key, toEd.json.public_key, "the same scheme keeps the key pair");

  const toHmac = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { signing: "hmac" } });
  assert.equal(toHmac.status, 200, toHmac.text);
  assert.equal(toHmac.json.public_key, null);
  assert.match(toHmac.json.secret, /^whsec_/);
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${w.id}`, as(admin))).json.secret, undefined, "shown once");
  assert.equal((await sendTest(w)).json.status, "success");
  const back = received.get(w.path).at(-1);
  new StandardWebhook(toHmac.json.secret).verify(back.body.toString(), back.headers);
  new SvixWebhook(toHmac.json.secret).verify(back.body.toString(), back.headers);
  assert.match(back.headers["x-webhook-signature"], /^sha256=/);
  const chosen = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { signing: "ed25519" } });
  const own = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { auth: admin, body: { signing: "hmac", secret: "caller-chosen-secret-0123" } });
  assert.equal(own.status, 200);
  assert.equal(own.json.secret, "caller-chosen-secret-0123", "the new secret, once, as a create shows it");
  assert.ok(chosen.json.public_key);
  await sendTest(w);
  new StandardWebhook(Buffer.from("caller-chosen-secret-0123").toString("base64"))
    .verify(received.get(w.path).at(-1).body.toString(), received.get(w.path).at(-1).headers);
});
