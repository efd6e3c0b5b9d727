// Shared Miniflare harness for the integration tests: boots the built worker with D1,
// the delivery queue (and its consumer), applies migrations, mints tokens, and lets a
// test play every receiver through `outboundService`.
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { createHmac } from "node:crypto";
import net from "node:net";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { checkResponse } from "./contract.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const JWT_SECRET = "test-jwt-secret-0123456789abcdef";
export const STRIPE_SECRET = "whsec_test_stripe_secret_123";
export const STRIPE_CONNECT_SECRET = "whsec_test_connect_secret_456";
export const RESEND_SECRET = "whsec_" + Buffer.from("test-resend-secret-0123456789ab").toString("base64");
/** WEBHOOK_ENCRYPTION_KEY of the tests: base64 of 32 bytes. */
export const ENCRYPTION_KEY = Buffer.from("test-encryption-key-0123456789ab").toString("base64");

/** SQL statements of every migration, in order (`upTo`: only files sorting before it). */
export function migrationStatements({ upTo } = {}) {
  const dir = join(ROOT, "migrations");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql") && (!upTo || f < upTo))
    .sort()
    .flatMap((f) => splitStatements(readFileSync(join(dir, f), "utf8")));
}

/** A migration's statements: split at `;`, except inside a trigger's `BEGIN … END`. */
function splitStatements(sql) {
  const pieces = sql
    .split("\n")
    .map((line) => line.replace(/--.*$/, ""))
    .join("\n")
    .split(";")
    .map((s) => s.trim());
  const statements = [];
  let open = null;
  for (const piece of pieces) {
    if (open !== null) {
      open += `; ${piece}`;
      if (/^END$/i.test(piece)) { statements.push(open); open = null; }
    } else if (/^CREATE\s+TRIGGER\b/i.test(piece)) {
      open = piece;
    } else if (piece) {
      statements.push(piece);
    }
  }
  return statements;
}

/** Workers production opens at most this many outbound connections per invocation. */
export const PRODUCTION_CONNECTION_CAP = 6;

/**
 * Miniflare options read from `wrangler.toml` by wrangler itself (one source of truth for
 * bindings, queues, compatibility date and vars), for environment `env` if given.
 */
export function wranglerWorkerOptions(env) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"), env, {});
  return workerOptions;
}

/**
 * An `outboundService` that lets at most `cap` requests be open at once, as production
 * does per invocation (Miniflare runs consumer batches one at a time, so one cap for the
 * whole instance is one cap per consumer invocation). Further requests wait for a slot.
 * `answer(request)` plays the receiver. `stats` records the most seen open at once.
 */
export function cappedOutbound(answer, cap, stats = { open: 0, maxOpen: 0, total: 0 }) {
  const waiting = [];
  const acquire = () => stats.open < cap ? Promise.resolve() : new Promise((r) => waiting.push(r));
  const release = () => { stats.open--; const next = waiting.shift(); if (next) { stats.open++; next(); } };
  const service = async (request) => {
    if (stats.open < cap) stats.open++;
    else await acquire();
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    stats.total++;
    let released = false;
    const done = () => { if (!released) { released = true; release(); } };
    // An aborted fetch (the worker's timeout) frees its connection at once, as in production.
    request.signal?.addEventListener?.("abort", done);
    try {
      const response = await answer(request);
      // The slot is held until the body has been handed over, not only the head.
      if (!response.body) { done(); return response; }
      const [mine, theirs] = response.body.tee();
      mine.pipeTo(new WritableStream()).catch(() => {}).finally(done);
      return new Response(theirs, { status: response.status, statusText: response.statusText, headers: response.headers });
    } catch (e) {
      done();
      throw e;
    }
  };
  service.stats = stats;
  return service;
}

/**
 * A TCP gate in front of a real receiver (`host:port`): at most `cap` connections are
 * forwarded at once; further ones are accepted and wait, unread, for a slot, as
 * production's runtime makes extra fetches wait. Resets and timeouts pass through as they
 * are. Resolves to the gate's own address and `stats`, with `close()`.
 */
