// Response contract: every JSON answer the tests receive is checked against the schema
// openapi.json gives for its route, method and status (ajv, JSON Schema 2020-12, the
// dialect of OpenAPI 3.1). `api()` in helpers.mjs calls `checkResponse` on every call, so
// each suite tests the document as a side effect. Set CONTRACT=off to skip (debugging).
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const OPENAPI = JSON.parse(readFileSync(join(ROOT, "openapi.json"), "utf8"));
const DOC_ID = "openapi.json";

const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
addFormats(ajv);
ajv.addSchema(OPENAPI, DOC_ID);

const escape = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");

/** OpenAPI path templates as matchers; static paths win over templated ones. */
const templates = Object.keys(OPENAPI.paths)
  .map((template) => ({
    template,
    params: (template.match(/\{/g) ?? []).length,
    regex: new RegExp("^" + template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+") + "$"),
  }))
  .sort((a, b) => a.params - b.params);

export function matchPath(path) {
  // The router takes `/x/` as `/x`.
  const bare = path.split("?")[0].split("#")[0].replace(/(.)\/+$/, "$1");
  return templates.find((t) => t.regex.test(bare))?.template;
}

function pointerGet(pointer) {
  return pointer.split("/").slice(1).reduce((node, part) => node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], OPENAPI);
}

const cache = new Map();

/**
 * The validator for one response, or `null` when the document describes no JSON body for
 * it. Throws when the document does not describe the status at all.
 */
export function responseValidator(method, path, status) {
  const template = matchPath(path);
  const op = template ? OPENAPI.paths[template][method.toLowerCase()] : undefined;
  // Unknown routes and methods answer the shared JSON error shape (404 / 405).
  if (!op) {
    if (status >= 400) return errorValidator();
    throw new Error(`openapi.json has no operation ${method} ${template ?? path} (answered ${status})`);
  }
  const key = `${method} ${template} ${status}`;
  if (cache.has(key)) return cache.get(key);
  const codes = op.responses ?? {};
  const code = String(status) in codes ? String(status) : `${String(status)[0]}XX` in codes ? `${String(status)[0]}XX` : "default" in codes ? "default" : null;
  if (code === null) {
    throw new Error(`openapi.json does not document status ${status} for ${method.toUpperCase()} ${template}`);
  }
  let pointer = `#/paths/${escape(template)}/${method.toLowerCase()}/responses/${code}`;
  let response = pointerGet(pointer.slice(1));
  while (response?.$ref) {
    pointer = response.$ref;
    response = pointerGet(pointer.slice(1));
  }
  const content = response?.content?.["application/json"] ?? response?.content?.["application/json; charset=utf-8"];
  const validate = content?.schema ? ajv.compile({ $ref: `${DOC_ID}${pointer}/content/${escape("application/json")}/schema` }) : null;
  cache.set(key, validate);
  return validate;
}

let errorSchema;
function errorValidator() {
  errorSchema ??= ajv.compile({ $ref: `${DOC_ID}#/components/schemas/Error` });
  return errorSchema;
}

/**
 * Throws an Error naming the route and every schema violation when `json` is not what
 * openapi.json promises for (method, path, status). Non-JSON answers are not checked.
 */
export function checkResponse(method, path, status, headers, json) {
  if (process.env.CONTRACT === "off") return;
  const type = headers.get("content-type") ?? "";
  if (!type.startsWith("application/json") || json === undefined) return;
  const validate = responseValidator(method, path, status);
  if (validate && !validate(json)) {
    const problems = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}${e.params ? " " + JSON.stringify(e.params) : ""}`);
    throw new Error(
      `response does not match openapi.json: ${method.toUpperCase()} ${matchPath(path) ?? path} → ${status}\n  ` +
        problems.slice(0, 10).join("\n  ") + `\n  body: ${JSON.stringify(json).slice(0, 400)}`,
    );
  }
}
