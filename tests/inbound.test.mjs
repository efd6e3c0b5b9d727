// Inbound webhooks (SPEC §5): Stripe, Stripe Connect and Resend — signed requests, the
// state they change read back through the §5.4 routes, signatures, dedupe, ordering, and
// the one `invoice.paid` a payment publishes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  startWorker, api, token, waitFor, sleep, createWebhook,
  STRIPE_SECRET, STRIPE_CONNECT_SECRET, RESEND_SECRET,
} from "./helpers.mjs";
import { countingScript, ROUND_TRIPS_HEADER } from "./d1-counter.mjs";
import { STRIPE, CONNECT, nowSecs, uid, stripeHeader, stripeEvent, postStripe, paymentIntent } from "./stripe.mjs";

/** `TEST_SHARDS` lists more than one D1 database (the harness then uses them all). */
const SEVERAL_SHARDS = (process.env.TEST_SHARDS ?? "DB").split(",").length > 1;

// ---- signing, as Stripe and Svix do ------------------------------------------------------

function svixSignature(id, ts, body, secret = RESEND_SECRET) {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return "v1," + createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
}

const RESEND = "/api/webhooks/resend";

/** A Resend event as delivered through Svix. */
function resendEvent(type, data, { createdAt = new Date().toISOString() } = {}) {
  return {
    type, created_at: createdAt,
    data: {
      email_id: `em_${uid()}`, from: "PlaneConnection <no-reply@planeconnection.com>", to: ["pilot@example.com"],
      subject: "Your trip", created_at: createdAt, ...data,
    },
  };
}

async function postResend(mf, event, { id = `msg_${uid()}`, ts = nowSecs(), secret = RESEND_SECRET, headers: override, raw } = {}) {
  const body = raw ?? JSON.stringify(event);
  const headers = {
    "Content-Type": "application/json", "svix-id": id, "svix-timestamp": String(ts),
    "svix-signature": svixSignature(id, ts, body, secret), ...override,
  };
  for (const [k, v] of Object.entries(headers)) if (v === null) delete headers[k];
  return api(mf, "POST", RESEND, { auth: null, raw: body, headers });
}

const read = (mf, path, workspace) => api(mf, "GET", path, { auth: token({ workspace, role: "manager" }) });

const INBOUND_TABLES = [
  "inbound_events", "invoices", "payments", "stripe_customers", "subscriptions", "billing_status",
  "connected_accounts", "trip_payments", "trip_transfers", "email_events", "email_suppressions",
  "events", "delivery_logs",
];

async function rowCounts(db) {
  const counts = {};
  for (const t of INBOUND_TABLES) counts[t] = (await db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).first()).n;
  return counts;
}

function assertApplied(res, status = "applied") {
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json, { received: true, status });
}

// ---- one worker for the state tests; receivers collect what the fan-out sends ----------

let mf, db;
const received = [];

before(async () => {
  ({ mf, db } = await startWorker({
    receiver: async (request) => {
      received.push({ url: request.url, body: JSON.parse(await request.text()) });
      return new Response("ok");
    },
  }));
});
after(async () => mf?.dispose());

const paidDeliveries = (invoiceId) =>
  received.filter((r) => r.body.type === "invoice.paid" && r.body.data.invoice_id === invoiceId);

function checkoutSession({ invoice, workspace, paymentStatus = "paid", pi = `pi_${uid()}`, customer = `cus_${uid()}`, amount = 5000 }) {
  return {
    id: `cs_test_${uid()}`, object: "checkout.session", mode: "payment", status: "complete",
    amount_total: amount, currency: "usd", customer, payment_intent: pi, payment_status: paymentStatus,
    client_reference_id: null, metadata: { invoice_id: invoice, workspace_id: workspace },
  };
}


// ---- Stripe: invoices and invoice.paid ---------------------------------------------------

test("checkout paid → invoice paid, invoice.paid delivered once despite a duplicate and the payment intent", async () => {
  const ws = "ws_checkout";
  const hook = await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_checkout" },
    { auth: token({ workspace: ws }) });
  const session = checkoutSession({ invoice: "inv_checkout_1", workspace: ws });
  const completed = stripeEvent("checkout.session.completed", session);

  assertApplied(await postStripe(mf, completed));
  assertApplied(await postStripe(mf, completed), "duplicate");
  // The PaymentIntent names no invoice: it is linked through the Checkout that created it.
  assertApplied(await postStripe(mf, stripeEvent("payment_intent.succeeded",
    paymentIntent({ id: session.payment_intent, customer: session.customer, metadata: { workspace_id: ws } }))));

  const inv = await read(mf, "/api/v1/invoices/inv_checkout_1", ws);
  assert.equal(inv.status, 200, inv.text);
  assert.equal(inv.json.status, "paid");
  assert.equal(inv.json.payment_state, "succeeded");
  assert.equal(inv.json.amount_paid, 5000);
  assert.equal(inv.json.currency, "usd");
  assert.match(inv.json.paid_at, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(inv.json.stripe, { checkout_session_id: session.id, payment_intent_id: session.payment_intent, customer_id: session.customer });

  await waitFor(() => paidDeliveries("inv_checkout_1").length >= 1, { what: "invoice.paid delivery" });
  await sleep(2000);
  const deliveries = paidDeliveries("inv_checkout_1");
  assert.equal(deliveries.length, 1, "exactly one invoice.paid");
  assert.equal(deliveries[0].url, hook.url);
  assert.equal(deliveries[0].body.data.amount_paid, 5000);
  assert.equal(deliveries[0].body.data.stripe_checkout_session_id, session.id);

  const payment = await db.prepare("SELECT * FROM payments WHERE id = ?").bind(session.payment_intent).first();
  assert.equal(payment.invoice_id, "inv_checkout_1");
  assert.equal(payment.status, "succeeded");
  assert.equal(payment.workspace_id, ws);
  const recorded = await db.prepare("SELECT COUNT(*) AS n FROM inbound_events WHERE event_id = ?").bind(completed.id).first();
  assert.equal(recorded.n, 1);

  // Another workspace does not see the invoice.
  const other = await read(mf, "/api/v1/invoices/inv_checkout_1", "ws_other");
  assert.equal(other.status, 404);
  assert.equal(other.json.error.code, "not_found");
});

