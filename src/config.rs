//! Typed configuration, read from the Worker's environment once per isolate.
//!
//! Binding names are fixed by SPEC §1; defaults are the spec's. Secrets are held as
//! `Option<String>` and never printed (no `Debug` on purpose).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use worker::Env;

use crate::core::crypto::Keyring;
use crate::core::outbound::health::{HealthPolicy, MAX_COOLDOWN_SECS};
use crate::core::outbound::lease::PRODUCTION_CONNECTIONS;
use crate::core::outbound::packing::{deliveries_per_invocation, FREE_SUBREQUESTS, MAX_DELIVERIES_PER_MESSAGE};
use crate::core::outbound::retry::RetrySchedule;
use crate::core::shards::ShardList;
use crate::delivery::log_event;

pub const QUEUE_BINDING: &str = "DELIVERY_QUEUE";
/// The static assets (`[assets]` in wrangler.toml): the portal page and `openapi.json`,
/// copied there by `scripts/build.sh`. Every request reaches the worker first
/// (`run_worker_first`); it answers those two routes from this binding.
pub const ASSETS_BINDING: &str = "ASSETS";
/// Dead-letter queues are named `<queue>-dlq` (`webhook-deliveries-dlq`, and the same
/// for the queues of other environments).
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

pub struct Config {
    pub retry_schedule: RetrySchedule,
    pub log_retention_days: u32,
    pub allow_private_targets: bool,
    /// Deliveries of one queue batch in flight at once: 1 to 6, production's cap of open
    /// connections per invocation (more would only wait for a connection while timing out).
    pub delivery_concurrency: usize,
    /// Slack of a consumer's lease beyond its sends, for the D1 round trips around them.
    pub lease_margin_ms: i64,
    /// `DIRECT_SEND_MAX` (default 6, at most 6, 0 = off): an event with at most this many
    /// deliveries has their first attempt sent from the publishing request (`waitUntil`)
    /// instead of through the queue.
    pub direct_send_max: usize,
    /// `SUBREQUEST_LIMIT` (default 50, the Free plan's; Paid 10,000) turned into how many
    /// deliveries one consumer invocation takes on (`core::outbound::packing`).
    pub deliveries_per_invocation: usize,
    /// How late a pending delivery must be before the cron re-enqueues it.
    pub sweep_grace_secs: u32,
    pub jwt_secret: Option<String>,
    /// `AUTH_ISSUER` / `AUTH_AUDIENCE`: when set, tokens must carry this `iss` / `aud`.
    pub auth_issuer: Option<String>,
    pub auth_audience: Option<String>,
    /// `AUTH_MAX_TOKEN_LIFETIME_SECONDS` (default 86400): the most a token's `exp − iat` may be.
    pub auth_max_token_lifetime_secs: u32,
    /// `MAX_WEBHOOKS_PER_WORKSPACE` (default 100): creating one more is a 409.
    pub max_webhooks_per_workspace: u32,
    pub stripe_secret: Option<String>,
    pub stripe_connect_secret: Option<String>,
    pub resend_secret: Option<String>,
    /// `WEBHOOK_ENCRYPTION_KEY` (seals) and `WEBHOOK_ENCRYPTION_KEY_PREVIOUS` (still opens).
    pub keys: Keyring,
    /// The breaker and auto-disable (`BREAKER_FAILURE_THRESHOLD`, `BREAKER_COOLDOWN_SECONDS`,
    /// `BREAKER_MAX_COOLDOWN_SECONDS` (3600 unless scaled down for tests and benches),
    /// `AUTO_DISABLE_AFTER_HOURS`).
    pub health: HealthPolicy,
    /// `SHARDS`: the D1 bindings that hold workspaces (default `DB` alone), or why the
    /// var is unusable (then every route that needs a shard answers 500, logged).
    pub shards: Result<ShardList, String>,
    /// `OPS_API_KEY`: the operator API's bearer key (`core::api::ops` decides).
    pub ops_api_key: Option<String>,
    /// `SUBREQUEST_LIMIT` itself (default 50): what one invocation may spend.
    pub subrequest_limit: usize,
    /// `MOVE_CLEANUP_DELAY_SECONDS` (default and production minimum 60, twice the
    /// placement cache's life; tests set less): the wait between a move's flip and the
    /// cleanup of the old shard.
    pub move_cleanup_delay_secs: u32,
}

