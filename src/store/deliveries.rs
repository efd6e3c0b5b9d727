//! The delivery engine's state changes: claiming due deliveries, recording attempts,
//! and the cron's sweep. Every transition is guarded so that a duplicate queue message,
//! a crashed consumer or a cron re-enqueue can never record an outcome twice.
//!
//! A claim bumps `attempts`, sets a lease and a claim token; only the holder of the
//! token can record the outcome, and only once (the token is cleared with it).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::rc::Rc;

use worker::Result;

use super::{json_ids, statement, webhooks, Db};
use crate::core::outbound::asymmetric::Signing;
use crate::core::outbound::health::Health;
use crate::core::outbound::lease::SEND_SLACK_MS;
use crate::core::outbound::rollup::{bucket, hour_of, BUCKETS};
use crate::core::outbound::webhook::TIMEOUT_MS_MAX;
use crate::core::outbound::sealed::RowSecrets;
use crate::core::ids::{delivery_id_time, DELIVERY_PREFIX};
use crate::core::outbound::rollup::MS_PER_HOUR;
use crate::core::time::{UnixMillis, MS_PER_DAY};

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
    /// `webhook-signature`'s scheme (the webhook's `signing`).
    pub signing: Signing,
    /// Its endpoint's scheduler sends it (SPEC §9.3), not a queue batch.
    pub scheduled: bool,
    /// Shared by every delivery of the same event in the batch.
    pub body: Rc<str>,
}

/// A claimed log row, as the claim's `RETURNING` gives it.
#[derive(Deserialize)]
struct ClaimedRow {
    id: String,
    webhook_id: String,
    event_id: String,
    event_type: String,
    attempts: i64,
    max_attempts: i64,
    workspace_id: String,
    #[serde(default)]
    test: i64,
    /// Its position in its endpoint's lane (SPEC §9.3); `None`: not scheduled.
    #[serde(default)]
    scheduled: Option<i64>,
    /// The row's webhook as a JSON object (`WEBHOOK_JSON`); `None` if it is gone.
    webhook: Option<String>,
}

fn one() -> i64 {
    1
}

#[derive(Deserialize)]
struct BodyRow {
    id: String,
    body: String,
}

/// What sending needs of a webhook, read once per webhook of the batch.
struct SendingRow {
    url: String,
    secret: Option<String>,
    headers: String,
    secrets_enc: Option<String>,
    headers_enc: Option<String>,
    enc_key_id: Option<String>,
    timeout_ms: i64,
    legacy_signature: i64,
    signing: Option<String>,
}

