//! Runs a workspace move (`POST /api/v1/ops/workspaces/:id/move`), one queue message at
//! a time: each invocation advances the job within its subrequest budget
//! (`core::moves::chunks_per_invocation`), saves where it stopped, and queues the next
//! message. A failure before the directory flip is retried twice, then the move ends
//! `failed` and the workspace stays where it was; after the flip only the cleanup of the
//! old shard remains, retried until it is done.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use worker::{Delay, Env, Result};

use super::queue::enqueue_move;
use super::{log_event, now_ms};
use crate::config::Config;
use crate::core::moves::{chunks_per_invocation, cursor_key, CopyCursor, MoveState, Step, CHUNK_ROWS, DRAIN_POLL_MS, MAX_FAILURES};
use crate::store::moves::{self as store, Change, FenceBefore, MoveRow};
use crate::store::shards::{forget_placements, Shard, Shards};

/// What the job does next.
enum Next {
    /// Queue the next message after this many seconds.
    Continue(u32),
    Finished,
}

/// One invocation's share of move `job`. An error here means the job row itself could
/// not be read or saved: the message is retried.
pub async fn run(env: &Env, config: &Config, job: &str) -> Result<()> {
    let list = config.shards.as_ref().map_err(|e| worker::Error::RustError(e.clone()))?;
    let shards = Shards::new(env, list);
    let directory = shards.directory()?;
    let Some(mut row) = store::get(&directory, job).await? else {
        return Ok(());
    };
    if MoveState::parse(&row.state).is_none_or(MoveState::is_finished) {
        return Ok(());
    }
    let mut seen = row.updated_at;
    let outcome = match (shards.named(&row.from_shard), shards.named(&row.to_shard)) {
        (Ok(from), Ok(to)) => advance(&mut row, &from, &to, &directory, config, &mut seen).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let next = match outcome {
        Ok(next) => {
            row.failures = 0;
            row.error = None;
            next
        }
        Err(e) => {
            row.failures += 1;
            row.error = Some(e.to_string());
            log_event(json!({"level": "warn", "msg": "move step failed", "job": row.job, "step": row.step,
                             "failures": row.failures, "error": e.to_string()}));
            let after_flip = Step::parse(&row.step).is_some_and(Step::is_after_flip);
            if !after_flip && row.failures >= i64::from(MAX_FAILURES) {
                give_up(&mut row, &shards).await;
                Next::Finished
            } else {
                Next::Continue(1)
            }
        }
    };
    row.updated_at = now_ms().max(seen + 1);
    if !store::save(&directory, &row, seen).await? {
        // Another runner of the same job saved first (a message delivered twice): it goes on.
        return Ok(());
    }
    if let Next::Continue(delay) = next {
        enqueue_move(env, &row.job, delay).await?;
    }
    Ok(())
}

/// A move that failed before the flip: the old shard's fence is lifted (the workspace
/// works there as before) and the target's copy is left for the next move's first step.
async fn give_up(row: &mut MoveRow, shards: &Shards<'_>) {
    if let Ok(from) = shards.named(&row.from_shard) {
        if let Err(e) = store::unfence(&from.db, &row.workspace_id, &row.job).await {
            log_event(json!({"level": "error", "msg": "failed move: fence not lifted", "job": row.job, "error": e.to_string()}));
            return;
        }
    }
    row.state = MoveState::Failed.as_str().into();
    log_event(json!({"level": "warn", "msg": "move failed; the workspace stays", "job": row.job, "shard": row.from_shard}));
}

async fn advance(row: &mut MoveRow, from: &Shard, to: &Shard, directory: &crate::store::Db, config: &Config, seen: &mut i64)
    -> Result<Next> {
    let mut budget = chunks_per_invocation(config.subrequest_limit) * 2;
    let ws = row.workspace_id.clone();
    while budget > 0 {
        let step = Step::parse(&row.step).unwrap_or(Step::Clear);
        match step {
            Step::Clear => {
                budget -= 1;
                if store::delete_workspace_chunk(&to.db, &ws, FenceBefore::Drop, now_ms()).await? == 0 {
                    store::fence(&from.db, &ws, &row.job, &row.to_shard).await?;
                    budget = budget.saturating_sub(1);
                    row.step = Step::Copy.as_str().into();
                    row.cursor = Some(json!(CopyCursor::default()).to_string());
                }
            }
            Step::Copy => {
                let mut cursor: CopyCursor = row.cursor.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
                let Some(table) = cursor.table() else {
                    row.step = Step::Freeze.as_str().into();
                    row.cursor = None;
                    continue;
                };
                let rows = store::read_chunk(&from.db, table, &ws, cursor.after.as_ref(), CHUNK_ROWS).await?;
                budget = budget.saturating_sub(1);
                let full = rows.len() == CHUNK_ROWS as usize;
                let last = rows.last().and_then(|r| cursor_key(table, r));
                let n = store::write_rows(&to.db, table, rows).await?;
                budget = budget.saturating_sub(1);
                add_copied(row, table.name(), n);
                cursor = match (full, last) {
                    (true, Some(key)) => CopyCursor { table: cursor.table, after: Some(key) },
                    _ => cursor.next_table(),
                };
                row.cursor = Some(json!(cursor).to_string());
            }
            Step::Freeze => {
                if !store::freeze(&from.db, &ws, &row.job, now_ms()).await? {
                    // A recovery holds one of its webhooks: try again in a second.
                    return Ok(Next::Continue(1));
                }
                row.state = MoveState::Cutover.as_str().into();
                row.cutover_at = Some(now_ms());
                row.step = Step::Drain.as_str().into();
                budget = budget.saturating_sub(1);
            }
            Step::Drain => {
                // Sends under way record their outcome (allowed while frozen) or their
                // lease runs out; nothing new is claimed meanwhile.
                while budget > 0 && store::leases_held(&from.db, &ws, now_ms()).await? > 0 {
                    budget -= 1;
                    Delay::from(Duration::from_millis(DRAIN_POLL_MS)).await;
                }
                if budget == 0 {
                    return Ok(Next::Continue(0));
                }
                store::seal(&from.db, &ws, &row.job).await?;
                row.step = Step::Final.as_str().into();
                row.cursor = None;
            }
            Step::Final => {
                let after: Option<Change> = row.cursor.as_deref().and_then(|c| serde_json::from_str::<(String, String, i64)>(c).ok())
                    .map(|(tbl, k1, k2)| Change { tbl, k1, k2 });
                let changes = store::changes_after(&from.db, &row.job, after.as_ref(), CHUNK_ROWS).await?;
                budget = budget.saturating_sub(1);
                if let Some(last) = changes.last() {
                    for (table, n) in store::apply_changes(&from.db, &to.db, &changes).await? {
                        add_copied(row, table.name(), n);
                    }
                    budget = budget.saturating_sub(2);
                    row.cursor = Some(json!((&last.tbl, &last.k1, last.k2)).to_string());
                    continue;
                }
                let flipped_at = now_ms();
                let mut flipped = row.clone();
                flipped.step = Step::Cleanup.as_str().into();
                // The cleanup has no cursor: it keeps when writes resumed (the operator API
                // shows the cut-over's length).
                flipped.cursor = Some(json!({ "flipped_at": flipped_at }).to_string());
                flipped.updated_at = flipped_at.max(*seen + 1);
                if !store::flip(directory, &flipped, *seen).await? {
                    return Err(worker::Error::RustError("the job was saved by another runner".into()));
                }
                *row = flipped;
                *seen = row.updated_at;
                forget_placements();
                log_event(json!({"msg": "move cut over", "job": row.job, "workspace_id": ws, "from": row.from_shard,
                                 "to": row.to_shard, "cutover_ms": flipped_at - row.cutover_at.unwrap_or(flipped_at)}));
                return Ok(Next::Continue(config.move_cleanup_delay_secs));
            }
            Step::Cleanup => {
                budget -= 1;
                if store::delete_workspace_chunk(&from.db, &ws, FenceBefore::Gone(&row.job), now_ms()).await? == 0 {
                    row.state = MoveState::Done.as_str().into();
                    row.done_at = Some(now_ms());
                    return Ok(Next::Finished);
                }
            }
        }
    }
    Ok(Next::Continue(0))
}

fn add_copied(row: &mut MoveRow, table: &str, n: usize) {
    let mut copied: BTreeMap<String, u64> = serde_json::from_str(&row.copied).unwrap_or_default();
    *copied.entry(table.to_string()).or_default() += n as u64;
    row.copied = json!(copied).to_string();
}
