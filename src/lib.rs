//! PlaneConnection webhooks on Cloudflare Workers: the three entry points, nothing else.
//!
//! `fetch` serves the API and the inbound provider webhooks, `queue` sends outbound
//! deliveries (and settles dead-lettered ones), `scheduled` runs the minute sweep.

pub mod config;
pub mod core;
pub mod delivery;
pub mod http;
pub mod inbound;
pub mod routes;
pub mod store;

use serde_json::json;
use worker::{event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent};

use config::Config;

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    Ok(routes::handle(req, env, &ctx).await)
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let config = Config::from_env(&env);
    delivery::consumer::handle_batch(batch, &env, &config).await;
    Ok(())
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let config = Config::from_env(&env);
    // Each shard's failure is logged by the sweep itself.
    if let Err(e) = delivery::sweeper::run_all(&env, &config).await {
        delivery::log_event(json!({"level": "error", "msg": "sweep incomplete", "error": e.to_string()}));
    }
    if let Err(e) = inbound::invoice_paid::relay_stuck(&env, &config).await {
        delivery::log_event(json!({"level": "error", "msg": "invoice.paid relay failed", "error": e.to_string()}));
    }
}
