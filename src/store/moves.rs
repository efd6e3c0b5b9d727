//! Moving a workspace between shards: the SQL (the rules are in `core::moves`, the job
//! in `delivery::moves`). The job rows live in `DB` (`workspace_moves`); the fence and
//! the recorded changes live in the shard the workspace leaves (`shard_fence`,
//! `move_changes`, migration 0014). Rows are copied column by column as D1 returns them,
//! so a column added by a later migration moves without a change here.

use serde::Deserialize;
use serde_json::{Map, Value};
use wasm_bindgen::JsValue;
use worker::{Error, Result};

use super::{changes, statement, Db};
use crate::core::moves::{cursor_key, prepare_row, Table};
use crate::core::time::UnixMillis;

/// Rows deleted per table and statement by a clear or a cleanup step.
const DELETE_CHUNK: u32 = 1_000;

/// One move, as `workspace_moves` keeps it.
#[derive(Debug, Clone, Deserialize)]
pub struct MoveRow {
    pub job: String,
    pub workspace_id: String,
    pub from_shard: String,
    pub to_shard: String,
    pub state: String,
    pub step: String,
    pub cursor: Option<String>,
    pub copied: String,
    pub error: Option<String>,
    pub failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub cutover_at: Option<i64>,
    pub done_at: Option<i64>,
}

const MOVE_COLUMNS: &str = "job, workspace_id, from_shard, to_shard, state, step, cursor, copied, error, failures, \
    created_at, updated_at, cutover_at, done_at";

/// Records a new move; `false` when the workspace already has one that is not finished.
pub async fn create(directory: &Db, job: &str, workspace: &str, from: &str, to: &str, now: UnixMillis) -> Result<bool> {
    let result = directory
        .run(statement(
            directory,
            "INSERT OR IGNORE INTO workspace_moves (job, workspace_id, from_shard, to_shard, state, step, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'copying', 'clear', ?5, ?5)",
            &[&job, &workspace, &from, &to, &now],
        )?)
        .await?;
    Ok(changes(&result) == 1)
}

pub async fn get(directory: &Db, job: &str) -> Result<Option<MoveRow>> {
    directory
        .first(statement(directory, &format!("SELECT {MOVE_COLUMNS} FROM workspace_moves WHERE job = ?1"), &[&job])?)
        .await
}

/// The workspace's move that is not finished, if any.
pub async fn running_for(directory: &Db, workspace: &str) -> Result<Option<MoveRow>> {
    directory
        .first(statement(
            directory,
            &format!("SELECT {MOVE_COLUMNS} FROM workspace_moves WHERE workspace_id = ?1 AND state IN ('copying', 'cutover')"),
            &[&workspace],
        )?)
        .await
}

/// Moves not finished whose job was last saved before `before` (their next message was
/// lost, dead-lettered, or never sent): the cron queues them again.
pub async fn stalled(directory: &Db, before: UnixMillis, limit: u32) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Job {
        job: String,
    }
    let rows: Vec<Job> = directory
        .all(statement(
            directory,
            "SELECT job FROM workspace_moves WHERE state IN ('copying', 'cutover') AND updated_at < ?1 \
             ORDER BY updated_at LIMIT ?2",
            &[&before, &limit],
        )?)
        .await?
        .results()?;
    Ok(rows.into_iter().map(|r| r.job).collect())
}

/// Saves the job's progress if nobody else saved since `seen` (its `updated_at` when
/// read): two runners of one job (a queue message delivered twice) never both go on.
pub async fn save(directory: &Db, row: &MoveRow, seen: UnixMillis) -> Result<bool> {
    let result = directory.run(save_statement(directory, row, seen)?).await?;
    Ok(changes(&result) == 1)
}

fn save_statement(directory: &Db, row: &MoveRow, seen: UnixMillis) -> Result<worker::D1PreparedStatement> {
    statement(
        directory,
        "UPDATE workspace_moves SET state = ?2, step = ?3, cursor = ?4, copied = ?5, error = ?6, failures = ?7, \
           updated_at = ?8, cutover_at = ?9, done_at = ?10 WHERE job = ?1 AND updated_at = ?11",
        &[&row.job, &row.state, &row.step, &row.cursor, &row.copied, &row.error, &row.failures, &row.updated_at,
          &row.cutover_at, &row.done_at, &seen],
    )
}

