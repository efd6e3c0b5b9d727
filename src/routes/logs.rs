//! `GET /api/v1/webhooks/logs`, `GET /api/v1/webhooks/logs/:id` and
//! `POST /api/v1/webhooks/logs/:id/redeliver`.

use serde_json::json;
use worker::Request;

use crate::http::{header, json_response, query_pairs, read_body, ApiResult, OrInternal};
use crate::core::outbound::delivery::latest_attempt_headers;
use crate::http::Ctx;
use crate::core::api::auth::Principal;
use crate::core::outbound::delivery_log::{parse_log_filter, DeliveryLog};
use crate::core::outbound::webhook::StoredWebhook;
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::ids::{looks_like_id, new_delivery_id, DELIVERY_PREFIX};
use crate::core::api::json_body::{parse_object, reject_unknown_fields, MAX_MANAGEMENT_BODY};
use crate::core::outbound::masking::Viewer;
use crate::core::outbound::views::{parse_payload, LogDetailView, LogPage, LogView, Reader};
use crate::delivery::queue::enqueue;
use crate::delivery::log_event;
use crate::store::events::{insert_redelivery, SingleDelivery};
use crate::store::logs;

pub async fn query(ctx: &Ctx<'_>, req: &Request, p: &Principal) -> ApiResult {
    let pairs = query_pairs(req);
    let filter = parse_log_filter(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let page = logs::query(&ctx.db, &p.workspace_id, &filter).await.or_internal("query logs")?;
    json_response(200, &LogPage::new(&page.logs, page.counted, page.more, filter.limit, filter.offset))
}

/// One log with its payload, the headers sent (secret-bearing values masked) and every attempt.
pub async fn detail(ctx: &Ctx<'_>, p: &Principal, id: &str) -> ApiResult {
    if !looks_like_id(id, DELIVERY_PREFIX) {
        return Err(ApiError::not_found("delivery log"));
    }
    let (log, webhook) = log_and_webhook(ctx, p, id).await?;
    let headers = latest_attempt_headers(&log, &webhook);
    let reader = Reader { custom: &webhook.config.headers, viewer: Viewer::of(p.role) };
    json_response(200, &LogDetailView::new(&log, parse_payload(&log), &headers, reader))
}

/// Sends the same event to the same webhook again, as a new queued delivery.
pub async fn redeliver(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    if let Some(body) = parse_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)? {
        let mut errors = FieldErrors::new();
        reject_unknown_fields(&body, &[], &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
    }
    if !looks_like_id(id, DELIVERY_PREFIX) {
        return Err(ApiError::not_found("delivery log"));
    }
    let (original, webhook) = log_and_webhook(ctx, p, id).await?;
    let new_log_id = new_delivery_id(ctx.now);
    // A test stays a test (`X-Webhook-Test: true`, no retries): redelivering one never
    // turns the catalog's example into a real event.
    let max_attempts = if original.test { 1 } else { webhook.config.retry_count + 1 };
    insert_redelivery(
        &ctx.db,
        &SingleDelivery {
            log_id: &new_log_id, workspace: &p.workspace_id, webhook_id: &webhook.id, event_id: &original.event_id,
            event_type: &original.event_type, max_attempts,
            redelivery_of: Some(&original.id), leased_until: None, claim_token: None, test: original.test, now: ctx.now,
        },
    )
    .await
    .or_internal("insert redelivery")?;
    if let Err(e) = enqueue(ctx.env, &ctx.shard, std::slice::from_ref(&new_log_id)).await {
        log_event(json!({"level": "warn", "msg": "queue send failed; cron will re-enqueue", "delivery": new_log_id, "error": e.to_string()}));
    }
    let log = logs::get(&ctx.db, &p.workspace_id, &new_log_id).await.or_internal("read redelivery")?.ok_or_else(ApiError::internal)?;
    json_response(202, &LogView::new(&log))
}

/// A log of the workspace and its webhook (one D1 round trip); 404 when either is gone.
async fn log_and_webhook(ctx: &Ctx<'_>, p: &Principal, id: &str) -> Result<(DeliveryLog, StoredWebhook), ApiError> {
    logs::get_with_webhook(&ctx.db, &p.workspace_id, id, &ctx.config.keys)
        .await
        .or_internal("load log")?
        .map(|(log, record)| (log, record.webhook))
        .ok_or_else(|| ApiError::not_found("delivery log"))
}
