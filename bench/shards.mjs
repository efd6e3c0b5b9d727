// Shards (SPEC §9.2): the noisy-neighbour figure and the time to move a workspace.
//
// Noisy neighbour: workspace A (100 webhooks, instant receivers) publishes a burst of
// 10 events (1,000 deliveries) while two other workspaces list their webhooks back to
// back: B₁ lives in A's shard, B₂ in another one. Reports each one's list p95 quiet and
// during the burst (one D1 database runs one query at a time: B₁ waits behind A's
// writes, B₂ does not).
// Move: a workspace of N delivered logs moved DB → DB_2 through the operator API, idle
// (the moves test measures it under a publish load); total time and cut-over.
//   node bench/shards.mjs [--runs 3] [--logs 10000,50000]
import { parseArgs } from "node:util";
import { api, token, seedDeliveredLogs, d1 } from "../tests/helpers.mjs";
import { startWorker, seedWebhooks, percentile, median, ms, isMain, sleep } from "./lib.mjs";

const OPS_KEY = "ops-bench-key-0123456789abcdef-0123456";
const SHARDS = ["DB", "DB_2"];

/** Puts `ws` into `shard` in the directory (as its first write would). */
async function place(mf, ws, shard) {
  const db = d1(mf, "DB");
  await db.prepare("INSERT INTO workspace_shards (workspace_id, shard, placed_at) VALUES (?1, ?2, ?3)").bind(ws, shard, Date.now()).run();
}

/** Lists `ws`'s webhooks back to back until `stop()`; returns the latencies. */
async function lister(mf, ws, stop) {
  const auth = token({ workspace: ws });
  const latencies = [];
  while (!stop()) {
    const t = performance.now();
    const res = await api(mf, "GET", "/api/v1/webhooks?limit=20", { auth, contract: false });
    if (res.status !== 200) throw new Error(`list ${ws}: ${res.status} ${res.text}`);
    latencies.push(performance.now() - t);
  }
  return latencies;
}

async function neighbourOnce({ events, webhooks }) {
  let arrived = 0;
  const { mf } = await startWorker({
    shards: SHARDS,
    receiver: async () => { arrived++; return new Response("ok"); },
  });
  try {
    const [A, B1, B2] = ["ws_noisy", "ws_same_shard", "ws_other_shard"];
    await place(mf, A, "DB");
    await place(mf, B1, "DB");
    await place(mf, B2, "DB_2");
    await seedWebhooks(d1(mf, "DB"), A, webhooks);
    await seedWebhooks(d1(mf, "DB"), B1, 20, { prefix: "wh_same" });
    await seedWebhooks(d1(mf, "DB_2"), B2, 20, { prefix: "wh_other" });

    // Quiet: 2 s of lists by both, side by side.
    let until = performance.now() + 2000;
    const quiet = await Promise.all([B1, B2].map((ws) => lister(mf, ws, () => performance.now() > until)));

    // Burst: A publishes `events` events at once; both list until every delivery arrived.
    const total = events * webhooks;
    const auth = token({ workspace: A });
    const t0 = performance.now();
    let done = false;
    const busy = [B1, B2].map((ws) => lister(mf, ws, () => done));
    const published = await Promise.all(Array.from({ length: events }, (_, i) =>
      api(mf, "POST", "/api/v1/events", { auth, body: { type: "flight.departed", data: { n: i } }, contract: false })));
    for (const r of published) if (r.status !== 202) throw new Error(`publish: ${r.status} ${r.text}`);
    const deadline = performance.now() + 180_000;
    while (arrived < total && performance.now() < deadline) await sleep(20);
    const burstMs = performance.now() - t0;
    done = true;
    const during = await Promise.all(busy);
    if (arrived < total) throw new Error(`only ${arrived}/${total} deliveries arrived`);
    return {
      burstMs,
      sameQuiet: percentile(quiet[0], 95), otherQuiet: percentile(quiet[1], 95),
      sameBurst: percentile(during[0], 95), otherBurst: percentile(during[1], 95),
      sameN: during[0].length, otherN: during[1].length,
    };
  } finally {
    await mf.dispose();
  }
}

