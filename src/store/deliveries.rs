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
use crate::core::outbound::health::Health;
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
    /// The webhook sends `X-Webhook-Signature` (its `legacy_signature`).
    pub legacy_signature: bool,
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
    workspace_id: String,
    #[serde(default)]
    test: i64,
    #[serde(default = "one")]
    legacy_signature: i64,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
struct BodyRow {
    id: String,
    body: String,
}

impl ClaimedRow {
    fn into_claimed(self, bodies: &HashMap<String, Rc<str>>) -> (ClaimedDelivery, ClaimMeta) {
        let meta = ClaimMeta { workspace: self.workspace_id, event_id: self.event_id.clone() };
        let claimed = ClaimedDelivery {
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
            test: self.test != 0,
            legacy_signature: self.legacy_signature != 0,
            body: bodies.get(&self.event_id).cloned().unwrap_or_else(|| Rc::from("{}")),
        };
        (claimed, meta)
    }
}

/// What the consumer needs of a claimed delivery beyond sending it.
pub struct ClaimMeta {
    pub workspace: String,
    pub event_id: String,
}

/// A webhook's health as the claim (or a re-read) found it.
#[derive(Clone)]
pub struct WebhookHealth {
    pub name: String,
    pub url: String,
    pub workspace: String,
    pub active: bool,
    pub health: Health,
    /// `health_version` read: the write back is guarded by it.
    pub version: i64,
    /// This claim took the webhook's half-open probe slot.
    pub holds_probe: bool,
}

#[derive(Deserialize)]
struct HealthRowRead {
    id: String,
    name: String,
    url: String,
    workspace_id: String,
    active: i64,
    consecutive_failures: i64,
    failing_since: Option<i64>,
    last_success_at: Option<i64>,
    last_failure_at: Option<i64>,
    breaker_open_until: Option<i64>,
    breaker_opens: i64,
    health_version: i64,
    holds_probe: Option<i64>,
}

impl HealthRowRead {
    fn into_pair(self) -> (String, WebhookHealth) {
        let health = webhooks::health_of(self.consecutive_failures, self.failing_since, self.last_success_at,
                                         self.last_failure_at, self.breaker_open_until, self.breaker_opens);
        (self.id, WebhookHealth {
            name: self.name,
            url: self.url,
            workspace: self.workspace_id,
            active: self.active != 0,
            health,
            version: self.health_version,
            holds_probe: self.holds_probe.unwrap_or(0) != 0,
        })
    }
}

const HEALTH_SELECT: &str = "SELECT id, name, url, workspace_id, active, consecutive_failures, failing_since, \
    last_success_at, last_failure_at, breaker_open_until, breaker_opens, health_version, \
    (probe_token IS NOT NULL AND probe_token = ?2) AS holds_probe FROM webhooks";

/// A claim: the deliveries to send (with their metadata, same order) and the health of
/// their webhooks.
pub struct Claim {
    pub deliveries: Vec<ClaimedDelivery>,
    pub meta: Vec<ClaimMeta>,
    pub webhooks: HashMap<String, WebhookHealth>,
}

/// Statements in the claim batch.
pub const CLAIM_STATEMENTS: usize = 6;

/// The lease of a claim (see `core::outbound::lease`): rounds of sends and the margin.
pub struct LeaseTerms {
    pub rounds: i64,
    pub margin_ms: i64,
}

/// Which deliveries a claim takes: those a queue batch names, or those of an event just
/// published (a direct send), if it has at most `max` of them.
#[derive(Clone, Copy)]
pub enum ClaimScope<'a> {
    Ids(&'a [String]),
    Event { id: &'a str, max: usize },
}

impl ClaimScope<'_> {
    /// The scope's first parameter: the ids as JSON, or the event id.
    fn param(&self) -> String {
        match self {
            ClaimScope::Ids(ids) => json_ids(ids),
            ClaimScope::Event { id, .. } => (*id).to_string(),
        }
    }

    /// A subquery of the delivery ids in scope, reading parameter `?{n}`.
    fn ids_sql(&self, n: u8) -> String {
        match self {
            ClaimScope::Ids(_) => format!("SELECT value FROM json_each(?{n})"),
            ClaimScope::Event { .. } => format!("SELECT id FROM delivery_logs WHERE event_id = ?{n}"),
        }
    }

    /// A condition on the whole scope, reading parameter `?{n}`: an event with more
    /// deliveries than `max` is left to the queue.
    fn guard_sql(&self, n: u8) -> String {
        match self {
            ClaimScope::Ids(_) => String::new(),
            ClaimScope::Event { max, .. } => format!(" AND (SELECT COUNT(*) FROM delivery_logs WHERE event_id = ?{n}) <= {max}"),
        }
    }
}

