//! The delivery engine, top-down: the entry points (`consumer` for queue batches,
//! `fanout` for publishing, `sweeper` for the cron, `recover` for recovery chunks) call
//! `dispatch` (send claimed deliveries and record them) and `queue` (every queue send and
//! message shape); `dispatch` calls `sender` (one HTTP attempt) and `signing`. Rules
//! (what to send, when to retry) live in `core::outbound`; SQL in `store`.

pub mod consumer;
pub mod dispatch;
pub mod fanout;
pub mod lanes;
pub mod moves;
pub mod queue;
pub mod recover;
pub mod scheduler;
pub mod sender;
pub mod signing;
pub mod sweeper;

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
