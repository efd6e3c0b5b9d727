// Endpoints: the list, one endpoint (health, stats, recent deliveries), the create/edit
// form, and the dialogs for secrets, test events and recovery.
import { ApiError } from "./api.js";
import { app, clearFieldErrors, confirmDialog, dialog, field, fieldset, go, showFieldErrors, toast } from "./app.js";
import { statsChart } from "./chart.js";
import { copyText, h, mount, nextId, pill, STATUS_TONE, timeAgo } from "./dom.js";
import { logTable } from "./logs.js";

export async function refreshWebhooks() {
  app.webhooks = await app.api.listWebhooks();
  return app.webhooks;
}

function statusPills(w) {
  const health = w.health?.state;
  return h("span", { class: "pills" },
    w.active ? pill("Active", "ok") : pill("Disabled", "off"),
    health && health !== "ok" && health !== "disabled" ? pill(health.replace("_", " "), STATUS_TONE[health] ?? "warn") : null);
}

export async function webhooksView() {
  const list = await refreshWebhooks();
  return h("section", { "aria-labelledby": "wh-title" },
    h("div", { class: "toolbar" },
      h("h2", { id: "wh-title", tabindex: "-1" }, "Endpoints"),
      app.canWrite ? h("button", { class: "btn btn-primary", type: "button", onclick: () => go("form", {}) }, "New endpoint") : null),
    list.length === 0
      ? h("p", { class: "empty" }, app.canWrite ? "No endpoints yet. Create one to start receiving events." : "No endpoints yet.")
      : h("ul", { class: "cards" }, list.map(webhookCard)));
}

function webhookCard(w) {
  return h("li", { class: "card", "data-webhook": w.id },
    h("div", { class: "card-head" },
      h("h3", {}, h("button", { class: "link", type: "button", onclick: () => go("webhook", { id: w.id }) }, w.name)),
      statusPills(w)),
    h("p", { class: "url" }, h("code", {}, w.url)),
    h("p", { class: "muted small" }, `${w.events.length} event type${w.events.length === 1 ? "" : "s"} · updated `, timeAgo(w.updated_at)),
    w.disabled_reason ? h("p", { class: "small warn-text" }, w.disabled_reason) : null,
    h("div", { class: "actions" }, webhookActions(w, () => go("webhooks"))));
}

/** The buttons a role may use on one endpoint; `after` runs when something changed. */
function webhookActions(w, after) {
  const label = (verb) => ({ "aria-label": `${verb} ${w.name}` });
  return [
    h("button", { class: "btn", type: "button", ...label("Send test event to"), onclick: () => testDialog(w) }, "Send test"),
    h("button", { class: "btn", type: "button", ...label("Delivery logs of"), onclick: () => go("logs", { webhook_id: w.id }) }, "Logs"),
    app.canWrite ? h("button", { class: "btn", type: "button", ...label("Edit"), onclick: () => go("form", { id: w.id }) }, "Edit") : null,
    app.canWrite ? h("button", {
      class: "btn", type: "button", ...label(w.active ? "Disable" : "Enable"),
      onclick: async () => {
        try {
          await app.api.updateWebhook(w.id, { active: !w.active });
          toast(`${w.name} ${w.active ? "disabled" : "enabled"}.`);
          after();
        } catch (e) { toast(e.message, "bad"); }
      },
    }, w.active ? "Disable" : "Enable") : null,
    app.canWrite ? h("button", {
      class: "btn btn-danger", type: "button", ...label("Delete"),
      onclick: async () => {
        const sure = await confirmDialog("Delete endpoint?", `“${w.name}” and all its delivery logs will be deleted. This cannot be undone.`, "Delete endpoint");
        if (!sure) return;
        try {
          await app.api.deleteWebhook(w.id);
          toast(`${w.name} deleted.`);
          go("webhooks");
        } catch (e) { toast(e.message, "bad"); }
      },
    }, "Delete") : null,
  ];
}