test("payment_intent.succeeded alone pays the invoice it names and publishes once", async () => {
  const ws = "ws_pi";
  await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_pi" }, { auth: token({ workspace: ws }) });
  const pi = paymentIntent({ amount: 1234, metadata: { invoice_id: "inv_pi_1", workspace_id: ws } });
  assertApplied(await postStripe(mf, stripeEvent("payment_intent.succeeded", pi)));
  // Checkout completing afterwards for the same invoice changes nothing and publishes nothing.
  assertApplied(await postStripe(mf, stripeEvent("checkout.session.completed",
    checkoutSession({ invoice: "inv_pi_1", workspace: ws, pi: pi.id, amount: 1234 }))));
  const inv = await read(mf, "/api/v1/invoices/inv_pi_1", ws);
  assert.equal(inv.json.status, "paid");
  assert.equal(inv.json.amount_paid, 1234);
  await waitFor(() => paidDeliveries("inv_pi_1").length >= 1, { what: "invoice.paid delivery" });
  await sleep(1500);
  assert.equal(paidDeliveries("inv_pi_1").length, 1);
});

test("delayed payment: unpaid checkout stays open (processing) until async_payment_succeeded", async () => {
  const ws = "ws_async";
  await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_async" }, { auth: token({ workspace: ws }) });
  const t0 = nowSecs() - 60;
  const session = checkoutSession({ invoice: "inv_async_1", workspace: ws, paymentStatus: "unpaid" });
  assertApplied(await postStripe(mf, stripeEvent("checkout.session.completed", session, { created: t0 })));
  let inv = await read(mf, "/api/v1/invoices/inv_async_1", ws);
  assert.equal(inv.json.status, "open");
  assert.equal(inv.json.payment_state, "processing");
  assert.equal(inv.json.paid_at, null);

  assertApplied(await postStripe(mf, stripeEvent("checkout.session.async_payment_succeeded",
    { ...session, payment_status: "paid" }, { created: t0 + 30 })));
  inv = await read(mf, "/api/v1/invoices/inv_async_1", ws);
  assert.equal(inv.json.status, "paid");
  assert.equal(inv.json.payment_state, "succeeded");
  assert.equal(inv.json.amount_paid, 5000);
  await waitFor(() => paidDeliveries("inv_async_1").length >= 1, { what: "invoice.paid after async success" });

  // A late-arriving older "unpaid" completion cannot reopen or re-flag a paid invoice.
  assertApplied(await postStripe(mf, stripeEvent("checkout.session.completed", session, { created: t0 - 10 })));
  inv = await read(mf, "/api/v1/invoices/inv_async_1", ws);
  assert.equal(inv.json.status, "paid");
  assert.equal(inv.json.payment_state, "succeeded");
  await sleep(1500);
  assert.equal(paidDeliveries("inv_async_1").length, 1);
});

test("a retry after a failure between marking paid and publishing publishes once, then never again", async () => {
  const ws = "ws_recover";
  await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_recover" }, { auth: token({ workspace: ws }) });
  // What the first attempt left behind when the fan-out failed: paid, publication pending, event unrecorded.
  await db.prepare("INSERT INTO invoices (id, workspace_id, status, payment_state, amount_paid, currency, paid_event_status, created_at, updated_at) " +
    "VALUES ('inv_recover_1', ?, 'paid', 'succeeded', 700, 'usd', 'pending', 0, 0)").bind(ws).run();
  const retry = stripeEvent("checkout.session.completed", checkoutSession({ invoice: "inv_recover_1", workspace: ws, amount: 700 }));
  assertApplied(await postStripe(mf, retry));
  await waitFor(() => paidDeliveries("inv_recover_1").length >= 1, { what: "invoice.paid on retry" });
  const row = await db.prepare("SELECT paid_event_status, paid_event_id FROM invoices WHERE id = 'inv_recover_1'").first();
  assert.equal(row.paid_event_status, "published");
  assert.match(row.paid_event_id, /^evt_/);
  // Even if the dedupe record were lost, re-applying publishes nothing new.
  await db.prepare("DELETE FROM inbound_events WHERE event_id = ?").bind(retry.id).run();
  assertApplied(await postStripe(mf, retry));
  await sleep(1500);
  assert.equal(paidDeliveries("inv_recover_1").length, 1);
});

test("a retry days after invoice.paid went out but was not marked published does not publish again", async () => {
  const ws = "ws_recover_late";
  await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_recover_late" }, { auth: token({ workspace: ws }) });
  // The first attempt published (25 h ago) and then failed before marking the invoice.
  const old = Date.now() - 25 * 3_600_000;
  await db.batch([
    db.prepare("INSERT INTO invoices (id, workspace_id, status, payment_state, amount_paid, currency, paid_event_status, created_at, updated_at) " +
      "VALUES ('inv_late_1', ?, 'paid', 'succeeded', 900, 'usd', 'pending', 0, 0)").bind(ws),
    db.prepare("INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at) VALUES ('evt_late_first', ?, 'invoice.paid', '{}', 'stripe:invoice.paid:inv_late_1', 'internal', ?)").bind(ws, old),
  ]);
  const retry = stripeEvent("checkout.session.completed", checkoutSession({ invoice: "inv_late_1", workspace: ws, amount: 900 }));
  assertApplied(await postStripe(mf, retry));
  await sleep(1500);
  assert.equal(paidDeliveries("inv_late_1").length, 0, "the internal key outlives the API's 24 h window");
  const row = await db.prepare("SELECT paid_event_status, paid_event_id FROM invoices WHERE id = 'inv_late_1'").first();
  assert.deepEqual(row, { paid_event_status: "published", paid_event_id: "evt_late_first" });
});

test("async_payment_failed records the failure and leaves the invoice open", async () => {
  const ws = "ws_async_fail";
  // An invoice the platform already wrote.
  await db.prepare("INSERT INTO invoices (id, workspace_id, status, created_at, updated_at) VALUES (?, ?, 'open', 0, 0)")
    .bind("inv_fail_1", ws).run();
  const session = checkoutSession({ invoice: "inv_fail_1", workspace: ws, paymentStatus: "unpaid" });
  assertApplied(await postStripe(mf, stripeEvent("checkout.session.async_payment_failed", session)));
  const inv = await read(mf, "/api/v1/invoices/inv_fail_1", ws);
  assert.equal(inv.json.status, "open");
  assert.equal(inv.json.payment_state, "failed");
  assert.match(inv.json.last_payment_error, /failed/);
  assert.equal(inv.json.stripe.checkout_session_id, session.id);
  assert.equal(paidDeliveries("inv_fail_1").length, 0);
});

