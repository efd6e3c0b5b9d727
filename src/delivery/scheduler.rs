//! Endpoint schedulers (SPEC §9.3): one SQLite-backed Durable Object per scheduled
//! webhook (a rate limit, FIFO ordering, or both) decides when each of its deliveries may
//! be attempted, and sends them through the one send path
//! (`dispatch::send_scheduled`: claim, send, record, health, operational events).
//!
//! A thin shell: the rules are `core::outbound::fifo` and `core::outbound::rate_limit`;
//! the lane (what is pending, in which order) is read from D1 before every step
//! (`store::schedule`), so D1 stays the source of truth and a lost object loses nothing.
//! The object keeps its webhook's id, the shard binding of the database holding it (from
//! each wake-up: a workspace move changes it) and the rate limit's bucket, and wakes by
//! its alarm. The worker's side (handing a delivery over, waking the object, reserving a
//! token, the pace of a chunk) is `delivery::lanes`; the cron wakes any lane left overdue
//! (a crash, a lost wake-up).
//!
//! Why the object sends rather than admitting sends made by the consumer: a FIFO lane
//! has one request in flight whoever sends it, and a gatekeeper would need two object
//! requests per delivery (admit, done) plus a queue hop between deliveries; here it is
//! none per delivery once awake. What it costs instead: the object is billed for the wall
//! time of its sends (docs/capacity.md).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Deserialize;
use serde_json::json;
use worker::{durable_object, wasm_bindgen, DurableObject, Env, Request, Response, Result, State};

use super::lanes::{sleep_until, Pace, Reserved};
use super::{dispatch, log_event, now_ms};
use crate::config::Config;
use crate::core::outbound::fifo::{self, Ordering, Step};
use crate::core::outbound::rate_limit::{Pacer, StartLog};
use crate::store::schedule;
use crate::store::shards::Shards;

/// How far ahead a chunk's start times reach: a chunk is claimed at once and sent in
/// its slots, so a rate-limited lane makes one claim per second at most.
const HORIZON_MS: i64 = 1_000;
/// Waits up to this long happen in the object; longer ones end the invocation and set
/// the alarm (every alarm set is a row written; a wait in the object is wall time billed).
const SLEEP_MAX_MS: i64 = 2_000;
/// An invocation sends for at most this long, then hands over to its next alarm.
const WALL_BUDGET_MS: i64 = 30_000;
/// Subrequests a step may need beside its fetches: the lane read, its second look, the
/// claim, the record, two health re-reads, operational events.
const STEP_SUBREQUESTS: usize = 7;
/// After a failed step (D1 unavailable), the alarm tries again this much later.
const ERROR_RETRY_MS: i64 = 5_000;
/// After a step whose claim took nothing (a fence of a workspace moving away, a head
/// interrupted during its last attempt that the cron has yet to fail, a breaker's
/// postponement), the alarm looks again this much later instead of at once.
const CLAIM_MISS_RETRY_MS: i64 = 1_000;