export async function webhookView({ id }) {
  const w = await app.api.getWebhook(id);
  const rerender = () => go("webhook", { id });
  const catalogDescriptions = new Map(app.catalog.flatMap((g) => g.events ?? []).map((e) => [e.type, e.description]));
  const headers = Object.entries(w.headers ?? {});
  return h("section", { "aria-labelledby": "w-title" },
    h("button", { class: "btn btn-quiet back", type: "button", onclick: () => go("webhooks") }, "← Endpoints"),
    h("div", { class: "toolbar" }, h("h2", { id: "w-title", tabindex: "-1" }, w.name), statusPills(w)),
    h("p", { class: "url" }, h("code", {}, w.url)),
    w.disabled_reason ? h("p", { class: "alert alert-warn" }, w.disabled_reason) : null,
    w.secret_status === "undecryptable" ? h("p", { class: "alert alert-bad", role: "alert", "data-undecryptable": "" },
      "This endpoint's signing secret or header values cannot be decrypted: its deliveries fail without being sent. ",
      app.canWrite ? `${ed25519(w) ? "Rotate its key pair" : "Rotate its secret"} to repair it (custom header values that cannot be decrypted must be set again).`
        : "An admin can repair it by rotating its secret.") : null,
    h("div", { class: "actions" }, webhookActions(w, rerender),
      app.canWrite ? h("button", { class: "btn", type: "button", "data-rotate": "", onclick: () => rotateDialog(w, rerender) }, ed25519(w) ? "Rotate key pair" : "Rotate secret") : null,
      app.canWrite && app.features.recover ? h("button", { class: "btn", type: "button", "data-recover": "", onclick: () => recoverDialog(w) }, "Recover failed") : null),
    h("dl", { class: "facts" },
      h("dt", {}, "Events"), h("dd", {}, h("ul", { class: "chips" }, w.events.map((t) => h("li", { title: catalogDescriptions.get(t) ?? "" }, t)))),
      h("dt", {}, "Retries"), h("dd", {}, `${w.retry_count} after the first attempt`),
      h("dt", {}, "Timeout"), h("dd", {}, `${w.timeout_ms / 1000} s`),
      ...signingFacts(w),
      h("dt", {}, "Rate limit"), h("dd", {}, w.rate_limit_per_second ? `${w.rate_limit_per_second} requests per second` : "none"),
      h("dt", {}, "Ordering"), h("dd", {}, w.ordering === "fifo" ? "FIFO: one at a time, in publish order" : "none"),
      h("dt", {}, "Custom headers"), h("dd", {}, headers.length ? h("ul", { class: "plain" }, headers.map(([k, v]) => h("li", {}, h("code", {}, `${k}: ${v}`)))) : "none"),
      h("dt", {}, "Created"), h("dd", {}, timeAgo(w.created_at), w.created_by ? ` by ${w.created_by}` : ""),
      h("dt", {}, "Updated"), h("dd", {}, timeAgo(w.updated_at), w.updated_by ? ` by ${w.updated_by}` : "")),
    w.health ? healthPanel(w.health) : null,
    app.features.stats ? statsPanel(w) : null,
    h("section", { class: "panel", "aria-labelledby": "recent-title" },
      h("h3", { id: "recent-title" }, "Recent deliveries"),
      logTable(w.recent_logs ?? []),
      h("button", { class: "btn", type: "button", onclick: () => go("logs", { webhook_id: w.id }) }, "All deliveries of this endpoint")));
}

const ed25519 = (w) => w.signing === "ed25519";

/** A read-only value with a copy button. */
function copyRow(value, label) {
  const input = h("input", { type: "text", readonly: true, value, class: "secret", "aria-label": label, spellcheck: "false" });
  const copied = h("span", { class: "small", role: "status" });
  return h("div", {}, h("div", { class: "copy-row" }, input,
    h("button", {
      class: "btn", type: "button", "aria-label": `Copy ${label.toLowerCase()}`,
      onclick: async () => { copied.textContent = (await copyText(value, input)) ? "Copied." : "Select the text and copy it."; },
    }, "Copy")), copied);
}

/** How deliveries are signed: the scheme, the secret's hint or the public key (shown at any time). */
function signingFacts(w) {
  if (ed25519(w)) {
    return [h("dt", {}, "Signing"), h("dd", {}, "Ed25519 (", h("code", {}, "v1a"), ")"),
      h("dt", {}, "Public key"), h("dd", { "data-public-key": "" }, w.public_key ? copyRow(w.public_key, "Public key") : "none")];
  }
  return [h("dt", {}, "Signing"), h("dd", {}, "HMAC-SHA256 (", h("code", {}, "v1"), ")",
      w.legacy_signature === false ? "" : " and X-Webhook-Signature"),
    h("dt", {}, "Signing secret"), h("dd", {}, !w.has_secret ? "none" : w.secret_hint ? `set (${w.secret_hint})` : "set")];
}