/// The claim's statements, to run in one batch (alone, or after a publish): fail the
/// deliveries in scope whose webhook was deactivated, claim the due ones for this
/// invocation (`token`) under a lease that covers the whole batch, take the probe slot of
/// each half-open webhook among them that no live consumer holds, and load what sending
/// them needs with their webhooks' health. Rows that are final, gone, not due or leased
/// elsewhere are simply not returned. Read the results with [`read_claim`].
pub fn claim_statements(db: &D1Database, scope: ClaimScope<'_>, token: &str, now: UnixMillis, lease: &LeaseTerms)
    -> Result<Vec<worker::D1PreparedStatement>> {
    let param = scope.param();
    let (ids1, ids2) = (scope.ids_sql(1), scope.ids_sql(2));
    Ok(vec![
        statement(
            db,
            &format!("UPDATE delivery_logs SET status = 'failed', error = 'webhook was deactivated before delivery', \
               next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?2 \
             WHERE id IN ({ids1}) AND status = 'pending' \
               AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = delivery_logs.webhook_id AND w.active = 1)"),
            &[&param, &now],
        )?,
        statement(
            db,
            // `lease::batch_lease_ms` evaluated with the batch's largest timeout.
            &format!("UPDATE delivery_logs SET attempts = attempts + 1, claim_token = ?3, updated_at = ?2, \
               lease_until = ?2 + ?7 + ?5 * (?6 + COALESCE((SELECT MAX(w.timeout_ms) \
                 FROM delivery_logs d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.id IN ({ids1})), 30000)) \
             WHERE id IN ({ids1}) AND status = 'pending' \
               AND attempts < max_attempts \
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?2 + ?4) \
               AND (lease_until IS NULL OR lease_until < ?2){}", scope.guard_sql(1)),
            &[&param, &now, &token, &EARLY_ARRIVAL_SLACK_MS, &lease.rounds, &SEND_SLACK_MS, &lease.margin_ms],
        )?,
        // Half-open breakers: one consumer at a time probes, until its lease ends.
        statement(
            db,
            &format!("UPDATE webhooks SET probe_token = ?2, probe_until = (SELECT MAX(lease_until) FROM delivery_logs \
                 WHERE id IN ({ids1}) AND claim_token = ?2) \
             WHERE id IN (SELECT webhook_id FROM delivery_logs \
                 WHERE id IN ({ids1}) AND claim_token = ?2) \
               AND breaker_open_until IS NOT NULL AND breaker_open_until <= ?3 \
               AND (probe_until IS NULL OR probe_until < ?3)"),
            &[&param, &token, &now],
        )?,
        statement(
            db,
            &format!("SELECT l.id, l.webhook_id, l.event_type, l.attempts, l.max_attempts, \
               w.url, w.secret, w.headers, w.secrets_enc, w.headers_enc, w.enc_key_id, w.timeout_ms, l.event_id, \
               l.workspace_id, l.test, w.legacy_signature \
             FROM delivery_logs l JOIN webhooks w ON w.id = l.webhook_id \
             WHERE l.id IN ({ids2}) AND l.claim_token = ?1"),
            &[&token, &param],
        )?,
        // Each event body once, however many deliveries of the batch share it.
        statement(
            db,
            &format!("SELECT id, body FROM events WHERE id IN (SELECT DISTINCT event_id FROM delivery_logs \
               WHERE id IN ({ids2}) AND claim_token = ?1)"),
            &[&token, &param],
        )?,
        statement(
            db,
            &format!("{HEALTH_SELECT} WHERE id IN (SELECT webhook_id FROM delivery_logs \
               WHERE id IN ({ids1}) AND claim_token = ?2)"),
            &[&param, &token],
        )?,
    ])
}

/// Reads a claim from the results of its [`CLAIM_STATEMENTS`] statements.
pub fn read_claim(results: &[worker::D1Result]) -> Result<Claim> {
    let (Some(rows), Some(bodies), Some(health)) = (results.get(3), results.get(4), results.get(5)) else {
        return Ok(Claim { deliveries: Vec::new(), meta: Vec::new(), webhooks: HashMap::new() });
    };
    let bodies: HashMap<String, Rc<str>> =
        bodies.results::<BodyRow>()?.into_iter().map(|b| (b.id, Rc::from(b.body))).collect();
    let (deliveries, meta) = rows.results::<ClaimedRow>()?.into_iter().map(|r| r.into_claimed(&bodies)).unzip();
    let webhooks = health.results::<HealthRowRead>()?.into_iter().map(HealthRowRead::into_pair).collect();
    Ok(Claim { deliveries, meta, webhooks })
}

/// Claims the due deliveries among `ids` in one round trip ([`claim_statements`]).
pub async fn claim(db: &D1Database, ids: &[String], token: &str, now: UnixMillis, lease: &LeaseTerms) -> Result<Claim> {
    let results = db.batch(claim_statements(db, ClaimScope::Ids(ids), token, now, lease)?).await?;
    read_claim(&results)
}

/// Re-reads the health of `webhook_ids` (after a guarded write found it changed).
pub async fn read_health(db: &D1Database, webhook_ids: &[String], token: &str) -> Result<HashMap<String, WebhookHealth>> {
    let rows: Vec<HealthRowRead> =
        statement(db, &format!("{HEALTH_SELECT} WHERE id IN (SELECT value FROM json_each(?1))"), &[&json_ids(webhook_ids), &token])?
            .all()
            .await?
            .results()?;
    Ok(rows.into_iter().map(HealthRowRead::into_pair).collect())
}

/// A webhook's new health, written only if its `health_version` is still `version`.
pub struct HealthWrite {
    pub id: String,
    pub version: i64,
    pub health: Health,
    /// This batch probed: free the slot.
    pub release_probe: bool,
    /// Auto-disable, with the reason.
    pub disable_reason: Option<String>,
}

impl HealthWrite {
    pub fn new(id: &str, version: i64, h: &Health, release_probe: bool, disable_reason: Option<String>) -> Self {
        HealthWrite { id: id.to_string(), version, health: h.clone(), release_probe, disable_reason }
    }
}

/// One health write as a JSON row of [`health_write_statement`]'s parameter.
#[derive(Serialize)]
struct HealthWriteRow<'a> {
    id: &'a str,
    version: i64,
    consecutive_failures: u32,
    failing_since: Option<UnixMillis>,
    last_success_at: Option<UnixMillis>,
    last_failure_at: Option<UnixMillis>,
    breaker_open_until: Option<UnixMillis>,
    breaker_opens: u32,
    release_probe: u8,
    disable_reason: Option<&'a str>,
}

