// Ordered and rate-limited endpoints (SPEC §9.3), measured on purpose (not in `npm test`):
//  1. limit accuracy: a backlog of 3 s worth at R per second, arrival times at the
//     receiver: most in any one-second window, and the average rate while it drains;
//  2. FIFO throughput of one endpoint with an instant receiver (N events, default 1,000),
//     and that the successes arrived in publish order;
//  3. extra cost per delivery against the same events to an unscheduled webhook: Durable
//     Object requests (wake-ups + alarm invocations, from the worker's log lines), D1
//     rows changed (SQLite's total_changes(), index entries not included), the object's
//     storage writes (alarms set, bucket writes), and CPU of the workerd processes.
// Usage: node bench/ordering.mjs [--fifo 1000] [--rates 5,50,200]
import { startWorker, api, createWebhook, sleep, waitFor, runCron } from "../tests/helpers.mjs";
import { workerdPids, cpuMs } from "./delivery-cpu.mjs";

const arg = (name, d) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : d; };
const FIFO_N = Number(arg("fifo", 1000));
const RATES = String(arg("rates", "5,50,200")).split(",").map(Number);

function maxPerSecond(times) {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i] - times[j] >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/** A worker whose receiver records arrival times per host, with its log lines parsed. */
async function worker() {
  const arrivals = new Map();
  const lines = [];
  const receiver = async (request) => {
    const host = new URL(request.url).hostname;
    const at = Date.now();
    const id = request.headers.get("x-webhook-delivery");
    await request.arrayBuffer();
    if (!arrivals.has(host)) arrivals.set(host, []);
    arrivals.get(host).push({ at, id });
    return new Response("ok");
  };
  const onLog = (line) => { const i = line.indexOf("{"); if (i >= 0) { try { lines.push(JSON.parse(line.slice(i))); } catch { /* not ours */ } } };
  const w = await startWorker({ receiver, onLog, connectionCap: Infinity });
  return { ...w, arrivals, lines };
}

/** Writes `n` events of one type and their pending logs for `hooks` straight into D1 (a backlog). */
async function seedBacklog(db, hooks, n) {
  const now = Date.now();
  const stmts = [];
  for (let i = 0; i < n; i++) {
    const ev = `evt_bench${String(i).padStart(6, "0")}`;
    stmts.push(db.prepare("INSERT INTO events (id, workspace_id, type, body, source, created_at) VALUES (?, 'ws_a', 'flight.departed', ?, 'api', ?)")
      .bind(ev, JSON.stringify({ id: ev, type: "flight.departed", created_at: new Date(now).toISOString(), data: { i } }), now));
    for (const h of hooks) {
      stmts.push(db.prepare("INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, max_attempts, next_attempt_at, created_at, updated_at, scheduled) VALUES (?, 'ws_a', ?, ?, 'flight.departed', 'pending', 0, 4, ?, ?, ?, ?)")
        .bind(`dlv_${h.tag}${String(i).padStart(6, "0")}`, h.id, ev, now, now, now, h.scheduled ? now + i : null));
    }
  }
  for (let i = 0; i < stmts.length; i += 500) await db.batch(stmts.slice(i, i + 500));
}

async function limitAccuracy(rate) {
  const w = await worker();
  try {
    const hook = await createWebhook(w.mf, { url: "https://limited.example.com/h", rate_limit_per_second: rate });
    const n = 3 * rate;
    await seedBacklog(w.db, [{ id: hook.id, tag: "l", scheduled: true }], n);
    await runCron(w.mf); // wakes the lane (SWEEP_GRACE_SECONDS=0 in the harness)
    await waitFor(() => (w.arrivals.get("limited.example.com")?.length ?? 0) >= n, { timeoutMs: 120_000, what: "the backlog" });
    const times = w.arrivals.get("limited.example.com").map((a) => a.at).sort((a, b) => a - b);
    const avg = (times.length - 1) / ((times.at(-1) - times[0]) / 1000);
    return { rate, n, maxWindow: maxPerSecond(times), avg };
  } finally {
    await w.mf.dispose();
  }
}

