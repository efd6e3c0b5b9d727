//! The queue consumer: claim the batch's due deliveries in one D1 round trip, send them
//! all concurrently (up to the in-flight cap), record every outcome in one D1 batch,
//! then ack each message or retry it with the policy's delay.

use std::collections::HashMap;

use futures_util::StreamExt;
use serde_json::json;
use worker::{D1Database, MessageBatch, MessageExt, QueueRetryOptionsBuilder, RawMessage};

use super::sender::{send, SendReport};
use super::{log_event, now_ms, DeliveryJob};
use crate::config::{Config, DEAD_LETTER_SUFFIX};
use crate::core::outbound::delivery::{judge_attempt, NextStep};
use crate::core::outbound::delivery_log::DeliveryStatus;
use crate::core::ids::{new_id, random_unit};
use crate::core::outbound::lease::send_rounds;
use crate::store::deliveries::{self, AttemptOutcome, ClaimedDelivery, LeaseTerms};

/// Retry delay when D1 itself failed; the leases make the retry safe.
const STORE_FAILURE_RETRY_SECS: u32 = 10;

pub async fn handle_batch(batch: MessageBatch<serde_json::Value>, db: &D1Database, config: &Config) {
    let messages: Vec<(RawMessage, Option<String>)> = batch
        .raw_iter()
        .map(|m| {
            let job = serde_wasm_bindgen::from_value::<DeliveryJob>(m.body()).ok().map(|j| j.log_id);
            (m, job)
        })
        .collect();
    let ids: Vec<String> = messages.iter().filter_map(|(_, id)| id.clone()).collect();
    if batch.queue().ends_with(DEAD_LETTER_SUFFIX) {
        match deliveries::fail_dead_lettered(db, &ids, now_ms()).await {
            Ok(n) => {
                log_event(json!({"msg": "dead-lettered deliveries failed", "count": n}));
                batch.ack_all();
            }
            Err(e) => {
                log_event(json!({"level": "error", "msg": "dead-letter handling failed", "error": e.to_string()}));
                batch.retry_all();
            }
        }
        return;
    }
    let next_steps = match deliver(db, config, &ids).await {
        Ok(steps) => steps,
        Err(e) => {
            log_event(json!({"level": "error", "msg": "delivery batch failed in storage", "error": e.to_string()}));
            let retry = QueueRetryOptionsBuilder::new().with_delay_seconds(STORE_FAILURE_RETRY_SECS).build();
            batch.retry_all_with_options(&retry);
            return;
        }
    };
    // Each claimed log gets its step once; duplicates and unclaimed messages are acked.
    let mut next_steps = next_steps;
    for (message, id) in &messages {
        match id.as_ref().and_then(|id| next_steps.remove(id)) {
            Some(NextStep::RetryIn { secs }) => {
                message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(secs).build())
            }
            _ => message.ack(),
        }
    }
}

/// Claims, sends and records; returns the next step of every claimed delivery.
async fn deliver(db: &D1Database, config: &Config, ids: &[String]) -> worker::Result<HashMap<String, NextStep>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let token = new_id("clm_");
    let started = now_ms();
    let lease = LeaseTerms {
        rounds: send_rounds(ids.len(), config.delivery_concurrency),
        margin_ms: config.lease_margin_ms,
    };
    let claimed = deliveries::claim(db, ids, &token, started, &lease).await?;
    let claimed_at = now_ms();
    let reports = send_all(&claimed, config).await;
    let finished_at = now_ms();
    let mut steps = HashMap::new();
    let mut outcomes = Vec::with_capacity(claimed.len());
    for (d, report) in claimed.iter().zip(reports.iter()) {
        let step = judge_attempt(&report.result, d.attempt, d.max_attempts, &config.retry_schedule, finished_at, random_unit());
        outcomes.push(outcome(d, report, step, finished_at));
        steps.insert(d.log_id.clone(), step);
    }
    deliveries::record(db, &token, &outcomes, finished_at).await?;
    let recorded_at = now_ms();
    // One line per batch: what it cost in D1 (claim batch + record batch) and in
    // subrequests (each fetch and each D1 round trip; Free allows 50 per invocation).
    let d1_round_trips = if outcomes.is_empty() { 1 } else { 2 };
    let fetches = reports.iter().filter(|r| r.fetched).count();
    log_event(json!({
        "msg": "delivery batch", "messages": ids.len(), "claimed": claimed.len(),
        "subrequests": fetches + d1_round_trips, "fetches": fetches,
        "d1_round_trips": d1_round_trips,
        "d1_statements": deliveries::CLAIM_STATEMENTS + deliveries::RECORD_STATEMENTS
            + outcomes.iter().filter(|o| o.disable_reason.is_some()).count(),
        "claim_ms": claimed_at - started, "send_ms": finished_at - claimed_at, "record_ms": recorded_at - finished_at,
    }));
    for (d, report) in claimed.iter().zip(reports.iter()) {
        log_event(json!({
            "msg": "delivery attempt", "delivery": d.log_id, "webhook": d.webhook_id,
            "attempt": d.attempt, "status": report.result.status(), "error": report.result.error(),
            "duration_ms": report.duration_ms,
        }));
    }
    Ok(steps)
}

/// Sends every claimed delivery, at most `delivery_concurrency` at a time. A slot frees
/// as soon as its send ends (unordered), so a hanging endpoint holds only its own slot;
/// the reports come back in the order of `claimed`.
pub async fn send_all(claimed: &[ClaimedDelivery], config: &Config) -> Vec<SendReport> {
    let allow_private = config.allow_private_targets;
    let keys = &config.keys;
    let mut indexed: Vec<(usize, SendReport)> = futures_util::stream::iter(
        claimed.iter().enumerate().map(|(i, d)| async move { (i, send(d, allow_private, keys).await) }),
    )
    .buffer_unordered(config.delivery_concurrency)
    .collect()
    .await;
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, report)| report).collect()
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