impl ClaimedRow {
    fn into_claimed(self, webhook: &SendingRow, bodies: &HashMap<String, Rc<str>>) -> (ClaimedDelivery, ClaimMeta) {
        let meta = ClaimMeta { workspace: self.workspace_id, event_id: self.event_id.clone() };
        let claimed = ClaimedDelivery {
            log_id: self.id,
            webhook_id: self.webhook_id,
            event_type: self.event_type,
            attempt: self.attempts.clamp(0, 1000) as u32,
            max_attempts: self.max_attempts.clamp(0, 1000) as u32,
            url: webhook.url.clone(),
            at_rest: RowSecrets {
                secret: webhook.secret.clone(),
                headers: webhook.headers.clone(),
                secrets_enc: webhook.secrets_enc.clone(),
                headers_enc: webhook.headers_enc.clone(),
                enc_key_id: webhook.enc_key_id.clone(),
            },
            timeout_ms: webhook.timeout_ms.clamp(1000, i64::from(TIMEOUT_MS_MAX)) as u32,
            test: self.test != 0,
            legacy_signature: webhook.legacy_signature != 0,
            signing: webhook.signing.as_deref().and_then(Signing::parse).unwrap_or_default(),
            scheduled: self.scheduled.is_some(),
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
    #[serde(default)]
    holds_probe: Option<i64>,
    // Only in the claim's rows (`WEBHOOK_JSON`): what sending needs.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    headers: String,
    #[serde(default)]
    secrets_enc: Option<String>,
    #[serde(default)]
    headers_enc: Option<String>,
    #[serde(default)]
    enc_key_id: Option<String>,
    #[serde(default)]
    timeout_ms: Option<i64>,
    #[serde(default = "one")]
    legacy_signature: i64,
    #[serde(default)]
    signing: Option<String>,
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

/// A webhook as the claim returns it with each claimed row.
const WEBHOOK_JSON: &str = "json_object('id', w.id, 'name', w.name, 'url', w.url, 'workspace_id', w.workspace_id, \
    'active', w.active, 'consecutive_failures', w.consecutive_failures, 'failing_since', w.failing_since, \
    'last_success_at', w.last_success_at, 'last_failure_at', w.last_failure_at, \
    'breaker_open_until', w.breaker_open_until, 'breaker_opens', w.breaker_opens, 'health_version', w.health_version, \
    'secret', w.secret, 'headers', w.headers, 'secrets_enc', w.secrets_enc, 'headers_enc', w.headers_enc, \
    'enc_key_id', w.enc_key_id, 'timeout_ms', w.timeout_ms, 'legacy_signature', w.legacy_signature, 'signing', w.signing)";

const HEALTH_COLUMNS: &str = "id, name, url, workspace_id, active, consecutive_failures, failing_since, \
    last_success_at, last_failure_at, breaker_open_until, breaker_opens, health_version, \
    (probe_token IS NOT NULL AND probe_token = ?2) AS holds_probe";

/// A claim: the deliveries to send (with their metadata, same order), the health of
/// their webhooks, and those claimed whose webhook was deactivated meanwhile (to end
/// `failed` without a request: [`Postponed::deactivated`]).
pub struct Claim {
    pub deliveries: Vec<ClaimedDelivery>,
    pub meta: Vec<ClaimMeta>,
    pub webhooks: HashMap<String, WebhookHealth>,
    pub deactivated: Vec<String>,
    /// D1 round trips the claim took (2 when a body had to be read apart).
    pub round_trips: usize,
}

/// Statements in the claim batch.
pub const CLAIM_STATEMENTS: usize = 3;

/// The lease of a claim (see `core::outbound::lease`): rounds of sends and the margin.
pub struct LeaseTerms {
    pub rounds: i64,
    pub margin_ms: i64,
}

impl LeaseTerms {
    /// When a claim made at `now` ends: `lease::batch_lease_ms` with the largest timeout a
    /// webhook may have (reading the batch's own largest would cost a read per delivery).
    pub fn until(&self, now: UnixMillis) -> UnixMillis {
        now + self.margin_ms + self.rounds * (i64::from(TIMEOUT_MS_MAX) + SEND_SLACK_MS)
    }
}

/// Which deliveries a claim takes: those a queue batch names, or those of an event just
/// published (a direct send), if it has at most `max` of them.
#[derive(Clone, Copy)]
pub enum ClaimScope<'a> {
    /// Deliveries a queue batch names; `events`: theirs, when the messages said them.
    Ids { ids: &'a [String], events: Option<&'a [String]> },
    /// The event's deliveries: created with it (same workspace, same `created_at`).
    Event { id: &'a str, workspace: &'a str, created_at: UnixMillis, max: usize },
}

impl ClaimScope<'_> {
    /// The scope's one parameter: the ids as JSON, or the event as JSON.
    fn param(&self) -> String {
        match self {
            ClaimScope::Ids { ids, .. } => json_ids(ids),
            ClaimScope::Event { id, workspace, created_at, .. } => {
                serde_json::json!({"e": id, "w": workspace, "t": created_at}).to_string()
            }
        }
    }

    /// A subquery of the delivery ids in scope, reading parameter `?{n}`. An event's are
    /// found through the workspace index (no index on `event_id`: it would cost a write
    /// per delivery), and only if it has at most `max`: the count is the outer loop of a
    /// `CROSS JOIN` (SQLite keeps that order), so a large event's walk is never entered
    /// and costs each statement of the claim ≈ `max + 3` rows (as a condition inside the
    /// walk, it cost every delivery of the event: 109 rows at 100).
    fn ids_sql(&self, n: u8) -> String {
        match self {
            ClaimScope::Ids { .. } => format!("SELECT value FROM json_each(?{n})"),
            ClaimScope::Event { max, .. } => {
                let of_event = |t: &str| format!(
                    "{t}workspace_id = json_extract(?{n}, '$.w') AND {t}created_at = json_extract(?{n}, '$.t') \
                     AND {t}event_id = json_extract(?{n}, '$.e')"
                );
                format!(
                    "SELECT l.id FROM (SELECT COUNT(*) AS c FROM (SELECT 1 FROM delivery_logs INDEXED BY logs_by_workspace \
                       WHERE {} LIMIT {})) n CROSS JOIN delivery_logs l INDEXED BY logs_by_workspace WHERE n.c <= {max} AND {}",
                    of_event(""),
                    max + 1,
                    of_event("l.")
                )
            }
        }
    }
}

/// Leaves out the deliveries of a workspace that is cutting over to another shard or has
/// moved (its fence, migration 0014, would refuse the write and with it the whole batch):
/// the new shard's sweep and queue messages take them on. A primary-key look-up of an
/// almost always empty table: no row read.
const NOT_FENCED: &str = "AND NOT EXISTS (SELECT 1 FROM shard_fence f WHERE f.workspace_id = delivery_logs.workspace_id \
    AND f.state <> 'copying')";

/// The claim's statements, to run in one batch (alone, or after a publish): claim the due
/// deliveries in scope for this invocation (`token`) under a lease that covers the whole
/// batch (returning what the rows say), take the probe slot of each half-open webhook
/// among them that no live consumer holds, and load their webhooks (with their health)
/// and their events' bodies, each once. Rows that are final, gone, not due or leased
/// elsewhere are simply not claimed. Read the results with [`read_claim`].
pub fn claim_statements(db: &Db, scope: ClaimScope<'_>, token: &str, now: UnixMillis, lease: &LeaseTerms)
    -> Result<Vec<worker::D1PreparedStatement>> {
    let param = scope.param();
    let (ids1, ids2) = (scope.ids_sql(1), scope.ids_sql(2));
    let until = lease.until(now);
    Ok(vec![
        // The claimed rows come back with their webhook (one read each, not a second walk
        // over the batch's ids).
        statement(
            db,
            &format!("UPDATE delivery_logs SET attempts = attempts + 1, claim_token = ?3, updated_at = ?2, lease_until = ?5 \
             WHERE id IN ({ids1}) AND status = 'pending' \
               AND attempts < max_attempts \
               AND (next_attempt_at IS NULL OR next_attempt_at <= ?2 + ?4) \
               AND (lease_until IS NULL OR lease_until < ?2) {NOT_FENCED} \
             RETURNING id, webhook_id, event_id, event_type, attempts, max_attempts, workspace_id, test, scheduled, \
               (SELECT {WEBHOOK_JSON} FROM webhooks w WHERE w.id = delivery_logs.webhook_id) AS webhook"),
            &[&param, &now, &token, &EARLY_ARRIVAL_SLACK_MS, &until],
        )?,
        // Half-open breakers: one consumer at a time probes, until its lease ends. Only
        // webhooks with a breaker are looked at (a partial index), none on a healthy day.
        statement(
            db,
            &format!("UPDATE webhooks INDEXED BY webhooks_breaker SET probe_token = ?2, probe_until = ?4 \
             WHERE breaker_open_until IS NOT NULL AND breaker_open_until <= ?3 \
               AND (probe_until IS NULL OR probe_until < ?3) \
               AND id IN (SELECT webhook_id FROM delivery_logs WHERE id IN ({ids1}) AND claim_token = ?2) \
             RETURNING id"),
            &[&param, &token, &now, &until],
        )?,
        // Each event body once, however many deliveries of the batch share it: by the
        // events the messages named, else through the claimed logs (≈ 4 rows read per
        // delivery more).
        match scope {
            ClaimScope::Ids { events: Some(events), .. } => statement(db, BODIES_BY_ID, &[&json_ids(events)])?,
            _ => statement(
                db,
                &format!("SELECT id, body FROM events WHERE id IN (SELECT DISTINCT event_id FROM delivery_logs \
                   WHERE id IN ({ids2}) AND claim_token = ?1)"),
                &[&token, &param],
            )?,
        },
    ])
}

impl HealthRowRead {
    /// What sending needs, from a row the claim returned (a health re-read has none of it).
    fn sending(&mut self) -> SendingRow {
        SendingRow {
            url: self.url.clone(),
            secret: self.secret.take(),
            headers: std::mem::take(&mut self.headers),
            secrets_enc: self.secrets_enc.take(),
            headers_enc: self.headers_enc.take(),
            enc_key_id: self.enc_key_id.take(),
            timeout_ms: self.timeout_ms.unwrap_or(i64::from(TIMEOUT_MS_MAX)),
            legacy_signature: self.legacy_signature,
            signing: self.signing.take(),
        }
    }
}

/// Event bodies by id (a JSON array of ids).
const BODIES_BY_ID: &str = "SELECT id, body FROM events WHERE id IN (SELECT value FROM json_each(?1))";

/// A claim's results as read, before they are put together.
struct ClaimParts {
    rows: Vec<ClaimedRow>,
    probing: Vec<String>,
    bodies: HashMap<String, Rc<str>>,
}

impl ClaimParts {
    /// Reads the results of the [`CLAIM_STATEMENTS`] statements (none: nothing claimed).
    fn read(results: &[worker::D1Result]) -> Result<Self> {
        let (Some(rows), Some(probes), Some(bodies)) = (results.first(), results.get(1), results.get(2)) else {
            return Ok(ClaimParts { rows: Vec::new(), probing: Vec::new(), bodies: HashMap::new() });
        };
        Ok(ClaimParts {
            rows: rows.results::<ClaimedRow>()?,
            probing: probes.results::<IdRow>()?.into_iter().map(|r| r.id).collect(),
            bodies: bodies.results::<BodyRow>()?.into_iter().map(|b| (b.id, Rc::from(b.body))).collect(),
        })
    }

    /// Events of claimed rows whose body was not read (the messages' events left them out).
    fn missing_bodies(&self) -> Vec<String> {
        let mut missing: Vec<String> = Vec::new();
        for row in &self.rows {
            if !self.bodies.contains_key(&row.event_id) && !missing.contains(&row.event_id) {
                missing.push(row.event_id.clone());
            }
        }
        missing
    }
}

/// Reads a claim from the results of its [`CLAIM_STATEMENTS`] statements.
pub fn read_claim(results: &[worker::D1Result]) -> Result<Claim> {
    assemble_claim(ClaimParts::read(results)?)
}

fn assemble_claim(parts: ClaimParts) -> Result<Claim> {
    let ClaimParts { rows, probing, bodies } = parts;
    let mut sending: HashMap<String, SendingRow> = HashMap::new();
    let mut webhooks: HashMap<String, WebhookHealth> = HashMap::new();
    let (mut deliveries, mut meta, mut deactivated) = (Vec::new(), Vec::new(), Vec::new());
    for mut row in rows {
        if let Some(json) = row.webhook.take().filter(|_| !webhooks.contains_key(&row.webhook_id)) {
            // A row that does not read is a storage error (the batch is retried), never a
            // webhook taken for gone.
            let mut health = serde_json::from_str::<HealthRowRead>(&json).map_err(|e| worker::Error::RustError(e.to_string()))?;
            let send = health.sending();
            health.holds_probe = Some(i64::from(probing.contains(&health.id)));
            let (id, health) = health.into_pair();
            sending.insert(id.clone(), send);
            webhooks.insert(id, health);
        }
        // A webhook deactivated (or gone) since the delivery was queued: no request.
        match (sending.get(&row.webhook_id), webhooks.get(&row.webhook_id)) {
            (Some(w), Some(h)) if h.active => {
                let (d, m) = row.into_claimed(w, &bodies);
                deliveries.push(d);
                meta.push(m);
            }
            _ => deactivated.push(row.id),
        }
    }
    Ok(Claim { deliveries, meta, webhooks, deactivated, round_trips: 1 })
}

/// Claims the due deliveries among `ids` in one round trip ([`claim_statements`]);
/// `events`: the events of those deliveries, if known (their bodies are then read by id;
/// one left out is read in a second round trip, never sent empty).
pub async fn claim(db: &Db, ids: &[String], events: Option<&[String]>, token: &str, now: UnixMillis, lease: &LeaseTerms)
    -> Result<Claim> {
    let results = db.batch(claim_statements(db, ClaimScope::Ids { ids, events }, token, now, lease)?).await?;
    let mut parts = ClaimParts::read(&results)?;
    let missing = parts.missing_bodies();
    if events.is_some() && !missing.is_empty() {
        let rows: Vec<BodyRow> = db.all(statement(db, BODIES_BY_ID, &[&json_ids(&missing)])?).await?.results()?;
        parts.bodies.extend(rows.into_iter().map(|b| (b.id, Rc::from(b.body))));
        return Ok(Claim { round_trips: 2, ..assemble_claim(parts)? });
    }
    assemble_claim(parts)
}

/// Re-reads the health of `webhook_ids` (after a guarded write found it changed).
pub async fn read_health(db: &Db, webhook_ids: &[String], token: &str) -> Result<HashMap<String, WebhookHealth>> {
    let rows: Vec<HealthRowRead> =
        db.all(statement(db, &format!("SELECT {HEALTH_COLUMNS} FROM webhooks WHERE id IN (SELECT value FROM json_each(?1))"), &[&json_ids(webhook_ids), &token])?).await?
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
fn health_write_statement(db: &Db, token: &str, writes: &[HealthWrite], now: UnixMillis) -> Result<worker::D1PreparedStatement> {
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
pub async fn write_health(db: &Db, token: &str, writes: &[HealthWrite], now: UnixMillis) -> Result<Vec<String>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    health_written(&db.all(health_write_statement(db, token, writes, now)?).await?)
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

/// A claimed delivery given back unsent: the claim's attempt is returned and it falls
/// due at `until` (its breaker is open, or a direct send could not wait for it); or, with
/// `deactivated`, it ends `failed` (its webhook was deactivated since it was queued).
#[derive(Serialize)]
pub struct Postponed<'a> {
    pub log_id: &'a str,
    pub until: UnixMillis,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deactivated: bool,
}

/// What a record batch changed on webhooks.
#[derive(Default)]
pub struct RecordedBatch {
    /// Webhooks whose health write landed (the others changed meanwhile).
    pub health_written: Vec<String>,
    /// Webhooks this batch disabled because a receiver answered 410.
    pub disabled_by_gone: Vec<String>,
    /// Statements the batch ran.
    pub statements: usize,
}

/// Writes every outcome of a test delivery (one claimed attempt, no health).
pub async fn record(db: &Db, token: &str, outcomes: &[AttemptOutcome<'_>], now: UnixMillis) -> Result<()> {
    record_batch(db, token, outcomes, &[], &[], now).await.map(|_| ())
}

/// A batch's share of one webhook's hour in the rollups: outcome counts, the attempts'
/// duration histogram and the latest success. Summed here, so the upsert reads one
/// parameter element per (webhook, hour), without a sort in SQL.
#[derive(Serialize)]
struct RollupEntry<'a> {
    w: &'a str,
    h: UnixMillis,
    s: u32,
    f: u32,
    a: u32,
    /// Attempts per duration bucket, by bucket index (those with none left out).
    d: HashMap<usize, u32>,
    /// The latest success's time.
    t: Option<UnixMillis>,
}

/// The rollup entries of a batch's outcomes, one per (webhook, hour).
fn rollup_entries<'a>(outcomes: &[AttemptOutcome<'a>]) -> Vec<RollupEntry<'a>> {
    let mut entries: Vec<RollupEntry<'a>> = Vec::new();
    for o in outcomes {
        let h = hour_of(o.attempted_at);
        let i = match entries.iter().position(|e| e.w == o.webhook_id && e.h == h) {
            Some(i) => i,
            None => {
                entries.push(RollupEntry { w: o.webhook_id, h, s: 0, f: 0, a: 0, d: HashMap::new(), t: None });
                entries.len() - 1
            }
        };
        let e = &mut entries[i];
        let success = o.status == "success";
        e.s += u32::from(success);
        e.f += u32::from(o.status == "failed");
        e.a += 1;
        *e.d.entry(bucket(o.duration_ms)).or_default() += 1;
        if success {
            e.t = Some(e.t.map_or(o.attempted_at, |t| t.max(o.attempted_at)));
        }
    }
    entries
}