function healthPanel(health) {
  return h("section", { class: "panel", "aria-labelledby": "health-title", "data-health": "" },
    h("h3", { id: "health-title" }, "Health"),
    h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", {}, pill((health.state ?? "unknown").replace("_", " "), STATUS_TONE[health.state] ?? "off")),
      h("dt", {}, "Consecutive failures"), h("dd", {}, String(health.consecutive_failures ?? 0)),
      h("dt", {}, "Last success"), h("dd", {}, timeAgo(health.last_success_at)),
      h("dt", {}, "Last failure"), h("dd", {}, timeAgo(health.last_failure_at)),
      health.breaker_open_until ? [h("dt", {}, "Paused until"), h("dd", {}, timeAgo(health.breaker_open_until))] : null));
}

function statsPanel(w) {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const select = h("select", { id: nextId("win") },
    h("option", { value: "24h" }, "Last 24 hours"), h("option", { value: "7d" }, "Last 7 days"), h("option", { value: "30d" }, "Last 30 days"));
  const panel = h("section", { class: "panel", "aria-labelledby": "stats-title", "data-stats": "" },
    h("div", { class: "toolbar" }, h("h3", { id: "stats-title" }, "Deliveries"),
      h("label", { class: "inline" }, h("span", { class: "sr-only" }, "Window"), select)),
    body);
  const load = async () => {
    try {
      mount(body, statsChart(await app.api.stats(w.id, select.value), select.value));
    } catch (e) {
      if (e instanceof ApiError && e.unsupported) { app.features.stats = false; panel.remove(); return; }
      mount(body, h("p", { class: "alert alert-bad" }, e.message));
    }
  };
  select.addEventListener("change", load);
  load();
  return panel;
}

