//! Billing state from the Stripe endpoint: platform invoices' payment state, payments,
//! the Stripe customer → workspace mapping, subscriptions and the workspace's billing
//! status.
//!
//! Writers return prepared statements so the inbound handler can put them in one batch
//! with the dedupe record. Every upsert is idempotent and guarded by the event version
//! (`core::event_order`), so redeliveries and out-of-order events are harmless.

use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement, D1Result, Result};

use super::statement;
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
    /// Paid, and the `invoice.paid` event of that transition is not stored yet.
    pub fn awaits_publication(&self) -> bool {
        self.status == "paid" && self.paid_event_status.as_deref() == Some("pending")
    }

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

/// Any workspace's invoice: inbound events find their invoice before knowing the workspace.
pub async fn find_invoice(db: &D1Database, id: &str) -> Result<Option<InvoiceRow>> {
    statement(db, &format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = ?1"), &[&id])?.first(None).await
}

/// The invoice whose Checkout created this PaymentIntent.
pub async fn invoice_for_payment_intent(db: &D1Database, payment_intent: &str) -> Result<Option<InvoiceRow>> {
    statement(
        db,
        &format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE stripe_payment_intent_id = ?1 LIMIT 1"),
        &[&payment_intent],
    )?
    .first(None)
    .await
}

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

/// Reads back an invoice at the end of a batch.
pub fn select_invoice(db: &D1Database, id: &str) -> Result<D1PreparedStatement> {
    statement(db, &format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = ?1"), &[&id])
}

/// The invoice row a batch ended with (see [`select_invoice`]).
pub fn selected_invoice(result: Option<&D1Result>) -> Result<Option<InvoiceRow>> {
    Ok(result.map(|r| r.results::<InvoiceRow>()).transpose()?.and_then(|rows| rows.into_iter().next()))
}

/// A payment signal for a platform invoice.
pub struct InvoicePaymentUpdate<'a> {
    pub invoice_id: &'a str,
    pub workspace: &'a str,
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

/// Applies a payment signal. An invoice not in the table is created from the event (in
/// the event's workspace); an invoice of another workspace is never touched; `paid` is
/// final. Succeeding moves `open` → `paid` and marks `invoice.paid` as pending
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
    match u.payment {
        InvoicePayment::Succeeded => statement(
            db,
            &format!(
                "INSERT INTO invoices ({columns}) \
                 VALUES (?1, ?2, 'paid', 'succeeded', ?3, ?4, ?5, NULL, ?6, ?7, ?8, 'pending', ?9, ?10, ?10) \
                 ON CONFLICT (id) DO UPDATE SET status = 'paid', payment_state = 'succeeded', \
                   amount_paid = COALESCE(excluded.amount_paid, invoices.amount_paid), paid_at = excluded.paid_at, \
                   last_payment_error = NULL, paid_event_status = 'pending', \
                   event_version = max(invoices.event_version, excluded.event_version), {refs} \
                 WHERE invoices.workspace_id = excluded.workspace_id AND invoices.status <> 'paid'"
            ),
            &[&u.invoice_id, &u.workspace, &u.amount, &u.currency, &u.event_time, &u.checkout_session,
              &u.payment_intent, &u.customer, &u.version, &u.now],
        ),
        InvoicePayment::Processing | InvoicePayment::Failed => statement(
            db,
            &format!(
                "INSERT INTO invoices ({columns}) \
                 VALUES (?1, ?2, 'open', ?3, NULL, ?4, NULL, ?5, ?6, ?7, ?8, NULL, ?9, ?10, ?10) \
                 ON CONFLICT (id) DO UPDATE SET payment_state = excluded.payment_state, \
                   last_payment_error = excluded.last_payment_error, event_version = excluded.event_version, {refs} \
                 WHERE invoices.workspace_id = excluded.workspace_id AND invoices.status <> 'paid' AND {}",
                sql_guard("invoices")
            ),
            &[&u.invoice_id, &u.workspace, &u.payment.as_str(), &u.currency, &u.error, &u.checkout_session,
              &u.payment_intent, &u.customer, &u.version, &u.now],
        ),
    }
}

/// After `invoice.paid` was stored by the fan-out.
pub fn mark_paid_published(db: &D1Database, invoice_id: &str, event_id: &str, now: UnixMillis) -> Result<D1PreparedStatement> {
    statement(
        db,
        "UPDATE invoices SET paid_event_status = 'published', paid_event_id = ?2, updated_at = ?3 \
         WHERE id = ?1 AND paid_event_status = 'pending'",
        &[&invoice_id, &event_id, &now],
    )
}

pub struct PaymentUpsert<'a> {
    pub id: &'a str,
    pub workspace: Option<&'a str>,
    pub invoice_id: Option<&'a str>,
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
    statement(
        db,
        &format!(
            "INSERT INTO payments (id, workspace_id, invoice_id, status, amount, amount_received, currency, \
               stripe_customer_id, latest_charge, event_version, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) \
             ON CONFLICT (id) DO UPDATE SET workspace_id = COALESCE(excluded.workspace_id, payments.workspace_id), \
               invoice_id = COALESCE(excluded.invoice_id, payments.invoice_id), status = excluded.status, \
               amount = excluded.amount, amount_received = excluded.amount_received, currency = excluded.currency, \
               stripe_customer_id = COALESCE(excluded.stripe_customer_id, payments.stripe_customer_id), \
               latest_charge = COALESCE(excluded.latest_charge, payments.latest_charge), \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("payments")
        ),
        &[&p.id, &p.workspace, &p.invoice_id, &p.status, &p.amount, &p.amount_received, &p.currency, &p.customer,
          &p.latest_charge, &p.version, &p.now],
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

#[derive(Deserialize)]
struct WorkspaceRow {
    workspace_id: String,
}

/// The workspace of an object without `metadata.workspace_id`: from its customer's
/// mapping, else from the subscription it belongs to.
pub async fn resolve_workspace(db: &D1Database, customer: Option<&str>, subscription: Option<&str>) -> Result<Option<String>> {
    if customer.is_none() && subscription.is_none() {
        return Ok(None);
    }
    let row: Option<WorkspaceRow> = statement(
        db,
        "SELECT workspace_id FROM ( \
           SELECT workspace_id, 1 AS rank FROM stripe_customers WHERE customer_id = ?1 \
           UNION ALL SELECT workspace_id, 2 AS rank FROM subscriptions WHERE id = ?2) \
         ORDER BY rank LIMIT 1",
        &[&customer, &subscription],
    )?
    .first(None)
    .await?;
    Ok(row.map(|r| r.workspace_id))
}

/// Syncs a subscription; its workspace is fixed by the first event that created it.
pub fn upsert_subscription(
    db: &D1Database,
    s: &Subscription,
    workspace: &str,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let secs = |t: Option<i64>| t.map(|t| t.saturating_mul(1000));
    statement(
        db,
        &format!(
            "INSERT INTO subscriptions (id, workspace_id, customer_id, status, price_id, product_id, unit_amount, \
               currency, interval, quantity, cancel_at_period_end, current_period_end, canceled_at, event_version, \
               created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15) \
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
        &[&s.id, &workspace, &s.customer, &s.status, &s.price_id, &s.product_id, &s.unit_amount, &s.currency,
          &s.interval, &s.quantity, &s.cancel_at_period_end, &secs(s.current_period_end), &secs(s.canceled_at),
          &version, &now],
    )
}

/// The workspace's billing status after a Stripe invoice was paid or failed.
pub fn set_billing_status(
    db: &D1Database,
    workspace: &str,
    invoice: &StripeInvoice,
    failed: bool,
    version: EventVersion,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let status = if failed { "payment_failed" } else { "paid" };
    // Paying clears the failure: no next attempt is scheduled any more.
    let next_attempt = if failed { invoice.next_payment_attempt.map(|t| t.saturating_mul(1000)) } else { None };
    statement(
        db,
        &format!(
            "INSERT INTO billing_status (workspace_id, status, attempt_count, next_payment_attempt, stripe_invoice_id, \
               stripe_subscription_id, amount_due, amount_paid, currency, event_version, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (workspace_id) DO UPDATE SET status = excluded.status, attempt_count = excluded.attempt_count, \
               next_payment_attempt = excluded.next_payment_attempt, stripe_invoice_id = excluded.stripe_invoice_id, \
               stripe_subscription_id = excluded.stripe_subscription_id, amount_due = excluded.amount_due, \
               amount_paid = excluded.amount_paid, currency = excluded.currency, \
               event_version = excluded.event_version, updated_at = excluded.updated_at \
             WHERE {}",
            sql_guard("billing_status")
        ),
        &[&workspace, &status, &invoice.attempt_count, &next_attempt, &invoice.id, &invoice.subscription,
          &invoice.amount_due, &invoice.amount_paid, &invoice.currency, &version, &now],
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
