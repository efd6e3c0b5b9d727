// CPU per delivery in workerd: the user + system CPU time of the workerd processes
// (from /proc) while one event fans out to N signed webhooks, divided by N. Includes the
// publishing request, Miniflare's D1 (SQLite in workerd) and queue broker; the receiver
// (outboundService) runs in Node and is not counted. Linux only.
// With --profile (on by default in `run`), the same fan-out also yields the CPU of the
// worker's own isolate ("core:user:", what Cloudflare bills and limits) and of the local
// D1's isolate ("d1:db"), from V8 sampling CPU profiles taken over the DevTools protocol
// from the publish to the last recorded delivery: non-idle samples ((idle), (program) and
// (root) excluded; (garbage collector) counted and also shown apart) ÷ N. Sampling costs
// CPU itself, so a profiled run's /proc figure is higher than an unprofiled one's: the
// /proc figure of the same profiled run is reported beside it as the whole they are a
// share of. Before measuring, a 10-webhook fan-out of another event type warms the
// delivery path (the consumer's first invocation compiles it; `--warmup 0` skips it).
//   node bench/delivery-cpu.mjs [--webhooks 1000] [--runs 3] [--batch 100] [--body 1024]
//                               [--profile] [--interval 100] [--warmup 10]
//                               [--builds dirA,dirB]  (interleaved runs of several builds)
// PERF_DATA=<file> records the workerd processes with `perf record` (cpu-clock) during
// the fan-out, for `perf report` (native frames only: JIT code shows as addresses).
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { startWorker, median, isMain, sleep, parseLogLines, freePort, isolateProfiler, profileBusy } from "./lib.mjs";

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

/** utime + stime (ms) in a `/proc/…/stat` file (a process or one of its threads); 0 once gone. */
export function statCpuMs(path) {
  try {
    const stat = readFileSync(path, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0; // gone
  }
}

/** utime + stime (ms) of the given processes. */
export function cpuMs(pids) {
  return pids.reduce((sum, p) => sum + statCpuMs(`/proc/${p}/stat`), 0);
}

function payload(bytes) {
  return { flight_id: "fl_cpu", tail: "N123PC", pad: "x".repeat(Math.max(0, bytes - 60)) };
}

/**
 * Per-thread scheduler times (ms) of the given processes, summed by thread name ("main"
 * for workerd's main thread, which runs every isolate): `cpu` on a CPU, `wait` runnable
 * but waiting for one (/proc/…/schedstat, ns precision).
 */
export function threadSched(pids) {
  const out = {};
  for (const p of pids) {
    let tids = [];
    try { tids = readdirSync(`/proc/${p}/task`); } catch { continue; }
    for (const t of tids) {
      try {
        const comm = readFileSync(`/proc/${p}/task/${t}/comm`, "utf8").trim();
        const [cpu, wait] = readFileSync(`/proc/${p}/task/${t}/schedstat`, "utf8").trim().split(" ").map(Number);
        const key = Number(t) === p ? "main" : comm;
        out[key] ??= { cpu: 0, wait: 0 };
        out[key].cpu += cpu / 1e6;
        out[key].wait += wait / 1e6;
      } catch { /* gone */ }
    }
  }
  return out;
}

const schedDelta = (a, b) => Object.fromEntries(Object.keys(b).map((k) => [k, { cpu: b[k].cpu - (a[k]?.cpu ?? 0), wait: b[k].wait - (a[k]?.wait ?? 0) }]));

/**
 * One fresh instance: `webhooks` webhooks made through the API (each with a generated
 * secret), one event. `profile` (µs, 0 = off) samples the worker's and D1's isolates.
 */
export async function scenario({ webhooks = 1000, batch = 100, bodyBytes = 1024, profile = 0, warmup = 10, keepProfiles = false } = {}) {
  let arrivals = 0;
  let warmArrivals = 0;
  const logLines = [];
  const inspectorPort = profile ? await freePort() : undefined;
  const { mf } = await startWorker({
    receiver: (req) => { if (new URL(req.url).hostname.startsWith("warm")) warmArrivals++; else arrivals++; return new Response("ok"); },
    bindings: { MAX_WEBHOOKS_PER_WORKSPACE: String(webhooks + warmup + 10) },
    consumer: { maxBatchSize: batch },
    onLog: (l) => logLines.push(l),
    inspectorPort,
  });
  try {
    const ws = "ws_cpu";
    const auth = token({ workspace: ws });
    const create = async (count, name, url, events) => {
      let made = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (made < count) {
          const i = made++;
          const r = await api(mf, "POST", "/api/v1/webhooks", { auth, contract: false, body: { name: name(i), url: url(i), events } });
          if (r.status !== 201) throw new Error(`create webhook: ${r.status} ${r.text}`);
        }
      }));
    };
    await create(webhooks, (i) => `cpu ${i}`, (i) => `https://r${i}.example.com/hook`, ["flight.departed"]);
    const recorded = () => parseLogLines(logLines).filter((p) => p.msg === "delivery batch")
      .reduce((n, p) => n + (p.succeeded ?? 0) + (p.failed ?? 0), 0);
    if (warmup > 0) {
      // The delivery path's first run (lazy compilation, first D1 statements) is not
      // what a delivery costs in a warm isolate: run it once on another event type.
      await create(warmup, (i) => `warm ${i}`, (i) => `https://warm${i}.example.com/hook`, ["flight.arrived"]);
      logLines.length = 0;
      const w = await api(mf, "POST", "/api/v1/events", { auth, contract: false, body: { type: "flight.arrived", data: payload(bodyBytes) } });
      if (w.status !== 202) throw new Error(`publish warm-up: ${w.status} ${w.text}`);
      const tw = performance.now();
      while ((warmArrivals < warmup || recorded() < warmup) && performance.now() - tw < 30_000) await sleep(5);
    }
    const pids = workerdPids();
    if (!pids.length) throw new Error("no workerd process found under this node process");
    const profilers = profile
      ? { user: await isolateProfiler(inspectorPort, "core:user:webhooks", profile), d1: await isolateProfiler(inspectorPort, "d1:db", profile) }
      : null;
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
    if (profilers) { await profilers.user.start(); await profilers.d1.start(); }
    const th0 = threadSched(pids);
    const c0 = cpuMs(pids);
    const t0 = performance.now();
    const res = await api(mf, "POST", "/api/v1/events", { auth, contract: false, body: { type: "flight.departed", data: payload(bodyBytes) } });
    if (res.status !== 202) throw new Error(`publish: ${res.status} ${res.text}`);
    while (arrivals < webhooks && performance.now() - t0 < 120_000) await sleep(5);
    // The last batch records after its sends.
    const tr = performance.now();
    while (recorded() < webhooks && performance.now() - tr < 5_000) await sleep(5);
    const wall = performance.now() - t0;
    const used = cpuMs(pids) - c0 - idlePerMs * wall;
    const threads = schedDelta(th0, threadSched(pids));
    const isolates = {};
    if (profilers) {
      for (const [name, p] of Object.entries(profilers)) {
        const raw = await p.stop();
        isolates[name] = { ...profileBusy(raw, profile), ...(keepProfiles ? { raw } : {}) };
      }
    }
    if (perf) { perf.kill("SIGINT"); await new Promise((r) => perf.on("exit", r)); }
    const batches = parseLogLines(logLines).filter((p) => p.msg === "delivery batch");
    return { delivered: arrivals, recorded: recorded(), webhooks, cpuMs: used, perDeliveryMs: used / webhooks, wallMs: wall, idlePerS: idlePerMs * 1000,
      batches: batches.length, logLines: logLines.length, threads,
      ...(profilers ? {
        userMs: isolates.user.busyMs / webhooks, userGcMs: isolates.user.gcMs / webhooks,
        d1Ms: isolates.d1.busyMs / webhooks, d1GcMs: isolates.d1.gcMs / webhooks, isolates,
      } : {}) };
  } finally {
    await mf.dispose();
  }
}

