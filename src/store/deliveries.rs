//! The delivery engine's state changes: claiming due deliveries, recording attempts,
//! and the cron's sweep. Every transition is guarded so that a duplicate queue message,
//! a crashed consumer or a cron re-enqueue can never record an outcome twice.
//!
//! A claim bumps `attempts`, sets a lease and a claim token; only the holder of the
//! token can record the outcome, and only once (the token is cleared with it).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::rc::Rc;

use worker::{D1Database, Result};

use super::{json_ids, statement, webhooks};
use crate::core::outbound::lease::SEND_SLACK_MS;
use crate::core::outbound::sealed::RowSecrets;
use crate::core::time::UnixMillis;

/// A queued message may arrive this much before its row's `next_attempt_at`.
const EARLY_ARRIVAL_SLACK_MS: i64 = 2_000;
/// Logs (and as many events) purged per cron run at most.
const MAX_PURGE_PER_RUN: u32 = 5_000;

/// Everything needed to send one claimed delivery.
pub struct ClaimedDelivery {
    pub log_id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub url: String,
    /// The webhook's secrets and custom headers as stored (sealed); the sender opens them.
    pub at_rest: RowSecrets,
    pub timeout_ms: u32,
    /// A test delivery (`POST /webhooks/:id/test`), marked `X-Webhook-Test: true`.
    pub test: bool,
    /// Shared by every delivery of the same event in the batch.
    pub body: Rc<str>,
}

#[derive(Deserialize)]
struct ClaimedRow {
    id: String,
    webhook_id: String,
    event_type: String,
    attempts: i64,
    max_attempts: i64,
    url: String,
    secret: Option<String>,
    headers: String,
    secrets_enc: Option<String>,
    headers_enc: Option<String>,
    enc_key_id: Option<String>,
    timeout_ms: i64,
    event_id: String,
}

#[derive(Deserialize)]
struct BodyRow {
    id: String,
    body: String,
}

impl ClaimedRow {
    fn into_claimed(self, bodies: &HashMap<String, Rc<str>>) -> ClaimedDelivery {
        ClaimedDelivery {
            log_id: self.id,
            webhook_id: self.webhook_id,
            event_type: self.event_type,
            attempt: self.attempts.clamp(0, 1000) as u32,
            max_attempts: self.max_attempts.clamp(0, 1000) as u32,
            url: self.url,
            at_rest: RowSecrets {
                secret: self.secret,
                headers: self.headers,
                secrets_enc: self.secrets_enc,
                headers_enc: self.headers_enc,
                enc_key_id: self.enc_key_id,
            },
            timeout_ms: self.timeout_ms.clamp(1000, 30_000) as u32,
            test: false,
            body: bodies.get(&self.event_id).cloned().unwrap_or_else(|| Rc::from("{}")),
        }
    }
}

/// Statements in the claim batch.
pub const CLAIM_STATEMENTS: usize = 4;

/// The lease of a claim (see `core::outbound::lease`): rounds of sends and the margin.
pub struct LeaseTerms {
    pub rounds: i64,
    pub margin_ms: i64,
}

