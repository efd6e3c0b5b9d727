//! The lanes of scheduled endpoints (SPEC §9.3): what an endpoint's scheduler reads
//! before each step, and the writes around it. D1 is the source of truth for what is
//! pending and in which order (the log's `scheduled` position, given at insert); the
//! Durable Object keeps only its rate limit's bucket.

use serde::Deserialize;
use worker::Result;

use super::{changes, statement, Db};
use crate::core::outbound::fifo::{LaneRow, LEASE_POLL_MS};
use crate::core::outbound::pacing::Pacing;
use crate::core::time::UnixMillis;

/// The `scheduled` column of a new log of webhook `w` (an `INSERT … SELECT` over `w`)
/// created at `now` (an SQL expression): `NULL` unless the webhook is scheduled, else
/// its position in the lane, after every pending one. The table has no rowid (migration
/// 0008) and its time-ordered ids tie within a millisecond, so publish order is kept
/// here: the creation time, or one past the lane's last position if that is later (a
/// look-up of the lane index's last entry, one row read).
pub fn scheduled_w(now: &str) -> String {
    format!("CASE WHEN {PACED_W} THEN {} END", lane_position_w(now))
}

/// Webhook `w` is paced: its deliveries go through its endpoint's scheduler. The partial
/// index `webhooks_paced` (migration 0018) holds exactly these webhooks.
pub const PACED_W: &str = "(w.ordering = 'fifo' OR w.rate_limit_per_second IS NOT NULL)";

/// Webhook `w` is not paced (`ordering` is never NULL).
pub const UNPACED_W: &str = "w.ordering <> 'fifo' AND w.rate_limit_per_second IS NULL";

/// A new log's position in paced webhook `w`'s lane (see [`scheduled_w`]). It reads
/// `delivery_logs`: an `INSERT INTO delivery_logs … SELECT` using it is run over paced
/// webhooks only, or SQLite copies its whole select into a temporary table first.
pub fn lane_position_w(now: &str) -> String {
    format!(
        "MAX({now}, 1 + COALESCE( \
           (SELECT MAX(q.scheduled) FROM delivery_logs q INDEXED BY logs_lane \
            WHERE q.webhook_id = w.id AND q.scheduled IS NOT NULL AND q.status = 'pending'), 0))"
    )
}

/// What a scheduler needs for its next step.
pub struct Lane {
    /// `None`: the webhook is gone.
    pub webhook: Option<LaneWebhook>,
    /// FIFO: the head, due or not; otherwise the pending deliveries ready now, in order.
    pub rows: Vec<LaneRow>,
}

pub struct LaneWebhook {
    pub active: bool,
    pub pacing: Pacing,
}

#[derive(Deserialize)]
struct WebhookRow {
    active: i64,
    rate_limit_per_second: Option<i64>,
    ordering: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    next_attempt_at: Option<i64>,
    lease_until: Option<i64>,
}

#[derive(Deserialize)]
struct AtRow {
    at: Option<i64>,
}

#[derive(Deserialize)]
struct IdRow {
    webhook_id: String,
}

/// Reads the webhook's pacing and its lane in one round trip: up to `max` rows (FIFO
/// lanes read one, their head).
pub async fn read(db: &Db, webhook_id: &str, now: UnixMillis, max: u32) -> Result<Lane> {
    let results = db
        .batch(vec![
            statement(db, "SELECT active, rate_limit_per_second, ordering FROM webhooks WHERE id = ?1", &[&webhook_id])?,
            statement(
                db,
                "SELECT id, next_attempt_at, lease_until FROM delivery_logs INDEXED BY logs_lane \
                 WHERE webhook_id = ?1 AND scheduled IS NOT NULL AND status = 'pending' \
                   AND ((SELECT ordering FROM webhooks WHERE id = ?1) = 'fifo' \
                     OR ((next_attempt_at IS NULL OR next_attempt_at <= ?2) AND (lease_until IS NULL OR lease_until < ?2))) \
                 ORDER BY scheduled, id \
                 LIMIT CASE WHEN (SELECT ordering FROM webhooks WHERE id = ?1) = 'fifo' THEN 1 ELSE ?3 END",
                &[&webhook_id, &now, &max],
            )?,
        ])
        .await?;
    let webhook = match results.first() {
        Some(r) => r.results::<WebhookRow>()?.into_iter().next().map(|w| LaneWebhook {
            active: w.active != 0,
            pacing: Pacing::from_stored(w.rate_limit_per_second, w.ordering.as_deref()),
        }),
        None => None,
    };
    let rows = match results.get(1) {
        Some(r) => r.results::<Row>()?.into_iter().map(|r| LaneRow { id: r.id, due_at: r.next_attempt_at, leased_until: r.lease_until }).collect(),
        None => Vec::new(),
    };
    Ok(Lane { webhook, rows })
}

