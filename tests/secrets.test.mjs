// Secrets v2 (SPEC §8.1, §8.2): generated secrets, Standard Webhooks signatures verified
// by code nobody here wrote (standardwebhooks, svix) and by the README's receivers,
// rotation with grace periods, encryption at rest (raw D1 scans, key change, legacy
// rows, missing key, tampering) and the rotate route's bad input.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import { startWorker, api, token, createWebhook, waitFor, sleep, runCron, ROOT, ENCRYPTION_KEY } from "./helpers.mjs";

/** Every request the receiver got, by path: the exact bytes and headers. */
const received = new Map();
const behaviours = new Map();
async function receiver(request) {
  const url = new URL(request.url);
  const body = Buffer.from(await request.arrayBuffer());
  const entry = { headers: Object.fromEntries(request.headers), body };
  if (!received.has(url.pathname)) received.set(url.pathname, []);
  received.get(url.pathname).push(entry);
  const behave = behaviours.get(url.pathname);
  return behave ? behave(received.get(url.pathname).length) : new Response("ok");
}

const logLines = [];
let mf, db;
before(async () => ({ mf, db } = await startWorker({ receiver, onLog: (l) => logLines.push(l) })));
after(async () => mf?.dispose());

let counter = 0;
async function hook(overrides = {}, { behave, instance = mf } = {}) {
  const path = `/s${++counter}`;
  if (behave) behaviours.set(path, behave);
  const w = await createWebhook(instance, { url: `https://receiver.example.com${path}`, events: ["flight.departed"], ...overrides });
  return { ...w, path };
}
const publish = (instance = mf, data = { n: 1 }) => api(instance, "POST", "/api/v1/events", { body: { type: "flight.departed", data } });
const sendTest = (w, instance = mf) => api(instance, "POST", `/api/v1/webhooks/${w.id}/test`, { body: { event_type: "flight.departed", payload: { t: Date.now() } } });
const rotate = (w, body, opts = {}) => api(opts.instance ?? mf, "POST", `/api/v1/webhooks/${w.id}/secret/rotate`, { body, ...opts });
const lastOf = (w) => received.get(w.path)?.at(-1);

// The seed's verification snippet, verbatim.
const crypto = { createHmac };
function verifyWebhook(payload, signature, secret) {
  const expected = crypto.createHmac("sha256", secret).update(payload).digest("hex");
  return `sha256=${expected}` === signature;
}

/** Standard Webhooks verification; a secret not of the `whsec_` form is its UTF-8 bytes (SPEC §8.2). */
function verifiesWith(secret, got) {
  try {
    const lib = secret.startsWith("whsec_") ? new StandardWebhook(secret) : new StandardWebhook(secret, { format: "raw" });
    lib.verify(got.body.toString("utf8"), got.headers);
    return true;
  } catch {
    return false;
  }
}

/** Runs a receiver example with deliveries on stdin; returns its output lines. */
function runExample(cmd, args, secret, deliveries) {
  const input = JSON.stringify({ secret, deliveries: deliveries.map((d) => ({ headers: d.headers, body_base64: d.body.toString("base64") })) });
  const r = spawnSync(cmd, args, { input, encoding: "utf8", cwd: ROOT });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim().split("\n");
}

test("every delivery of a generated secret verifies with standardwebhooks, svix and the seed snippet", async () => {
  const w = await hook({}, { behave: (n) => new Response("x", { status: n === 1 ? 500 : 200 }) });
  assert.match(w.secret, /^whsec_/);
  await publish(mf, { flight: "N1", note: "ünïcödé ✈" });
  await publish(mf, { flight: "N2" });
  await waitFor(() => (received.get(w.path)?.length ?? 0) >= 3, { what: "2 deliveries and a retry" });
  assert.equal((await sendTest(w)).status, 200);
  const all = received.get(w.path);
  assert.ok(all.length >= 4);
  for (const got of all) {
    new StandardWebhook(w.secret).verify(got.body.toString("utf8"), got.headers);
    new SvixWebhook(w.secret).verify(got.body.toString("utf8"), got.headers);
    assert.ok(verifyWebhook(got.body, got.headers["x-webhook-signature"], w.secret), "seed snippet");
    assert.equal(got.headers["webhook-id"], got.headers["x-webhook-delivery"]);
    assert.match(got.headers["webhook-timestamp"], /^\d{10}$/);
    // Tampering with the body or replaying with another id fails.
    assert.throws(() => new StandardWebhook(w.secret).verify(got.body.toString("utf8") + " ", got.headers));
    assert.throws(() => new SvixWebhook(w.secret).verify(got.body.toString("utf8"), { ...got.headers, "webhook-id": "dlv_other" }));
  }
  const retried = all.filter((g) => g.headers["webhook-id"] === all[0].headers["webhook-id"]);
  assert.equal(retried.length, 2, "the retry carries the same webhook-id");
});

