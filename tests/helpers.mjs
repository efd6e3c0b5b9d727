// Shared Miniflare harness for the integration tests: boots the built worker with D1,
// the delivery queue (and its consumer), applies migrations, mints tokens, and lets a
// test play every receiver through `outboundService`.
import { Miniflare } from "miniflare";
import { createHmac } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const JWT_SECRET = "test-jwt-secret-0123456789abcdef";
export const STRIPE_SECRET = "whsec_test_stripe_secret_123";
export const STRIPE_CONNECT_SECRET = "whsec_test_connect_secret_456";
export const RESEND_SECRET = "whsec_" + Buffer.from("test-resend-secret-0123456789ab").toString("base64");
/** WEBHOOK_ENCRYPTION_KEY of the tests: base64 of 32 bytes. */
export const ENCRYPTION_KEY = Buffer.from("test-encryption-key-0123456789ab").toString("base64");

/** SQL statements of every migration, in order. */
export function migrationStatements() {
  const dir = join(ROOT, "migrations");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), "utf8")
        .split("\n")
        .map((line) => line.replace(/--.*$/, ""))
        .join("\n")
        .split(";")
        .map((s) => s.trim())
        .filter(Boolean),
    );
}

/**
 * Starts the worker. `receiver(request)` answers every outbound fetch (default 200).
 * `bindings` override the defaults; `queue: false` removes the producer binding, to
 * simulate a failing queue send.
 */
export async function startWorker({ receiver, outbound, bindings = {}, queue = true, persist, consumer = {}, onLog } = {}) {
  const mf = new Miniflare({
    scriptPath: join(ROOT, "build/index.js"),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2025-09-01",
    d1Databases: ["DB"],
    d1Persist: persist ?? false,
    queueProducers: queue ? { DELIVERY_QUEUE: "webhook-deliveries" } : {},
    queueConsumers: {
      "webhook-deliveries": { maxBatchTimeout: 1, maxBatchSize: 10, maxRetries: 100, deadLetterQueue: "webhook-deliveries-dlq", ...consumer },
      "webhook-deliveries-dlq": { maxBatchTimeout: 1 },
    },
    queuePersist: persist ?? false,
    bindings: {
      AUTH_JWT_SECRET: JWT_SECRET,
      STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
      STRIPE_CONNECT_WEBHOOK_SECRET: STRIPE_CONNECT_SECRET,
      RESEND_WEBHOOK_SECRET: RESEND_SECRET,
      WEBHOOK_ENCRYPTION_KEY: ENCRYPTION_KEY,
      RETRY_SCHEDULE: "1,1,1",
      LOG_RETENTION_DAYS: "30",
      DEV_ALLOW_PRIVATE_TARGETS: "false",
      DELIVERY_CONCURRENCY: "6",
      SWEEP_GRACE_SECONDS: "0",
      ...bindings,
    },
    // The worker's structured log lines; shown with DEBUG_WORKER=1.
    handleRuntimeStdio(stdout, stderr) {
      if (onLog) {
        let buf = "";
        stdout.on("data", (d) => { buf += d; let i; while ((i = buf.indexOf("\n")) >= 0) { onLog(buf.slice(0, i)); buf = buf.slice(i + 1); } });
        stderr.resume();
      } else if (process.env.DEBUG_WORKER) { stdout.pipe(process.stdout); stderr.pipe(process.stderr); }
      else { stdout.resume(); stderr.resume(); }
    },
    outboundService: outbound ?? (async (request) => (receiver ? receiver(request) : new Response("ok"))),
  });
  await mf.ready;
  const db = await mf.getD1Database("DB");
  const existing = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'webhooks'").first();
  if (!existing) {
    await db.batch(migrationStatements().map((s) => db.prepare(s)));
  }
  return { mf, db };
}

const b64url = (s) => Buffer.from(s).toString("base64url");

/** An HS256 token like the platform's session service issues. */
export function token({ workspace = "ws_a", role = "admin", exp, secret = JWT_SECRET, alg = "HS256", claims = {} } = {}) {
  const header = b64url(JSON.stringify({ alg, typ: "JWT" }));
  const payload = b64url(
    JSON.stringify({ sub: "usr_test", workspace_id: workspace, role, exp: exp ?? Math.floor(Date.now() / 1000) + 600, ...claims }),
  );
  const sig = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${sig}`;
}

/** Calls the worker; `body` objects are sent as JSON. Returns { status, headers, json, text }. */
export async function api(mf, method, path, { auth = token(), body, headers = {}, raw } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = `Bearer ${auth}`;
  let payload = raw;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    h["Content-Type"] ??= "application/json";
  }
  const res = await mf.dispatchFetch(`http://localhost${path}`, { method, headers: h, body: payload });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(check, { timeoutMs = 15000, intervalMs = 100, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

export function webhookBody(overrides = {}) {
  return { name: "Test hook", url: "https://receiver.example.com/hook", events: ["flight.departed"], ...overrides };
}

/** Creates a webhook through the API and returns it. */
export async function createWebhook(mf, overrides = {}, opts = {}) {
  const res = await api(mf, "POST", "/api/v1/webhooks", { body: webhookBody(overrides), ...opts });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`);
  return res.json;
}

/** Runs the cron handler once. */
export async function runCron(mf) {
  const worker = await mf.getWorker();
  await worker.scheduled({ cron: "* * * * *" });
}
