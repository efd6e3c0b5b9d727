// The portal (SPEC §8.7) in a real headless browser: Debian's Chromium driven by
// playwright-core against the built worker in Miniflare. Screenshots of the main views go
// to a temporary folder, or to docs/screenshots/ (the README shows one) with
// UPDATE_SCREENSHOTS=1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, api, createWebhook, startWorker, token, waitFor } from "./helpers.mjs";

const SHOTS = process.env.UPDATE_SCREENSHOTS ? join(ROOT, "docs", "screenshots") : join(tmpdir(), "portal-screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps dialing Google on this closed network.
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];

let mf, db;
let base;
/** Headers of every request the receivers got, by path. */
const arrived = new Map();
let browser;
const opened = [];

before(async () => {
  ({ mf, db } = await startWorker({
    receiver: async (request) => {
      const path = new URL(request.url).pathname;
      arrived.set(path, [...(arrived.get(path) ?? []), Object.fromEntries(request.headers)]);
      return path.includes("fail") ? new Response("receiver is down", { status: 500 }) : new Response("ok");
    },
  }));
  base = new URL(await mf.ready).origin;
  // playwright-core gives every launch a fresh, empty --user-data-dir of its own.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  for (const c of opened) await c.close().catch(() => {});
  await browser?.close();
  await mf?.dispose();
});

/** Opens `/portal#token=…` and records every request and every console error. */
async function openPortal(tok, { width = 1100, height = 820 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, reducedMotion: "reduce" });
  opened.push(context);
  const page = await context.newPage();
  const requests = [];
  const problems = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${base}/portal#token=${tok}`);
  return { page, requests, problems };
}

/** Nothing from a third party, the token in no URL, no CSP violation or script error. */
function assertClean({ requests, problems }, tok) {
  assert.ok(requests.length > 0);
  for (const url of requests) {
    assert.equal(new URL(url).origin, base, `request to a third party: ${url}`);
    assert.ok(!url.split("#")[0].includes(tok), `token sent in a URL: ${url}`);
  }
  assert.deepEqual(problems, []);
}

const shot = (page, name, fullPage = true) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
const ADMIN = token({ workspace: "ws_portal", role: "admin" });
const MANAGER = token({ workspace: "ws_portal", role: "manager" });