test("the README's JS, Python and Rust receivers accept real deliveries, dedupe on webhook-id, refuse tampering", async () => {
  const w = await hook();
  await sendTest(w);
  await rotate(w, { grace_seconds: 600 });
  const rotatedSecret = (await rotate(w, { grace_seconds: 600 })).json.secret;
  await sendTest(w);
  const [first, second] = received.get(w.path);
  const tampered = { ...second, body: Buffer.concat([second.body, Buffer.from(" ")]) };
  const stale = { ...first, headers: { ...first.headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000) - 301) } };
  const legacyOnly = { ...second, headers: Object.fromEntries(Object.entries(second.headers).filter(([k]) => !k.startsWith("webhook-"))) };
  const deliveries = [first, first, second, tampered, stale, legacyOnly];
  const expected = ["accepted", "duplicate", "accepted", "rejected: no matching webhook-signature",
                    "rejected: timestamp outside the 5-minute tolerance", "duplicate"];
  // The original secret is still in grace for `second`; the rotated one signs it as current.
  assert.deepEqual(runExample("node", ["examples/receivers/verify.mjs"], w.secret, deliveries), expected);
  assert.deepEqual(runExample("python3", ["examples/receivers/verify.py"], w.secret, deliveries), expected);
  const withNew = runExample("python3", ["examples/receivers/verify.py"], rotatedSecret, [first, second, legacyOnly]);
  assert.deepEqual(withNew, ["rejected: no matching webhook-signature", "accepted", "duplicate"]);
  const rust = runExample("cargo", ["run", "--quiet", "--release", "--example", "verify_receiver"], w.secret, deliveries);
  assert.deepEqual(rust.slice(0, 4), expected.slice(0, 4));
});

test("large bodies (signed by Web Crypto in the sender) verify the same way, with two secrets in grace", async () => {
  const w = await hook();
  const s0 = w.secret;
  const r = await rotate(w, { grace_seconds: 3600, secret: "caller-chosen-large-secret-0123" });
  assert.equal(r.status, 200);
  for (const size of [3000, 100_000]) {
    await publish(mf, { flight: "N9", note: "ünïcödé ✈", pad: "x".repeat(size) });
  }
  await waitFor(() => (received.get(w.path)?.length ?? 0) >= 2, { what: "2 large deliveries" });
  for (const got of received.get(w.path)) {
    assert.ok(got.body.length > 3000);
    assert.equal(got.headers["webhook-signature"].split(" ").length, 2);
    assert.ok(verifiesWith("caller-chosen-large-secret-0123", got), "current secret (UTF-8 bytes as key)");
    assert.ok(verifiesWith(s0, got), "previous whsec_ secret");
    new SvixWebhook(s0).verify(got.body.toString("utf8"), got.headers);
    assert.ok(verifyWebhook(got.body, got.headers["x-webhook-signature"], "caller-chosen-large-secret-0123"), "seed snippet");
    assert.equal(got.headers["x-webhook-signature-previous"], "sha256=" + createHmac("sha256", s0).update(got.body).digest("hex"));
    assert.throws(() => new StandardWebhook(s0).verify(got.body.toString("utf8") + " ", got.headers));
  }
  assert.ok(!logLines.some((l) => l.includes("Web Crypto signing failed")), "signed by Web Crypto, not the fallback");
});