/// When the first pending delivery of an unordered lane becomes ready (none is now); a
/// lease counts for at most [`LEASE_POLL_MS`] (a consumer handing a delivery over holds
/// it only briefly). `None`: nothing pending.
pub async fn next_ready(db: &Db, webhook_id: &str, now: UnixMillis) -> Result<Option<UnixMillis>> {
    let row: Option<AtRow> = db
        .first(statement(
            db,
            "SELECT MIN(CASE WHEN lease_until >= ?2 THEN MIN(lease_until + 1, ?2 + ?3) ELSE COALESCE(next_attempt_at, ?2) END) AS at \
             FROM delivery_logs INDEXED BY logs_lane WHERE webhook_id = ?1 AND scheduled IS NOT NULL AND status = 'pending'",
            &[&webhook_id, &now, &LEASE_POLL_MS],
        )?)
        .await?;
    Ok(row.and_then(|r| r.at))
}

/// Ends the lane of a deactivated webhook as SPEC §4.5 ends pending deliveries of an
/// inactive one: `failed`, without sending (leased rows are left to their holder).
pub async fn fail_inactive(db: &Db, webhook_id: &str, now: UnixMillis) -> Result<usize> {
    let result = db
        .run(statement(
            db,
            "UPDATE delivery_logs SET status = 'failed', error = 'webhook was deactivated before delivery', \
               next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?2 \
             WHERE webhook_id = ?1 AND scheduled IS NOT NULL AND status = 'pending' AND (lease_until IS NULL OR lease_until < ?2) \
               AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = ?1 AND w.active = 1)",
            &[&webhook_id, &now],
        )?)
        .await?;
    Ok(changes(&result))
}

/// A webhook that became scheduled takes over its pending deliveries (test deliveries
/// excepted: their request sends them), each at its creation time in the lane.
pub async fn adopt_pending(db: &Db, webhook_id: &str) -> Result<usize> {
    let result = db
        .run(statement(
            db,
            "UPDATE delivery_logs SET scheduled = created_at WHERE webhook_id = ?1 AND status = 'pending' AND test = 0 \
               AND scheduled IS NULL",
            &[&webhook_id],
        )?)
        .await?;
    Ok(changes(&result))
}

/// Webhooks whose lanes hold deliveries overdue by `grace_ms`: the cron wakes their
/// schedulers (after a crash, a lost alarm or a lost wake-up), at most `limit` of them.
/// A delivery whose message was lost gets its due time from the sweep's walk.
pub async fn overdue_lanes(db: &Db, now: UnixMillis, grace_ms: i64, limit: u32) -> Result<Vec<String>> {
    let rows: Vec<IdRow> = db
        .all(statement(
            db,
            "SELECT DISTINCT webhook_id FROM delivery_logs INDEXED BY logs_due WHERE next_attempt_at IS NOT NULL \
               AND next_attempt_at <= ?1 AND status = 'pending' AND scheduled IS NOT NULL \
               AND (lease_until IS NULL OR lease_until < ?2) LIMIT ?3",
            &[&(now - grace_ms), &now, &limit],
        )?)
        .await?
        .results()?;
    Ok(rows.into_iter().map(|r| r.webhook_id).collect())
}