test("a payment naming another workspace's invoice changes nothing; unknown invoice without workspace is ignored", async () => {
  await db.prepare("INSERT INTO invoices (id, workspace_id, status, created_at, updated_at) VALUES (?, ?, 'open', 0, 0)")
    .bind("inv_owned_1", "ws_owner").run();
  const foreign = stripeEvent("checkout.session.completed", checkoutSession({ invoice: "inv_owned_1", workspace: "ws_intruder" }));
  assertApplied(await postStripe(mf, foreign), "ignored");
  const inv = await read(mf, "/api/v1/invoices/inv_owned_1", "ws_owner");
  assert.equal(inv.json.status, "open");
  const rec = await db.prepare("SELECT outcome, detail FROM inbound_events WHERE event_id = ?").bind(foreign.id).first();
  assert.equal(rec.outcome, "ignored");
  assert.match(rec.detail, /another workspace/);

  const session = checkoutSession({ invoice: "inv_nobody", workspace: null });
  session.metadata = { invoice_id: "inv_nobody" };
  assertApplied(await postStripe(mf, stripeEvent("checkout.session.completed", session)), "ignored");
  assert.equal(await db.prepare("SELECT id FROM invoices WHERE id = 'inv_nobody'").first(), null);
});

// ---- Stripe: subscriptions and billing status -------------------------------------------

function subscription({ id, customer, status = "active", price = "price_basic", periodEnd, cancelAtPeriodEnd = false, workspace }) {
  return {
    id, object: "subscription", customer, status, cancel_at_period_end: cancelAtPeriodEnd, canceled_at: null,
    metadata: workspace ? { workspace_id: workspace } : {},
    items: { object: "list", data: [{
      id: `si_${uid()}`, object: "subscription_item", quantity: 3, current_period_start: periodEnd - 2592000,
      current_period_end: periodEnd,
      price: { id: price, object: "price", product: "prod_fleet", unit_amount: 4900, currency: "usd", recurring: { interval: "month" } },
    }] },
  };
}

test("subscriptions: created, updates out of order (newest wins), deleted; customer mapping", async () => {
  const ws = "ws_subs";
  const sub = `sub_${uid()}`;
  const customer = `cus_${uid()}`;
  const t0 = nowSecs() - 100;
  const periodEnd = 1_900_000_000;
  assertApplied(await postStripe(mf, stripeEvent("customer.subscription.created",
    subscription({ id: sub, customer, workspace: ws, periodEnd }), { created: t0 })));
  let billing = await read(mf, "/api/v1/billing", ws);
  assert.equal(billing.status, 200);
  assert.equal(billing.json.billing_status, "ok");
  assert.equal(billing.json.subscription.status, "active");
  assert.equal(billing.json.subscription.current_period_end, new Date(periodEnd * 1000).toISOString());

  // Later events carry no metadata: the customer mapping finds the workspace.
  const newest = stripeEvent("customer.subscription.updated",
    subscription({ id: sub, customer, price: "price_pro", periodEnd: periodEnd + 100, cancelAtPeriodEnd: true }), { created: t0 + 20 });
  const older = stripeEvent("customer.subscription.updated",
    subscription({ id: sub, customer, status: "past_due", price: "price_old", periodEnd: periodEnd + 50 }), { created: t0 + 10 });
  assertApplied(await postStripe(mf, newest));
  assertApplied(await postStripe(mf, older));
  billing = await read(mf, "/api/v1/billing", ws);
  const s = billing.json.subscription;
  assert.equal(s.id, sub);
  assert.equal(s.status, "active", "the older past_due update did not overwrite");
  assert.equal(s.price_id, "price_pro");
  assert.equal(s.cancel_at_period_end, true);
  assert.equal(s.current_period_end, new Date((periodEnd + 100) * 1000).toISOString());
  assert.equal(s.quantity, 3);
  assert.equal(s.interval, "month");

  assertApplied(await postStripe(mf, stripeEvent("customer.subscription.deleted",
    { ...subscription({ id: sub, customer, status: "canceled", price: "price_pro", periodEnd: periodEnd + 100 }), ended_at: t0 + 30 },
    { created: t0 + 30 })));
  // An update from the same second as the deletion cannot resurrect it.
  assertApplied(await postStripe(mf, stripeEvent("customer.subscription.updated",
    subscription({ id: sub, customer, periodEnd: periodEnd + 100 }), { created: t0 + 30 })));
  billing = await read(mf, "/api/v1/billing", ws);
  assert.equal(billing.json.subscription.status, "canceled");
  assert.equal(billing.json.subscription.canceled_at, new Date((t0 + 30) * 1000).toISOString());

  // Unknown customer, no metadata: acknowledged and recorded as ignored.
  const orphan = stripeEvent("customer.subscription.updated", subscription({ id: `sub_${uid()}`, customer: "cus_unknown", periodEnd }));
  assertApplied(await postStripe(mf, orphan), "ignored");
});

function stripeInvoice({ id = `in_${uid()}`, customer, sub, attempt = 1, next = null, paid = false, workspace }) {
  return {
    id, object: "invoice", customer, status: paid ? "paid" : "open", attempt_count: attempt, attempted: true,
    next_payment_attempt: next, amount_due: 14700, amount_paid: paid ? 14700 : 0, currency: "usd", metadata: {},
    parent: { type: "subscription_details", quote_details: null,
      subscription_details: { subscription: sub, metadata: workspace ? { workspace_id: workspace } : {} } },
  };
}

test("invoice.payment_failed flags billing, invoice.paid clears it; an older failure does not return", async () => {
  const ws = "ws_billing";
  const customer = `cus_${uid()}`;
  const sub = `sub_${uid()}`;
  const t0 = nowSecs() - 100;
  const next = nowSecs() + 86400;
  assertApplied(await postStripe(mf, stripeEvent("invoice.payment_failed",
    stripeInvoice({ customer, sub, attempt: 2, next, workspace: ws }), { created: t0 })));
  let billing = await read(mf, "/api/v1/billing", ws);
  assert.equal(billing.json.billing_status, "payment_failed");
  assert.equal(billing.json.attempt_count, 2);
  assert.equal(billing.json.next_payment_attempt, new Date(next * 1000).toISOString());
  assert.equal(billing.json.last_invoice.subscription_id, sub);

  // No metadata any more: customer mapping.
  const paid = stripeInvoice({ customer, sub, attempt: 3, paid: true });
  assertApplied(await postStripe(mf, stripeEvent("invoice.paid", paid, { created: t0 + 20 })));
  assertApplied(await postStripe(mf, stripeEvent("invoice.payment_failed",
    stripeInvoice({ customer, sub, attempt: 1, next }), { created: t0 + 10 })));
  billing = await read(mf, "/api/v1/billing", ws);
  assert.equal(billing.json.billing_status, "paid");
  assert.equal(billing.json.next_payment_attempt, null);
  assert.equal(billing.json.last_invoice.id, paid.id);
  assert.equal(billing.json.last_invoice.amount_paid, 14700);
  assert.equal(billing.json.subscription, null);
});

