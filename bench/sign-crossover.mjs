// Signing one delivery attempt: Web Crypto (crypto.subtle HMAC-SHA256, keys imported once
// and cached, as src/delivery/signing.rs does) against the Rust hmac/sha2 compiled to wasm
// with the worker's release profile (what the sender used before), for bodies of 1 KB to
// 256 KB and 1 or 6 signing secrets (2 HMACs per secret).
// In workerd (default): a small JS worker in Miniflare runs n attempts per request either
// way (the wasm instantiated from bench/cpu-wasm with stub imports); CPU time of the
// workerd process from /proc, minus the same request with n = 0. Web Crypto twice: keys
// imported once and cached (a webhook's later deliveries), and imported for every attempt
// (a fan-out, where every delivery has its own webhook). In Node (--node): CPU
// time of the Node process (process.cpuUsage; Node runs Web Crypto on its thread pool,
// with ~50 µs of dispatch per call that workerd does not have).
//   node bench/sign-crossover.mjs [--skip-build] [--node]
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { webcrypto } from "node:crypto";
import { Miniflare } from "miniflare";
import { ROOT } from "../tests/helpers.mjs";
import { workerdPids, cpuMs } from "./delivery-cpu.mjs";
import { workerProfile } from "./cpu.mjs";
import { median, isMain, markdownTable } from "./lib.mjs";

const SIZES = [1, 4, 16, 64, 256].map((k) => k * 1024);
const SECRETS = [1, 6];

function buildWasm() {
  const dir = join(ROOT, "bench/cpu-wasm");
  const target = join(ROOT, "target");
  const args = ["build", "--release", "--quiet", "--target", "wasm32-unknown-unknown", "--target-dir", target, ...workerProfile().flatMap((c) => ["--config", c])];
  const r = spawnSync("cargo", args, { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error("cargo build of bench/cpu-wasm failed");
  return join(target, "wasm32-unknown-unknown/release/cpu_bench_wasm.wasm");
}

const cpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };

function wasmCase(bench_sign, size, secrets) {
  let iters = 1;
  for (;;) { const t = cpuUs(); bench_sign(size, secrets, iters); if (cpuUs() - t > 30_000 || iters > 1 << 20) break; iters *= 2; }
  const rounds = [];
  for (let r = 0; r < 5; r++) { const t = cpuUs(); bench_sign(size, secrets, iters); rounds.push((cpuUs() - t) / iters); }
  return median(rounds);
}

async function webCryptoCase(size, secrets) {
  const subtle = webcrypto.subtle;
  const enc = new TextEncoder();
  const body = new Uint8Array(size).fill(97);
  const raw = Array.from({ length: secrets }, (_, i) => [enc.encode(`whsec_secret_${i}_0123456789abcdef`), webcrypto.getRandomValues(new Uint8Array(32))]);
  const keys = await Promise.all(raw.flat().map((k) => subtle.importKey("raw", k, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])));
  const attempt = async () => {
    const prefix = enc.encode("dlv_0123456789abcdef01234567.1780000000.");
    const standard = new Uint8Array(prefix.length + body.length);
    standard.set(prefix); standard.set(body, prefix.length);
    const tags = await Promise.all(keys.map((k, i) => subtle.sign("HMAC", k, i % 2 ? standard : body)));
    return tags.length;
  };
  const run = async (n) => { for (let i = 0; i < n; i++) await attempt(); };
  let iters = 1;
  for (;;) { const t = cpuUs(); await run(iters); if (cpuUs() - t > 30_000 || iters > 1 << 16) break; iters *= 2; }
  const rounds = [];
  for (let r = 0; r < 5; r++) { const t = cpuUs(); await run(iters); rounds.push((cpuUs() - t) / iters); }
  return median(rounds);
}