export async function connectionGate(target, cap, stats = { open: 0, maxOpen: 0, total: 0 }) {
  const [host, port] = target.split(":");
  const waiting = [];
  const admit = () => {
    while (stats.open < cap && waiting.length) {
      const client = waiting.shift();
      if (client.destroyed) continue;
      stats.open++;
      stats.maxOpen = Math.max(stats.maxOpen, stats.open);
      stats.total++;
      let released = false;
      const release = () => { if (!released) { released = true; stats.open--; setImmediate(admit); } };
      const upstream = net.connect(Number(port), host);
      client.on("data", (d) => upstream.write(d));
      upstream.on("data", (d) => client.write(d));
      client.on("end", () => upstream.end());
      upstream.on("end", () => client.end());
      // A receiver that drops the connection drops the worker's too.
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => { client.destroy(); release(); });
      client.on("close", () => { upstream.destroy(); release(); });
      client.resume();
    }
  };
  const server = net.createServer((client) => {
    client.pause();
    client.on("error", () => {});
    // A waiting connection the worker gave up on (its timeout) leaves the queue.
    client.on("close", () => { const i = waiting.indexOf(client); if (i >= 0) waiting.splice(i, 1); });
    waiting.push(client);
    admit();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const close = () => new Promise((r) => server.close(() => r()));
  return { address: `127.0.0.1:${server.address().port}`, stats, close };
}

/**
 * Starts the worker with the options of `wrangler.toml`, overriding only what a test
 * must: `receiver(request)` answers every outbound fetch (default 200), or `outbound` is a
 * Miniflare `outboundService` / `{ external: { address } }` / `"network"` (no service: the
 * worker's fetches go to the real network, e.g. a loopback receiver with
 * `DEV_ALLOW_PRIVATE_TARGETS`; cap them with `connectionGate`); `bindings` override vars and
 * provide test secrets; `consumer` overrides the delivery consumer's settings; `queue:
 * false` removes the producer binding (a failing queue send). Outbound requests are capped
 * at production's 6 open at once unless `connectionCap` says otherwise (`Infinity`).
 * `script` replaces the built worker by another module worker (e.g. tests/d1-counter.mjs);
 * `inspectorPort` opens the DevTools protocol (CPU profiles); `migrate: false` leaves the
 * databases empty (a migration test applies the migrations itself). `shards` lists the D1
 * bindings of `SHARDS` (SPEC §9.2; default: `TEST_SHARDS` of the environment, comma
 * separated, else wrangler.toml's): each gets a database with every migration applied.
 */
export async function startWorker({ receiver, outbound, bindings = {}, queue = true, persist, consumer = {}, onLog, connectionCap = PRODUCTION_CONNECTION_CAP, env, script, inspectorPort,
  migrate = true, shards = process.env.TEST_SHARDS ? process.env.TEST_SHARDS.split(",") : undefined } = {}) {
  const fromToml = wranglerWorkerOptions(env);
  const d1Bindings = [...new Set([...Object.keys(fromToml.d1Databases), ...(shards ?? [])])];
  const capped = Number.isFinite(connectionCap);
  let outboundService;
  let gate;
  if (outbound === "network") {
    outboundService = undefined;
  } else if (outbound?.external) {
    // A real receiver: capped at the TCP level, so resets stay real resets.
    gate = capped ? await connectionGate(outbound.external.address, connectionCap) : undefined;
    outboundService = gate ? { external: { ...outbound.external, address: gate.address } } : outbound;
  } else {
    const answer = outbound ?? (async (request) => (receiver ? receiver(request) : new Response("ok")));
    outboundService = capped ? cappedOutbound(answer, connectionCap) : answer;
  }
  const queueConsumers = { ...fromToml.queueConsumers };
  const deliveries = Object.keys(queueConsumers).find((q) => !q.endsWith("-dlq"));
  queueConsumers[deliveries] = { ...queueConsumers[deliveries], ...consumer };
  const worker = {
    name: "webhooks",
    ...fromToml,
    // WORKER_BUILD_DIR runs the suites against another build (e.g. an older commit's).
    // `script` runs another module worker in the same set-up (a wrapper, a baseline).
    scriptPath: script ?? resolve(ROOT, process.env.WORKER_BUILD_DIR ?? "build", "index.js"),
    modules: true,
    ...(script ? { modulesRoot: ROOT, modulesRules: [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, { type: "CompiledWasm", include: ["**/*.wasm"] }] } : {}),
    d1Databases: d1Bindings,
    queueProducers: queue ? fromToml.queueProducers : {},
    queueConsumers,
    bindings: {
      ...fromToml.bindings,
      AUTH_JWT_SECRET: JWT_SECRET,
      STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
      STRIPE_CONNECT_WEBHOOK_SECRET: STRIPE_CONNECT_SECRET,
      RESEND_WEBHOOK_SECRET: RESEND_SECRET,
      WEBHOOK_ENCRYPTION_KEY: ENCRYPTION_KEY,
      // Tests run the retry schedule in seconds and let the cron sweep at once.
      RETRY_SCHEDULE: "1,1,1",
      SWEEP_GRACE_SECONDS: "0",
      ...(shards ? { SHARDS: shards.join(",") } : {}),
      ...bindings,
    },
    outboundService,
  };
  const mf = new Miniflare({
    d1Persist: persist ?? false,
    durableObjectsPersist: persist ?? false,
    // The worker's structured log lines; shown with DEBUG_WORKER=1.
    handleRuntimeStdio(stdout, stderr) {
      if (onLog) {
        const lines = (stream) => {
          let buf = "";
          stream.on("data", (d) => { buf += d; let i; while ((i = buf.indexOf("\n")) >= 0) { onLog(buf.slice(0, i)); buf = buf.slice(i + 1); } });
        };
        lines(stdout);
        lines(stderr);
      } else if (process.env.DEBUG_WORKER) { stdout.pipe(process.stdout); stderr.pipe(process.stderr); }
      else { stdout.resume(); stderr.resume(); }
    },
    // For a CPU profile through the DevTools protocol (bench/profile.mjs).
    ...(inspectorPort ? { inspectorPort } : {}),
    // The worker under test first (`dispatchFetch` goes to it), then the tests' door to D1
    // and the queue (tests/harness-worker.js), reached by its own host name.
    workers: [worker, {
      name: "harness",
      modules: true,
      scriptPath: resolve(ROOT, "tests", "harness-worker.js"),
      compatibilityDate: fromToml.compatibilityDate,
      routes: [`${HARNESS_HOST}/*`],
      d1Databases: d1Bindings,
      queueProducers: fromToml.queueProducers,
    }],
  });
  await mf.ready;
  if (gate) {
    const dispose = mf.dispose.bind(mf);
    mf.dispose = async () => { await dispose(); await gate.close(); };
  }
  // Every shard gets the same migrations (`npm run dev` and `npm run deploy` do the same).
  for (const binding of d1Bindings) {
    const shard = d1(mf, binding);
    const existing = await shard.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'webhooks'").first();
    if (!existing && migrate) {
      await shard.batch(migrationStatements().map((s) => shard.prepare(s)));
    }
  }
  const home = d1(mf, "DB");
  const db = shards && shards.length > 1 ? everyShard(home, new Map(shards.map((b) => [b, d1(mf, b)]))) : home;
  return { mf, db, outbound: gate ? { stats: gate.stats } : outboundService };
}

/** The host name that reaches the tests' door to D1 and the queue (tests/harness-worker.js). */
const HARNESS_HOST = "harness.test";

async function harnessCall(mf, call) {
  const response = await mf.dispatchFetch(`http://${HARNESS_HOST}/`, { method: "POST", body: JSON.stringify(call) });
  const answer = await response.json();
  if (response.status !== 200) throw Object.assign(new Error(answer.message), { name: answer.name });
  return answer;
}

const toWire = (v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v))
  ? { $bytes: Buffer.from(v instanceof ArrayBuffer ? v : v.buffer).toString("base64") }
  : v === undefined ? null : v;
