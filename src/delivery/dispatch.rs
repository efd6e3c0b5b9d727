//! Sending claimed deliveries and recording them, the one path every attempt takes (queue
//! batches, direct sends from a publishing request): hold back those whose webhook's
//! breaker is open, send the rest concurrently (up to the in-flight cap), record every
//! outcome and the new health in one D1 batch, publish the batch's operational events
//! together, and queue anew what must come back later (postponed, retried, surplus).

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use serde_json::json;
use worker::Env;

use super::queue::{enqueue, enqueue_delayed};
use super::lanes::{self, Pace};
use super::sender::{send, SendReport};
use super::{log_event, now_ms};
use crate::store::Rows;
use crate::config::Config;
use crate::core::catalog::EventType;
use crate::core::outbound::delivery::{envelope, judge_attempt, NextStep};
use crate::core::outbound::delivery_log::DeliveryStatus;
use crate::core::outbound::health::{self, Admission, Attempt, HealthPolicy};
use crate::core::ids::{new_id, random_unit, EVENT_PREFIX};
use crate::core::outbound::lease::send_rounds;
use crate::core::outbound::packing::fits_direct_send;
use crate::store::deliveries::{self, AttemptOutcome, ClaimMeta, ClaimedDelivery, HealthWrite, LeaseTerms, Postponed, WebhookHealth};
use crate::store::events::{self, OperationalEvent};
use crate::store::shards::{Shard, Shards};

/// Health writes retried after a concurrent change, at most.
const HEALTH_WRITE_TRIES: usize = 3;
/// Cloudflare Queues delays a message by at most 12 hours.
const MAX_QUEUE_DELAY_SECS: i64 = 43_200;
const GONE_REASON: &str = "receiver answered 410 Gone; webhook disabled";

/// A claim made outside a queue batch: in the publish batch of an event with few
/// deliveries (a direct send), to be sent and recorded by [`send_claimed`].
pub struct Claimed {
    /// The shard binding the claim was made in.
    pub shard: String,
    pub claim: deliveries::Claim,
    pub token: String,
    /// When the claim was made (its lease runs from here), and when it came back.
    pub started: i64,
    pub claimed_at: i64,
    /// Deliveries the claim asked for.
    pub taken: usize,
    /// The database's meter before the claim: the batch's log line reports the rows since.
    pub rows_before: Rows,
}

/// Sends and records a direct send's claim, from the `waitUntil` of the request that
/// published the event: the same steps as a queue batch; retries go to the queue with
/// their delay. If this fails or is cut off, the leases expire and the cron re-enqueues
/// the deliveries.
pub async fn send_claimed(env: &Env, claimed: Claimed) {
    let config = Config::from_env(env);
    let count = claimed.claim.deliveries.len();
    let shard = match &config.shards {
        Ok(list) => Shards::new(env, list).named(&claimed.shard),
        Err(reason) => Err(worker::Error::RustError(reason.clone())),
    };
    let outcome = match shard {
        Ok(shard) => send_and_record(env, &shard, &config, claimed, &[], &HashSet::new(), 0, None).await,
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        log_event(json!({"level": "warn", "msg": "direct send failed in storage; cron will re-enqueue",
                         "deliveries": count, "error": e.to_string()}));
    }
}

/// Claims, sends and records (a queue batch); returns the next step of every delivery sent. Retries of
/// deliveries not in `alone` (not alone in their message), postponed deliveries and
/// those beyond the invocation's share are queued anew, in one call when they fit.
/// `messages` is the batch's message count; `events`, the events of every delivery named,
/// if the messages said them.
pub async fn claim_and_send(env: &Env, shard: &Shard, config: &Config, ids: &[String], events: Option<&[String]>,
    alone: &HashSet<String>, messages: usize) -> worker::Result<HashMap<String, NextStep>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, surplus) = ids.split_at(ids.len().min(config.deliveries_per_invocation.max(1)));
    let token = new_id("clm_");
    let started = now_ms();
    let lease = LeaseTerms {
        rounds: send_rounds(ids.len(), config.delivery_concurrency),
        margin_ms: config.lease_margin_ms,
    };
    let db = &shard.db;
    let rows_before = db.rows();
    let claim = deliveries::claim(db, ids, events, &token, started, &lease).await?;
    let claimed = Claimed { shard: shard.name.clone(), claim, token, started, claimed_at: now_ms(), taken: ids.len(), rows_before };
    send_and_record(env, shard, config, claimed, surplus, alone, messages, None).await
}

