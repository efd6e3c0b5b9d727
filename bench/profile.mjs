// Where an inbound request's CPU goes inside workerd: a sampling CPU profile (DevTools
// protocol) of the worker, of the local D1 and of Miniflare's entry worker while signed
// events are sent one by one; self time per function, per request. The profiler inflates
// every figure (console.log is sent to the inspector, sampling costs): read the ranking,
// not the absolute values. For function names, point it at a build whose wasm keeps its
// name section (build/index.js + target/wasm-debug/index_bg.wasm copied side by side).
//   node bench/profile.mjs [DIR with index.js, default build/] [stripe|resend] [rows]
import { join } from "node:path";
import { ROOT, startWorker } from "../tests/helpers.mjs";
import { isolateProfiler, profileBusy } from "./lib.mjs";
import { PROVIDERS } from "./inbound.mjs";
const script = join(process.argv[2] ?? join(ROOT, "build"), "index.js");
const prov = process.argv[3] ?? "stripe";
const { mf } = await startWorker({ script, inspectorPort: 9339 });
let seq = 0;
const p = PROVIDERS[prov];
// Over HTTP with a Content-Length, as the providers send (and bench/inbound.mjs measures):
// Miniflare's dispatchFetch would stream the body chunked.
const url = await mf.ready;
const send = async () => { const { body, headers } = p.request(`pr${Date.now().toString(36)}${seq++}`); const r = await fetch(new URL(p.path, url), { method: "POST", headers, body }); await r.text(); };
for (let i = 0; i < 300; i++) await send();
const INTERVAL_US = 50;
const profs = [];
for (const [name, isolate] of [["user", "core:user:webhooks"], ["d1", "d1:db"], ["entry", "core:entry"]]) {
  profs.push([name, await isolateProfiler(9339, isolate, INTERVAL_US)]);
}
for (const [, pr] of profs) await pr.start();
const N = 600;
for (let i = 0; i < N; i++) await send();
for (const [name, pr] of profs) {
  const busy = profileBusy(await pr.stop(), INTERVAL_US, Number(process.argv[4] ?? 25));
  console.log(`== ${name}: samples ${busy.samples}, busy ~${(busy.busyMs / N).toFixed(3)} ms per request (GC ${(busy.gcMs / N).toFixed(3)})`);
  for (const { fn, ms } of busy.top) console.log(((ms / N) * 1000).toFixed(0).padStart(5), "µs/req", fn.slice(0, 110));
}
await mf.dispose();