/**
 * Calibration of the isolate profile: a JS worker burns CPU in `requests` requests of
 * `rounds` rounds each; the profile's busy time of its isolate is compared with the CPU
 * time of workerd's main thread (which runs every isolate) over the same window, which
 * also holds each request's plumbing, so the ratio is a lower bound of the estimator's
 * accuracy.
 */
export async function calibrate({ interval = 100, requests = 300, rounds = 100_000 } = {}) {
  const inspectorPort = await freePort();
  const { mf } = await startWorker({ script: new URL("./cpu-burn-worker.mjs", import.meta.url).pathname, inspectorPort });
  try {
    const hit = async (n) => (await mf.dispatchFetch(`http://localhost/?n=${n}`)).text();
    for (let i = 0; i < 30; i++) await hit(rounds);
    const pids = workerdPids();
    const p = await isolateProfiler(inspectorPort, "core:user:webhooks", interval);
    await sleep(300);
    await p.start();
    const s0 = threadSched(pids);
    for (let i = 0; i < requests; i++) await hit(rounds);
    const threads = schedDelta(s0, threadSched(pids));
    const prof = profileBusy(await p.stop(), interval);
    return { interval, requests, rounds, mainCpuMs: threads.main.cpu, mainWaitMs: threads.main.wait, ...prof, top: undefined };
  } finally {
    await mf.dispose();
  }
}

/** The figures of a profiled scenario, per delivery (ms). */
function perDelivery(x) {
  const u = x.isolates.user, d = x.isolates.d1, n = x.webhooks;
  // A sample is wall time: one taken while the main thread was runnable but off its CPU
  // (other threads, other processes, the VM's host) still counts busy. The main thread's
  // share of on-CPU time while runnable (/proc schedstat) scales it to CPU time.
  const main = x.threads.main, onCpuShare = main.cpu / (main.cpu + main.wait);
  return { user: u.busyMs / n, userGc: u.gcMs / n, userProgram: u.programMs / n, d1: d.busyMs / n, d1Gc: d.gcMs / n,
    proc: x.perDeliveryMs, main: main.cpu / n, mainWait: main.wait / n, onCpuShare, userOnCpu: (u.busyMs / n) * onCpuShare,
    profiler: (x.threads["v8:ProfEvntProc"]?.cpu ?? 0) / n, intervalUs: u.intervalUs, periodUs: u.periodUs };
}

