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
//! Every event is one D1 round trip: the dedupe record, the look-ups (workspace, invoice)
//! as subqueries, and the version-guarded writes in one batch, all or nothing.
//! `invoice.paid` goes out only on the `open` → `paid` transition: the event, its fan-out
//! into pending delivery logs and the invoice's publication mark are statements of that
//! same batch, guarded in SQL, with the idempotency key per invoice; its deliveries are
//! queued after the batch (a failed send is re-queued by the cron).

use worker::{D1PreparedStatement, Request};

use super::pipeline::{acknowledge, receive_stripe, Handled, Incoming};
use crate::core::api::error::ApiError;
use crate::core::catalog::EventType;
use crate::core::ids::{new_id, EVENT_PREFIX};
use crate::core::inbound::stripe_events::{
    CheckoutSession, InvoicePayment, PaymentIntent, PlatformEvent, StripeEnvelope, StripeInvoice, Subscription,
};
use crate::core::time::format_iso;
use crate::core::shards::DIRECTORY_BINDING;
use crate::delivery::fanout::enqueue_stored;
use super::invoice_paid::{self, INVOICE_PAID_KEY_PREFIX};
use crate::http::Ctx;
use crate::http::{ApiResult, OrInternal};
use crate::store::billing::{self, InvoiceLookup, InvoicePaymentUpdate, PaymentUpsert};
use crate::store::inbound_events::{Decision, InboundSource, WorkspaceOf};
use crate::store::{changes, events};