test("rotation: before, during (old and new both verify) and after the grace period", async () => {
  const w = await hook();
  const s0 = w.secret;
  await sendTest(w);
  let got = lastOf(w);
  assert.equal(got.headers["webhook-signature"].split(" ").length, 1, "before: one signature");
  assert.equal(got.headers["x-webhook-signature-previous"], undefined);

  const r1 = await rotate(w, { grace_seconds: 3600 });
  assert.equal(r1.status, 200);
  assert.deepEqual(Object.keys(r1.json).sort(), ["previous_expires_at", "secret"]);
  assert.match(r1.json.secret, /^whsec_/);
  assert.notEqual(r1.json.secret, s0);
  assert.ok(Math.abs(Date.parse(r1.json.previous_expires_at) - (Date.now() + 3600_000)) < 60_000);
  const s1 = r1.json.secret;
  const view = await api(mf, "GET", `/api/v1/webhooks/${w.id}`);
  assert.equal(view.json.secret_hint, "…" + s1.slice(-4));
  assert.ok(!view.text.includes(s1) && !view.text.includes(s0), "no later response shows a secret");

  // During: a queued delivery and a test delivery carry both signatures.
  await publish();
  await waitFor(() => received.get(w.path).length >= 2, { what: "queued delivery during grace" });
  await sendTest(w);
  for (const during of received.get(w.path).slice(1)) {
    assert.equal(during.headers["webhook-signature"].split(" ").length, 2);
    assert.ok(verifiesWith(s0, during), "a receiver holding only the old secret verifies");
    assert.ok(verifiesWith(s1, during), "a receiver holding only the new secret verifies");
    new SvixWebhook(s0).verify(during.body.toString("utf8"), during.headers);
    assert.ok(verifyWebhook(during.body, during.headers["x-webhook-signature"], s1), "X-Webhook-Signature: current secret");
    assert.equal(during.headers["x-webhook-signature-previous"],
                 "sha256=" + createHmac("sha256", s0).update(during.body).digest("hex"));
  }

  // After: a 1-second grace for s1, then only the newest signs (s0 stays in its own grace).
  const r2 = await rotate(w, { grace_seconds: 1, secret: "caller-chosen-secret-0123" });
  assert.equal(r2.json.secret, "caller-chosen-secret-0123", "a caller's secret is accepted");
  await sendTest(w);
  got = lastOf(w);
  assert.equal(got.headers["webhook-signature"].split(" ").length, 3);
  await sleep(Date.parse(r2.json.previous_expires_at) - Date.now() + 50);
  await sendTest(w);
  got = lastOf(w);
  assert.ok(!verifiesWith(s1, got), "s1's grace is over");
  assert.ok(verifiesWith(s0, got), "s0 keeps its own, longer grace");
  assert.ok(verifiesWith("caller-chosen-secret-0123", got), "a non-whsec secret is used as its UTF-8 bytes");

  // grace_seconds 0: the previous secret stops at once.
  const r3 = await rotate(w, { grace_seconds: 0 });
  await sendTest(w);
  got = lastOf(w);
  assert.ok(verifiesWith(r3.json.secret, got));
  assert.ok(!verifiesWith("caller-chosen-secret-0123", got));
});

test("rotating again keeps at most 5 previous secrets", async () => {
  const w = await hook();
  const secrets = [w.secret];
  for (let i = 0; i < 7; i++) secrets.push((await rotate(w, { grace_seconds: 3600 })).json.secret);
  await sendTest(w);
  const got = lastOf(w);
  assert.equal(got.headers["webhook-signature"].split(" ").length, 6, "current + 5 previous");
  assert.equal(got.headers["x-webhook-signature-previous"].split(",").length, 5);
  const verifying = secrets.map((s) => verifiesWith(s, got));
  assert.deepEqual(verifying, [false, false, true, true, true, true, true, true], "the two oldest were dropped");
});