const f3 = (x) => x.toFixed(3);
const line = (tag, x) => process.stderr.write(`[bench] ${tag}: ${f3(x.perDeliveryMs)} ms/delivery in workerd (${x.delivered}/${x.webhooks}, wall ${x.wallMs.toFixed(0)} ms, ${x.logLines} log lines)${
  x.isolates ? (({ user, userGc, d1, main, mainWait, onCpuShare, userOnCpu }) => `; profiled: worker isolate ${f3(user)} (gc ${f3(userGc)}; on CPU ${f3(userOnCpu)}), D1 isolate ${f3(d1)}, workerd main thread ${f3(main)} on CPU + ${f3(mainWait)} waiting (${(onCpuShare * 100).toFixed(0)} % on CPU)`)(perDelivery(x)) : ""}\n`);

/**
 * `runs` unprofiled scenarios (the workerd-process figure) interleaved with `runs`
 * profiled ones (`profile` µs, 0 = none): the isolates' CPU, and the /proc figures of the
 * same runs as the whole they are a share of.
 */
export async function run({ webhooks = 1000, runs = 3, batch = 100, bodyBytes = 1024, profile = 250, warmup = 10 } = {}) {
  const rs = [];
  const ps = [];
  for (let r = 0; r < runs; r++) {
    rs.push(await scenario({ webhooks, batch, bodyBytes, warmup }));
    line(`delivery cpu run ${r + 1}`, rs.at(-1));
    if (profile) {
      ps.push(await scenario({ webhooks, batch, bodyBytes, warmup, profile }));
      line(`delivery cpu run ${r + 1}, profiled`, ps.at(-1));
    }
  }
  const pd = ps.map(perDelivery);
  const med = (k) => median(pd.map((x) => x[k]));
  return { webhooks, batch, bodyBytes, runs, warmup, perDeliveryMs: median(rs.map((r) => r.perDeliveryMs)),
    min: Math.min(...rs.map((r) => r.perDeliveryMs)), max: Math.max(...rs.map((r) => r.perDeliveryMs)), samples: rs,
    isolate: profile ? { userMs: med("user"), userOnCpuMs: med("userOnCpu"), onCpuShare: med("onCpuShare"), userGcMs: med("userGc"), userProgramMs: med("userProgram"), d1Ms: med("d1"), d1GcMs: med("d1Gc"),
      procMs: med("proc"), mainMs: med("main"), profilerMs: med("profiler"), intervalUs: profile, periodUs: med("periodUs"), runs: pd,
      top: ps.map((x) => ({ user: x.isolates.user.top, d1: x.isolates.d1.top })) } : null };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { webhooks: { type: "string", default: "1000" }, runs: { type: "string", default: "3" },
    batch: { type: "string", default: "100" }, body: { type: "string", default: "1024" }, builds: { type: "string" },
    profile: { type: "string", default: "250" }, warmup: { type: "string", default: "10" }, calibrate: { type: "boolean", default: false } } });
  const opts = { webhooks: Number(values.webhooks), batch: Number(values.batch), bodyBytes: Number(values.body), warmup: Number(values.warmup) };
  const profile = Number(values.profile);
  if (values.calibrate) {
    for (const interval of [100, 250, 1000]) {
      const { top, ...c } = await calibrate({ interval, requests: 60, rounds: 3_000_000 });
      console.log(JSON.stringify({ ...c, "(busy + program) ÷ main-thread CPU": +((c.busyMs + c.programMs) / c.mainCpuMs).toFixed(2) }));
    }
  } else if (values.builds) {
    // A B A B …: the machine's load drifts; interleaving spreads it over every build.
    // With --profile (default), every run is profiled: the isolates' figures per build.
    const builds = values.builds.split(",");
    const per = Object.fromEntries(builds.map((b) => [b, []]));
    for (let r = 0; r < Number(values.runs); r++) {
      for (const b of builds) {
        process.env.WORKER_BUILD_DIR = b;
        const x = await scenario({ ...opts, profile });
        per[b].push(x.isolates ? perDelivery(x) : { proc: x.perDeliveryMs });
        line(b, x);
      }
    }
    const keys = Object.keys(per[builds[0]][0]);
    console.log(JSON.stringify({ ...opts, profile, median: Object.fromEntries(builds.map((b) => [b, Object.fromEntries(keys.map((k) => [k, median(per[b].map((x) => x[k]))]))])), samples: per }));
  } else {
    const r = await run({ ...opts, runs: Number(values.runs), profile });
    console.log(JSON.stringify({ ...r, samples: r.samples.map(({ perDeliveryMs, wallMs, idlePerS, batches }) => ({ perDeliveryMs, wallMs, idlePerS, batches })) }, null, 1));
  }
}