/** The create form (no `id`) or the edit form of endpoint `id`. */
export async function formView({ id }) {
  const w = id ? await app.api.getWebhook(id) : null;
  const fields = {};
  const formError = h("div", { class: "alert alert-bad", role: "alert", tabindex: "-1", hidden: true });
  const name = h("input", { type: "text", value: w?.name ?? "", maxlength: 100, required: true, autocomplete: "off" });
  const url = h("input", { type: "url", value: w?.url ?? "", placeholder: "https://example.com/webhooks", required: true, inputmode: "url", autocomplete: "off" });
  const chosen = new Set(w?.events ?? []);
  const boxes = [];
  const groups = app.catalog.map((g) => h("div", { class: "event-group" },
    h("p", { class: "group-name" }, g.name),
    (g.events ?? []).map((e) => {
      const box = h("input", { type: "checkbox", value: e.type, checked: chosen.has(e.type), id: nextId("ev") });
      boxes.push(box);
      return h("div", { class: "check" }, box, h("label", { for: box.id }, h("code", {}, e.type), h("span", { class: "muted small" }, ` ${e.description ?? ""}`)));
    })));
  const active = h("input", { type: "checkbox", checked: w ? w.active : true, id: nextId("act") });
  const retries = h("input", { type: "number", min: 0, max: 10, step: 1, value: String(w?.retry_count ?? 3), inputmode: "numeric" });
  const timeout = h("input", { type: "number", min: 1000, max: 30000, step: 500, value: String(w?.timeout_ms ?? 10000), inputmode: "numeric" });
  const rate = h("input", { type: "number", min: 1, max: 1000, step: 1, value: w?.rate_limit_per_second ? String(w.rate_limit_per_second) : "", placeholder: "no limit", inputmode: "numeric" });
  const ordering = h("select", {},
    h("option", { value: "none", selected: (w?.ordering ?? "none") === "none" }, "None (concurrent)"),
    h("option", { value: "fifo", selected: w?.ordering === "fifo" }, "FIFO (one at a time, in publish order)"));
  const secret = w ? null : h("input", { type: "text", autocomplete: "off", spellcheck: "false", placeholder: "leave empty to generate one" });
  // The scheme is chosen on create; a PUT could switch it, which replaces the credential at once.
  const scheme = w ? null : h("select", { "data-signing": "" },
    h("option", { value: "hmac", selected: true }, "HMAC-SHA256 with a shared secret (v1)"),
    h("option", { value: "ed25519" }, "Ed25519 key pair: receivers hold only the public key (v1a)"));
  const legacy = h("input", { type: "checkbox", checked: w ? w.legacy_signature !== false : true, id: nextId("leg"), "data-legacy-signature": "" });
  const legacyField = h("div", { class: "field check" }, legacy,
    h("label", { for: legacy.id }, "Also send X-Webhook-Signature (it signs the body only, no timestamp: a captured delivery can be replayed; receivers should verify webhook-signature)"));
  const schemeChanged = () => {
    const isEd = scheme.value === "ed25519";
    fields.secret.wrap.hidden = isEd;
    legacyField.hidden = isEd;
  };
  scheme?.addEventListener("change", schemeChanged);
  if (w && ed25519(w)) legacyField.hidden = true;

  // Values the API masks ("••••" + last 4) are never put back into the form: their input
  // starts empty, and a row left so sends the mask under its unchanged name, which the API
  // reads as "keep the stored value". Only a value the user typed is sent as a value.
  let headersDirty = false;
  const rows = h("div", { class: "header-rows" });
  const addRow = (k = "", v = "") => {
    const masked = v.startsWith("\u2022\u2022\u2022\u2022");
    const remove = h("button", { class: "btn btn-quiet", type: "button", "aria-label": "Remove header" }, "Remove");
    const key = h("input", { type: "text", value: k, "aria-label": "Header name", placeholder: "X-Custom", autocomplete: "off" });
    const val = h("input", { type: "text", value: masked ? "" : v, "aria-label": "Header value",
      placeholder: masked ? `${v} (unchanged; type to replace)` : "value", autocomplete: "off" });
    const row = h("div", { class: "header-row" }, key, val, remove);
    row.headerValue = () => (masked && val.value === "" && key.value.trim().toLowerCase() === k.toLowerCase() ? v : val.value);
    remove.addEventListener("click", () => { headersDirty = true; row.remove(); });
    row.addEventListener("input", () => { headersDirty = true; });
    rows.append(row);
    return key;
  };
  for (const [k, v] of Object.entries(w?.headers ?? {})) addRow(k, v);
  const addHeader = h("button", { class: "btn btn-quiet", type: "button", onclick: () => { headersDirty = true; addRow().focus(); } }, "+ Add header");

  const submit = h("button", { class: "btn btn-primary", type: "submit" }, w ? "Save changes" : "Create endpoint");
  const form = h("form", { class: "form", novalidate: true },
    formError,
    field(fields, "name", "Name", name),
    field(fields, "url", "Endpoint URL", url, "An https:// address that accepts POST requests."),
    fieldset(fields, "events", "Events to send", groups, boxes[0]),
    h("div", { class: "field check" }, active, h("label", { for: active.id }, "Active (deliver events)")),
    h("div", { class: "row2" },
      field(fields, "retry_count", "Retries (0–10)", retries),
      field(fields, "timeout_ms", "Timeout (ms)", timeout)),
    scheme ? field(fields, "signing", "Signature scheme", scheme, "Ed25519: the service generates a key pair and shows its public key at any time; there is no secret to keep.") : null,
    h("div", { class: "row2" },
      field(fields, "rate_limit_per_second", "Rate limit (requests/s)", rate, "1–1000; empty: no limit."),
      field(fields, "ordering", "Ordering", ordering, "FIFO holds later events while one is retried.")),
    secret ? field(fields, "secret", "Signing secret (optional)", secret, "16–256 characters. Empty: a whsec_ secret is generated and shown once.") : null,
    legacyField,
    fieldset(fields, "headers", "Custom headers", [rows, addHeader]),
    h("div", { class: "actions" }, submit,
      h("button", { class: "btn", type: "button", onclick: () => go(w ? "webhook" : "webhooks", w ? { id: w.id } : {}) }, "Cancel")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(fields, formError);
    const headers = {};
    for (const row of rows.children) {
      const [k] = row.querySelectorAll("input");
      if (k.value.trim()) headers[k.value.trim()] = row.headerValue();
    }
    const body = {
      name: name.value,
      url: url.value.trim(),
      events: boxes.filter((b) => b.checked).map((b) => b.value),
      active: active.checked,
      retry_count: retries.value === "" ? undefined : Number(retries.value),
      timeout_ms: timeout.value === "" ? undefined : Number(timeout.value),
      legacy_signature: legacy.checked,
      rate_limit_per_second: rate.value === "" ? null : Number(rate.value),
      ordering: ordering.value,
    };
    if (scheme) body.signing = scheme.value;
    if (!w || headersDirty) body.headers = headers;
    if (secret?.value && body.signing !== "ed25519") body.secret = secret.value;
    if (w) {
      // Only what changed: PUT leaves omitted fields as they are.
      for (const key of Object.keys(body)) {
        if (key !== "headers" && JSON.stringify(body[key]) === JSON.stringify(w[key])) delete body[key];
      }
    }
    submit.disabled = true;
    try {
      const saved = w ? await app.api.updateWebhook(w.id, body) : await app.api.createWebhook(body);
      if (!w && saved?.secret) await secretDialog("Endpoint created", saved.secret, null);
      toast(w ? "Changes saved." : `${saved.name} created.`);
      go("webhook", { id: saved.id });
    } catch (e) {
      submit.disabled = false;
      if (e.status !== 401) showFieldErrors(fields, formError, e);
    }
  });

  return h("section", { "aria-labelledby": "form-title" },
    h("button", { class: "btn btn-quiet back", type: "button", onclick: () => go(w ? "webhook" : "webhooks", w ? { id: w.id } : {}) }, w ? `← ${w.name}` : "← Endpoints"),
    h("h2", { id: "form-title", tabindex: "-1" }, w ? `Edit ${w.name}` : "New endpoint"),
    form);
}