const WORKER = `
import cases from "./cases.wasm";
const imports = {};
for (const i of WebAssembly.Module.imports(cases)) (imports[i.module] ??= {})[i.name] = () => { throw new Error("import " + i.name); };
const { bench_sign } = new WebAssembly.Instance(cases, imports).exports;
const enc = new TextEncoder();
const keyCache = new Map();
let fresh = false;
async function key(raw) {
  if (fresh) return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const id = raw.join(",");
  if (!keyCache.has(id)) keyCache.set(id, await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]));
  return keyCache.get(id);
}
export default {
  async fetch(request) {
    const q = new URL(request.url).searchParams;
    const size = Number(q.get("size")), secrets = Number(q.get("secrets")), n = Number(q.get("n"));
    if (q.get("mode") === "wasm") return new Response(String(bench_sign(size, secrets, n)));
    fresh = q.get("mode") === "webcrypto-import";
    const body = new Uint8Array(size).fill(97);
    const raw = Array.from({ length: secrets }, (_, i) => [enc.encode("whsec_secret_" + i + "_0123456789abcdef"), new Uint8Array(32).fill(i + 1)]).flat();
    let out = 0;
    for (let a = 0; a < n; a++) {
      const prefix = enc.encode("dlv_0123456789abcdef01234567.1780000000.");
      const standard = new Uint8Array(prefix.length + body.length);
      standard.set(prefix); standard.set(body, prefix.length);
      const tags = await Promise.all(raw.map(async (k, i) => crypto.subtle.sign("HMAC", await key(k), i % 2 ? standard : body)));
      out += tags.length;
    }
    return new Response(String(out));
  },
};`;

async function inWorkerd(wasmPath) {
  const mf = new Miniflare({
    modules: [
      { type: "ESModule", path: join(ROOT, "bench/crossover-worker.mjs"), contents: WORKER },
      { type: "CompiledWasm", path: join(ROOT, "bench/cases.wasm"), contents: readFileSync(wasmPath) },
    ],
    compatibilityDate: "2025-01-01",
  });
  await mf.ready;
  try {
    const pids = workerdPids();
    const call = (q) => mf.dispatchFetch(`http://x/?${new URLSearchParams(q)}`).then((r) => r.text());
    // CPU ms of one request doing n attempts, less one doing none; n grows until ~200 ms.
    const measure = async (mode, size, secrets) => {
      await call({ mode, size, secrets, n: 2 });
      let n = 1;
      for (;;) {
        const c = cpuMs(pids); await call({ mode, size, secrets, n }); const used = cpuMs(pids) - c;
        if (used >= 150 || n >= 1 << 16) break;
        n *= used < 20 ? 8 : 2;
      }
      const rounds = [];
      for (let r = 0; r < 5; r++) {
        const c0 = cpuMs(pids); await call({ mode, size, secrets, n: 0 }); const empty = cpuMs(pids) - c0;
        const c = cpuMs(pids); await call({ mode, size, secrets, n }); rounds.push(((cpuMs(pids) - c - empty) * 1000) / n);
      }
      return median(rounds);
    };
    const rows = [];
    for (const secrets of SECRETS) for (const size of SIZES) {
      const w = await measure("wasm", size, secrets);
      const c = await measure("webcrypto", size, secrets);
      const f = await measure("webcrypto-import", size, secrets);
      rows.push({ body: `${size / 1024} KB`, secrets, HMACs: 2 * secrets, "wasm (µs)": w.toFixed(0), "Web Crypto, keys cached (µs)": c.toFixed(0),
        "Web Crypto, keys imported (µs)": f.toFixed(0), "wasm / Web Crypto (imported)": (w / f).toFixed(1) });
    }
    return rows;
  } finally {
    await mf.dispose();
  }
}

export async function run({ build = true, node = false } = {}) {
  const path = build ? buildWasm() : join(ROOT, "target/wasm32-unknown-unknown/release/cpu_bench_wasm.wasm");
  if (!node) return inWorkerd(path);
  const module = new WebAssembly.Module(readFileSync(path));
  const imports = {};
  for (const i of WebAssembly.Module.imports(module)) (imports[i.module] ??= {})[i.name] = () => { throw new Error(`import ${i.name}`); };
  const { bench_sign } = new WebAssembly.Instance(module, imports).exports;
  const rows = [];
  for (const secrets of SECRETS) {
    for (const size of SIZES) {
      const w = wasmCase(bench_sign, size, secrets);
      const c = await webCryptoCase(size, secrets);
      rows.push({ body: `${size / 1024} KB`, secrets, HMACs: 2 * secrets, "wasm (µs)": w.toFixed(1), "Web Crypto (µs)": c.toFixed(1), "wasm / Web Crypto": (w / c).toFixed(2) });
    }
  }
  return rows;
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { "skip-build": { type: "boolean", default: false }, node: { type: "boolean", default: false } } });
  console.log(markdownTable(await run({ build: !values["skip-build"], node: values.node })));
}