/// The rollup upsert's SQL: one row per entry of its JSON parameter. Not joined to the
/// logs to check the claim (it would cost three rows read per delivery): a batch that
/// outlived its lease, which the lease's bound rules out, would count its outcomes once more.
fn rollup_sql() -> String {
    let columns: Vec<String> = (0..BUCKETS).map(|b| format!("d{b}")).collect();
    let counts: Vec<String> = (0..BUCKETS).map(|b| format!("COALESCE(json_extract(r.value, '$.d.\"{b}\"'), 0)")).collect();
    let adds: Vec<String> = columns.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect();
    format!(
        "INSERT INTO webhook_rollups (webhook_id, hour, success, failed, attempts, last_success_at, {}) \
         SELECT json_extract(r.value, '$.w'), json_extract(r.value, '$.h'), json_extract(r.value, '$.s'), \
           json_extract(r.value, '$.f'), json_extract(r.value, '$.a'), json_extract(r.value, '$.t'), {} \
         FROM json_each(?1) r WHERE true \
         ON CONFLICT (webhook_id, hour) DO UPDATE SET success = success + excluded.success, \
           failed = failed + excluded.failed, attempts = attempts + excluded.attempts, \
           last_success_at = MAX(COALESCE(last_success_at, excluded.last_success_at), COALESCE(excluded.last_success_at, last_success_at)), {}",
        columns.join(", "),
        counts.join(", "),
        adds.join(", ")
    )
}

