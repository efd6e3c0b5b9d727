// Signing one delivery attempt with Web Crypto, HMAC (v1) against Ed25519 (v1a), in Node:
// what `src/delivery/signing.rs` does per attempt, for 1 KB and 256 KB bodies.
//  * HMAC, one secret: 2 tags (the seed's header over the body, `v1` over
//    "<id>.<timestamp>." + body), as an `hmac` webhook with `legacy_signature` signs;
//  * Ed25519, one key pair: 1 signature over "<id>.<timestamp>." + body (`v1a`);
// each with the keys imported once and cached (a webhook's later deliveries; the worker
// caches imported keys per isolate) and imported for every attempt (a fan-out where every
// delivery has its own webhook, or a cold isolate); and generating a key pair (create,
// rotate, scheme switch: generateKey + export PKCS#8 + export raw).
// CPU time of the Node process (process.cpuUsage: every thread, Web Crypto runs on the
// libuv pool) per operation, median of 5 rounds; wall time beside it.
//   node bench/ed25519.mjs [--rounds 5]
import { webcrypto } from "node:crypto";
import { parseArgs } from "node:util";
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

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
  const rows = await run({ rounds: Number(values.rounds) });
  console.log(`Node ${process.version}, ${process.arch}; µs per attempt (median of ${values.rounds} rounds)\n`);
  console.log(markdownTable(rows.map((r) => ({ body: r.body, signing: r.what, "CPU µs": r.cpu_us.toFixed(1), "wall µs": r.wall_us.toFixed(1) }))));
}
