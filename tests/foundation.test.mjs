// Foundation: auth (401/403 + WWW-Authenticate), JSON 404/405, catalog, health, errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startWorker, api, token } from "./helpers.mjs";

let mf;
before(async () => ({ mf } = await startWorker()));
after(async () => mf?.dispose());

test("health reports version and D1", async () => {
  const res = await api(mf, "GET", "/api/v1/health", { auth: null });
  assert.equal(res.status, 200);
  assert.equal(res.json.status, "ok");
  assert.equal(res.json.d1, "ok");
  assert.match(res.json.version, /^\d+\.\d+\.\d+$/);
});

test("catalog lists 18 types in 6 groups with descriptions", async () => {
  const res = await api(mf, "GET", "/api/v1/webhooks/events", { auth: token({ role: "member" }) });
  assert.equal(res.status, 200);
  assert.equal(res.json.data.length, 6);
  assert.deepEqual(res.json.data.map((g) => g.name), ["Reservations", "Billing", "Flights", "Maintenance", "Customers", "Webhooks"]);
  const types = res.json.data.flatMap((g) => g.events.map((e) => e.type));
  assert.equal(types.length, 18);
  assert.deepEqual(res.json.data[5].events.map((e) => e.type), ["webhook.disabled", "delivery.exhausted"]);
  assert.ok(types.includes("flight.departed") && types.includes("maintenance.completed"));
  for (const g of res.json.data) for (const e of g.events) assert.ok(e.description.length > 3);
  assert.equal(res.json.data[1].events.find((e) => e.type === "invoice.paid").description, "Invoice payment received");
});

test("missing token is 401 with WWW-Authenticate", async () => {
  const res = await api(mf, "GET", "/api/v1/webhooks", { auth: null });
  assert.equal(res.status, 401);
  assert.equal(res.json.error.code, "unauthorized");
  assert.match(res.headers.get("www-authenticate"), /^Bearer/);
});

test("bad tokens are 401", async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = {
    garbage: "not-a-token",
    wrongKey: token({ secret: "another-secret-another-secret" }),
    expired: token({ exp: now - 10 }),
    notYetValid: token({ claims: { nbf: now + 3600 } }),
    hs512: token({ alg: "HS512" }),
    unknownRole: token({ role: "owner" }),
    noWorkspace: token({ claims: { workspace_id: undefined } }),
  };
  const noneHeader = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
  const nonePayload = Buffer.from(JSON.stringify({ workspace_id: "ws_a", role: "admin", exp: now + 600 })).toString("base64url");
  cases.algNone = `${noneHeader}.${nonePayload}.`;
  for (const [name, t] of Object.entries(cases)) {
    const res = await api(mf, "GET", "/api/v1/webhooks", { auth: t });
    assert.equal(res.status, 401, name);
    assert.equal(res.json.error.code, "unauthorized", name);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/, name);
  }
  const basic = await mf.dispatchFetch("http://localhost/api/v1/webhooks", { headers: { Authorization: "Basic abc" } });
  assert.equal(basic.status, 401);
});

test("member may read the catalog but not list webhooks (403)", async () => {
  const res = await api(mf, "GET", "/api/v1/webhooks", { auth: token({ role: "member" }) });
  assert.equal(res.status, 403);
  assert.equal(res.json.error.code, "forbidden");
});

test("unknown route is a JSON 404, wrong method a JSON 405 with Allow", async () => {
  const nf = await api(mf, "GET", "/api/v1/nothing-here");
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error.code, "not_found");
  const na = await api(mf, "PATCH", "/api/v1/webhooks");
  assert.equal(na.status, 405);
  assert.equal(na.json.error.code, "method_not_allowed");
  assert.equal(na.headers.get("allow"), "GET, POST");
  const stripeGet = await api(mf, "GET", "/api/webhooks/stripe", { auth: null });
  assert.equal(stripeGet.status, 405);
});

test("body errors: invalid JSON, wrong content type, unknown field, oversize", async () => {
  const bad = await api(mf, "POST", "/api/v1/webhooks", { raw: "{nope", headers: { "Content-Type": "application/json" } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, "invalid_json");
  const ct = await api(mf, "POST", "/api/v1/webhooks", { raw: "{}", headers: { "Content-Type": "text/plain" } });
  assert.equal(ct.status, 415);
  assert.equal(ct.json.error.code, "unsupported_media_type");
  const unknown = await api(mf, "POST", "/api/v1/webhooks", {
    body: { name: "x", url: "https://example.com", events: ["flight.departed"], colour: "red" },
  });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json.error.code, "validation_error");
  assert.equal(unknown.json.error.fields.colour, "unknown field");
  const big = await api(mf, "POST", "/api/v1/webhooks", { body: { name: "x".repeat(70000) } });
  assert.equal(big.status, 413);
  assert.equal(big.json.error.code, "payload_too_large");
  const arr = await api(mf, "POST", "/api/v1/webhooks", { body: [1, 2] });
  assert.equal(arr.status, 400);
  assert.equal(arr.json.error.code, "invalid_json");
});

test("openapi document is served without auth", async () => {
  const res = await api(mf, "GET", "/api/v1/openapi.json", { auth: null });
  assert.equal(res.status, 200);
  assert.equal(res.json.openapi, "3.1.0");
  const file = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8"));
  assert.deepEqual(res.json, file);
  for (const path of ["/api/v1/webhooks", "/api/v1/webhooks/{id}", "/api/v1/webhooks/logs", "/api/v1/events"]) {
    assert.ok(res.json.paths[path], path);
  }
});
