// Shared helpers of the benchmarks: statistics, closed-loop load, provider signing,
// seeding, formatting. Nothing here asserts on time: benchmarks measure and report.
import { createHmac } from "node:crypto";
import http from "node:http";
import net from "node:net";
import WebSocket from "ws";
import { startWorker } from "../tests/helpers.mjs";

export { startWorker };

/** Median of numbers (mean of the two middle values for an even count). */
export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of numbers. */
export function percentile(xs, p) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(rank, s.length) - 1];
}

/** Median over runs of one numeric field. */
export const medianOf = (runs, key) => median(runs.map((r) => r[key]));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Closed-loop load: `concurrency` workers each send requests back to back until `total`
 * have been sent. `send(i)` performs request i and returns its status. Returns the
 * latency (ms) of every request, the statuses and the wall time.
 */
export async function closedLoop(total, concurrency, send) {
  const latencies = [];
  const statuses = {};
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        const status = await send(i);
        latencies.push(performance.now() - t);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  return { latencies, statuses, wallMs: performance.now() - t0 };
}

/** Summary of one closed-loop run. */
export function loadSummary({ latencies, statuses, wallMs }) {
  return {
    requests: latencies.length,
    perSecond: latencies.length / (wallMs / 1000),
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    statuses,
  };
}

/** `Stripe-Signature` value: `t=<ts>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function stripeSignature(secret, body, ts = Math.floor(Date.now() / 1000)) {
  const v1 = createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
  return `t=${ts},v1=${v1}`;
}

/** Svix headers: key = base64 decode of the secret after `whsec_`. */
export function svixHeaders(secret, id, body, ts = Math.floor(Date.now() / 1000)) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const sig = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
  return { "svix-id": id, "svix-timestamp": String(ts), "svix-signature": `v1,${sig}` };
}