/// Whether a string is a webhook id as the service makes them.
fn is_webhook_id(s: &str) -> bool {
    s.len() <= 64 && s.strip_prefix("wh_").is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether a string may be a shard binding (`core::shards`; `Shards::named` checks it is listed).
fn is_shard_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What one invocation did, for its log line.
#[derive(Default)]
struct Run {
    sent: usize,
    chunks: usize,
    lane_reads: usize,
    bucket_writes: usize,
}

#[derive(Deserialize)]
struct LaneState {
    webhook_id: String,
    shard: Option<String>,
    next_token_ms: Option<i64>,
}

#[durable_object]
pub struct EndpointScheduler {
    state: State,
    env: Env,
    /// The webhook and its shard, once known (from the first wake-up, then from storage).
    webhook: RefCell<Option<(String, String)>>,
    /// The rate limit's bucket as last used (kept in storage too).
    pacer: Cell<Option<Pacer>>,
    /// Actual starts of the last R requests (in memory: after a restart the bucket's
    /// stored next token spaces the first ones).
    window: RefCell<Option<Rc<RefCell<StartLog>>>>,
    /// An alarm invocation is sending: a wake-up only marks the lane to be read again.
    running: Cell<bool>,
    woken: Cell<bool>,
}

impl DurableObject for EndpointScheduler {
    fn new(state: State, env: Env) -> Self {
        let created = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS lane (id INTEGER PRIMARY KEY CHECK (id = 1), webhook_id TEXT NOT NULL, \
             shard TEXT, next_token_ms INTEGER)",
            None,
        );
        if let Err(e) = created {
            log_event(json!({"level": "error", "msg": "scheduler storage unavailable", "error": e.to_string()}));
        }
        EndpointScheduler {
            state,
            env,
            webhook: RefCell::new(None),
            pacer: Cell::new(None),
            window: RefCell::new(None),
            running: Cell::new(false),
            woken: Cell::new(false),
        }
    }

    /// `GET /wake?webhook=wh_…&shard=DB`: 204, and the alarm fires now unless it is set already.
    /// `GET /reserve?webhook=wh_…&shard=DB&rate=R`: one token, `{"at": <ms>}`.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let Some(id) = param("webhook").filter(|id| is_webhook_id(id)) else {
            return Response::error("unknown scheduler request", 404);
        };
        let Some(shard) = param("shard").filter(|s| is_shard_name(s)) else {
            return Response::error("shard required", 400);
        };
        self.remember(&id, &shard)?;
        if url.path() == "/reserve" {
            let Some(rate) = param("rate").and_then(|r| r.parse::<u32>().ok()) else {
                return Response::error("rate required", 400);
            };
            let mut pacer = self.pacer(rate)?;
            let now = now_ms();
            let planned = pacer.take(now, 1, i64::from(u32::MAX)).first().copied().unwrap_or(now);
            self.save_pacer(pacer)?;
            // The lane's sends count it as started when it is due.
            let window = self.window(rate);
            let at = window.borrow().earliest(planned);
            window.borrow_mut().record(at);
            return Response::from_json(&Reserved { at });
        }
        if url.path() != "/wake" {
            return Response::error("unknown scheduler request", 404);
        }
        if self.running.get() {
            self.woken.set(true);
        } else if self.state.storage().get_alarm().await?.is_none() {
            self.state.storage().set_alarm(0).await?;
        }
        Ok(Response::empty()?.with_status(204))
    }

    async fn alarm(&self) -> Result<Response> {
        let Some((webhook, shard)) = self.lane_of()? else {
            return Response::empty();
        };
        self.running.set(true);
        let started = now_ms();
        let mut run = Run::default();
        let outcome = self.run(&webhook, &shard, &mut run).await;
        self.running.set(false);
        let next = match outcome {
            Ok(next) => next,
            Err(e) => {
                log_event(json!({"level": "error", "msg": "scheduler step failed; retried", "webhook": webhook,
                                 "error": e.to_string()}));
                Some(now_ms() + ERROR_RETRY_MS)
            }
        };
        // A wake-up during the last step may concern what that step already read past.
        let next = if self.woken.replace(false) { Some(next.map_or(now_ms(), |t| t.min(now_ms()))) } else { next };
        if let Some(at) = next {
            self.state.storage().set_alarm(at - now_ms()).await?;
        }
        // One line per invocation: what the lane cost beside the consumer's own lines
        // (each chunk sent logs a `delivery batch` line with `"scheduler": true`).
        log_event(json!({"msg": "scheduler run", "webhook": webhook, "shard": shard, "sent": run.sent, "chunks": run.chunks,
                         "lane_reads": run.lane_reads, "bucket_writes": run.bucket_writes,
                         "alarm_set": next.is_some(), "wall_ms": now_ms() - started}));
        Response::empty()
    }
}

impl EndpointScheduler {
    /// Keeps the webhook and its shard; a wake-up from another shard (the workspace moved)
    /// replaces the shard (one row written, only then).
    fn remember(&self, webhook: &str, shard: &str) -> Result<()> {
        let known = self.webhook.borrow().as_ref().is_some_and(|(w, s)| w == webhook && s == shard);
        if known {
            return Ok(());
        }
        self.state.storage().sql().exec(
            "INSERT INTO lane (id, webhook_id, shard) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET shard = excluded.shard",
            vec![webhook.into(), shard.into()],
        )?;
        *self.webhook.borrow_mut() = Some((webhook.to_string(), shard.to_string()));
        Ok(())
    }

