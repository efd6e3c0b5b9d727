//! The delivery engine: fan-out into the queue, the queue consumer, one HTTP send,
//! and the cron sweeper. Rules (what to send, when to retry) live in `core::delivery`
//! and `core::retry`; state changes live in `store::deliveries`.

pub mod consumer;
pub mod fanout;
pub mod sender;
pub mod sweeper;

use serde::{Deserialize, Serialize};

/// A queue message names a delivery log; the payload stays in D1 (messages are
/// limited to 128 KB, payloads may be 256 KB).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub log_id: String,
}

/// The clock of the runtime (`SystemTime::now()` panics on wasm).
pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// A structured log line; never pass secrets or payloads here.
pub fn log_event(fields: serde_json::Value) {
    worker::console_log!("{fields}");
}
