//! Billing state from the Stripe endpoint: platform invoices' payment state, payments,
//! the Stripe customer → workspace mapping, subscriptions and the workspace's billing
//! status.
//!
//! Writers return prepared statements so the inbound handler can put them in one batch
//! with the dedupe record; what they need to look up (the workspace, the invoice) is a
//! subquery of the statement, never a separate read. Every upsert is idempotent and guarded by the event version
//! (`core::event_order`), so redeliveries and out-of-order events are harmless.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

use super::inbound_events::{Decision, WorkspaceOf};
use super::{statement, statement_with, SqlArg};
use crate::core::inbound::event_order::{sql_guard, EventVersion};
use crate::core::inbound::views::{BillingView, InvoiceView, StripeInvoiceRef, StripeRefs, SubscriptionView};
use crate::core::inbound::stripe_events::{InvoicePayment, StripeInvoice, Subscription};
use crate::core::time::UnixMillis;

/// A platform invoice as stored.
#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceRow {
    pub id: String,
    pub workspace_id: String,
    pub status: String,
    pub payment_state: Option<String>,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
    pub paid_at: Option<i64>,
    pub last_payment_error: Option<String>,
    pub stripe_checkout_session_id: Option<String>,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub paid_event_status: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl InvoiceRow {
    pub fn into_view(self) -> InvoiceView {
        InvoiceView {
            id: self.id,
            status: self.status,
            payment_state: self.payment_state,
            paid_at: self.paid_at,
            amount_paid: self.amount_paid,
            currency: self.currency,
            last_payment_error: self.last_payment_error,
            stripe: StripeRefs {
                checkout_session_id: self.stripe_checkout_session_id,
                payment_intent_id: self.stripe_payment_intent_id,
                customer_id: self.stripe_customer_id,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const INVOICE_COLUMNS: &str = "id, workspace_id, status, payment_state, amount_paid, currency, paid_at, \
    last_payment_error, stripe_checkout_session_id, stripe_payment_intent_id, stripe_customer_id, \
    paid_event_status, created_at, updated_at";

/// A workspace's invoice, for the read route.
pub async fn get_invoice(db: &D1Database, workspace: &str, id: &str) -> Result<Option<InvoiceView>> {
    let row: Option<InvoiceRow> = statement(
        db,
        &format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = ?1 AND workspace_id = ?2"),
        &[&id, &workspace],
    )?
    .first(None)
    .await?;
    Ok(row.map(InvoiceRow::into_view))
}

/// Which platform invoice a payment signal is about, and in which workspace: decided
/// inside the statements that use it (one D1 round trip per event). The invoice is the
/// one named, else (for a PaymentIntent) the one whose Checkout created the intent; its
/// workspace is the stored invoice's, else the event's (`metadata.workspace_id`, else the
/// customer's). An invoice of another workspace than the event names is never touched.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceLookup<'a> {
    pub invoice_id: Option<&'a str>,
    pub payment_intent: Option<&'a str>,
    pub workspace: Option<&'a str>,
    pub customer: Option<&'a str>,
}

impl InvoiceLookup<'_> {
    /// A `FROM` source `l` of one row: `invoice_id`, `workspace_id`, and `reason` (NULL when
    /// the signal applies to that invoice, else why not). Arguments from `?first` (4).
    fn located(&self, first: usize) -> (String, Vec<JsValue>) {
        let (i, p, w, c) = (first, first + 1, first + 2, first + 3);
        let event_ws = format!("COALESCE(?{w}, (SELECT workspace_id FROM stripe_customers WHERE customer_id = ?{c}))");
        (
            format!(
                "(SELECT t.id AS invoice_id, \
                   CASE WHEN t.id IS NULL THEN NULL \
                        WHEN t.row_ws IS NOT NULL THEN CASE WHEN ?{w} IS NULL OR ?{w} = t.row_ws THEN t.row_ws END \
                        ELSE {event_ws} END AS workspace_id, \
                   CASE WHEN t.id IS NULL THEN 'no platform invoice named (metadata.invoice_id or client_reference_id)' \
                        WHEN t.row_ws IS NOT NULL THEN \
                          CASE WHEN ?{w} IS NOT NULL AND ?{w} <> t.row_ws THEN 'invoice ' || t.id || ' belongs to another workspace' END \
                        WHEN {event_ws} IS NULL THEN 'invoice ' || t.id || ' is unknown and the event names no workspace' \
                   END AS reason \
                 FROM (SELECT COALESCE(?{i}, f.id) AS id, f.workspace_id AS row_ws FROM (SELECT 1) \
                   LEFT JOIN (SELECT id, workspace_id FROM invoices WHERE id = ?{i} \
                     UNION ALL SELECT id, workspace_id FROM invoices WHERE ?{i} IS NULL AND stripe_payment_intent_id = ?{p} \
                     LIMIT 1) f ON 1) t) l"
            ),
            vec![self.invoice_id.to_js(), self.payment_intent.to_js(), self.workspace.to_js(), self.customer.to_js()],
        )
    }

    /// The workspace of a payment: its invoice's when the signal applies to one, else the
    /// event's (`metadata.workspace_id`, else the customer's). Arguments as [`Self::located`].
    fn payment_workspace(first: usize) -> String {
        let (w, c) = (first + 2, first + 3);
        format!(
            "COALESCE(CASE WHEN l.reason IS NULL THEN l.workspace_id END, ?{w}, \
             (SELECT workspace_id FROM stripe_customers WHERE customer_id = ?{c}))"
        )
    }

    /// A Checkout event's record: applied to its invoice, or ignored with the reason (in
    /// the event's own workspace).
    pub fn checkout_decision(&self) -> Decision {
        let first = Decision::FIRST_ARG;
        let (located, args) = self.located(first);
        Decision::Sql {
            from: located,
            outcome: "CASE WHEN l.reason IS NULL THEN 'applied' ELSE 'ignored' END".into(),
            detail: "l.reason".into(),
            workspace: format!("CASE WHEN l.reason IS NULL THEN l.workspace_id ELSE ?{} END", first + 2),
            args,
        }
    }

    /// A PaymentIntent's record: always applied (the payment is recorded), in the
    /// payment's workspace.
    pub fn payment_decision(&self) -> Decision {
        let first = Decision::FIRST_ARG;
        let (located, args) = self.located(first);
        Decision::Sql {
            from: located,
            outcome: "'applied'".into(),
            detail: "NULL".into(),
            workspace: Self::payment_workspace(first),
            args,
        }
    }
}

/// A payment signal for a platform invoice.
pub struct InvoicePaymentUpdate<'a> {
    pub lookup: &'a InvoiceLookup<'a>,
    pub payment: InvoicePayment,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub error: Option<&'a str>,
    pub checkout_session: Option<&'a str>,
    pub payment_intent: Option<&'a str>,
    pub customer: Option<&'a str>,
    /// When Stripe created the event (the payment time).
    pub event_time: UnixMillis,
    pub version: EventVersion,
    pub now: UnixMillis,
}

/// Applies a payment signal to the invoice [`InvoiceLookup`] finds (nothing when it finds
/// none). An invoice not in the table is created from the event (in the event's
/// workspace); an invoice of another workspace is never touched; `paid` is final. Succeeding moves `open` → `paid` and marks `invoice.paid` as pending
/// publication — only that transition does, so a second signal for the same invoice
/// (a redelivery, or Checkout then its PaymentIntent) changes nothing.
pub fn invoice_payment(db: &D1Database, u: &InvoicePaymentUpdate<'_>) -> Result<D1PreparedStatement> {
    let refs = "stripe_checkout_session_id = COALESCE(excluded.stripe_checkout_session_id, invoices.stripe_checkout_session_id), \
        stripe_payment_intent_id = COALESCE(excluded.stripe_payment_intent_id, invoices.stripe_payment_intent_id), \
        stripe_customer_id = COALESCE(excluded.stripe_customer_id, invoices.stripe_customer_id), \
        currency = COALESCE(excluded.currency, invoices.currency), updated_at = excluded.updated_at";
    let columns = "id, workspace_id, status, payment_state, amount_paid, currency, paid_at, last_payment_error, \
        stripe_checkout_session_id, stripe_payment_intent_id, stripe_customer_id, paid_event_status, event_version, \
        created_at, updated_at";
    // ?1 and ?2 are unused: the invoice and its workspace come from `l`.
    let (located, l_args) = u.lookup.located(11);
    match u.payment {
        InvoicePayment::Succeeded => statement_with(
            db,
            &format!(
                "INSERT INTO invoices ({columns}) \
                 SELECT l.invoice_id, l.workspace_id, 'paid', 'succeeded', ?3, ?4, ?5, NULL, ?6, ?7, ?8, 'pending', ?9, ?10, ?10 \
                 FROM {located} WHERE l.reason IS NULL \
                 ON CONFLICT (id) DO UPDATE SET status = 'paid', payment_state = 'succeeded', \
                   amount_paid = COALESCE(excluded.amount_paid, invoices.amount_paid), paid_at = excluded.paid_at, \
                   last_payment_error = NULL, paid_event_status = 'pending', \
                   event_version = max(invoices.event_version, excluded.event_version), {refs} \
                 WHERE invoices.workspace_id = excluded.workspace_id AND invoices.status <> 'paid'"
            ),
            &[&None::<&str>, &None::<&str>, &u.amount, &u.currency, &u.event_time, &u.checkout_session,
              &u.payment_intent, &u.customer, &u.version, &u.now],
            l_args,
        ),
        InvoicePayment::Processing | InvoicePayment::Failed => statement_with(
            db,
            &format!(
                "INSERT INTO invoices ({columns}) \
                 SELECT l.invoice_id, l.workspace_id, 'open', ?3, NULL, ?4, NULL, ?5, ?6, ?7, ?8, NULL, ?9, ?10, ?10 \
                 FROM {located} WHERE l.reason IS NULL \
                 ON CONFLICT (id) DO UPDATE SET payment_state = excluded.payment_state, \
                   last_payment_error = excluded.last_payment_error, event_version = excluded.event_version, {refs} \
                 WHERE invoices.workspace_id = excluded.workspace_id AND invoices.status <> 'paid' AND {}",
                sql_guard("invoices")
            ),
            &[&None::<&str>, &None::<&str>, &u.payment.as_str(), &u.currency, &u.error, &u.checkout_session,
              &u.payment_intent, &u.customer, &u.version, &u.now],
            l_args,
        ),
    }
}

/// The `invoice.paid` event of a payment that just moved its invoice `open` → `paid`
/// (or found it paid with the event still pending), stored as the fan-out stores any
/// event, in the same batch: only when the invoice awaits publication, and at most once
/// per invoice (the internal idempotency key `<key_prefix><invoice id>`). Its body is the
/// envelope of `core::outbound::delivery::envelope` around `core::inbound::views::
/// InvoicePaidData`, built from the invoice row as the batch left it.
pub fn insert_invoice_paid(
    db: &D1Database,
    lookup: &InvoiceLookup<'_>,
    event_id: &str,
    event_type: &str,
    key_prefix: &str,
    created_at_iso: &str,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let (located, l_args) = lookup.located(6);
    statement_with(
        db,
        &format!(
            "INSERT INTO events (id, workspace_id, type, body, idempotency_key, source, created_at) \
             SELECT ?1, inv.workspace_id, ?2, \
               json_object('id', ?1, 'type', ?2, 'created_at', ?4, 'data', json_object( \
                 'invoice_id', inv.id, 'status', 'paid', 'amount_paid', inv.amount_paid, 'currency', inv.currency, \
                 'paid_at', strftime('%Y-%m-%dT%H:%M:%S', CAST(inv.paid_at AS INTEGER) / 1000, 'unixepoch') \
                   || printf('.%03dZ', CAST(inv.paid_at AS INTEGER) % 1000), \
                 'payment_provider', 'stripe', 'stripe_checkout_session_id', inv.stripe_checkout_session_id, \
                 'stripe_payment_intent_id', inv.stripe_payment_intent_id)), \
               ?3 || inv.id, 'internal', ?5 \
             FROM {located} JOIN invoices inv ON inv.id = l.invoice_id AND inv.workspace_id = l.workspace_id \
             WHERE l.reason IS NULL AND inv.status = 'paid' AND inv.paid_event_status = 'pending' \
             ON CONFLICT DO NOTHING"
        ),
        &[&event_id, &event_type, &key_prefix, &created_at_iso, &now],
        l_args,
    )
}

/// Marks the invoice's `invoice.paid` as published with the event that holds its key
/// (the one just stored, or one an earlier attempt stored).
pub fn mark_paid_published(db: &D1Database, lookup: &InvoiceLookup<'_>, key_prefix: &str, now: UnixMillis) -> Result<D1PreparedStatement> {
    let (located, l_args) = lookup.located(3);
    statement_with(
        db,
        &format!(
            "UPDATE invoices SET paid_event_status = 'published', updated_at = ?2, \
               paid_event_id = (SELECT e.id FROM events e WHERE e.workspace_id = invoices.workspace_id \
                                AND e.idempotency_key = ?1 || invoices.id) \
             WHERE paid_event_status = 'pending' AND status = 'paid' \
               AND (id, workspace_id) IN (SELECT l.invoice_id, l.workspace_id FROM {located} WHERE l.reason IS NULL) \
               AND EXISTS (SELECT 1 FROM events e WHERE e.workspace_id = invoices.workspace_id \
                           AND e.idempotency_key = ?1 || invoices.id)"
        ),
        &[&key_prefix, &now],
        l_args,
    )
}

pub struct PaymentUpsert<'a> {
    pub id: &'a str,
    /// Gives the payment's invoice (when the payment applies to one) and workspace.
    pub lookup: &'a InvoiceLookup<'a>,
    pub status: &'a str,
    pub amount: Option<i64>,
    pub amount_received: Option<i64>,
    pub currency: Option<&'a str>,
    pub customer: Option<&'a str>,
    pub latest_charge: Option<&'a str>,
    pub version: EventVersion,
    pub now: UnixMillis,
}

