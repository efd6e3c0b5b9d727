// Bundle size and cold start.
//   node bench/size.mjs [--runs 7]
// Size: build/index_bg.wasm and build/index.js as built by scripts/build.sh, raw and
// gzip -9 (Cloudflare's limits are on the compressed upload).
// Cold start: wall time from `new Miniflare(...)` to the first 200 of GET /api/v1/health
// on a fresh instance (fresh workerd process: process start, script + wasm compile and
// instantiate, D1 `SELECT 1`), median of several instances.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";
import { ROOT, JWT_SECRET, STRIPE_SECRET, STRIPE_CONNECT_SECRET, RESEND_SECRET } from "../tests/helpers.mjs";
import { median, bytes, ms, isMain } from "./lib.mjs";

export function sizes() {
  const wasm = readFileSync(join(ROOT, "build/index_bg.wasm"));
  const js = readFileSync(join(ROOT, "build/index.js"));
  const gz = (b) => gzipSync(b, { level: 9 }).length;
  return { wasmBytes: wasm.length, wasmGzipBytes: gz(wasm), jsBytes: js.length, jsGzipBytes: gz(js), wasm };
}

/** The same worker options as tests/helpers.mjs startWorker (without applying migrations). */
function options() {
  return {
    scriptPath: join(ROOT, "build/index.js"),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2025-09-01",
    d1Databases: ["DB"],
    queueProducers: { DELIVERY_QUEUE: "webhook-deliveries" },
    queueConsumers: {
      "webhook-deliveries": { maxBatchTimeout: 1, maxBatchSize: 10, maxRetries: 100, deadLetterQueue: "webhook-deliveries-dlq" },
      "webhook-deliveries-dlq": { maxBatchTimeout: 1 },
    },
    bindings: {
      AUTH_JWT_SECRET: JWT_SECRET, STRIPE_WEBHOOK_SECRET: STRIPE_SECRET, STRIPE_CONNECT_WEBHOOK_SECRET: STRIPE_CONNECT_SECRET,
      RESEND_WEBHOOK_SECRET: RESEND_SECRET, RETRY_SCHEDULE: "1,1,1", DELIVERY_CONCURRENCY: "6",
    },
    handleRuntimeStdio(stdout, stderr) { stdout.resume(); stderr.resume(); },
    outboundService: async () => new Response("ok"),
  };
}

/** A hello-world JS worker: what workerd + Miniflare cost without our wasm and D1. */
function helloOptions() {
  return {
    modules: true,
    script: "export default { fetch() { return new Response('ok'); } };",
    compatibilityDate: "2025-09-01",
    handleRuntimeStdio(stdout, stderr) { stdout.resume(); stderr.resume(); },
  };
}

async function coldStart(opts) {
  const t0 = performance.now();
  const mf = new Miniflare(opts);
  try {
    await mf.ready;
    const ready = performance.now() - t0;
    let res = await mf.dispatchFetch("http://localhost/api/v1/health");
    await res.text();
    const firstStatus = res.status;
    const first = performance.now() - t0;
    const warm = [];
    for (let i = 0; i < 10; i++) {
      const t1 = performance.now();
      res = await mf.dispatchFetch("http://localhost/api/v1/health");
      await res.text();
      warm.push(performance.now() - t1);
    }
    const floor = [];
    for (let i = 0; i < 10; i++) {
      const t1 = performance.now();
      res = await mf.dispatchFetch("http://localhost/api/v1/no-such-route");
      await res.text();
      floor.push(performance.now() - t1);
    }
    return { totalMs: first, readyMs: ready, firstRequestMs: first - ready, warmRequestMs: median(warm), floorRequestMs: median(floor), firstStatus };
  } finally {
    await mf.dispose();
  }
}

export async function run({ runs = 7 } = {}) {
  const s = sizes();
  const starts = [];
  const baseline = [];
  for (let i = 0; i < runs; i++) {
    starts.push(await coldStart(options()));
    baseline.push(await coldStart(helloOptions()));
  }
  const m = (k) => median(starts.map((x) => x[k]));
  const ok = starts.every((x) => x.firstStatus === 200);
  const result = {
    wasmBytes: s.wasmBytes, wasmGzipBytes: s.wasmGzipBytes, jsBytes: s.jsBytes, jsGzipBytes: s.jsGzipBytes,
    bundleGzipBytes: s.wasmGzipBytes + s.jsGzipBytes,
    coldStart: { runs, totalMs: m("totalMs"), readyMs: m("readyMs"), firstRequestMs: m("firstRequestMs"), warmRequestMs: m("warmRequestMs"), floorRequestMs: m("floorRequestMs"), allStatus200: ok, samples: starts.map((x) => x.totalMs) },
    helloWorldColdStartMs: median(baseline.map((x) => x.totalMs)),
  };
  const figures = [
    { figure: "wasm size", value: `${bytes(s.wasmBytes)}; gzip ${bytes(s.wasmGzipBytes)}`, how: "build/index_bg.wasm of the release build (wasm-opt); gzip -9 by node:zlib" },
    { figure: "JS shim size", value: `${bytes(s.jsBytes)}; gzip ${bytes(s.jsGzipBytes)}`, how: "build/index.js (wasm-bindgen glue bundled by esbuild)" },
    { figure: "bundle, compressed", value: `${bytes(result.bundleGzipBytes)} = ${((100 * result.bundleGzipBytes) / (3 * 1024 * 1024)).toFixed(1)} % of the Free 3 MB limit`, how: "wasm gzip + shim gzip" },
    { figure: "cold start", value: `${ms(result.coldStart.totalMs, 0)} (ready ${ms(result.coldStart.readyMs, 0)} + first request ${ms(result.coldStart.firstRequestMs, 0)})${ok ? "" : " — NOT all 200"}`,
      how: `new Miniflare() → first 200 of GET /api/v1/health; median of ${runs} fresh instances; includes workerd process start, script + wasm compile/instantiate, one D1 SELECT 1` },
    { figure: "warm request: health (1 D1 read) / unknown route (no D1)", value: `${ms(result.coldStart.warmRequestMs, 1)} / ${ms(result.coldStart.floorRequestMs, 1)}`,
      how: "10 more requests of each kind per cold-start instance: median per instance, then over instances; the harness floor under every latency below" },
    { figure: "cold start, hello-world JS worker", value: ms(result.helloWorldColdStartMs, 0), how: `the same measure for a one-line JS worker without D1 (workerd + Miniflare floor), median of ${runs}, interleaved with the above` },
  ];
  return { id: "size", title: "1. Size and cold start", figures, tables: [], json: result };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "7" } } });
  const r = await run({ runs: Number(values.runs) });
  console.table(r.figures);
}
