// Latency at a steady rate: one webhook whose receiver is a real HTTP server on loopback
// (`DEV_ALLOW_PRIVATE_TARGETS`); events are published open
// loop at 20 and at 200 events/s, and each latency is its arrival at the receiver minus
// the start of its `POST /api/v1/events`. p50/p95/p99 per delivery mode:
//   queue, window 1 s   every delivery through the queue, `max_batch_timeout = 1` (before)
//   queue, window 0     the same with `max_batch_timeout = 0`
//   direct              the configured mode of wrangler.toml (first attempt from the
//                       publishing request when it has ≤ DIRECT_SEND_MAX deliveries)
//   node bench/latency.mjs [--rates 20,200] [--seconds 10] [--modes direct,window0,window1]
import { parseArgs } from "node:util";
import { api, token } from "../tests/helpers.mjs";
import { readdirSync } from "node:fs";
import { startWorker, seedWebhooks, loopbackReceiver, parseLogLines, percentile, median, num, isMain, sleep } from "./lib.mjs";
import { statCpuMs, workerdPids } from "./delivery-cpu.mjs";

/** utime + stime (ms) of every thread of the workerd processes, by thread id. */
function threadCpuMs() {
  const out = new Map();
  for (const pid of workerdPids()) {
    let tids = [];
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) out.set(tid, statCpuMs(`/proc/${pid}/task/${tid}/stat`));
  }
  return out;
}

/** workerd's CPU over an interval: all threads, and the busiest one (one isolate runs on one thread). */
function cpuSince(before, wallMs) {
  const after = threadCpuMs();
  let total = 0;
  let busiest = 0;
  for (const [tid, ms] of after) {
    const d = ms - (before.get(tid) ?? 0);
    total += d;
    busiest = Math.max(busiest, d);
  }
  return { cpuMs: total, busiestThreadShare: busiest / wallMs };
}

export const MODES = {
  window1: { label: "queue, max_batch_timeout 1", bindings: { DIRECT_SEND_MAX: "0" }, consumer: { maxBatchTimeout: 1 } },
  window0: { label: "queue, max_batch_timeout 0", bindings: { DIRECT_SEND_MAX: "0" }, consumer: { maxBatchTimeout: 0 } },
  direct: { label: "direct send (wrangler.toml)", bindings: {}, consumer: {} },
};

/** Publishes `count` events at `rate`/s (open loop); resolves to every event's latency (ms). */
async function steady(mf, started, arrived, { rate, count, tag }) {
  const auth = token({ workspace: "ws_lat", role: "service" });
  const statuses = {};
  const sends = [];
  const t0 = performance.now();
  for (let k = 0; k < count; k++) {
    const due = t0 + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const key = `${tag}:${k}`;
    started.set(key, performance.now());
    sends.push(api(mf, "POST", "/api/v1/events", { auth, body: { type: "flight.departed", data: { key } }, contract: false })
      .then((r) => r.status, (e) => e.code ?? "error")
      .then((status) => { statuses[status] = (statuses[status] ?? 0) + 1; }));
  }
  await Promise.all(sends);
  const deadline = performance.now() + 15_000;
  const keys = Array.from({ length: count }, (_, k) => `${tag}:${k}`);
  while (keys.some((k) => !arrived.has(k)) && performance.now() < deadline) await sleep(20);
  const latencies = keys.filter((k) => arrived.has(k)).map((k) => arrived.get(k) - started.get(k));
  return { latencies, statuses, wallMs: performance.now() - t0 };
}

