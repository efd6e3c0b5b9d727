#!/usr/bin/env node
// Mints an HS256 API token from AUTH_JWT_SECRET in .dev.vars (local use only), for the
// AUTH_AUDIENCE that wrangler.toml sets (tokens without it are refused).
//   npm run token -- --workspace ws_demo --role admin [--ttl 86400] [--sub usr_dev]
import { createHmac } from "node:crypto";
import { readFileSync, existsSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    workspace: { type: "string", default: "ws_demo" },
    role: { type: "string", default: "admin" },
    ttl: { type: "string", default: "86400" },
    sub: { type: "string", default: "usr_dev" },
    vars: { type: "string", default: ".dev.vars" },
  },
});
if (!["admin", "manager", "member", "service"].includes(values.role)) {
  console.error(`--role must be admin, manager, member or service (got ${values.role})`);
  process.exit(2);
}
const file = existsSync(values.vars) ? values.vars : ".dev.vars.example";
const line = readFileSync(file, "utf8").split("\n").find((l) => l.startsWith("AUTH_JWT_SECRET="));
const secret = line?.slice("AUTH_JWT_SECRET=".length).trim().replace(/^"|"$/g, "");
if (!secret) {
  console.error(`AUTH_JWT_SECRET not found in ${file}`);
  process.exit(2);
}
// The top-level [vars] AUTH_AUDIENCE of wrangler.toml (the one `wrangler dev` uses).
const toml = readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8");
const aud = toml.split(/^\[/m).find((section) => section.startsWith("vars]"))?.match(/^AUTH_AUDIENCE\s*=\s*"([^"]*)"/m)?.[1];
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const head = b64({ alg: "HS256", typ: "JWT" });
const body = b64({ sub: values.sub, workspace_id: values.workspace, role: values.role, ...(aud ? { aud } : {}), iat: now, exp: now + Number(values.ttl) });
const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
console.log(`${head}.${body}.${sig}`);
