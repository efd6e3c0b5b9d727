//! The worker's side of the endpoint schedulers (`delivery::scheduler`, one Durable
//! Object per scheduled webhook): which claimed deliveries go to a scheduler instead of
//! being sent at once ([`hand_over`]), waking schedulers ([`wake_all`]), reserving a rate
//! limit's token for a send outside the lane ([`reserve`]), and the [`Pace`] a
//! scheduler's chunk is sent at. The send path (`dispatch`) and the cron import this;
//! the object imports it and `dispatch`, so nothing here imports the object.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{Env, Result};

use super::{log_event, now_ms};
use crate::core::outbound::rate_limit::StartLog;
use crate::store::deliveries::{ClaimMeta, ClaimedDelivery};

/// The Durable Object namespace binding (wrangler.toml).
pub const BINDING: &str = "ENDPOINT_SCHEDULER";

/// When a scheduler's chunk may go: each delivery's planned start (ms) and, for a
/// rate-limited lane, the log of actual starts that caps any second at R.
pub struct Pace {
    starts: HashMap<String, i64>,
    window: Option<Rc<RefCell<StartLog>>>,
}

impl Pace {
    /// Planned starts by log id, and the lane's window of actual starts if rate-limited.
    pub fn new(starts: HashMap<String, i64>, window: Option<Rc<RefCell<StartLog>>>) -> Pace {
        Pace { starts, window }
    }

    /// Waits for the delivery's planned start and room in the window, then takes it.
    /// One thread: the check and the record cannot interleave with another send's.
    pub async fn wait(&self, log_id: &str) {
        let planned = self.starts.get(log_id).copied();
        loop {
            let now = now_ms();
            let at = planned.unwrap_or(now).max(self.window.as_ref().map_or(now, |w| w.borrow().earliest(now)));
            if at <= now {
                if let Some(w) = &self.window {
                    w.borrow_mut().record(now);
                }
                return;
            }
            sleep_until(at).await;
        }
    }
}

/// Splits off the claimed deliveries their schedulers send; returns the rest and, for
/// those handed over, `(log id, webhook id)`.
pub fn hand_over(claimed: Vec<ClaimedDelivery>, meta: Vec<ClaimMeta>)
    -> (Vec<ClaimedDelivery>, Vec<ClaimMeta>, Vec<(String, String)>) {
    if claimed.iter().all(|d| !d.scheduled) {
        return (claimed, meta, Vec::new());
    }
    let mut kept = (Vec::new(), Vec::new());
    let mut handed = Vec::new();
    for (d, m) in claimed.into_iter().zip(meta) {
        if d.scheduled {
            handed.push((d.log_id, d.webhook_id));
        } else {
            kept.0.push(d);
            kept.1.push(m);
        }
    }
    (kept.0, kept.1, handed)
}

/// Wakes the schedulers of these webhooks (each once, together); returns the requests
/// made. A failed wake-up is logged: the cron wakes overdue lanes.
pub async fn wake_all<'a>(env: &Env, shard: &str, webhook_ids: impl Iterator<Item = &'a str>) -> usize {
    let ids: HashSet<&str> = webhook_ids.collect();
    if ids.is_empty() {
        return 0;
    }
    let results = futures_util::future::join_all(ids.iter().map(|id| wake(env, shard, id))).await;
    for (id, result) in ids.iter().zip(results) {
        if let Err(e) = result {
            log_event(json!({"level": "warn", "msg": "scheduler not woken; the cron will", "webhook": id,
                             "error": e.to_string()}));
        }
    }
    ids.len()
}

/// Wakes one webhook's scheduler; `shard` is the binding of the database holding it.
pub async fn wake(env: &Env, shard: &str, webhook_id: &str) -> Result<()> {
    let stub = env.durable_object(BINDING)?.id_from_name(webhook_id)?.get_stub()?;
    // Webhook ids are `wh_` and lowercase hex, shards binding names: nothing to escape.
    let response = stub.fetch_with_str(&format!("https://scheduler/wake?webhook={webhook_id}&shard={shard}")).await?;
    match response.status_code() {
        204 => Ok(()),
        status => Err(worker::Error::RustError(format!("scheduler answered {status}"))),
    }
}

/// Takes one token of a rate-limited webhook's bucket (at `rate` per second) for a
/// request sent outside its lane (a test delivery); returns when it may start (ms).
pub async fn reserve(env: &Env, shard: &str, webhook_id: &str, rate: u32) -> Result<i64> {
    let stub = env.durable_object(BINDING)?.id_from_name(webhook_id)?.get_stub()?;
    let mut response =
        stub.fetch_with_str(&format!("https://scheduler/reserve?webhook={webhook_id}&shard={shard}&rate={rate}")).await?;
    let answer: Reserved = response.json().await?;
    Ok(answer.at)
}

/// The object's answer to a reservation.
#[derive(Serialize, Deserialize)]
pub struct Reserved {
    pub at: i64,
}

/// Waits until `at` (ms since the epoch); returns at once if it has passed.
pub async fn sleep_until(at: i64) {
    let wait = at - now_ms();
    if wait > 0 {
        worker::Delay::from(Duration::from_millis(wait as u64)).await;
    }
}
