//! `POST /api/webhooks/stripe-connect` (SPEC §5.2): FBO onboarding and trip payment splits.
//!
//! | event | effect |
//! |---|---|
//! | `account.updated` | account flags, requirements and onboarding status (`pending` / `restricted` / `complete`) |
//! | `account.application.deauthorized` | onboarding status `disconnected` |
//! | `payment_intent.succeeded` | trip payment (amount, application fee, destination) for `metadata.trip_id` |
//! | `transfer.created` / `transfer.reversed` | trip transfer with its reversal total and status |
//! | `payout.failed` | account flagged `payout_failed` with the payout and reason |
//! | `payout.paid` | clears an older payout failure flag |
//!
//! The workspace comes from `metadata.workspace_id`, else from the connected account's
//! known workspace (a subquery of the write, so each event is one D1 round trip).

use worker::Request;

use super::pipeline::{acknowledge, receive_stripe, Handled, Incoming};
use crate::core::inbound::connect::onboarding_status;
use crate::core::api::error::ApiError;
use crate::core::inbound::stripe_events::{ConnectEvent, PaymentIntent, StripeEnvelope, Transfer};
use crate::http::{ApiResult, OrInternal};
use crate::http::Ctx;
use crate::store::connect;
use crate::store::inbound_events::{InboundSource, WorkspaceOf};

/// Why a trip payment or transfer is ignored when its workspace cannot be found.
const NO_WORKSPACE: &str = "no metadata.workspace_id and no known connected account";

pub async fn handle(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult {
    let source = InboundSource::StripeConnect;
    let envelope = receive_stripe(ctx, req, source, ctx.config.stripe_connect_secret.as_deref(), "STRIPE_CONNECT_WEBHOOK_SECRET").await?;
    let incoming = Incoming::new(source, &envelope.id, &envelope.event_type);
    let (db, now) = (&ctx.db, ctx.now);
    let handled = match ConnectEvent::from_envelope(&envelope) {
        Err(reason) => incoming.ignore(ctx, None, reason).await?,
        Ok(ConnectEvent::Unhandled) => incoming.ignore(ctx, None, "event type not handled").await?,
        Ok(ConnectEvent::AccountUpdated(account)) => {
            let status = onboarding_status(&account);
            let statement = connect::upsert_account(db, &account, status, envelope.version(false), now)
                .or_internal("prepare account")?;
            incoming.apply(ctx, account.workspace_id.as_deref(), vec![statement]).await?
        }
        Ok(ConnectEvent::Deauthorized { account }) => {
            let statement = connect::disconnect_account(db, &account, envelope.created_ms(), envelope.version(true), now)
                .or_internal("prepare account")?;
            incoming.apply(ctx, None, vec![statement]).await?
        }
        Ok(ConnectEvent::PaymentSucceeded(pi)) => trip_payment(ctx, &incoming, &envelope, &pi).await?,
        Ok(ConnectEvent::Transfer(transfer)) => trip_transfer(ctx, &incoming, &envelope, &transfer).await?,
        Ok(ConnectEvent::PayoutFailed { account, payout }) | Ok(ConnectEvent::PayoutPaid { account, payout }) => {
            let failed = envelope.event_type == "payout.failed";
            let statement = connect::set_payout_result(
                db, &account, &payout, failed, envelope.created_ms(), envelope.version(!failed), now,
            )
            .or_internal("prepare payout")?;
            incoming.apply(ctx, None, vec![statement]).await?
        }
    };
    acknowledge(handled)
}

async fn trip_payment(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    pi: &PaymentIntent,
) -> Result<Handled, ApiError> {
    let account = pi.destination.as_deref().or(envelope.account.as_deref());
    let Some(trip_id) = pi.trip_id.as_deref() else {
        return incoming.ignore(ctx, pi.workspace_id.as_deref(), "no metadata.trip_id or transfer_group").await;
    };
    let workspace = WorkspaceOf::Connect { explicit: pi.workspace_id.as_deref(), account };
    let statement =
        connect::upsert_trip_payment(&ctx.db, pi, &workspace, trip_id, account, envelope.version(false), ctx.now)
            .or_internal("prepare trip payment")?;
    incoming.apply_in(ctx, &workspace, NO_WORKSPACE, vec![statement]).await
}

async fn trip_transfer(
    ctx: &Ctx<'_>,
    incoming: &Incoming<'_>,
    envelope: &StripeEnvelope,
    t: &Transfer,
) -> Result<Handled, ApiError> {
    let Some(trip_id) = t.trip_id.as_deref() else {
        return incoming.ignore(ctx, t.workspace_id.as_deref(), "no metadata.trip_id or transfer_group").await;
    };
    let workspace = WorkspaceOf::Connect { explicit: t.workspace_id.as_deref(), account: t.destination.as_deref() };
    // A reversal ends the transfer's story: it wins a tie with `transfer.created`.
    let reversed = envelope.event_type == "transfer.reversed";
    let statement = connect::upsert_transfer(&ctx.db, t, &workspace, trip_id, envelope.version(reversed), ctx.now)
        .or_internal("prepare transfer")?;
    incoming.apply_in(ctx, &workspace, NO_WORKSPACE, vec![statement]).await
}