test("GET /portal: the page with a strict CSP, no bearer needed", async () => {
  const res = await mf.dispatchFetch(`${base}/portal`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/html/);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  const csp = res.headers.get("content-security-policy");
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.match(csp, /connect-src 'self'/);
  assert.match(csp, /frame-ancestors 'self'$/);
  assert.doesNotMatch(csp, /unsafe/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script[^>]+src=|<link[\s>]|<img|<iframe|@import|url\(|@font-face/, "one file: nothing else to load");
  assert.equal((await mf.dispatchFetch(`${base}/portal`, { method: "POST" })).status, 405);
});

test("the token moves from the fragment to sessionStorage; an admin creates an endpoint and sees its secret once", async () => {
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("heading", { name: "Endpoints" }).waitFor();
  assert.equal(new URL(page.url()).hash, "", "token removed from the location");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("planeconnection.portal.token")), ADMIN);

  await page.getByRole("button", { name: "New endpoint" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Flight ops");
  await page.getByLabel("Endpoint URL").fill("https://receiver.example.com/flights");
  await page.getByLabel(/flight\.departed/).check();
  await page.getByLabel(/flight\.arrived/).check();
  await page.getByRole("button", { name: "Create endpoint" }).click();

  const dialog = page.getByRole("dialog", { name: "Endpoint created" });
  await dialog.waitFor();
  const secret = await dialog.getByLabel("Signing secret").inputValue();
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
  assert.ok(await dialog.getByRole("button", { name: "Copy" }).isVisible());
  await shot(page, "secret-shown-once", false);
  await dialog.getByRole("button", { name: "I have saved it" }).click();

  await page.getByRole("heading", { name: "Flight ops" }).waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
  const list = await api(mf, "GET", "/api/v1/webhooks", { auth: ADMIN });
  assert.deepEqual(list.json.data.map((w) => [w.name, w.events]), [["Flight ops", ["flight.departed", "flight.arrived"]]]);
  // Health and stats show only where this deployment serves them.
  const paths = Object.keys((await api(mf, "GET", "/api/v1/openapi.json", { auth: null })).json.paths);
  assert.equal(await page.locator("[data-stats]").count(), paths.includes("/api/v1/webhooks/{id}/stats") ? 1 : 0);
  assert.equal(await page.getByRole("button", { name: "Recover failed" }).count(), paths.includes("/api/v1/webhooks/{id}/recover") ? 1 : 0);
  assert.equal(await page.locator("[data-health]").count(), list.json.data[0].health ? 1 : 0);
  assertClean(view, ADMIN);
});

test("an API field error appears at its field", async () => {
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "New endpoint" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Plain http");
  await page.getByLabel("Endpoint URL").fill("http://receiver.example.com/insecure");
  await page.getByLabel(/invoice\.paid/).check();
  await page.getByRole("button", { name: "Create endpoint" }).click();
  const error = page.locator('[data-field="url"] .field-error');
  await error.waitFor({ state: "visible" });
  assert.match(await error.textContent(), /https/i);
  assert.equal(await page.getByLabel("Endpoint URL").getAttribute("aria-invalid"), "true");
  assert.ok(await page.getByLabel("Endpoint URL").evaluate((el) => el === document.activeElement), "focus moves to the field");
  assert.equal(await page.locator('[data-field="name"] .field-error').isVisible(), false);
  await shot(page, "field-error");
  assertClean(view, ADMIN);
});

test("send a test event, see it in the logs, open it, filter and redeliver", async () => {
  const failing = await createWebhook(mf, { name: "Broken receiver", url: "https://receiver.example.com/fail", events: ["flight.departed"] }, { auth: ADMIN });
  assert.equal((await api(mf, "POST", `/api/v1/webhooks/${failing.id}/test`, { auth: ADMIN, body: {} })).json.status, "failed");

  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "Send test event to Flight ops" }).click();
  const dialog = page.getByRole("dialog", { name: /Send a test event/ });
  await dialog.getByLabel("Event type").selectOption("flight.arrived");
  await dialog.getByRole("button", { name: "Send test event" }).click();
  await dialog.getByText("Delivered").waitFor();
  assert.match(await dialog.textContent(), /HTTP 200/);
  await dialog.getByRole("button", { name: "View delivery" }).click();

  await page.getByRole("heading", { name: "flight.arrived" }).waitFor();
  const payload = JSON.parse(await page.locator("[data-payload]").textContent());
  assert.equal(payload.type, "flight.arrived");
  assert.match(await page.locator("dl.headers").textContent(), /X-Webhook-Signature/i);
  assert.equal(await page.locator("ol.attempts > li").count(), 1);
  await shot(page, "delivery-detail");

  const original = await page.locator("dl.facts dd code").first().textContent();
  await page.getByRole("button", { name: "Redeliver", exact: true }).click();
  await page.getByText("Redelivery queued.").waitFor();
  await page.getByRole("button", { name: original }).waitFor(); // "Redelivery of" links the original

  await page.getByRole("button", { name: "Delivery logs", exact: true }).click();
  await page.getByRole("heading", { name: "Delivery logs" }).waitFor();
  await page.locator("tr[data-log]").first().waitFor();
  assert.equal(await page.locator("tr[data-log]").count(), 3);
  await shot(page, "delivery-logs");

  await page.getByLabel("Status").selectOption("failed");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.locator("[data-total]").getByText("1 deliveries").waitFor();
  const rows = page.locator("tr[data-log]");
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /failed.*Broken receiver/s);

  await page.getByLabel("Status").selectOption("");
  await page.getByLabel("Endpoint", { exact: true }).selectOption({ label: "Flight ops" });
  await page.getByLabel("Event type").selectOption("flight.arrived");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.locator("[data-total]").getByText("2 deliveries").waitFor();
  assert.equal(await rows.count(), 2);
  assertClean(view, ADMIN);
});

test("logs page by cursor (or offset) with Older and Newer", async () => {
  const hook = (await api(mf, "GET", "/api/v1/webhooks", { auth: ADMIN })).json.data.find((w) => w.name === "Broken receiver");
  for (let i = 0; i < 24; i++) await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { auth: ADMIN, body: {} });
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "Delivery logs", exact: true }).click();
  await page.locator("tr[data-log]").first().waitFor();
  const first = await page.locator("tr[data-log]").evaluateAll((rows) => rows.map((r) => r.dataset.log));
  assert.equal(first.length, 25);
  await page.getByRole("button", { name: "Older →" }).click();
  await page.getByRole("button", { name: "← Newer" }).and(page.locator(":enabled")).waitFor();
  const second = await page.locator("tr[data-log]").evaluateAll((rows) => rows.map((r) => r.dataset.log));
  assert.equal(second.length, 2, "27 deliveries: 25, then 2");
  assert.ok(second.every((id) => !first.includes(id)));
  await page.getByRole("button", { name: "← Newer" }).click();
  await page.locator(`tr[data-log="${first[0]}"]`).waitFor();
  assertClean(view, ADMIN);
});