pub fn upsert_payment(db: &D1Database, p: &PaymentUpsert<'_>) -> Result<D1PreparedStatement> {
    // ?2 and ?3 are unused: the workspace and invoice come from `l`.
    let (located, l_args) = p.lookup.located(12);
    statement_with(
        db,
        &format!(
            "INSERT INTO payments (id, workspace_id, invoice_id, status, amount, amount_received, currency, \
               stripe_customer_id, latest_charge, event_version, created_at, updated_at) \
             SELECT ?1, {}, CASE WHEN l.reason IS NULL THEN l.invoice_id END, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11 \
             FROM {located} WHERE true \
             ON CONFLICT (id) DO UPDATE SET workspace_id = COALESCE(excluded.workspace_id, payments.workspace_id), \
               invoice_id = COALESCE(excluded.invoice_id, payments.invoice_id), status = excluded.status, \
               amount = excluded.amount, amount_received = excluded.amount_received, currency = excluded.currency, \
               stripe_customer_id = COALESCE(excluded.stripe_customer_id, payments.stripe_customer_id), \
               latest_charge = COALESCE(excluded.latest_charge, payments.latest_charge), \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            InvoiceLookup::payment_workspace(12),
            sql_guard("payments")
        ),
        &[&p.id, &None::<&str>, &None::<&str>, &p.status, &p.amount, &p.amount_received, &p.currency, &p.customer,
          &p.latest_charge, &p.version, &p.now],
        l_args,
    )
}