const fromWire = (v) => (v && typeof v === "object" && typeof v.$bytes === "string")
  ? new Uint8Array(Buffer.from(v.$bytes, "base64")).buffer
  : v;
const rowsFromWire = (rows) => rows.map((row) => Array.isArray(row)
  ? row.map(fromWire)
  : Object.fromEntries(Object.entries(row).map(([k, v]) => [k, fromWire(v)])));

/**
 * D1 database `binding` of a worker started by `startWorker`, for a test's own reads and
 * writes: the D1 API (`prepare` → `bind` → `all` / `run` / `first` / `raw`, `batch`,
 * `exec`) over async requests to tests/harness-worker.js. Miniflare's `getD1Database`
 * is not used: its synchronous cross-thread calls can mix up replies under load.
 */
export function d1(mf, binding) {
  const query = async (statements, batch) =>
    (await harnessCall(mf, { op: "query", binding, statements, batch })).map((r) => ({ ...r, results: rowsFromWire(r.results) }));
  const statement = (sql, args = []) => ({
    __sql: sql,
    __args: args,
    bind: (...values) => statement(sql, values.map(toWire)),
    async all() { return (await query([{ sql, args }], false))[0]; },
    async run() { return this.all(); },
    async first(column) {
      const row = (await this.all()).results[0];
      return row === undefined ? null : column === undefined ? row : row[column];
    },
    async raw() { return (await query([{ sql, args, method: "raw" }], false))[0].results; },
  });
  return {
    prepare: (sql) => statement(sql),
    batch: (statements) => query(statements.map((s) => ({ sql: s.__sql, args: s.__args })), true),
    exec: (sql) => harnessCall(mf, { op: "exec", binding, sql }),
  };
}