/** N deliveries to a webhook, either FIFO or unscheduled, published through the API. */
async function costRun(kind, n) {
  const w = await worker();
  try {
    const hook = await createWebhook(w.mf, { url: `https://${kind}.example.com/h`, ...(kind === "fifo" ? { ordering: "fifo" } : {}) });
    // Warm-up, not counted.
    await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { warm: true } } });
    await waitFor(() => (w.arrivals.get(`${kind}.example.com`)?.length ?? 0) >= 1, { what: "warm-up" });
    const changes0 = (await w.db.prepare("SELECT total_changes() AS n").first()).n;
    const lines0 = w.lines.length;
    const pids = workerdPids();
    const cpu0 = cpuMs(pids);
    const t0 = Date.now();
    const events = [];
    for (let i = 0; i < n; i++) events.push((await api(w.mf, "POST", "/api/v1/events", { body: { type: "flight.departed", data: { i } } })).json.id);
    await waitFor(() => (w.arrivals.get(`${kind}.example.com`)?.length ?? 0) >= n + 1, { timeoutMs: 600_000, intervalMs: 50, what: `${kind} deliveries` });
    await waitFor(async () => (await w.db.prepare("SELECT COUNT(*) AS n FROM delivery_logs WHERE status = 'pending'").first()).n === 0, { timeoutMs: 60_000, what: "records" });
    const wallMs = Date.now() - t0;
    const cpu = cpuMs(pids) - cpu0;
    const changes = (await w.db.prepare("SELECT total_changes() AS n").first()).n - changes0;
    const lines = w.lines.slice(lines0);
    const batches = lines.filter((l) => l.msg === "delivery batch");
    const wakes = batches.filter((l) => l.handed_over > 0).length;
    const runs = lines.filter((l) => l.msg === "scheduler run");
    // Order of arrivals against publish order.
    const logs = new Map((await w.db.prepare("SELECT id, event_id FROM delivery_logs").all()).results.map((r) => [r.id, r.event_id]));
    const order = w.arrivals.get(`${kind}.example.com`).map((a) => logs.get(a.id)).filter((e) => events.includes(e));
    const inOrder = order.every((e, i) => e === events[i]);
    return {
      kind, n, wallMs, perSecond: n / (wallMs / 1000), cpuMs: cpu / n, rowsChanged: changes / n,
      doRequests: (wakes + runs.length) / n, wakes, alarms: runs.length,
      doWrites: runs.filter((r) => r.alarm_set).length + runs.reduce((s, r) => s + r.bucket_writes, 0),
      laneReads: runs.reduce((s, r) => s + r.lane_reads, 0) / n, inOrder,
      schedulerWallMs: runs.reduce((s, r) => s + r.wall_ms, 0) / n,
    };
  } finally {
    await w.mf.dispose();
  }
}

/** FIFO throughput of a backlog already in D1 (no publishing in the way). */
async function fifoBacklog(n) {
  const w = await worker();
  try {
    const hook = await createWebhook(w.mf, { url: "https://fifo.example.com/h", ordering: "fifo" });
    await seedBacklog(w.db, [{ id: hook.id, tag: "f", scheduled: true }], n);
    const t0 = Date.now();
    await runCron(w.mf);
    await waitFor(() => (w.arrivals.get("fifo.example.com")?.length ?? 0) >= n, { timeoutMs: 600_000, intervalMs: 50, what: "the FIFO backlog" });
    const arr = w.arrivals.get("fifo.example.com");
    const ms = arr.at(-1).at - arr[0].at;
    const inOrder = arr.every((a, i) => a.id === `dlv_f${String(i).padStart(6, "0")}`);
    return { n, ms, perSecond: (n - 1) / (ms / 1000), wakeToFirstMs: arr[0].at - t0, inOrder };
  } finally {
    await w.mf.dispose();
  }
}

const out = [];
for (const rate of RATES) {
  const r = await limitAccuracy(rate);
  out.push(`| limit R = ${rate}/s, backlog ${r.n} | most in any 1 s window: ${r.maxWindow} (limit ${rate}, +1 tolerated); average while draining ${r.avg.toFixed(2)}/s (${(r.avg / rate * 100).toFixed(1)} % of R) |`);
  console.error(out.at(-1));
}
const backlog = await fifoBacklog(FIFO_N);
out.push(`| FIFO backlog of ${backlog.n}, instant receiver | ${backlog.perSecond.toFixed(1)} deliveries/s (${backlog.ms} ms first → last; in publish order: ${backlog.inOrder}) |`);
console.error(out.at(-1));
const costN = Math.min(FIFO_N, 300);
const plain = await costRun("plain", costN);
const fifo = await costRun("fifo", costN);
for (const r of [plain, fifo]) {
  out.push(`| ${r.kind === "fifo" ? "FIFO" : "unscheduled"}: ${r.n} events published one by one | ${r.perSecond.toFixed(1)} deliveries/s; per delivery: ${r.doRequests.toFixed(2)} DO requests (${r.wakes} wake-ups, ${r.alarms} alarm runs), ${r.doWrites} DO storage writes in all, ${r.laneReads.toFixed(2)} lane reads, ${r.rowsChanged.toFixed(2)} D1 rows changed, ${r.cpuMs.toFixed(2)} ms workerd CPU, ${r.schedulerWallMs.toFixed(1)} ms object wall time; order kept: ${r.inOrder} |`);
  console.error(out.at(-1));
}
console.log("\n| measure | value |\n|---|---|");
for (const l of out) console.log(l);