/// Remembers which workspace a Stripe customer belongs to (the latest object that named
/// both wins).
pub fn learn_customer(db: &D1Database, customer: &str, workspace: &str, now: UnixMillis) -> Result<D1PreparedStatement> {
    statement(
        db,
        "INSERT INTO stripe_customers (customer_id, workspace_id, updated_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (customer_id) DO UPDATE SET workspace_id = excluded.workspace_id, updated_at = excluded.updated_at \
         WHERE stripe_customers.workspace_id <> excluded.workspace_id",
        &[&customer, &workspace, &now],
    )
}

/// Syncs a subscription; its workspace is fixed by the first event that created it.
pub fn upsert_subscription(
    db: &D1Database,
    s: &Subscription,
    workspace: &WorkspaceOf<'_>,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let secs = |t: Option<i64>| t.map(|t| t.saturating_mul(1000));
    // ?2 is unused: the workspace comes from `r` (nothing is written when none is found).
    let (row, ws_args) = workspace.row(16);
    statement_with(
        db,
        &format!(
            "INSERT INTO subscriptions (id, workspace_id, customer_id, status, price_id, product_id, unit_amount, \
               currency, interval, quantity, cancel_at_period_end, current_period_end, canceled_at, event_version, \
               created_at, updated_at) \
             SELECT ?1, r.ws, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15 FROM {row} WHERE r.ws IS NOT NULL \
             ON CONFLICT (id) DO UPDATE SET customer_id = COALESCE(excluded.customer_id, subscriptions.customer_id), \
               status = excluded.status, price_id = COALESCE(excluded.price_id, subscriptions.price_id), \
               product_id = COALESCE(excluded.product_id, subscriptions.product_id), \
               unit_amount = COALESCE(excluded.unit_amount, subscriptions.unit_amount), \
               currency = COALESCE(excluded.currency, subscriptions.currency), \
               interval = COALESCE(excluded.interval, subscriptions.interval), \
               quantity = COALESCE(excluded.quantity, subscriptions.quantity), \
               cancel_at_period_end = excluded.cancel_at_period_end, \
               current_period_end = COALESCE(excluded.current_period_end, subscriptions.current_period_end), \
               canceled_at = excluded.canceled_at, event_version = excluded.event_version, \
               updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("subscriptions")
        ),
        &[&s.id, &None::<&str>, &s.customer, &s.status, &s.price_id, &s.product_id, &s.unit_amount, &s.currency,
          &s.interval, &s.quantity, &s.cancel_at_period_end, &secs(s.current_period_end), &secs(s.canceled_at),
          &version, &now],
        ws_args,
    )
}

