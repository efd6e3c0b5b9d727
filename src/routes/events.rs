//! `GET /api/v1/webhooks/events` (the catalog) and `POST /api/v1/events` (publish).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use worker::Request;

use crate::http::{header, json_response, read_body, ApiResult, OrInternal};
use crate::http::Ctx;
use crate::core::api::auth::Principal;
use crate::core::catalog::{EventType, CATALOG};
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::api::json_body::{is_json_content_type, MAX_PUBLISH_BODY};
use crate::core::outbound::idempotency;
use crate::delivery::fanout::{publish_direct, PublishRequest};
use crate::store::events::EventSource;

/// Largest `data` object an event may carry.
pub const MAX_EVENT_DATA_BYTES: usize = 256 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn catalog() -> ApiResult {
    json_response(200, &serde_json::json!({ "data": CATALOG }))
}

struct PublishBody<'a> {
    event_type: EventType,
    data: &'a RawValue,
    idempotency_key: Option<String>,
}

/// Reads the body keeping `data` as raw JSON text, so it is delivered byte for byte.
fn parse_publish(fields: &BTreeMap<String, Box<RawValue>>) -> Result<PublishBody<'_>, ApiError> {
    let mut errors = FieldErrors::new();
    for key in fields.keys() {
        if !["type", "data", "idempotency_key"].contains(&key.as_str()) {
            errors.insert(key.clone(), "unknown field".into());
        }
    }
    let event_type = match fields.get("type").map(|raw| serde_json::from_str::<String>(raw.get())) {
        None => { errors.insert("type".into(), "is required".into()); None }
        Some(Ok(t)) if EventType::is_operational(&t) => {
            errors.insert("type".into(), format!("{t:?} is an operational event only the service publishes"));
            None
        }
        Some(Ok(t)) => EventType::parse(&t).or_else(|| {
            errors.insert("type".into(), format!("unknown event type {t:?}; see GET /api/v1/webhooks/events"));
            None
        }),
        Some(Err(_)) => { errors.insert("type".into(), "must be a string".into()); None }
    };
    let data = match fields.get("data") {
        None => { errors.insert("data".into(), "is required".into()); None }
        Some(raw) if raw.get().starts_with('{') => Some(raw.as_ref()),
        Some(_) => { errors.insert("data".into(), "must be an object".into()); None }
    };
    let idempotency_key = match fields.get("idempotency_key").map(|raw| serde_json::from_str::<Option<String>>(raw.get())) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(k))) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && !k.chars().any(char::is_control) => Some(k),
        Some(_) => {
            errors.insert("idempotency_key".into(), format!("must be a string of 1 to {MAX_IDEMPOTENCY_KEY} characters"));
            None
        }
    };
    match (event_type, data) {
        (Some(event_type), Some(data)) if errors.is_empty() => Ok(PublishBody { event_type, data, idempotency_key }),
        _ => Err(ApiError::validation(errors)),
    }
}

#[derive(Serialize)]
struct Accepted<'a> {
    id: &'a str,
    deliveries: u64,
}

pub async fn publish(ctx: &Ctx<'_>, req: &mut Request, p: &Principal) -> ApiResult {
    let bytes = read_body(req, MAX_PUBLISH_BODY).await?;
    if !is_json_content_type(header(req, "Content-Type").as_deref()) {
        return Err(ApiError::unsupported_media_type());
    }
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_data() { ApiError::invalid_json("request body must be a JSON object") }
        else { ApiError::invalid_json(format!("request body is not valid JSON: {e}")) }
    })?;
    let body = parse_publish(&fields)?;
    if body.data.get().len() > MAX_EVENT_DATA_BYTES {
        return Err(ApiError::payload_too_large(MAX_EVENT_DATA_BYTES));
    }
    // The caller's key lives in the API's own namespace, apart from the service's keys.
    let stored_key = body.idempotency_key.as_deref().map(idempotency::api_key);
    let published = publish_direct(
        ctx.env,
        &ctx.db,
        &ctx.shard,
        &PublishRequest {
            workspace: &p.workspace_id,
            event_type: body.event_type,
            data_json: body.data.get(),
            idempotency_key: stored_key.as_deref(),
            source: EventSource::Api,
            now: ctx.now,
        },
        ctx.wait,
        &ctx.config,
    )
    .await
    .or_internal("publish event")?;
    if !published.same_request {
        return Err(ApiError::conflict(format!(
            "idempotency_key was already used within 24 hours for {} with another type or data; use a new key",
            published.event_id
        )));
    }
    json_response(202, &Accepted { id: &published.event_id, deliveries: published.deliveries })
}
