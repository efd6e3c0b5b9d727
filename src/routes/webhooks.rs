//! `/api/v1/webhooks` CRUD and `POST /api/v1/webhooks/:id/test`.

use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value};
use worker::Request;

use crate::http::{header, json_response, no_content, read_body, ApiResult, OrInternal};
use crate::core::outbound::lease::batch_lease_ms;
use crate::http::Ctx;
use crate::core::api::auth::Principal;
use crate::core::catalog::EventType;
use crate::core::outbound::delivery::{envelope, judge_attempt, latest_attempt_headers, NextStep};
use crate::core::outbound::delivery_log::{LogFilter, DeliveryStatus};
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::ids::{looks_like_id, new_id, random_unit, DELIVERY_PREFIX, EVENT_PREFIX, WEBHOOK_PREFIX};
use crate::core::api::json_body::{parse_object, reject_unknown_fields, require_object, type_name, MAX_MANAGEMENT_BODY};
use crate::core::outbound::views::{log_views, parse_payload, DataList, LogDetailView, WebhookView};
use crate::core::outbound::webhook::{parse_create, parse_patch, StoredWebhook};
use crate::delivery::consumer::outcome;
use crate::delivery::{now_ms, sender};
use crate::store::events::{EventSource, NewEvent, SingleDelivery};
use crate::store::deliveries::ClaimedDelivery;
use crate::store::{deliveries, events, logs, webhooks};

const RECENT_LOGS: u32 = 20;

/// Loads a webhook of the caller's workspace; another workspace's id is a plain 404.
pub async fn find(ctx: &Ctx<'_>, p: &Principal, id: &str) -> Result<StoredWebhook, ApiError> {
    if !looks_like_id(id, WEBHOOK_PREFIX) {
        return Err(ApiError::not_found("webhook"));
    }
    webhooks::get(&ctx.db, &p.workspace_id, id)
        .await
        .or_internal("load webhook")?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

async fn body_object(req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    require_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)
}

pub async fn list(ctx: &Ctx<'_>, p: &Principal) -> ApiResult {
    let all = webhooks::list(&ctx.db, &p.workspace_id).await.or_internal("list webhooks")?;
    json_response(200, &DataList { data: all.iter().map(WebhookView::new).collect::<Vec<_>>() })
}

pub async fn get(ctx: &Ctx<'_>, p: &Principal, id: &str) -> ApiResult {
    let webhook = find(ctx, p, id).await?;
    let filter = LogFilter { webhook_id: Some(webhook.id.clone()), limit: RECENT_LOGS, ..LogFilter::default() };
    let (recent, _) = logs::query(&ctx.db, &p.workspace_id, &filter).await.or_internal("recent logs")?;
    let mut view = WebhookView::new(&webhook);
    view.recent_logs = Some(log_views(&recent));
    json_response(200, &view)
}

pub async fn create(ctx: &Ctx<'_>, req: &mut Request, p: &Principal) -> ApiResult {
    let body = body_object(req).await?;
    let config = parse_create(&body, ctx.config.allow_private_targets).map_err(ApiError::validation)?;
    let id = new_id(WEBHOOK_PREFIX);
    webhooks::insert(&ctx.db, &p.workspace_id, &id, &config, ctx.now).await.or_internal("insert webhook")?;
    let created = StoredWebhook { id, config, disabled_reason: None, created_at: ctx.now, updated_at: ctx.now };
    json_response(201, &WebhookView::new(&created))
}

pub async fn update(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let existing = find(ctx, p, id).await?;
    let body = body_object(req).await?;
    let patch = parse_patch(&body, ctx.config.allow_private_targets).map_err(ApiError::validation)?;
    let reactivated = patch.active == Some(true);
    let config = existing.config.apply(patch);
    let found = webhooks::update(&ctx.db, &p.workspace_id, id, &config, ctx.now).await.or_internal("update webhook")?;
    if !found {
        return Err(ApiError::not_found("webhook"));
    }
    let disabled_reason = if reactivated || config.active { None } else { existing.disabled_reason };
    let updated = StoredWebhook { id: existing.id, config, disabled_reason, created_at: existing.created_at, updated_at: ctx.now };
    json_response(200, &WebhookView::new(&updated))
}

pub async fn delete(ctx: &Ctx<'_>, p: &Principal, id: &str) -> ApiResult {
    if !looks_like_id(id, WEBHOOK_PREFIX) {
        return Err(ApiError::not_found("webhook"));
    }
    match webhooks::delete(&ctx.db, &p.workspace_id, id).await.or_internal("delete webhook")? {
        true => no_content(),
        false => Err(ApiError::not_found("webhook")),
    }
}

