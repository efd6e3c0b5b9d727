//! Stats of one webhook's deliveries over a window (SPEC §8.4), in one D1 round trip of
//! three grouped reads, each served by the covering index `logs_stats`
//! (webhook, created_at, status, id) and, for durations, the attempts' primary key.

use serde::Deserialize;
use worker::{D1Database, Result};

use super::statement;
use crate::core::time::UnixMillis;

/// The raw figures; `core::outbound::stats` turns them into the response.
pub struct RawStats {
    pub success: u64,
    pub failed: u64,
    pub pending: u64,
    /// (bucket index, successes, failures).
    pub series: Vec<(i64, u64, u64)>,
    /// (attempt duration in ms, how many attempts took it).
    pub durations: Vec<(u32, u64)>,
}

#[derive(Deserialize)]
struct StatusRow {
    status: String,
    n: i64,
}

#[derive(Deserialize)]
struct BucketRow {
    b: i64,
    s: i64,
    f: i64,
}

#[derive(Deserialize)]
struct DurationRow {
    d: i64,
    n: i64,
}

/// The SQL of the three reads (also shown by the tests' EXPLAIN QUERY PLAN).
pub const BY_STATUS: &str = "SELECT status, COUNT(*) AS n FROM delivery_logs \
     WHERE webhook_id = ?1 AND created_at >= ?2 AND created_at <= ?3 GROUP BY status";
pub const SERIES: &str = "SELECT CAST((created_at - ?2) / ?4 AS INTEGER) AS b, SUM(status = 'success') AS s, SUM(status = 'failed') AS f \
     FROM delivery_logs WHERE webhook_id = ?1 AND created_at >= ?2 AND created_at <= ?3 GROUP BY b";
pub const DURATIONS: &str = "SELECT a.duration_ms AS d, COUNT(*) AS n FROM delivery_logs l \
     JOIN delivery_attempts a ON a.log_id = l.id \
     WHERE l.webhook_id = ?1 AND l.created_at >= ?2 AND l.created_at <= ?3 GROUP BY a.duration_ms";

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

pub async fn webhook_stats(db: &D1Database, webhook_id: &str, from: UnixMillis, to: UnixMillis, bucket_ms: i64) -> Result<RawStats> {
    let results = db
        .batch(vec![
            statement(db, BY_STATUS, &[&webhook_id, &from, &to])?,
            statement(db, SERIES, &[&webhook_id, &from, &to, &bucket_ms])?,
            statement(db, DURATIONS, &[&webhook_id, &from, &to])?,
        ])
        .await?;
    let mut raw = RawStats { success: 0, failed: 0, pending: 0, series: Vec::new(), durations: Vec::new() };
    if let Some(r) = results.first() {
        for row in r.results::<StatusRow>()? {
            match row.status.as_str() {
                "success" => raw.success = count(row.n),
                "failed" => raw.failed = count(row.n),
                _ => raw.pending += count(row.n),
            }
        }
    }
    if let Some(r) = results.get(1) {
        raw.series = r.results::<BucketRow>()?.into_iter().map(|b| (b.b, count(b.s), count(b.f))).collect();
    }
    if let Some(r) = results.get(2) {
        raw.durations = r
            .results::<DurationRow>()?
            .into_iter()
            .map(|d| (d.d.clamp(0, i64::from(u32::MAX)) as u32, count(d.n)))
            .collect();
    }
    Ok(raw)
}
