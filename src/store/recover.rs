//! Recover (SPEC §8.4): counting a webhook's failed deliveries in a window and creating
//! their redeliveries chunk by chunk. Both walk the partial index `logs_failed_by_webhook`
//! (webhook, end time, id) of failed deliveries.

use serde::Deserialize;
use worker::Result;

use super::{statement, Db};
use crate::core::ids::delivery_id_sql;
use crate::core::outbound::recover::{Cursor, Window, CHUNK};
use crate::core::time::UnixMillis;

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

/// Failed deliveries of the webhook whose end falls in the window.
pub async fn count_failed(db: &Db, webhook_id: &str, w: &Window) -> Result<u64> {
    let row: Option<CountRow> = db.first(statement(
        db,
        "SELECT COUNT(*) AS n FROM delivery_logs \
         WHERE webhook_id = ?1 AND status = 'failed' AND updated_at >= ?2 AND updated_at <= ?3",
        &[&webhook_id, &w.since, &w.until],
    )?).await?;
    Ok(row.map_or(0, |r| r.n.max(0) as u64))
}

/// One chunk of a recovery to run.
pub struct ChunkRequest<'a> {
    pub job: &'a str,
    pub webhook_id: &'a str,
    pub window: Window,
    pub after: Option<&'a Cursor>,
    pub now: UnixMillis,
}

/// What one chunk did.
pub struct ChunkDone {
    /// The chunk's redeliveries (those created now and those a previous try created).
    pub redelivery_ids: Vec<String>,
    /// Where the next chunk starts; `None` when this was the last.
    pub next: Option<Cursor>,
}

#[derive(Deserialize)]
struct ChunkRow {
    original: String,
    ended_at: i64,
    redelivery: Option<String>,
}

/// The chunk's originals: up to `CHUNK` failed deliveries after the cursor, in order.
const CHUNK_ORIGINALS: &str = "SELECT id, workspace_id, webhook_id, event_id, event_type, updated_at FROM delivery_logs \
     WHERE webhook_id = ?1 AND status = 'failed' AND updated_at >= ?2 AND updated_at <= ?3 \
       AND (updated_at > ?4 OR (updated_at = ?4 AND id > ?5)) \
     ORDER BY updated_at, id LIMIT ?6";

/// Creates the redeliveries of one chunk in one D1 round trip: one `INSERT … SELECT`
/// (idempotent: the unique (redelivery_of, recover_job) index makes a retried chunk add
/// nothing) and one read of the chunk's originals with their redeliveries.
pub async fn run_chunk(db: &Db, r: &ChunkRequest<'_>) -> Result<ChunkDone> {
    let (after_at, after_id) = match r.after {
        Some(c) => (c.at, c.id.as_str()),
        // Before the window: every original in it comes after.
        None => (r.window.since - 1, ""),
    };
    let args: [&dyn super::SqlArg; 6] = [&r.webhook_id, &r.window.since, &r.window.until, &after_at, &after_id, &CHUNK];
    let results = db
        .batch(vec![
            statement(
                db,
                &format!(
                    "INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, \
                       max_attempts, redelivery_of, recover_job, created_at, updated_at) \
                     SELECT {}, o.workspace_id, o.webhook_id, o.event_id, o.event_type, \
                       'pending', 0, w.retry_count + 1, o.id, ?7, ?8, ?8 \
                     FROM ({CHUNK_ORIGINALS}) o JOIN webhooks w ON w.id = o.webhook_id \
                     WHERE true ON CONFLICT DO NOTHING",
                    delivery_id_sql(8)
                ),
                &[args[0], args[1], args[2], args[3], args[4], args[5], &r.job, &r.now],
            )?,
            // The originals' events now have newer logs: the purge keeps them as long.
            statement(
                db,
                &format!("UPDATE events SET last_log_at = ?7 WHERE id IN (SELECT event_id FROM ({CHUNK_ORIGINALS}))"),
                &[args[0], args[1], args[2], args[3], args[4], args[5], &r.now],
            )?,
            statement(
                db,
                &format!(
                    "SELECT o.id AS original, o.updated_at AS ended_at, r.id AS redelivery \
                     FROM ({CHUNK_ORIGINALS}) o \
                     LEFT JOIN delivery_logs r ON r.redelivery_of = o.id AND r.recover_job = ?7 \
                     ORDER BY o.updated_at, o.id"
                ),
                &[args[0], args[1], args[2], args[3], args[4], args[5], &r.job],
            )?,
        ])
        .await?;
    let rows: Vec<ChunkRow> = match results.get(2) {
        Some(res) => res.results()?,
        None => Vec::new(),
    };
    let next = match rows.last() {
        Some(last) if rows.len() as u32 >= CHUNK => Some(Cursor { at: last.ended_at, id: last.original.clone() }),
        _ => None,
    };
    Ok(ChunkDone { redelivery_ids: rows.into_iter().filter_map(|r| r.redelivery).collect(), next })
}