/** The delivery queue's producer, for tests that put messages in by hand (`send`, `sendBatch`). */
export function queueProducer(mf, binding = "DELIVERY_QUEUE") {
  return {
    send: (body) => harnessCall(mf, { op: "send", binding, messages: [{ body }] }),
    sendBatch: (messages) => harnessCall(mf, { op: "send", binding, messages }),
  };
}

/**
 * The D1 databases of every shard seen as one, so that a suite's direct reads and writes
 * mean the same with `TEST_SHARDS=DB,DB_2,DB_3` as with one database. Reads run in every
 * shard and their rows are concatenated (a one-row aggregate — COUNT, SUM, TOTAL, MAX,
 * MIN — is combined); UPDATE and DELETE run in every shard; an INSERT goes to the shard
 * of the workspace one of its values names (a workspace not placed yet is placed in `DB`,
 * as one that wrote before the directory existed); schema reads go to `DB`.
 */
export function everyShard(home, byName) {
  const dbs = [...byName.values()];
  const schemaOnly = (sql) => /^\s*(PRAGMA|EXPLAIN)|sqlite_master/i.test(sql);
  async function shardOfInsert(args) {
    const names = args.filter((a) => typeof a === "string" && /^ws_/.test(a));
    for (const ws of names) {
      const row = await home.prepare("SELECT shard FROM workspace_shards WHERE workspace_id = ?1").bind(ws).first();
      if (row) return byName.get(row.shard) ?? home;
    }
    if (names[0]) await home.prepare("INSERT OR IGNORE INTO workspace_shards (workspace_id, shard, placed_at) VALUES (?1, 'DB', ?2)").bind(names[0], Date.now()).run();
    return home;
  }
  const statement = (sql, args = []) => ({
    everyShard: true,
    bind: (...values) => statement(sql, values),
    async all() {
      const kind = sql.trim().slice(0, 6).toUpperCase();
      if (schemaOnly(sql)) return home.prepare(sql).bind(...args).all();
      if (kind === "INSERT" || kind === "REPLAC") return (await shardOfInsert(args)).prepare(sql).bind(...args).all();
      const each = await Promise.all(dbs.map((d) => d.prepare(sql).bind(...args).all()));
      const meta = { ...each[0].meta, changes: each.reduce((n, r) => n + (r.meta?.changes ?? 0), 0) };
      return { success: true, meta, results: combine(sql, each.map((r) => r.results)) };
    },
    async run() { return this.all(); },
    async first(column) {
      const row = (await this.all()).results[0];
      return row === undefined ? null : column === undefined ? row : row[column];
    },
    async raw() { return (await this.all()).results.map((r) => Object.values(r)); },
  });
  return {
    prepare: (sql) => statement(sql),
    async batch(statements) {
      const out = [];
      for (const st of statements) out.push(await st.all());
      return out;
    },
    exec: (sql) => home.exec(sql),
  };
}

/** Rows of one query from every shard: concatenated, or one aggregate row combined. */
function combine(sql, lists) {
  const rows = lists.flat();
  const select = /^\s*SELECT\s+([\s\S]*?)\s+FROM\s/i.exec(sql);
  if (!select || /GROUP\s+BY/i.test(sql) || lists.some((l) => l.length !== 1)) return rows;
  const exprs = [];
  let depth = 0, cur = "";
  for (const ch of select[1]) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) { exprs.push(cur.trim()); cur = ""; } else cur += ch;
  }
  exprs.push(cur.trim());
  const fns = exprs.map((e) => (/^(COUNT|SUM|TOTAL|MAX|MIN)\s*\(/i.exec(e)?.[1] ?? "").toUpperCase());
  if (!fns.some(Boolean)) return rows;
  const keys = Object.keys(rows[0]);
  const merged = {};
  keys.forEach((k, i) => {
    const values = rows.map((r) => r[k]).filter((v) => v !== null && v !== undefined);
    const fn = fns[i];
    merged[k] = values.length === 0 ? null
      : fn === "MAX" ? values.reduce((a, b) => (b > a ? b : a))
      : fn === "MIN" ? values.reduce((a, b) => (b < a ? b : a))
      : fn ? values.reduce((a, b) => a + b, 0)
      : values[0];
  });
  return [merged];
}

