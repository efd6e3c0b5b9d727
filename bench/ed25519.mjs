// Signing one delivery attempt with Web Crypto, HMAC (v1) against Ed25519 (v1a), in Node:
// what `src/delivery/signing.rs` does per attempt, for 1 KB and 256 KB bodies.
//  * HMAC, one secret: 2 tags (the seed's header over the body, `v1` over
//    "<id>.<timestamp>." + body), as an `hmac` webhook with `legacy_signature` signs;
//  * Ed25519, one key pair: 1 signature over "<id>.<timestamp>." + body (`v1a`);
// each with the keys imported once and cached (a webhook's later deliveries; the worker
// caches imported keys per isolate) and imported for every attempt (a fan-out where every
// delivery has its own webhook, or a cold isolate); and generating a key pair (create,
// rotate, scheme switch: generateKey + export PKCS#8 + export raw).
// In Node: CPU time of the process (process.cpuUsage: every thread, Web Crypto runs on the
// libuv pool) per operation, median of 5 rounds; wall time beside it. In workerd (what
// production runs; skip with --node-only): a JS worker in Miniflare does n operations per
// request, CPU of the workerd process from /proc minus the same request with n = 0.
//   node bench/ed25519.mjs [--rounds 5] [--node-only]
import { webcrypto } from "node:crypto";
import { parseArgs } from "node:util";
import { Miniflare } from "miniflare";
import { workerdPids, cpuMs } from "./delivery-cpu.mjs";
import { isMain, markdownTable, median } from "./lib.mjs";

const subtle = webcrypto.subtle;
const enc = new TextEncoder();
const SIZES = [1024, 256 * 1024];
const cpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };
const PREFIX = enc.encode("dlv_0123456789abcdef01234567.1780000000.");

function message(body) {
  const m = new Uint8Array(PREFIX.length + body.length);
  m.set(PREFIX);
  m.set(body, PREFIX.length);
  return m;
}

/** µs of CPU and of wall time per call of `op`, median of `rounds` rounds of a calibrated count. */
async function measure(op, rounds) {
  let iters = 1;
  for (;;) {
    const t = performance.now();
    for (let i = 0; i < iters; i++) await op();
    if (performance.now() - t > 50 || iters >= 1 << 16) break;
    iters *= 2;
  }
  const cpu = [];
  const wall = [];
  for (let r = 0; r < rounds; r++) {
    const c = cpuUs();
    const t = performance.now();
    for (let i = 0; i < iters; i++) await op();
    wall.push(((performance.now() - t) * 1000) / iters);
    cpu.push((cpuUs() - c) / iters);
  }
  return { cpu: median(cpu), wall: median(wall), iters };
}

const hmacImport = (raw) => subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
const edImport = (pkcs8) => subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);

async function generatePair() {
  const pair = await subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", pair.privateKey));
  const raw = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { pkcs8, raw };
}

export async function run({ rounds = 5 } = {}) {
  const legacyRaw = enc.encode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const standardRaw = webcrypto.getRandomValues(new Uint8Array(32));
  const [legacyKey, standardKey] = await Promise.all([hmacImport(legacyRaw), hmacImport(standardRaw)]);
  const { pkcs8 } = await generatePair();
  const edKey = await edImport(pkcs8);
  const rows = [];
  for (const size of SIZES) {
    const body = new Uint8Array(size).fill(97);
    const cases = {
      "HMAC, keys cached": async () => {
        const m = message(body);
        await subtle.sign("HMAC", legacyKey, body);
        await subtle.sign("HMAC", standardKey, m);
      },
      "HMAC, keys imported": async () => {
        const m = message(body);
        const [a, b] = [await hmacImport(legacyRaw), await hmacImport(standardRaw)];
        await subtle.sign("HMAC", a, body);
        await subtle.sign("HMAC", b, m);
      },
      "Ed25519, key cached": async () => { await subtle.sign("Ed25519", edKey, message(body)); },
      "Ed25519, key imported": async () => { await subtle.sign("Ed25519", await edImport(pkcs8), message(body)); },
    };
    for (const [name, op] of Object.entries(cases)) {
      const m = await measure(op, rounds);
      rows.push({ body: `${size / 1024} KB`, what: name, cpu_us: m.cpu, wall_us: m.wall });
    }
  }
  const keygen = await measure(generatePair, rounds);
  rows.push({ body: "—", what: "Ed25519 key pair generated (generateKey + 2 exports)", cpu_us: keygen.cpu, wall_us: keygen.wall });
  return rows;
}

