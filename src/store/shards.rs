//! Which database: the one place that turns a workspace into the D1 database holding it.
//!
//! The directory (`workspace_shards`, in `DB`) records each workspace's shard from its
//! first write; the isolate caches what it has read. Shards are the bindings of `SHARDS`
//! (`core::shards`). Repositories never pick a binding: they take the [`Shard`] (or its
//! `db`) that this module hands out. The per-shard figures of the operator API are read
//! here too.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::Deserialize;
use worker::{D1Database, Env, Error, Result};

use super::{statement, Db};
use crate::core::moves::PLACEMENT_CACHE_TTL_MS;
use crate::core::shards::{ShardList, DIRECTORY_BINDING};
use crate::core::time::UnixMillis;

/// One shard: its binding name (what queue messages carry) and its database.
pub struct Shard {
    pub name: String,
    pub db: Db,
}

/// The shards of this deployment, bound to the environment of one invocation; with a
/// `meter`, every handle it gives adds its rows to that one (a request's log line).
pub struct Shards<'a> {
    env: &'a Env,
    list: &'a ShardList,
    meter: Option<&'a Db>,
    /// Directory round trips made to find or place workspaces (cache misses).
    lookups: Cell<u32>,
}

thread_local! {
    /// workspace → (shard, when this isolate read it). An entry is trusted for
    /// `PLACEMENT_CACHE_TTL_MS`: a move cleans the old shard only after twice that, and
    /// until then the old shard's fence refuses every write a stale entry sends there.
    static PLACED: RefCell<HashMap<String, (String, UnixMillis)>> = RefCell::new(HashMap::new());
}

#[derive(Deserialize)]
struct ShardRow {
    shard: String,
}

#[derive(Deserialize)]
struct CountRow {
    shard: String,
    n: f64,
}

impl<'a> Shards<'a> {
    pub fn new(env: &'a Env, list: &'a ShardList) -> Self {
        Shards { env, list, meter: None, lookups: Cell::new(0) }
    }

    pub fn metered(env: &'a Env, list: &'a ShardList, meter: &'a Db) -> Self {
        Shards { env, list, meter: Some(meter), lookups: Cell::new(0) }
    }

    fn handle(&self, d1: D1Database) -> Db {
        match self.meter {
            Some(m) => m.sharing(d1),
            None => Db::new(d1),
        }
    }

    /// D1 round trips this handle made to the directory to find or place workspaces.
    pub fn lookups(&self) -> u32 {
        self.lookups.get()
    }

    fn looked_up(&self, trips: u32) {
        self.lookups.set(self.lookups.get() + trips);
    }

    pub fn list(&self) -> &ShardList {
        self.list
    }

    /// The database of the directory and of the inbound provider state.
    pub fn directory(&self) -> Result<Db> {
        Ok(self.handle(self.env.d1(DIRECTORY_BINDING)?))
    }

    /// A shard by its binding name (a queue message's `shard`); only listed ones.
    pub fn named(&self, name: &str) -> Result<Shard> {
        if !self.list.contains(name) {
            return Err(Error::RustError(format!("shard {name} is not listed in SHARDS")));
        }
        Ok(Shard { name: name.to_string(), db: self.handle(self.env.d1(name)?) })
    }

    /// Every listed shard, in order.
    pub fn all(&self) -> Result<Vec<Shard>> {
        self.list.names().iter().map(|n| self.named(n)).collect()
    }

    /// The shard a workspace's reads go to: its placement, or the first listed for a
    /// workspace never written (it has no rows anywhere; reading places nothing).
    pub async fn for_read(&self, workspace: &str) -> Result<Shard> {
        match self.locate(workspace).await? {
            Some(name) => self.named(&name),
            None => self.named(self.list.first()),
        }
    }