/// `{"event_type"?, "payload"?}` of a test request.
struct TestRequest {
    event_type: EventType,
    payload_json: String,
}

fn parse_test_request(body: Option<Map<String, Value>>, webhook: &StoredWebhook) -> Result<TestRequest, ApiError> {
    let body = body.unwrap_or_default();
    let mut errors = FieldErrors::new();
    reject_unknown_fields(&body, &["event_type", "payload"], &mut errors);
    let event_type = match body.get("event_type") {
        None | Some(Value::Null) => webhook.config.events.first().copied(),
        Some(Value::String(s)) => EventType::parse(s).or_else(|| {
            errors.insert("event_type".into(), format!("unknown event type {s:?}"));
            None
        }),
        Some(other) => {
            errors.insert("event_type".into(), format!("must be a string, not {}", type_name(other)));
            None
        }
    };
    let payload_json = match body.get("payload") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(other) => {
            errors.insert("payload".into(), format!("must be an object, not {}", type_name(other)));
            String::new()
        }
    };
    match (errors.is_empty(), event_type) {
        (true, Some(event_type)) => Ok(TestRequest { event_type, payload_json }),
        (true, None) => Err(ApiError::field("event_type", "the webhook has no event types; name one")),
        (false, _) => Err(ApiError::validation(errors)),
    }
}

#[derive(Serialize)]
struct TestResult<'a> {
    #[serde(flatten)]
    log: LogDetailView<'a>,
    success: bool,
}

/// Sends one signed delivery now (no retries, also to an inactive webhook) and returns
/// its log entry. A test never disables the webhook, whatever the receiver answers.
pub async fn test(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let webhook = find(ctx, p, id).await?;
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    let body = parse_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)?;
    let test = parse_test_request(body, &webhook)?;

    let event_id = new_id(EVENT_PREFIX);
    let log_id = new_id(DELIVERY_PREFIX);
    let event_body = envelope(&event_id, test.event_type, ctx.now, &test.payload_json);
    let event = NewEvent {
        id: &event_id, workspace: &p.workspace_id, event_type: test.event_type.as_str(), body: &event_body,
        idempotency_key: None, source: EventSource::Test, now: ctx.now,
    };
    // Leased and claimed from the start: the cron leaves it alone while this request sends
    // it, and everything the send needs is already in hand (no reload from D1).
    let lease = ctx.now + batch_lease_ms(1, 1, webhook.config.timeout_ms, ctx.config.lease_margin_ms);
    let token = new_id("clm_");
    let single = SingleDelivery {
        log_id: &log_id, workspace: &p.workspace_id, webhook_id: &webhook.id, event_id: &event_id,
        event_type: test.event_type.as_str(), max_attempts: 1, redelivery_of: None, leased_until: Some(lease),
        claim_token: Some(&token), now: ctx.now,
    };
    events::insert_test_delivery(&ctx.db, &event, &single).await.or_internal("insert test delivery")?;
    let claimed = ClaimedDelivery {
        log_id: log_id.clone(),
        webhook_id: webhook.id.clone(),
        event_type: test.event_type.as_str().to_string(),
        attempt: 1,
        max_attempts: 1,
        url: webhook.config.url.clone(),
        secret: webhook.config.secret.clone(),
        headers: webhook.config.headers.clone(),
        timeout_ms: webhook.config.timeout_ms,
        body: Rc::from(event_body.as_str()),
    };
    let report = sender::send(&claimed, ctx.config.allow_private_targets).await;
    let finished = now_ms();
    let step = match judge_attempt(&report.result, 1, 1, &ctx.config.retry_schedule, finished, random_unit()) {
        NextStep::Succeeded => NextStep::Succeeded,
        _ => NextStep::GiveUp,
    };
    let result = outcome(&claimed, &report, step, finished);
    deliveries::record(&ctx.db, &token, std::slice::from_ref(&result), finished).await.or_internal("record test delivery")?;
    let log = logs::get(&ctx.db, &p.workspace_id, &log_id).await.or_internal("read test log")?.ok_or_else(ApiError::internal)?;
    let success = log.status == DeliveryStatus::Success;
    let headers = latest_attempt_headers(&log, &webhook);
    json_response(200, &TestResult { log: LogDetailView::new(&log, parse_payload(&log), &headers), success })
}