test("unknown Stripe types are acknowledged and recorded as ignored; signed non-JSON is 400", async () => {
  const evt = stripeEvent("invoiceitem.created", { id: "ii_1", object: "invoiceitem" });
  assertApplied(await postStripe(mf, evt), "ignored");
  const rec = await db.prepare("SELECT outcome, event_type, source FROM inbound_events WHERE event_id = ?").bind(evt.id).first();
  assert.deepEqual(rec, { outcome: "ignored", event_type: "invoiceitem.created", source: "stripe" });
  assertApplied(await postStripe(mf, evt), "duplicate");

  const notJson = await postStripe(mf, null, { raw: "not json" });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.json.error.code, "invalid_json");
  const noId = await postStripe(mf, { type: "x" });
  assert.equal(noId.status, 400);
  assert.equal(noId.json.error.code, "validation_error");
});

test("bodies over 1 MiB are 413", async () => {
  const raw = JSON.stringify({ id: "evt_big", type: "x", created: 1, pad: "x".repeat(1024 * 1024) });
  const res = await postStripe(mf, null, { raw });
  assert.equal(res.status, 413);
  assert.equal(res.json.error.code, "payload_too_large");
});

// ---- Stripe Connect -----------------------------------------------------------------------

function account({ id, workspace, charges = false, payouts = false, submitted = false, due = [], pastDue = [] }) {
  return {
    id, object: "account", type: "express", charges_enabled: charges, payouts_enabled: payouts,
    details_submitted: submitted, metadata: workspace ? { workspace_id: workspace } : {},
    requirements: { currently_due: due, past_due: pastDue, eventually_due: due, pending_verification: [],
      disabled_reason: due.length ? "requirements.past_due" : null, current_deadline: null, errors: [] },
  };
}

test("connect onboarding: pending → restricted → complete, payout failure, deauthorization", async () => {
  const ws = "ws_fbo";
  const acct = `acct_${uid()}`;
  const t0 = nowSecs() - 100;
  const send = (evt) => postStripe(mf, evt, { path: CONNECT });
  const getAccount = () => read(mf, "/api/v1/connect/account", ws);

  assert.equal((await getAccount()).status, 404);
  assertApplied(await send(stripeEvent("account.updated",
    account({ id: acct, workspace: ws, due: ["business_type", "external_account"], pastDue: ["business_type"] }), { created: t0, account: acct })));
  let a = await getAccount();
  assert.equal(a.status, 200);
  assert.equal(a.json.id, acct);
  assert.equal(a.json.onboarding_status, "pending");
  assert.deepEqual(a.json.requirements.currently_due, ["business_type", "external_account"]);

  assertApplied(await send(stripeEvent("account.updated",
    account({ id: acct, workspace: ws, charges: true, submitted: true, due: ["external_account"] }), { created: t0 + 10, account: acct })));
  a = await getAccount();
  assert.equal(a.json.onboarding_status, "restricted");
  assert.equal(a.json.charges_enabled, true);
  assert.equal(a.json.payouts_enabled, false);

  assertApplied(await send(stripeEvent("account.updated",
    account({ id: acct, workspace: ws, charges: true, payouts: true, submitted: true }), { created: t0 + 20, account: acct })));
  // An older snapshot arriving late is skipped.
  assertApplied(await send(stripeEvent("account.updated",
    account({ id: acct, workspace: ws, due: ["business_type"] }), { created: t0 + 5, account: acct })));
  a = await getAccount();
  assert.equal(a.json.onboarding_status, "complete");
  assert.deepEqual(a.json.requirements.currently_due, []);
  assert.equal(a.json.payout_failed, false);
  assert.equal(a.json.payout_failure, null);

  assertApplied(await send(stripeEvent("payout.failed", {
    id: "po_1", object: "payout", amount: 9000, currency: "usd", status: "failed",
    failure_code: "account_closed", failure_message: "The bank account has been closed",
  }, { created: t0 + 30, account: acct })));
  a = await getAccount();
  assert.equal(a.json.payout_failed, true);
  assert.equal(a.json.payout_failure.payout_id, "po_1");
  assert.equal(a.json.payout_failure.code, "account_closed");
  assert.equal(a.json.onboarding_status, "complete");

  // A later successful payout clears the flag; a stale failure redelivered does not set it again.
  assertApplied(await send(stripeEvent("payout.paid", { id: "po_2", object: "payout", amount: 9000, currency: "usd", status: "paid" },
    { created: t0 + 35, account: acct })));
  assertApplied(await send(stripeEvent("payout.failed", { id: "po_1", object: "payout", failure_code: "account_closed" },
    { created: t0 + 30, account: acct })));
  a = await getAccount();
  assert.equal(a.json.payout_failed, false);
  assert.equal(a.json.payout_failure, null);

  assertApplied(await send(stripeEvent("account.application.deauthorized",
    { id: "ca_platform", object: "application", name: "PlaneConnection" }, { created: t0 + 40, account: acct })));
  a = await getAccount();
  assert.equal(a.json.onboarding_status, "disconnected");
  assert.match(a.json.disconnected_at, /^\d{4}-/);

  // Another workspace has no connected account.
  assert.equal((await read(mf, "/api/v1/connect/account", "ws_nobody")).status, 404);
});