/// Claims, sends and records the deliveries a scheduler let go (`delivery::scheduler`),
/// each not before its start time: the steps of a queue batch, except that nothing is
/// queued (the scheduler takes retries and postponements). Returns each sent delivery's
/// next step.
pub async fn send_scheduled(env: &Env, shard: &Shard, config: &Config, ids: &[String], pace: &Pace)
    -> worker::Result<HashMap<String, NextStep>> {
    let token = new_id("clm_");
    let started = now_ms();
    // One round more than the sends need: the start times spread a chunk over up to a second.
    let lease = LeaseTerms {
        rounds: send_rounds(ids.len(), config.delivery_concurrency) + 1,
        margin_ms: config.lease_margin_ms,
    };
    let db = &shard.db;
    let rows_before = db.rows();
    let claim = deliveries::claim(db, ids, None, &token, started, &lease).await?;
    let claimed = Claimed { shard: shard.name.clone(), claim, token, started, claimed_at: now_ms(), taken: ids.len(), rows_before };
    send_and_record(env, shard, config, claimed, &[], &HashSet::new(), 1, Some(pace)).await
}

/// Sends a claim's deliveries and records them; `messages` is 0 for a direct send;
/// `pace` is given when a scheduler sends.
#[allow(clippy::too_many_arguments)]
async fn send_and_record(env: &Env, shard: &Shard, config: &Config, claimed: Claimed, surplus: &[String],
    alone: &HashSet<String>, messages: usize, pace: Option<&Pace>) -> worker::Result<HashMap<String, NextStep>> {
    let Claimed { claim: deliveries::Claim { deliveries: claimed, meta, webhooks: read, deactivated, round_trips }, token, started, claimed_at, taken, rows_before, .. } =
        claimed;
    let db = &shard.db;
    let claimed_count = claimed.len();
    // Scheduled endpoints' deliveries go to their schedulers (SPEC §9.3) unless one sends.
    let (claimed, meta, handed) = match pace {
        None => lanes::hand_over(claimed, meta),
        Some(_) => (claimed, meta, Vec::new()),
    };
    // A direct send must end within `waitUntil`'s time: deliveries whose timeout would not
    // fit go to the queue (postponed to now: the attempt is given back).
    let (claimed, meta, too_slow) = if messages == 0 { split_too_slow(claimed, meta, started) } else { (claimed, meta, Vec::new()) };
    let mut plan = plan(claimed, meta, &read, started, &config.health);
    plan.postponed.extend(too_slow);
    let reports = send_all(&plan.send, config, pace).await;
    let finished_at = now_ms();
    let mut steps = HashMap::new();
    let mut outcomes = Vec::with_capacity(plan.send.len());
    let mut attempts: HashMap<String, Vec<Attempt>> = HashMap::new();
    let mut exhausted = Vec::new();
    for ((d, m), report) in plan.send.iter().zip(plan.meta.iter()).zip(reports.iter()) {
        let step = judge_attempt(&report.result, d.attempt, d.max_attempts, &config.retry_schedule, finished_at, random_unit());
        let o = outcome(d, report, step, finished_at);
        if report.fetched {
            attempts.entry(d.webhook_id.clone()).or_default().push(Attempt {
                success: step == NextStep::Succeeded,
                at: report.attempted_at + i64::from(report.duration_ms),
            });
        }
        // No operational event about an operational delivery: no loops.
        if step == NextStep::GiveUp && !EventType::is_operational(&d.event_type) {
            exhausted.push(OperationalEvent {
                id: String::new(),
                workspace: m.workspace.clone(),
                event_type: EventType::DELIVERY_EXHAUSTED.as_str(),
                body: json!({"log_id": d.log_id, "webhook_id": d.webhook_id, "event_id": m.event_id,
                             "event_type": d.event_type, "attempts": d.attempt, "last_error": o.error}).to_string(),
                key: format!("svc:delivery.exhausted:{}", d.log_id),
                about: d.webhook_id.clone(),
            });
        }
        outcomes.push(o);
        steps.insert(d.log_id.clone(), step);
    }
    let postponed: Vec<Postponed<'_>> = plan
        .postponed
        .iter()
        .map(|(id, until)| Postponed { log_id: id, until: *until, deactivated: false })
        .chain(deactivated.iter().map(|id| Postponed { log_id: id, until: finished_at, deactivated: true }))
        // A handed-over delivery is due at once, for its scheduler.
        .chain(handed.iter().map(|(id, _)| Postponed { log_id: id, until: started, deactivated: false }))
        .collect();
    let mut writes = health_writes(&read, &attempts, &plan.probing, finished_at, &config.health);
    let recorded = deliveries::record_batch(db, &token, &outcomes, &postponed, &writes, finished_at).await?;
    let recorded_at = now_ms();
    // A direct send's claim travelled with the publish (counted there).
    let claim_trips = if messages > 0 { round_trips } else { 0 };
    let mut d1_round_trips = if outcomes.is_empty() && postponed.is_empty() { claim_trips } else { claim_trips + 1 };

    // Health rows changed meanwhile (another consumer, a PUT): re-read and re-apply.
    let mut landed: HashSet<String> = recorded.health_written.iter().cloned().collect();
    let mut fresh = read.clone();
    let mut written: Vec<(HealthWrite, WebhookHealth)> = Vec::new();
    for round in 1..=HEALTH_WRITE_TRIES {
        let (done, conflicted): (Vec<HealthWrite>, Vec<HealthWrite>) =
            writes.into_iter().partition(|w| landed.contains(&w.id));
        written.extend(done.into_iter().filter_map(|w| fresh.get(&w.id).cloned().map(|h| (w, h))));
        writes = conflicted;
        if writes.is_empty() || round == HEALTH_WRITE_TRIES {
            break;
        }
        let conflicted_ids: Vec<String> = writes.iter().map(|w| w.id.clone()).collect();
        fresh = deliveries::read_health(db, &conflicted_ids, &token).await?;
        log_event(json!({"level": "warn", "msg": "health changed meanwhile; re-applied", "webhooks": conflicted_ids,
                         "read": writes.iter().map(|w| w.version).collect::<Vec<_>>(),
                         "now": fresh.values().map(|h| h.version).collect::<Vec<_>>()}));
        let retry_attempts: HashMap<String, Vec<Attempt>> =
            attempts.iter().filter(|(id, _)| conflicted_ids.contains(id)).map(|(k, v)| (k.clone(), v.clone())).collect();
        writes = health_writes(&fresh, &retry_attempts, &plan.probing, finished_at, &config.health);
        landed = deliveries::write_health(db, &token, &writes, finished_at).await?.into_iter().collect();
        d1_round_trips += 2;
    }
    if !writes.is_empty() {
        log_event(json!({"level": "warn", "msg": "health not written: the webhook kept changing",
                         "webhooks": writes.iter().map(|w| w.id.as_str()).collect::<Vec<_>>()}));
    }

    // Operational events of the batch, published together.
    let mut events = Vec::new();
    for (w, h) in &written {
        if let Some(reason) = &w.disable_reason {
            events.push(disabled_event(&w.id, h, reason, finished_at));
        }
    }
    for id in &recorded.disabled_by_gone {
        if let Some(h) = read.get(id) {
            events.push(disabled_event(id, h, GONE_REASON, finished_at));
        }
    }
    events.extend(exhausted);
    let event_count = events.len();
    let mut queue_calls = 0;
    if !events.is_empty() {
        d1_round_trips += 1;
        match publish_operational(env, shard, events, finished_at).await {
            Ok(calls) => queue_calls += calls,
            Err(e) => log_event(json!({"level": "error", "msg": "operational events not published", "error": e.to_string()})),
        }
    }
    // Postponed deliveries come back as new messages at their time (a retry would use up
    // the message's retries while the breaker stays open), as do retries of deliveries
    // that shared their message, and the surplus at once; the cron covers a failed send.
    let delay_until = |until: i64| ((until - finished_at).max(0) + 999).div_euclid(1000).clamp(1, MAX_QUEUE_DELAY_SECS) as u32;
    let retried = steps.iter().filter(|(id, _)| !alone.contains(*id)).filter_map(|(id, step)| match step {
        NextStep::RetryIn { secs } => Some((id.clone(), *secs)),
        _ => None,
    });
    // A scheduler takes its own retries and postponements.
    let delayed: Vec<(String, u32)> = if pace.is_some() { Vec::new() } else {
        plan.postponed
            .iter()
            .map(|(id, until)| (id.clone(), delay_until(*until)))
            .chain(retried)
            .chain(surplus.iter().map(|id| (id.clone(), 0)))
            .collect()
    };
    match enqueue_delayed(env, &shard.name, &delayed).await {
        Ok(calls) => queue_calls += calls,
        Err(e) => log_event(json!({"level": "warn", "msg": "deliveries not re-queued; cron will", "count": delayed.len(),
                                   "error": e.to_string()})),
    }
    // After the record: a scheduler woken now finds its deliveries due and free.
    let scheduler_calls = lanes::wake_all(env, &shard.name, handed.iter().map(|(_, webhook)| webhook.as_str())).await;
    // One line per batch: what it cost in D1 and in subrequests (each fetch, D1 round
    // trip and queue send; Free allows 50 per invocation), and its outcomes counted; a line
    // per attempt only for those that failed (logging every success costs CPU per delivery).
    let fetches = reports.iter().filter(|r| r.fetched).count();
    let succeeded = steps.values().filter(|s| **s == NextStep::Succeeded).count();
    let rows = db.rows().since(rows_before);
    log_event(json!({
        "msg": "delivery batch", "shard": shard.name, "direct": messages == 0, "scheduler": pace.is_some(), "messages": messages,
        "deliveries": taken, "surplus": surplus.len(), "claimed": claimed_count, "postponed": plan.postponed.len(),
        "handed_over": handed.len(), "succeeded": succeeded, "failed": plan.send.len() - succeeded,
        "subrequests": fetches + d1_round_trips + queue_calls + scheduler_calls, "fetches": fetches,
        "d1_round_trips": d1_round_trips, "queue_calls": queue_calls, "operational_events": event_count,
        "d1_statements": deliveries::CLAIM_STATEMENTS + recorded.statements,
        "rows_read": rows.read, "rows_written": rows.written,
        "claim_ms": claimed_at - started, "send_ms": finished_at - claimed_at, "record_ms": recorded_at - finished_at,
    }));
    for (d, report) in plan.send.iter().zip(reports.iter()).filter(|(_, r)| r.result.error().is_some()) {
        log_event(json!({
            "level": "warn", "msg": "delivery attempt", "delivery": d.log_id, "webhook": d.webhook_id,
            "attempt": d.attempt, "status": report.result.status(), "error": report.result.error(),
            "duration_ms": report.duration_ms,
        }));
    }
    Ok(steps)
}

