//! The cron (every minute): re-enqueue overdue pending deliveries (lost messages, failed
//! queue sends, crashed consumers), fail deliveries interrupted after their last attempt,
//! and purge logs older than `LOG_RETENTION_DAYS`.

use serde_json::json;
use worker::{D1Database, Env};

use super::fanout::enqueue;
use super::{log_event, now_ms};
use crate::config::Config;
use crate::core::time::MS_PER_DAY;
use crate::store::deliveries;

/// Re-enqueued per run; a larger backlog drains over the following minutes.
const MAX_REENQUEUE_PER_RUN: u32 = 1000;

pub async fn run(env: &Env, db: &D1Database, config: &Config) -> worker::Result<()> {
    let now = now_ms();
    let cutoff = now - i64::from(config.log_retention_days) * MS_PER_DAY;
    let grace_ms = i64::from(config.sweep_grace_secs) * 1000;
    let report = deliveries::sweep(db, now, grace_ms, cutoff, MAX_REENQUEUE_PER_RUN).await?;
    let enqueued = enqueue(env, &report.overdue_ids).await;
    log_event(json!({
        "msg": "sweep", "reenqueued": report.overdue_ids.len(), "enqueue_ok": enqueued.is_ok(),
        "interrupted_failed": report.interrupted_failed, "purged_logs": report.purged_logs,
    }));
    enqueued
}
