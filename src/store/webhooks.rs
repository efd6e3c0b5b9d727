//! Webhook configurations, always scoped by workspace. Secrets and custom headers are
//! stored sealed (`core::outbound::sealed`); reading a webhook opens its headers with
//! the keyring, and its secrets only for who signs or rotates.

use serde::Deserialize;
use worker::Result;

use super::{changes, statement, Db};
use crate::core::cursor::Cursor;
use crate::core::catalog::EventType;
use crate::core::crypto::Keyring;
use crate::core::outbound::asymmetric::Signing;
use crate::core::outbound::health::Health;
use crate::core::outbound::pacing::Pacing;
use crate::core::outbound::sealed::{RowSecrets, SealedColumns};
use crate::core::time::UnixMillis;
use crate::core::outbound::webhook::{SecretStatus, StoredWebhook, WebhookConfig, WebhookSecret};

/// A webhook with its at-rest secret columns, for the routes that sign or rewrite them.
pub struct WebhookRecord {
    pub webhook: StoredWebhook,
    pub at_rest: RowSecrets,
}

#[derive(Deserialize)]
struct WebhookRow {
    id: String,
    name: String,
    url: String,
    secret: Option<String>,
    secrets_enc: Option<String>,
    headers_enc: Option<String>,
    enc_key_id: Option<String>,
    secret_hint: Option<String>,
    events: String,
    active: i64,
    headers: String,
    retry_count: i64,
    timeout_ms: i64,
    #[serde(default = "legacy_on")]
    legacy_signature: i64,
    #[serde(default)]
    signing: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
    disabled_reason: Option<String>,
    created_by: Option<String>,
    updated_by: Option<String>,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    consecutive_failures: i64,
    failing_since: Option<i64>,
    last_success_at: Option<i64>,
    last_failure_at: Option<i64>,
    breaker_open_until: Option<i64>,
    #[serde(default)]
    breaker_opens: i64,
    rate_limit_per_second: Option<i64>,
    ordering: Option<String>,
}

fn legacy_on() -> i64 {
    1
}

/// The health columns of a row (migration 0006), as the core's `Health`.
pub(crate) fn health_of(
    consecutive_failures: i64,
    failing_since: Option<i64>,
    last_success_at: Option<i64>,
    last_failure_at: Option<i64>,
    breaker_open_until: Option<i64>,
    breaker_opens: i64,
) -> Health {
    Health {
        consecutive_failures: consecutive_failures.clamp(0, i64::from(u32::MAX)) as u32,
        failing_since,
        last_success_at,
        last_failure_at,
        breaker_open_until,
        breaker_opens: breaker_opens.clamp(0, 64) as u32,
    }
}

impl WebhookRow {
    /// Opens the headers (and tries the secrets). A row whose sealed values do not open is
    /// still a webhook: without header values, `secret_status` undecryptable.
    fn into_record(self, keys: &Keyring) -> WebhookRecord {
        // Rows were written from validated configs; parsing back cannot meet bad data
        // unless the table was edited by hand, in which case unknown items are skipped.
        let events = serde_json::from_str::<Vec<String>>(&self.events)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| EventType::parse(e))
            .collect();
        let at_rest = RowSecrets {
            secret: self.secret,
            headers: self.headers,
            secrets_enc: self.secrets_enc,
            headers_enc: self.headers_enc,
            enc_key_id: self.enc_key_id,
        };
        let opened = at_rest.open_headers(keys, &self.id);
        let secrets_open = at_rest.open_secrets(keys, &self.id).is_ok();
        let secret_status = if opened.is_ok() && secrets_open { SecretStatus::Ok } else { SecretStatus::Undecryptable };
        let headers = opened.unwrap_or_default();
        let secret_hint = match &at_rest.secret {
            Some(clear) if at_rest.is_legacy() => Some(WebhookSecret::from_stored(clear.clone()).hint()),
            _ => self.secret_hint,
        };
        let webhook = StoredWebhook {
            id: self.id,
            config: WebhookConfig {
                name: self.name,
                url: self.url,
                events,
                active: self.active != 0,
                headers,
                retry_count: self.retry_count.clamp(0, 10) as u32,
                timeout_ms: self.timeout_ms.clamp(1000, 30_000) as u32,
                legacy_signature: self.legacy_signature != 0,
                signing: self.signing.as_deref().and_then(Signing::parse).unwrap_or_default(),
                pacing: Pacing::from_stored(self.rate_limit_per_second, self.ordering.as_deref()),
            },
            secret_hint,
            disabled_reason: self.disabled_reason,
            created_by: self.created_by,
            updated_by: self.updated_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            health: health_of(self.consecutive_failures, self.failing_since, self.last_success_at,
                              self.last_failure_at, self.breaker_open_until, self.breaker_opens),
            secret_status,
            public_key: self.public_key,
        };
        WebhookRecord { webhook, at_rest }
    }
}

