//! Stats of one webhook over a window (SPEC §8.4, §9.1), from its hourly rollups only
//! (`webhook_rollups`, kept by the batches that record outcomes): one row per hour of the
//! window at most (720 for 30 days), read by primary key, whatever the number of logs;
//! plus the count of its deliveries waiting for a retry now, capped. One round trip, which
//! also says whether the workspace owns the webhook (its row's key only: not the health
//! columns, whose latest success may walk the webhook's rollups).

use serde::Deserialize;
use worker::Result;

use super::{statement, Db};
use crate::core::outbound::rollup::{HourRollup, BUCKETS};
use crate::core::time::UnixMillis;

/// The raw figures; `core::outbound::stats` turns them into the response.
pub struct RawStats {
    pub success: u64,
    pub failed: u64,
    /// Deliveries waiting for a retry now, counted up to [`PENDING_CAP`].
    pub pending: u64,
    /// (bucket index, successes, failures).
    pub series: Vec<(i64, u64, u64)>,
    /// (attempt duration in ms, how many attempts took it), from the histogram.
    pub durations: Vec<(u32, u64)>,
}

/// Waiting deliveries counted at most (keeps a call within 800 rows read).
pub const PENDING_CAP: u32 = 50;

#[derive(Deserialize)]
struct RollupRow {
    hour: i64,
    success: i64,
    failed: i64,
    attempts: i64,
    /// The histogram's counts as a JSON array.
    d: String,
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

/// The SQL of the reads (also shown by the tests' EXPLAIN QUERY PLAN).
pub fn rollups_sql() -> String {
    let columns: Vec<String> = (0..BUCKETS).map(|b| format!("d{b}")).collect();
    format!(
        "SELECT hour, success, failed, attempts, json_array({}) AS d FROM webhook_rollups \
         WHERE webhook_id = ?1 AND hour >= ?2 AND hour <= ?3",
        columns.join(", ")
    )
}
pub const PENDING: &str = "SELECT COUNT(*) AS n FROM (SELECT 1 FROM delivery_logs INDEXED BY logs_waiting_by_webhook \
     WHERE webhook_id = ?1 AND next_attempt_at IS NOT NULL AND status = 'pending' LIMIT ?2)";

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

/// The workspace owns the webhook (one primary-key look-up).
const OWNED: &str = "SELECT COUNT(*) AS n FROM webhooks WHERE id = ?1 AND workspace_id = ?2";

/// `None`: the workspace has no such webhook.
pub async fn webhook_stats(db: &Db, workspace: &str, webhook_id: &str, from: UnixMillis, to: UnixMillis, bucket_ms: i64)
    -> Result<Option<RawStats>> {
    let results = db
        .batch(vec![
            statement(db, OWNED, &[&webhook_id, &workspace])?,
            statement(db, &rollups_sql(), &[&webhook_id, &from, &to])?,
            statement(db, PENDING, &[&webhook_id, &PENDING_CAP])?,
        ])
        .await?;
    let owned = match results.first() {
        Some(r) => r.results::<CountRow>()?.first().is_some_and(|c| c.n > 0),
        None => false,
    };
    if !owned {
        return Ok(None);
    }
    let results = &results[1..];
    let mut total = HourRollup::default();
    let mut series: Vec<(i64, u64, u64)> = Vec::new();
    if let Some(r) = results.first() {
        for row in r.results::<RollupRow>()? {
            let mut hour = HourRollup { success: count(row.success), failed: count(row.failed), attempts: count(row.attempts),
                                        ..HourRollup::default() };
            let counts: Vec<i64> = serde_json::from_str(&row.d).unwrap_or_default();
            for (slot, n) in hour.durations.iter_mut().zip(counts) {
                *slot = count(n);
            }
            total.add(&hour);
            let b = (row.hour - from).div_euclid(bucket_ms.max(1));
            match series.iter_mut().find(|(i, _, _)| *i == b) {
                Some(point) => {
                    point.1 += hour.success;
                    point.2 += hour.failed;
                }
                None => series.push((b, hour.success, hour.failed)),
            }
        }
    }
    let pending = match results.get(1) {
        Some(r) => r.results::<CountRow>()?.first().map_or(0, |c| count(c.n)),
        None => 0,
    };
    Ok(Some(RawStats { success: total.success, failed: total.failed, pending, series, durations: total.histogram() }))
}
