//! Moving a workspace between shards (SPEC §9.2): the pure rules.
//!
//! A move is a job (`mv_…`) that a queue message runs step by step: clear the target of
//! any leftovers, copy the workspace table by table in chunks while it keeps working
//! (the source's triggers record what changes meanwhile), freeze it (new inserts and new
//! claims refused), wait for the sends under way, refuse every write, copy what changed,
//! flip the directory, and later clean the source. This module holds the steps, the
//! tables and their copy order, the request body, and the budget of one invocation;
//! `store::moves` runs the SQL and `delivery::moves` the job.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::api::json_body::reject_unknown_fields;
use crate::core::shards::ShardList;

/// Rows one copy chunk reads and writes (one D1 read and one batch of upserts).
pub const CHUNK_ROWS: u32 = 200;
/// A job that failed this many times in a row before the flip ends `failed` (the
/// workspace stays where it was); after the flip it only retries.
pub const MAX_FAILURES: u32 = 3;
/// How long an isolate trusts its cached placement of a workspace; the old shard is
/// cleaned only after [`min_cleanup_delay_secs`], so no isolate reads it by then.
pub const PLACEMENT_CACHE_TTL_MS: i64 = 30_000;
/// The cut-over's wait for sends under way, polled at this interval.
pub const DRAIN_POLL_MS: u64 = 100;

/// The state the operator API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveState {
    Copying,
    Cutover,
    Done,
    Failed,
}

impl MoveState {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveState::Copying => "copying",
            MoveState::Cutover => "cutover",
            MoveState::Done => "done",
            MoveState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<MoveState> {
        [MoveState::Copying, MoveState::Cutover, MoveState::Done, MoveState::Failed].into_iter().find(|m| m.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, MoveState::Done | MoveState::Failed)
    }
}

/// Where the runner is (stored with the job; resumes there after any crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Remove what an earlier, failed move left in the target.
    Clear,
    /// Copy every table while the workspace keeps working.
    Copy,
    /// Refuse new inserts and claims (once no recovery holds a webhook).
    Freeze,
    /// Wait for sends under way to record their outcome.
    Drain,
    /// Refuse every write, copy what changed, flip the directory.
    Final,
    /// Delete the workspace from the old shard (after the cache delay).
    Cleanup,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Clear => "clear",
            Step::Copy => "copy",
            Step::Freeze => "freeze",
            Step::Drain => "drain",
            Step::Final => "final",
            Step::Cleanup => "cleanup",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        [Step::Clear, Step::Copy, Step::Freeze, Step::Drain, Step::Final, Step::Cleanup].into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the directory already names the new shard (the move can no longer fail).
    pub fn is_after_flip(self) -> bool {
        self == Step::Cleanup
    }
}

/// The tables that hold a workspace in its shard, in copy order (a log's webhook and
/// event are there before it). `webhook_rollups` has no workspace column: its rows are
/// found through the workspace's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Webhooks,
    Events,
    DeliveryLogs,
    WebhookRollups,
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Webhooks, Table::Events, Table::DeliveryLogs, Table::WebhookRollups];

    pub fn name(self) -> &'static str {
        match self {
            Table::Webhooks => "webhooks",
            Table::Events => "events",
            Table::DeliveryLogs => "delivery_logs",
            Table::WebhookRollups => "webhook_rollups",
        }
    }

    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Deletion order: nothing points at a row deleted before what points at it.
    pub fn cleanup_order() -> [Table; 4] {
        [Table::WebhookRollups, Table::DeliveryLogs, Table::Events, Table::Webhooks]
    }
}

/// The copy's position: the table (index into [`Table::ALL`]) and the key of the last
/// row copied (`k1` text, `k2` the rollup hour); `None` before the table's first row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyCursor {
    pub table: usize,
    #[serde(default)]
    pub after: Option<(String, i64)>,
}

impl CopyCursor {
    pub fn table(&self) -> Option<Table> {
        Table::ALL.get(self.table).copied()
    }

    /// The next table, from its first row.
    pub fn next_table(&self) -> CopyCursor {
        CopyCursor { table: self.table + 1, after: None }
    }
}

/// Copy chunks one invocation runs: two subrequests each (read, write), leaving ten for
/// the job's own reads, writes and its next message (Free plan: 50 subrequests), and at
/// most 20 (Paid) so that one invocation's memory and CPU stay small.
pub fn chunks_per_invocation(subrequest_limit: usize) -> usize {
    (subrequest_limit.saturating_sub(10) / 2).clamp(1, 20)
}

/// The delay before the old shard is cleaned: at least twice the placement cache's life.
pub fn min_cleanup_delay_secs() -> u32 {
    (2 * PLACEMENT_CACHE_TTL_MS / 1000) as u32
}

/// A queue this far behind still delivers the job's next message.
pub const QUEUE_LAG_MARGIN_MS: i64 = 60_000;

/// A move not saved for this long has lost its next message (a failed queue send, a
/// message dead-lettered): the longest wait it schedules itself (the cleanup delay) plus
/// [`QUEUE_LAG_MARGIN_MS`]. The cron queues it again.
pub fn stalled_after_ms(cleanup_delay_secs: u32) -> i64 {
    i64::from(cleanup_delay_secs) * 1000 + QUEUE_LAG_MARGIN_MS
}

