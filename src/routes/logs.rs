//! `GET /api/v1/webhooks/logs` and `POST /api/v1/webhooks/logs/:id/redeliver`.

use serde_json::json;
use worker::Request;

use crate::http::{header, json_response, query_pairs, read_body, ApiResult, OrInternal};
use super::webhooks::find;
use crate::http::Ctx;
use crate::core::api::auth::Principal;
use crate::core::outbound::delivery_log::parse_log_filter;
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::ids::{looks_like_id, new_id, DELIVERY_PREFIX};
use crate::core::api::json_body::{parse_object, reject_unknown_fields, MAX_MANAGEMENT_BODY};
use crate::core::outbound::views::{log_views, parse_payloads, LogPage};
use crate::delivery::fanout::enqueue;
use crate::delivery::log_event;
use crate::store::events::{insert_redelivery, SingleDelivery};
use crate::store::logs;

pub async fn query(ctx: &Ctx<'_>, req: &Request, p: &Principal) -> ApiResult {
    let pairs = query_pairs(req);
    let filter = parse_log_filter(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let (page, total) = logs::query(&ctx.db, &p.workspace_id, &filter).await.or_internal("query logs")?;
    let payloads = parse_payloads(&page);
    json_response(200, &LogPage { data: log_views(&page, &payloads), total, limit: filter.limit, offset: filter.offset })
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
    let original = logs::get(&ctx.db, &p.workspace_id, id)
        .await
        .or_internal("load log")?
        .ok_or_else(|| ApiError::not_found("delivery log"))?;
    let webhook = find(ctx, p, &original.webhook_id).await?;
    let new_log_id = new_id(DELIVERY_PREFIX);
    insert_redelivery(
        &ctx.db,
        &SingleDelivery {
            log_id: &new_log_id, workspace: &p.workspace_id, webhook_id: &webhook.id, event_id: &original.event_id,
            event_type: &original.event_type, max_attempts: webhook.config.retry_count + 1,
            redelivery_of: Some(&original.id), leased_until: None, claim_token: None, now: ctx.now,
        },
    )
    .await
    .or_internal("insert redelivery")?;
    if let Err(e) = enqueue(ctx.env, std::slice::from_ref(&new_log_id)).await {
        log_event(json!({"msg": "queue send failed; cron will re-enqueue", "delivery": new_log_id, "error": e.to_string()}));
    }
    let log = logs::get(&ctx.db, &p.workspace_id, &new_log_id).await.or_internal("read redelivery")?.ok_or_else(ApiError::internal)?;
    let payloads = parse_payloads(std::slice::from_ref(&log));
    let view = log_views(std::slice::from_ref(&log), &payloads).pop().ok_or_else(ApiError::internal)?;
    json_response(202, &view)
}