/// The workspace's billing status after a Stripe invoice was paid or failed.
pub fn set_billing_status(
    db: &D1Database,
    workspace: &WorkspaceOf<'_>,
    invoice: &StripeInvoice,
    failed: bool,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let status = if failed { "payment_failed" } else { "paid" };
    // Paying clears the failure: no next attempt is scheduled any more.
    let next_attempt = if failed { invoice.next_payment_attempt.map(|t| t.saturating_mul(1000)) } else { None };
    // ?1 is unused: the workspace comes from `r` (nothing is written when none is found).
    let (row, ws_args) = workspace.row(12);
    statement_with(
        db,
        &format!(
            "INSERT INTO billing_status (workspace_id, status, attempt_count, next_payment_attempt, stripe_invoice_id, \
               stripe_subscription_id, amount_due, amount_paid, currency, event_version, updated_at) \
             SELECT r.ws, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 FROM {row} WHERE r.ws IS NOT NULL \
             ON CONFLICT (workspace_id) DO UPDATE SET status = excluded.status, attempt_count = excluded.attempt_count, \
               next_payment_attempt = excluded.next_payment_attempt, stripe_invoice_id = excluded.stripe_invoice_id, \
               stripe_subscription_id = excluded.stripe_subscription_id, amount_due = excluded.amount_due, \
               amount_paid = excluded.amount_paid, currency = excluded.currency, \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("billing_status")
        ),
        &[&None::<&str>, &status, &invoice.attempt_count, &next_attempt, &invoice.id, &invoice.subscription,
          &invoice.amount_due, &invoice.amount_paid, &invoice.currency, &version, &now],
        ws_args,
    )
}