/** Shows a secret once, with a copy button. */
function secretDialog(title, secret, previousExpiresAt) {
  return dialog(title, (close) => {
    const input = h("input", { type: "text", readonly: true, value: secret, class: "secret", "aria-label": "Signing secret", spellcheck: "false" });
    const copied = h("span", { class: "small", role: "status" });
    return h("div", { "data-secret": "" },
      h("p", {}, "Copy the signing secret now: it is ", h("strong", {}, "shown only once"), "."),
      h("div", { class: "copy-row" }, input,
        h("button", {
          class: "btn btn-primary", type: "button",
          onclick: async () => { copied.textContent = (await copyText(secret, input)) ? "Copied." : "Select the text and copy it."; },
        }, "Copy")),
      copied,
      previousExpiresAt ? h("p", { class: "small" }, "The previous secret keeps signing until ", timeAgo(previousExpiresAt), ".") : null,
      h("div", { class: "actions" }, h("button", { class: "btn", type: "button", onclick: () => close() }, "I have saved it")));
  });
}

/** A new public key (not secret: shown at any time, copy it to the receivers). */
function publicKeyDialog(title, publicKey, previousExpiresAt) {
  return dialog(title, (close) => h("div", { "data-new-public-key": "" },
    h("p", {}, "Give receivers this public key to verify the endpoint's v1a signatures. It is not secret and stays visible on the endpoint's page."),
    copyRow(publicKey, "Public key"),
    previousExpiresAt ? h("p", { class: "small" }, "The previous key pair keeps signing until ", timeAgo(previousExpiresAt), ".") : null,
    h("div", { class: "actions" }, h("button", { class: "btn", type: "button", onclick: () => close() }, "Done"))));
}

async function rotateDialog(w, rerender) {
  const pair = ed25519(w);
  const grace = await dialog(pair ? "Rotate key pair?" : "Rotate signing secret?", (close) => {
    const select = h("select", { id: nextId("grace") },
      h("option", { value: "0" }, "Stop at once"),
      h("option", { value: "3600" }, "1 hour"),
      h("option", { value: "86400", selected: true }, "24 hours"),
      h("option", { value: "604800" }, "7 days"));
    return h("div", {},
      h("p", {}, pair ? "A new key pair signs every delivery from now on. Receivers must be given its public key."
        : "A new secret signs every delivery from now on. Receivers must be updated with it."),
      h("div", { class: "field" }, h("label", { for: select.id }, pair ? "Keep signing with the old key pair for" : "Keep signing with the old secret for"), select),
      h("div", { class: "actions" },
        h("button", { class: "btn", type: "button", onclick: () => close(null) }, "Cancel"),
        h("button", { class: "btn btn-primary", type: "button", onclick: () => close(Number(select.value)) }, "Rotate")));
  });
  if (grace == null) return;
  try {
    const r = await app.api.rotateSecret(w.id, { grace_seconds: grace });
    if (r.public_key) await publicKeyDialog("New public key", r.public_key, grace ? r.previous_expires_at : null);
    else await secretDialog("New signing secret", r.secret, grace ? r.previous_expires_at : null);
    rerender();
  } catch (e) { toast(e.message, "bad"); }
}