/// Sends every claimed delivery, at most `delivery_concurrency` at a time. A slot frees
/// as soon as its send ends (unordered), so a hanging endpoint holds only its own slot;
/// the reports come back in the order of `claimed`. A delivery with a start time in
/// a scheduler's `pace` (its rate limit) waits for its turn in its slot.
pub async fn send_all(claimed: &[ClaimedDelivery], config: &Config, pace: Option<&Pace>) -> Vec<SendReport> {
    let allow_private = config.allow_private_targets;
    let keys = &config.keys;
    let indexed: Vec<(usize, SendReport)> = futures_util::stream::iter(claimed.iter().enumerate().map(|(i, d)| async move {
        if let Some(pace) = pace {
            pace.wait(&d.log_id).await;
        }
        (i, send(d, allow_private, keys).await)
    }))
    .buffer_unordered(config.delivery_concurrency)
    .collect()
    .await;
    // Each index comes back once: put each report in its place (no sort, whose stable
    // variant costs the wasm several KB per element type).
    let mut reports: Vec<Option<SendReport>> = claimed.iter().map(|_| None).collect();
    for (i, report) in indexed {
        reports[i] = Some(report);
    }
    reports.into_iter().flatten().collect()
}

/// Turns one report and its judged next step into the row update.
pub fn outcome<'a>(
    d: &'a ClaimedDelivery,
    report: &'a SendReport,
    step: NextStep,
    now: i64,
) -> AttemptOutcome<'a> {
    let (status, next_attempt_at) = match step {
        NextStep::Succeeded => (DeliveryStatus::Success, None),
        NextStep::RetryIn { secs } => (DeliveryStatus::Pending, Some(now + i64::from(secs) * 1000)),
        NextStep::GiveUp | NextStep::DisableWebhook => (DeliveryStatus::Failed, None),
    };
    AttemptOutcome {
        log_id: &d.log_id,
        webhook_id: &d.webhook_id,
        attempt: d.attempt,
        attempted_at: report.attempted_at,
        status: status.as_str(),
        response_status: report.result.status(),
        response_body: report.response_excerpt.as_deref(),
        error: report.result.error(),
        duration_ms: report.duration_ms,
        next_attempt_at,
        disable_reason: (step == NextStep::DisableWebhook)
            .then_some("receiver answered 410 Gone; webhook disabled"),
    }
}

