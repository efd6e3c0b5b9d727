// openapi.json is a valid OpenAPI 3.1 document (checked by an independent validator), and
// the response contract of tests/contract.mjs catches a worker that disagrees with it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { OPENAPI, matchPath, checkResponse, responseValidator } from "./contract.mjs";

test("openapi.json is a valid OpenAPI 3.1 document", async () => {
  const validator = new Validator();
  const result = await validator.validate(structuredClone(OPENAPI));
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2)?.slice(0, 3000));
  assert.equal(validator.version, "3.1");
});

test("every $ref in openapi.json resolves", () => {
  const refs = [];
  const walk = (node) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === "object") {
      if (typeof node.$ref === "string") refs.push(node.$ref);
      Object.values(node).forEach(walk);
    }
  };
  walk(OPENAPI);
  for (const ref of refs) {
    const target = ref.slice(2).split("/").reduce((n, p) => n?.[p.replace(/~1/g, "/").replace(/~0/g, "~")], OPENAPI);
    assert.ok(target, `unresolved ${ref}`);
  }
});

test("routes match their templates, static paths first", () => {
  assert.equal(matchPath("/api/v1/webhooks/events"), "/api/v1/webhooks/events");
  assert.equal(matchPath("/api/v1/webhooks/logs?limit=5"), "/api/v1/webhooks/logs");
  assert.equal(matchPath("/api/v1/webhooks/wh_123"), "/api/v1/webhooks/{id}");
  assert.equal(matchPath("/api/v1/webhooks/logs/dlv_1/redeliver"), "/api/v1/webhooks/logs/{id}/redeliver");
  assert.equal(matchPath("/nope"), undefined);
});

test("the contract check rejects what the document does not promise", () => {
  const json = new Headers({ "content-type": "application/json; charset=utf-8" });
  const error = { error: { code: "not_found", message: "webhook not found" } };
  checkResponse("GET", "/api/v1/webhooks/wh_1", 404, json, error);
  assert.throws(() => checkResponse("GET", "/api/v1/webhooks/wh_1", 404, json, { error: { code: "nope", message: "x" } }), /does not match/);
  assert.throws(() => checkResponse("GET", "/api/v1/webhooks/wh_1", 200, json, { id: 5 }), /does not match/);
  assert.throws(() => checkResponse("GET", "/api/v1/webhooks/wh_1", 418, json, error), /does not document status 418/);
  // Not JSON: not checked.
  checkResponse("GET", "/api/v1/webhooks/wh_1", 200, new Headers({ "content-type": "text/plain" }), undefined);
  assert.ok(responseValidator("POST", "/api/v1/events", 202));
});