pub async fn handle(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult {
    let source = InboundSource::Stripe;
    let envelope = receive_stripe(ctx, req, source, ctx.config.stripe_secret.as_deref(), "STRIPE_WEBHOOK_SECRET").await?;
    let incoming = Incoming::new(source, &envelope.id, &envelope.event_type);
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

/// Learns the customer → workspace mapping from an object that names both.
fn learn(ctx: &Ctx<'_>, customer: Option<&str>, workspace: Option<&str>) -> Result<Vec<D1PreparedStatement>, ApiError> {
    match (customer, workspace) {
        (Some(c), Some(w)) => Ok(vec![billing::learn_customer(&ctx.db, c, w, ctx.now).or_internal("prepare customer")?]),
        _ => Ok(Vec::new()),
    }
}

/// A payment signal for a platform invoice, from a Checkout Session or a PaymentIntent.
struct InvoiceSignal<'a> {
    lookup: InvoiceLookup<'a>,
    checkout_session: Option<&'a str>,
    payment: InvoicePayment,
    amount: Option<i64>,
    currency: Option<&'a str>,
    error: Option<&'a str>,
}

fn invoice_statement(ctx: &Ctx<'_>, envelope: &StripeEnvelope, s: &InvoiceSignal<'_>) -> Result<D1PreparedStatement, ApiError> {
    billing::invoice_payment(
        &ctx.db,
        &InvoicePaymentUpdate {
            lookup: &s.lookup,
            payment: s.payment,
            amount: s.amount,
            currency: s.currency,
            error: s.error,
            checkout_session: s.checkout_session,
            payment_intent: s.lookup.payment_intent,
            customer: s.lookup.customer,
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
        lookup: InvoiceLookup {
            invoice_id: session.invoice_id.as_deref(),
            payment_intent: session.payment_intent.as_deref(),
            workspace: session.workspace_id.as_deref(),
            customer: session.customer.as_deref(),
        },
        checkout_session: Some(&session.id),
        payment,
        amount: session.amount_total,
        currency: session.currency.as_deref(),
        error: (payment == InvoicePayment::Failed).then_some("the delayed payment of the Checkout Session failed"),
    };
    statements.push(invoice_statement(ctx, envelope, &signal)?);
    let decision = signal.lookup.checkout_decision();
    settle(ctx, incoming, decision, &signal.lookup, statements, payment == InvoicePayment::Succeeded).await
}

async fn payment_succeeded(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    pi: &PaymentIntent,
) -> Result<Handled, ApiError> {
    let mut statements = learn(ctx, pi.customer.as_deref(), pi.workspace_id.as_deref())?;
    let signal = InvoiceSignal {
        lookup: InvoiceLookup {
            invoice_id: pi.invoice_id.as_deref(),
            payment_intent: Some(&pi.id),
            workspace: pi.workspace_id.as_deref(),
            customer: pi.customer.as_deref(),
        },
        checkout_session: None,
        payment: InvoicePayment::Succeeded,
        amount: pi.amount_received.or(pi.amount),
        currency: pi.currency.as_deref(),
        error: None,
    };
    // The payment first: it reads the invoice as it was before this event.
    statements.push(
        billing::upsert_payment(
            &ctx.db,
            &PaymentUpsert {
                id: &pi.id,
                lookup: &signal.lookup,
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
    statements.push(invoice_statement(ctx, envelope, &signal)?);
    settle(ctx, incoming, signal.lookup.payment_decision(), &signal.lookup, statements, true).await
}

/// Commits a payment signal in one round trip. When it may have paid the invoice, the
/// batch also stores `invoice.paid`, fans it out and marks the invoice published, each
/// statement guarded in SQL so that it happens only while the invoice awaits publication
/// (the `open` → `paid` transition of this batch, or one an earlier attempt left
/// pending); the idempotency key keeps it to one event per invoice even when two
/// deliveries race. The deliveries are queued after the batch.
async fn settle(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    decision: Decision,
    lookup: &InvoiceLookup<'_>,
    mut statements: Vec<D1PreparedStatement>,
    may_publish: bool,
) -> Result<Handled, ApiError> {
    if !may_publish {
        return Ok(incoming.commit(ctx, decision, statements).await?.handled);
    }
    let shards = ctx.shards()?;
    if shards.list().names() != [DIRECTORY_BINDING] {
        // Workspaces may live in other databases: commit the payment here, then publish
        // the event into the workspace's shard. If that fails the answer is a 500 and the
        // cron finishes the publication (the invoice stays `pending` until then).
        incoming.defer_log();
        let handled = incoming.commit(ctx, decision, statements).await?.handled;
        let relayed = invoice_paid::relay(ctx.env, &shards, lookup).await;
        // A failed relay made at least its first round trip.
        incoming.log_deferred(relayed.as_ref().map_or(1, |trips| *trips));
        relayed.or_internal("relay invoice.paid")?;
        return Ok(handled);
    }
    let event_id = new_id(EVENT_PREFIX);
    let (db, now) = (&ctx.db, ctx.now);
    let published_at = statements.len();
    statements.extend([
        billing::insert_invoice_paid(db, lookup, &event_id, EventType::INVOICE_PAID.as_str(), INVOICE_PAID_KEY_PREFIX,
                                     &format_iso(now), now)
            .or_internal("prepare invoice.paid")?,
        // Returns the ids it made.
        events::fan_out(db, &event_id).or_internal("prepare invoice.paid fan-out")?,
        billing::mark_paid_published(db, lookup, INVOICE_PAID_KEY_PREFIX, now).or_internal("prepare publish mark")?,
    ]);
    let committed = incoming.commit(ctx, decision, statements).await?;
    if committed.results.get(published_at).map(changes).unwrap_or(0) > 0 {
        let ids = events::delivery_ids(committed.results.get(published_at + 1)).or_internal("read deliveries")?;
        enqueue_stored(ctx.env, DIRECTORY_BINDING, &event_id, &ids).await;
    }
    Ok(committed.handled)
}

async fn subscription(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    s: &Subscription,
    deleted: bool,
) -> Result<Handled, ApiError> {
    let workspace =
        WorkspaceOf::Stripe { explicit: s.workspace_id.as_deref(), customer: s.customer.as_deref(), subscription: Some(&s.id) };
    let mut statements = learn(ctx, s.customer.as_deref(), s.workspace_id.as_deref())?;
    statements.push(
        billing::upsert_subscription(&ctx.db, s, &workspace, envelope.version(deleted), ctx.now)
            .or_internal("prepare subscription")?,
    );
    incoming.apply_in(ctx, &workspace, "no metadata.workspace_id and no known customer or subscription", statements).await
}

async fn billing_status(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    invoice: &StripeInvoice,
    failed: bool,
) -> Result<Handled, ApiError> {
    let workspace = WorkspaceOf::Stripe {
        explicit: invoice.workspace_id.as_deref(),
        customer: invoice.customer.as_deref(),
        subscription: invoice.subscription.as_deref(),
    };
    let mut statements = learn(ctx, invoice.customer.as_deref(), invoice.workspace_id.as_deref())?;
    // A payment ends a failure streak: on a tie within one second, `paid` wins.
    statements.push(
        billing::set_billing_status(&ctx.db, &workspace, invoice, failed, envelope.version(!failed), ctx.now)
            .or_internal("prepare billing status")?,
    );
    incoming.apply_in(ctx, &workspace, "no workspace_id metadata and no known customer or subscription", statements).await
}