/// Splits the claimed deliveries by their webhooks' breakers: those to send now (a
/// half-open webhook sends one, its probe) and those postponed until a time.
struct Plan {
    send: Vec<ClaimedDelivery>,
    meta: Vec<ClaimMeta>,
    postponed: Vec<(String, i64)>,
    /// Webhooks whose probe this batch sends.
    probing: HashSet<String>,
}

fn plan(
    claimed: Vec<ClaimedDelivery>,
    meta: Vec<ClaimMeta>,
    webhooks: &HashMap<String, WebhookHealth>,
    now: i64,
    policy: &HealthPolicy,
) -> Plan {
    let admissions: HashMap<&str, Admission> =
        webhooks.iter().map(|(id, w)| (id.as_str(), health::admit(&w.health, now, w.holds_probe, policy))).collect();
    let mut p = Plan { send: Vec::new(), meta: Vec::new(), postponed: Vec::new(), probing: HashSet::new() };
    for (d, m) in claimed.into_iter().zip(meta) {
        let until = match admissions.get(d.webhook_id.as_str()) {
            None | Some(Admission::All) => None,
            Some(Admission::ProbeOne { others_until }) => {
                if p.probing.contains(&d.webhook_id) { Some(*others_until) } else {
                    p.probing.insert(d.webhook_id.clone());
                    None
                }
            }
            Some(Admission::None { until }) => Some(*until),
        };
        match until {
            Some(until) => p.postponed.push((d.log_id, until)),
            None => {
                p.send.push(d);
                p.meta.push(m);
            }
        }
    }
    p
}