    fn stored(&self) -> Result<Option<LaneState>> {
        let rows: Vec<LaneState> = self
            .state
            .storage()
            .sql()
            .exec("SELECT webhook_id, shard, next_token_ms FROM lane WHERE id = 1", None)?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// The webhook and its shard: in memory, else as stored (a restart).
    fn lane_of(&self) -> Result<Option<(String, String)>> {
        if let Some(known) = self.webhook.borrow().clone() {
            return Ok(Some(known));
        }
        let known = self.stored()?.map(|s| (s.webhook_id, s.shard.unwrap_or_else(|| crate::core::shards::DIRECTORY_BINDING.to_string())));
        self.webhook.replace(known.clone());
        Ok(known)
    }

    /// The bucket at `rate`: as last used, else as stored (a restart), else full.
    fn pacer(&self, rate: u32) -> Result<Pacer> {
        if let Some(p) = self.pacer.get() {
            return Ok(p.with_rate(rate));
        }
        let next = self.stored()?.and_then(|s| s.next_token_ms).unwrap_or(0);
        Ok(Pacer::new(rate, next))
    }

    /// The start log at `rate`, shared with the sends of the chunk.
    fn window(&self, rate: u32) -> Rc<RefCell<StartLog>> {
        let mut slot = self.window.borrow_mut();
        let shared = slot.get_or_insert_with(|| Rc::new(RefCell::new(StartLog::new(rate)))).clone();
        shared.replace_with(|log| log.clone().with_rate(rate));
        shared
    }

    fn save_pacer(&self, p: Pacer) -> Result<()> {
        self.pacer.set(Some(p));
        self.state.storage().sql().exec("UPDATE lane SET next_token_ms = ? WHERE id = 1", vec![p.next_ms().into()])?;
        Ok(())
    }

    /// Sends what the lane lets go, step by step, within the invocation's budgets;
    /// returns when to look again (`None`: nothing pending).
    async fn run(&self, webhook: &str, shard: &str, run: &mut Run) -> Result<Option<i64>> {
        let config = Config::from_env(&self.env);
        let list = config.shards.clone().map_err(worker::Error::RustError)?;
        let shard = Shards::new(&self.env, &list).named(shard)?;
        let db = &shard.db;
        let started = now_ms();
        let budget = config.subrequest_limit.max(STEP_SUBREQUESTS + 1);
        let max_chunk = (budget - STEP_SUBREQUESTS).min(config.deliveries_per_invocation.max(1));
        let mut used = 0;
        loop {
            let now = now_ms();
            if now - started > WALL_BUDGET_MS || used + STEP_SUBREQUESTS + 1 > budget {
                return Ok(Some(now));
            }
            self.woken.set(false);
            let lane = schedule::read(db, webhook, now, u32::try_from(max_chunk).unwrap_or(1)).await?;
            used += 1;
            run.lane_reads += 1;
            let Some(w) = lane.webhook else {
                return Ok(None);
            };
            if !w.active {
                let failed = schedule::fail_inactive(db, webhook, now).await?;
                log_event(json!({"msg": "scheduler: webhook inactive, pending deliveries failed", "webhook": webhook,
                                 "failed": failed}));
                return Ok(None);
            }
            let later = if w.pacing.ordering == Ordering::None && lane.rows.is_empty() {
                used += 1;
                run.lane_reads += 1;
                schedule::next_ready(db, webhook, now).await?
            } else {
                None
            };
            let mut pacer = w.pacing.rate_limit_per_second.map(|r| self.pacer(r)).transpose()?;
            let room = max_chunk.min(budget.saturating_sub(used + STEP_SUBREQUESTS)).max(1);
            match fifo::next_step(w.pacing.ordering, &lane.rows, later, pacer.as_mut(), now, room, HORIZON_MS) {
                Step::Idle => return Ok(None),
                Step::WaitUntil(at) if at - now <= SLEEP_MAX_MS => sleep_until(at).await,
                Step::WaitUntil(at) => return Ok(Some(at)),
                Step::Send { ids, starts } => {
                    if let Some(p) = pacer {
                        self.save_pacer(p)?;
                        run.bucket_writes += 1;
                    }
                    let window = w.pacing.rate_limit_per_second.map(|rate| self.window(rate));
                    let pace = Pace::new(ids.iter().cloned().zip(starts).collect(), window);
                    let sent = dispatch::send_scheduled(&self.env, &shard, &config, &ids, &pace).await?;
                    used += ids.len() + STEP_SUBREQUESTS - 1;
                    run.sent += sent.len();
                    run.chunks += 1;
                    if sent.is_empty() {
                        return Ok(Some(now_ms() + CLAIM_MISS_RETRY_MS));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_only() {
        assert!(is_shard_name("DB") && is_shard_name("DB_2"));
        for bad in ["", "DB&x=1", "DB/2", "a b"] {
            assert!(!is_shard_name(bad), "{bad}");
        }
    }

    #[test]
    fn webhook_ids_only() {
        assert!(is_webhook_id("wh_0123abcd"));
        for bad in ["", "wh_", "dlv_1", "wh_a&b=c", "wh_a/b", &format!("wh_{}", "a".repeat(62))] {
            assert!(!is_webhook_id(bad), "{bad}");
        }
    }
}
