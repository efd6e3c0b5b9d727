// Shared state of the portal and the pieces every view uses: navigation, toasts,
// modal dialogs, and field errors shown at their fields.
import { h, mount, nextId } from "./dom.js";

export const app = {
  api: null,
  /** Claims read from the token (not verified here: the API verifies every call). */
  claims: {},
  /** Admins change things; managers view, test and redeliver (SPEC §2). */
  canWrite: false,
  isAdmin: false,
  catalog: [],
  webhooks: [],
  /** Optional routes this deployment serves (SPEC §8.4), from its OpenAPI document. */
  features: { stats: true, recover: true },
  views: {},
  main: null,
  nav: null,
  current: null,
};

/** Shows view `name` with `params`; focus moves to its heading for keyboard and reader users. */
export async function go(name, params = {}) {
  app.current = { name, params };
  for (const button of app.nav?.querySelectorAll("button") ?? []) {
    button.setAttribute("aria-current", button.dataset.tab === tabOf(name) ? "page" : "false");
  }
  mount(app.main, h("p", { class: "muted" }, "Loading…"));
  try {
    const node = await app.views[name](params);
    if (app.current.name !== name || app.current.params !== params) return;
    mount(app.main, node);
  } catch (e) {
    if (e?.status === 401) return;
    mount(app.main, h("div", { class: "alert alert-bad", role: "alert" }, e?.message || String(e)),
      h("button", { class: "btn", type: "button", onclick: () => go(name, params) }, "Try again"));
  }
  app.main.querySelector("h2")?.focus();
}

const tabOf = (view) => (view.startsWith("log") ? "logs" : "webhooks");

export function toast(message, tone = "ok") {
  const region = document.getElementById("toast");
  if (!region) return;
  mount(region, h("div", { class: `toast toast-${tone}` }, message));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => region.replaceChildren(), 5000);
}

/**
 * A modal dialog (native <dialog>: focus is kept inside, Escape closes, focus returns to
 * the opener). `build(close)` returns the dialog's content. Resolves with close's value.
 */
export function dialog(title, build, { wide = false } = {}) {
  return new Promise((resolve) => {
    const titleId = nextId("dlg");
    const el = h("dialog", { class: wide ? "dialog dialog-wide" : "dialog", "aria-labelledby": titleId });
    let result;
    const close = (value) => { result = value; el.close(); };
    el.addEventListener("close", () => { el.remove(); resolve(result); });
    mount(el, h("h2", { id: titleId, class: "dialog-title" }, title), build(close));
    document.body.append(el);
    el.showModal();
  });
}

/** Asks before something that cannot be undone. */
export function confirmDialog(title, message, action, tone = "danger") {
  return dialog(title, (close) => h("div", {},
    h("p", {}, message),
    h("div", { class: "actions" },
      h("button", { class: "btn", type: "button", onclick: () => close(false), autofocus: true }, "Cancel"),
      h("button", { class: `btn btn-${tone}`, type: "button", onclick: () => close(true) }, action))));
}

/**
 * A labelled form field with room for its error. `control` is the input; returns
 * `{ wrap, control, error }` and registers it in `fields` under `name`.
 */
export function field(fields, name, label, control, hint) {
  const id = control.id || (control.id = nextId("in"));
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const wrap = h("div", { class: "field", "data-field": name },
    h("label", { for: id }, label), control, hint ? h("p", { class: "hint", id: hintId }, hint) : null, error);
  fields[name] = { wrap, control, error, hintId };
  return wrap;
}

/** A group of controls (checkboxes, rows) under a legend, with room for its error. */
export function fieldset(fields, name, legend, content, focusTarget) {
  const error = h("p", { class: "field-error", id: nextId("err"), hidden: true });
  const wrap = h("fieldset", { class: "field", "data-field": name }, h("legend", {}, legend), content, error);
  fields[name] = { wrap, control: focusTarget ?? wrap, error };
  return wrap;
}

/**
 * Puts the API's `error.fields` beside their fields (a key like `headers.X-Api` or
 * `events[2]` belongs to `headers` / `events`); what matches no field goes to `formError`.
 * Returns true when there was something to show.
 */
export function showFieldErrors(fields, formError, err) {
  clearFieldErrors(fields, formError);
  const leftover = [];
  let first = null;
  for (const [key, message] of Object.entries(err?.fields ?? {})) {
    const name = Object.keys(fields).find((f) => key === f || key.startsWith(`${f}.`) || key.startsWith(`${f}[`));
    const target = name && fields[name];
    if (!target) { leftover.push(`${key}: ${message}`); continue; }
    const detail = key === name ? message : `${key.slice(name.length).replace(/^[.]/, "")}: ${message}`;
    target.error.textContent = target.error.hidden ? detail : `${target.error.textContent}; ${detail}`;
    target.error.hidden = false;
    target.wrap.classList.add("invalid");
    if (target.control instanceof HTMLElement) {
      target.control.setAttribute("aria-invalid", "true");
      target.control.setAttribute("aria-describedby", [target.hintId, target.error.id].filter(Boolean).join(" "));
    }
    first ??= target.control;
  }
  if (leftover.length || !first) {
    mount(formError, err?.message ?? "Something went wrong.", leftover.length ? h("ul", {}, leftover.map((l) => h("li", {}, l))) : null);
    formError.hidden = false;
    formError.focus();
  } else {
    first.focus();
  }
  return true;
}

export function clearFieldErrors(fields, formError) {
  for (const f of Object.values(fields)) {
    f.error.hidden = true;
    f.error.textContent = "";
    f.wrap.classList.remove("invalid");
    if (f.control instanceof HTMLElement) {
      f.control.removeAttribute("aria-invalid");
      if (f.hintId) f.control.setAttribute("aria-describedby", f.hintId);
      else f.control.removeAttribute("aria-describedby");
    }
  }
  if (formError) { formError.hidden = true; formError.replaceChildren(); }
}

export const webhookName = (id) => app.webhooks.find((w) => w.id === id)?.name ?? id;
export const eventTypes = () => app.catalog.flatMap((g) => (g.events ?? []).map((e) => e.type));