/// Splits off the claimed deliveries too slow for a direct send (`packing::fits_direct_send`).
fn split_too_slow(claimed: Vec<ClaimedDelivery>, meta: Vec<ClaimMeta>, now: i64)
    -> (Vec<ClaimedDelivery>, Vec<ClaimMeta>, Vec<(String, i64)>) {
    let mut kept = (Vec::new(), Vec::new());
    let mut slow = Vec::new();
    for (d, m) in claimed.into_iter().zip(meta) {
        if fits_direct_send(d.timeout_ms) {
            kept.0.push(d);
            kept.1.push(m);
        } else {
            slow.push((d.log_id, now));
        }
    }
    (kept.0, kept.1, slow)
}

/// The health writes of a batch, from the health read and the attempts made.
fn health_writes(
    read: &HashMap<String, WebhookHealth>,
    attempts: &HashMap<String, Vec<Attempt>>,
    probing: &HashSet<String>,
    now: i64,
    policy: &HealthPolicy,
) -> Vec<HealthWrite> {
    attempts
        .iter()
        .filter_map(|(id, made)| {
            let w = read.get(id)?;
            // A probe counts as one only while the breaker it probes is still there (a
            // `PUT active: true` may have reset it meanwhile).
            let probed = probing.contains(id) && w.health.breaker_open_until.is_some();
            let r = health::record(&w.health, made, probed, w.active, now, policy);
            if r.opened || r.closed {
                log_event(json!({"msg": if r.opened { "breaker opened" } else { "breaker closed" }, "webhook": id,
                                 "consecutive_failures": r.health.consecutive_failures,
                                 "open_until": r.health.breaker_open_until}));
            }
            let release_probe = probing.contains(id);
            if !release_probe && r.disable_reason.is_none() && !health::needs_write(&w.health, &r.health) {
                return None;
            }
            Some(HealthWrite::new(id, w.version, &r.health, release_probe, r.disable_reason))
        })
        .collect()
}

fn disabled_event(id: &str, w: &WebhookHealth, reason: &str, now: i64) -> OperationalEvent {
    OperationalEvent {
        id: String::new(),
        workspace: w.workspace.clone(),
        event_type: EventType::WEBHOOK_DISABLED.as_str(),
        body: json!({"webhook_id": id, "name": w.name, "url": w.url, "reason": reason}).to_string(),
        key: format!("svc:webhook.disabled:{id}:{now}"),
        about: id.to_string(),
    }
}

/// Publishes the operational events of a consumer batch (SPEC §8.4) together: one D1
/// round trip for all of them, then their deliveries in sends of 100. Each reaches the
/// workspace's webhooks subscribed to its type, never the webhook it is about. Returns
/// the queue calls made.
pub async fn publish_operational(env: &Env, shard: &Shard, mut events: Vec<OperationalEvent>, now: i64) -> worker::Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    for e in &mut events {
        let event_type = EventType::parse(e.event_type).unwrap_or(EventType::WEBHOOK_DISABLED);
        e.id = new_id(EVENT_PREFIX);
        e.body = envelope(&e.id, event_type, now, &e.body);
    }
    let ids = events::publish_operational(&shard.db, &events, now).await?;
    log_event(json!({"msg": "operational events", "events": events.len(), "deliveries": ids.len(),
                     "types": events.iter().map(|e| e.event_type).collect::<Vec<_>>()}));
    match enqueue(env, &shard.name, &ids).await {
        Ok(calls) => Ok(calls),
        Err(e) => {
            log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "deliveries": ids.len(),
                             "error": e.to_string()}));
            Ok(0)
        }
    }
}