/// A webhook's latest success: the later of its row's (written with any other health
/// change) and its newest rollup's (migration 0017: a success that changes nothing else
/// is written only there). The rollup walk starts at the newest hour and stops at the
/// first with a success, never before the hour of the row's own value; while the webhook
/// is failing it starts at the hour after its first failure (a success clears
/// `failing_since`, and the row is written when it is set), so a webhook that never
/// succeeded reads a row or two, not every rollup it has (720 for 30 days of failures).
macro_rules! last_success_sql {
    () => {
        "(SELECT MAX(t) FROM (SELECT webhooks.last_success_at AS t UNION ALL \
           SELECT (SELECT r.last_success_at FROM webhook_rollups r WHERE r.webhook_id = webhooks.id \
             AND r.hour >= COALESCE(webhooks.last_success_at - webhooks.last_success_at % 3600000, 0) \
             AND r.hour <= COALESCE(webhooks.failing_since + 3600000, 9007199254740991) \
             AND r.last_success_at IS NOT NULL ORDER BY r.hour DESC LIMIT 1)))"
    };
}

const COLUMNS: &str = concat!("id, name, url, secret, secrets_enc, headers_enc, enc_key_id, secret_hint, events, active, \
                       headers, retry_count, timeout_ms, disabled_reason, created_by, updated_by, created_at, updated_at, \
                       consecutive_failures, failing_since, ", last_success_sql!(), " AS last_success_at, last_failure_at, \
                       breaker_open_until, breaker_opens, legacy_signature, signing, public_key, rate_limit_per_second, ordering");

fn events_json(events: &[EventType]) -> String {
    serde_json::Value::from(events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string()
}

/// Who writes, and how many webhooks a workspace may hold.
pub struct Writer<'a> {
    pub user: Option<&'a str>,
    pub max_webhooks: u32,
}

/// Inserts a new webhook; its secrets and headers arrive sealed, nothing in clear.
/// The workspace's count is checked in the same statement, so concurrent creates cannot
/// pass the limit together. False: the workspace already holds `max_webhooks`.
pub async fn insert(
    db: &Db,
    workspace: &str,
    id: &str,
    c: &WebhookConfig,
    sealed: &SealedColumns,
    by: &Writer<'_>,
    now: UnixMillis,
) -> Result<bool> {
    let result = db.run(statement(
        db,
        "INSERT INTO webhooks (id, workspace_id, name, url, secret, events, active, headers, \
         retry_count, timeout_ms, created_at, updated_at, secrets_enc, headers_enc, enc_key_id, secret_hint, \
         created_by, updated_by, legacy_signature, signing, public_key, rate_limit_per_second, ordering) \
         SELECT ?1,?2,?3,?4,NULL,?5,?6,'{}',?7,?8,?9,?9,?10,?11,?12,?13,?14,?14,?16,?17,?18,?19,?20 \
         WHERE (SELECT COUNT(*) FROM webhooks WHERE workspace_id = ?2) < ?15",
        &[&id, &workspace, &c.name, &c.url, &events_json(&c.events), &c.active, &c.retry_count, &c.timeout_ms, &now,
          &sealed.secrets_enc, &sealed.headers_enc, &sealed.enc_key_id, &sealed.secret_hint, &by.user,
          &by.max_webhooks, &c.legacy_signature, &c.signing.as_str(), &sealed.public_key,
          &c.pacing.rate_limit_per_second, &c.pacing.ordering.as_str()],
    )?).await?;
    Ok(changes(&result) > 0)
}

/// A page of the workspace's webhooks, newest first, after `after`; one row more than
/// `limit` when another page follows.
pub async fn list(db: &Db, workspace: &str, keys: &Keyring, limit: u32, after: Option<&Cursor>) -> Result<Vec<StoredWebhook>> {
    let fetch = limit + 1;
    let rows: Vec<WebhookRow> = match after {
        None => {
            let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2");
            db.all(statement(db, &sql, &[&workspace, &fetch])?).await?.results()?
        }
        Some(c) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 \
                   AND (created_at < ?2 OR (created_at = ?2 AND id < ?3)) ORDER BY created_at DESC, id DESC LIMIT ?4"
            );
            db.all(statement(db, &sql, &[&workspace, &c.created_at, &c.id, &fetch])?).await?.results()?
        }
    };
    Ok(rows.into_iter().map(|r| r.into_record(keys).webhook).collect())
}

