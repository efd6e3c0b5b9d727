//! Email state from Resend: one row per event (keyed by its svix-id), the suppression
//! list, and the counts behind deliverability analytics.

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use super::{statement, Db};
use crate::core::inbound::email_analytics::{DateRange, TypeCount};
use crate::core::inbound::views::SuppressionView;
use crate::core::inbound::resend_events::{EmailEvent, SuppressionReason};
use crate::core::time::UnixMillis;

/// Stores one event; the svix-id makes a redelivery a no-op.
pub fn insert_event(
    db: &Db,
    svix_id: &str,
    workspace: &str,
    e: &EmailEvent,
    now: UnixMillis,
) -> Result<D1PreparedStatement> {
    let json = |v: serde_json::Result<String>| v.map_err(|e| worker::Error::RustError(e.to_string()));
    let recipients = json(serde_json::to_string(&e.to))?;
    let tags = json(serde_json::to_string(&e.tags))?;
    let detail = json(serde_json::to_string(&e.detail))?;
    statement(
        db,
        "INSERT INTO email_events (id, workspace_id, email_id, event_type, recipients, sender, subject, occurred_at, \
           email_created_at, bounce_type, tags, detail, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING",
        &[&svix_id, &workspace, &e.email_id, &e.event_type.as_str(), &recipients, &e.from, &e.subject, &e.occurred_at,
          &e.email_created_at, &e.bounce.map(|b| b.as_str()), &tags, &detail, &now],
    )
}

/// Puts an address on the workspace's suppression list. The first suppression time is
/// kept; the reason is the latest event's (an older event never replaces it).
pub fn suppress(
    db: &Db,
    workspace: &str,
    address: &str,
    reason: SuppressionReason,
    detail: Option<&str>,
    email_id: Option<&str>,
    at: UnixMillis,
) -> Result<D1PreparedStatement> {
    statement(
        db,
        "INSERT INTO email_suppressions (workspace_id, email, reason, detail, email_id, suppressed_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
         ON CONFLICT (workspace_id, email) DO UPDATE SET \
           reason = CASE WHEN excluded.updated_at >= email_suppressions.updated_at THEN excluded.reason ELSE email_suppressions.reason END, \
           detail = CASE WHEN excluded.updated_at >= email_suppressions.updated_at THEN excluded.detail ELSE email_suppressions.detail END, \
           email_id = CASE WHEN excluded.updated_at >= email_suppressions.updated_at THEN excluded.email_id ELSE email_suppressions.email_id END, \
           suppressed_at = min(email_suppressions.suppressed_at, excluded.suppressed_at), \
           updated_at = max(email_suppressions.updated_at, excluded.updated_at)",
        &[&workspace, &address, &reason.as_str(), &detail, &email_id, &at],
    )
}

#[derive(Deserialize)]
struct CountRow {
    event_type: String,
    events: i64,
    emails: i64,
    hard_bounces: Option<i64>,
    soft_bounces: Option<i64>,
}

/// Bounds for an open-ended range, exactly representable in D1's numbers.
const MIN_TIME: i64 = -(1 << 53);
const MAX_TIME: i64 = 1 << 53;

/// Events and distinct emails per type in the range (inclusive), for analytics.
pub async fn counts(db: &Db, workspace: &str, range: DateRange) -> Result<Vec<TypeCount>> {
    let rows = db.all(statement(
        db,
        "SELECT event_type, COUNT(*) AS events, COUNT(DISTINCT COALESCE(email_id, id)) AS emails, \
           SUM(CASE WHEN bounce_type = 'hard' THEN 1 ELSE 0 END) AS hard_bounces, \
           SUM(CASE WHEN bounce_type = 'soft' THEN 1 ELSE 0 END) AS soft_bounces \
         FROM email_events WHERE workspace_id = ?1 AND occurred_at >= ?2 AND occurred_at <= ?3 \
         GROUP BY event_type",
        &[&workspace, &range.from.unwrap_or(MIN_TIME), &range.to.unwrap_or(MAX_TIME)],
    )?).await?
    .results::<CountRow>()?;
    Ok(rows
        .into_iter()
        .map(|r| TypeCount {
            event_type: r.event_type,
            events: r.events,
            emails: r.emails,
            hard_bounces: r.hard_bounces.unwrap_or(0),
            soft_bounces: r.soft_bounces.unwrap_or(0),
        })
        .collect())
}

#[derive(Deserialize)]
struct SuppressionRow {
    email: String,
    reason: String,
    detail: Option<String>,
    email_id: Option<String>,
    suppressed_at: i64,
    updated_at: i64,
}

#[derive(Deserialize)]
struct Total {
    total: i64,
}

/// The newest `limit` entries of the suppression list, and its total size.
pub async fn suppressions(db: &Db, workspace: &str, limit: u32) -> Result<(Vec<SuppressionView>, u64)> {
    let results = db
        .batch(vec![
            statement(db, "SELECT COUNT(*) AS total FROM email_suppressions WHERE workspace_id = ?1", &[&workspace])?,
            statement(
                db,
                "SELECT email, reason, detail, email_id, suppressed_at, updated_at FROM email_suppressions \
                 WHERE workspace_id = ?1 ORDER BY suppressed_at DESC, email LIMIT ?2",
                &[&workspace, &limit],
            )?,
        ])
        .await?;
    let total = results
        .first()
        .map(|r| r.results::<Total>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .map_or(0, |t| t.total.max(0) as u64);
    let page = results
        .get(1)
        .map(|r| r.results::<SuppressionRow>())
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .map(|r| SuppressionView {
            email: r.email,
            reason: r.reason,
            detail: r.detail,
            email_id: r.email_id,
            suppressed_at: r.suppressed_at,
            updated_at: r.updated_at,
        })
        .collect();
    Ok((page, total))
}
