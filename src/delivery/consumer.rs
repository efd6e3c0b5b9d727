//! The queue consumer: reads a batch's messages, settles dead-lettered deliveries, hands
//! the named deliveries to `dispatch` (claim, send, record), runs a recovery chunk
//! (`delivery::recover`), then acks each message or retries it with the policy's delay.
//! A message naming one delivery carries that delivery's retry; the others' retries are
//! new messages (queued by `dispatch`). Messages name their shard; a batch mixing shards
//! is handled shard by shard.

use std::collections::HashSet;

use serde_json::json;
use worker::{Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use super::dispatch::claim_and_send;
use super::queue::QueueBody;
use super::{log_event, moves, now_ms, recover};
use crate::config::{Config, DEAD_LETTER_SUFFIX};
use crate::core::shards::DIRECTORY_BINDING;
use crate::core::outbound::delivery::NextStep;
use crate::store::deliveries;
use crate::store::shards::{Shard, Shards};

/// Retry delay when D1 itself failed; the leases make the retry safe.
pub const STORE_FAILURE_RETRY_SECS: u32 = 10;
/// A recovery chunk waiting for the next invocation (one chunk per invocation keeps its
/// queue sends inside the subrequest budget).
const RECOVER_WAIT_SECS: u32 = 1;

pub async fn handle_batch(batch: MessageBatch<serde_json::Value>, env: &Env, config: &Config) {
    let dead_letters = batch.queue().ends_with(DEAD_LETTER_SUFFIX);
    let mut by_shard: Vec<(String, Vec<(RawMessage, Option<QueueBody>)>)> = Vec::new();
    for m in batch.raw_iter() {
        let body = serde_wasm_bindgen::from_value::<QueueBody>(m.body()).ok();
        if let Some(step) = body.as_ref().and_then(|b| b.move_job.as_ref()).filter(|_| !dead_letters) {
            match moves::run(env, config, &step.job).await {
                Ok(()) => m.ack(),
                Err(e) => {
                    log_event(json!({"level": "error", "msg": "move step not saved; retried", "job": step.job, "error": e.to_string()}));
                    m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(STORE_FAILURE_RETRY_SECS).build());
                }
            }
            continue;
        }
        let shard = body.as_ref().map_or(DIRECTORY_BINDING, QueueBody::shard).to_string();
        match by_shard.iter_mut().find(|(name, _)| *name == shard) {
            Some((_, group)) => group.push((m, body)),
            None => by_shard.push((shard, vec![(m, body)])),
        }
    }
    for (name, messages) in by_shard {
        let shard = match &config.shards {
            Ok(list) => Shards::new(env, list).named(&name),
            Err(reason) => Err(worker::Error::RustError(reason.clone())),
        };
        match shard {
            Ok(shard) => handle_shard(messages, dead_letters, env, &shard, config).await,
            Err(e) => {
                // A shard no longer listed, or SHARDS unusable: keep the messages (their
                // logs are pending in that database) until the configuration is fixed.
                log_event(json!({"level": "error", "msg": "messages for an unusable shard; retried", "shard": name,
                                 "count": messages.len(), "error": e.to_string()}));
                let retry = QueueRetryOptionsBuilder::new().with_delay_seconds(STORE_FAILURE_RETRY_SECS).build();
                for (m, _) in &messages {
                    m.retry_with_options(&retry);
                }
            }
        }
    }
}

/// The events of the deliveries a batch names, if every message naming deliveries says
/// its event (fan-out messages do; retries and the cron's do not).
fn event_hints(messages: &[(RawMessage, Option<QueueBody>)]) -> Option<Vec<String>> {
    let mut events: Vec<String> = Vec::new();
    for body in messages.iter().filter_map(|(_, b)| b.as_ref()).filter(|b| b.delivery_ids().next().is_some()) {
        let event = body.event.as_ref()?;
        if !events.contains(event) {
            events.push(event.clone());
        }
    }
    Some(events)
}

/// One shard's messages of a batch.
async fn handle_shard(messages: Vec<(RawMessage, Option<QueueBody>)>, dead_letters: bool, env: &Env, shard: &Shard, config: &Config) {
    let db = &shard.db;
    let ids: Vec<String> = messages.iter().filter_map(|(_, b)| b.as_ref()).flat_map(|b| b.delivery_ids().cloned()).collect();
    // A message that names one delivery carries its retry (so the queue's `max_retries`
    // and dead-letter queue apply to it); the others' retries are new messages.
    let alone: HashSet<String> = messages
        .iter()
        .filter_map(|(_, b)| b.as_ref())
        .filter_map(|b| match (b.log_id.as_ref(), b.log_ids.as_slice()) {
            (Some(id), []) | (None, [id]) => Some(id.clone()),
            _ => None,
        })
        .collect();
    if dead_letters {
        match deliveries::fail_dead_lettered(db, &ids, now_ms()).await {
            Ok(n) => {
                let rows = db.rows();
                log_event(json!({"msg": "dead-lettered deliveries failed", "shard": shard.name, "count": n,
                                 "rows_read": rows.read, "rows_written": rows.written}));
                messages.iter().for_each(|(m, _)| m.ack());
            }
            Err(e) => {
                log_event(json!({"level": "error", "msg": "dead-letter handling failed", "error": e.to_string()}));
                messages.iter().for_each(|(m, _)| m.retry());
            }
        }
        return;
    }
    let events = event_hints(&messages);
    let next_steps = match claim_and_send(env, shard, config, &ids, events.as_deref(), &alone, messages.len()).await {
        Ok(steps) => steps,
        Err(e) => {
            log_event(json!({"level": "error", "msg": "delivery batch failed in storage", "error": e.to_string()}));
            let retry = QueueRetryOptionsBuilder::new().with_delay_seconds(STORE_FAILURE_RETRY_SECS).build();
            messages.iter().for_each(|(m, _)| m.retry_with_options(&retry));
            return;
        }
    };
    // Each claimed log gets its step once; duplicates, postponed (re-sent with their
    // delay) and unclaimed messages are acked.
    let mut next_steps = next_steps;
    let mut recovered = false;
    for (message, body) in &messages {
        if let Some(job) = body.as_ref().and_then(|b| b.recover.as_ref()) {
            let wait = if recovered {
                Some(RECOVER_WAIT_SECS)
            } else {
                recovered = true;
                match recover::run(env, shard, job).await {
                    Ok(()) => None,
                    Err(e) => {
                        log_event(json!({"level": "error", "msg": "recover chunk failed; retried", "job": job.job,
                                         "error": e.to_string()}));
                        Some(STORE_FAILURE_RETRY_SECS)
                    }
                }
            };
            match wait {
                Some(secs) => message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(secs).build()),
                None => message.ack(),
            }
            continue;
        }
        let carried = body.as_ref().and_then(|b| b.delivery_ids().next().filter(|id| alone.contains(*id)));
        match carried.and_then(|id| next_steps.remove(id)) {
            Some(NextStep::RetryIn { secs }) => {
                message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(secs).build())
            }
            _ => message.ack(),
        }
    }
}
