// The portal's entry point: takes the token from the URL fragment (`#token=…`) into
// sessionStorage and out of the address bar, reads the role from its payload, and starts
// the console. The token only ever leaves in the Authorization header. A `#token=` that
// would move an open session to another workspace or role is taken only once the user
// confirms (a link from someone else must not switch the portal silently: SPEC §9.4).
import { createApi } from "./api.js";
import { app, confirmDialog, go } from "./app.js";
import { h, mount } from "./dom.js";
import { logsView, logView } from "./logs.js";
import { formView, webhooksView, webhookView } from "./webhooks.js";

const KEY = "planeconnection.portal.token";
const root = document.getElementById("app");
let memoryToken = null; // where sessionStorage is refused (a sandboxed frame)

function store(token) {
  memoryToken = token;
  try { sessionStorage.setItem(KEY, token); } catch { /* memory only */ }
}

function stored() {
  try { return sessionStorage.getItem(KEY) ?? memoryToken; } catch { return memoryToken; }
}

/** Removes `#token=…` from the location; returns the token it held. */
function fragmentToken() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = fragment.get("token");
  if (!token) return null;
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  return token;
}

/** The claims of the open session: a stored token that has not expired. */
function openSession() {
  const claims = stored() && claimsOf(stored());
  return claims && !(typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) ? claims : null;
}

/**
 * Moves a `#token=…` fragment into storage. The same token, or a fresh one for the same
 * workspace and role (the embedding page renewing it), is taken silently; one that would
 * switch the open session to another workspace or role only if the user confirms.
 * Returns whether a new token was taken.
 */
async function takeTokenFromFragment() {
  const token = fragmentToken();
  if (!token || token === stored()) return false;
  const current = openSession();
  const next = claimsOf(token);
  if (current && (next?.workspace_id !== current.workspace_id || next?.role !== current.role)) {
    const where = (c) => `${c?.workspace_id ?? "an unknown workspace"} as ${c?.role ?? "an unknown role"}`;
    const sure = await confirmDialog("Switch workspace?",
      `A link asks to open the portal for ${where(next)}. You are working in ${where(current)}. ` +
      "Switch only if you opened this link yourself; otherwise stay here.", "Switch", "primary");
    if (!sure) return false;
  }
  store(token);
  return true;
}

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

function stop(title, message) {
  mount(root, h("main", { class: "stop", "data-stop": "" },
    h("h1", { tabindex: "-1" }, title), h("p", {}, message)));
  root.querySelector("h1").focus();
}

const expired = () => stop("This link has expired", "Open the webhooks portal again from PlaneConnection to get a new link.");

async function start() {
  await takeTokenFromFragment();
  const token = stored();
  const claims = token && claimsOf(token);
  if (!claims) return stop("No access", "Open the webhooks portal from PlaneConnection: the link carries your access.");
  if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) return expired();
  if (claims.role !== "admin" && claims.role !== "manager") {
    return stop("Not available for your role", "Webhooks are managed by workspace admins and managers.");
  }
  app.claims = claims;
  app.isAdmin = claims.role === "admin";
  app.canWrite = app.isAdmin;
  app.api = createApi(stored, expired);
  app.views = { webhooks: webhooksView, webhook: webhookView, form: formView, logs: logsView, log: logView };

  const tab = (name, label) => h("button", { type: "button", class: "tab", "data-tab": name, onclick: () => go(name, {}) }, label);
  app.nav = h("nav", { class: "tabs", "aria-label": "Sections" }, tab("webhooks", "Endpoints"), tab("logs", "Delivery logs"));
  app.main = h("main", { id: "main", class: "main" });
  mount(root,
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h("header", { class: "top" },
      h("h1", {}, "Webhooks"),
      h("p", { class: "who small" }, `${claims.workspace_id ?? ""} · ${claims.role}`)),
    app.nav, app.main,
    h("div", { id: "toast", class: "toast-region", role: "status", "aria-live": "polite" }));

  const [catalog, paths] = await Promise.all([app.api.catalog().catch(() => null), app.api.paths()]);
  if (!root.contains(app.main)) return; // a 401 while loading
  app.catalog = catalog?.data ?? [];
  if (paths) {
    app.features.stats = paths.includes("/api/v1/webhooks/{id}/stats");
    app.features.recover = paths.includes("/api/v1/webhooks/{id}/recover");
  }
  go("webhooks");
}

// The embedding page may hand over a fresh token later by changing the fragment.
window.addEventListener("hashchange", async () => { if (await takeTokenFromFragment()) start(); });
start();
