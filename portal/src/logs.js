// Delivery logs: the filtered list with cursor (or offset) pagination, and one delivery
// in full (payload, headers, attempts, response) with redelivery.
import { app, eventTypes, go, toast, webhookName } from "./app.js";
import { h, nextId, pill, pretty, STATUS_TONE, timeAgo } from "./dom.js";

const FILTERS = ["webhook_id", "event_type", "status", "date_from", "date_to", "limit"];

/** A table of logs (a stack of cards on narrow screens). */
export function logTable(logs) {
  if (!logs.length) return h("p", { class: "empty" }, "No deliveries.");
  return h("table", { class: "logs" },
    h("thead", {}, h("tr", {},
      ["Status", "Event", "Endpoint", "Response", "Attempts", "Created", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, logs.map((l) => h("tr", { "data-log": l.id },
      h("td", { "data-label": "Status" }, pill(l.status, STATUS_TONE[l.status] ?? "off"), l.test ? h("span", { class: "tag" }, "test") : null),
      h("td", { "data-label": "Event" }, h("code", {}, l.event_type)),
      h("td", { "data-label": "Endpoint" }, webhookName(l.webhook_id)),
      h("td", { "data-label": "Response" }, l.response_status ? `HTTP ${l.response_status}` : l.error ? h("span", { class: "bad-text" }, "error") : "—"),
      h("td", { "data-label": "Attempts" }, `${l.attempts}/${l.max_attempts}`),
      h("td", { "data-label": "Created" }, timeAgo(l.created_at)),
      h("td", {}, h("button", { class: "btn btn-small", type: "button", "aria-label": `Details of delivery ${l.id}`, onclick: () => go("log", { id: l.id }) }, "Details"))))));
}

/**
 * `params`: the filters, plus `cursor` or `offset` for the page, and `back`, the stack of
 * earlier pages' params (for "Newer").
 */
export async function logsView(params = {}) {
  if (!app.webhooks.length) app.webhooks = await app.api.listWebhooks().catch(() => []);
  const query = {};
  for (const k of [...FILTERS, "cursor", "offset"]) if (params[k]) query[k] = params[k];
  query.limit ??= "25";
  const page = await app.api.logs(query);
  const logs = page?.data ?? [];
  const back = params.back ?? [];

  const ids = {};
  const input = (name, el) => { el.id = ids[name] = nextId(name); el.name = name; return el; };
  const select = (name, options, value) => input(name, h("select", {}, options.map(([v, t]) => h("option", { value: v, selected: v === (value ?? "") }, t))));
  const controls = {
    webhook_id: select("webhook_id", [["", "All endpoints"], ...app.webhooks.map((w) => [w.id, w.name])], params.webhook_id),
    event_type: select("event_type", [["", "All events"], ...eventTypes().map((t) => [t, t])], params.event_type),
    status: select("status", [["", "Any status"], ["success", "Succeeded"], ["failed", "Failed"], ["pending", "Pending"]], params.status),
    date_from: input("date_from", h("input", { type: "date", value: params.date_from ?? "" })),
    date_to: input("date_to", h("input", { type: "date", value: params.date_to ?? "" })),
    limit: select("limit", [["25", "25"], ["50", "50"], ["100", "100"]], query.limit),
  };
  const labels = { webhook_id: "Endpoint", event_type: "Event type", status: "Status", date_from: "From", date_to: "To", limit: "Per page" };
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter deliveries" },
    FILTERS.map((k) => h("div", { class: "field" }, h("label", { for: ids[k] }, labels[k]), controls[k])),
    h("div", { class: "actions" },
      h("button", { class: "btn btn-primary", type: "submit" }, "Apply filters"),
      h("button", { class: "btn", type: "button", onclick: () => go("logs", {}) }, "Reset")));
  const current = () => Object.fromEntries(FILTERS.map((k) => [k, controls[k].value]).filter(([, v]) => v));
  filters.addEventListener("submit", (event) => { event.preventDefault(); go("logs", current()); });

  // Cursor pagination when the API offers it (SPEC §8.3), offset otherwise.
  const filtersOnly = Object.fromEntries(FILTERS.filter((k) => params[k]).map((k) => [k, params[k]]));
  const limit = Number(page?.limit ?? query.limit);
  const offset = Number(page?.offset ?? params.offset ?? 0);
  let older = null;
  if (page?.next_cursor) older = { ...filtersOnly, cursor: page.next_cursor };
  else if (!("next_cursor" in (page ?? {})) && offset + logs.length < Number(page?.total ?? 0)) older = { ...filtersOnly, offset: String(offset + limit) };
  const total = page?.total;
  const summary = total == null ? `${logs.length} deliveries` : `${page.total_capped ? `${total.toLocaleString("en")}+` : total.toLocaleString("en")} deliveries`;

  return h("section", { "aria-labelledby": "logs-title" },
    h("h2", { id: "logs-title", tabindex: "-1" }, "Delivery logs"),
    filters,
    h("p", { class: "muted small", "data-total": "" }, summary),
    logTable(logs),
    h("nav", { class: "pager", "aria-label": "Pages" },
      h("button", { class: "btn", type: "button", disabled: !back.length, onclick: () => go("logs", back[back.length - 1]) }, "← Newer"),
      h("button", { class: "btn", type: "button", disabled: !older, onclick: () => go("logs", { ...older, back: [...back, params] }) }, "Older →")));
}

export async function logView({ id }) {
  const log = await app.api.log(id);
  const headers = log.request_headers ?? [];
  const attempts = log.attempt_history ?? [];
  const redeliver = h("button", {
    class: "btn btn-primary", type: "button",
    onclick: async () => {
      redeliver.disabled = true;
      try {
        const fresh = await app.api.redeliver(log.id);
        toast("Redelivery queued.");
        go("log", { id: fresh.id });
      } catch (e) {
        toast(e.message, "bad");
        redeliver.disabled = false;
      }
    },
  }, "Redeliver");
  return h("section", { "aria-labelledby": "log-title" },
    h("button", { class: "btn btn-quiet back", type: "button", onclick: () => go("logs", {}) }, "← Delivery logs"),
    h("div", { class: "toolbar" },
      h("h2", { id: "log-title", tabindex: "-1" }, h("code", {}, log.event_type)),
      h("span", { class: "pills" }, pill(log.status, STATUS_TONE[log.status] ?? "off"), log.test ? h("span", { class: "tag" }, "test") : null)),
    h("div", { class: "actions" }, redeliver,
      h("button", { class: "btn", type: "button", onclick: () => go("webhook", { id: log.webhook_id }) }, `Endpoint: ${webhookName(log.webhook_id)}`)),
    h("dl", { class: "facts" },
      h("dt", {}, "Delivery"), h("dd", {}, h("code", {}, log.id)),
      h("dt", {}, "Event"), h("dd", {}, h("code", {}, log.event_id)),
      h("dt", {}, "Attempts"), h("dd", {}, `${log.attempts} of ${log.max_attempts}`),
      h("dt", {}, "Response"), h("dd", {}, log.response_status ? `HTTP ${log.response_status}` : "—", log.duration_ms != null ? ` in ${log.duration_ms} ms` : ""),
      log.error ? [h("dt", {}, "Error"), h("dd", { class: "bad-text" }, log.error)] : null,
      h("dt", {}, "Created"), h("dd", {}, timeAgo(log.created_at)),
      log.next_attempt_at && log.status === "pending" ? [h("dt", {}, "Next attempt"), h("dd", {}, timeAgo(log.next_attempt_at))] : null,
      log.redelivery_of ? [h("dt", {}, "Redelivery of"), h("dd", {}, h("button", { class: "link", type: "button", onclick: () => go("log", { id: log.redelivery_of }) }, log.redelivery_of))] : null),
    h("section", { class: "panel", "aria-labelledby": "payload-title" },
      h("h3", { id: "payload-title" }, "Payload"),
      h("pre", { class: "code", tabindex: "0", "data-payload": "" }, log.payload == null ? "(not kept)" : pretty(log.payload))),
    h("section", { class: "panel", "aria-labelledby": "headers-title" },
      h("h3", { id: "headers-title" }, "Request headers"),
      headers.length
        ? h("dl", { class: "headers" }, headers.map((x) => [h("dt", {}, x.name), h("dd", {}, h("code", {}, x.value))]))
        : h("p", { class: "muted" }, "None recorded.")),
    h("section", { class: "panel", "aria-labelledby": "attempts-title" },
      h("h3", { id: "attempts-title" }, "Attempts"),
      attempts.length
        ? h("ol", { class: "attempts" }, attempts.map((a) => h("li", {},
          h("p", {}, a.response_status ? pill(`HTTP ${a.response_status}`, a.response_status < 300 ? "ok" : "bad") : pill("error", "bad"),
            ` attempt ${a.attempt} · `, timeAgo(a.attempted_at), ` · ${a.duration_ms} ms`),
          a.error ? h("p", { class: "small bad-text" }, a.error) : null,
          a.response_body ? h("pre", { class: "code small", tabindex: "0" }, a.response_body) : null)))
        : h("p", { class: "muted" }, "No attempt yet.")),
    log.response_body && !attempts.length ? h("section", { class: "panel" }, h("h3", {}, "Response"), h("pre", { class: "code small" }, log.response_body)) : null);
}
