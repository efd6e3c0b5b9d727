//! Reading delivery logs: the filtered, paginated query of SPEC §4.6 and single logs.
//!
//! Every query starts with `workspace_id = ?`, and names its index: the partial
//! `logs_failed_by_workspace` for `status=failed` (migration 0016), else `logs_by_webhook`
//! when the filter has a webhook, else `logs_by_workspace`. Each serves the date range
//! and the newest-first order; the other filters are checked on the rows it walks (an
//! index keyed by every status would cost two more rows written per delivery: 0008).

use serde::Deserialize;
use worker::{D1PreparedStatement, Result};

use super::webhooks::{self, WebhookRecord};
use super::{statement, SqlArg, Db};
use crate::core::crypto::Keyring;
use crate::core::cursor::TOTAL_CAP;
use crate::core::outbound::delivery_log::{AttemptRecord, DeliveryLog, DeliveryStatus, LogFilter};

#[derive(Deserialize)]
pub(crate) struct LogRow {
    id: String,
    webhook_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    response_status: Option<i64>,
    response_body: Option<String>,
    error: Option<String>,
    duration_ms: Option<i64>,
    next_attempt_at: Option<i64>,
    redelivery_of: Option<String>,
    #[serde(default)]
    test: i64,
    created_at: i64,
    updated_at: i64,
    /// Only single-log reads join the event body.
    #[serde(default)]
    payload: Option<String>,
    /// Only single-log reads read the attempts (a JSON array).
    #[serde(default)]
    history: Option<String>,
}

/// One attempt in a log's `history`.
#[derive(Deserialize)]
struct AttemptRow {
    attempt: i64,
    attempted_at: i64,
    response_status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    response_body: Option<String>,
}

#[derive(Deserialize)]
struct CountRow {
    total: i64,
}

fn small(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

impl LogRow {
    pub(crate) fn into_log(self, history: Vec<AttemptRecord>) -> DeliveryLog {
        DeliveryLog {
            id: self.id,
            webhook_id: self.webhook_id,
            event_id: self.event_id,
            event_type: self.event_type,
            status: DeliveryStatus::parse(&self.status).unwrap_or(DeliveryStatus::Failed),
            attempts: small(self.attempts),
            max_attempts: small(self.max_attempts),
            response_status: self.response_status.map(|s| s.clamp(0, 999) as u16),
            response_body: self.response_body,
            error: self.error,
            duration_ms: self.duration_ms.map(small),
            next_attempt_at: self.next_attempt_at,
            redelivery_of: self.redelivery_of,
            test: self.test != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
            payload: self.payload,
            history,
        }
    }
}

impl AttemptRow {
    fn into_record(self) -> AttemptRecord {
        AttemptRecord {
            attempt: small(self.attempt),
            attempted_at: self.attempted_at,
            response_status: self.response_status.map(|s| s.clamp(0, 999) as u16),
            error: self.error,
            duration_ms: small(self.duration_ms),
            response_body: self.response_body,
        }
    }
}

pub(crate) const LOG_COLUMNS: &str = "l.id, l.webhook_id, l.event_id, l.event_type, l.status, l.attempts, \
    l.max_attempts, l.response_status, l.response_body, l.error, l.duration_ms, l.next_attempt_at, \
    l.redelivery_of, l.test, l.created_at, l.updated_at";

/// The index a filter's query walks.
fn index_of(f: &LogFilter) -> &'static str {
    if f.status == Some(DeliveryStatus::Failed) {
        "logs_failed_by_workspace"
    } else if f.webhook_id.is_some() {
        "logs_by_webhook"
    } else {
        "logs_by_workspace"
    }
}

/// The WHERE clause and its arguments for a filter (argument 1 is the workspace).
fn where_clause<'a>(workspace: &'a str, f: &'a LogFilter) -> (String, Vec<Box<dyn SqlArg + 'a>>) {
    let mut sql = String::from("l.workspace_id = ?1");
    let mut args: Vec<Box<dyn SqlArg + 'a>> = vec![Box::new(workspace)];
    let mut add = |clause: &str, arg: Box<dyn SqlArg + 'a>| {
        args.push(arg);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(w) = &f.webhook_id { add("l.webhook_id =", Box::new(w.as_str())); }
    if let Some(t) = f.event_type { add("l.event_type =", Box::new(t.as_str())); }
    if let Some(from) = f.date_from { add("l.created_at >=", Box::new(from)); }
    if let Some(to) = f.date_to { add("l.created_at <=", Box::new(to)); }
    // A literal (one of the enum's fixed names), not a parameter: SQLite uses a partial
    // index only when the query's own text implies its WHERE.
    if let Some(s) = f.status { sql.push_str(&format!(" AND l.status = '{}'", s.as_str())); }
    (sql, args)
}

/// A page of logs and what the API says about the rest.
pub struct LogPageRows {
    pub logs: Vec<DeliveryLog>,
    /// Rows matching the filter, counted up to `TOTAL_CAP + 1`.
    pub counted: u64,
    /// Whether rows follow this page.
    pub more: bool,
}