test("rotate: bad input, roles, other workspaces, PUT secret null", async () => {
  const w = await hook();
  const before = await db.prepare("SELECT secrets_enc, updated_at FROM webhooks WHERE id = ?").bind(w.id).first();
  for (const [body, field] of [
    [{ grace_seconds: -1 }, "grace_seconds"], [{ grace_seconds: 604801 }, "grace_seconds"],
    [{ grace_seconds: "60" }, "grace_seconds"], [{ grace_seconds: 1.5 }, "grace_seconds"],
    [{ grace_seconds: null }, "grace_seconds"], [{ secret: "short" }, "secret"], [{ secret: null }, "secret"],
    [{ secret: "s".repeat(257) }, "secret"], [{ colour: "red" }, "colour"],
  ]) {
    const res = await rotate(w, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.json.error.code, "validation_error");
    assert.ok(res.json.error.fields[field], `${JSON.stringify(body)} → ${res.text}`);
  }
  assert.equal((await api(mf, "POST", `/api/v1/webhooks/${w.id}/secret/rotate`, { raw: "{", headers: { "Content-Type": "application/json" } })).json.error.code, "invalid_json");
  assert.equal((await rotate(w, { grace_seconds: 60 }, { auth: token({ role: "manager" }) })).status, 403);
  assert.equal((await rotate(w, {}, { auth: token({ role: "member" }) })).status, 403);
  const other = await rotate(w, {}, { auth: token({ workspace: "ws_other" }) });
  assert.equal(other.status, 404);
  assert.ok(!other.text.includes(w.id) || other.json.error.code === "not_found");
  assert.equal((await rotate({ id: "wh_doesnotexist" }, {})).status, 404);
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${w.id}/secret/rotate`)).status, 405);
  const after = await db.prepare("SELECT secrets_enc, updated_at FROM webhooks WHERE id = ?").bind(w.id).first();
  assert.deepEqual(after, before, "nothing changed");
  const put = await api(mf, "PUT", `/api/v1/webhooks/${w.id}`, { body: { secret: null } });
  assert.equal(put.status, 400);
  assert.ok(put.json.error.fields.secret);
  // No body at all: a generated secret, the default 24 h grace.
  const res = await api(mf, "POST", `/api/v1/webhooks/${w.id}/secret/rotate`);
  assert.equal(res.status, 200);
  assert.ok(Math.abs(Date.parse(res.json.previous_expires_at) - (Date.now() + 86_400_000)) < 60_000);
});

test("at rest: no D1 row holds a secret or a header value in clear", async () => {
  const given = "my-own-signing-secret-4242";
  const a = await hook({ secret: given, headers: { Authorization: "Bearer receiver-token-7f3a", "X-Tenant": "tenant-blue-42" } });
  const b = await hook({ headers: { "X-Api-Key": "key-live-99887766" } });
  const rotated = (await rotate(b, { grace_seconds: 3600 })).json.secret;
  await api(mf, "PUT", `/api/v1/webhooks/${a.id}`, { body: { headers: { "X-Other": "value-after-put-55" } } });
  const rows = (await db.prepare("SELECT * FROM webhooks").all()).results;
  const dump = JSON.stringify(rows);
  for (const clear of [given, b.secret, rotated, b.secret.slice(6), rotated.slice(6), "receiver-token-7f3a", "tenant-blue-42",
                       "key-live-99887766", "value-after-put-55"]) {
    assert.ok(!dump.includes(clear), `D1 holds ${clear} in clear`);
  }
  for (const row of rows.filter((r) => r.id === a.id || r.id === b.id)) {
    assert.equal(row.secret, null);
    assert.equal(row.headers, "{}");
    assert.match(row.secrets_enc, /^v1:[0-9a-f]{8}:[A-Za-z0-9+/]+=*$/);
    assert.match(row.headers_enc, /^v1:[0-9a-f]{8}:/);
  }
  // The API opens the header values to render them (a credential-like one masked, SPEC §8.5)
  // and delivers them in clear.
  const got = await api(mf, "GET", `/api/v1/webhooks/${b.id}`);
  assert.equal(got.json.headers["X-Api-Key"], "••••7766");
  await sendTest(b);
  assert.equal(lastOf(b).headers["x-api-key"], "key-live-99887766");
});

test("tampered ciphertext: the delivery is not sent, its log says why, an error line is logged", async () => {
  const w = await hook({ retry_count: 0 });
  const row = await db.prepare("SELECT secrets_enc FROM webhooks WHERE id = ?").bind(w.id).first();
  const [v, kid, blob] = row.secrets_enc.split(":");
  const bytes = Buffer.from(blob, "base64");
  bytes[bytes.length - 1] ^= 1;
  await db.prepare("UPDATE webhooks SET secrets_enc = ? WHERE id = ?").bind(`${v}:${kid}:${bytes.toString("base64")}`, w.id).run();
  const linesBefore = logLines.length;
  await publish();
  const logs = await waitFor(async () => {
    const l = (await api(mf, "GET", `/api/v1/webhooks/logs?webhook_id=${w.id}`)).json.data;
    return l.length && l[0].status !== "pending" ? l : null;
  }, { what: "final log of the tampered webhook" });
  assert.equal(logs[0].status, "failed");
  assert.match(logs[0].error, /not sent: .*decrypt/);
  const test = await sendTest(w);
  assert.equal(test.json.status, "failed");
  assert.match(test.json.error, /not sent/);
  assert.equal(received.get(w.path), undefined, "nothing reached the receiver");
  await waitFor(() => logLines.slice(linesBefore).some((l) => l.includes('"level":"error"') && l.includes("do not open")), { what: "error log line" });
  assert.ok(!logLines.join("\n").includes(w.secret), "the secret never reaches the logs");
});

test("missing key: writes answer 500 (logged once), nothing is written; reads of headerless webhooks work", async () => {
  const lines = [];
  const { mf: keyless, db: kdb } = await startWorker({ receiver, bindings: { WEBHOOK_ENCRYPTION_KEY: "" }, onLog: (l) => lines.push(l) });
  try {
    const count = async () => (await kdb.prepare("SELECT COUNT(*) AS n FROM webhooks").first()).n;
    assert.equal(await count(), 0);
    for (let i = 0; i < 2; i++) {
      const res = await api(keyless, "POST", "/api/v1/webhooks", { body: { name: "k", url: "https://receiver.example.com/k", events: ["flight.departed"] } });
      assert.equal(res.status, 500);
      assert.equal(res.json.error.code, "internal_error");
    }
    assert.equal(await count(), 0, "nothing stored, in clear or otherwise");
    // A row sealed by a worker that had the key: rotating needs the key too.
    const id = "wh_" + "a".repeat(24);
    const sealed = await db.prepare("SELECT * FROM webhooks WHERE secrets_enc IS NOT NULL AND headers_enc IS NULL LIMIT 1").first();
    await kdb.prepare("INSERT INTO webhooks (id, workspace_id, name, url, events, active, headers, retry_count, timeout_ms, created_at, updated_at, secrets_enc, enc_key_id, secret_hint) VALUES (?, 'ws_a', 'copy', 'https://receiver.example.com/k', '[\"flight.departed\"]', 1, '{}', 0, 10000, 1, 1, ?, ?, '…abcd')")
      .bind(id, sealed.secrets_enc, sealed.enc_key_id).run();
    assert.equal((await api(keyless, "POST", `/api/v1/webhooks/${id}/secret/rotate`, {})).status, 500);
    assert.equal((await api(keyless, "PUT", `/api/v1/webhooks/${id}`, { body: { headers: { "X-A": "b" } } })).status, 500);
    const unchanged = await kdb.prepare("SELECT secrets_enc, headers_enc, updated_at FROM webhooks WHERE id = ?").bind(id).first();
    assert.deepEqual(unchanged, { secrets_enc: sealed.secrets_enc, headers_enc: null, updated_at: 1 });
    assert.equal((await api(keyless, "GET", `/api/v1/webhooks/${id}`)).status, 200, "reading needs no key without headers");
    await waitFor(() => lines.some((l) => l.includes("WEBHOOK_ENCRYPTION_KEY is not configured")), { what: "reason logged" });
    assert.equal(lines.filter((l) => l.includes("cannot store webhook secrets")).length, 1, "logged once");
  } finally {
    await keyless.dispose();
  }
});

test("key change: rows under WEBHOOK_ENCRYPTION_KEY_PREVIOUS still deliver, the cron re-seals them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pc-keys-"));
  const newKey = Buffer.from("another-encryption-key-012345678").toString("base64");
  try {
    const one = await startWorker({ receiver, persist: dir });
    const w = await hook({ headers: { "X-Tenant": "tenant-key-change" } }, { instance: one.mf });
    const oldKid = (await one.db.prepare("SELECT enc_key_id FROM webhooks WHERE id = ?").bind(w.id).first()).enc_key_id;
    await one.mf.dispose();

    const two = await startWorker({ receiver, persist: dir, bindings: { WEBHOOK_ENCRYPTION_KEY: newKey, WEBHOOK_ENCRYPTION_KEY_PREVIOUS: ENCRYPTION_KEY } });
    try {
      await sendTest(w, two.mf);
      let got = lastOf(w);
      assert.ok(verifiesWith(w.secret, got), "opened with the previous key");
      assert.equal(got.headers["x-tenant"], "tenant-key-change");
      await runCron(two.mf);
      const row = await two.db.prepare("SELECT * FROM webhooks WHERE id = ?").bind(w.id).first();
      assert.notEqual(row.enc_key_id, oldKid, "re-sealed under the current key");
      assert.ok(row.secrets_enc.startsWith(`v1:${row.enc_key_id}:`) && row.headers_enc.startsWith(`v1:${row.enc_key_id}:`));
    } finally {
      await two.mf.dispose();
    }
    // The former key can now go: everything opens with the new one alone.
    const three = await startWorker({ receiver, persist: dir, bindings: { WEBHOOK_ENCRYPTION_KEY: newKey } });
    try {
      await publish(three.mf);
      await waitFor(() => received.get(w.path).length >= 2, { what: "delivery under the new key only" });
      assert.ok(verifiesWith(w.secret, lastOf(w)));
      assert.equal(lastOf(w).headers["x-tenant"], "tenant-key-change");
    } finally {
      await three.mf.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("legacy rows (before migration 0004) still deliver in clear, then the cron seals them", async () => {
  const now = Date.now();
  const ins = (id, secret, headers) => db.prepare("INSERT INTO webhooks (id, workspace_id, name, url, secret, events, active, headers, retry_count, timeout_ms, created_at, updated_at) VALUES (?, 'ws_a', 'legacy', ?, ?, '[\"flight.departed\"]', 1, ?, 0, 10000, ?, ?)")
    .bind(id, `https://receiver.example.com/${id}`, secret, headers, now, now).run();
  const signed = "wh_" + "1".repeat(24);
  const unsigned = "wh_" + "2".repeat(24);
  await ins(signed, "legacy-secret-0123456789", JSON.stringify({ "X-Legacy": "legacy-header-value" }));
  await ins(unsigned, null, "{}");
  const view = await api(mf, "GET", `/api/v1/webhooks/${signed}`);
  assert.equal(view.json.secret_hint, "…6789");
  assert.equal(view.json.headers["X-Legacy"], "legacy-header-value");
  await sendTest({ id: signed });
  let got = received.get(`/${signed}`).at(-1);
  assert.ok(verifyWebhook(got.body, got.headers["x-webhook-signature"], "legacy-secret-0123456789"));
  assert.ok(verifiesWith("legacy-secret-0123456789", got));
  assert.equal(got.headers["x-legacy"], "legacy-header-value");

  await runCron(mf);
  const rows = (await db.prepare("SELECT * FROM webhooks WHERE id IN (?, ?)").bind(signed, unsigned).all()).results;
  for (const row of rows) {
    assert.equal(row.secret, null);
    assert.equal(row.headers, "{}");
    assert.match(row.secrets_enc, /^v1:/);
  }
  assert.ok(!JSON.stringify(rows).includes("legacy-secret") && !JSON.stringify(rows).includes("legacy-header-value"));
  await sendTest({ id: signed });
  got = received.get(`/${signed}`).at(-1);
  assert.ok(verifiesWith("legacy-secret-0123456789", got), "same secret after sealing");
  assert.equal(got.headers["x-legacy"], "legacy-header-value");
  // The secretless one got a generated secret: signed from now on; rotating shows a usable one.
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${unsigned}`)).json.has_secret, true);
  const r = await rotate({ id: unsigned }, { grace_seconds: 0 });
  await sendTest({ id: unsigned });
  assert.ok(verifiesWith(r.json.secret, received.get(`/${unsigned}`).at(-1)));
});
