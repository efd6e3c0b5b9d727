//! Webhook configurations, always scoped by workspace.

use std::collections::BTreeMap;

use serde::Deserialize;
use worker::{D1Database, Result};

use super::{changes, statement};
use crate::core::catalog::EventType;
use crate::core::time::UnixMillis;
use crate::core::outbound::webhook::{StoredWebhook, WebhookConfig, WebhookSecret};

#[derive(Deserialize)]
struct WebhookRow {
    id: String,
    name: String,
    url: String,
    secret: Option<String>,
    events: String,
    active: i64,
    headers: String,
    retry_count: i64,
    timeout_ms: i64,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl WebhookRow {
    fn into_stored(self) -> StoredWebhook {
        // Rows were written from validated configs; parsing back cannot meet bad data
        // unless the table was edited by hand, in which case unknown items are skipped.
        let events = serde_json::from_str::<Vec<String>>(&self.events)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| EventType::parse(e))
            .collect();
        let headers = serde_json::from_str::<BTreeMap<String, String>>(&self.headers).unwrap_or_default();
        StoredWebhook {
            id: self.id,
            config: WebhookConfig {
                name: self.name,
                url: self.url,
                secret: self.secret.map(WebhookSecret::from_stored),
                events,
                active: self.active != 0,
                headers,
                retry_count: self.retry_count.clamp(0, 10) as u32,
                timeout_ms: self.timeout_ms.clamp(1000, 30_000) as u32,
            },
            disabled_reason: self.disabled_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLUMNS: &str = "id, name, url, secret, events, active, headers, retry_count, timeout_ms, \
                       disabled_reason, created_at, updated_at";

fn events_json(events: &[EventType]) -> String {
    serde_json::Value::from(events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string()
}

fn headers_json(headers: &BTreeMap<String, String>) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "{}".into())
}

pub async fn insert(db: &D1Database, workspace: &str, id: &str, c: &WebhookConfig, now: UnixMillis) -> Result<()> {
    statement(
        db,
        "INSERT INTO webhooks (id, workspace_id, name, url, secret, events, active, headers, \
         retry_count, timeout_ms, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?11)",
        &[&id, &workspace, &c.name, &c.url, &c.secret.as_ref().map(|s| s.expose()), &events_json(&c.events),
          &c.active, &headers_json(&c.headers), &c.retry_count, &c.timeout_ms, &now],
    )?
    .run()
    .await
    .map(|_| ())
}

pub async fn list(db: &D1Database, workspace: &str) -> Result<Vec<StoredWebhook>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 ORDER BY created_at DESC, id DESC");
    let rows: Vec<WebhookRow> = statement(db, &sql, &[&workspace])?.all().await?.results()?;
    Ok(rows.into_iter().map(WebhookRow::into_stored).collect())
}

pub async fn get(db: &D1Database, workspace: &str, id: &str) -> Result<Option<StoredWebhook>> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 AND id = ?2");
    let row: Option<WebhookRow> = statement(db, &sql, &[&workspace, &id])?.first(None).await?;
    Ok(row.map(WebhookRow::into_stored))
}

/// Writes the whole configuration. Re-activating a webhook clears why it was disabled.
pub async fn update(db: &D1Database, workspace: &str, id: &str, c: &WebhookConfig, now: UnixMillis) -> Result<bool> {
    let result = statement(
        db,
        "UPDATE webhooks SET name = ?3, url = ?4, secret = ?5, events = ?6, active = ?7, headers = ?8, \
         retry_count = ?9, timeout_ms = ?10, updated_at = ?11, \
         disabled_reason = CASE WHEN ?7 = 1 THEN NULL ELSE disabled_reason END \
         WHERE workspace_id = ?1 AND id = ?2",
        &[&workspace, &id, &c.name, &c.url, &c.secret.as_ref().map(|s| s.expose()), &events_json(&c.events),
          &c.active, &headers_json(&c.headers), &c.retry_count, &c.timeout_ms, &now],
    )?
    .run()
    .await?;
    Ok(changes(&result) > 0)
}

/// Deletes the webhook with all its logs and attempts in one atomic batch.
pub async fn delete(db: &D1Database, workspace: &str, id: &str) -> Result<bool> {
    let results = db
        .batch(vec![
            statement(
                db,
                "DELETE FROM delivery_attempts WHERE log_id IN \
                 (SELECT id FROM delivery_logs WHERE workspace_id = ?1 AND webhook_id = ?2)",
                &[&workspace, &id],
            )?,
            statement(db, "DELETE FROM delivery_logs WHERE workspace_id = ?1 AND webhook_id = ?2", &[&workspace, &id])?,
            statement(db, "DELETE FROM webhooks WHERE workspace_id = ?1 AND id = ?2", &[&workspace, &id])?,
        ])
        .await?;
    Ok(results.last().map(changes).unwrap_or(0) > 0)
}

/// A 410 Gone from the receiver turns the webhook off, with the reason.
pub fn disable_statement(db: &D1Database, id: &str, reason: &str, now: UnixMillis) -> Result<worker::D1PreparedStatement> {
    statement(
        db,
        "UPDATE webhooks SET active = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
        &[&id, &reason, &now],
    )
}