    /// The shard a workspace's writes go to, placing the workspace on its first write in
    /// the shard with the fewest workspaces. Two isolates placing the same workspace at
    /// once agree: the directory keeps the first insert and both read it back.
    pub async fn for_write(&self, workspace: &str, now: UnixMillis) -> Result<Shard> {
        if let Some(name) = self.locate(workspace).await? {
            return self.named(&name);
        }
        let directory = self.directory()?;
        let counts = workspace_counts(&directory).await?;
        self.looked_up(2);
        let choice = self.list.place(&counts).to_string();
        let results = directory
            .batch(vec![
                statement(
                    &directory,
                    "INSERT INTO workspace_shards (workspace_id, shard, placed_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (workspace_id) DO NOTHING",
                    &[&workspace, &choice, &now],
                )?,
                statement(&directory, "SELECT shard FROM workspace_shards WHERE workspace_id = ?1", &[&workspace])?,
            ])
            .await?;
        let placed = results
            .get(1)
            .map(|r| r.results::<ShardRow>())
            .transpose()?
            .and_then(|rows| rows.into_iter().next())
            .map_or(choice, |r| r.shard);
        remember(workspace, &placed);
        self.named(&placed)
    }

    /// The workspace's shard from the cache or the directory; `None` if never placed.
    pub async fn locate(&self, workspace: &str) -> Result<Option<String>> {
        let fresh_since = worker::Date::now().as_millis() as i64 - PLACEMENT_CACHE_TTL_MS;
        let cached = PLACED.with(|p| p.borrow().get(workspace).filter(|(_, at)| *at >= fresh_since).map(|(s, _)| s.clone()));
        if let Some(name) = cached {
            return Ok(Some(name));
        }
        self.locate_fresh(workspace).await
    }

    /// The workspace's shard as the directory says now (the operator API, a move).
    pub async fn locate_fresh(&self, workspace: &str) -> Result<Option<String>> {
        let directory = self.directory()?;
        self.looked_up(1);
        let row: Option<ShardRow> =
            directory.first(statement(&directory, "SELECT shard FROM workspace_shards WHERE workspace_id = ?1", &[&workspace])?).await?;
        if let Some(r) = &row {
            remember(workspace, &r.shard);
        }
        Ok(row.map(|r| r.shard))
    }
}

fn remember(workspace: &str, shard: &str) {
    PLACED.with(|p| {
        let mut map = p.borrow_mut();
        // A bound on the isolate's memory (128 MB): forget all rather than track age.
        if map.len() >= 100_000 {
            map.clear();
        }
        map.insert(workspace.to_string(), (shard.to_string(), worker::Date::now().as_millis() as i64));
    });
}

/// Forgets every cached placement: a shard refused a write because a workspace moved
/// (its fence), so this isolate's entries may be stale.
pub fn forget_placements() {
    PLACED.with(|p| p.borrow_mut().clear());
}

/// The message of the old shard's fence (migration 0014) in a D1 error.
pub const MOVED_MARKER: &str = "workspace_moved";

/// Whether a D1 error is the fence of a workspace that is moving or has moved.
pub fn is_moved_error(e: &worker::Error) -> bool {
    e.to_string().contains(MOVED_MARKER)
}

/// Workspaces per shard, from the directory.
pub async fn workspace_counts(directory: &Db) -> Result<Vec<(String, u64)>> {
    let rows = directory
        .all(statement(directory, "SELECT shard, COUNT(*) AS n FROM workspace_shards GROUP BY shard", &[])?)
        .await?
        .results::<CountRow>()?;
    Ok(rows.into_iter().map(|r| (r.shard, r.n.max(0.0) as u64)).collect())
}

/// What one shard holds, for `GET /api/v1/ops/shards`.
pub struct ShardFigures {
    pub webhooks: u64,
    pub logs: u64,
    /// The database file's size as D1 reports it after a query; `None` when not reported
    /// (Miniflare reports it, production does).
    pub size_bytes: Option<u64>,
}

#[derive(Deserialize)]
struct FiguresRow {
    webhooks: f64,
    logs: f64,
}

/// Counts of one shard's webhooks and delivery logs (a count reads every row it counts:
/// an operator's call, not a hot path) and the database size from the query's meta.
pub async fn figures(db: &Db) -> Result<ShardFigures> {
    let result = db
        .all(statement(db, "SELECT (SELECT COUNT(*) FROM webhooks) AS webhooks, (SELECT COUNT(*) FROM delivery_logs) AS logs", &[])?)
        .await?;
    let size_bytes = result.meta().ok().flatten().and_then(|m| m.size_after).map(|s| s as u64);
    let row = result.results::<FiguresRow>()?.into_iter().next();
    Ok(ShardFigures {
        webhooks: row.as_ref().map_or(0, |r| r.webhooks.max(0.0) as u64),
        logs: row.as_ref().map_or(0, |r| r.logs.max(0.0) as u64),
        size_bytes,
    })
}