/// The commit point of a move: the directory names the new shard, and the job says so,
/// in one transaction. `false` if another runner saved the job meanwhile.
pub async fn flip(directory: &Db, row: &MoveRow, seen: UnixMillis) -> Result<bool> {
    let results = directory
        .batch(vec![
            save_statement(directory, row, seen)?,
            statement(
                directory,
                "UPDATE workspace_shards SET shard = ?2 WHERE workspace_id = ?1 AND changes() = 1",
                &[&row.workspace_id, &row.to_shard],
            )?,
        ])
        .await?;
    Ok(results.first().map(changes) == Some(1))
}

/// Deletes up to a chunk of the workspace's rows from `db`, table by table (rollups
/// before their webhooks); returns how many went. `fence` says what to do with the
/// workspace's fence first: `Drop` (the target of a move: no trigger may act there),
/// or `Gone(job)` (the old shard after the flip: the cleanup may delete its webhooks).
pub async fn delete_workspace_chunk(db: &Db, workspace: &str, fence: FenceBefore<'_>, now: UnixMillis) -> Result<usize> {
    let mut statements = vec![match fence {
        FenceBefore::Drop => statement(db, "DELETE FROM shard_fence WHERE workspace_id = ?1", &[&workspace])?,
        FenceBefore::Gone(job) => statement(
            db,
            "UPDATE shard_fence SET state = 'gone', gone_at = COALESCE(gone_at, ?3) WHERE workspace_id = ?1 AND job = ?2",
            &[&workspace, &job, &now],
        )?,
    }];
    let deletes = [
        "DELETE FROM webhook_rollups WHERE (webhook_id, hour) IN (SELECT r.webhook_id, r.hour FROM webhooks w \
           JOIN webhook_rollups r ON r.webhook_id = w.id WHERE w.workspace_id = ?1 LIMIT ?2)",
        "DELETE FROM delivery_logs WHERE id IN (SELECT id FROM delivery_logs WHERE workspace_id = ?1 LIMIT ?2)",
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE workspace_id = ?1 LIMIT ?2)",
        // A webhook goes once its rollups have (else they could no longer be found).
        "DELETE FROM webhooks WHERE id IN (SELECT w.id FROM webhooks w WHERE w.workspace_id = ?1 \
           AND NOT EXISTS (SELECT 1 FROM webhook_rollups r WHERE r.webhook_id = w.id) LIMIT ?2)",
    ];
    for sql in deletes {
        statements.push(statement(db, sql, &[&workspace, &DELETE_CHUNK])?);
    }
    if let FenceBefore::Gone(job) = fence {
        statements.push(statement(
            db,
            "DELETE FROM move_changes WHERE (job, tbl, k1, k2) IN (SELECT job, tbl, k1, k2 FROM move_changes WHERE job = ?1 LIMIT ?2)",
            &[&job, &DELETE_CHUNK],
        )?);
    }
    let results = db.batch(statements).await?;
    Ok(results.iter().skip(1).map(changes).sum())
}

#[derive(Clone, Copy)]
pub enum FenceBefore<'a> {
    Drop,
    Gone(&'a str),
}

/// Fences the workspace in the shard it leaves: from now on the move triggers (created
/// in the same transaction if the shard has none) record every change (`copying`).
pub async fn fence(db: &Db, workspace: &str, job: &str, to: &str) -> Result<()> {
    let mut statements = vec![statement(
        db,
        "INSERT INTO shard_fence (workspace_id, job, to_shard, state) VALUES (?1, ?2, ?3, 'copying') \
         ON CONFLICT (workspace_id) DO UPDATE SET job = excluded.job, to_shard = excluded.to_shard, state = 'copying', \
           gone_at = NULL",
        &[&workspace, &job, &to],
    )?];
    statements.extend(create_trigger_statements(db)?);
    db.batch(statements).await?;
    Ok(())
}

/// The move triggers as migration 0014 first created them on every shard (migration 0017
/// dropped them: the worker creates them with a fence and the cron drops them, see
/// [`settle_triggers`]). Read from the migration itself, so there is one text of them.
const MOVE_TRIGGERS: &str = include_str!("../../migrations/0014_moves.sql");
/// Their names: every one starts so.
const MOVE_TRIGGER_PREFIX: &str = "move_";
/// How long after a shard's last fence went `gone` its triggers stay: a request that
/// read the workspace's placement before the flip (placements are cached 30 s; a queue
/// invocation may run 15 minutes) still finds its writes refused.
pub const TRIGGERS_KEPT_AFTER_GONE_MS: i64 = 3_600_000;