test("a manager is not offered what a manager may not do", async () => {
  const view = await openPortal(MANAGER);
  const { page } = view;
  await page.getByRole("heading", { name: "Endpoints" }).waitFor();
  await page.getByRole("button", { name: "Send test event to Flight ops" }).waitFor();
  for (const name of ["Delete", "Edit", "Disable", "Enable", "New endpoint"]) {
    assert.equal(await page.getByRole("button", { name, exact: true }).count(), 0, name);
  }
  await page.getByRole("button", { name: "Flight ops", exact: true }).click();
  await page.getByRole("heading", { name: "Flight ops" }).waitFor();
  for (const name of ["Delete", "Edit", "Rotate secret", "Recover failed"]) {
    assert.equal(await page.getByRole("button", { name, exact: true }).count(), 0, name);
  }
  await page.getByRole("button", { name: "Send test event to Flight ops" }).click();
  const dialog = page.getByRole("dialog");
  assert.equal(await dialog.getByLabel(/Payload/).count(), 0, "custom payloads are for admins");
  await dialog.getByRole("button", { name: "Send test event" }).click();
  await dialog.getByText("Delivered").waitFor();
  assertClean(view, MANAGER);
});

test("an admin disables, enables and deletes (after confirming) by keyboard", async () => {
  const hook = await createWebhook(mf, { name: "Short lived" }, { auth: ADMIN });
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("heading", { name: "Endpoints" }).waitFor();
  const disable = page.getByRole("button", { name: "Disable Short lived" });
  await disable.focus();
  await page.keyboard.press("Enter");
  await page.getByRole("button", { name: "Enable Short lived" }).waitFor();
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: ADMIN })).json.active, false);
  await page.getByRole("button", { name: "Enable Short lived" }).click();
  await page.getByRole("button", { name: "Disable Short lived" }).waitFor();

  await page.getByRole("button", { name: "Delete Short lived" }).focus();
  await page.keyboard.press("Enter");
  const confirm = page.getByRole("dialog", { name: "Delete endpoint?" });
  await confirm.waitFor();
  await page.keyboard.press("Escape"); // cancel
  await confirm.waitFor({ state: "detached" });
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: ADMIN })).status, 200);
  await page.getByRole("button", { name: "Delete Short lived" }).click();
  await confirm.getByRole("button", { name: "Delete endpoint" }).click();
  await page.getByText("Short lived deleted.").waitFor();
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: ADMIN })).status, 404);
  await shot(page, "endpoints");
  assertClean(view, ADMIN);
});

test("an admin rotates the signing secret: the new one is shown once and signs, the old one for the grace chosen", async () => {
  const hook = await createWebhook(mf, { name: "Rotating" }, { auth: ADMIN });
  const before = await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: ADMIN });
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "Rotating", exact: true }).click();
  await page.getByRole("heading", { name: "Rotating" }).waitFor();

  await page.getByRole("button", { name: "Rotate secret" }).click();
  const ask = page.getByRole("dialog", { name: "Rotate signing secret?" });
  await ask.getByRole("button", { name: "Cancel" }).click();
  await ask.waitFor({ state: "detached" });
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: ADMIN })).json.secret_hint, before.json.secret_hint);

  await page.getByRole("button", { name: "Rotate secret" }).click();
  await ask.getByLabel("Keep signing with the old secret for").selectOption("3600");
  const sent = page.waitForRequest((r) => r.url().endsWith(`/api/v1/webhooks/${hook.id}/secret/rotate`));
  await ask.getByRole("button", { name: "Rotate" }).click();
  assert.deepEqual(JSON.parse((await sent).postData()), { grace_seconds: 3600 });
  const shown = page.getByRole("dialog", { name: "New signing secret" });
  await shown.waitFor();
  const secret = await shown.getByLabel("Signing secret").inputValue();
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
  assert.match(await shown.textContent(), /previous secret keeps signing until/);
  await shown.getByRole("button", { name: "I have saved it" }).click();
  assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");

  const after = await api(mf, "GET", `/api/v1/webhooks/${hook.id}`, { auth: ADMIN });
  assert.equal(after.json.secret_hint, `…${secret.slice(-4)}`);
  assert.notEqual(after.json.secret_hint, before.json.secret_hint);
  await page.getByText(`set (${after.json.secret_hint})`).waitFor();
  assertClean(view, ADMIN);
});