/// In one round trip: fail the deliveries whose webhook was deactivated, claim the due
/// ones among `ids` for this invocation (`token`) under a lease that covers the whole
/// batch, and load what sending them needs. Rows that are final, gone, not due or leased
/// elsewhere are simply not returned.
pub async fn claim(db: &D1Database, ids: &[String], token: &str, now: UnixMillis, lease: &LeaseTerms) -> Result<Vec<ClaimedDelivery>> {
    let ids_json = json_ids(ids);
    let results = db
        .batch(vec![
            statement(
                db,
                "UPDATE delivery_logs SET status = 'failed', error = 'webhook was deactivated before delivery', \
                   next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?2 \
                 WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending' \
                   AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = delivery_logs.webhook_id AND w.active = 1)",
                &[&ids_json, &now],
            )?,
            statement(
                db,
                // `lease::batch_lease_ms` evaluated with the batch's largest timeout.
                "UPDATE delivery_logs SET attempts = attempts + 1, claim_token = ?3, updated_at = ?2, \
                   lease_until = ?2 + ?7 + ?5 * (?6 + COALESCE((SELECT MAX(w.timeout_ms) \
                     FROM delivery_logs d JOIN webhooks w ON w.id = d.webhook_id \
                     WHERE d.id IN (SELECT value FROM json_each(?1))), 30000)) \
                 WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending' \
                   AND attempts < max_attempts \
                   AND (next_attempt_at IS NULL OR next_attempt_at <= ?2 + ?4) \
                   AND (lease_until IS NULL OR lease_until < ?2)",
                &[&ids_json, &now, &token, &EARLY_ARRIVAL_SLACK_MS, &lease.rounds, &SEND_SLACK_MS, &lease.margin_ms],
            )?,
            statement(
                db,
                "SELECT l.id, l.webhook_id, l.event_type, l.attempts, l.max_attempts, \
                   w.url, w.secret, w.headers, w.secrets_enc, w.headers_enc, w.enc_key_id, w.timeout_ms, l.event_id \
                 FROM delivery_logs l JOIN webhooks w ON w.id = l.webhook_id \
                 WHERE l.claim_token = ?1",
                &[&token],
            )?,
            // Each event body once, however many deliveries of the batch share it.
            statement(
                db,
                "SELECT id, body FROM events WHERE id IN \
                   (SELECT DISTINCT event_id FROM delivery_logs WHERE claim_token = ?1)",
                &[&token],
            )?,
        ])
        .await?;
    let (Some(rows), Some(bodies)) = (results.get(2), results.get(3)) else {
        return Ok(Vec::new());
    };
    let bodies: HashMap<String, Rc<str>> =
        bodies.results::<BodyRow>()?.into_iter().map(|b| (b.id, Rc::from(b.body))).collect();
    Ok(rows.results::<ClaimedRow>()?.into_iter().map(|r| r.into_claimed(&bodies)).collect())
}

/// The outcome of one claimed attempt, ready to be written.
#[derive(Serialize)]
pub struct AttemptOutcome<'a> {
    pub log_id: &'a str,
    #[serde(skip)]
    pub webhook_id: &'a str,
    pub attempt: u32,
    pub attempted_at: UnixMillis,
    pub status: &'static str,
    pub response_status: Option<u16>,
    pub response_body: Option<&'a str>,
    pub error: Option<String>,
    pub duration_ms: u32,
    pub next_attempt_at: Option<UnixMillis>,
    /// Set when the receiver answered 410 Gone.
    #[serde(skip)]
    pub disable_reason: Option<&'a str>,
}

/// Statements per `record` call, plus one per disabled webhook.
pub const RECORD_STATEMENTS: usize = 2;

