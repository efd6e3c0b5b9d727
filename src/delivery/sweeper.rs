//! The cron (every minute): re-enqueue overdue pending deliveries (lost messages, failed
//! queue sends, crashed consumers), fail deliveries interrupted after their last attempt,
//! purge logs older than `LOG_RETENTION_DAYS`, and seal webhook rows still in clear or
//! under the previous encryption key with the current one (a bounded number per run).

use serde_json::json;
use worker::Env;

use super::queue::enqueue;
use super::{log_event, now_ms};
use crate::store::Db;
use crate::config::Config;
use crate::core::outbound::sealed;
use crate::core::outbound::secrets::{self, SecretSet};
use crate::core::time::MS_PER_DAY;
use crate::store::{deliveries, webhooks};

/// Re-enqueued per run; a larger backlog drains over the following minutes.
const MAX_REENQUEUE_PER_RUN: u32 = 1000;
/// Webhook rows (re-)sealed per run: one D1 batch of at most this many updates.
const MAX_RESEAL_PER_RUN: u32 = 50;

pub async fn run(env: &Env, db: &Db, config: &Config) -> worker::Result<()> {
    let now = now_ms();
    let cutoff = now - i64::from(config.log_retention_days) * MS_PER_DAY;
    let grace_ms = i64::from(config.sweep_grace_secs) * 1000;
    let report = deliveries::sweep(db, now, grace_ms, cutoff, MAX_REENQUEUE_PER_RUN).await?;
    let enqueued = enqueue(env, &report.overdue_ids).await;
    let resealed = reseal(db, config, now).await;
    // The whole run's D1 work: the sweep batch and the re-sealing.
    let rows = db.rows();
    log_event(json!({
        "msg": "sweep", "reenqueued": report.overdue_ids.len(), "enqueue_ok": enqueued.is_ok(),
        "interrupted_failed": report.interrupted_failed, "purged_logs": report.purged_logs,
        "walked": report.walked, "rows_read": rows.read, "rows_written": rows.written,
    }));
    enqueued.map(|_| ()).and(resealed)
}

/// Seals legacy rows (clear secret and headers, from before migration 0004; one without
/// a secret gets a generated one) and rows under `WEBHOOK_ENCRYPTION_KEY_PREVIOUS` with
/// the current key. A row changed meanwhile is left for the next run (guarded update).
async fn reseal(db: &Db, config: &Config, now: i64) -> worker::Result<()> {
    let keys = &config.keys;
    if keys.current().is_err() {
        return Ok(());
    }
    let candidates = webhooks::reseal_candidates(db, keys.previous_id(), MAX_RESEAL_PER_RUN).await?;
    if candidates.is_empty() {
        return Ok(());
    }
    let mut statements = Vec::with_capacity(candidates.len());
    let mut unreadable = 0;
    for (id, at_rest) in &candidates {
        let opened = at_rest.open_secrets(keys, id).and_then(|s| at_rest.open_headers(keys, id).map(|h| (s, h)));
        let (set, headers) = match opened {
            Ok((set, headers)) => (set.unwrap_or_else(|| SecretSet::new(secrets::generate())), headers),
            Err(e) => {
                unreadable += 1;
                log_event(json!({"level": "error", "msg": "webhook not re-sealed: sealed fields do not open",
                                 "webhook": id, "error": e.to_string()}));
                continue;
            }
        };
        let mut set = set;
        set.prune(now);
        match sealed::seal(keys, id, &set, &headers) {
            Ok(columns) => statements.push(webhooks::replace_sealed_statement(db, id, at_rest, &columns, None)?),
            Err(_) => return Ok(()),
        }
    }
    let count = statements.len();
    if count > 0 {
        db.batch(statements).await?;
    }
    log_event(json!({"msg": "webhooks sealed under the current key", "count": count, "unreadable": unreadable}));
    Ok(())
}