/// `POST /api/v1/ops/workspaces/:id/move`'s body: `{"to": "<binding>"}`, a listed shard
/// other than the workspace's own.
pub fn parse_move_request(body: &Map<String, Value>, shards: &ShardList, current: &str) -> Result<String, ApiError> {
    let mut errors = FieldErrors::new();
    reject_unknown_fields(body, &["to"], &mut errors);
    let to = match body.get("to") {
        Some(Value::String(s)) if !shards.contains(s) => {
            errors.insert("to".into(), format!("{s:?} is not a shard of SHARDS ({})", shards.names().join(", ")));
            None
        }
        Some(Value::String(s)) if s == current => {
            errors.insert("to".into(), format!("the workspace already lives in {s}"));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.insert("to".into(), "must be a string (a binding name of SHARDS)".into());
            None
        }
        None => {
            errors.insert("to".into(), "is required".into());
            None
        }
    };
    match to {
        Some(to) if errors.is_empty() => Ok(to),
        _ => Err(ApiError::validation(errors)),
    }
}

/// A row as D1 returned it, made ready for the target: a delivery that is pending
/// without a due time gets one (its creation), so that the target's sweep finds it if
/// the message that names it was meant for the old shard.
pub fn prepare_row(table: Table, mut row: Map<String, Value>) -> Map<String, Value> {
    if table == Table::DeliveryLogs
        && row.get("status").and_then(Value::as_str) == Some("pending")
        && row.get("next_attempt_at").is_none_or(Value::is_null)
    {
        let created = row.get("created_at").cloned().unwrap_or(Value::Null);
        row.insert("next_attempt_at".into(), created);
    }
    row
}

/// Where a row stands in the order the copy reads `table`: (id, creation time) for logs
/// (their workspace index is in time order), (webhook, hour) for rollups, (id, 0) else.
pub fn cursor_key(table: Table, row: &Map<String, Value>) -> Option<(String, i64)> {
    let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_string);
    let number = |k: &str| row.get(k).and_then(Value::as_f64).map(|n| n as i64);
    match table {
        Table::DeliveryLogs => Some((text("id")?, number("created_at")?)),
        Table::WebhookRollups => Some((text("webhook_id")?, number("hour")?)),
        Table::Webhooks | Table::Events => Some((text("id")?, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_move_is_stalled_only_past_its_own_longest_wait() {
        assert_eq!(stalled_after_ms(60), 120_000);
        assert!(stalled_after_ms(min_cleanup_delay_secs()) > 2 * PLACEMENT_CACHE_TTL_MS);
    }

    #[test]
    fn the_request_names_another_listed_shard() {
        let shards = ShardList::parse(Some("DB,DB_2,DB_3")).unwrap();
        assert_eq!(parse_move_request(&obj(json!({"to": "DB_2"})), &shards, "DB").unwrap(), "DB_2");
        for (body, field) in [
            (json!({}), "to"),
            (json!({"to": "DB"}), "to"),
            (json!({"to": "DB_9"}), "to"),
            (json!({"to": 2}), "to"),
            (json!({"to": "DB_2", "force": true}), "force"),
        ] {
            let e = parse_move_request(&obj(body.clone()), &shards, "DB").unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert!(e.fields.as_ref().unwrap().contains_key(field), "{body}: {e:?}");
        }
    }

    #[test]
    fn states_and_steps_round_trip() {
        for s in ["copying", "cutover", "done", "failed"] {
            assert_eq!(MoveState::parse(s).unwrap().as_str(), s);
        }
        for s in ["clear", "copy", "freeze", "drain", "final", "cleanup"] {
            assert_eq!(Step::parse(s).unwrap().as_str(), s);
        }
        assert!(MoveState::parse("moving").is_none() && Step::parse("").is_none());
        assert!(Step::Cleanup.is_after_flip() && !Step::Final.is_after_flip());
    }

    #[test]
    fn the_budget_fits_the_subrequest_limit() {
        assert_eq!(chunks_per_invocation(50), 20);
        assert_eq!(chunks_per_invocation(30), 10);
        assert_eq!(chunks_per_invocation(10_000), 20);
        assert_eq!(chunks_per_invocation(5), 1);
        assert!(min_cleanup_delay_secs() as i64 * 1000 >= 2 * PLACEMENT_CACHE_TTL_MS);
    }

    #[test]
    fn a_pending_delivery_gets_a_due_time_in_the_target() {
        let row = prepare_row(Table::DeliveryLogs, obj(json!({"id": "dlv_1", "status": "pending", "created_at": 5, "next_attempt_at": null})));
        assert_eq!(row["next_attempt_at"], 5);
        let row = prepare_row(Table::DeliveryLogs, obj(json!({"id": "dlv_1", "status": "pending", "created_at": 5, "next_attempt_at": 9})));
        assert_eq!(row["next_attempt_at"], 9);
        let row = prepare_row(Table::DeliveryLogs, obj(json!({"id": "dlv_1", "status": "success", "created_at": 5, "next_attempt_at": null})));
        assert!(row["next_attempt_at"].is_null());
        let row = prepare_row(Table::Events, obj(json!({"id": "evt_1", "status": "pending"})));
        assert!(row.get("next_attempt_at").is_none());
    }

    #[test]
    fn keys_and_cursor() {
        assert_eq!(cursor_key(Table::WebhookRollups, &obj(json!({"webhook_id": "wh_1", "hour": 3600000}))), Some(("wh_1".into(), 3_600_000)));
        assert_eq!(cursor_key(Table::DeliveryLogs, &obj(json!({"id": "dlv_1", "created_at": 7.0}))), Some(("dlv_1".into(), 7)));
        assert_eq!(cursor_key(Table::Events, &obj(json!({"id": "evt_1"}))), Some(("evt_1".into(), 0)));
        assert_eq!(cursor_key(Table::Events, &obj(json!({"nope": 1}))), None);
        let c = CopyCursor::default();
        assert_eq!(c.table(), Some(Table::Webhooks));
        assert_eq!(c.next_table().next_table().next_table().next_table().table(), None);
        assert_eq!(Table::parse("delivery_logs"), Some(Table::DeliveryLogs));
    }
}