async function moveOnce(logs) {
  const { mf } = await startWorker({
    shards: SHARDS,
    bindings: { OPS_API_KEY: OPS_KEY, MOVE_CLEANUP_DELAY_SECONDS: "1" },
    receiver: async () => new Response("ok"),
  });
  try {
    const ws = "ws_moved";
    await place(mf, ws, "DB");
    const [hook] = await seedWebhooks(d1(mf, "DB"), ws, 1);
    await seedDeliveredLogs(d1(mf, "DB"), ws, hook, logs);
    const t0 = performance.now();
    const res = await api(mf, "POST", `/api/v1/ops/workspaces/${ws}/move`, { auth: OPS_KEY, body: { to: "DB_2" }, contract: false });
    if (res.status !== 202) throw new Error(`move: ${res.status} ${res.text}`);
    for (;;) {
      const job = (await api(mf, "GET", `/api/v1/ops/moves/${res.json.job}`, { auth: OPS_KEY, contract: false })).json;
      if (job.state === "done") return { ms: performance.now() - t0, cutoverMs: job.cutover_ms, copied: job.copied.delivery_logs };
      if (job.state === "failed") throw new Error(`move failed: ${job.error}`);
      if (performance.now() - t0 > 600_000) throw new Error("move did not finish in 10 min");
      await sleep(100);
    }
  } finally {
    await mf.dispose();
  }
}

export async function run({ runs = 3, events = 10, webhooks = 100, logSizes = [10_000] } = {}) {
  const nb = [];
  for (let i = 0; i < runs; i++) nb.push(await neighbourOnce({ events, webhooks }));
  const m = (k) => median(nb.map((x) => x[k]));
  const rows = [
    { workspace: "B₁, A's shard", "list p95 quiet": ms(m("sameQuiet"), 1), "list p95 during A's burst": ms(m("sameBurst"), 1), "lists during the burst": nb.map((x) => x.sameN).join(", ") },
    { workspace: "B₂, other shard", "list p95 quiet": ms(m("otherQuiet"), 1), "list p95 during A's burst": ms(m("otherBurst"), 1), "lists during the burst": nb.map((x) => x.otherN).join(", ") },
  ];
  const moves = [];
  for (const logs of logSizes) moves.push({ logs, ...(await moveOnce(logs)) });
  const moveRows = moves.map((x) => ({ logs: x.logs, "move (copy + cut-over + flip)": ms(x.ms, 0), "cut-over (writes 503)": ms(x.cutoverMs, 0), "per 10,000 logs": ms((x.ms * 10_000) / x.logs, 0) }));
  const figures = [
    {
      figure: "noisy neighbour: B's list p95 during A's 10 × 100 burst, same shard → other shard",
      value: `${ms(m("sameBurst"), 1)} → ${ms(m("otherBurst"), 1)} (quiet ${ms(m("sameQuiet"), 1)})`,
      how: `A: ${events} events × ${webhooks} instant webhooks at once (burst ${ms(m("burstMs"), 0)}); B lists 20 webhooks back to back; SHARDS=DB,DB_2; median of ${runs} fresh instances`,
    },
    ...moves.map((x) => ({
      figure: `move a workspace of ${x.logs.toLocaleString("en")} logs DB → DB_2`,
      value: `${ms(x.ms, 0)}, cut-over ${ms(x.cutoverMs, 0)}`,
      how: "POST /api/v1/ops/workspaces/:id/move → job done (idle; chunks of 200 rows through the queue); cut-over = writes refused with 503",
    })),
  ];
  return {
    id: "shards", title: "7. Shards", figures,
    tables: [
      { title: `Noisy neighbour (list p95 of B's webhooks while A's burst is delivered; medians of ${runs} runs)`, rows },
      { title: "Moving a workspace (one run per size)", rows: moveRows },
    ],
    json: { neighbour: nb, moves },
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, logs: { type: "string", default: "10000" } } });
  const r = await run({ runs: Number(values.runs), logSizes: values.logs.split(",").map(Number) });
  console.table(r.figures);
  for (const t of r.tables) { console.log(t.title); console.table(t.rows); }
}
