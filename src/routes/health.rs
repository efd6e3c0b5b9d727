//! `POST /api/v1/webhooks/:id/recover` and `GET /api/v1/webhooks/:id/stats` (SPEC §8.4).

use serde::Serialize;
use serde_json::json;
use worker::Request;

use super::webhooks::find;
use crate::core::api::auth::Principal;
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::api::json_body::{require_object, MAX_MANAGEMENT_BODY};
use crate::core::ids::{looks_like_id, new_id, WEBHOOK_PREFIX};
use crate::core::outbound::recover::parse_window;
use crate::core::outbound::stats::{self, Point};
use crate::core::time::format_iso;
use crate::delivery::log_event;
use crate::delivery::queue::{enqueue_recover, RecoverJob, RecoverMessage};
use crate::http::{header, json_response, query_pairs, read_body, ApiResult, Ctx, OrInternal};
use crate::store;

/// Counts the failed deliveries of the window and queues the recovery's first chunk;
/// the redeliveries are created in the background (`delivery::recover`).
pub async fn recover(ctx: &Ctx<'_>, req: &mut Request, p: &Principal, id: &str) -> ApiResult {
    let webhook = find(ctx, p, id).await?;
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    let body = require_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)?;
    let window = parse_window(&body, ctx.now, ctx.config.log_retention_days).map_err(ApiError::validation)?;
    let job = new_id("rcv_");
    if !store::recover::hold(&ctx.db, &webhook.id, &job, ctx.now).await.or_internal("hold webhook for recovery")? {
        return Err(ApiError::conflict("a recovery of this webhook is still creating its redeliveries; try again when it is done"));
    }
    let n = store::recover::count_failed(&ctx.db, &webhook.id, &window).await.or_internal("count failed deliveries")?;
    let queued = if n > 0 {
        let message = RecoverMessage {
            shard: ctx.shard.clone(),
            recover: RecoverJob { job: job.clone(), webhook_id: webhook.id.clone(), since: window.since, until: window.until, after: None },
        };
        enqueue_recover(ctx.env, &message).await.map(|_| true)
    } else {
        Ok(false)
    };
    if !matches!(queued, Ok(true)) {
        // Nothing will run: let the webhook go now rather than when the hold expires.
        store::recover::release(&ctx.db, &webhook.id, &job).await.or_internal("release recovery hold")?;
    }
    queued.or_internal("queue recovery")?;
    log_event(json!({"msg": "recover", "job": job, "webhook": webhook.id, "recovering": n,
                     "since": format_iso(window.since), "until": format_iso(window.until)}));
    json_response(202, &json!({"recovering": n}))
}

#[derive(Serialize)]
struct Counts {
    success: u64,
    failed: u64,
    pending: u64,
    total: u64,
}

#[derive(Serialize)]
struct Durations {
    attempts: u64,
    p50: Option<u32>,
    p95: Option<u32>,
}

#[derive(Serialize)]
struct Series {
    interval: &'static str,
    points: Vec<Point>,
}

#[derive(Serialize)]
struct StatsView<'a> {
    webhook_id: &'a str,
    window: &'static str,
    from: String,
    to: String,
    counts: Counts,
    success_rate: Option<f64>,
    attempt_duration_ms: Durations,
    series: Series,
}

/// Deliveries created in the window: by status, success rate, attempt durations, series.
pub async fn stats(ctx: &Ctx<'_>, req: &Request, p: &Principal, id: &str) -> ApiResult {
    let mut window = "24h".to_string();
    let mut errors = FieldErrors::new();
    for (k, v) in query_pairs(req) {
        match k.as_str() {
            "window" => window = v,
            _ => {
                errors.insert(k, "unknown query parameter".into());
            }
        }
    }
    let w = stats::parse_window(&window);
    if w.is_none() {
        errors.insert("window".into(), format!("{window:?} is not one of 24h, 7d, 30d"));
    }
    let w = match w {
        Some(w) if errors.is_empty() => w,
        _ => return Err(ApiError::validation(errors)),
    };
    if !looks_like_id(id, WEBHOOK_PREFIX) {
        return Err(ApiError::not_found("webhook"));
    }
    let from = w.from(ctx.now);
    let raw = store::stats::webhook_stats(&ctx.db, &p.workspace_id, id, from, ctx.now, w.bucket_ms)
        .await
        .or_internal("stats")?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let view = StatsView {
        webhook_id: id,
        window: w.name,
        from: format_iso(from),
        to: format_iso(ctx.now),
        counts: Counts { success: raw.success, failed: raw.failed, pending: raw.pending, total: raw.success + raw.failed + raw.pending },
        success_rate: stats::success_rate(raw.success, raw.failed),
        attempt_duration_ms: Durations {
            attempts: raw.durations.iter().map(|(_, n)| n).sum(),
            p50: stats::percentile(&raw.durations, 50),
            p95: stats::percentile(&raw.durations, 95),
        },
        series: Series { interval: if w.bucket_ms == 3_600_000 { "hour" } else { "day" }, points: stats::series(&w, from, &raw.series) },
    };
    json_response(200, &view)
}