#[derive(Deserialize)]
struct BillingRow {
    status: String,
    attempt_count: Option<i64>,
    next_payment_attempt: Option<i64>,
    stripe_invoice_id: Option<String>,
    stripe_subscription_id: Option<String>,
    amount_due: Option<i64>,
    amount_paid: Option<i64>,
    currency: Option<String>,
    updated_at: i64,
}

#[derive(Deserialize)]
struct SubscriptionRow {
    id: String,
    customer_id: Option<String>,
    status: String,
    price_id: Option<String>,
    product_id: Option<String>,
    unit_amount: Option<i64>,
    currency: Option<String>,
    interval: Option<String>,
    quantity: Option<i64>,
    cancel_at_period_end: i64,
    current_period_end: Option<i64>,
    canceled_at: Option<i64>,
    updated_at: i64,
}

/// The workspace's billing: status (`ok` when nothing is known) and its current
/// subscription (the latest one not ended, else the latest).
pub async fn billing(db: &D1Database, workspace: &str) -> Result<BillingView> {
    let results = db
        .batch(vec![
            statement(
                db,
                "SELECT status, attempt_count, next_payment_attempt, stripe_invoice_id, stripe_subscription_id, \
                   amount_due, amount_paid, currency, updated_at FROM billing_status WHERE workspace_id = ?1",
                &[&workspace],
            )?,
            statement(
                db,
                "SELECT id, customer_id, status, price_id, product_id, unit_amount, currency, interval, quantity, \
                   cancel_at_period_end, current_period_end, canceled_at, updated_at \
                 FROM subscriptions WHERE workspace_id = ?1 \
                 ORDER BY status IN ('canceled', 'incomplete_expired') ASC, updated_at DESC LIMIT 1",
                &[&workspace],
            )?,
        ])
        .await?;
    let billing = results.first().map(|r| r.results::<BillingRow>()).transpose()?.and_then(|r| r.into_iter().next());
    let subscription = results.get(1).map(|r| r.results::<SubscriptionRow>()).transpose()?.and_then(|r| r.into_iter().next());
    let subscription = subscription.map(|s| SubscriptionView {
        id: s.id,
        status: s.status,
        price_id: s.price_id,
        product_id: s.product_id,
        unit_amount: s.unit_amount,
        currency: s.currency,
        interval: s.interval,
        quantity: s.quantity,
        current_period_end: s.current_period_end,
        cancel_at_period_end: s.cancel_at_period_end != 0,
        canceled_at: s.canceled_at,
        customer_id: s.customer_id,
        updated_at: s.updated_at,
    });
    Ok(match billing {
        Some(b) => BillingView {
            billing_status: b.status,
            attempt_count: b.attempt_count,
            next_payment_attempt: b.next_payment_attempt,
            last_invoice: b.stripe_invoice_id.map(|id| StripeInvoiceRef {
                id,
                subscription_id: b.stripe_subscription_id,
                amount_due: b.amount_due,
                amount_paid: b.amount_paid,
                currency: b.currency,
            }),
            subscription,
            updated_at: Some(b.updated_at),
        },
        None => BillingView {
            billing_status: "ok".into(),
            attempt_count: None,
            next_payment_attempt: None,
            last_invoice: None,
            subscription,
            updated_at: None,
        },
    })
}

