//! D1 repositories: all SQL of the service lives under this module.
//!
//! One module per aggregate. Functions take typed values and return typed values from
//! `core`; callers never see SQL or rows. Multi-statement writes go through one `batch`
//! (a single round trip, applied atomically by D1).

pub mod billing;
pub mod connect;
pub mod deliveries;
pub mod email;
pub mod events;
pub mod inbound_events;
pub mod logs;
pub mod recover;
pub mod shards;
pub mod stats;
pub mod webhooks;

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

/// A value bindable to a D1 statement parameter.
pub trait SqlArg {
    fn to_js(&self) -> JsValue;
}

impl SqlArg for str {
    fn to_js(&self) -> JsValue {
        JsValue::from_str(self)
    }
}
impl SqlArg for String {
    fn to_js(&self) -> JsValue {
        JsValue::from_str(self)
    }
}
impl SqlArg for i64 {
    fn to_js(&self) -> JsValue {
        // D1 numbers are f64: every timestamp and counter we store is far below 2^53.
        JsValue::from_f64(*self as f64)
    }
}
impl SqlArg for u32 {
    fn to_js(&self) -> JsValue {
        JsValue::from_f64(f64::from(*self))
    }
}
impl SqlArg for bool {
    fn to_js(&self) -> JsValue {
        JsValue::from_f64(if *self { 1.0 } else { 0.0 })
    }
}
impl<T: SqlArg + ?Sized> SqlArg for &T {
    fn to_js(&self) -> JsValue {
        (**self).to_js()
    }
}
impl<T: SqlArg> SqlArg for Option<T> {
    fn to_js(&self) -> JsValue {
        self.as_ref().map_or(JsValue::NULL, SqlArg::to_js)
    }
}

/// Prepares `sql` with positional arguments.
pub fn statement(db: &D1Database, sql: &str, args: &[&dyn SqlArg]) -> Result<D1PreparedStatement> {
    let values: Vec<JsValue> = args.iter().map(|a| a.to_js()).collect();
    db.prepare(sql).bind(&values)
}

/// Prepares `sql` with positional arguments `args`, then `more` (already converted):
/// lets a statement embed a look-up whose own arguments follow the statement's.
pub fn statement_with(db: &D1Database, sql: &str, args: &[&dyn SqlArg], more: Vec<JsValue>) -> Result<D1PreparedStatement> {
    let mut values: Vec<JsValue> = args.iter().map(|a| a.to_js()).collect();
    values.extend(more);
    db.prepare(sql).bind(&values)
}

/// JSON array text of ids, for `IN (SELECT value FROM json_each(?))`: one parameter
/// however many ids (D1 caps bound parameters per statement at 100).
pub fn json_ids<S: AsRef<str>>(ids: &[S]) -> String {
    serde_json::Value::from(ids.iter().map(|s| s.as_ref()).collect::<Vec<_>>()).to_string()
}

/// Rows changed by a write, from a batch result.
pub fn changes(result: &worker::D1Result) -> usize {
    result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0)
}

/// Health probe: D1 answers a trivial query.
pub async fn ping(db: &D1Database) -> Result<()> {
    db.prepare("SELECT 1 AS ok").first::<serde_json::Value>(None).await.map(|_| ())
}