/// Every health write of a batch in one statement (the writes travel as one JSON
/// parameter): each row lands only if its webhook's `health_version` is still the one
/// read, and `RETURNING` names those that landed. One statement instead of one per
/// webhook: each statement costs the worker a prepared statement and a result object,
/// and D1 a query.
fn health_write_statement(db: &D1Database, token: &str, writes: &[HealthWrite], now: UnixMillis) -> Result<worker::D1PreparedStatement> {
    let rows: Vec<HealthWriteRow<'_>> = writes
        .iter()
        .map(|w| HealthWriteRow {
            id: &w.id,
            version: w.version,
            consecutive_failures: w.health.consecutive_failures,
            failing_since: w.health.failing_since,
            last_success_at: w.health.last_success_at,
            last_failure_at: w.health.last_failure_at,
            breaker_open_until: w.health.breaker_open_until,
            breaker_opens: w.health.breaker_opens,
            release_probe: u8::from(w.release_probe),
            disable_reason: w.disable_reason.as_deref(),
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|e| worker::Error::RustError(e.to_string()))?;
    statement(
        db,
        "UPDATE webhooks SET consecutive_failures = json_extract(h.value, '$.consecutive_failures'), \
           failing_since = json_extract(h.value, '$.failing_since'), \
           last_success_at = json_extract(h.value, '$.last_success_at'), \
           last_failure_at = json_extract(h.value, '$.last_failure_at'), \
           breaker_open_until = json_extract(h.value, '$.breaker_open_until'), \
           breaker_opens = json_extract(h.value, '$.breaker_opens'), \
           probe_until = CASE WHEN json_extract(h.value, '$.release_probe') = 1 AND probe_token = ?2 THEN NULL ELSE probe_until END, \
           probe_token = CASE WHEN json_extract(h.value, '$.release_probe') = 1 AND probe_token = ?2 THEN NULL ELSE probe_token END, \
           active = CASE WHEN json_extract(h.value, '$.disable_reason') IS NOT NULL THEN 0 ELSE active END, \
           disabled_reason = COALESCE(json_extract(h.value, '$.disable_reason'), disabled_reason), \
           updated_at = CASE WHEN json_extract(h.value, '$.disable_reason') IS NOT NULL THEN ?3 ELSE updated_at END, \
           health_version = health_version + 1 \
         FROM json_each(?1) h \
         WHERE webhooks.id = json_extract(h.value, '$.id') AND webhooks.health_version = json_extract(h.value, '$.version') \
         RETURNING webhooks.id AS id",
        &[&json, &token, &now],
    )
}

/// The ids a [`health_write_statement`] wrote.
fn health_written(result: &worker::D1Result) -> Result<Vec<String>> {
    Ok(result.results::<IdRow>()?.into_iter().map(|r| r.id).collect())
}

/// Writes health alone (a retry after a guarded write found the row changed); returns
/// the ids written.
pub async fn write_health(db: &D1Database, token: &str, writes: &[HealthWrite], now: UnixMillis) -> Result<Vec<String>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    health_written(&health_write_statement(db, token, writes, now)?.all().await?)
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

/// A claimed delivery sent back unsent (its breaker is open): the claim's attempt is
/// given back and it falls due at `until`.
#[derive(Serialize)]
pub struct Postponed<'a> {
    pub log_id: &'a str,
    pub until: UnixMillis,
}

