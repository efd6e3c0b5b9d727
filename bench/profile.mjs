// Where an inbound request's CPU goes inside workerd: a sampling CPU profile (DevTools
// protocol) of the worker, of the local D1 and of Miniflare's entry worker while signed
// events are sent one by one; self time per function, per request. The profiler inflates
// every figure (console.log is sent to the inspector, sampling costs): read the ranking,
// not the absolute values. For function names, point it at a build whose wasm keeps its
// name section (build/index.js + target/wasm-debug/index_bg.wasm copied side by side).
//   node bench/profile.mjs [DIR with index.js, default build/] [stripe|resend] [rows]
import { join } from "node:path";
import WebSocket from "ws";
import { ROOT, startWorker } from "../tests/helpers.mjs";
import { PROVIDERS } from "./inbound.mjs";
const script = join(process.argv[2] ?? join(ROOT, "build"), "index.js");
const prov = process.argv[3] ?? "stripe";
const { mf } = await startWorker({ script, inspectorPort: 9339 });
let seq = 0;
const p = PROVIDERS[prov];
const send = async () => { const { body, headers } = p.request(`pr${Date.now().toString(36)}${seq++}`); const r = await mf.dispatchFetch(`http://localhost${p.path}`, { method: "POST", headers, body }); await r.text(); };
for (let i = 0; i < 300; i++) await send();
const targets = await (await fetch("http://127.0.0.1:9339/json")).json();
async function profiler(t) {
  const ws = new WebSocket(t.webSocketDebuggerUrl);
  await new Promise((r) => ws.once("open", r));
  let id = 0; const pending = new Map();
  ws.on("message", (m) => { const d = JSON.parse(m); if (d.id && pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
  const call = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await call("Profiler.enable"); await call("Profiler.setSamplingInterval", { interval: 50 }); await call("Profiler.start");
  return { ws, stop: async () => (await call("Profiler.stop")).result.profile };
}
const pick = (name) => targets.find((x) => x.title === `workerd: worker ${name}`);
const profs = [["user", await profiler(pick("core:user:"))], ["d1", await profiler(pick("d1:db"))], ["entry", await profiler(pick("core:entry"))]];
const N = 600;
for (let i = 0; i < N; i++) await send();
for (const [name, pr] of profs) {
  const prof = await pr.stop();
  pr.ws.close();
  const self = new Map(); let total = 0; let busy = 0;
  const dt = prof.timeDeltas.reduce((a, b) => a + b, 0) / prof.samples.length;
  for (const n of prof.nodes) { const k = n.callFrame.functionName || `(anon ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber})`; self.set(k, (self.get(k) ?? 0) + (n.hitCount ?? 0)); total += n.hitCount ?? 0; if (!["(idle)", "(program)", "(root)"].includes(k)) busy += n.hitCount ?? 0; }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[4] ?? 25));
  console.log(`== ${name}: samples ${total}, busy ~${(busy * dt / 1000 / N).toFixed(3)} ms per request`);
  for (const [k, v] of rows) console.log(((v * dt / 1000 / N) * 1000).toFixed(0).padStart(5), "µs/req", k.slice(0, 110));
}
await mf.dispose();