pub async fn get(db: &Db, workspace: &str, id: &str, keys: &Keyring) -> Result<Option<WebhookRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 AND id = ?2");
    let row: Option<WebhookRow> = db.first(statement(db, &sql, &[&workspace, &id])?).await?;
    Ok(row.map(|r| r.into_record(keys)))
}

/// The statement reading the webhook a delivery log of the workspace belongs to; its
/// result goes to `record_of`. Lets a log and its webhook be read in one D1 batch.
pub fn of_log_statement(db: &Db, workspace: &str, log_id: &str) -> Result<worker::D1PreparedStatement> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 \
         AND id = (SELECT webhook_id FROM delivery_logs WHERE workspace_id = ?1 AND id = ?2)"
    );
    statement(db, &sql, &[&workspace, &log_id])
}

/// The webhook of an `of_log_statement` result, opened with the keyring.
pub fn record_of(result: worker::D1Result, keys: &Keyring) -> Result<Option<WebhookRecord>> {
    Ok(result.results::<WebhookRow>()?.into_iter().next().map(|r| r.into_record(keys)))
}

/// Writes the whole configuration, and the sealed columns when given (which also empties
/// a legacy row's clear ones), only if the at-rest columns are still `old` (a concurrent
/// rotation is never lost). Without them the at-rest columns are left as they are.
/// Re-activating a webhook clears why it was disabled; `reset_health` (a `PUT` with
/// `active: true`) also starts its health afresh (and bumps `health_version`, so a
/// consumer's write based on the old health is re-applied to the new one).
/// False: gone or changed meanwhile.
pub async fn update(
    db: &Db,
    workspace: &str,
    id: &str,
    c: &WebhookConfig,
    sealed: Option<(&RowSecrets, &SealedColumns)>,
    reset_health: bool,
    by: Option<&str>,
    now: UnixMillis,
) -> Result<bool> {
    let set_sealed = sealed.is_some();
    let old = sealed.map(|(old, _)| old);
    let sealed = sealed.map(|(_, new)| new);
    let (secrets_enc, headers_enc, kid, hint, public_key) = match sealed {
        Some(s) => (Some(s.secrets_enc.as_str()), s.headers_enc.as_deref(), Some(s.enc_key_id.as_str()),
                    Some(s.secret_hint.as_str()), s.public_key.as_deref()),
        None => (None, None, None, None, None),
    };
    let result = db.run(statement(
        db,
        "UPDATE webhooks SET name = ?3, url = ?4, events = ?5, active = ?6, \
         retry_count = ?7, timeout_ms = ?8, updated_at = ?9, updated_by = ?19, legacy_signature = ?20, \
         disabled_reason = CASE WHEN ?6 = 1 THEN NULL ELSE disabled_reason END, \
         secret = CASE WHEN ?10 = 1 THEN NULL ELSE secret END, \
         headers = CASE WHEN ?10 = 1 THEN '{}' ELSE headers END, \
         secrets_enc = CASE WHEN ?10 = 1 THEN ?11 ELSE secrets_enc END, \
         headers_enc = CASE WHEN ?10 = 1 THEN ?12 ELSE headers_enc END, \
         enc_key_id = CASE WHEN ?10 = 1 THEN ?13 ELSE enc_key_id END, \
         secret_hint = CASE WHEN ?10 = 1 THEN ?14 ELSE secret_hint END, \
         public_key = CASE WHEN ?10 = 1 THEN ?22 ELSE public_key END, signing = ?21, \
         consecutive_failures = CASE WHEN ?18 = 1 THEN 0 ELSE consecutive_failures END, \
         failing_since = CASE WHEN ?18 = 1 THEN NULL ELSE failing_since END, \
         breaker_open_until = CASE WHEN ?18 = 1 THEN NULL ELSE breaker_open_until END, \
         breaker_opens = CASE WHEN ?18 = 1 THEN 0 ELSE breaker_opens END, \
         probe_token = CASE WHEN ?18 = 1 THEN NULL ELSE probe_token END, \
         probe_until = CASE WHEN ?18 = 1 THEN NULL ELSE probe_until END, \
         health_version = health_version + ?18, \
         rate_limit_per_second = ?23, ordering = ?24 \
         WHERE workspace_id = ?1 AND id = ?2 \
           AND (?10 = 0 OR (secret IS ?15 AND secrets_enc IS ?16 AND enc_key_id IS ?17))",
        &[&workspace, &id, &c.name, &c.url, &events_json(&c.events), &c.active, &c.retry_count, &c.timeout_ms, &now,
          &set_sealed, &secrets_enc, &headers_enc, &kid, &hint,
          &old.and_then(|o| o.secret.as_deref()), &old.and_then(|o| o.secrets_enc.as_deref()),
          &old.and_then(|o| o.enc_key_id.as_deref()), &reset_health, &by, &c.legacy_signature,
          &c.signing.as_str(), &public_key,
          &c.pacing.rate_limit_per_second, &c.pacing.ordering.as_str()],
    )?).await?;
    Ok(changes(&result) > 0)
}