/// Each move trigger's `CREATE TRIGGER IF NOT EXISTS` statement and name: the blocks of
/// [`MOVE_TRIGGERS`] from a `CREATE TRIGGER` line to its `END;` line.
fn move_triggers() -> Vec<(String, &'static str)> {
    let mut triggers = Vec::new();
    let mut lines = MOVE_TRIGGERS.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("CREATE TRIGGER ") else { continue };
        let name = rest.split_whitespace().next().unwrap_or_default();
        let mut sql = format!("CREATE TRIGGER IF NOT EXISTS {rest}");
        for body in lines.by_ref() {
            if body == "END;" {
                break;
            }
            sql.push('\n');
            sql.push_str(body);
        }
        sql.push_str("\nEND");
        triggers.push((sql, name));
    }
    triggers
}

fn create_trigger_statements(db: &Db) -> Result<Vec<worker::D1PreparedStatement>> {
    move_triggers().iter().map(|(sql, _)| statement(db, sql, &[])).collect()
}

/// What the cron does about a shard's move triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerChange {
    Created,
    Dropped,
}

/// Creates the move triggers where a fence needs them and they are missing (a shard
/// migrated to 0017 during a move), drops them where no fence needs them any more; none
/// when nothing is to change. The drop is refused (and the batch rolled back) if a fence
/// appeared meanwhile.
pub async fn settle_triggers(db: &Db, present: u32, needed: bool, now: UnixMillis) -> Result<Option<TriggerChange>> {
    let wanted = create_trigger_statements(db)?;
    if needed && (present as usize) < wanted.len() {
        db.batch(wanted).await?;
        return Ok(Some(TriggerChange::Created));
    }
    if needed || present == 0 {
        return Ok(None);
    }
    // `json('-')` fails: a fence that needs the triggers aborts the drop.
    let mut statements = vec![statement(
        db,
        &format!("SELECT json('-') FROM shard_fence WHERE {}", FENCE_NEEDS_TRIGGERS),
        &[&(now - TRIGGERS_KEPT_AFTER_GONE_MS)],
    )?];
    for (_, name) in move_triggers() {
        statements.push(statement(db, &format!("DROP TRIGGER IF EXISTS {name}"), &[])?);
    }
    db.batch(statements).await?;
    Ok(Some(TriggerChange::Dropped))
}

/// A fence row that needs the move triggers (`?1`: the oldest `gone_at` still kept).
pub const FENCE_NEEDS_TRIGGERS: &str = "state <> 'gone' OR gone_at > ?1";

/// The statement that tells the cron whether a shard's move triggers are as its fences
/// need: `present` (how many exist) and `needed` (0/1). `?1`: as [`FENCE_NEEDS_TRIGGERS`].
pub fn triggers_state_sql() -> String {
    format!(
        "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, {}) = '{MOVE_TRIGGER_PREFIX}') \
           AS present, EXISTS (SELECT 1 FROM shard_fence WHERE {FENCE_NEEDS_TRIGGERS}) AS needed",
        MOVE_TRIGGER_PREFIX.len()
    )
}

/// Freezes the workspace (new inserts and claims refused) unless a recovery holds one of
/// its webhooks; `false` then (try again shortly).
pub async fn freeze(db: &Db, workspace: &str, job: &str, now: UnixMillis) -> Result<bool> {
    let result = db
        .run(statement(
            db,
            "UPDATE shard_fence SET state = 'frozen' WHERE workspace_id = ?1 AND job = ?2 AND state IN ('copying', 'frozen') \
               AND NOT EXISTS (SELECT 1 FROM webhooks WHERE workspace_id = ?1 AND recover_job IS NOT NULL AND recover_until >= ?3)",
            &[&workspace, &job, &now],
        )?)
        .await?;
    Ok(changes(&result) == 1)
}

#[derive(Deserialize)]
struct CountRow {
    n: f64,
}

