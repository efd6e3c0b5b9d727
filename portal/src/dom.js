// DOM helpers. Elements are built with `h`, never from HTML strings: no markup injection
// from API data, and no inline `style` attributes (the page's CSP forbids them).

const SVG_NS = "http://www.w3.org/2000/svg";
const SVG_TAGS = new Set(["svg", "g", "rect", "line", "text", "title", "path"]);

/** `h("button", { class: "btn", onclick }, "Save")`. Children: nodes, strings, arrays, null. */
export function h(tag, attrs, ...children) {
  const svg = SVG_TAGS.has(tag);
  const el = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (!svg && (key === "value" || key === "checked" || key === "disabled" || key === "selected")) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const nextId = (prefix = "f") => `${prefix}${++uid}`;

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const exact = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" });
const STEPS = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"], [Infinity, "year"]];

/** "3 minutes ago" (or "in 5 minutes"), exact local and UTC time in the title. */
export function timeAgo(iso, now = Date.now()) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return h("span", {}, iso);
  let amount = (at.getTime() - now) / 1000;
  let unit = "second";
  for (const [size, name] of STEPS) {
    unit = name;
    if (Math.abs(amount) < size) break;
    amount /= size;
  }
  const text = unit === "second" && Math.abs(amount) < 10 ? "just now" : relative.format(Math.round(amount), unit);
  return h("time", { datetime: iso, title: `${exact.format(at)} (${iso})` }, text);
}

/** A coloured status label: `tone` picks the colour, the text says it (never colour alone). */
export const pill = (text, tone) => h("span", { class: `pill pill-${tone}` }, text);

export const STATUS_TONE = {
  success: "ok", failed: "bad", pending: "warn",
  ok: "ok", failing: "bad", breaker_open: "warn", disabled: "off",
};

export function pretty(value) {
  if (value == null) return "";
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

/** Copies `text`; falls back to a selection copy where the Clipboard API is refused (iframes). */
export async function copyText(text, fallbackInput) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (!fallbackInput) return false;
    fallbackInput.focus();
    fallbackInput.select();
    try { return document.execCommand("copy"); } catch { return false; }
  }
}