function testDialog(w) {
  return dialog(`Send a test event to ${w.name}`, (close) => {
    const fields = {};
    const formError = h("div", { class: "alert alert-bad", role: "alert", tabindex: "-1", hidden: true });
    const type = h("select", {}, w.events.map((t) => h("option", { value: t }, t)));
    const payload = app.isAdmin ? h("textarea", { rows: 4, spellcheck: "false", placeholder: "{}" }) : null;
    const result = h("div", { class: "test-result", role: "status" });
    const send = h("button", { class: "btn btn-primary", type: "submit" }, "Send test event");
    const form = h("form", { novalidate: true },
      formError,
      field(fields, "event_type", "Event type", type),
      payload ? field(fields, "payload", "Payload (JSON object, optional)", payload, "Empty: the catalog's example for this type.") : null,
      h("div", { class: "actions" }, send, h("button", { class: "btn", type: "button", onclick: () => close() }, "Close")),
      result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { event_type: type.value };
      if (payload?.value.trim()) {
        try { body.payload = JSON.parse(payload.value); } catch {
          showFieldErrors(fields, formError, { fields: { payload: "is not valid JSON" } });
          return;
        }
      }
      clearFieldErrors(fields, formError);
      send.disabled = true;
      mount(result, h("p", { class: "muted" }, "Sending…"));
      try {
        const log = await app.api.testWebhook(w.id, body);
        const ok = log.success ?? log.status === "success";
        mount(result,
          h("p", {}, ok ? pill("Delivered", "ok") : pill("Failed", "bad"), " ",
            log.response_status ? `HTTP ${log.response_status}` : "", log.duration_ms != null ? ` in ${log.duration_ms} ms` : ""),
          log.error ? h("p", { class: "small bad-text" }, log.error) : null,
          log.response_body ? h("pre", { class: "code small" }, log.response_body) : null,
          h("button", { class: "btn", type: "button", onclick: () => { close(); go("log", { id: log.id }); } }, "View delivery"));
      } catch (e) {
        if (e.status !== 401) showFieldErrors(fields, formError, e);
        mount(result);
      } finally {
        send.disabled = false;
      }
    });
    return form;
  }, { wide: true });
}

/** `datetime-local` value `n` hours ago, in local time. */
function localInput(hoursAgo) {
  const d = new Date(Date.now() - hoursAgo * 3600e3);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

function recoverDialog(w) {
  return dialog("Recover failed deliveries", (close) => {
    const fields = {};
    const formError = h("div", { class: "alert alert-bad", role: "alert", tabindex: "-1", hidden: true });
    const since = h("input", { type: "datetime-local", value: localInput(24), required: true });
    const until = h("input", { type: "datetime-local" });
    const result = h("div", { role: "status" });
    const go2 = h("button", { class: "btn btn-primary", type: "submit" }, "Redeliver failed");
    const form = h("form", { novalidate: true },
      h("p", {}, `Every delivery to ${w.name} that failed in this window is sent again as a new delivery.`),
      formError,
      field(fields, "since", "Failed since", since),
      field(fields, "until", "Until (optional)", until),
      h("div", { class: "actions" }, go2, h("button", { class: "btn", type: "button", onclick: () => close() }, "Close")),
      result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(fields, formError);
      const iso = (v) => (v ? new Date(v).toISOString() : undefined);
      if (!since.value) { showFieldErrors(fields, formError, { fields: { since: "is required" } }); return; }
      go2.disabled = true;
      try {
        const r = await app.api.recover(w.id, { since: iso(since.value), until: iso(until.value) });
        mount(result, h("p", {}, pill("Queued", "ok"), ` ${r.recovering ?? 0} deliveries are being redelivered.`));
      } catch (e) {
        if (e.unsupported) { app.features.recover = false; mount(result, h("p", { class: "muted" }, "Recovery is not available on this deployment.")); return; }
        if (e.status !== 401) showFieldErrors(fields, formError, e);
      } finally {
        go2.disabled = false;
      }
    });
    return form;
  });
}