/// Writes every outcome of a batch in one D1 round trip of two statements, whatever the
/// batch size: the outcomes travel as one JSON parameter. Only the holder of `token` can
/// write, and only once (the token is cleared with the outcome).
pub async fn record(db: &D1Database, token: &str, outcomes: &[AttemptOutcome<'_>], now: UnixMillis) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(outcomes).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut statements = vec![
        statement(
            db,
            "INSERT OR IGNORE INTO delivery_attempts (log_id, attempt, attempted_at, response_status, error, duration_ms, \
               response_body) \
             SELECT json_extract(o.value, '$.log_id'), json_extract(o.value, '$.attempt'), \
               json_extract(o.value, '$.attempted_at'), json_extract(o.value, '$.response_status'), \
               json_extract(o.value, '$.error'), json_extract(o.value, '$.duration_ms'), \
               json_extract(o.value, '$.response_body') \
             FROM json_each(?1) o JOIN delivery_logs l ON l.id = json_extract(o.value, '$.log_id') \
             WHERE l.claim_token = ?2",
            &[&json, &token],
        )?,
        statement(
            db,
            "UPDATE delivery_logs SET status = json_extract(o.value, '$.status'), \
               response_status = json_extract(o.value, '$.response_status'), \
               response_body = json_extract(o.value, '$.response_body'), error = json_extract(o.value, '$.error'), \
               duration_ms = json_extract(o.value, '$.duration_ms'), \
               next_attempt_at = json_extract(o.value, '$.next_attempt_at'), \
               lease_until = NULL, claim_token = NULL, updated_at = ?3 \
             FROM json_each(?1) o \
             WHERE delivery_logs.id = json_extract(o.value, '$.log_id') AND delivery_logs.claim_token = ?2",
            &[&json, &token, &now],
        )?,
    ];
    for o in outcomes {
        if let Some(reason) = o.disable_reason {
            statements.push(webhooks::disable_statement(db, o.webhook_id, reason, now)?);
        }
    }
    db.batch(statements).await.map(|_| ())
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

/// What the cron found and did.
pub struct SweepReport {
    pub overdue_ids: Vec<String>,
    pub interrupted_failed: usize,
    pub purged_logs: usize,
}

/// Cron housekeeping in one batch: fail deliveries interrupted after their last attempt,
/// list overdue pending deliveries to re-enqueue, purge logs past retention.
pub async fn sweep(db: &D1Database, now: UnixMillis, grace_ms: i64, retention_cutoff: UnixMillis, limit: u32) -> Result<SweepReport> {
    let results = db
        .batch(vec![
            statement(
                db,
                "UPDATE delivery_logs SET status = 'failed', \
                   error = COALESCE(error, 'delivery interrupted during its last attempt'), \
                   next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?1 \
                 WHERE status = 'pending' AND attempts >= max_attempts \
                   AND (lease_until IS NULL OR lease_until < ?1)",
                &[&now],
            )?,
            statement(
                db,
                "SELECT id FROM delivery_logs WHERE status = 'pending' AND next_attempt_at <= ?1 \
                   AND (lease_until IS NULL OR lease_until < ?2) ORDER BY next_attempt_at LIMIT ?3",
                &[&(now - grace_ms), &now, &limit],
            )?,
            // Purges are bounded per run (oldest first) so a large backlog drains over
            // several minutes instead of one statement that outlives D1's limits.
            statement(
                db,
                "DELETE FROM delivery_attempts WHERE log_id IN (SELECT id FROM delivery_logs \
                   WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
                &[&retention_cutoff, &MAX_PURGE_PER_RUN],
            )?,
            statement(
                db,
                "DELETE FROM delivery_logs WHERE id IN (SELECT id FROM delivery_logs \
                   WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
                &[&retention_cutoff, &MAX_PURGE_PER_RUN],
            )?,
            statement(
                db,
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < ?1 AND created_at < ?2 \
                   AND NOT EXISTS (SELECT 1 FROM delivery_logs l WHERE l.event_id = events.id) LIMIT ?3)",
                &[&retention_cutoff, &(now - crate::core::time::MS_PER_DAY), &MAX_PURGE_PER_RUN],
            )?,
        ])
        .await?;
    let interrupted_failed = results.first().map(super::changes).unwrap_or(0);
    let overdue_ids = match results.get(1) {
        Some(r) => r.results::<IdRow>()?.into_iter().map(|r| r.id).collect(),
        None => Vec::new(),
    };
    let purged_logs = results.get(3).map(super::changes).unwrap_or(0);
    Ok(SweepReport { overdue_ids, interrupted_failed, purged_logs })
}

/// Messages the queue gave up on: their deliveries end `failed`, never silently.
pub async fn fail_dead_lettered(db: &D1Database, ids: &[String], now: UnixMillis) -> Result<usize> {
    let result = statement(
        db,
        "UPDATE delivery_logs SET status = 'failed', \
           error = 'dead-lettered: the queue gave up redelivering this message', \
           next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?2 \
         WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending' \
           AND (lease_until IS NULL OR lease_until < ?2)",
        &[&json_ids(ids), &now],
    )?
    .run()
    .await?;
    Ok(super::changes(&result))
}