fn text(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(env: &Env, name: &str) -> Option<T> {
    text(env, name).and_then(|v| v.trim().parse().ok())
}

/// Default of `MAX_WEBHOOKS_PER_WORKSPACE`.
pub const DEFAULT_MAX_WEBHOOKS: u32 = 100;

thread_local! {
    /// The isolate's configuration. An isolate runs one version of the worker, and its
    /// vars and secrets do not change under it (a deploy or `wrangler secret put` makes a
    /// new version, served by new isolates), so the ≈ 25 bindings are crossed into wasm
    /// and the keys decoded once, not on every request (≈ 9 % of the worker's CPU on an
    /// inbound event, BENCHMARKS.md).
    static ISOLATE_CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

impl Config {
    /// The configuration of `env`, read on the isolate's first call.
    pub fn from_env(env: &Env) -> Rc<Config> {
        if let Some(config) = ISOLATE_CONFIG.with(|c| c.borrow().clone()) {
            return config;
        }
        let config = Rc::new(Config::read(env));
        if config.allow_private_targets {
            warn_private_targets_once();
        }
        ISOLATE_CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&config)));
        config
    }

    fn read(env: &Env) -> Config {
        Config {
            retry_schedule: text(env, "RETRY_SCHEDULE")
                .and_then(|s| RetrySchedule::parse(&s))
                .unwrap_or_default(),
            log_retention_days: number(env, "LOG_RETENTION_DAYS").filter(|d| *d > 0).unwrap_or(30),
            allow_private_targets: text(env, "DEV_ALLOW_PRIVATE_TARGETS").as_deref() == Some("true"),
            delivery_concurrency: number(env, "DELIVERY_CONCURRENCY")
                .filter(|n| *n >= 1)
                .map_or(PRODUCTION_CONNECTIONS, |n: usize| n.min(PRODUCTION_CONNECTIONS)),
            direct_send_max: number(env, "DIRECT_SEND_MAX").map_or(PRODUCTION_CONNECTIONS, |n: usize| n.min(PRODUCTION_CONNECTIONS)),
            deliveries_per_invocation: deliveries_per_invocation(
                number(env, "SUBREQUEST_LIMIT").filter(|n| *n >= 1).unwrap_or(FREE_SUBREQUESTS),
                number(env, "DELIVERY_CONCURRENCY").filter(|n| *n >= 1).unwrap_or(PRODUCTION_CONNECTIONS),
            ),
            lease_margin_ms: number::<i64>(env, "LEASE_MARGIN_SECONDS").filter(|s| (1..=3600).contains(s)).unwrap_or(60) * 1000,
            sweep_grace_secs: number(env, "SWEEP_GRACE_SECONDS").unwrap_or(60),
            jwt_secret: text(env, "AUTH_JWT_SECRET"),
            auth_issuer: text(env, "AUTH_ISSUER"),
            auth_audience: text(env, "AUTH_AUDIENCE"),
            auth_max_token_lifetime_secs: number(env, "AUTH_MAX_TOKEN_LIFETIME_SECONDS").filter(|s| *s > 0).unwrap_or(86_400),
            max_webhooks_per_workspace: number(env, "MAX_WEBHOOKS_PER_WORKSPACE").unwrap_or(DEFAULT_MAX_WEBHOOKS),
            stripe_secret: text(env, "STRIPE_WEBHOOK_SECRET"),
            stripe_connect_secret: text(env, "STRIPE_CONNECT_WEBHOOK_SECRET"),
            resend_secret: text(env, "RESEND_WEBHOOK_SECRET"),
            keys: Keyring::from_config(
                text(env, "WEBHOOK_ENCRYPTION_KEY").as_deref(),
                text(env, "WEBHOOK_ENCRYPTION_KEY_PREVIOUS").as_deref(),
            ),
            health: HealthPolicy::new(
                number(env, "BREAKER_FAILURE_THRESHOLD").unwrap_or(10),
                number(env, "BREAKER_COOLDOWN_SECONDS").unwrap_or(60),
                number::<u32>(env, "BREAKER_MAX_COOLDOWN_SECONDS").map_or(MAX_COOLDOWN_SECS, |s| s.min(MAX_COOLDOWN_SECS)),
                number(env, "AUTO_DISABLE_AFTER_HOURS").unwrap_or(120),
            ),
            shards: ShardList::parse(text(env, "SHARDS").as_deref()),
            ops_api_key: text(env, "OPS_API_KEY"),
            subrequest_limit: number(env, "SUBREQUEST_LIMIT").filter(|n| *n >= 1).unwrap_or(FREE_SUBREQUESTS),
            move_cleanup_delay_secs: number(env, "MOVE_CLEANUP_DELAY_SECONDS").unwrap_or(crate::core::moves::min_cleanup_delay_secs()),
        }
    }
}

/// `DELIVERIES_PER_MESSAGE` (default 1, the format every consumer reads): delivery ids
/// per queue message. Read on its own because every producer needs it, some without a
/// whole `Config` (the inbound handlers publish through `delivery::fanout`).
pub fn deliveries_per_message(env: &Env) -> usize {
    number(env, "DELIVERIES_PER_MESSAGE").map_or(1, |n: usize| n.clamp(1, MAX_DELIVERIES_PER_MESSAGE))
}

/// `DEV_ALLOW_PRIVATE_TARGETS` is for local development only: say so, once per isolate,
/// so that a deployment that has it on shows it in its logs.
fn warn_private_targets_once() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        log_event(json!({"level": "warn", "msg": "DEV_ALLOW_PRIVATE_TARGETS is on: webhooks may target private \
                          addresses and http:// URLs; never enable it in production"}));
    }
}