export async function scenario({ mode, rates, seconds }) {
  const started = new Map();
  const arrived = new Map();
  const rx = await loopbackReceiver((body) => {
    const at = performance.now();
    try { const key = JSON.parse(body).data?.key; if (key && !arrived.has(key)) arrived.set(key, at); } catch { /* not ours */ }
  });
  const lines = [];
  const { mf, db } = await startWorker({
    outbound: "network",
    bindings: { DEV_ALLOW_PRIVATE_TARGETS: "true", ...mode.bindings },
    consumer: mode.consumer,
    onLog: (l) => lines.push(l),
  });
  try {
    await seedWebhooks(db, "ws_lat", 1, { url: () => rx.url });
    await steady(mf, started, arrived, { rate: 20, count: 20, tag: "warm" });
    const out = [];
    for (const rate of rates) {
      const count = Math.round(rate * seconds);
      lines.length = 0;
      const cpuBefore = threadCpuMs();
      const r = await steady(mf, started, arrived, { rate, count, tag: `r${rate}` });
      const cpu = cpuSince(cpuBefore, r.wallMs);
      // Where the time goes, by the worker's own clock: the publishing request, and the
      // claim / send / record of the batches (direct or queued) that carried the deliveries.
      const parsed = parseLogLines(lines);
      const requests = parsed.filter((p) => p.msg === "request" && p.path === "/api/v1/events").map((p) => p.ms);
      const batches = parsed.filter((p) => p.msg === "delivery batch");
      const p50 = (k) => percentile(batches.map((b) => b[k]), 50);
      out.push({ rate, count, delivered: r.latencies.length, statuses: r.statuses,
        requestP50: percentile(requests, 50), claimP50: p50("claim_ms"), sendP50: p50("send_ms"), recordP50: p50("record_ms"),
        batches: batches.length,
        p50: percentile(r.latencies, 50), p95: percentile(r.latencies, 95), p99: percentile(r.latencies, 99),
        max: Math.max(...r.latencies), achievedRate: count / (r.wallMs / 1000),
        // Whether the local harness keeps up: workerd CPU per event, and how busy its
        // busiest thread was (1.0 = saturated: requests queue behind each other).
        workerdCpuPerEvent: cpu.cpuMs / count, busiestThread: cpu.busiestThreadShare });
    }
    return out;
  } finally {
    await mf.dispose();
    await rx.close();
  }
}

export async function run({ rates = [20, 200], seconds = 10, modes = ["window1", "window0", "direct"], runs = 1 } = {}) {
  const rows = [];
  const results = [];
  for (const id of modes) {
    const mode = MODES[id];
    const rs = [];
    for (let r = 0; r < runs; r++) rs.push(await scenario({ mode, rates, seconds }));
    for (const [i, rate] of rates.entries()) {
      const m = (k) => median(rs.map((x) => x[i][k]));
      const res = { mode: id, label: mode.label, rate, count: rs[0][i].count, delivered: m("delivered"), p50: m("p50"), p95: m("p95"), p99: m("p99"), max: m("max"),
        requestP50: m("requestP50"), claimP50: m("claimP50"), sendP50: m("sendP50"), recordP50: m("recordP50"), batches: m("batches"),
        workerdCpuPerEvent: m("workerdCpuPerEvent"), busiestThread: m("busiestThread"), runs, samples: rs.map((x) => x[i]) };
      results.push(res);
      rows.push({
        mode: mode.label, "events/s": rate, delivered: `${num(res.delivered)}/${num(res.count)}`,
        "p50 (ms)": num(res.p50, 1), "p95 (ms)": num(res.p95, 1), "p99 (ms)": num(res.p99, 1), "max (ms)": num(res.max, 1),
        "worker: publish request p50 (ms)": num(res.requestP50, 0),
        "batches (claim / send / record p50, ms)": `${num(res.batches)} (${num(res.claimP50)} / ${num(res.sendP50)} / ${num(res.recordP50)})`,
        "workerd CPU per event (ms)": num(res.workerdCpuPerEvent, 2),
        "busiest workerd thread": `${num(res.busiestThread * 100)} %`,
      });
    }
  }
  const figures = results.map((r) => ({
    figure: `publish → arrival, 1 webhook, ${r.rate} events/s, ${r.label}`,
    value: `p50 ${num(r.p50, 1)} ms, p95 ${num(r.p95, 1)} ms, p99 ${num(r.p99, 1)} ms${r.delivered < r.count ? ` — only ${r.delivered}/${r.count} arrived` : ""}`,
    how: `open-loop publisher, ${r.count} events; loopback HTTP receiver; arrival − start of the POST${r.runs > 1 ? `; median of ${r.runs} fresh instances` : ""}`,
  }));
  return {
    id: "latency", title: "4b. Latency", figures,
    tables: [{ title: `Publish → arrival at a steady rate (1 webhook, loopback receiver, ${seconds} s per rate)`, rows }],
    json: { results },
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    rates: { type: "string", default: "20,200" }, seconds: { type: "string", default: "10" },
    modes: { type: "string", default: "window1,window0,direct" }, runs: { type: "string", default: "1" },
  } });
  const r = await run({ rates: values.rates.split(",").map(Number), seconds: Number(values.seconds), modes: values.modes.split(","), runs: Number(values.runs) });
  console.table(r.tables[0].rows);
}
