// Stripe as the tests play it: signed event envelopes and the objects they carry, shared
// by the inbound suite and the shard suite.
import { createHmac, randomBytes } from "node:crypto";
import { api, STRIPE_SECRET, STRIPE_CONNECT_SECRET } from "./helpers.mjs";

export const STRIPE = "/api/webhooks/stripe";
export const CONNECT = "/api/webhooks/stripe-connect";

export const nowSecs = () => Math.floor(Date.now() / 1000);

let seq = 0;
export const uid = () => `${Date.now().toString(36)}${(++seq).toString(36)}${randomBytes(3).toString("hex")}`;

export function stripeHeader(body, { secret = STRIPE_SECRET, t = nowSecs() } = {}) {
  const v1 = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
  return `t=${t},v1=${v1}`;
}

/** A Stripe event envelope as Stripe documents it. */
export function stripeEvent(type, object, { created = nowSecs(), account, id = `evt_${uid()}` } = {}) {
  return {
    id, object: "event", api_version: "2025-03-31.basil", created, type, livemode: false,
    pending_webhooks: 1, request: { id: null, idempotency_key: null },
    ...(account ? { account } : {}),
    data: { object },
  };
}

/** Posts a signed Stripe (or Connect) event; `header` overrides the signature. */
export async function postStripe(mf, event, { path = STRIPE, secret, header, raw } = {}) {
  const body = raw ?? JSON.stringify(event);
  const sig = header === undefined ? stripeHeader(body, { secret: secret ?? (path === CONNECT ? STRIPE_CONNECT_SECRET : STRIPE_SECRET) }) : header;
  const headers = { "Content-Type": "application/json; charset=utf-8" };
  if (sig !== null) headers["Stripe-Signature"] = sig;
  return api(mf, "POST", path, { auth: null, raw: body, headers });
}

export function paymentIntent({ id = `pi_${uid()}`, amount = 5000, metadata = {}, customer = null, extra = {} }) {
  return {
    id, object: "payment_intent", amount, amount_received: amount, currency: "usd", customer, status: "succeeded",
    latest_charge: `ch_${uid()}`, metadata, ...extra,
  };
}
