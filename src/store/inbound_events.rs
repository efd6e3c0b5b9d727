//! The dedupe record of inbound provider events: one row per (source, event id).
//!
//! The row is written in the same D1 batch as the state the event changes (or after the
//! follow-up it needs succeeded), so a recorded event is always fully applied and a
//! failed one is retried by the provider in full.

use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement, Result};

use super::statement;
use crate::core::time::UnixMillis;

/// Which endpoint an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundSource {
    Stripe,
    StripeConnect,
    Resend,
}

impl InboundSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::StripeConnect => "stripe_connect",
            Self::Resend => "resend",
        }
    }
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Acknowledged without a state change, with the reason.
    Ignored(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Ignored(_) => "ignored",
        }
    }
}

pub struct InboundRecord<'a> {
    pub source: InboundSource,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub workspace: Option<&'a str>,
    pub outcome: &'a Outcome,
    pub now: UnixMillis,
}

#[derive(Deserialize)]
struct Seen {
    #[allow(dead_code)]
    outcome: String,
}

/// Whether this event was already recorded.
pub async fn seen(db: &D1Database, source: InboundSource, event_id: &str) -> Result<bool> {
    let row = statement(
        db,
        "SELECT outcome FROM inbound_events WHERE source = ?1 AND event_id = ?2",
        &[&source.as_str(), &event_id],
    )?
    .first::<Seen>(None)
    .await?;
    Ok(row.is_some())
}

/// Records the event; a concurrent duplicate that got here first wins silently.
pub fn record(db: &D1Database, r: &InboundRecord<'_>) -> Result<D1PreparedStatement> {
    let detail = match r.outcome {
        Outcome::Applied => None,
        Outcome::Ignored(reason) => Some(reason.as_str()),
    };
    statement(
        db,
        "INSERT INTO inbound_events (source, event_id, event_type, outcome, detail, workspace_id, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        &[&r.source.as_str(), &r.event_id, &r.event_type, &r.outcome.as_str(), &detail, &r.workspace, &r.now],
    )
}
