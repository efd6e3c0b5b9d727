// Inbound receivers under load: signed Stripe and Resend (Svix) events per second and
// latency at concurrency 1, 8 and 32.
//   node bench/inbound.mjs [--requests 300] [--runs 3] [--concurrency 1,8,32]
// Every request is a distinct, correctly signed event (unique event id, its own
// workspace), so each one is verified, deduplicated, applied and written to D1. Closed
// loop: `c` clients send back to back. Latency is measured around dispatchFetch (Node →
// workerd loopback HTTP → worker → D1 → response body read).
import { parseArgs } from "node:util";
import { STRIPE_SECRET, RESEND_SECRET, api, token } from "../tests/helpers.mjs";
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

/** Not a receiver: the harness's floor at the same concurrency (one D1 read per request). */
const REFERENCE = {
  label: "reference: GET /api/v1/health (one D1 SELECT 1)",
  path: "/api/v1/health",
  method: "GET",
  request: () => ({ headers: {} }),
};

async function send(mf, provider, u) {
  const { body, headers } = provider.request(u);
  const res = await mf.dispatchFetch(`http://localhost${provider.path}`, { method: provider.method ?? "POST", headers, body });
  const text = await res.text();
  if (provider === REFERENCE || res.status !== 200) return res.status;
  // 200 also acknowledges ignored events: count what the receiver says it did.
  let outcome = "?";
  try { outcome = JSON.parse(text).status ?? "?"; } catch { /* not JSON */ }
  return `${res.status} ${outcome}`;
}

/** One provider at every concurrency; null when the route is not there (404). */
async function measureProvider(name, { requests, runs, concurrencies }) {
  const provider = PROVIDERS[name] ?? REFERENCE;
  const { mf } = await startWorker({});
  try {
    const probe = await send(mf, provider, uniq());
    if (probe === 404 || probe === "404") return { name, label: provider.label, available: false };
    // Warm-up: JIT tiers, D1 statement caches.
    await closedLoop(40, 8, () => send(mf, provider, uniq()));
    const levels = [];
    for (const c of concurrencies) {
      const runsOut = [];
      for (let r = 0; r < runs; r++) runsOut.push(loadSummary(await closedLoop(requests, c, () => send(mf, provider, uniq()))));
      const statuses = {};
      for (const x of runsOut) for (const [k, v] of Object.entries(x.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
      levels.push({
        concurrency: c, runs, requestsPerRun: requests,
        perSecond: median(runsOut.map((x) => x.perSecond)), p50: median(runsOut.map((x) => x.p50)),
        p95: median(runsOut.map((x) => x.p95)), p99: median(runsOut.map((x) => x.p99)), statuses,
      });
    }
    if (provider === REFERENCE) return { name, label: provider.label, available: true, levels, applied: { ok: true } };
    // Spot check that the events were applied, not only acknowledged.
    const u = uniq();
    await send(mf, provider, u);
    const applied = await appliedCheck(mf, name, u);
    return { name, label: provider.label, available: true, levels, applied };
  } finally {
    await mf.dispose();
  }
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

export async function run({ requests = 300, runs = 3, concurrencies = [1, 8, 32] } = {}) {
  const results = [];
  for (const name of [...Object.keys(PROVIDERS), "reference"]) results.push(await measureProvider(name, { requests, runs, concurrencies }));
  const rows = [];
  const figures = [];
  for (const p of results) {
    if (!p.available) {
      rows.push({ receiver: p.label, concurrency: "1/8/32", "events/s": "n/a (route not available)", p50: "", p95: "", p99: "", statuses: "404" });
      figures.push({ figure: `inbound ${p.name}`, value: "n/a (route not available)", how: `POST ${PROVIDERS[p.name].path} answered 404` });
      continue;
    }
    for (const l of p.levels) {
      rows.push({
        receiver: p.label, concurrency: l.concurrency, "events/s": num(l.perSecond), p50: ms(l.p50), p95: ms(l.p95), p99: ms(l.p99),
        statuses: Object.entries(l.statuses).map(([k, v]) => `${k}×${v}`).join(" "),
      });
    }
    if (p.name === "reference") continue;
    const byC = (c) => p.levels.find((l) => l.concurrency === c) ?? p.levels[p.levels.length - 1];
    const best = p.levels.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
    figures.push({
      figure: `inbound ${p.name}: events/s (best) · p50/p99 at c=1`,
      value: `${num(best.perSecond)}/s at c=${best.concurrency} · ${ms(byC(1).p50)} / ${ms(byC(1).p99)}${p.applied.ok ? "" : " — applied check FAILED"}`,
      how: `${p.label}, unique signed events, closed loop, ${requests} requests × ${runs} runs per concurrency, medians of runs; applied check via ${p.applied.route}: ${p.applied.ok ? "ok" : p.applied.status}`,
    });
  }
  return {
    id: "inbound", title: "2. Inbound receivers", figures,
    tables: [{ title: `Inbound: signed events, each applied with its D1 writes (closed loop, ${requests} requests × ${runs} runs, medians of runs)`, rows }],
    json: results,
  };
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: {
    requests: { type: "string", default: "300" }, runs: { type: "string", default: "3" }, concurrency: { type: "string", default: "1,8,32" },
  } });
  const r = await run({ requests: Number(values.requests), runs: Number(values.runs), concurrencies: values.concurrency.split(",").map(Number) });
  console.table(r.figures);
  console.table(r.tables[0].rows);
}