/// One page of logs (no payloads, no attempts), newest first, after the filter's cursor
/// or offset, with the total counted up to the cap; one D1 round trip, both statements
/// reading the filter's index in order.
pub async fn query(db: &Db, workspace: &str, f: &LogFilter) -> Result<LogPageRows> {
    let (cond, args) = where_clause(workspace, f);
    let count_args: Vec<&dyn SqlArg> = args.iter().map(|a| a.as_ref()).collect();
    let count_sql = format!(
        "SELECT COUNT(*) AS total FROM (SELECT 1 FROM delivery_logs l INDEXED BY {} WHERE {cond} LIMIT {})",
        index_of(f),
        TOTAL_CAP + 1
    );
    let count = statement(db, &count_sql, &count_args)?;
    let rows = page_statement(db, cond, args, f)?;
    let results = db.batch(vec![count, rows]).await?;
    let mut results = results.into_iter();
    let (Some(count), Some(rows)) = (results.next(), results.next()) else {
        return Err(fewer_results());
    };
    let counted = count.results::<CountRow>()?.first().map_or(0, |c| c.total.max(0) as u64);
    let mut logs = page_logs(rows.results::<LogRow>()?);
    let more = logs.len() > f.limit as usize;
    logs.truncate(f.limit as usize);
    Ok(LogPageRows { logs, counted, more })
}

/// One page of logs like `query`, without the total (a webhook's recent logs).
pub async fn page(db: &Db, workspace: &str, f: &LogFilter) -> Result<Vec<DeliveryLog>> {
    let (cond, args) = where_clause(workspace, f);
    let rows = db.all(page_statement(db, cond, args, f)?).await?;
    let mut logs = page_logs(rows.results::<LogRow>()?);
    logs.truncate(f.limit as usize);
    Ok(logs)
}

/// The page's rows (one more than `limit`, which tells whether another page follows),
/// after the filter's cursor or offset.
fn page_statement<'a>(
    db: &Db,
    mut cond: String,
    mut args: Vec<Box<dyn SqlArg + 'a>>,
    f: &'a LogFilter,
) -> Result<D1PreparedStatement> {
    if let Some(c) = &f.cursor {
        args.push(Box::new(c.created_at));
        args.push(Box::new(c.id.as_str()));
        let (at, id) = (args.len() - 1, args.len());
        cond.push_str(&format!(" AND (l.created_at < ?{at} OR (l.created_at = ?{at} AND l.id < ?{id}))"));
    }
    let page_args: Vec<&dyn SqlArg> = args.iter().map(|a| a.as_ref()).collect();
    let page = format!("ORDER BY l.created_at DESC, l.id DESC LIMIT {} OFFSET {}", f.limit + 1, f.offset);
    statement(
        db,
        &format!(
            "SELECT {LOG_COLUMNS} FROM (SELECT l.id FROM delivery_logs l INDEXED BY {} WHERE {cond} {page}) p \
             JOIN delivery_logs l ON l.id = p.id ORDER BY l.created_at DESC, l.id DESC",
            index_of(f)
        ),
        &page_args,
    )
}

fn page_logs(rows: Vec<LogRow>) -> Vec<DeliveryLog> {
    rows.into_iter().map(|row| row.into_log(Vec::new())).collect()
}

/// Single-log rows with their attempts, read from each row's `history`. A history that
/// does not parse (never written by us) shows no attempts rather than failing the read.
fn with_history(rows: Vec<LogRow>) -> Vec<DeliveryLog> {
    rows.into_iter()
        .map(|mut row| {
            let history = row
                .history
                .take()
                .and_then(|h| serde_json::from_str::<Vec<AttemptRow>>(&h).ok())
                .unwrap_or_default()
                .into_iter()
                .map(AttemptRow::into_record)
                .collect();
            row.into_log(history)
        })
        .collect()
}

/// One log of the workspace, with its attempts.
pub async fn get(db: &Db, workspace: &str, id: &str) -> Result<Option<DeliveryLog>> {
    let rows = db.all(log_statement(db, workspace, id)?).await?;
    Ok(with_history(rows.results::<LogRow>()?).pop())
}

/// One log of the workspace with its attempts, and the webhook it belongs to (`None` when
/// either is missing), in one D1 round trip.
pub async fn get_with_webhook(
    db: &Db,
    workspace: &str,
    id: &str,
    keys: &Keyring,
) -> Result<Option<(DeliveryLog, WebhookRecord)>> {
    let statements = vec![log_statement(db, workspace, id)?, webhooks::of_log_statement(db, workspace, id)?];
    let mut results = db.batch(statements).await?.into_iter();
    let (Some(rows), Some(webhook)) = (results.next(), results.next()) else {
        return Err(fewer_results());
    };
    let log = with_history(rows.results::<LogRow>()?).pop();
    Ok(log.zip(webhooks::record_of(webhook, keys)?))
}

/// The log row with its event's payload and its attempts (`history`, oldest first).
fn log_statement(db: &Db, workspace: &str, id: &str) -> Result<D1PreparedStatement> {
    statement(
        db,
        &format!(
            "SELECT {LOG_COLUMNS}, l.history, e.body AS payload FROM delivery_logs l LEFT JOIN events e ON e.id = l.event_id \
             WHERE l.workspace_id = ?1 AND l.id = ?2"
        ),
        &[&workspace, &id],
    )
}

fn fewer_results() -> worker::Error {
    worker::Error::RustError("D1 batch returned fewer results than statements".into())
}
