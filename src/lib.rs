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

use config::{Config, DB_BINDING};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    Ok(routes::handle(req, env, &ctx).await)
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let config = Config::from_env(&env);
    let db = store::Db::new(env.d1(DB_BINDING)?);
    delivery::consumer::handle_batch(batch, &env, &db, &config).await;
    Ok(())
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let config = Config::from_env(&env);
    let outcome = match env.d1(DB_BINDING) {
        Ok(db) => delivery::sweeper::run(&env, &store::Db::new(db), &config).await,
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        delivery::log_event(json!({"level": "error", "msg": "sweep failed", "error": e.to_string()}));
    }
}
