// CPU per delivery in workerd: the user + system CPU time of the workerd processes
// (from /proc) while one event fans out to N signed webhooks, divided by N. Includes the
// publishing request, Miniflare's D1 (SQLite in workerd) and queue broker; the receiver
// (outboundService) runs in Node and is not counted. Linux only.
//   node bench/delivery-cpu.mjs [--webhooks 1000] [--runs 3] [--batch 100] [--body 1024]
//                               [--builds dirA,dirB]  (interleaved runs of several builds)
// PERF_DATA=<file> records the workerd processes with `perf record` (cpu-clock) during
// the fan-out, for `perf report` (native frames only: JIT code shows as addresses).
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { startWorker, median, isMain, sleep, parseLogLines } from "./lib.mjs";

const TICK_MS = 10; // USER_HZ = 100 on Linux

/** pids of the workerd processes started by this node process (and their descendants). */
export function workerdPids() {
  const parent = new Map();
  const comm = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      comm.set(Number(d), stat.slice(stat.indexOf("(") + 1, close));
      parent.set(Number(d), Number(stat.slice(close + 2).split(" ")[1]));
    } catch { /* gone */ }
  }
  const mine = (pid) => { for (let p = pid; p > 1; p = parent.get(p)) if (p === process.pid) return true; return false; };
  return [...comm.keys()].filter((p) => p !== process.pid && mine(p) && comm.get(p).startsWith("workerd"));
}

/** utime + stime (ms) of the given processes. */
export function cpuMs(pids) {
  let ticks = 0;
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return ticks * TICK_MS;
}

function payload(bytes) {
  return { flight_id: "fl_cpu", tail: "N123PC", pad: "x".repeat(Math.max(0, bytes - 60)) };
}

/** One fresh instance: `webhooks` webhooks made through the API (each with a generated secret), one event. */
export async function scenario({ webhooks = 1000, batch = 100, bodyBytes = 1024 } = {}) {
  let arrivals = 0;
  const logLines = [];
  const { mf } = await startWorker({
    receiver: () => { arrivals++; return new Response("ok"); },
    bindings: { MAX_WEBHOOKS_PER_WORKSPACE: String(webhooks + 10) },
    consumer: { maxBatchSize: batch },
    onLog: (l) => logLines.push(l),
  });
  try {
    const ws = "ws_cpu";
    const auth = token({ workspace: ws });
    let made = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (made < webhooks) {
        const i = made++;
        const r = await api(mf, "POST", "/api/v1/webhooks", { auth, contract: false,
          body: { name: `cpu ${i}`, url: `https://r${i}.example.com/hook`, events: ["flight.departed"] } });
        if (r.status !== 201) throw new Error(`create webhook: ${r.status} ${r.text}`);
      }
    }));
    const pids = workerdPids();
    if (!pids.length) throw new Error("no workerd process found under this node process");
    await sleep(500);
    // Idle rate of the workerd processes (timers, broker polling), subtracted below.
    const i0 = cpuMs(pids); const it = performance.now();
    await sleep(1000);
    const idlePerMs = (cpuMs(pids) - i0) / (performance.now() - it);
    logLines.length = 0;
    const perf = process.env.PERF_DATA
      ? spawn("perf", ["record", "-e", "cpu-clock", "-F", "1999", "-g", "-o", process.env.PERF_DATA, "-p", pids.join(",")], { stdio: "ignore" })
      : null;
    if (perf) await sleep(500);
    const c0 = cpuMs(pids);
    const t0 = performance.now();
    const res = await api(mf, "POST", "/api/v1/events", { auth, contract: false, body: { type: "flight.departed", data: payload(bodyBytes) } });
    if (res.status !== 202) throw new Error(`publish: ${res.status} ${res.text}`);
    while (arrivals < webhooks && performance.now() - t0 < 120_000) await sleep(5);
    await sleep(200); // the last batch records after its sends
    const wall = performance.now() - t0;
    const used = cpuMs(pids) - c0 - idlePerMs * wall;
    if (perf) { perf.kill("SIGINT"); await new Promise((r) => perf.on("exit", r)); }
    const batches = parseLogLines(logLines).filter((p) => p.msg === "delivery batch");
    return { delivered: arrivals, webhooks, cpuMs: used, perDeliveryMs: used / webhooks, wallMs: wall, idlePerS: idlePerMs * 1000,
      batches: batches.length, logLines: logLines.length };
  } finally {
    await mf.dispose();
  }
}

export async function run({ webhooks = 1000, runs = 3, batch = 100, bodyBytes = 1024 } = {}) {
  const rs = [];
  for (let r = 0; r < runs; r++) {
    rs.push(await scenario({ webhooks, batch, bodyBytes }));
    process.stderr.write(`[bench] delivery cpu run ${r + 1}: ${rs.at(-1).perDeliveryMs.toFixed(3)} ms/delivery (${rs.at(-1).delivered}/${webhooks}, wall ${rs.at(-1).wallMs.toFixed(0)} ms, ${rs.at(-1).logLines} log lines)\n`);
  }
  return { webhooks, batch, bodyBytes, runs, perDeliveryMs: median(rs.map((r) => r.perDeliveryMs)),
    min: Math.min(...rs.map((r) => r.perDeliveryMs)), max: Math.max(...rs.map((r) => r.perDeliveryMs)), samples: rs };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { webhooks: { type: "string", default: "1000" }, runs: { type: "string", default: "3" },
    batch: { type: "string", default: "100" }, body: { type: "string", default: "1024" }, builds: { type: "string" } } });
  const opts = { webhooks: Number(values.webhooks), batch: Number(values.batch), bodyBytes: Number(values.body) };
  if (values.builds) {
    // A B A B …: the machine's load drifts; interleaving spreads it over every build.
    const builds = values.builds.split(",");
    const per = Object.fromEntries(builds.map((b) => [b, []]));
    for (let r = 0; r < Number(values.runs); r++) {
      for (const b of builds) {
        process.env.WORKER_BUILD_DIR = b;
        const x = await scenario(opts);
        per[b].push(x.perDeliveryMs);
        process.stderr.write(`[bench] ${b}: ${x.perDeliveryMs.toFixed(3)} ms/delivery (${x.delivered}/${x.webhooks}, wall ${x.wallMs.toFixed(0)} ms, ${x.logLines} log lines)\n`);
      }
    }
    console.log(JSON.stringify({ ...opts, median: Object.fromEntries(builds.map((b) => [b, median(per[b])])), samples: per }));
  } else {
    const r = await run({ ...opts, runs: Number(values.runs) });
    console.log(JSON.stringify({ ...r, samples: r.samples.map(({ perDeliveryMs, wallMs, idlePerS, batches }) => ({ perDeliveryMs, wallMs, idlePerS, batches })) }));
  }
}
