//! The delivery engine: fan-out into the queue, the queue consumer, one HTTP send,
//! and the cron sweeper. Rules (what to send, when to retry) live in `core::delivery`
//! and `core::retry`; state changes live in `store::deliveries`.

pub mod consumer;
pub mod fanout;
pub mod recover;
pub mod sender;
pub mod signing;
pub mod sweeper;

use serde::{Deserialize, Serialize};

use crate::core::outbound::recover::Cursor;

/// A queue message names delivery logs; the payload stays in D1 (messages are limited
/// to 128 KB, payloads may be 256 KB): `{"log_id": …}` for one (the only form before
/// `DELIVERIES_PER_MESSAGE`), `{"log_ids": [...]}` for several.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryJob<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub log_ids: &'a [String],
}

impl<'a> DeliveryJob<'a> {
    pub fn new(ids: &'a [String]) -> Self {
        match ids {
            [one] => DeliveryJob { log_id: Some(one), log_ids: &[] },
            _ => DeliveryJob { log_id: None, log_ids: ids },
        }
    }
}

/// The other kind of message on the same queue: `{"recover": {…}}`, one chunk of a
/// recovery (`POST /api/v1/webhooks/:id/recover`) to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoverMessage {
    pub recover: RecoverJob,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoverJob {
    /// The recovery's id (`rcv_…`): with the original, it makes a redelivery unique.
    pub job: String,
    pub webhook_id: String,
    pub since: i64,
    pub until: i64,
    /// Where the previous chunk stopped; `None` for the first.
    #[serde(default)]
    pub after: Option<Cursor>,
}

/// Any message of the delivery queue: `{log_id}`, `{log_ids}` or `{recover}`.
#[derive(Debug, Deserialize)]
pub struct QueueBody {
    #[serde(default)]
    pub log_id: Option<String>,
    #[serde(default)]
    pub log_ids: Vec<String>,
    #[serde(default)]
    pub recover: Option<RecoverJob>,
}

impl QueueBody {
    /// The deliveries the message names, in either form.
    pub fn delivery_ids(&self) -> impl Iterator<Item = &String> {
        self.log_id.iter().chain(self.log_ids.iter())
    }
}

/// The clock of the runtime (`SystemTime::now()` panics on wasm).
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// A structured log line; never pass secrets or payloads here. Every line carries a
/// `level` (`info` unless the fields say otherwise); errors go to `console.error`.
pub fn log_event(mut fields: serde_json::Value) {
    let level = fields.get("level").and_then(|l| l.as_str()).unwrap_or("info").to_string();
    if let Some(map) = fields.as_object_mut() {
        map.entry("level").or_insert_with(|| "info".into());
    }
    match level.as_str() {
        "error" => worker::console_error!("{fields}"),
        "warn" => worker::console_warn!("{fields}"),
        _ => worker::console_log!("{fields}"),
    }
}
