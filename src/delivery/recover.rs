//! Running one chunk of a recovery from the queue: create up to `CHUNK` redeliveries in
//! one D1 round trip, queue them (100 per send), then queue the next chunk. Every step
//! is idempotent, so a chunk that fails half-way is simply retried.

use serde_json::json;
use worker::Env;

use super::queue::{enqueue, enqueue_recover, RecoverJob, RecoverMessage};
use super::{log_event, now_ms};
use crate::core::outbound::recover::Window;
use crate::store::recover::{release, run_chunk, ChunkRequest};
use crate::store::shards::Shard;

/// Runs the chunk; `Ok` once its redeliveries and the continuation are queued.
pub async fn run(env: &Env, shard: &Shard, job: &RecoverJob) -> worker::Result<()> {
    let db = &shard.db;
    let started = now_ms();
    let rows_before = db.rows();
    let done = run_chunk(
        db,
        &ChunkRequest {
            job: &job.job,
            webhook_id: &job.webhook_id,
            window: Window { since: job.since, until: job.until },
            after: job.after.as_ref(),
            now: started,
        },
    )
    .await?;
    // The continuation first: it runs while this chunk's deliveries are being sent,
    // instead of queueing behind them.
    let more = done.next.is_some();
    if let Some(next) = done.next {
        let next = RecoverJob { after: Some(next), ..job.clone() };
        enqueue_recover(env, &RecoverMessage { shard: shard.name.clone(), recover: next }).await?;
    }
    let calls = enqueue(env, &shard.name, &done.redelivery_ids).await?;
    if !more {
        // Every redelivery of the job exists: the next recovery of this webhook may start.
        release(db, &job.webhook_id, &job.job).await?;
    }
    let rows = db.rows().since(rows_before);
    log_event(json!({
        "rows_read": rows.read, "rows_written": rows.written,
        "msg": "recover chunk", "job": job.job, "webhook": job.webhook_id, "redeliveries": done.redelivery_ids.len(),
        "more": more, "d1_round_trips": 1 + usize::from(!more),
        "queue_calls": calls + usize::from(more),
        "ms": now_ms() - started,
    }));
    Ok(())
}