test("connect trip splits: payment with application fee, transfer created then partly reversed", async () => {
  const ws = "ws_trips";
  const acct = `acct_${uid()}`;
  const trip = `trip_${uid()}`;
  const t0 = nowSecs() - 100;
  const send = (evt) => postStripe(mf, evt, { path: CONNECT });
  // The connected account is known (its workspace too), so transfers need no metadata.workspace_id.
  assertApplied(await send(stripeEvent("account.updated", account({ id: acct, workspace: ws }), { created: t0, account: acct })));

  const pi = paymentIntent({ amount: 100000, metadata: { trip_id: trip, workspace_id: ws },
    extra: { application_fee_amount: 15000, transfer_data: { destination: acct }, transfer_group: trip } });
  assertApplied(await send(stripeEvent("payment_intent.succeeded", pi, { created: t0 + 1 })));
  const transfer = {
    id: `tr_${uid()}`, object: "transfer", amount: 85000, amount_reversed: 0, currency: "usd", destination: acct,
    reversed: false, source_transaction: pi.latest_charge, transfer_group: trip, metadata: { trip_id: trip },
  };
  assertApplied(await send(stripeEvent("transfer.created", transfer, { created: t0 + 2 })));
  assertApplied(await send(stripeEvent("transfer.reversed", { ...transfer, amount_reversed: 5000 }, { created: t0 + 3 })));
  // The creation redelivered late (a new event id, older) does not undo the reversal.
  assertApplied(await send(stripeEvent("transfer.created", transfer, { created: t0 + 2 })));

  const res = await read(mf, `/api/v1/connect/splits?trip_id=${trip}`, ws);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.trip_id, trip);
  assert.equal(res.json.payments.length, 1);
  const p = res.json.payments[0];
  assert.equal(p.payment_intent_id, pi.id);
  assert.equal(p.amount_received, 100000);
  assert.equal(p.application_fee_amount, 15000);
  assert.equal(p.account_id, acct);
  assert.equal(res.json.transfers.length, 1);
  const t = res.json.transfers[0];
  assert.equal(t.status, "partially_reversed");
  assert.equal(t.amount_reversed, 5000);
  assert.equal(t.destination_account, acct);
  assert.deepEqual(res.json.totals, [{ currency: "usd", amount_received: 100000, application_fee_amount: 15000,
    transferred: 85000, reversed: 5000, net_transferred: 80000 }]);

  // Another workspace sees nothing of the trip; trip_id is required.
  const other = await read(mf, `/api/v1/connect/splits?trip_id=${trip}`, "ws_other");
  assert.deepEqual([other.json.payments.length, other.json.transfers.length], [0, 0]);
  const missing = await read(mf, "/api/v1/connect/splits", ws);
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error.code, "validation_error");
  assert.ok(missing.json.error.fields.trip_id);
});

/** Runs `fn` while `table` is renamed away (every statement on it fails), then puts it back. */
async function withTableOffline(table, fn) {
  await db.exec(`ALTER TABLE ${table} RENAME TO ${table}_offline`);
  try {
    return await fn();
  } finally {
    await db.exec(`ALTER TABLE ${table}_offline RENAME TO ${table}`);
  }
}

test("a storage failure while applying answers 500 and records nothing; the retry applies", async () => {
  const ws = "ws_retry";
  const evt = stripeEvent("customer.subscription.created",
    subscription({ id: `sub_${uid()}`, customer: `cus_${uid()}`, workspace: ws, periodEnd: 1_900_000_000 }));
  const res = await withTableOffline("subscriptions", () => postStripe(mf, evt));
  assert.equal(res.status, 500);
  assert.equal(res.json.error.code, "internal_error");
  assert.equal(await db.prepare("SELECT 1 FROM inbound_events WHERE event_id = ?").bind(evt.id).first(), null);
  assert.equal(await db.prepare("SELECT 1 FROM stripe_customers WHERE workspace_id = ?").bind(ws).first(), null, "the batch rolled back");
  // Stripe retries the same event.
  assertApplied(await postStripe(mf, evt));
  assert.equal((await read(mf, "/api/v1/billing", ws)).json.subscription.status, "active");
});

// ---- Resend -------------------------------------------------------------------------------

test("resend: every email type stored, tags as map and list, hard vs soft bounce, suppressions, analytics", async () => {
  const ws = "ws_mail";
  const day = "2026-03-10";
  const at = (h, m = 0) => `${day}T${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:00.000Z`;
  const mapTags = { workspace_id: ws, category: "trip" };
  const listTags = [{ name: "workspace_id", value: ws }, { name: "category", value: "trip" }];
  const send = async (type, email, extra = {}, tags = mapTags, hour = 10) => {
    const evt = resendEvent(type, { email_id: email, to: extra.to ?? [`${email}@example.com`], tags, ...extra }, { createdAt: at(hour) });
    assertApplied(await postResend(mf, evt));
  };
  // 4 emails sent; 3 delivered, 1 hard bounce; 2 opened (one twice), 1 clicked, 1 complaint.
  for (const [i, e] of ["e1", "e2", "e3", "e4"].entries()) await send("email.sent", e, {}, i % 2 ? listTags : mapTags);
  for (const e of ["e1", "e2", "e3"]) await send("email.delivered", e, {}, listTags);
  await send("email.bounced", "e4", { to: ["Hard Bounce <Hard@Example.com>"],
    bounce: { type: "Permanent", subType: "General", message: "550 5.1.1 user unknown" } });
  await send("email.opened", "e1");
  await send("email.opened", "e1", {}, listTags, 11);
  await send("email.opened", "e2");
  await send("email.clicked", "e1", { click: { ipAddress: "203.0.113.9", link: "https://planeconnection.com/trip", timestamp: at(10, 5), userAgent: "Mozilla/5.0" } });
  await send("email.complained", "e3", { to: ["angry@example.com"] });
  await send("email.delivery_delayed", "e5", { to: ["slow@example.com"] });
  await send("email.suppressed", "e6", { to: ["blocked@example.com"], suppressed: { message: "on the suppression list", type: "OnAccountSuppressionList" } });
  // A soft bounce is stored but does not suppress; on another day, outside the range below.
  const soft = resendEvent("email.bounced", { email_id: "e7", to: ["soft@example.com"], tags: listTags,
    bounce: { type: "Transient", subType: "MailboxFull", message: "mailbox full" } }, { createdAt: "2026-03-12T09:00:00.000Z" });
  assertApplied(await postResend(mf, soft));

  const rows = await db.prepare("SELECT event_type, bounce_type, recipients FROM email_events WHERE workspace_id = ? AND event_type = 'email.bounced' ORDER BY email_id").bind(ws).all();
  assert.deepEqual(rows.results.map((r) => [r.event_type, r.bounce_type]), [["email.bounced", "hard"], ["email.bounced", "soft"]]);
  assert.deepEqual(JSON.parse(rows.results[0].recipients), ["hard@example.com"]);

  const sup = await read(mf, "/api/v1/email/suppressions", ws);
  assert.equal(sup.status, 200);
  const byEmail = Object.fromEntries(sup.json.data.map((s) => [s.email, s]));
  assert.deepEqual(Object.keys(byEmail).sort(), ["angry@example.com", "blocked@example.com", "hard@example.com"]);
  assert.equal(byEmail["hard@example.com"].reason, "hard_bounce");
  assert.equal(byEmail["hard@example.com"].detail, "550 5.1.1 user unknown");
  assert.equal(byEmail["hard@example.com"].email_id, "e4");
  assert.equal(byEmail["angry@example.com"].reason, "complaint");
  assert.equal(byEmail["blocked@example.com"].reason, "suppressed");
  assert.equal(sup.json.total, 3);
  assert.equal((await read(mf, "/api/v1/email/suppressions", "ws_other")).json.total, 0);

  const a = await read(mf, `/api/v1/email/analytics?date_from=${day}&date_to=${day}`, ws);
  assert.equal(a.status, 200, a.text);
  assert.deepEqual(a.json.counts, {
    "email.bounced": 1, "email.clicked": 1, "email.complained": 1, "email.delivered": 3,
    "email.delivery_delayed": 1, "email.opened": 3, "email.sent": 4, "email.suppressed": 1,
  });
  assert.equal(a.json.unique_emails["email.opened"], 2);
  assert.deepEqual(a.json.bounces, { hard: 1, soft: 0 });
  // delivery, bounce per sent (4); complaint, open, click per delivered (3).
  assert.deepEqual(a.json.rates, { delivery: 0.75, bounce: 0.25, complaint: 0.3333, open: 0.6667, click: 0.3333 });
  assert.equal(a.json.date_from, `${day}T00:00:00.000Z`);
  assert.equal(a.json.date_to, `${day}T23:59:59.999Z`);

  // Open range includes the soft bounce; a date-time bound excludes the 11:00 open.
  const all = await read(mf, "/api/v1/email/analytics", ws);
  assert.deepEqual(all.json.bounces, { hard: 1, soft: 1 });
  const morning = await read(mf, `/api/v1/email/analytics?date_from=${day}&date_to=${day}T10:30:00Z`, ws);
  assert.equal(morning.json.counts["email.opened"], 2);

  const bad = await read(mf, "/api/v1/email/analytics?date_from=yesterday", ws);
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, "validation_error");
  assert.ok(bad.json.error.fields.date_from);
  const member = await api(mf, "GET", "/api/v1/email/analytics", { auth: token({ workspace: ws, role: "member" }) });
  assert.equal(member.status, 403);
});

