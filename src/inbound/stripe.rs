//! `POST /api/webhooks/stripe` (SPEC §5.1): platform payments, subscriptions and billing.
//!
//! | event | effect |
//! |---|---|
//! | `checkout.session.completed` | `paid` / `no_payment_required`: invoice paid + `invoice.paid` published; `unpaid` (delayed method): invoice stays open, `payment_state` = `processing` |
//! | `checkout.session.async_payment_succeeded` | invoice paid + `invoice.paid` published |
//! | `checkout.session.async_payment_failed` | invoice stays open, `payment_state` = `failed` |
//! | `payment_intent.succeeded` | payment upserted; its invoice (metadata, or the Checkout that created it) paid |
//! | `customer.subscription.created` / `.updated` / `.deleted` | subscription synced / `canceled` |
//! | `invoice.paid` / `invoice.payment_failed` | workspace billing status `paid` / `payment_failed` |
//!
//! `invoice.paid` goes out only on the `open` → `paid` transition, through the outbound
//! fan-out with an idempotency key per invoice; the event is recorded as handled only
//! after the fan-out stored it, so a failure there is retried by Stripe.

use worker::{D1PreparedStatement, Request};

use super::pipeline::{acknowledge, receive_stripe, Handled, Incoming};
use crate::core::catalog::EventType;
use crate::core::api::error::ApiError;
use crate::core::inbound::views::InvoicePaidData;
use crate::core::inbound::stripe_events::{
    CheckoutSession, InvoicePayment, PaymentIntent, PlatformEvent, StripeEnvelope, StripeInvoice,
    Subscription,
};
use crate::delivery::fanout::{publish, PublishRequest};
use crate::http::{ApiResult, OrInternal};
use crate::http::Ctx;
use crate::store::billing::{self, InvoicePaymentUpdate, InvoiceRow, PaymentUpsert};
use crate::store::events::EventSource;
use crate::store::inbound_events::{InboundSource, Outcome};

pub async fn handle(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult {
    let source = InboundSource::Stripe;
    let envelope = receive_stripe(ctx, req, source, ctx.config.stripe_secret.as_deref(), "STRIPE_WEBHOOK_SECRET").await?;
    let incoming = Incoming { source, id: &envelope.id, event_type: &envelope.event_type };
    if incoming.seen(ctx).await? {
        return acknowledge(Handled::Duplicate);
    }
    let handled = match PlatformEvent::from_envelope(&envelope) {
        Err(reason) => incoming.ignore(ctx, None, reason).await?,
        Ok(PlatformEvent::Unhandled) => incoming.ignore(ctx, None, "event type not handled").await?,
        Ok(PlatformEvent::Checkout { session, payment }) => checkout(ctx, &incoming, &envelope, &session, payment).await?,
        Ok(PlatformEvent::PaymentIntentSucceeded(pi)) => payment_succeeded(ctx, &incoming, &envelope, &pi).await?,
        Ok(PlatformEvent::SubscriptionSynced(s)) => subscription(ctx, &incoming, &envelope, &s, false).await?,
        Ok(PlatformEvent::SubscriptionDeleted(s)) => subscription(ctx, &incoming, &envelope, &s, true).await?,
        Ok(PlatformEvent::InvoicePaid(i)) => billing_status(ctx, &incoming, &envelope, &i, false).await?,
        Ok(PlatformEvent::InvoicePaymentFailed(i)) => billing_status(ctx, &incoming, &envelope, &i, true).await?,
    };
    acknowledge(handled)
}

/// The object's own `metadata.workspace_id`, else the customer mapping, else the
/// subscription's workspace.
async fn workspace_of(
    ctx: &Ctx<'_>,
    explicit: Option<&str>,
    customer: Option<&str>,
    subscription: Option<&str>,
) -> Result<Option<String>, ApiError> {
    match explicit {
        Some(w) => Ok(Some(w.to_string())),
        None => billing::resolve_workspace(&ctx.db, customer, subscription).await.or_internal("resolve workspace"),
    }
}

/// Learns the customer → workspace mapping from an object that names both.
fn learn(ctx: &Ctx<'_>, customer: Option<&str>, workspace: Option<&str>) -> Result<Vec<D1PreparedStatement>, ApiError> {
    match (customer, workspace) {
        (Some(c), Some(w)) => Ok(vec![billing::learn_customer(&ctx.db, c, w, ctx.now).or_internal("prepare customer")?]),
        _ => Ok(Vec::new()),
    }
}

/// A payment signal for a platform invoice, from a Checkout Session or a PaymentIntent.
struct InvoiceSignal<'a> {
    invoice_id: Option<&'a str>,
    payment_intent: Option<&'a str>,
    checkout_session: Option<&'a str>,
    workspace: Option<&'a str>,
    customer: Option<&'a str>,
    payment: InvoicePayment,
    amount: Option<i64>,
    currency: Option<&'a str>,
    error: Option<&'a str>,
}

