//! Everything that goes onto the delivery queue: the message shapes (`{log_id}`,
//! `{log_ids}`, `{recover}`) and the sends (`send_batch` in chunks of 100, delays grouped).
//! Every module that queues work calls these; nothing else touches the queue binding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use worker::Env;

use crate::config::{deliveries_per_message, QUEUE_BINDING};
use crate::core::outbound::packing::pack;
use crate::core::outbound::recover::Cursor;
use crate::core::shards::DIRECTORY_BINDING;

/// Cloudflare Queues accepts at most 100 messages per `sendBatch`.
pub const MAX_MESSAGES_PER_SEND: usize = 100;

/// A queue message names delivery logs; the payload stays in D1 (messages are limited
/// to 128 KB, payloads may be 256 KB): `{"log_id": …}` for one (the only form before
/// `DELIVERIES_PER_MESSAGE`), `{"log_ids": [...]}` for several; `shard` is the binding
/// of the database holding them (absent in messages from before shards: `DB`); `event`,
/// when every delivery named is of that one event (a fan-out's), lets the consumer read
/// the body by its id instead of through the logs (a hint: a wrong one costs a round trip,
/// never a wrong body).
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryJob<'a> {
    pub shard: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub log_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
}

impl<'a> DeliveryJob<'a> {
    pub fn new(shard: &'a str, ids: &'a [String], event: Option<&'a str>) -> Self {
        match ids {
            [one] => DeliveryJob { shard, log_id: Some(one), log_ids: &[], event },
            _ => DeliveryJob { shard, log_id: None, log_ids: ids, event },
        }
    }
}

/// The other kind of message on the same queue: `{"recover": {…}}`, one chunk of a
/// recovery (`POST /api/v1/webhooks/:id/recover`) to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoverMessage {
    pub shard: String,
    pub recover: RecoverJob,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoverJob {
    /// The recovery's id (`rcv_…`): with the original, it makes a redelivery unique.
    pub job: String,
    pub webhook_id: String,
    pub since: i64,
    pub until: i64,
    /// Where the previous chunk stopped; `None` for the first.
    #[serde(default)]
    pub after: Option<Cursor>,
}

/// A step of a workspace move: `{"shard": "DB", "move": {"job": "mv_…"}}` (its job row
/// is in `DB`; `delivery::moves` runs it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveJob {
    pub job: String,
}

#[derive(Serialize)]
struct MoveMessage<'a> {
    shard: &'a str,
    #[serde(rename = "move")]
    step: MoveJob,
}

/// Queues the next step of move `job`, after `delay` seconds.
pub async fn enqueue_move(env: &Env, job: &str, delay: u32) -> worker::Result<()> {
    let message = MoveMessage { shard: DIRECTORY_BINDING, step: MoveJob { job: job.to_string() } };
    let builder = worker::MessageBuilder::new(message);
    let message = if delay > 0 { builder.delay_seconds(delay).build() } else { builder.build() };
    env.queue(QUEUE_BINDING)?.send(message).await
}

/// Any message of the delivery queue: `{log_id}`, `{log_ids}` or `{recover}`, with the
/// `shard` they belong to.
#[derive(Debug, Deserialize)]
pub struct QueueBody {
    #[serde(default)]
    pub shard: Option<String>,
    #[serde(default)]
    pub log_id: Option<String>,
    #[serde(default)]
    pub log_ids: Vec<String>,
    #[serde(default)]
    pub recover: Option<RecoverJob>,
    #[serde(default, rename = "move")]
    pub move_job: Option<MoveJob>,
    /// The one event of every delivery named, when the sender knew it.
    #[serde(default)]
    pub event: Option<String>,
}

impl QueueBody {
    /// The deliveries the message names, in either form.
    pub fn delivery_ids(&self) -> impl Iterator<Item = &String> {
        self.log_id.iter().chain(self.log_ids.iter())
    }

    /// The shard binding the message belongs to; messages queued before shards existed
    /// belong to the one database there was.
    pub fn shard(&self) -> &str {
        self.shard.as_deref().unwrap_or(DIRECTORY_BINDING)
    }
}

/// Queue sends (`send_batch` calls) that enqueuing `deliveries` ids takes.
pub fn queue_calls(deliveries: usize, per_message: usize) -> usize {
    deliveries.div_ceil(per_message.max(1)).div_ceil(MAX_MESSAGES_PER_SEND)
}

/// Sends the ids in messages of `DELIVERIES_PER_MESSAGE`, 100 messages per call;
/// returns the calls made.
pub async fn enqueue(env: &Env, shard: &str, ids: &[String]) -> worker::Result<usize> {
    enqueue_jobs(env, shard, &ids.iter().map(|id| (id.clone(), 0)).collect::<Vec<_>>(), None).await
}

/// [`enqueue`] for the deliveries of one event (a fan-out): the messages name it.
pub async fn enqueue_event(env: &Env, shard: &str, event: &str, ids: &[String]) -> worker::Result<usize> {
    enqueue_jobs(env, shard, &ids.iter().map(|id| (id.clone(), 0)).collect::<Vec<_>>(), Some(event)).await
}

/// Sends the ids with a delay each (retried and postponed deliveries): those with the
/// same delay share messages of `DELIVERIES_PER_MESSAGE`, 100 messages per call;
/// returns the calls made.
pub async fn enqueue_delayed(env: &Env, shard: &str, jobs: &[(String, u32)]) -> worker::Result<usize> {
    enqueue_jobs(env, shard, jobs, None).await
}

async fn enqueue_jobs(env: &Env, shard: &str, jobs: &[(String, u32)], event: Option<&str>) -> worker::Result<usize> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let per_message = deliveries_per_message(env);
    let mut by_delay: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (id, delay) in jobs {
        by_delay.entry(*delay).or_default().push(id.clone());
    }
    let messages: Vec<worker::SendMessage<DeliveryJob<'_>>> = by_delay
        .iter()
        .flat_map(|(delay, ids)| {
            pack(ids, per_message).into_iter().map(move |chunk| {
                let builder = worker::MessageBuilder::new(DeliveryJob::new(shard, chunk, event));
                if *delay > 0 { builder.delay_seconds(*delay).build() } else { builder.build() }
            })
        })
        .collect();
    let queue = env.queue(QUEUE_BINDING)?;
    let mut messages = messages.into_iter().peekable();
    let mut calls = 0;
    while messages.peek().is_some() {
        queue.send_batch(messages.by_ref().take(MAX_MESSAGES_PER_SEND).collect::<Vec<_>>()).await?;
        calls += 1;
    }
    Ok(calls)
}

/// Queues one recovery chunk.
pub async fn enqueue_recover(env: &Env, message: &RecoverMessage) -> worker::Result<()> {
    env.queue(QUEUE_BINDING)?.send(message.clone()).await
}