test("resend: the same svix-id twice is applied once; untagged and unknown events are ignored", async () => {
  const ws = "ws_mail_dupe";
  const evt = resendEvent("email.complained", { email_id: "dup1", to: ["dupe@example.com"], tags: [{ name: "workspace_id", value: ws }] });
  const id = `msg_${uid()}`;
  assertApplied(await postResend(mf, evt, { id }));
  assertApplied(await postResend(mf, evt, { id }), "duplicate");
  const n = await db.prepare("SELECT COUNT(*) AS n FROM email_events WHERE workspace_id = ?").bind(ws).first();
  assert.equal(n.n, 1);
  const a = await read(mf, "/api/v1/email/analytics", ws);
  assert.equal(a.json.counts["email.complained"], 1);

  assertApplied(await postResend(mf, resendEvent("email.sent", { tags: { category: "x" } })), "ignored");
  assertApplied(await postResend(mf, { type: "contact.created", created_at: new Date().toISOString(), data: { id: "c1" } }), "ignored");
});

// ---- signatures: every bad kind is a 400 and writes nothing; no secret is a 500 -----------

test("bad signatures of every kind → 400 invalid_signature, nothing written", async () => {
  const { mf: fresh, db: freshDb } = await startWorker();
  try {
    const evt = stripeEvent("checkout.session.completed", checkoutSession({ invoice: "inv_sig", workspace: "ws_sig" }));
    const body = JSON.stringify(evt);
    const t = nowSecs();
    const good = stripeHeader(body);
    const goodV1 = good.split("v1=")[1];
    const stripeCases = {
      missing: null,
      empty: "",
      garbage: "garbage",
      noV1: `t=${t}`,
      onlyV0: `t=${t},v0=${goodV1}`,
      wrongSecret: stripeHeader(body, { secret: "whsec_wrong" }),
      tamperedTimestamp: good.replace(`t=${t}`, `t=${t + 1}`),
      stale: stripeHeader(body, { t: t - 310 }),
      future: stripeHeader(body, { t: t + 310 }),
      uppercaseHex: `t=${t},v1=${goodV1.toUpperCase()}`,
      truncated: `t=${t},v1=${goodV1.slice(0, 40)}`,
      huge: `t=${t},` + "v1=00,".repeat(3000) + `v1=${goodV1}`,
    };
    for (const [name, header] of Object.entries(stripeCases)) {
      for (const path of [STRIPE, CONNECT]) {
        const res = await postStripe(fresh, evt, { path, header });
        assert.equal(res.status, 400, `${name} ${path}: ${res.text}`);
        assert.equal(res.json.error.code, "invalid_signature", `${name} ${path}`);
      }
    }
    // Each Stripe endpoint has its own secret: the other endpoint's signature is refused.
    const crossed = [[STRIPE, STRIPE_CONNECT_SECRET], [CONNECT, STRIPE_SECRET]];
    for (const [path, secret] of crossed) {
      const res = await postStripe(fresh, evt, { path, header: stripeHeader(body, { secret }) });
      assert.equal(res.status, 400, `crossed secret ${path}`);
      assert.equal(res.json.error.code, "invalid_signature");
    }
    const tampered = await postStripe(fresh, evt, { raw: body.replace("5000", "5001"), header: good });
    assert.equal(tampered.status, 400);
    assert.equal(tampered.json.error.code, "invalid_signature");

    const mail = resendEvent("email.bounced", { tags: { workspace_id: "ws_sig" }, bounce: { type: "Permanent" } });
    const mailBody = JSON.stringify(mail);
    const id = "msg_sig";
    const goodSig = svixSignature(id, t, mailBody);
    const svixCases = {
      missingId: { "svix-id": null },
      missingTimestamp: { "svix-timestamp": null },
      missingSignature: { "svix-signature": null },
      emptySignature: { "svix-signature": "" },
      wrongSecret: { "svix-signature": svixSignature(id, t, mailBody, "whsec_" + Buffer.from("another-secret-another").toString("base64")) },
      otherId: { "svix-id": "msg_other" },
      badTimestamp: { "svix-timestamp": "yesterday" },
      stale: { "svix-timestamp": String(t - 310), "svix-signature": svixSignature(id, t - 310, mailBody) },
      future: { "svix-timestamp": String(t + 310), "svix-signature": svixSignature(id, t + 310, mailBody) },
      v2Only: { "svix-signature": goodSig.replace("v1,", "v2,") },
      notBase64: { "svix-signature": "v1,@@@@" },
      stripeStyle: { "svix-signature": stripeHeader(mailBody) },
    };
    for (const [name, headers] of Object.entries(svixCases)) {
      const res = await postResend(fresh, mail, { id, ts: t, headers });
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.equal(res.json.error.code, "invalid_signature", name);
    }
    const tamperedMail = await postResend(fresh, mail, { id, ts: t, raw: mailBody.replace("Permanent", "Transient"),
      headers: { "svix-signature": goodSig } });
    assert.equal(tamperedMail.status, 400);

    for (const [table, n] of Object.entries(await rowCounts(freshDb))) assert.equal(n, 0, `${table} must stay empty`);
  } finally {
    await fresh.dispose();
  }
});

