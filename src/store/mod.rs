//! D1 repositories: all SQL of the service lives under this module.
//!
//! One module per aggregate. Functions take typed values and return typed values from
//! `core`; callers never see SQL or rows. Multi-statement writes go through one `batch`
//! (a single round trip, applied atomically by D1).
//!
//! Every repository function takes the database it works on as a [`Db`]: the handle
//! meters what D1 reports for each result (`rows_read`, `rows_written`), so the unit of
//! work that owns it (a request, a consumer batch, a cron run) logs its own cost.

pub mod billing;
pub mod connect;
pub mod deliveries;
pub mod email;
pub mod events;
pub mod inbound_events;
pub mod logs;
pub mod moves;
pub mod recover;
pub mod shards;
pub mod schedule;
pub mod stats;
pub mod webhooks;

use std::cell::Cell;
use std::ops::Deref;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result, Result};

/// Rows D1 read and wrote, as its result `meta` reports them (what D1 bills).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub read: u64,
    pub written: u64,
}

impl Rows {
    /// The work done since `earlier` (a snapshot of the same meter).
    pub fn since(self, earlier: Rows) -> Rows {
        Rows { read: self.read.saturating_sub(earlier.read), written: self.written.saturating_sub(earlier.written) }
    }
}

/// A D1 database and the rows its results reported so far. Reads and writes go through
/// [`Db::batch`], [`Db::all`], [`Db::run`] and [`Db::first`], which meter them; the
/// handle dereferences to the binding for preparing statements.
pub struct Db {
    d1: D1Database,
    meter: Rc<Cell<Rows>>,
}

impl Db {
    pub fn new(d1: D1Database) -> Self {
        Db { d1, meter: Rc::default() }
    }

    /// Another database whose rows add to this handle's meter: one unit of work's log
    /// line sums what it did in every database it touched (`store::shards`).
    pub fn sharing(&self, d1: D1Database) -> Self {
        Db { d1, meter: Rc::clone(&self.meter) }
    }

    /// The rows metered so far; subtract an earlier snapshot for one step's share.
    pub fn rows(&self) -> Rows {
        self.meter.get()
    }

    fn meter(&self, result: &D1Result) {
        // A result without meta (never seen from D1) simply adds nothing.
        if let Ok(Some(meta)) = result.meta() {
            let mut rows = self.meter.get();
            rows.read += meta.rows_read.unwrap_or(0) as u64;
            rows.written += meta.rows_written.unwrap_or(0) as u64;
            self.meter.set(rows);
        }
    }

    /// Runs the statements in one round trip (one transaction), metered.
    pub async fn batch(&self, statements: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>> {
        let results = self.d1.batch(statements).await.inspect_err(noticed)?;
        for r in &results {
            self.meter(r);
        }
        Ok(results)
    }

    /// Runs one statement and returns its rows and meta, metered.
    pub async fn all(&self, statement: D1PreparedStatement) -> Result<D1Result> {
        let result = statement.all().await.inspect_err(noticed)?;
        self.meter(&result);
        Ok(result)
    }

    /// Runs one write; the same as [`Db::all`] (D1's `run` also carries meta).
    pub async fn run(&self, statement: D1PreparedStatement) -> Result<D1Result> {
        let result = statement.run().await.inspect_err(noticed)?;
        self.meter(&result);
        Ok(result)
    }

    /// The first row, if any. Through `all` (D1's `first` has no meta to meter).
    pub async fn first<T: DeserializeOwned>(&self, statement: D1PreparedStatement) -> Result<Option<T>> {
        Ok(self.all(statement).await?.results::<T>()?.into_iter().next())
    }
}

/// Every D1 error passes here: a write refused by a moved workspace's fence means this
/// isolate's cached placements may be stale.
fn noticed(e: &worker::Error) {
    if shards::is_moved_error(e) {
        shards::forget_placements();
    }
}

impl Deref for Db {
    type Target = D1Database;
    fn deref(&self) -> &D1Database {
        &self.d1
    }
}

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
pub async fn ping(db: &Db) -> Result<()> {
    db.first::<serde_json::Value>(db.prepare("SELECT 1 AS ok")).await.map(|_| ())
}