/// Writes every outcome of a batch in one D1 round trip, whatever the batch size: the
/// rollups, the outcomes (each appended to its log's `history`), the deliveries given
/// back and the health writes travel as JSON parameters. Only the holder of `token` can
/// write outcomes, and only once (the token is cleared with the outcome); a health write
/// lands only if its row's version is unchanged.
pub async fn record_batch(
    db: &Db,
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
    let rollups_json = serde_json::to_string(&rollup_entries(outcomes)).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut statements = vec![
        statement(db, &rollup_sql(), &[&rollups_json])?,
        statement(
            db,
            "UPDATE delivery_logs SET status = json_extract(o.value, '$.status'), \
               response_status = json_extract(o.value, '$.response_status'), \
               response_body = json_extract(o.value, '$.response_body'), error = json_extract(o.value, '$.error'), \
               duration_ms = json_extract(o.value, '$.duration_ms'), \
               next_attempt_at = json_extract(o.value, '$.next_attempt_at'), \
               history = json_insert(COALESCE(history, '[]'), '$[#]', json_object( \
                 'attempt', json_extract(o.value, '$.attempt'), 'attempted_at', json_extract(o.value, '$.attempted_at'), \
                 'response_status', json_extract(o.value, '$.response_status'), 'error', json_extract(o.value, '$.error'), \
                 'duration_ms', json_extract(o.value, '$.duration_ms'), \
                 'response_body', json_extract(o.value, '$.response_body'))), \
               lease_until = NULL, claim_token = NULL, updated_at = ?3 \
             FROM json_each(?1) o \
             WHERE delivery_logs.id = json_extract(o.value, '$.log_id') AND delivery_logs.claim_token = ?2",
            &[&json, &token, &now],
        )?,
    ];
    // A batch with nothing postponed skips that statement (its parameter's walk costs a row).
    if !postponed.is_empty() {
        statements.push(statement(
            db,
            "UPDATE delivery_logs SET attempts = attempts - 1, \
               status = CASE WHEN json_extract(p.value, '$.deactivated') THEN 'failed' ELSE status END, \
               error = CASE WHEN json_extract(p.value, '$.deactivated') THEN 'webhook was deactivated before delivery' \
                 ELSE error END, \
               next_attempt_at = CASE WHEN json_extract(p.value, '$.deactivated') THEN NULL \
                 ELSE json_extract(p.value, '$.until') END, \
               lease_until = NULL, claim_token = NULL, updated_at = ?3 \
             FROM json_each(?1) p \
             WHERE delivery_logs.id = json_extract(p.value, '$.log_id') AND delivery_logs.claim_token = ?2",
            &[&postponed_json, &token, &now],
        )?);
    }
    let health_at = statements.len();
    if !health.is_empty() {
        statements.push(health_write_statement(db, token, health, now)?);
    }
    let gone_at = statements.len();
    let gone: Vec<&AttemptOutcome<'_>> = outcomes.iter().filter(|o| o.disable_reason.is_some()).collect();
    for o in &gone {
        if let Some(reason) = o.disable_reason {
            statements.push(webhooks::disable_statement(db, o.webhook_id, reason, now)?);
        }
    }
    let count = statements.len();
    let results = db.batch(statements).await?;
    // `changes` of each guarded statement says whether it applied.
    let landed = |i: usize| results.get(i).map(super::changes).unwrap_or(0) > 0;
    let health_written = match results.get(health_at) {
        Some(r) if !health.is_empty() => health_written(r)?,
        _ => Vec::new(),
    };
    let disabled_by_gone = gone
        .iter()
        .enumerate()
        .filter(|(i, _)| landed(gone_at + i))
        .map(|(_, o)| o.webhook_id.to_string())
        .collect();
    Ok(RecordedBatch { health_written, disabled_by_gone, statements: count })
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
    /// Pending deliveries the walk put under the due index (still in flight, or lost).
    pub walked: usize,
    /// Move triggers in the shard, and whether a fence needs them (`store::moves::settle_triggers`).
    pub move_triggers_present: u32,
    pub move_triggers_needed: bool,
}