test("a valid signature among invalid ones is accepted (Stripe and Svix)", async () => {
  const evt = stripeEvent("invoiceitem.created", { id: "ii_2" });
  const body = JSON.stringify(evt);
  const t = nowSecs();
  const good = stripeHeader(body, { t }).split("v1=")[1];
  const header = `v0=abc,t=${t},v1=${"0".repeat(64)},unknown=1,v1=${good}`;
  assertApplied(await postStripe(mf, evt, { header }), "ignored");

  const mail = { type: "contact.updated", created_at: new Date().toISOString(), data: {} };
  const mailBody = JSON.stringify(mail);
  const id = `msg_${uid()}`;
  const sig = `v1,${Buffer.alloc(32).toString("base64")} ${svixSignature(id, t, mailBody)}`;
  assertApplied(await postResend(mf, mail, { id, ts: t, headers: { "svix-signature": sig } }), "ignored");
});

test("missing secrets → 500 internal_error and nothing accepted", async () => {
  const { mf: bare, db: bareDb } = await startWorker({
    bindings: { STRIPE_WEBHOOK_SECRET: "", STRIPE_CONNECT_WEBHOOK_SECRET: "", RESEND_WEBHOOK_SECRET: "" },
  });
  try {
    const evt = stripeEvent("checkout.session.completed", checkoutSession({ invoice: "inv_nosecret", workspace: "ws_ns" }));
    for (const path of [STRIPE, CONNECT]) {
      const res = await postStripe(bare, evt, { path });
      assert.equal(res.status, 500, path);
      assert.equal(res.json.error.code, "internal_error");
      const unsigned = await postStripe(bare, evt, { path, header: null });
      assert.equal(unsigned.status, 500, `${path} unsigned`);
    }
    const mail = resendEvent("email.sent", { tags: { workspace_id: "ws_ns" } });
    const res = await postResend(bare, mail);
    assert.equal(res.status, 500);
    assert.equal(res.json.error.code, "internal_error");
    for (const [table, n] of Object.entries(await rowCounts(bareDb))) assert.equal(n, 0, `${table} must stay empty`);
  } finally {
    await bare.dispose();
  }
});

// ---- one D1 round trip per provider event (issue 15) ---------------------------------------

