//! The operator API (`/api/v1/ops/…`, SPEC §9.2): shard figures and where a workspace
//! lives. Its own room: authorised by `OPS_API_KEY` alone (`core::api::ops`), never by a
//! workspace token, and absent (404) when no key is configured.

use serde_json::json;
use worker::Request;

use crate::core::api::error::ApiError;
use crate::core::api::ops::{check, OpsAccess};
use crate::core::api::routes::Route;
use crate::core::api::json_body::{require_object, MAX_MANAGEMENT_BODY};
use crate::core::ids::new_id;
use crate::core::moves::parse_move_request;
use crate::delivery::log_event;
use crate::delivery::queue::enqueue_move;
use crate::http::{header, json_response, read_body, ApiResult, Ctx, OrInternal};
use crate::store::moves;
use crate::store::shards::{self, workspace_counts};

pub async fn handle(ctx: &Ctx<'_>, req: &mut Request, route: Route, id: &str) -> ApiResult {
    match check(ctx.config.ops_api_key.as_deref(), header(req, "Authorization").as_deref()) {
        OpsAccess::Closed => return Err(ApiError::not_found("route")),
        OpsAccess::Refused => return Err(ApiError::unauthorized("the operator API takes `Authorization: Bearer <OPS_API_KEY>`")),
        OpsAccess::Granted => {}
    }
    match route {
        Route::OpsShards => list_shards(ctx).await,
        Route::OpsWorkspace => workspace(ctx, id).await,
        Route::OpsMoveWorkspace => start_move(ctx, req, id).await,
        Route::OpsMove => show_move(ctx, id).await,
        _ => Err(ApiError::not_found("route")),
    }
}

/// `GET /api/v1/ops/shards`: every listed shard with its workspaces (from the
/// directory), webhooks, delivery logs and size.
async fn list_shards(ctx: &Ctx<'_>) -> ApiResult {
    let shards = ctx.shards()?;
    let directory = shards.directory().or_internal("directory binding")?;
    let counts = workspace_counts(&directory).await.or_internal("count workspaces")?;
    let mut data = Vec::new();
    for shard in shards.all().or_internal("shard bindings")? {
        let figures = shards::figures(&shard.db).await.or_internal("shard figures")?;
        let workspaces: u64 = counts.iter().filter(|(n, _)| *n == shard.name).map(|(_, c)| *c).sum();
        data.push(json!({
            "binding": shard.name, "workspaces": workspaces, "webhooks": figures.webhooks,
            "logs": figures.logs, "size_bytes": figures.size_bytes,
        }));
    }
    json_response(200, &json!({ "data": data }))
}

/// `GET /api/v1/ops/workspaces/:id`: the workspace's shard; 404 for one never written.
async fn workspace(ctx: &Ctx<'_>, workspace_id: &str) -> ApiResult {
    let shard = ctx.shards()?.locate_fresh(workspace_id).await.or_internal("locate workspace")?;
    let shard = shard.ok_or_else(|| ApiError::not_found("workspace"))?;
    let running = moves::running_for(ctx.db, workspace_id).await.or_internal("read moves")?;
    let running = running.map(|m| json!({ "job": m.job, "state": m.state }));
    json_response(200, &json!({ "workspace_id": workspace_id, "shard": shard, "move": running }))
}

/// `POST /api/v1/ops/workspaces/:id/move` `{"to": "<binding>"}`: 202 with the job; it
/// runs through the queue (`delivery::moves`). A failed queue send still answers 202: the
/// job is recorded, and the cron queues a move whose message went missing.
async fn start_move(ctx: &Ctx<'_>, req: &mut Request, workspace_id: &str) -> ApiResult {
    let bytes = read_body(req, MAX_MANAGEMENT_BODY).await?;
    let body = require_object(header(req, "Content-Type").as_deref(), &bytes, MAX_MANAGEMENT_BODY)?;
    let shards = ctx.shards()?;
    let current = shards.locate_fresh(workspace_id).await.or_internal("locate workspace")?;
    let current = current.ok_or_else(|| ApiError::not_found("workspace"))?;
    let to = parse_move_request(&body, shards.list(), &current)?;
    let job = new_id("mv_");
    if !moves::create(ctx.db, &job, workspace_id, &current, &to, ctx.now).await.or_internal("record move")? {
        return Err(ApiError::conflict("a move of this workspace is under way"));
    }
    if let Err(e) = enqueue_move(ctx.env, &job, 0).await {
        log_event(json!({"level": "warn", "msg": "move not queued; the cron starts it", "job": job, "error": e.to_string()}));
    }
    json_response(202, &json!({ "job": job }))
}

/// `GET /api/v1/ops/moves/:job`.
async fn show_move(ctx: &Ctx<'_>, job: &str) -> ApiResult {
    let m = moves::get(ctx.db, job).await.or_internal("read move")?.ok_or_else(|| ApiError::not_found("move"))?;
    let copied: serde_json::Value = serde_json::from_str(&m.copied).unwrap_or_else(|_| json!({}));
    // The cut-over's length: from the freeze to the flip (kept by the cleanup step).
    let flipped_at = m.cursor.as_deref().and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|c| c.get("flipped_at").and_then(serde_json::Value::as_i64));
    let cutover_ms = m.cutover_at.zip(flipped_at).map(|(from, to)| to - from);
    json_response(200, &json!({
        "job": m.job, "workspace_id": m.workspace_id, "from": m.from_shard, "to": m.to_shard, "state": m.state,
        "copied": copied, "error": if m.state == "failed" { m.error } else { None },
        "created_at": m.created_at, "cutover_ms": cutover_ms, "done_at": m.done_at,
    }))
}