test("editing an endpoint never sends a masked value back as a value: the receiver keeps its real Authorization", async () => {
  // Main put the masked value in the form and sent it back: the receiver then got
  // `â¢â¢â¢â¢1234` instead of `Bearer live-…1234`.
  const hook = await createWebhook(mf, { name: "Credentialed", url: "https://receiver.example.com/cred",
    headers: { Authorization: "Bearer live-abcdef1234" } }, { auth: ADMIN });
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "Edit Credentialed" }).click();
  await page.getByRole("heading", { name: "Edit Credentialed" }).waitFor();
  const values = page.getByLabel("Header value");
  assert.equal(await values.first().inputValue(), "", "the mask is not put into the form");
  assert.match(await values.first().getAttribute("placeholder"), /••••1234.*unchanged/);
  await page.getByRole("button", { name: "+ Add header" }).click();
  await page.getByLabel("Header name").last().fill("X-Tenant");
  await page.getByLabel("Header value").last().fill("fbo-9");
  const sent = page.waitForRequest((r) => r.method() === "PUT");
  await page.getByRole("button", { name: "Save changes" }).click();
  const body = JSON.parse((await sent).postData());
  assert.deepEqual(body.headers, { Authorization: "••••1234", "X-Tenant": "fbo-9" }, "unchanged value sent as the mask the API keeps");
  await page.getByText("Changes saved.").waitFor();
  const test = await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { auth: ADMIN, body: {} });
  assert.equal(test.status, 200);
  const got = arrived.get("/cred").at(-1);
  assert.equal(got.authorization, "Bearer live-abcdef1234");
  assert.equal(got["x-tenant"], "fbo-9");

  // A value typed over the placeholder replaces it.
  await page.getByRole("button", { name: "Edit Credentialed" }).click();
  await page.getByLabel("Header value").first().fill("Bearer live-new-5678");
  const replaced = page.waitForRequest((r) => r.method() === "PUT");
  await page.getByRole("button", { name: "Save changes" }).click();
  assert.equal(JSON.parse((await replaced).postData()).headers.Authorization, "Bearer live-new-5678");
  await page.getByText("Changes saved.").waitFor();
  await api(mf, "POST", `/api/v1/webhooks/${hook.id}/test`, { auth: ADMIN, body: {} });
  assert.equal(arrived.get("/cred").at(-1).authorization, "Bearer live-new-5678");
  assertClean(view, ADMIN);
});

test("a #token= that would switch the open session to another workspace or role asks first; the same one is taken silently", async () => {
  // Main took any `#token=` on hashchange silently: the header showed `ws_attacker · admin`.
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("heading", { name: "Endpoints" }).waitFor();
  const who = page.locator(".who");
  const session = () => page.evaluate(() => sessionStorage.getItem("planeconnection.portal.token"));
  const handOver = (tok) => page.evaluate((t) => { location.hash = `token=${t}`; }, tok);
  const noDialog = async () => { await page.waitForTimeout(300); assert.equal(await page.getByRole("dialog").count(), 0); };

  await handOver(ADMIN);
  await noDialog();
  assert.equal(await session(), ADMIN);
  assert.equal(new URL(page.url()).hash, "", "the fragment is cleared");
  // A fresh token for the same workspace and role (the embedding page renewing it): silently.
  const renewed = token({ workspace: "ws_portal", role: "admin", claims: { jti: "renewed" } });
  await handOver(renewed);
  await noDialog();
  await page.waitForFunction((t) => sessionStorage.getItem("planeconnection.portal.token") === t, renewed);

  // Another workspace: asked; declining keeps the session.
  const attacker = token({ workspace: "ws_attacker", role: "admin" });
  await handOver(attacker);
  const ask = page.getByRole("dialog", { name: "Switch workspace?" });
  await ask.waitFor();
  assert.match(await ask.textContent(), /ws_attacker as admin.*ws_portal as admin/);
  await ask.getByRole("button", { name: "Cancel" }).click();
  await ask.waitFor({ state: "detached" });
  assert.equal(await session(), renewed);
  assert.equal(await who.textContent(), "ws_portal · admin");
  assert.equal(new URL(page.url()).hash, "");

  // Another role: asked; confirming switches.
  await handOver(MANAGER);
  await ask.waitFor();
  await ask.getByRole("button", { name: "Switch" }).click();
  await page.waitForFunction(() => document.querySelector(".who")?.textContent === "ws_portal · manager");
  assert.equal(await session(), MANAGER);
  assert.equal(await page.getByRole("button", { name: "New endpoint" }).count(), 0, "the manager's portal");
  assertClean(view, ADMIN);
});

