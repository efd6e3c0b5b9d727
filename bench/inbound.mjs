// Inbound receivers under load, beside the SDK baseline: signed Stripe and Resend (Svix)
// events per second, interleaved run by run between
//   sdk    — bench/sdk-baseline/worker.mjs: what a Workers developer would write with the
//            official `stripe` and `svix` packages, then one D1 insert per event;
//   ours   — the built worker (build/), which also dedupes, orders and applies state;
//   before — optionally another build of ours (`--before DIR`, e.g. the previous commit's
//            build/), to show a change.
// Each variant runs in its own Miniflare from the same wrangler.toml set-up; rounds are
// interleaved (sdk, ours, before, sdk, ours, …) so machine load hits them alike.
//   node bench/inbound.mjs [--requests 600] [--runs 3] [--concurrency 8,32] [--before DIR]
// Every request is a distinct, correctly signed event (unique event id, its own
// workspace), sent over HTTP with its Content-Length as the providers send it. Closed
// loop: `c` clients send back to back. Latency is measured around fetch (Node → workerd
// loopback HTTP → worker → D1 → response body read).
// Beside throughput: D1 round trips per event (counted outside the worker by
// tests/d1-counter.mjs) and CPU per event of each variant's workerd process (user +
// system time from /proc over serial events; it includes the local D1 and the HTTP
// handling in that process, alike for every variant).
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { ROOT, STRIPE_SECRET, RESEND_SECRET, api, token } from "../tests/helpers.mjs";
import { countingScript, ROUND_TRIPS_HEADER } from "../tests/d1-counter.mjs";
import { startWorker, closedLoop, loadSummary, median, stripeSignature, svixHeaders, ms, num, isMain } from "./lib.mjs";

let seq = 0;
const uniq = () => `${Date.now().toString(36)}${(seq++).toString(36).padStart(5, "0")}`;

/** A `customer.subscription.updated` event shaped like Stripe's 2025 API (~1.6 KB). */
export function stripeEvent(u) {
  const now = Math.floor(Date.now() / 1000);
  return JSON.stringify({
    id: `evt_bench_${u}`, object: "event", api_version: "2025-08-27.basil", created: now, livemode: false,
    pending_webhooks: 1, request: { id: null, idempotency_key: null }, type: "customer.subscription.updated",
    data: {
      object: {
        id: `sub_bench_${u}`, object: "subscription", customer: `cus_bench_${u}`, status: "active",
        cancel_at_period_end: false, canceled_at: null, ended_at: null, collection_method: "charge_automatically",
        created: now - 86400, currency: "usd", start_date: now - 86400, livemode: false,
        metadata: { workspace_id: `ws_in_${u}` },
        items: { object: "list", has_more: false, total_count: 1, url: `/v1/subscription_items?subscription=sub_bench_${u}`, data: [{
          id: `si_bench_${u}`, object: "subscription_item", created: now - 86400, quantity: 3,
          current_period_start: now - 86400, current_period_end: now + 29 * 86400, subscription: `sub_bench_${u}`,
          price: { id: "price_bench_pro", object: "price", active: true, currency: "usd", product: "prod_bench_pro", type: "recurring",
            unit_amount: 4900, recurring: { interval: "month", interval_count: 1, usage_type: "licensed" } },
        }] },
      },
      previous_attributes: { cancel_at_period_end: true },
    },
  });
}

/** A Resend `email.delivered` event tagged with its workspace (~0.6 KB). */
export function resendEvent(u) {
  return JSON.stringify({
    type: "email.delivered", created_at: new Date().toISOString(),
    data: {
      created_at: new Date(Date.now() - 2000).toISOString(), email_id: `em_bench_${u}`,
      from: "PlaneConnection <noreply@planeconnection.example>", to: [`pilot+${u}@example.com`],
      subject: "Your reservation is confirmed", tags: [{ name: "workspace_id", value: `ws_in_${u}` }, { name: "category", value: "reservation" }],
    },
  });
}

export const PROVIDERS = {
  stripe: {
    label: "Stripe customer.subscription.updated",
    path: "/api/webhooks/stripe",
    request(u) {
      const body = stripeEvent(u);
      return { body, headers: { "Content-Type": "application/json", "Stripe-Signature": stripeSignature(STRIPE_SECRET, body) } };
    },
  },
  resend: {
    label: "Resend email.delivered (Svix)",
    path: "/api/webhooks/resend",
    request(u) {
      const body = resendEvent(u);
      return { body, headers: { "Content-Type": "application/json", ...svixHeaders(RESEND_SECRET, `msg_${u}`, body) } };
    },
  },
};

const BASELINE = join(ROOT, "bench/sdk-baseline/worker.mjs");
/** The one table the SDK baseline writes (created in its own Miniflare's D1). */
const SCHEMA = "CREATE TABLE IF NOT EXISTS sdk_events (source TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, " +
  "payload TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (source, id))";
const BASELINE_BUNDLE = join(ROOT, "target/sdk-baseline/worker.js");