const b64url = (s) => Buffer.from(s).toString("base64url");

/** The `aud` the worker expects: wrangler.toml's AUTH_AUDIENCE. */
export const AUDIENCE = wranglerWorkerOptions().bindings?.AUTH_AUDIENCE;

/** The claims every token of the platform carries (`iat` now, `aud` this service). */
export function baseClaims(now = Math.floor(Date.now() / 1000)) {
  return { sub: "usr_test", iat: now, ...(AUDIENCE ? { aud: AUDIENCE } : {}) };
}

/** An HS256 token like the platform's session service issues. */
export function token({ workspace = "ws_a", role = "admin", exp, secret = JWT_SECRET, alg = "HS256", claims = {} } = {}) {
  const header = b64url(JSON.stringify({ alg, typ: "JWT" }));
  const now = Math.floor(Date.now() / 1000);
  const payload = b64url(
    JSON.stringify({ ...baseClaims(now), workspace_id: workspace, role, exp: exp ?? now + 600, ...claims }),
  );
  const sig = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${sig}`;
}

/**
 * Calls the worker; `body` objects are sent as JSON. Returns { status, headers, json, text }.
 * Every JSON answer is checked against openapi.json for its route, method and status
 * (tests/contract.mjs): a mismatch throws, failing the test. `contract: false` skips it.
 */
/**
 * `dispatchFetch`, retried (five times at most: a full suite on 2 cores once lost three in
 * a row) when a large upload fails in transport: the worker answers 413 from the declared
 * Content-Length without reading the body, and the local proxy in front of it (the assets
 * router) may then reset the upload it no longer needs ("fetch failed"). Only the
 * transport is retried, never a status.
 */
async function dispatchUpload(mf, url, init) {
  const large = typeof init.body === "string" && init.body.length > 64 * 1024;
  for (let attempt = 0; ; attempt++) {
    try {
      return await mf.dispatchFetch(url, init);
    } catch (e) {
      if (!large || attempt >= 5 || e?.message !== "fetch failed") throw e;
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
  }
}

export async function api(mf, method, path, { auth = token(), body, headers = {}, raw, contract = true } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = `Bearer ${auth}`;
  let payload = raw;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    h["Content-Type"] ??= "application/json";
  }
  const res = await dispatchUpload(mf, `http://localhost${path}`, { method, headers: h, body: payload });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  if (contract) checkResponse(method, path, res.status, res.headers, json);
  return { status: res.status, headers: res.headers, json, text };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(check, { timeoutMs = 15000, intervalMs = 100, what = "condition" } = {}) {
  // The monotonic clock: a step of the wall clock (time sync) must not end a wait early.
  const deadline = performance.now() + timeoutMs;
  let last;
  while (performance.now() < deadline) {
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

/** Runs the cron handler once and waits for it to finish. */
export async function runCron(mf) {
  await (await workerOf(mf)).scheduled({ cron: "* * * * *" });
}

const workers = new WeakMap();
/**
 * The worker under test as Miniflare's Node-side proxy, one per instance: the proxy learns
 * a method with one synchronous cross-thread call and then calls it asynchronously, so
 * repeated cron runs or queue invocations make no synchronous call (see `d1`).
 */
export function workerOf(mf) {
  if (!workers.has(mf)) workers.set(mf, mf.getWorker());
  return workers.get(mf);
}

/**
 * `n` delivered logs (and their events), an hour old, written straight into the D1
 * database `d` of the workspace's shard (the move test and bench/shards.mjs).
 */
export async function seedDeliveredLogs(d, ws, webhookId, n) {
  const now = Date.now() - 3_600_000;
  await d.prepare(`WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < ?3)
    INSERT INTO events (id, workspace_id, type, body, source, created_at)
    SELECT printf('evt_seed%06d', x), ?1, 'flight.departed', '{"seed":true}', 'api', ?2 + x FROM i`).bind(ws, now, n).run();
  await d.prepare(`WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < ?4)
    INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts,
      response_status, duration_ms, history, created_at, updated_at)
    SELECT 'dlv_' || printf('%012x', ?3 + x) || printf('%012x', x), ?1, ?2, printf('evt_seed%06d', x), 'flight.departed',
      'success', 1, 6, 200, 12, '[]', ?3 + x, ?3 + x FROM i`).bind(ws, webhookId, now, n).run();
}