/// The invoice a signal is about and its workspace, or why it cannot be applied.
/// An invoice not in the table is created in the event's workspace (metadata, else the
/// customer's); an invoice is never moved to, or touched from, another workspace.
async fn locate_invoice(ctx: &Ctx<'_>, s: &InvoiceSignal<'_>) -> Result<Result<(String, String), String>, ApiError> {
    let row: Option<InvoiceRow> = match (s.invoice_id, s.payment_intent) {
        (Some(id), _) => billing::find_invoice(&ctx.db, id).await.or_internal("find invoice")?,
        (None, Some(pi)) => billing::invoice_for_payment_intent(&ctx.db, pi).await.or_internal("find invoice")?,
        (None, None) => None,
    };
    let Some(invoice_id) = s.invoice_id.map(str::to_string).or_else(|| row.as_ref().map(|r| r.id.clone())) else {
        return Ok(Err("no platform invoice named (metadata.invoice_id or client_reference_id)".into()));
    };
    match row {
        Some(r) if s.workspace.is_some_and(|w| w != r.workspace_id) => {
            Ok(Err(format!("invoice {invoice_id} belongs to another workspace")))
        }
        Some(r) => Ok(Ok((invoice_id, r.workspace_id))),
        None => match workspace_of(ctx, s.workspace, s.customer, None).await? {
            Some(w) => Ok(Ok((invoice_id, w))),
            None => Ok(Err(format!("invoice {invoice_id} is unknown and the event names no workspace"))),
        },
    }
}

fn invoice_statement(
    ctx: &Ctx<'_>,
    envelope: &StripeEnvelope,
    s: &InvoiceSignal<'_>,
    invoice_id: &str,
    workspace: &str,
) -> Result<D1PreparedStatement, ApiError> {
    billing::invoice_payment(
        &ctx.db,
        &InvoicePaymentUpdate {
            invoice_id,
            workspace,
            payment: s.payment,
            amount: s.amount,
            currency: s.currency,
            error: s.error,
            checkout_session: s.checkout_session,
            payment_intent: s.payment_intent,
            customer: s.customer,
            event_time: envelope.created_ms(),
            version: envelope.version(s.payment == InvoicePayment::Failed),
            now: ctx.now,
        },
    )
    .or_internal("prepare invoice update")
}

async fn checkout(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    session: &CheckoutSession,
    payment: InvoicePayment,
) -> Result<Handled, ApiError> {
    let mut statements = learn(ctx, session.customer.as_deref(), session.workspace_id.as_deref())?;
    let signal = InvoiceSignal {
        invoice_id: session.invoice_id.as_deref(),
        payment_intent: session.payment_intent.as_deref(),
        checkout_session: Some(&session.id),
        workspace: session.workspace_id.as_deref(),
        customer: session.customer.as_deref(),
        payment,
        amount: session.amount_total,
        currency: session.currency.as_deref(),
        error: (payment == InvoicePayment::Failed).then_some("the delayed payment of the Checkout Session failed"),
    };
    match locate_invoice(ctx, &signal).await? {
        Err(reason) => {
            let workspace = session.workspace_id.as_deref();
            Ok(incoming.commit(ctx, workspace, statements, Outcome::Ignored(reason)).await?.0)
        }
        Ok((invoice_id, workspace)) => {
            statements.push(invoice_statement(ctx, envelope, &signal, &invoice_id, &workspace)?);
            settle(ctx, incoming, &workspace, &invoice_id, statements, payment == InvoicePayment::Succeeded).await
        }
    }
}

async fn payment_succeeded(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    pi: &PaymentIntent,
) -> Result<Handled, ApiError> {
    let mut statements = learn(ctx, pi.customer.as_deref(), pi.workspace_id.as_deref())?;
    let signal = InvoiceSignal {
        invoice_id: pi.invoice_id.as_deref(),
        payment_intent: Some(&pi.id),
        checkout_session: None,
        workspace: pi.workspace_id.as_deref(),
        customer: pi.customer.as_deref(),
        payment: InvoicePayment::Succeeded,
        amount: pi.amount_received.or(pi.amount),
        currency: pi.currency.as_deref(),
        error: None,
    };
    let located = locate_invoice(ctx, &signal).await?.ok();
    let workspace = match &located {
        Some((_, w)) => Some(w.clone()),
        None => workspace_of(ctx, pi.workspace_id.as_deref(), pi.customer.as_deref(), None).await?,
    };
    statements.push(
        billing::upsert_payment(
            &ctx.db,
            &PaymentUpsert {
                id: &pi.id,
                workspace: workspace.as_deref(),
                invoice_id: located.as_ref().map(|(id, _)| id.as_str()),
                status: &pi.status,
                amount: pi.amount,
                amount_received: pi.amount_received,
                currency: pi.currency.as_deref(),
                customer: pi.customer.as_deref(),
                latest_charge: pi.latest_charge.as_deref(),
                version: envelope.version(false),
                now: ctx.now,
            },
        )
        .or_internal("prepare payment")?,
    );
    match located {
        Some((invoice_id, workspace)) => {
            statements.push(invoice_statement(ctx, envelope, &signal, &invoice_id, &workspace)?);
            settle(ctx, incoming, &workspace, &invoice_id, statements, true).await
        }
        None => incoming.apply(ctx, workspace.as_deref(), statements).await,
    }
}