/** Bundles the SDK baseline (stripe + svix) into one module for workerd. */
export async function buildBaseline() {
  const esbuild = await import("esbuild");
  await esbuild.build({ entryPoints: [BASELINE], bundle: true, format: "esm", platform: "browser", conditions: ["worker"],
    outfile: BASELINE_BUNDLE, logLevel: "warning" });
  return BASELINE_BUNDLE;
}

/** The variants to compare: [{ id, label, script }] (script undefined = build/). */
export async function variants({ before } = {}) {
  const out = [
    { id: "sdk", label: "SDK baseline (stripe constructEventAsync / svix verify + 1 D1 insert)", script: await buildBaseline() },
    { id: "ours", label: "this project (build/)", script: undefined },
  ];
  if (before) out.push({ id: "before", label: `this project, before (${before})`, script: resolve(before, "index.js") });
  return out;
}

/** The pid of the workerd process a Miniflare instance started (the child that appeared). */
function childPids() {
  try {
    return new Set(readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number));
  } catch { return new Set(); }
}

/** user + system CPU seconds of a process (Linux /proc), or NaN. */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
  } catch { return NaN; }
}

async function start(variant, { counting = false } = {}) {
  const beforePids = childPids();
  const script = counting ? countingScript(variant.script) : variant.script;
  const { mf, db } = await startWorker({ script });
  const pid = [...childPids()].find((p) => !beforePids.has(p));
  if (variant.id === "sdk") await db.exec(SCHEMA);
  return { mf, db, pid };
}

/** Each instance's HTTP address: requests go over HTTP with a Content-Length, as the
 * providers send them (Miniflare's dispatchFetch would stream the body chunked). */
const urls = new WeakMap();

async function send(mf, provider, u) {
  const { body, headers } = provider.request(u);
  if (!urls.has(mf)) urls.set(mf, await mf.ready);
  const res = await fetch(new URL(provider.path, urls.get(mf)), { method: "POST", headers, body });
  const text = await res.text();
  if (res.status !== 200) return res.status;
  // 200 also acknowledges ignored events: count what the receiver says it did.
  let outcome = "?";
  try { outcome = JSON.parse(text).status ?? "?"; } catch { /* not JSON */ }
  return `${res.status} ${outcome}`;
}

/** D1 round trips per event, counted outside the worker: new events, then one duplicate. */
async function roundTrips(variant, name, n = 20) {
  const { mf } = await start(variant, { counting: true });
  try {
    const provider = PROVIDERS[name];
    const counts = [];
    let last;
    for (let i = 0; i < n; i++) {
      last = uniq();
      const { body, headers } = provider.request(last);
      const res = await mf.dispatchFetch(`http://localhost${provider.path}`, { method: "POST", headers, body });
      await res.text();
      counts.push(Number(res.headers.get(ROUND_TRIPS_HEADER)));
    }
    const { body, headers } = provider.request(last);
    const dup = await mf.dispatchFetch(`http://localhost${provider.path}`, { method: "POST", headers, body });
    const dupText = await dup.text();
    return { perEvent: median(counts), max: Math.max(...counts), duplicate: Number(dup.headers.get(ROUND_TRIPS_HEADER)),
      duplicateAnswer: `${dup.status} ${dupText.includes("duplicate") ? "duplicate" : dupText.slice(0, 40)}` };
  } finally {
    await mf.dispose();
  }
}

