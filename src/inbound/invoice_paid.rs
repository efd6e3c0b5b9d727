//! `invoice.paid` for a workspace whose shard is not `DB` (SPEC §9.2). The invoice lives
//! in `DB` with the inbound state; the event, its deliveries and their logs live in the
//! workspace's shard. One D1 batch cannot span two databases, so the payment's batch
//! leaves the invoice `paid` with its event `pending`, and this relay then publishes the
//! event into the shard (idempotency key `stripe:invoice.paid:<invoice id>`: at most one
//! event per invoice however often it runs) and marks the invoice published in `DB`.
//! A request that stops between the two is finished by the cron (`relay_stuck`).

use serde_json::json;
use worker::Env;

use crate::config::Config;
use crate::core::catalog::EventType;
use crate::core::inbound::views::InvoicePaidData;
use crate::delivery::fanout::{publish, PublishRequest};
use crate::delivery::{log_event, now_ms};
use crate::store::billing::{self, InvoiceLookup, PaidInvoice};
use crate::store::events::EventSource;
use crate::store::shards::Shards;

/// The internal idempotency key prefix of `invoice.paid` (one event per invoice).
pub const INVOICE_PAID_KEY_PREFIX: &str = "stripe:invoice.paid:";
/// An invoice waiting this long for its event is taken up by the cron.
const STUCK_AFTER_MS: i64 = 60_000;
/// Invoices relayed per cron run.
const MAX_RELAYED_PER_RUN: u32 = 20;

/// Publishes the event of the invoice the payment signal is about, if it awaits one;
/// returns the D1 round trips it made.
pub async fn relay(env: &Env, shards: &Shards<'_>, lookup: &InvoiceLookup<'_>) -> worker::Result<u32> {
    let directory = shards.directory()?;
    let lookups_before = shards.lookups();
    let awaiting = billing::awaiting_publication(&directory, lookup).await?;
    for invoice in &awaiting {
        relay_one(env, shards, invoice).await?;
    }
    Ok(1 + RELAY_TRIPS_PER_INVOICE * awaiting.len() as u32 + shards.lookups() - lookups_before)
}

/// D1 round trips of publishing one invoice's event, besides finding its shard: the
/// publish into the shard and the mark in the directory.
const RELAY_TRIPS_PER_INVOICE: u32 = 2;

/// The cron's part: invoices left awaiting their event by a request that stopped.
pub async fn relay_stuck(env: &Env, config: &Config) -> worker::Result<()> {
    let list = config.shards.as_ref().map_err(|reason| worker::Error::RustError(reason.clone()))?;
    let shards = Shards::new(env, list);
    let directory = shards.directory()?;
    let stuck = billing::stuck_awaiting_publication(&directory, now_ms() - STUCK_AFTER_MS, MAX_RELAYED_PER_RUN).await?;
    for invoice in &stuck {
        relay_one(env, &shards, invoice).await?;
    }
    if !stuck.is_empty() {
        log_event(json!({"msg": "invoice.paid relayed by the cron", "count": stuck.len()}));
    }
    Ok(())
}

async fn relay_one(env: &Env, shards: &Shards<'_>, invoice: &PaidInvoice) -> worker::Result<()> {
    let now = now_ms();
    let data = InvoicePaidData {
        invoice_id: &invoice.id,
        status: "paid",
        amount_paid: invoice.amount_paid,
        currency: invoice.currency.as_deref(),
        paid_at: invoice.paid_at,
        payment_provider: "stripe",
        stripe_checkout_session_id: invoice.stripe_checkout_session_id.as_deref(),
        stripe_payment_intent_id: invoice.stripe_payment_intent_id.as_deref(),
    };
    let data_json = serde_json::to_string(&data).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let key = format!("{INVOICE_PAID_KEY_PREFIX}{}", invoice.id);
    let shard = shards.for_write(&invoice.workspace_id, now).await?;
    let published = publish(
        env,
        &shard.db,
        &shard.name,
        &PublishRequest {
            workspace: &invoice.workspace_id,
            event_type: EventType::INVOICE_PAID,
            data_json: &data_json,
            idempotency_key: Some(&key),
            source: EventSource::Internal,
            now,
        },
    )
    .await?;
    billing::mark_published(&shards.directory()?, invoice, &published.event_id, now).await
}