#[derive(Deserialize)]
struct TriggersRow {
    present: f64,
    needed: f64,
}

/// Deliveries the walk moves under the due index per run, at most; a larger backlog
/// moves over the following minutes (the walk's mark stays behind it meanwhile).
const MAX_WALKED_PER_RUN: u32 = 5_000;
/// The walk's mark trails this far behind `now`, so a delivery whose insert lands just
/// after the walk passed its creation time is walked again.
const WALK_SAFETY_MS: i64 = 60_000;

/// Cron housekeeping in one batch:
/// 1. walk the deliveries created since the last run (the primary key is their creation
///    order) and put each one still pending without a due time under the due index, due
///    at its lease's end if a consumer holds it, else at once (its message was lost);
/// 2. fail deliveries interrupted after their last attempt;
/// 3. list overdue deliveries to re-enqueue (the due index);
/// 4. purge logs past retention (in id order; rows from before migration 0008 through
///    their own index), their events a day later, and rollups past retention.
pub async fn sweep(db: &Db, now: UnixMillis, grace_ms: i64, retention_cutoff: UnixMillis, limit: u32) -> Result<SweepReport> {
    let walk_to = now - grace_ms;
    let mark = walk_to.min(now - WALK_SAFETY_MS);
    let cutoff_id = format!("{DELIVERY_PREFIX}{}", delivery_id_time(retention_cutoff));
    let mut statements = vec![
        statement(
            db,
            &format!("UPDATE delivery_logs SET next_attempt_at = CASE WHEN lease_until >= ?1 THEN lease_until ELSE created_at END \
             WHERE id IN (SELECT id FROM delivery_logs \
               WHERE id >= '{DELIVERY_PREFIX}' || printf('%012x', (SELECT at FROM sweep_state WHERE name = 'logs')) \
                 AND id < '{DELIVERY_PREFIX}' || printf('%012x', ?2) \
                 AND status = 'pending' AND next_attempt_at IS NULL {NOT_FENCED} LIMIT ?3)"),
            &[&now, &walk_to, &MAX_WALKED_PER_RUN],
        )?,
        // `changes()` is the walk's: the mark moves on only when the walk was complete.
        statement(
            db,
            "UPDATE sweep_state SET at = MAX(at, ?1) WHERE name = 'logs' AND changes() < ?2",
            &[&mark, &MAX_WALKED_PER_RUN],
        )?,
        statement(
            db,
            &format!("UPDATE delivery_logs SET status = 'failed', \
               error = COALESCE(error, 'delivery interrupted during its last attempt'), \
               next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?1 \
             WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1 AND status = 'pending' \
               AND attempts >= max_attempts AND (lease_until IS NULL OR lease_until < ?1) {NOT_FENCED}"),
            &[&now],
        )?,
        statement(
            db,
            // Scheduled deliveries are their schedulers' (the cron wakes those instead).
            &format!("SELECT id FROM delivery_logs WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1 \
               AND status = 'pending' AND (lease_until IS NULL OR lease_until < ?2) AND scheduled IS NULL {NOT_FENCED} \
               ORDER BY next_attempt_at LIMIT ?3"),
            &[&(now - grace_ms), &now, &limit],
        )?,
        // Purges are bounded per run (oldest first) so a large backlog drains over
        // several minutes instead of one statement that outlives D1's limits.
        statement(
            db,
            "DELETE FROM delivery_logs WHERE id IN (SELECT id FROM delivery_logs \
               WHERE id < ?1 AND created_at < ?2 ORDER BY id LIMIT ?3)",
            &[&cutoff_id, &retention_cutoff, &MAX_PURGE_PER_RUN],
        )?,
        statement(
            db,
            "DELETE FROM delivery_logs WHERE id IN (SELECT id FROM delivery_logs INDEXED BY logs_legacy_by_created \
               WHERE legacy = 1 AND created_at < ?1 ORDER BY created_at LIMIT ?2)",
            &[&retention_cutoff, &MAX_PURGE_PER_RUN],
        )?,
        // An event outlives its last log by a day (a redelivery or a recovery may have
        // made logs for it later than its own time: `last_log_at`).
        statement(
            db,
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < ?1 \
               AND COALESCE(last_log_at, created_at) < ?1 LIMIT ?2)",
            &[&(retention_cutoff.min(now - MS_PER_DAY) - MS_PER_DAY), &MAX_PURGE_PER_RUN],
        )?,
        // Whether the shard's move triggers are as its fences need (`store::moves`).
        statement(db, &super::moves::triggers_state_sql(), &[&(now - super::moves::TRIGGERS_KEPT_AFTER_GONE_MS)])?,
    ];
    // Rollups past retention, once an hour: every webhook's oldest rows (primary key).
    if now.rem_euclid(MS_PER_HOUR) < 60_000 {
        statements.push(statement(
            db,
            "DELETE FROM webhook_rollups WHERE (webhook_id, hour) IN (SELECT r.webhook_id, r.hour FROM webhooks w \
               JOIN webhook_rollups r ON r.webhook_id = w.id AND r.hour < ?1 LIMIT ?2)",
            &[&(retention_cutoff - MS_PER_DAY), &MAX_PURGE_PER_RUN],
        )?);
    }
    let results = db.batch(statements).await?;
    let walked = results.first().map(super::changes).unwrap_or(0);
    let interrupted_failed = results.get(2).map(super::changes).unwrap_or(0);
    let overdue_ids = match results.get(3) {
        Some(r) => r.results::<IdRow>()?.into_iter().map(|r| r.id).collect(),
        None => Vec::new(),
    };
    let purged_logs = [4, 5].iter().map(|i| results.get(*i).map(super::changes).unwrap_or(0)).sum();
    let triggers = match results.get(7) {
        Some(r) => r.results::<TriggersRow>()?.into_iter().next(),
        None => None,
    };
    Ok(SweepReport {
        overdue_ids,
        interrupted_failed,
        purged_logs,
        walked,
        move_triggers_present: triggers.as_ref().map_or(0, |t| t.present.max(0.0) as u32),
        move_triggers_needed: triggers.is_some_and(|t| t.needed != 0.0),
    })
}

/// Messages the queue gave up on: their deliveries end `failed`, never silently.
pub async fn fail_dead_lettered(db: &Db, ids: &[String], now: UnixMillis) -> Result<usize> {
    let result = db.run(statement(
        db,
        &format!("UPDATE delivery_logs SET status = 'failed', \
           error = 'dead-lettered: the queue gave up redelivering this message', \
           next_attempt_at = NULL, lease_until = NULL, claim_token = NULL, updated_at = ?2 \
         WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending' \
           AND (lease_until IS NULL OR lease_until < ?2) {NOT_FENCED}"),
        &[&json_ids(ids), &now],
    )?).await?;
    Ok(super::changes(&result))
}