test("Ed25519 endpoints: the scheme chosen on create, the public key shown with a copy button, rotate key pair; legacy_signature; undecryptable warned", async () => {
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "New endpoint" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Keyed");
  await page.getByLabel("Endpoint URL").fill("https://receiver.example.com/keyed");
  await page.getByLabel(/flight\.departed/).check();
  await page.getByLabel("Signature scheme").selectOption("ed25519");
  assert.equal(await page.getByLabel("Signing secret (optional)").isVisible(), false, "no secret for a key pair");
  assert.equal(await page.getByLabel(/Also send X-Webhook-Signature/).isVisible(), false);
  const created = page.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/api/v1/webhooks"));
  await page.getByRole("button", { name: "Create endpoint" }).click();
  assert.equal(JSON.parse((await created).postData()).signing, "ed25519");
  await page.getByRole("heading", { name: "Keyed" }).waitFor();
  assert.equal(await page.getByRole("dialog").count(), 0, "no secret to show once");
  const w = (await api(mf, "GET", "/api/v1/webhooks", { auth: ADMIN })).json.data.find((x) => x.name === "Keyed");
  assert.equal(w.signing, "ed25519");
  assert.equal(await page.getByLabel("Public key", { exact: true }).inputValue(), w.public_key);
  assert.ok(await page.getByRole("button", { name: "Copy public key" }).isVisible());
  await shot(page, "ed25519-endpoint", false);

  await page.getByRole("button", { name: "Rotate key pair" }).click();
  const ask = page.getByRole("dialog", { name: "Rotate key pair?" });
  await ask.getByLabel("Keep signing with the old key pair for").selectOption("3600");
  await ask.getByRole("button", { name: "Rotate" }).click();
  const shown = page.getByRole("dialog", { name: "New public key" });
  await shown.waitFor();
  const rotated = (await api(mf, "GET", `/api/v1/webhooks/${w.id}`, { auth: ADMIN })).json.public_key;
  assert.notEqual(rotated, w.public_key);
  assert.equal(await shown.getByLabel("Public key", { exact: true }).inputValue(), rotated);
  assert.match(await shown.textContent(), /previous key pair keeps signing until/);
  await shown.getByRole("button", { name: "Done" }).click();
  await page.waitForFunction((k) => [...document.querySelectorAll("input")].some((i) => i.value === k), rotated);

  // An HMAC endpoint created without the seed's header.
  await page.getByRole("button", { name: "← Endpoints" }).click();
  await page.getByRole("button", { name: "New endpoint" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Modern");
  await page.getByLabel("Endpoint URL").fill("https://receiver.example.com/modern");
  await page.getByLabel(/flight\.departed/).check();
  await page.getByLabel(/Also send X-Webhook-Signature/).uncheck();
  await page.getByRole("button", { name: "Create endpoint" }).click();
  await page.getByRole("dialog", { name: "Endpoint created" }).getByRole("button", { name: "I have saved it" }).click();
  await page.getByRole("heading", { name: "Modern" }).waitFor();
  const modern = (await api(mf, "GET", "/api/v1/webhooks", { auth: ADMIN })).json.data.find((x) => x.name === "Modern");
  assert.equal(modern.legacy_signature, false);
  await page.getByRole("button", { name: "Edit Modern" }).click();
  assert.equal(await page.getByLabel(/Also send X-Webhook-Signature/).isChecked(), false);

  // A row whose sealed values do not open is flagged, with the way to repair it.
  await db.prepare("UPDATE webhooks SET secrets_enc = 'v1.bad.bad' WHERE id = ?").bind(modern.id).run();
  await page.getByRole("button", { name: "← Modern" }).click();
  const warning = page.locator("[data-undecryptable]");
  await warning.waitFor();
  assert.match(await warning.textContent(), /cannot be decrypted.*Rotate its secret/);
  assertClean(view, ADMIN);
});

test("an expired link says so, whether the page or the API notices", async () => {
  const past = token({ workspace: "ws_portal", role: "admin", exp: Math.floor(Date.now() / 1000) - 60 });
  const { page } = await openPortal(past);
  await page.getByRole("heading", { name: "This link has expired" }).waitFor();

  // Looks valid to the page; the API refuses it (401).
  const forged = token({ workspace: "ws_portal", role: "admin", secret: "another-secret-0123456789abcdefgh" });
  const second = await openPortal(forged);
  await second.page.getByRole("heading", { name: "This link has expired" }).waitFor();
});

test("at 375 px wide nothing scrolls sideways", async () => {
  const view = await openPortal(ADMIN, { width: 375, height: 812 });
  const { page } = view;
  const noSideScroll = async (what) => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${what}: scrollWidth ${width}`);
  };
  await page.getByRole("heading", { name: "Endpoints" }).waitFor();
  await page.locator("li.card").first().waitFor();
  await noSideScroll("endpoints");
  await shot(page, "mobile-endpoints");
  await page.getByRole("button", { name: "Flight ops", exact: true }).click();
  await page.getByRole("heading", { name: "Flight ops" }).waitFor();
  await noSideScroll("endpoint");
  await page.getByRole("button", { name: "Delivery logs", exact: true }).click();
  await page.locator("tr[data-log]").first().waitFor();
  await noSideScroll("logs");
  await shot(page, "mobile-logs", false);
  await page.getByRole("button", { name: /^Details of delivery/ }).first().click();
  await page.locator("[data-payload]").waitFor();
  await noSideScroll("delivery");
  await page.getByRole("button", { name: "Endpoints", exact: true }).click();
  await page.getByRole("button", { name: "New endpoint" }).click();
  await page.getByLabel("Endpoint URL").waitFor();
  await noSideScroll("form");
  assertClean(view, ADMIN);
});

test("an admin sets a rate limit and FIFO ordering; a bad limit is refused at its field", async () => {
  const view = await openPortal(ADMIN);
  const { page } = view;
  await page.getByRole("button", { name: "New endpoint" }).click();
  await page.getByLabel("Name", { exact: true }).fill("Ordered ops");
  await page.getByLabel("Endpoint URL").fill("https://receiver.example.com/ordered");
  await page.getByLabel(/flight\.departed/).check();
  await page.getByLabel("Rate limit (requests/s)").fill("5000");
  await page.getByLabel("Ordering").selectOption("fifo");
  await page.getByRole("button", { name: "Create endpoint" }).click();
  const error = page.locator('[data-field="rate_limit_per_second"] .field-error');
  await error.waitFor({ state: "visible" });
  assert.match(await error.textContent(), /1 to 1000/);
  await page.getByLabel("Rate limit (requests/s)").fill("5");
  await page.getByRole("button", { name: "Create endpoint" }).click();
  const dialog = page.getByRole("dialog", { name: "Endpoint created" });
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "I have saved it" }).click();
  await page.getByRole("heading", { name: "Ordered ops" }).waitFor();
  assert.match(await page.locator("dl.facts").first().textContent(), /5 requests per second.*FIFO/s);
  const made = (await api(mf, "GET", "/api/v1/webhooks", { auth: ADMIN })).json.data.find((w) => w.name === "Ordered ops");
  assert.deepEqual([made.rate_limit_per_second, made.ordering], [5, "fifo"]);
  // Emptying the limit removes it; the ordering stays.
  await page.getByRole("button", { name: "Edit Ordered ops" }).click();
  await page.getByLabel("Rate limit (requests/s)").fill("");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByRole("heading", { name: "Ordered ops" }).waitFor();
  await waitFor(async () => (await api(mf, "GET", `/api/v1/webhooks/${made.id}`, { auth: ADMIN })).json.rate_limit_per_second === null,
    { what: "the limit removed" });
  assert.equal((await api(mf, "GET", `/api/v1/webhooks/${made.id}`, { auth: ADMIN })).json.ordering, "fifo");
  assertClean(view, ADMIN);
});