/// A paid invoice whose `invoice.paid` is not published yet: what the event's `data`
/// is made of, for publishing it into a shard other than `DB` (`inbound::invoice_paid`).
#[derive(Debug, Deserialize)]
pub struct PaidInvoice {
    pub id: String,
    pub workspace_id: String,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
    pub paid_at: Option<i64>,
    pub stripe_checkout_session_id: Option<String>,
    pub stripe_payment_intent_id: Option<String>,
}

const PAID_INVOICE_COLUMNS: &str = "inv.id, inv.workspace_id, inv.amount_paid, inv.currency, inv.paid_at, \
    inv.stripe_checkout_session_id, inv.stripe_payment_intent_id";

/// The invoice a payment signal is about, if it is paid and its event not yet published.
pub async fn awaiting_publication(db: &D1Database, lookup: &InvoiceLookup<'_>) -> Result<Vec<PaidInvoice>> {
    let (located, l_args) = lookup.located(1);
    statement_with(
        db,
        &format!(
            "SELECT {PAID_INVOICE_COLUMNS} FROM {located} \
             JOIN invoices inv ON inv.id = l.invoice_id AND inv.workspace_id = l.workspace_id \
             WHERE l.reason IS NULL AND inv.status = 'paid' AND inv.paid_event_status = 'pending'"
        ),
        &[],
        l_args,
    )?
    .all()
    .await?
    .results()
}

/// Paid invoices whose event has waited for publication since before `updated_before`
/// (a request that stopped between its two steps), oldest first, at most `limit`.
pub async fn stuck_awaiting_publication(db: &D1Database, updated_before: UnixMillis, limit: u32) -> Result<Vec<PaidInvoice>> {
    statement(
        db,
        &format!(
            "SELECT {PAID_INVOICE_COLUMNS} FROM invoices inv \
             WHERE inv.paid_event_status = 'pending' AND inv.status = 'paid' AND inv.updated_at < ?1 \
             ORDER BY inv.updated_at LIMIT ?2"
        ),
        &[&updated_before, &limit],
    )?
    .all()
    .await?
    .results()
}

/// Records that the invoice's `invoice.paid` is event `event_id` (stored in its shard).
pub async fn mark_published(db: &D1Database, invoice: &PaidInvoice, event_id: &str, now: UnixMillis) -> Result<()> {
    statement(
        db,
        "UPDATE invoices SET paid_event_status = 'published', paid_event_id = ?3, updated_at = ?4 \
         WHERE id = ?1 AND workspace_id = ?2 AND paid_event_status = 'pending'",
        &[&invoice.id, &invoice.workspace_id, &event_id, &now],
    )?
    .run()
    .await
    .map(|_| ())
}