/** Inserts `count` webhooks of workspace `ws` subscribed to flight.departed; returns their ids. */
export async function seedWebhooks(db, ws, count, { prefix = "wh_bench", timeoutMs = 10000, retryCount = 3, offset = 0, url = (i) => `https://r${i}.example.com/hook` } = {}) {
  const now = Date.now();
  const ids = [];
  const stmts = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${String(offset + i).padStart(5, "0")}`;
    ids.push(id);
    stmts.push(
      db
        .prepare(
          "INSERT INTO webhooks (id, workspace_id, name, url, events, active, headers, retry_count, timeout_ms, created_at, updated_at) " +
            "VALUES (?, ?, ?, ?, '[\"flight.departed\"]', 1, '{}', ?, ?, ?, ?)",
        )
        .bind(id, ws, `bench ${offset + i}`, url(offset + i), retryCount, timeoutMs, now, now),
    );
  }
  for (let i = 0; i < stmts.length; i += 500) await db.batch(stmts.slice(i, i + 500));
  return ids;
}

/**
 * A real HTTP receiver on loopback (webhooks point at it with `DEV_ALLOW_PRIVATE_TARGETS`):
 * `onRequest(body, req)` sees each request's text. No connection gate: the worker itself
 * sends at most 6 at a time per invocation, and a gate shared by every invocation would
 * hold slots with other invocations' idle keep-alive connections. `stats` has the most
 * requests seen open at once. Returns the URL, `stats` and `close()`.
 */
export async function loopbackReceiver(onRequest) {
  const stats = { open: 0, maxOpen: 0, total: 0 };
  const server = http.createServer((req, res) => {
    stats.open++;
    stats.total++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      onRequest(Buffer.concat(chunks).toString("utf8"), req);
      stats.open--;
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    stats,
    close: async () => { server.closeAllConnections?.(); await new Promise((r) => server.close(() => r())); },
  };
}

/** Parses the worker's structured log lines (those that are JSON). */
export function parseLogLines(lines) {
  return lines.flatMap((l) => {
    try {
      const v = JSON.parse(l);
      return v && typeof v === "object" ? [v] : [];
    } catch {
      return [];
    }
  });
}

// ---- DevTools-protocol CPU profiles of workerd's isolates ----

/** A free TCP port on loopback (for Miniflare's `inspectorPort`). */
export async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * Connects to the isolate whose inspector title is `workerd: worker <name>` (e.g.
 * "core:user:webhooks" for the worker under test, "d1:db" for the local D1) and enables its profiler at
 * `intervalUs`. `start()` begins sampling, `stop()` returns the profile and closes.
 */
export async function isolateProfiler(port, name, intervalUs) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const t = targets.find((x) => x.title === `workerd: worker ${name}`);
  if (!t) throw new Error(`no inspector target for ${name} (have: ${targets.map((x) => x.title).join(", ")})`);
  const ws = new WebSocket(t.webSocketDebuggerUrl);
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
  let id = 0;
  const pending = new Map();
  ws.on("message", (m) => { const d = JSON.parse(m); if (d.id && pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
  const call = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: intervalUs });
  return {
    start: () => call("Profiler.start"),
    stop: async () => { const p = (await call("Profiler.stop")).result.profile; ws.close(); return p; },
  };
}

/** V8's pseudo-frames that are not the isolate's own work. */
const NOT_BUSY = new Set(["(idle)", "(program)", "(root)"]);

/**
 * Busy time (ms) of a V8 CPU profile of one of workerd's isolates. The sampler only
 * samples an isolate while workerd's thread is running it, and under load it fires later
 * than asked: each sample stands for the sampler's actual period (the median gap between
 * consecutive samples, `periodUs`), so busy = non-idle samples × period. Samples the
 * starved sampler never takes are missing: `bench/delivery-cpu.mjs --calibrate` (a JS
 * worker burning CPU) found the profile's total at 0.6–0.9 × the CPU time of workerd's
 * main thread under a load of 7–9 on 2 cores (that thread also carries each request's
 * plumbing): read these figures as lower bounds. `(garbage collector)` is counted and shown apart;
 * `(program)` (the VM in native code with no JS frame: workerd's C++ inside the isolate,
 * or code the stack walk could not attribute) is shown apart and not counted.
 */
export function profileBusy(profile, intervalUs, top = 12) {
  const label = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName || `(anon ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber})`]));
  const counts = new Map();
  for (const id of profile.samples) { const k = label.get(id); counts.set(k, (counts.get(k) ?? 0) + 1); }
  const gaps = profile.timeDeltas.slice(1).sort((x, y) => x - y);
  const periodUs = gaps.length ? gaps[Math.floor(gaps.length / 2)] : intervalUs;
  const ms = (n) => (n * periodUs) / 1000;
  const busySamples = [...counts].filter(([k]) => !NOT_BUSY.has(k)).reduce((n, [, c]) => n + c, 0);
  return {
    busyMs: ms(busySamples), gcMs: ms(counts.get("(garbage collector)") ?? 0), programMs: ms(counts.get("(program)") ?? 0),
    idleMs: ms(counts.get("(idle)") ?? 0), busySamples, samples: profile.samples.length, intervalUs, periodUs,
    spanMs: (profile.endTime - profile.startTime) / 1000,
    top: [...counts].filter(([k]) => !NOT_BUSY.has(k)).sort((x, y) => y[1] - x[1]).slice(0, top).map(([fn, c]) => ({ fn, ms: ms(c) })),
  };
}

// ---- formatting ----

export const ms = (x, digits = 1) => (Number.isFinite(x) ? `${x.toFixed(digits)} ms` : "n/a");
export const num = (x, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a";
export const bytes = (b) => `${num(b)} B (${(b / 1024).toFixed(1)} KiB)`;
export const us = (ns) => (Number.isFinite(ns) ? (ns >= 100_000 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1000).toFixed(1)} µs`) : "n/a");

/** Renders rows (objects with the same keys) as a Markdown table. */
export function markdownTable(rows) {
  if (!rows.length) return "";
  const cols = Object.keys(rows[0]);
  const cell = (v) => String(v ?? "").replace(/\|/g, "\\|");
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals) => `| ${vals.map((v, i) => v.padEnd(widths[i])).join(" | ")} |`;
  return [line(cols), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join("\n");
}

/** True when this module is the script node was started with. */
export const isMain = (url) => url === `file://${process.argv[1]}`;