test("every provider event costs one D1 round trip: counted outside the worker and logged by it", async () => {
  const logs = [];
  const { mf: counted, db: cdb } = await startWorker({ script: countingScript(), onLog: (l) => logs.push(l) });
  try {
    const ws = "ws_trips";
    await createWebhook(counted, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_trips" }, { auth: token({ workspace: ws }) });
    const customer = `cus_${uid()}`;
    const sub = `sub_${uid()}`;
    const acct = `acct_${uid()}`;
    const session = checkoutSession({ invoice: `inv_trips_${uid()}`, workspace: ws, customer });
    const checkout = stripeEvent("checkout.session.completed", session);
    const cases = [
      // [what, send, expected status]
      ["subscription with metadata", () => postStripe(counted, stripeEvent("customer.subscription.created",
        subscription({ id: sub, customer, workspace: ws, periodEnd: 1_900_000_000 }))), "applied"],
      ["subscription found through its customer", () => postStripe(counted, stripeEvent("customer.subscription.updated",
        subscription({ id: `sub_${uid()}`, customer, periodEnd: 1_900_000_000 }))), "applied"],
      ["invoice found through its subscription", () => postStripe(counted, stripeEvent("invoice.payment_failed",
        { id: `in_${uid()}`, object: "invoice", subscription: sub, attempt_count: 1, amount_due: 100, currency: "usd" })), "applied"],
      ["subscription of no known workspace", () => postStripe(counted, stripeEvent("customer.subscription.updated",
        subscription({ id: `sub_${uid()}`, customer: `cus_${uid()}`, periodEnd: 1_900_000_000 }))), "ignored"],
      ["checkout that pays an invoice and publishes invoice.paid", () => postStripe(counted, checkout), "applied"],
      ["the same checkout again", () => postStripe(counted, checkout), "duplicate"],
      ["its payment intent, linked through the checkout", () => postStripe(counted, stripeEvent("payment_intent.succeeded",
        paymentIntent({ id: session.payment_intent, customer }))), "applied"],
      ["unhandled type", () => postStripe(counted, stripeEvent("charge.refunded", { id: `ch_${uid()}` })), "ignored"],
      ["connect account", () => postStripe(counted, stripeEvent("account.updated", account({ id: acct, workspace: ws }), { account: acct }),
        { path: CONNECT }), "applied"],
      ["connect trip payment found through its account", () => postStripe(counted, stripeEvent("payment_intent.succeeded",
        paymentIntent({ metadata: { trip_id: "trip_trips" }, extra: { transfer_data: { destination: acct } } }), { account: acct }),
        { path: CONNECT }), "applied"],
      ["resend email", () => postResend(counted, resendEvent("email.delivered", { tags: [{ name: "workspace_id", value: ws }] })), "applied"],
    ];
    // With several shards (TEST_SHARDS), paying the invoice and publishing its event are
    // not one batch (docs/operations.md, "Inbound invoice.paid"): the payment in DB, the
    // workspace's placement, the event in its shard, then the mark in DB; a duplicate of
    // every payment signal after it reads whether an event still waits to be published.
    const SHARDED_TRIPS = { "checkout that pays an invoice and publishes invoice.paid": 4, "the same checkout again": 2,
      "its payment intent, linked through the checkout": 2 };
    const trips = (what) => (SEVERAL_SHARDS ? SHARDED_TRIPS[what] ?? 1 : 1);
    for (const [what, send, status] of cases) {
      const res = await send();
      assertApplied(res, status);
      assert.equal(res.headers.get(ROUND_TRIPS_HEADER), String(trips(what)), `${what}: D1 round trips`);
    }
    // The worker's own count agrees: one log line per event, each with one round trip.
    await waitFor(() => logs.filter((l) => l.includes('"inbound event"')).length >= cases.length, { what: "inbound log lines" });
    const lines = logs.filter((l) => l.includes('"inbound event"')).map((l) => JSON.parse(l.slice(l.indexOf("{"))));
    assert.deepEqual(lines.map((l) => l.d1_round_trips), cases.map(([what]) => trips(what)));
    assert.deepEqual(lines.map((l) => l.outcome), cases.map(([, , s]) => s));
    // The one invoice.paid went out with its state, and a found workspace was used.
    await waitFor(async () => (await cdb.prepare("SELECT status FROM delivery_logs WHERE event_type = 'invoice.paid' AND workspace_id = ?")
      .bind(ws).first())?.status === "success", { what: "invoice.paid delivered" });
    assert.equal((await cdb.prepare("SELECT COUNT(*) AS n FROM events WHERE type = 'invoice.paid' AND workspace_id = ?").bind(ws).first()).n, 1);
    const body = JSON.parse((await cdb.prepare("SELECT body FROM events WHERE type = 'invoice.paid' AND workspace_id = ?").bind(ws).first()).body);
    assert.deepEqual(Object.keys(body), ["id", "type", "created_at", "data"]);
    assert.deepEqual(body.data, {
      invoice_id: session.metadata.invoice_id, status: "paid", amount_paid: 5000, currency: "usd",
      paid_at: new Date(checkout.created * 1000).toISOString(), payment_provider: "stripe",
      stripe_checkout_session_id: session.id, stripe_payment_intent_id: session.payment_intent,
    });
    const payment = await cdb.prepare("SELECT workspace_id, invoice_id FROM payments WHERE id = ?").bind(session.payment_intent).first();
    assert.deepEqual(payment, { workspace_id: ws, invoice_id: session.metadata.invoice_id });
    const split = await cdb.prepare("SELECT workspace_id FROM trip_payments WHERE trip_id = 'trip_trips'").first();
    assert.equal(split.workspace_id, ws);
  } finally {
    await counted.dispose();
  }
});

test("the same event delivered five times at once is applied once; the others are duplicates", async () => {
  const ws = "ws_race";
  const evt = stripeEvent("customer.subscription.created",
    subscription({ id: `sub_${uid()}`, customer: `cus_${uid()}`, workspace: ws, periodEnd: 1_900_000_000 }));
  const answers = await Promise.all(Array.from({ length: 5 }, () => postStripe(mf, evt)));
  const statuses = answers.map((r) => { assert.equal(r.status, 200, r.text); return r.json.status; }).sort();
  assert.deepEqual(statuses, ["applied", "duplicate", "duplicate", "duplicate", "duplicate"]);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM inbound_events WHERE event_id = ?").bind(evt.id).first()).n, 1);
});

test("a storage failure while publishing invoice.paid rolls the payment back; the retry pays and publishes once", async (t) => {
  const ws = "ws_publish_fail";
  await createWebhook(mf, { events: ["invoice.paid"], url: "https://receiver.example.com/ws_publish_fail" }, { auth: token({ workspace: ws }) });
  if (SEVERAL_SHARDS) {
    // With several shards the payment and its event are two batches by design: that
    // path's failure and the cron's relay are tests/shards.test.mjs's.
    t.skip("several shards: see shards.test.mjs, invoice.paid whose shard failed");
    return;
  }
  const session = checkoutSession({ invoice: "inv_publish_fail", workspace: ws, amount: 4200 });
  const evt = stripeEvent("checkout.session.completed", session);
  const res = await withTableOffline("delivery_logs", () => postStripe(mf, evt));
  assert.equal(res.status, 500);
  assert.equal(res.json.error.code, "internal_error");
  assert.equal(await db.prepare("SELECT 1 FROM invoices WHERE id = 'inv_publish_fail'").first(), null, "the batch rolled back");
  assert.equal(await db.prepare("SELECT 1 FROM inbound_events WHERE event_id = ?").bind(evt.id).first(), null);
  assert.equal((await db.prepare("SELECT COUNT(*) AS n FROM events WHERE workspace_id = ?").bind(ws).first()).n, 0);
  // Stripe retries the same event, twice.
  assertApplied(await postStripe(mf, evt));
  assertApplied(await postStripe(mf, evt), "duplicate");
  const inv = await read(mf, "/api/v1/invoices/inv_publish_fail", ws);
  assert.equal(inv.json.status, "paid");
  await waitFor(() => paidDeliveries("inv_publish_fail").length >= 1, { what: "invoice.paid after the retry" });
  await sleep(1500);
  assert.equal(paidDeliveries("inv_publish_fail").length, 1);
  assert.equal(paidDeliveries("inv_publish_fail")[0].body.data.amount_paid, 4200);
});

test("events sent with a Content-Length, as Stripe and Resend send them, are read whole and applied", async () => {
  // dispatchFetch streams bodies chunked; over HTTP, fetch declares the length.
  const url = await mf.ready;
  const ws = "ws_declared";
  const evt = JSON.stringify(stripeEvent("customer.subscription.created",
    subscription({ id: `sub_${uid()}`, customer: `cus_${uid()}`, workspace: ws, periodEnd: 1_900_000_000 })));
  const stripe = await fetch(new URL(STRIPE, url), { method: "POST", body: evt,
    headers: { "Content-Type": "application/json", "Stripe-Signature": stripeHeader(evt) } });
  assert.equal(stripe.status, 200);
  assert.deepEqual(await stripe.json(), { received: true, status: "applied" });
  const mail = JSON.stringify(resendEvent("email.delivered", { tags: [{ name: "workspace_id", value: ws }] }));
  const id = `msg_${uid()}`;
  const ts = nowSecs();
  const resend = await fetch(new URL(RESEND, url), { method: "POST", body: mail, headers: {
    "Content-Type": "application/json", "svix-id": id, "svix-timestamp": String(ts), "svix-signature": svixSignature(id, ts, mail) } });
  assert.equal(resend.status, 200);
  assert.deepEqual(await resend.json(), { received: true, status: "applied" });
  // A signature over other bytes than those declared and sent still fails.
  const forged = await fetch(new URL(STRIPE, url), { method: "POST", body: evt.replace("created", "cr3ated"),
    headers: { "Content-Type": "application/json", "Stripe-Signature": stripeHeader(evt) } });
  assert.equal(forged.status, 400);
  assert.equal((await forged.json()).error.code, "invalid_signature");
  assert.equal((await read(mf, "/api/v1/billing", ws)).json.subscription.status, "active");
});