/// Replaces the at-rest columns of a row only if they are still `old` (so a concurrent
/// rotation or re-seal is never lost). `change` (a rotation) sets `updated_at` and
/// `updated_by`; `None` keeps them (the cron re-sealing under another key changes nothing
/// a user sees).
pub async fn replace_sealed(
    db: &Db,
    id: &str,
    old: &RowSecrets,
    new: &SealedColumns,
    change: Option<UserChange<'_>>,
) -> Result<bool> {
    let result = db.run(replace_sealed_statement(db, id, old, new, change)?).await?;
    Ok(changes(&result) > 0)
}

pub fn replace_sealed_statement(
    db: &Db,
    id: &str,
    old: &RowSecrets,
    new: &SealedColumns,
    change: Option<UserChange<'_>>,
) -> Result<worker::D1PreparedStatement> {
    let now = change.map(|c| c.at);
    let by = change.and_then(|c| c.by);
    statement(
        db,
        "UPDATE webhooks SET secret = NULL, headers = '{}', secrets_enc = ?7, headers_enc = ?8, enc_key_id = ?9, \
           secret_hint = ?10, public_key = ?13, updated_at = COALESCE(?11, updated_at), \
           updated_by = CASE WHEN ?11 IS NULL THEN updated_by ELSE ?12 END \
         WHERE id = ?1 AND secret IS ?2 AND headers = ?3 AND secrets_enc IS ?4 AND headers_enc IS ?5 \
           AND enc_key_id IS ?6",
        &[&id, &old.secret, &old.headers, &old.secrets_enc, &old.headers_enc, &old.enc_key_id,
          &new.secrets_enc, &new.headers_enc, &new.enc_key_id, &new.secret_hint, &now, &by, &new.public_key],
    )
}

/// Who changed a row and when (`updated_at`, `updated_by`).
#[derive(Clone, Copy)]
pub struct UserChange<'a> {
    pub at: UnixMillis,
    pub by: Option<&'a str>,
}

#[derive(Deserialize)]
struct ResealRow {
    id: String,
    secret: Option<String>,
    headers: String,
    secrets_enc: Option<String>,
    headers_enc: Option<String>,
    enc_key_id: Option<String>,
}

/// Rows the cron should seal under the current key: legacy ones (in clear) and those
/// sealed under `previous_key_id`. Both are index lookups on `enc_key_id`.
pub async fn reseal_candidates(db: &Db, previous_key_id: Option<&str>, limit: u32) -> Result<Vec<(String, RowSecrets)>> {
    let rows: Vec<ResealRow> = db.all(statement(
        db,
        "SELECT id, secret, headers, secrets_enc, headers_enc, enc_key_id FROM webhooks \
         WHERE enc_key_id IS NULL OR enc_key_id = ?1 LIMIT ?2",
        &[&previous_key_id, &limit],
    )?).await?
    .results()?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let at_rest = RowSecrets {
                secret: r.secret,
                headers: r.headers,
                secrets_enc: r.secrets_enc,
                headers_enc: r.headers_enc,
                enc_key_id: r.enc_key_id,
            };
            (r.id, at_rest)
        })
        .collect())
}

/// Deletes the webhook with all its logs (their attempts are in them) and its stats
/// rollups in one atomic batch.
pub async fn delete(db: &Db, workspace: &str, id: &str) -> Result<bool> {
    let results = db
        .batch(vec![
            statement(
                db,
                "DELETE FROM delivery_logs INDEXED BY logs_by_webhook WHERE webhook_id = ?2 AND workspace_id = ?1",
                &[&workspace, &id],
            )?,
            statement(
                db,
                "DELETE FROM webhook_rollups WHERE webhook_id = (SELECT id FROM webhooks WHERE workspace_id = ?1 AND id = ?2)",
                &[&workspace, &id],
            )?,
            statement(db, "DELETE FROM webhooks WHERE workspace_id = ?1 AND id = ?2", &[&workspace, &id])?,
        ])
        .await?;
    Ok(results.last().map(changes).unwrap_or(0) > 0)
}

/// A 410 Gone from the receiver turns the webhook off, with the reason. It changes a row
/// only when it disables it (so `webhook.disabled` is published once).
pub fn disable_statement(db: &Db, id: &str, reason: &str, now: UnixMillis) -> Result<worker::D1PreparedStatement> {
    statement(
        db,
        "UPDATE webhooks SET active = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1 AND active = 1",
        &[&id, &reason, &now],
    )
}