/// Deliveries of the workspace a consumer is sending right now (a live lease).
pub async fn leases_held(db: &Db, workspace: &str, now: UnixMillis) -> Result<u64> {
    let row: Option<CountRow> = db
        .first(statement(
            db,
            "SELECT COUNT(*) AS n FROM delivery_logs WHERE workspace_id = ?1 AND claim_token IS NOT NULL AND lease_until >= ?2",
            &[&workspace, &now],
        )?)
        .await?;
    Ok(row.map_or(0, |r| r.n.max(0.0) as u64))
}

/// Refuses every write of the workspace in this shard (`moved`).
pub async fn seal(db: &Db, workspace: &str, job: &str) -> Result<()> {
    db.run(statement(db, "UPDATE shard_fence SET state = 'moved' WHERE workspace_id = ?1 AND job = ?2", &[&workspace, &job])?)
        .await?;
    Ok(())
}

/// Lifts the fence of a move that failed: the workspace works where it was.
pub async fn unfence(db: &Db, workspace: &str, job: &str) -> Result<()> {
    db.batch(vec![
        statement(db, "DELETE FROM shard_fence WHERE workspace_id = ?1 AND job = ?2", &[&workspace, &job])?,
        statement(db, "DELETE FROM move_changes WHERE job = ?1", &[&job])?,
    ])
    .await?;
    Ok(())
}

/// The next rows of `table` for the workspace after `after` (the copy's key order).
pub async fn read_chunk(db: &Db, table: Table, workspace: &str, after: Option<&(String, i64)>, limit: u32)
    -> Result<Vec<Map<String, Value>>> {
    let (k1, k2) = after.cloned().unwrap_or_default();
    let sql = match table {
        Table::Webhooks => "SELECT * FROM webhooks WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?4",
        Table::Events => "SELECT * FROM events WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?4",
        // The workspace's log index is ordered by creation time: the key is (time, id).
        Table::DeliveryLogs => "SELECT * FROM delivery_logs WHERE workspace_id = ?1 AND (created_at, id) > (?3, ?2) \
                                ORDER BY created_at, id LIMIT ?4",
        Table::WebhookRollups => "SELECT r.* FROM webhooks w JOIN webhook_rollups r ON r.webhook_id = w.id \
                                  WHERE w.workspace_id = ?1 AND (r.webhook_id, r.hour) > (?2, ?3) \
                                  ORDER BY r.webhook_id, r.hour LIMIT ?4",
    };
    let k2 = if after.is_none() && table == Table::DeliveryLogs { i64::MIN / 2 } else { k2 };
    db.all(statement(db, sql, &[&workspace, &k1, &k2, &limit])?).await?.results::<Map<String, Value>>()
}

/// Writes rows into `db` as they are (insert or replace), in one batch.
pub async fn write_rows(db: &Db, table: Table, rows: Vec<Map<String, Value>>) -> Result<usize> {
    let count = rows.len();
    if count == 0 {
        return Ok(0);
    }
    let statements = rows.into_iter().map(|row| upsert(db, table, prepare_row(table, row))).collect::<Result<Vec<_>>>()?;
    db.batch(statements).await?;
    Ok(count)
}

fn upsert(db: &Db, table: Table, row: Map<String, Value>) -> Result<worker::D1PreparedStatement> {
    let mut columns = Vec::with_capacity(row.len());
    let mut values = Vec::with_capacity(row.len());
    for (column, value) in row {
        // Column names come from D1's own result; anything else is refused, not quoted.
        if column.is_empty() || !column.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::RustError(format!("unexpected column name in {}", table.name())));
        }
        columns.push(column);
        values.push(match value {
            Value::Null => JsValue::NULL,
            Value::Bool(b) => JsValue::from_f64(if b { 1.0 } else { 0.0 }),
            Value::Number(n) => JsValue::from_f64(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => JsValue::from_str(&s),
            other => JsValue::from_str(&other.to_string()),
        });
    }
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let sql = format!("INSERT OR REPLACE INTO {} ({}) VALUES ({})", table.name(), columns.join(", "), placeholders.join(", "));
    db.prepare(&sql).bind(&values)
}

/// A change the old shard's triggers recorded: the table and the row's key.
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    pub tbl: String,
    pub k1: String,
    pub k2: i64,
}

