//! The dedupe record of inbound provider events: one row per (source, event id).
//!
//! An event costs one D1 round trip: its record is the first statement of the batch that
//! also applies it, so a recorded event is always fully applied, and a duplicate fails
//! the batch at its first statement (primary key), which rolls everything back and is
//! answered `duplicate`. Look-ups an event needs (its workspace, its invoice) are
//! subqueries of the statements that use them, never separate reads.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1PreparedStatement, D1Result, Result};

use super::{statement_with, SqlArg, Db};
use crate::core::time::UnixMillis;

/// Which endpoint an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundSource {
    Stripe,
    StripeConnect,
    Resend,
}

impl InboundSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::StripeConnect => "stripe_connect",
            Self::Resend => "resend",
        }
    }
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Acknowledged without a state change, with the reason.
    Ignored(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Ignored(_) => "ignored",
        }
    }
}

/// Where an event's workspace comes from, resolved inside the statements that need it.
#[derive(Debug, Clone, Copy)]
pub enum WorkspaceOf<'a> {
    /// Named by the event (or by nothing).
    Given(Option<&'a str>),
    /// `metadata.workspace_id`, else the Stripe customer's known workspace, else the
    /// subscription's.
    Stripe { explicit: Option<&'a str>, customer: Option<&'a str>, subscription: Option<&'a str> },
    /// `metadata.workspace_id`, else the connected account's known workspace.
    Connect { explicit: Option<&'a str>, account: Option<&'a str> },
}

impl WorkspaceOf<'_> {
    /// An SQL expression for the workspace (NULL when none is found), its arguments
    /// numbered from `?first`.
    pub fn sql(&self, first: usize) -> (String, Vec<JsValue>) {
        let (a, b) = (first, first + 1);
        match *self {
            Self::Given(w) | Self::Stripe { explicit: w @ Some(_), .. } | Self::Connect { explicit: w @ Some(_), .. } => {
                (format!("?{a}"), vec![w.to_js()])
            }
            Self::Stripe { explicit: None, customer, subscription } => (
                format!(
                    "COALESCE((SELECT workspace_id FROM stripe_customers WHERE customer_id = ?{a}), \
                     (SELECT workspace_id FROM subscriptions WHERE id = ?{b}))"
                ),
                vec![customer.to_js(), subscription.to_js()],
            ),
            Self::Connect { explicit: None, account } => (
                format!("(SELECT workspace_id FROM connected_accounts WHERE id = ?{a})"),
                vec![account.to_js()],
            ),
        }
    }

    /// The workspace when it needs no look-up (`Some(None)`: known to be none).
    pub fn known(&self) -> Option<Option<&str>> {
        match *self {
            Self::Given(w) => Some(w),
            Self::Stripe { explicit: Some(w), .. } | Self::Connect { explicit: Some(w), .. } => Some(Some(w)),
            Self::Stripe { customer: None, subscription: None, .. } | Self::Connect { account: None, .. } => Some(None),
            _ => None,
        }
    }

    /// `FROM`-clause source of one row with column `ws`, for `INSERT … SELECT … FROM
    /// {source} WHERE r.ws IS NOT NULL`: writes that only happen in a found workspace.
    pub fn row(&self, first: usize) -> (String, Vec<JsValue>) {
        let (expr, args) = self.sql(first);
        (format!("(SELECT {expr} AS ws) r"), args)
    }
}

/// How an event's record gets its outcome: known before the batch, or decided inside it
/// from the rows looked up there (its workspace, its invoice): SQL expressions over the
/// row source `from`, with arguments numbered from [`Decision::FIRST_ARG`].
pub enum Decision {
    Known(Recorded),
    Sql { from: String, outcome: String, detail: String, workspace: String, args: Vec<JsValue> },
}

impl Decision {
    /// The first argument number a decision's SQL may use (the record's own come before).
    pub const FIRST_ARG: usize = 5;

    /// Decided in Rust.
    pub fn known(outcome: &Outcome, workspace: Option<&str>) -> Self {
        let detail = match outcome {
            Outcome::Applied => None,
            Outcome::Ignored(reason) => Some(reason.clone()),
        };
        Self::Known(Recorded { outcome: outcome.as_str().into(), detail, workspace_id: workspace.map(str::to_string) })
    }

    /// Applied in the workspace `ws` resolves to; ignored with `reason` when it finds none.
    pub fn in_workspace(ws: &WorkspaceOf<'_>, reason: &str) -> Self {
        match ws.known() {
            Some(Some(w)) => return Self::known(&Outcome::Applied, Some(w)),
            Some(None) => return Self::known(&Outcome::Ignored(reason.into()), None),
            None => {}
        }
        let (row, mut args) = ws.row(Self::FIRST_ARG + 1);
        args.insert(0, reason.to_js());
        Self::Sql {
            from: row,
            outcome: "CASE WHEN r.ws IS NULL THEN 'ignored' ELSE 'applied' END".into(),
            detail: "CASE WHEN r.ws IS NULL THEN ?5 END".into(),
            workspace: "r.ws".into(),
            args,
        }
    }

    /// What the record will say, when that is known before the batch.
    pub fn known_outcome(&self) -> Option<Recorded> {
        match self {
            Self::Known(r) => Some(r.clone()),
            Self::Sql { .. } => None,
        }
    }
}

pub struct InboundRecord<'a> {
    pub source: InboundSource,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub now: UnixMillis,
}

/// The record, as the first statement of the event's batch. No `ON CONFLICT`: a
/// duplicate fails the whole batch (see [`is_duplicate`]). A decision made in SQL
/// returns the record row (see [`recorded`]).
pub fn record(db: &Db, r: &InboundRecord<'_>, d: Decision) -> Result<D1PreparedStatement> {
    let own: [&dyn SqlArg; 4] = [&r.source.as_str(), &r.event_id, &r.event_type, &r.now];
    match d {
        Decision::Known(k) => statement_with(
            db,
            "INSERT INTO inbound_events (source, event_id, event_type, outcome, detail, workspace_id, received_at) \
             VALUES (?1, ?2, ?3, ?5, ?6, ?7, ?4)",
            &own,
            vec![k.outcome.to_js(), k.detail.to_js(), k.workspace_id.to_js()],
        ),
        Decision::Sql { from, outcome, detail, workspace, args } => statement_with(
            db,
            &format!(
                "INSERT INTO inbound_events (source, event_id, event_type, outcome, detail, workspace_id, received_at) \
                 SELECT ?1, ?2, ?3, {outcome}, {detail}, {workspace}, ?4 FROM {from} \
                 RETURNING outcome, detail, workspace_id"
            ),
            &own,
            args,
        ),
    }
}

/// What the record statement decided.
#[derive(Debug, Clone, Deserialize)]
pub struct Recorded {
    pub outcome: String,
    pub detail: Option<String>,
    pub workspace_id: Option<String>,
}

/// The record row returned by the batch's first statement.
pub fn recorded(result: Option<&D1Result>) -> Result<Recorded> {
    result
        .map(|r| r.results::<Recorded>())
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .ok_or_else(|| worker::Error::RustError("inbound record returned no row".into()))
}

/// Whether a failed batch failed because the event was already recorded (its first
/// statement hit the primary key), rather than because storage failed.
pub fn is_duplicate(error: &worker::Error) -> bool {
    let text = error.to_string();
    text.contains("UNIQUE constraint failed: inbound_events.") || text.contains("PRIMARY KEY constraint failed: inbound_events")
}
