//! Recover (SPEC §8.4, §9.4): counting a webhook's failed deliveries in a window and
//! creating their redeliveries chunk by chunk, holding the webhook so that one recovery
//! runs at a time. Both walk the partial index `logs_failed_by_webhook` (webhook, end
//! time, id) of failed deliveries; whether one already has a redelivery is a lookup in
//! `logs_redeliveries`.

use serde::Deserialize;
use worker::Result;

use super::{changes, statement, Db};
use super::schedule::scheduled_w;
use crate::core::ids::delivery_id_sql;
use crate::core::outbound::recover::{Cursor, Window, CHUNK};
use crate::core::time::UnixMillis;

/// How long a recovery holds its webhook without a chunk renewing it: a job whose queue
/// messages were lost lets go after this.
const HOLD_MS: i64 = 15 * 60 * 1000;

/// Takes the webhook for recovery `job`; false while another recovery holds it.
pub async fn hold(db: &Db, webhook_id: &str, job: &str, now: UnixMillis) -> Result<bool> {
    let result = db.run(statement(
        db,
        "UPDATE webhooks SET recover_job = ?2, recover_until = ?3 + ?4 \
         WHERE id = ?1 AND (recover_job IS NULL OR recover_until < ?3)",
        &[&webhook_id, &job, &now, &HOLD_MS],
    )?).await?;
    Ok(changes(&result) > 0)
}

/// Lets the webhook go once `job` has created all its redeliveries (or never started).
pub async fn release(db: &Db, webhook_id: &str, job: &str) -> Result<()> {
    db.run(statement(
        db,
        "UPDATE webhooks SET recover_job = NULL, recover_until = NULL WHERE id = ?1 AND recover_job = ?2",
        &[&webhook_id, &job],
    )?).await?;
    Ok(())
}

/// A failed log is recovered only if it has no redelivery yet (other than those of the
/// running job `?7`, so a retried chunk sees its own): a pending or successful one is on
/// its way or arrived, and a failed one is itself the candidate. So each chain of
/// redeliveries is recovered once, at its newest failure.
const NOT_REDELIVERED: &str = "NOT EXISTS (SELECT 1 FROM delivery_logs r WHERE r.redelivery_of = f.id \
       AND r.recover_job IS NOT ?7)";

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

/// Failed deliveries of the webhook whose end falls in the window.
pub async fn count_failed(db: &Db, webhook_id: &str, w: &Window) -> Result<u64> {
    let row: Option<CountRow> = db.first(statement(
        db,
        &format!("SELECT COUNT(*) AS n FROM delivery_logs f \
         WHERE f.webhook_id = ?1 AND f.status = 'failed' AND f.updated_at >= ?2 AND f.updated_at <= ?3 \
           AND {}", NOT_REDELIVERED.replace("?7", "?4")),
        &[&webhook_id, &w.since, &w.until, &""],
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

/// The chunk's originals: up to `CHUNK` failed deliveries after the cursor, in order, not
/// yet redelivered.
fn chunk_originals() -> String {
    format!(
        "SELECT f.id, f.workspace_id, f.webhook_id, f.event_id, f.event_type, f.updated_at, f.test FROM delivery_logs f \
         WHERE f.webhook_id = ?1 AND f.status = 'failed' AND f.updated_at >= ?2 AND f.updated_at <= ?3 \
           AND (f.updated_at > ?4 OR (f.updated_at = ?4 AND f.id > ?5)) AND {NOT_REDELIVERED} \
         ORDER BY f.updated_at, f.id LIMIT ?6"
    )
}

/// Creates the redeliveries of one chunk in one D1 round trip: one `INSERT … SELECT`
/// (idempotent: the unique (redelivery_of, recover_job) index makes a retried chunk add
/// nothing) and one read of the chunk's originals with their redeliveries.
pub async fn run_chunk(db: &Db, r: &ChunkRequest<'_>) -> Result<ChunkDone> {
    let (after_at, after_id) = match r.after {
        Some(c) => (c.at, c.id.as_str()),
        // Before the window: every original in it comes after.
        None => (r.window.since - 1, ""),
    };
    let originals = chunk_originals();
    let args: [&dyn super::SqlArg; 6] = [&r.webhook_id, &r.window.since, &r.window.until, &after_at, &after_id, &CHUNK];
    let results = db
        .batch(vec![
            statement(
                db,
                &format!(
                    "INSERT INTO delivery_logs (id, workspace_id, webhook_id, event_id, event_type, status, attempts, \
                       max_attempts, redelivery_of, recover_job, created_at, updated_at, test, scheduled) \
                     SELECT {}, o.workspace_id, o.webhook_id, o.event_id, o.event_type, \
                       'pending', 0, CASE WHEN o.test = 1 THEN 1 ELSE w.retry_count + 1 END, o.id, ?7, ?8, ?8, o.test, {} \
                     FROM ({originals}) o JOIN webhooks w ON w.id = o.webhook_id \
                     WHERE true ON CONFLICT DO NOTHING",
                    delivery_id_sql("?8"), scheduled_w("?8")
                ),
                &[args[0], args[1], args[2], args[3], args[4], args[5], &r.job, &r.now],
            )?,
            // The originals' events now have newer logs: the purge keeps them as long.
            statement(
                db,
                &format!("UPDATE events SET last_log_at = ?7 WHERE id IN (SELECT event_id FROM ({originals}))"),
                &[args[0], args[1], args[2], args[3], args[4], args[5], &r.now],
            )?,
            statement(
                db,
                &format!(
                    "SELECT o.id AS original, o.updated_at AS ended_at, r.id AS redelivery \
                     FROM ({originals}) o \
                     LEFT JOIN delivery_logs r ON r.redelivery_of = o.id AND r.recover_job = ?7 \
                     ORDER BY o.updated_at, o.id"
                ),
                &[args[0], args[1], args[2], args[3], args[4], args[5], &r.job],
            )?,
            // Still running: the hold lasts another while.
            statement(
                db,
                "UPDATE webhooks SET recover_until = ?3 + ?4 WHERE id = ?1 AND recover_job = ?2",
                &[&r.webhook_id, &r.job, &r.now, &HOLD_MS],
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
