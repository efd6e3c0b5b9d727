// The receiver a Workers developer would write with the providers' own SDKs, as the
// yardstick of bench/inbound.mjs: stripe-node's `constructEventAsync` (Web Crypto) and
// the `svix` SDK's `verify`, then one D1 insert per event. No dedupe beyond the primary
// key, no ordering, no state: what "verify and store" costs in the same Miniflare set-up.
// Bundled by bench/inbound.mjs with esbuild (the packages are devDependencies).
import Stripe from "stripe";
import { Webhook } from "svix";

const stripe = new Stripe("sk_test_unused", { httpClient: Stripe.createFetchHttpClient() });
const cryptoProvider = Stripe.createSubtleCryptoProvider();

const INSERT = "INSERT INTO sdk_events (source, id, type, payload, received_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method !== "POST") return new Response("not found", { status: 404 });
    const body = await request.text();
    let source;
    let event;
    try {
      if (pathname === "/api/webhooks/stripe") {
        source = "stripe";
        event = await stripe.webhooks.constructEventAsync(body, request.headers.get("stripe-signature"),
          env.STRIPE_WEBHOOK_SECRET, undefined, cryptoProvider);
      } else if (pathname === "/api/webhooks/resend") {
        source = "resend";
        // svix 2.x `verify` throws on a bad signature and returns nothing: parse after it.
        new Webhook(env.RESEND_WEBHOOK_SECRET).verify(body, {
          "svix-id": request.headers.get("svix-id"), "svix-timestamp": request.headers.get("svix-timestamp"),
          "svix-signature": request.headers.get("svix-signature"),
        });
        event = { id: request.headers.get("svix-id"), type: JSON.parse(body).type };
      } else {
        return new Response("not found", { status: 404 });
      }
    } catch (e) {
      return Response.json({ error: { code: "invalid_signature", message: String(e.message) } }, { status: 400 });
    }
    await env.DB.prepare(INSERT).bind(source, event.id, event.type, body, Date.now()).run();
    return Response.json({ received: true, status: "applied" });
  },
};

