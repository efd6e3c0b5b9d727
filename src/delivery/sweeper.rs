//! The cron (every minute): re-enqueue overdue pending deliveries (lost messages, failed
//! queue sends, crashed consumers), wake the schedulers of lanes left overdue (scheduled
//! deliveries are never re-enqueued), fail deliveries interrupted after their last attempt,
//! purge logs older than `LOG_RETENTION_DAYS`, and seal webhook rows still in clear or
//! under the previous encryption key with the current one (a bounded number per run).
//! Every shard is swept, concurrently and each within its own time budget, so that one
//! slow database does not starve the others. Workspace moves whose next queue message
//! went missing are queued again.

use futures_util::future::{join_all, select, Either};
use serde_json::json;
use worker::{Delay, Env};

use super::queue::{enqueue, enqueue_move};
use super::lanes;
use super::{log_event, now_ms};
use crate::store::Db;
use crate::config::Config;
use crate::core::outbound::sealed;
use crate::core::outbound::secrets::{self, SecretSet};
use crate::core::moves::stalled_after_ms;
use crate::core::time::MS_PER_DAY;
use crate::store::shards::{Shard, Shards};
use crate::store::{deliveries, moves, schedule, webhooks};

/// Re-enqueued per run; a larger backlog drains over the following minutes.
const MAX_REENQUEUE_PER_RUN: u32 = 1000;
/// Stalled moves queued again per run.
const MAX_RESUMED_MOVES: u32 = 10;
/// Schedulers woken per run and shard (one Durable Object request each).
const MAX_LANES_WOKEN_PER_RUN: u32 = 20;
/// Webhook rows (re-)sealed per run: one D1 batch of at most this many updates.
const MAX_RESEAL_PER_RUN: u32 = 50;

/// One shard's sweep may take this long; past it, the rest waits for the next minute
/// (every step is idempotent, so a cut-off sweep leaves nothing half done).
const SHARD_BUDGET_MS: u64 = 20_000;

/// Sweeps every listed shard; `Err` if any shard's sweep failed or ran out of time.
pub async fn run_all(env: &Env, config: &Config) -> worker::Result<()> {
    let list = config.shards.as_ref().map_err(|reason| worker::Error::RustError(reason.clone()))?;
    let set = Shards::new(env, list);
    let shards = set.all()?;
    let directory = set.directory()?;
    let sweeps = shards.iter().map(|shard| async move {
        let sweep = Box::pin(run(env, shard, config));
        let budget = Box::pin(Delay::from(std::time::Duration::from_millis(SHARD_BUDGET_MS)));
        match select(sweep, budget).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => {
                log_event(json!({"level": "warn", "msg": "sweep cut at its time budget", "shard": shard.name,
                                 "budget_ms": SHARD_BUDGET_MS}));
                Err(worker::Error::RustError(format!("sweep of {} exceeded its budget", shard.name)))
            }
        }
    });
    let (outcomes, resumed) = futures_util::join!(join_all(sweeps), resume_stalled_moves(env, &directory, config));
    let mut first_error = resumed.err();
    for (shard, outcome) in shards.iter().zip(outcomes) {
        if let Err(e) = outcome {
            log_event(json!({"level": "error", "msg": "sweep failed", "shard": shard.name, "error": e.to_string()}));
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn run(env: &Env, shard: &Shard, config: &Config) -> worker::Result<()> {
    let db = &shard.db;
    let now = now_ms();
    let cutoff = now - i64::from(config.log_retention_days) * MS_PER_DAY;
    let grace_ms = i64::from(config.sweep_grace_secs) * 1000;
    let report = deliveries::sweep(db, now, grace_ms, cutoff, MAX_REENQUEUE_PER_RUN).await?;
    let enqueued = enqueue(env, &shard.name, &report.overdue_ids).await;
    // Scheduled deliveries are never re-enqueued: their schedulers are woken instead.
    let lanes = schedule::overdue_lanes(db, now, grace_ms, MAX_LANES_WOKEN_PER_RUN).await;
    let woken = match &lanes {
        Ok(lanes) => lanes::wake_all(env, &shard.name, lanes.iter().map(String::as_str)).await,
        Err(_) => 0,
    };
    let resealed = reseal(db, config, now).await;
    // Move triggers only while a fence needs them (a round trip only when they change).
    let triggers = moves::settle_triggers(db, report.move_triggers_present, report.move_triggers_needed, now).await;
    // The whole run's D1 work: the sweep batch, the lanes' look-up and the re-sealing.
    let rows = db.rows();
    log_event(json!({
        "msg": "sweep", "shard": shard.name, "reenqueued": report.overdue_ids.len(), "enqueue_ok": enqueued.is_ok(),
        "schedulers_woken": woken,
        "interrupted_failed": report.interrupted_failed, "purged_logs": report.purged_logs,
        "walked": report.walked, "rows_read": rows.read, "rows_written": rows.written,
        "move_triggers": match &triggers {
            Ok(Some(moves::TriggerChange::Created)) => "created",
            Ok(Some(moves::TriggerChange::Dropped)) => "dropped",
            Ok(None) => "unchanged",
            Err(_) => "error",
        },
    }));
    enqueued.map(|_| ()).and(lanes.map(|_| ())).and(resealed).and(triggers.map(|_| ()))
}

/// Queues again every move whose job has not been saved for longer than any wait it
/// schedules itself. Two runners of one job cannot both save (`store::moves::save`).
async fn resume_stalled_moves(env: &Env, directory: &Db, config: &Config) -> worker::Result<()> {
    let before = now_ms() - stalled_after_ms(config.move_cleanup_delay_secs);
    for job in moves::stalled(directory, before, MAX_RESUMED_MOVES).await? {
        log_event(json!({"level": "warn", "msg": "stalled move queued again", "job": job}));
        enqueue_move(env, &job, 0).await?;
    }
    Ok(())
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