export async function run({ requests = 600, runs = 3, concurrencies = [8, 32], before = process.env.BENCH_BEFORE_DIR, cpuEvents = 300 } = {}) {
  const vs = await variants({ before });
  const results = {};
  for (const name of Object.keys(PROVIDERS)) {
    const provider = PROVIDERS[name];
    const instances = [];
    for (const v of vs) instances.push({ v, ...(await start(v)) });
    try {
      // Warm-up: wasm and JS tiers, D1 statement caches (each variant alike).
      for (const inst of instances) await closedLoop(300, 8, () => send(inst.mf, provider, uniq()));
      // CPU per event: serial events, CPU time of the variant's workerd process.
      const cpu = {};
      for (const inst of instances) {
        const c0 = cpuSeconds(inst.pid);
        const t0 = performance.now();
        const loop = await closedLoop(cpuEvents, 1, () => send(inst.mf, provider, uniq()));
        cpu[inst.v.id] = { msPerEvent: ((cpuSeconds(inst.pid) - c0) * 1000) / cpuEvents, wallMsPerEvent: (performance.now() - t0) / cpuEvents,
          p50: loadSummary(loop).p50 };
      }
      const levels = [];
      for (const c of concurrencies) {
        const byVariant = Object.fromEntries(vs.map((v) => [v.id, []]));
        for (let r = 0; r < runs; r++) {
          for (const inst of instances) byVariant[inst.v.id].push(loadSummary(await closedLoop(requests, c, () => send(inst.mf, provider, uniq()))));
        }
        const level = { concurrency: c };
        for (const [id, rs] of Object.entries(byVariant)) {
          const statuses = {};
          for (const x of rs) for (const [k, n] of Object.entries(x.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
          level[id] = { perSecond: median(rs.map((x) => x.perSecond)), runs: rs.map((x) => Math.round(x.perSecond)),
            p50: median(rs.map((x) => x.p50)), p99: median(rs.map((x) => x.p99)), statuses };
        }
        levels.push(level);
      }
      // Spot check that our events were applied, not only acknowledged.
      const ours = instances.find((i) => i.v.id === "ours");
      const u = uniq();
      await send(ours.mf, provider, u);
      const applied = await appliedCheck(ours.mf, name, u);
      results[name] = { label: provider.label, levels, cpu, applied };
    } finally {
      for (const inst of instances) await inst.mf.dispose();
    }
    results[name].roundTrips = {};
    for (const v of vs) results[name].roundTrips[v.id] = await roundTrips(v, name);
  }

  const rows = [];
  const figures = [];
  for (const [name, p] of Object.entries(results)) {
    for (const l of p.levels) {
      const row = { receiver: p.label, concurrency: l.concurrency,
        "SDK events/s": num(l.sdk.perSecond), "ours events/s": num(l.ours.perSecond), ratio: `${(l.ours.perSecond / l.sdk.perSecond).toFixed(2)}×` };
      if (l.before) Object.assign(row, { "before events/s": num(l.before.perSecond), "before ratio": `${(l.before.perSecond / l.sdk.perSecond).toFixed(2)}×` });
      Object.assign(row, {
        "p50 sdk / ours": `${ms(l.sdk.p50)} / ${ms(l.ours.p50)}`, "p99 sdk / ours": `${ms(l.sdk.p99)} / ${ms(l.ours.p99)}`,
        "runs (events/s)": vs.map((v) => `${v.id} ${l[v.id].runs.join(",")}`).join("; "),
        statuses: vs.map((v) => `${v.id} ${Object.entries(l[v.id].statuses).map(([k, n]) => `${k}×${n}`).join(" ")}`).join("; "),
      });
      rows.push(row);
    }
    for (const v of vs) {
      const rt = p.roundTrips[v.id];
      const cpu = p.cpu[v.id];
      rows.push({ receiver: p.label, concurrency: `${v.id}: per event`, "SDK events/s": "", "ours events/s": "", ratio: "",
        ...(vs.some((x) => x.id === "before") ? { "before events/s": "", "before ratio": "" } : {}),
        "p50 sdk / ours": `c=1 p50 ${ms(cpu.p50)}`, "p99 sdk / ours": "",
        "runs (events/s)": `D1 round trips ${rt.perEvent} (max ${rt.max}; duplicate: ${rt.duplicate}, ${rt.duplicateAnswer})`,
        statuses: `workerd CPU ${cpu.msPerEvent.toFixed(2)} ms/event (wall ${cpu.wallMsPerEvent.toFixed(2)} ms)` });
    }
    const ratios = p.levels.map((l) => `${(l.ours.perSecond / l.sdk.perSecond).toFixed(2)}× at c=${l.concurrency}`).join(", ");
    figures.push({
      figure: `inbound ${name}: ours vs SDK baseline`,
      value: `${ratios}; D1 round trips/event ${p.roundTrips.ours.perEvent} (SDK ${p.roundTrips.sdk.perEvent}); workerd CPU ${p.cpu.ours.msPerEvent.toFixed(2)} ms/event (SDK ${p.cpu.sdk.msPerEvent.toFixed(2)})${p.applied.ok ? "" : " — applied check FAILED"}`,
      how: `${p.label}, unique signed events, closed loop, ${requests} requests × ${runs} interleaved rounds per concurrency, medians; applied check via ${p.applied.route}: ${p.applied.ok ? "ok" : p.applied.status}`,
    });
  }
  return {
    id: "inbound", title: "2. Inbound receivers beside the SDK baseline", figures,
    tables: [{ title: `Inbound: signed events, ours (dedupe + order + state) vs the SDK baseline (verify + 1 insert), ${requests} requests × ${runs} interleaved rounds, medians; load average ${loadavg()[0].toFixed(2)} at the end`, rows }],
    json: { variants: vs, results },
  };
}

/** Reads back one event's effect through the read routes of SPEC §5.4. */
async function appliedCheck(mf, name, u) {
  const auth = token({ workspace: `ws_in_${u}`, role: "admin" });
  if (name === "stripe") {
    const r = await api(mf, "GET", "/api/v1/billing", { auth });
    return { route: "GET /api/v1/billing", status: r.status, ok: r.status === 200 && JSON.stringify(r.json ?? {}).includes(`sub_bench_${u}`) };
  }
  const day = new Date().toISOString().slice(0, 10);
  const r = await api(mf, "GET", `/api/v1/email/analytics?date_from=${day}&date_to=${day}`, { auth });
  return { route: "GET /api/v1/email/analytics", status: r.status, ok: r.status === 200 && JSON.stringify(r.json ?? {}).includes("delivered") };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    requests: { type: "string", default: "600" }, runs: { type: "string", default: "3" }, concurrency: { type: "string", default: "8,32" },
    before: { type: "string" },
  } });
  const r = await run({ requests: Number(values.requests), runs: Number(values.runs), concurrencies: values.concurrency.split(",").map(Number),
    before: values.before ?? process.env.BENCH_BEFORE_DIR });
  console.table(r.figures);
  console.table(r.tables[0].rows);
}