/// Applies an invoice change; when it may have paid the invoice, publishes `invoice.paid`
/// if (and only if) that transition is still awaiting publication, then records the
/// event. A crash between the steps leaves the event unrecorded: Stripe's retry finds the
/// invoice paid with publication pending and finishes the job (the fan-out's
/// idempotency key keeps it to one event even when two deliveries race).
async fn settle(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    workspace: &str,
    invoice_id: &str,
    mut statements: Vec<D1PreparedStatement>,
    may_publish: bool,
) -> Result<Handled, ApiError> {
    if !may_publish {
        return incoming.apply(ctx, Some(workspace), statements).await;
    }
    statements.push(billing::select_invoice(&ctx.db, invoice_id).or_internal("prepare invoice read")?);
    let results = ctx.db.batch(statements).await.or_internal("apply invoice payment")?;
    let invoice = billing::selected_invoice(results.last()).or_internal("read invoice")?;
    let mut tail = Vec::new();
    if let Some(inv) = invoice.filter(|i| i.awaits_publication() && i.workspace_id == workspace) {
        let event_id = publish_invoice_paid(ctx, &inv).await?;
        tail.push(billing::mark_paid_published(&ctx.db, &inv.id, &event_id, ctx.now).or_internal("prepare publish mark")?);
    }
    tail.push(incoming.record(ctx, Some(workspace), &Outcome::Applied)?);
    ctx.db.batch(tail).await.or_internal("record inbound event")?;
    Ok(incoming.logged(Some(workspace), &Outcome::Applied))
}

async fn publish_invoice_paid(ctx: &Ctx<'_>, inv: &InvoiceRow) -> Result<String, ApiError> {
    let data = InvoicePaidData {
        invoice_id: &inv.id,
        status: "paid",
        amount_paid: inv.amount_paid,
        currency: inv.currency.as_deref(),
        paid_at: inv.paid_at,
        payment_provider: "stripe",
        stripe_checkout_session_id: inv.stripe_checkout_session_id.as_deref(),
        stripe_payment_intent_id: inv.stripe_payment_intent_id.as_deref(),
    };
    let data_json = serde_json::to_string(&data).map_err(|_| ApiError::internal())?;
    let key = format!("stripe:invoice.paid:{}", inv.id);
    let published = publish(
        ctx.env,
        &ctx.db,
        &PublishRequest {
            workspace: &inv.workspace_id,
            event_type: EventType::INVOICE_PAID,
            data_json: &data_json,
            idempotency_key: Some(&key),
            source: EventSource::Internal,
            now: ctx.now,
        },
    )
    .await
    .or_internal("publish invoice.paid")?;
    Ok(published.event_id)
}

async fn subscription(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    s: &Subscription,
    deleted: bool,
) -> Result<Handled, ApiError> {
    let workspace = workspace_of(ctx, s.workspace_id.as_deref(), s.customer.as_deref(), Some(&s.id)).await?;
    let Some(workspace) = workspace else {
        return incoming.ignore(ctx, None, "no metadata.workspace_id and no known customer or subscription").await;
    };
    let mut statements = learn(ctx, s.customer.as_deref(), s.workspace_id.as_deref())?;
    statements.push(
        billing::upsert_subscription(&ctx.db, s, &workspace, envelope.version(deleted), ctx.now)
            .or_internal("prepare subscription")?,
    );
    incoming.apply(ctx, Some(&workspace), statements).await
}

async fn billing_status(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    invoice: &StripeInvoice,
    failed: bool,
) -> Result<Handled, ApiError> {
    let workspace =
        workspace_of(ctx, invoice.workspace_id.as_deref(), invoice.customer.as_deref(), invoice.subscription.as_deref())
            .await?;
    let Some(workspace) = workspace else {
        return incoming.ignore(ctx, None, "no workspace_id metadata and no known customer or subscription").await;
    };
    let mut statements = learn(ctx, invoice.customer.as_deref(), invoice.workspace_id.as_deref())?;
    // A payment ends a failure streak: on a tie within one second, `paid` wins.
    statements.push(
        billing::set_billing_status(&ctx.db, &workspace, invoice, failed, envelope.version(!failed), ctx.now)
            .or_internal("prepare billing status")?,
    );
    incoming.apply(ctx, Some(&workspace), statements).await
}