/// Statements per `record_batch` call, plus one for the health writes (if any) and one
/// per webhook disabled by a 410.
pub const RECORD_STATEMENTS: usize = 3;

/// What a record batch changed on webhooks.
#[derive(Default)]
pub struct RecordedBatch {
    /// Webhooks whose health write landed (the others changed meanwhile).
    pub health_written: Vec<String>,
    /// Webhooks this batch disabled because a receiver answered 410.
    pub disabled_by_gone: Vec<String>,
}

/// Writes every outcome of a test delivery (one claimed attempt, no health).
pub async fn record(db: &D1Database, token: &str, outcomes: &[AttemptOutcome<'_>], now: UnixMillis) -> Result<()> {
    record_batch(db, token, outcomes, &[], &[], now).await.map(|_| ())
}

/// Writes every outcome of a batch in one D1 round trip, whatever the batch size: the
/// outcomes, the postponed deliveries and the health writes travel as JSON parameters.
/// Only the holder of `token` can write outcomes, and only once (the token is cleared
/// with the outcome); a health write lands only if its row's version is unchanged.
pub async fn record_batch(
    db: &D1Database,
    token: &str,
    outcomes: &[AttemptOutcome<'_>],
    postponed: &[Postponed<'_>],
    health: &[HealthWrite],
    now: UnixMillis,
) -> Result<RecordedBatch> {
    if outcomes.is_empty() && postponed.is_empty() {
        return Ok(RecordedBatch::default());
    }
    let json = serde_json::to_string(outcomes).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let postponed_json = serde_json::to_string(postponed).map_err(|e| worker::Error::RustError(e.to_string()))?;
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
        statement(
            db,
            "UPDATE delivery_logs SET attempts = attempts - 1, next_attempt_at = json_extract(p.value, '$.until'), \
               lease_until = NULL, claim_token = NULL, updated_at = ?3 \
             FROM json_each(?1) p \
             WHERE delivery_logs.id = json_extract(p.value, '$.log_id') AND delivery_logs.claim_token = ?2",
            &[&postponed_json, &token, &now],
        )?,
    ];
    if !health.is_empty() {
        statements.push(health_write_statement(db, token, health, now)?);
    }
    let gone: Vec<&AttemptOutcome<'_>> = outcomes.iter().filter(|o| o.disable_reason.is_some()).collect();
    for o in &gone {
        if let Some(reason) = o.disable_reason {
            statements.push(webhooks::disable_statement(db, o.webhook_id, reason, now)?);
        }
    }
    let results = db.batch(statements).await?;
    // `changes` of each guarded statement says whether it applied.
    let landed = |i: usize| results.get(i).map(super::changes).unwrap_or(0) > 0;
    let health_statements = usize::from(!health.is_empty());
    let health_written = match results.get(RECORD_STATEMENTS) {
        Some(r) if health_statements > 0 => health_written(r)?,
        _ => Vec::new(),
    };
    let disabled_by_gone = gone
        .iter()
        .enumerate()
        .filter(|(i, _)| landed(RECORD_STATEMENTS + health_statements + i))
        .map(|(_, o)| o.webhook_id.to_string())
        .collect();
    Ok(RecordedBatch { health_written, disabled_by_gone })
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