/// The next recorded changes of the job after `after` (their key order).
pub async fn changes_after(db: &Db, job: &str, after: Option<&Change>, limit: u32) -> Result<Vec<Change>> {
    let (tbl, k1, k2) = after.map_or((String::new(), String::new(), i64::MIN / 2), |c| (c.tbl.clone(), c.k1.clone(), c.k2));
    db.all(statement(
        db,
        "SELECT tbl, k1, k2 FROM move_changes WHERE job = ?1 AND (tbl, k1, k2) > (?2, ?3, ?4) ORDER BY tbl, k1, k2 LIMIT ?5",
        &[&job, &tbl, &k1, &k2, &limit],
    )?)
    .await?
    .results::<Change>()
}

/// Copies the changed rows from `from` into `to`: each row as it is now, or its
/// deletion if it is gone. Returns rows written per table.
pub async fn apply_changes(from: &Db, to: &Db, changes: &[Change]) -> Result<Vec<(Table, usize)>> {
    let mut by_table: Vec<(Table, Vec<&Change>)> = Vec::new();
    for c in changes {
        let Some(table) = Table::parse(&c.tbl) else { continue };
        match by_table.iter_mut().find(|(t, _)| *t == table) {
            Some((_, list)) => list.push(c),
            None => by_table.push((table, vec![c])),
        }
    }
    if by_table.is_empty() {
        return Ok(Vec::new());
    }
    let keys = |list: &[&Change], table: Table| -> String {
        let keys: Vec<Value> = list
            .iter()
            .map(|c| if table == Table::WebhookRollups { Value::from(vec![Value::from(c.k1.clone()), Value::from(c.k2)]) } else { Value::from(c.k1.clone()) })
            .collect();
        Value::from(keys).to_string()
    };
    let mut reads = Vec::new();
    for (table, list) in &by_table {
        let sql = match table {
            Table::WebhookRollups => "SELECT * FROM webhook_rollups WHERE (webhook_id, hour) IN \
                (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))"
                .to_string(),
            t => format!("SELECT * FROM {} WHERE id IN (SELECT value FROM json_each(?1))", t.name()),
        };
        reads.push(statement(from, &sql, &[&keys(list, *table)])?);
    }
    let results = from.batch(reads).await?;
    let mut writes = Vec::new();
    let mut written = Vec::new();
    for ((table, list), result) in by_table.iter().zip(results.iter()) {
        let rows = result.results::<Map<String, Value>>()?;
        let present: Vec<(String, i64)> = rows
            .iter()
            .filter_map(|r| match table {
                Table::WebhookRollups => cursor_key(*table, r),
                _ => r.get("id").and_then(Value::as_str).map(|id| (id.to_string(), 0)),
            })
            .collect();
        let gone: Vec<&Change> = list.iter().copied().filter(|c| !present.iter().any(|(k1, k2)| *k1 == c.k1 && (*table != Table::WebhookRollups || *k2 == c.k2))).collect();
        written.push((*table, rows.len()));
        for row in rows {
            writes.push(upsert(to, *table, prepare_row(*table, row))?);
        }
        if !gone.is_empty() {
            let sql = match table {
                Table::WebhookRollups => "DELETE FROM webhook_rollups WHERE (webhook_id, hour) IN \
                    (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))"
                    .to_string(),
                t => format!("DELETE FROM {} WHERE id IN (SELECT value FROM json_each(?1))", t.name()),
            };
            writes.push(statement(to, &sql, &[&keys(&gone, *table)])?);
        }
    }
    if !writes.is_empty() {
        to.batch(writes).await?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twelve_move_triggers_each_one_statement_named_as_the_cron_counts_them() {
        let triggers = move_triggers();
        assert_eq!(triggers.len(), 12);
        for table in ["webhooks", "events", "logs", "rollups"] {
            for op in ["insert", "update", "delete"] {
                let name = format!("move_{table}_{op}");
                let (sql, _) = triggers.iter().find(|(_, n)| *n == name).unwrap_or_else(|| panic!("{name} missing"));
                assert!(sql.starts_with(&format!("CREATE TRIGGER IF NOT EXISTS {name} ")), "{sql}");
                assert!(sql.ends_with("\nEND") && sql.matches("BEGIN").count() == 1, "{sql}");
                assert!(name.starts_with(MOVE_TRIGGER_PREFIX));
            }
        }
    }
}
