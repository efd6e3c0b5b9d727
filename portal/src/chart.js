// Stats of one endpoint (SPEC §8.4) as figures and an inline SVG bar chart of successes
// and failures per bucket. Reads the shape defensively: the route is young.
import { h } from "./dom.js";

const num = (...values) => { for (const v of values) if (typeof v === "number" && Number.isFinite(v)) return v; return 0; };
const maybe = (...values) => values.find((v) => typeof v === "number" && Number.isFinite(v));

export function statsChart(stats, window) {
  const counts = stats?.counts ?? stats?.by_status ?? stats?.totals ?? {};
  const series = (stats?.series ?? stats?.buckets ?? []).map((b) => ({
    at: b.start ?? b.at ?? b.bucket ?? b.time ?? b.hour ?? b.day ?? "",
    ok: num(b.success, b.successes, b.succeeded),
    bad: num(b.failed, b.failures, b.failure),
  }));
  let rate = maybe(stats?.success_rate);
  if (rate != null && rate <= 1) rate *= 100;
  const duration = stats?.duration_ms ?? stats?.attempt_duration_ms ?? stats?.latency_ms ?? {};
  const p50 = maybe(duration.p50, stats?.p50_ms, stats?.duration_p50_ms);
  const p95 = maybe(duration.p95, stats?.p95_ms, stats?.duration_p95_ms);
  const succeeded = num(counts.success, counts.succeeded);
  const failed = num(counts.failed, counts.failure);
  const pending = num(counts.pending);

  const W = 300;
  const H = 80;
  const max = Math.max(1, ...series.map((b) => b.ok + b.bad));
  const step = series.length ? W / series.length : W;
  const bar = Math.max(1, step - 1);
  const label = `${series.length} ${window === "24h" ? "hourly" : "daily"} buckets: ${series.reduce((s, b) => s + b.ok, 0)} succeeded, ${series.reduce((s, b) => s + b.bad, 0)} failed`;
  const chart = h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img", "aria-label": label },
    h("title", {}, label),
    h("line", { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: "axis" }),
    series.map((b, i) => {
      const okH = (b.ok / max) * (H - 2);
      const badH = (b.bad / max) * (H - 2);
      const x = i * step;
      return h("g", {},
        h("title", {}, `${b.at}: ${b.ok} succeeded, ${b.bad} failed`),
        okH ? h("rect", { x, width: bar, y: H - 1 - okH, height: okH, class: "bar-ok" }) : null,
        badH ? h("rect", { x, width: bar, y: H - 1 - okH - badH, height: badH, class: "bar-bad" }) : null);
    }));
  return h("div", { class: "stats" },
    h("dl", { class: "figures" },
      h("div", {}, h("dt", {}, "Succeeded"), h("dd", { class: "ok-text" }, String(succeeded))),
      h("div", {}, h("dt", {}, "Failed"), h("dd", { class: "bad-text" }, String(failed))),
      pending ? h("div", {}, h("dt", {}, "Pending"), h("dd", {}, String(pending))) : null,
      h("div", {}, h("dt", {}, "Success rate"), h("dd", {}, rate == null ? "—" : `${rate.toFixed(1)} %`)),
      h("div", {}, h("dt", {}, "p50 / p95"), h("dd", {}, p50 == null ? "—" : `${Math.round(p50)} / ${Math.round(p95 ?? p50)} ms`))),
    series.length ? chart : h("p", { class: "muted" }, "No deliveries in this window."),
    series.length ? h("p", { class: "legend small" }, h("span", { class: "key key-ok" }), "succeeded ", h("span", { class: "key key-bad" }), "failed") : null);
}