const WORKER = `
const enc = new TextEncoder();
const PREFIX = enc.encode("dlv_0123456789abcdef01234567.1780000000.");
const hmacImport = (raw) => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
const edImport = (pkcs8) => crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
async function generatePair() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  return [new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey)),
          new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey))];
}
let ready;
async function setup() {
  const legacyRaw = enc.encode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const standardRaw = new Uint8Array(32).fill(7);
  const [pkcs8] = await generatePair();
  return { legacyRaw, standardRaw, pkcs8, legacy: await hmacImport(legacyRaw), standard: await hmacImport(standardRaw), ed: await edImport(pkcs8) };
}
export default {
  async fetch(request) {
    const q = new URL(request.url).searchParams;
    const k = await (ready ??= setup());
    const body = new Uint8Array(Number(q.get("size"))).fill(97);
    const n = Number(q.get("n"));
    const mode = q.get("mode");
    for (let i = 0; i < n; i++) {
      const m = new Uint8Array(PREFIX.length + body.length);
      m.set(PREFIX); m.set(body, PREFIX.length);
      if (mode === "hmac-cached") { await crypto.subtle.sign("HMAC", k.legacy, body); await crypto.subtle.sign("HMAC", k.standard, m); }
      else if (mode === "hmac-import") { await crypto.subtle.sign("HMAC", await hmacImport(k.legacyRaw), body); await crypto.subtle.sign("HMAC", await hmacImport(k.standardRaw), m); }
      else if (mode === "ed-cached") await crypto.subtle.sign("Ed25519", k.ed, m);
      else if (mode === "ed-import") await crypto.subtle.sign("Ed25519", await edImport(k.pkcs8), m);
      else if (mode === "keygen") await generatePair();
    }
    return new Response("ok");
  },
};`;

const MODES = { "hmac-cached": "HMAC, keys cached", "hmac-import": "HMAC, keys imported", "ed-cached": "Ed25519, key cached", "ed-import": "Ed25519, key imported" };

/** The same operations in workerd: µs of the workerd process's CPU per operation. */
export async function inWorkerd({ rounds = 5 } = {}) {
  const mf = new Miniflare({ modules: true, script: WORKER, compatibilityDate: "2025-01-01" });
  await mf.ready;
  try {
    const pids = workerdPids();
    const call = (q) => mf.dispatchFetch(`http://x/?${new URLSearchParams(q)}`).then((r) => r.text());
    const measure = async (mode, size) => {
      await call({ mode, size, n: 2 });
      let n = 1;
      for (;;) {
        const c = cpuMs(pids); await call({ mode, size, n }); const used = cpuMs(pids) - c;
        if (used >= 150 || n >= 1 << 16) break;
        n *= used < 20 ? 8 : 2;
      }
      const samples = [];
      for (let r = 0; r < rounds; r++) {
        const c0 = cpuMs(pids); await call({ mode, size, n: 0 }); const empty = cpuMs(pids) - c0;
        const c = cpuMs(pids); await call({ mode, size, n }); samples.push(((cpuMs(pids) - c - empty) * 1000) / n);
      }
      return median(samples);
    };
    const rows = [];
    for (const size of SIZES) for (const [mode, what] of Object.entries(MODES)) rows.push({ body: `${size / 1024} KB`, what, cpu_us: await measure(mode, size) });
    rows.push({ body: "—", what: "Ed25519 key pair generated (generateKey + 2 exports)", cpu_us: await measure("keygen", 0) });
    return rows;
  } finally {
    await mf.dispose();
  }
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, "node-only": { type: "boolean", default: false } } });
  if (!values["node-only"]) {
    const rows = await inWorkerd({ rounds: Number(values.rounds) });
    console.log(`workerd (Miniflare); CPU µs of the workerd process per attempt (median of ${values.rounds} rounds)\n`);
    console.log(markdownTable(rows.map((r) => ({ body: r.body, signing: r.what, "CPU µs": r.cpu_us.toFixed(1) }))));
    console.log();
  }
  const rows = await run({ rounds: Number(values.rounds) });
  console.log(`Node ${process.version}, ${process.arch}; µs per attempt (median of ${values.rounds} rounds)\n`);
  console.log(markdownTable(rows.map((r) => ({ body: r.body, signing: r.what, "CPU µs": r.cpu_us.toFixed(1), "wall µs": r.wall_us.toFixed(1) }))));
}
