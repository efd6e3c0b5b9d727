//! The operator API (`/api/v1/ops/…`, SPEC §9.2): shard figures and where a workspace
//! lives. Its own room: authorised by `OPS_API_KEY` alone (`core::api::ops`), never by a
//! workspace token, and absent (404) when no key is configured.

use serde_json::json;
use worker::Request;

use crate::core::api::error::ApiError;
use crate::core::api::ops::{check, OpsAccess};
use crate::core::api::routes::Route;
use crate::http::{header, json_response, ApiResult, Ctx, OrInternal};
use crate::store::shards::{self, workspace_counts};

pub async fn handle(ctx: &Ctx<'_>, req: &Request, route: Route, id: &str) -> ApiResult {
    match check(ctx.config.ops_api_key.as_deref(), header(req, "Authorization").as_deref()) {
        OpsAccess::Closed => return Err(ApiError::not_found("route")),
        OpsAccess::Refused => return Err(ApiError::unauthorized("the operator API takes `Authorization: Bearer <OPS_API_KEY>`")),
        OpsAccess::Granted => {}
    }
    match route {
        Route::OpsShards => list_shards(ctx).await,
        Route::OpsWorkspace => workspace(ctx, id).await,
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
    let shard = ctx.shards()?.locate(workspace_id).await.or_internal("locate workspace")?;
    let shard = shard.ok_or_else(|| ApiError::not_found("workspace"))?;
    json_response(200, &json!({ "workspace_id": workspace_id, "shard": shard, "move": null }))
}
