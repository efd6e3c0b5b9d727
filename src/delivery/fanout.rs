//! Publishing an event: the outbox write (one D1 batch) then queue messages in chunks
//! of at most 100 (`send_batch`). A failed queue send leaves the logs `pending`; the cron
//! re-enqueues them, so nothing is lost.

use serde_json::json;
use worker::{D1Database, Env};

use super::{log_event, DeliveryJob, RecoverMessage};
use crate::config::QUEUE_BINDING;
use crate::core::catalog::EventType;
use crate::core::outbound::delivery::envelope;
use crate::core::outbound::idempotency;
use crate::core::ids::{new_id, EVENT_PREFIX};
use crate::store::events::{self, EventSource, NewEvent, OperationalEvent, Published};

/// Cloudflare Queues accepts at most 100 messages per `sendBatch`.
pub const MAX_MESSAGES_PER_SEND: usize = 100;

pub struct PublishRequest<'a> {
    pub workspace: &'a str,
    pub event_type: EventType,
    /// The `data` object's JSON text, embedded verbatim in the delivered body.
    pub data_json: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub source: EventSource,
    pub now: i64,
}

/// Stores and fans out an event; used by `POST /api/v1/events` and by inbound handlers.
pub async fn publish(env: &Env, db: &D1Database, r: &PublishRequest<'_>) -> worker::Result<Published> {
    let event_id = new_id(EVENT_PREFIX);
    let body = envelope(&event_id, r.event_type, r.now, r.data_json);
    let fingerprint = r.idempotency_key.map(|_| idempotency::fingerprint(r.event_type.as_str(), r.data_json));
    let published = events::publish(
        db,
        &NewEvent {
            id: &event_id,
            workspace: r.workspace,
            event_type: r.event_type.as_str(),
            body: &body,
            idempotency_key: r.idempotency_key,
            fingerprint: fingerprint.as_deref(),
            source: r.source,
            now: r.now,
        },
    )
    .await?;
    let queue_calls = published.new_delivery_ids.len().div_ceil(MAX_MESSAGES_PER_SEND);
    log_event(json!({"msg": "publish", "event": published.event_id, "created": published.created,
                     "deliveries": published.new_delivery_ids.len(), "d1_round_trips": 1,
                     "d1_statements": events::PUBLISH_STATEMENTS, "queue_calls": queue_calls}));
    if let Err(e) = enqueue(env, &published.new_delivery_ids).await {
        // The logs are pending in D1; the cron will enqueue them.
        log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "event": published.event_id,
                         "deliveries": published.new_delivery_ids.len(), "error": e.to_string()}));
    }
    Ok(published)
}

/// Queues the deliveries of an event a caller stored and fanned out in its own batch
/// (the `invoice.paid` of an inbound payment): the same log line as [`publish`], with no
/// D1 round trip of its own. A failed send leaves the logs pending for the cron.
pub async fn enqueue_stored(env: &Env, event_id: &str, ids: &[String]) {
    log_event(json!({"msg": "publish", "event": event_id, "created": true, "deliveries": ids.len(),
                     "d1_round_trips": 0, "queue_calls": ids.len().div_ceil(MAX_MESSAGES_PER_SEND)}));
    if let Err(e) = enqueue(env, ids).await {
        log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "event": event_id,
                         "deliveries": ids.len(), "error": e.to_string()}));
    }
}

/// Sends one message per delivery id, 100 per call.
pub async fn enqueue(env: &Env, ids: &[String]) -> worker::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let queue = env.queue(QUEUE_BINDING)?;
    for chunk in ids.chunks(MAX_MESSAGES_PER_SEND) {
        let jobs: Vec<DeliveryJob> = chunk.iter().map(|id| DeliveryJob { log_id: id.clone() }).collect();
        queue.send_batch(jobs).await?;
    }
    Ok(())
}

/// Sends one message per delivery id with a delay each (postponed deliveries), 100 per call.
pub async fn enqueue_delayed(env: &Env, jobs: &[(String, u32)]) -> worker::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let queue = env.queue(QUEUE_BINDING)?;
    for chunk in jobs.chunks(MAX_MESSAGES_PER_SEND) {
        let messages: Vec<worker::SendMessage<DeliveryJob>> = chunk
            .iter()
            .map(|(id, delay)| worker::MessageBuilder::new(DeliveryJob { log_id: id.clone() }).delay_seconds(*delay).build())
            .collect();
        queue.send_batch(messages).await?;
    }
    Ok(())
}

/// Queues one recovery chunk.
pub async fn enqueue_recover(env: &Env, message: &RecoverMessage) -> worker::Result<()> {
    env.queue(QUEUE_BINDING)?.send(message.clone()).await
}

/// Publishes the operational events of a consumer batch (SPEC §8.4) together: one D1
/// round trip for all of them, then their deliveries in sends of 100. Each reaches the
/// workspace's webhooks subscribed to its type, never the webhook it is about. Returns
/// how many deliveries were created.
pub async fn publish_operational(env: &Env, db: &D1Database, mut events: Vec<OperationalEvent>, now: i64) -> worker::Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    for e in &mut events {
        let event_type = EventType::parse(e.event_type).unwrap_or(EventType::WEBHOOK_DISABLED);
        e.id = new_id(EVENT_PREFIX);
        e.body = envelope(&e.id, event_type, now, &e.body);
    }
    let ids = events::publish_operational(db, &events, now).await?;
    log_event(json!({"msg": "operational events", "events": events.len(), "deliveries": ids.len(),
                     "types": events.iter().map(|e| e.event_type).collect::<Vec<_>>()}));
    if let Err(e) = enqueue(env, &ids).await {
        log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "deliveries": ids.len(),
                         "error": e.to_string()}));
    }
    Ok(ids.len())
}
