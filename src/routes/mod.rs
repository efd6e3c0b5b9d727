//! HTTP routes: parse → authorize → call core and store → render. No SQL, no rules.

pub mod events;
pub mod health;
pub mod logs;
pub mod ops;
pub mod portal;
pub mod system;
pub mod webhooks;

use serde_json::json;
use worker::{Context, Env, Request, Response, ResponseBuilder};

use crate::config::{Config, ASSETS_BINDING};
use crate::core::api::auth::{allowed_roles, authorize, Principal};
use crate::core::api::error::ApiError;
use crate::core::api::routes::{match_route, DataHome, Matched, Route, RouteMiss};
use crate::core::shards::DIRECTORY_BINDING;
use crate::delivery::{log_event, now_ms};
use crate::inbound;
use crate::http::{authenticate, error_response, shards_of, ApiResult, Ctx, OrInternal};
use crate::store::Db;

/// Entry point for every HTTP request; always answers, never panics on input.
pub async fn handle(mut req: Request, env: Env, wait: &Context) -> Response {
    let started = now_ms();
    let method = req.method().to_string();
    let path = req.path();
    // Made here, not in `dispatch`, so the request line reports what D1 did for it.
    let db = env.d1(DIRECTORY_BINDING).ok().map(Db::new);
    let result = dispatch(&mut req, &env, wait, db.as_ref(), &method, &path, started).await;
    let response = match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    let status = response.status_code();
    // The `cf-ray` id ties this line to Cloudflare's own request logs.
    let ray = req.headers().get("cf-ray").ok().flatten();
    let rows = db.as_ref().map(Db::rows).unwrap_or_default();
    log_event(json!({
        "level": if status >= 500 { "error" } else { "info" },
        "msg": "request", "method": method, "path": path, "status": status,
        "ms": now_ms() - started, "ray": ray, "rows_read": rows.read, "rows_written": rows.written,
    }));
    response
}

async fn dispatch(req: &mut Request, env: &Env, wait: &Context, db: Option<&Db>, method: &str, path: &str, now: i64)
    -> ApiResult {
    let Matched { route, id } = match match_route(method, path) {
        Ok(m) => m,
        Err(RouteMiss::NotFound) => return Err(ApiError::not_found("route")),
        Err(RouteMiss::MethodNotAllowed(allow)) => return Err(ApiError::method_not_allowed(allow)),
    };
    let id = id.map(str::to_string);
    let config = Config::from_env(env);
    let principal = match allowed_roles(route) {
        Some(_) => {
            let p = authenticate(req, &config, now)?;
            authorize(&p, route)?;
            Some(p)
        }
        None => None,
    };
    let directory = db.ok_or_else(|| {
        log_event(json!({"level": "error", "msg": "D1 binding DB is missing"}));
        ApiError::internal()
    })?;
    // The one place a route's database is chosen: the caller's shard for outbound data
    // (its handle adds its rows to the request's meter), else `DB`.
    let placed = match (route.data_home(), &principal) {
        (DataHome::WorkspaceRead, Some(p)) => Some(shards_of(env, &config, directory)?.for_read(&p.workspace_id).await),
        (DataHome::WorkspaceWrite, Some(p)) => Some(shards_of(env, &config, directory)?.for_write(&p.workspace_id, now).await),
        _ => None,
    }
    .transpose()
    .or_internal("locate workspace")?;
    let (db, shard) = match &placed {
        Some(s) => (&s.db, s.name.clone()),
        None => (directory, DIRECTORY_BINDING.to_string()),
    };
    let ctx = Ctx { env, wait, db, shard, config, now };
    match (principal, id) {
        (None, id) => public_route(&ctx, req, route, id.as_deref().unwrap_or_default()).await,
        (Some(p), id) => private_route(&ctx, req, route, &p, id.as_deref().unwrap_or_default()).await,
    }
}

async fn public_route(ctx: &Ctx<'_>, req: &mut Request, route: Route, id: &str) -> ApiResult {
    match route {
        Route::Health => system::health(ctx).await,
        Route::OpenApi => system::openapi(ctx.env).await,
        Route::Portal => portal::page(ctx.env).await,
        Route::InboundStripe => inbound::stripe::handle(ctx, req).await,
        Route::InboundStripeConnect => inbound::connect::handle(ctx, req).await,
        Route::InboundResend => inbound::resend::handle(ctx, req).await,
        Route::OpsShards | Route::OpsWorkspace | Route::OpsMoveWorkspace | Route::OpsMove => ops::handle(ctx, req, route, id).await,
        _ => Err(ApiError::not_found("route")),
    }
}

async fn private_route(ctx: &Ctx<'_>, req: &mut Request, route: Route, p: &Principal, id: &str) -> ApiResult {
    match route {
        Route::EventCatalog => events::catalog(),
        Route::PublishEvent => events::publish(ctx, req, p).await,
        Route::ListWebhooks => webhooks::list(ctx, req, p).await,
        Route::CreateWebhook => webhooks::create(ctx, req, p).await,
        Route::GetWebhook => webhooks::get(ctx, p, id).await,
        Route::UpdateWebhook => webhooks::update(ctx, req, p, id).await,
        Route::DeleteWebhook => webhooks::delete(ctx, p, id).await,
        Route::TestWebhook => webhooks::test(ctx, req, p, id).await,
        Route::RotateSecret => webhooks::rotate_secret(ctx, req, p, id).await,
        Route::RecoverWebhook => health::recover(ctx, req, p, id).await,
        Route::WebhookStats => health::stats(ctx, req, p, id).await,
        Route::QueryLogs => logs::query(ctx, req, p).await,
        Route::GetLog => logs::detail(ctx, p, id).await,
        Route::Redeliver => logs::redeliver(ctx, req, p, id).await,
        Route::GetInvoice => inbound::reads::invoice(ctx, p, id).await,
        Route::GetBilling => inbound::reads::billing(ctx, p).await,
        Route::GetConnectAccount => inbound::reads::connect_account(ctx, p).await,
        Route::GetConnectSplits => inbound::reads::connect_splits(ctx, req, p).await,
        Route::GetEmailAnalytics => inbound::reads::email_analytics(ctx, req, p).await,
        Route::GetEmailSuppressions => inbound::reads::email_suppressions(ctx, p).await,
        _ => Err(ApiError::not_found("route")),
    }
}

/// A file of the static assets (`[assets]`, see `ASSETS_BINDING`) with `headers` instead
/// of the asset server's own: the body streams through, the status is 200. A missing
/// binding or file is a 500, logged.
pub async fn static_asset(env: &Env, path: &str, headers: worker::Headers) -> ApiResult {
    let missing = |what: &str| {
        log_event(json!({"level": "error", "msg": "static asset missing", "path": path, "what": what}));
        ApiError::internal()
    };
    let assets = env.assets(ASSETS_BINDING).map_err(|_| missing("binding ASSETS"))?;
    // `fetch_request`, not `fetch(url, None)`: the latter pulls in the conversion of
    // worker's RequestInit (≈ 4 KB gzip) that nothing else needs.
    let request = worker::web_sys::Request::new_with_str(&format!("https://assets.local{path}")).map_err(|_| missing("request"))?;
    let asset = assets.fetch_request(Request::from(request)).await.map_err(|_| missing("fetch"))?;
    if asset.status_code() != 200 {
        return Err(missing("file"));
    }
    Ok(ResponseBuilder::new().with_status(200).with_headers(headers).body(asset.body().clone()))
}
