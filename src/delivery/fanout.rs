//! Publishing an event: the outbox write (one D1 batch) then queue messages of
//! `DELIVERIES_PER_MESSAGE` ids each, sent in chunks of at most 100 (`send_batch`); or,
//! for an event with at most `DIRECT_SEND_MAX` deliveries published by a request, their
//! first attempt from that request's `waitUntil` (no queue message unless a retry). A
//! failed queue send or a cut-off direct send leaves the logs `pending`; the cron
//! re-enqueues them, so nothing is lost.

use serde_json::json;
use worker::{Context, Env};

use super::dispatch::{self, Claimed};
use super::queue::{enqueue_event, queue_calls};
use super::{log_event, now_ms};
use crate::store::{Db, Rows};
use crate::config::{deliveries_per_message, Config};
use crate::core::outbound::lease::send_rounds;
use crate::store::deliveries::{LeaseTerms, CLAIM_STATEMENTS};
use crate::store::events::DirectClaim;
use crate::core::catalog::EventType;
use crate::core::outbound::delivery::envelope;
use crate::core::outbound::idempotency;
use crate::core::ids::{new_id, EVENT_PREFIX};
use crate::store::events::{self, EventSource, NewEvent, Published};

pub struct PublishRequest<'a> {
    pub workspace: &'a str,
    pub event_type: EventType,
    /// The `data` object's JSON text, embedded verbatim in the delivered body.
    pub data_json: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub source: EventSource,
    pub now: i64,
}

/// Stores and fans out an event through the queue; used by inbound handlers.
pub async fn publish(env: &Env, db: &Db, shard: &str, r: &PublishRequest<'_>) -> worker::Result<Published> {
    publish_with(env, db, shard, r, None).await
}

/// Stores and fans out an event; an event with at most `DIRECT_SEND_MAX` deliveries has
/// them claimed in the same D1 round trip and sent once the response is out, within the
/// request's `waitUntil` (`POST /api/v1/events`).
pub async fn publish_direct(env: &Env, db: &Db, shard: &str, r: &PublishRequest<'_>, wait: &Context, config: &Config)
    -> worker::Result<Published> {
    publish_with(env, db, shard, r, (config.direct_send_max > 0).then_some((wait, config))).await
}

/// `db` is the workspace's shard, `shard` its binding name (for the queue messages).
async fn publish_with(env: &Env, db: &Db, shard: &str, r: &PublishRequest<'_>, direct: Option<(&Context, &Config)>)
    -> worker::Result<Published> {
    let event_id = new_id(EVENT_PREFIX);
    let body = envelope(&event_id, r.event_type, r.now, r.data_json);
    let fingerprint = r.idempotency_key.map(|_| idempotency::fingerprint(r.event_type.as_str(), r.data_json));
    let token = new_id("clm_");
    let lease = direct.map(|(_, c)| LeaseTerms {
        rounds: send_rounds(c.direct_send_max, c.delivery_concurrency),
        margin_ms: c.lease_margin_ms,
    });
    let direct_claim = direct.zip(lease.as_ref()).map(|((_, c), lease)| DirectClaim { token: &token, max: c.direct_send_max, lease });
    let rows_before = db.rows();
    let (published, claim) = events::publish(
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
        direct_claim.as_ref(),
    )
    .await?;
    let claimed_at = now_ms();
    let ids = &published.new_delivery_ids;
    // Claimed in the publish batch (the event had at most `DIRECT_SEND_MAX` deliveries).
    let direct = direct.zip(claim).filter(|(_, c)| !c.deliveries.is_empty());
    let per_message = deliveries_per_message(env);
    let queued = direct.is_none();
    let rows = db.rows().since(rows_before);
    log_event(json!({"msg": "publish", "shard": shard, "event": published.event_id, "created": published.created,
                     "deliveries": ids.len(), "direct": !queued, "d1_round_trips": 1,
                     "rows_read": rows.read, "rows_written": rows.written,
                     "d1_statements": events::PUBLISH_STATEMENTS + if direct_claim.is_some() { CLAIM_STATEMENTS } else { 0 },
                     "queue_calls": if queued { queue_calls(ids.len(), per_message) } else { 0 },
                     "queue_messages": if queued { ids.len().div_ceil(per_message) } else { 0 }}));
    if let Some(((wait, _), claim)) = direct {
        let env = env.clone();
        // The claim travelled with the publish: its rows are on this line, not the batch's.
        let claimed = Claimed { shard: shard.to_string(), taken: claim.deliveries.len(), claim, token, started: r.now, claimed_at,
                                rows_before: Rows::default() };
        wait.wait_until(async move { dispatch::send_claimed(&env, claimed).await });
        return Ok(published);
    }
    if let Err(e) = enqueue_event(env, shard, &published.event_id, ids).await {
        // The logs are pending in D1; the cron will enqueue them.
        log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "event": published.event_id,
                         "deliveries": published.new_delivery_ids.len(), "error": e.to_string()}));
    }
    Ok(published)
}

/// Queues the deliveries of an event a caller stored and fanned out in its own batch
/// (the `invoice.paid` of an inbound payment): the same log line as [`publish`], with no
/// D1 round trip of its own. A failed send leaves the logs pending for the cron.
pub async fn enqueue_stored(env: &Env, shard: &str, event_id: &str, ids: &[String]) {
    log_event(json!({"msg": "publish", "shard": shard, "event": event_id, "created": true, "deliveries": ids.len(),
                     "d1_round_trips": 0, "rows_read": 0, "rows_written": 0,
                     "queue_calls": queue_calls(ids.len(), deliveries_per_message(env))}));
    if let Err(e) = enqueue_event(env, shard, event_id, ids).await {
        log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "event": event_id,
                         "deliveries": ids.len(), "error": e.to_string()}));
    }
}

