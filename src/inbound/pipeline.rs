//! The steps every inbound endpoint shares: a configured secret, a verified signature,
//! one D1 batch that records the event (the dedupe check) and applies it, and the answer.

use std::cell::{Cell, RefCell};

use serde_json::json;
use worker::{D1PreparedStatement, D1Result, Request};

use crate::core::api::error::ApiError;
use crate::core::inbound::signatures::SignatureError;
use crate::core::api::json_body::MAX_INBOUND_BODY;
use crate::core::inbound::stripe_events::{parse_envelope, StripeEnvelope};
use crate::delivery::log_event;
use crate::http::{header, json_response, read_body, ApiResult, OrInternal};
use crate::http::Ctx;
use crate::store::inbound_events::{self, Decision, InboundRecord, InboundSource, Outcome, WorkspaceOf};

/// The endpoint's signing secret; without one nothing is accepted (500, logged).
pub fn require_secret<'a>(secret: Option<&'a str>, binding: &str) -> Result<&'a str, ApiError> {
    secret.ok_or_else(|| {
        log_event(json!({"level": "error", "msg": "inbound webhook secret is not configured", "binding": binding}));
        ApiError::internal()
    })
}

/// A rejected signature is the sender's problem (400) unless the secret itself is unusable.
pub fn signature_error(source: InboundSource, e: SignatureError) -> ApiError {
    if e == SignatureError::InvalidSecret {
        log_event(json!({"level": "error", "msg": "inbound webhook secret is invalid", "source": source.as_str()}));
        return ApiError::internal();
    }
    log_event(json!({"level": "warn", "msg": "inbound signature rejected", "source": source.as_str(), "reason": e.to_string()}));
    ApiError::invalid_signature(e.to_string())
}

/// How an accepted event was handled (the `status` of the 200 answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Applied,
    Ignored,
    Duplicate,
}

/// One verified provider event on its way through.
pub struct Incoming<'a> {
    pub source: InboundSource,
    pub id: &'a str,
    pub event_type: &'a str,
    /// D1 round trips this event made (logged; tests count them from outside too).
    trips: Cell<u32>,
    /// Set by [`Incoming::defer_log`]: the log line waits for [`Incoming::log_deferred`].
    deferred: Cell<bool>,
    held_line: RefCell<Option<LogLine>>,
}

/// What the one log line of an event says besides its ids.
struct LogLine {
    workspace: Option<String>,
    outcome: String,
    detail: Option<String>,
}

/// An event's one batch, done: how it was handled, and the results of the statements
/// after the record (index 0 is the first statement the handler passed).
pub struct Committed {
    pub handled: Handled,
    pub results: Vec<D1Result>,
}

impl<'a> Incoming<'a> {
    pub fn new(source: InboundSource, id: &'a str, event_type: &'a str) -> Self {
        Self { source, id, event_type, trips: Cell::new(0), deferred: Cell::new(false), held_line: RefCell::new(None) }
    }

    /// The whole event in one D1 round trip: its dedupe record first, then `statements`,
    /// all or nothing. A duplicate fails at the record, so nothing is applied twice.
    pub async fn commit(
        &self,
        ctx: &Ctx<'_>,
        decision: Decision,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Committed, ApiError> {
        let record = InboundRecord { source: self.source, event_id: self.id, event_type: self.event_type, now: ctx.now };
        let known = decision.known_outcome();
        let mut batch = vec![inbound_events::record(&ctx.db, &record, decision).or_internal("prepare inbound record")?];
        batch.extend(statements);
        self.trips.set(self.trips.get() + 1);
        let mut results = match ctx.db.batch(batch).await {
            Err(e) if inbound_events::is_duplicate(&e) => {
                self.log(None, "duplicate", None);
                return Ok(Committed { handled: Handled::Duplicate, results: Vec::new() });
            }
            other => other.or_internal("apply inbound event")?,
        };
        let recorded = match known {
            Some(r) => r,
            None => inbound_events::recorded(results.first()).or_internal("read inbound record")?,
        };
        let handled = if recorded.outcome == "applied" { Handled::Applied } else { Handled::Ignored };
        self.log(recorded.workspace_id.as_deref(), &recorded.outcome, recorded.detail.as_deref());
        results.remove(0);
        Ok(Committed { handled, results })
    }

    /// Applies `statements` and records the event as applied.
    pub async fn apply(
        &self,
        ctx: &Ctx<'_>,
        workspace: Option<&str>,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Handled, ApiError> {
        Ok(self.commit(ctx, Decision::known(&Outcome::Applied, workspace), statements).await?.handled)
    }

    /// Applies `statements` (which write only where `workspace` resolves) and records the
    /// event as applied there, or as ignored with `reason` when no workspace is found.
    pub async fn apply_in(
        &self,
        ctx: &Ctx<'_>,
        workspace: &WorkspaceOf<'_>,
        reason: &str,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Handled, ApiError> {
        Ok(self.commit(ctx, Decision::in_workspace(workspace, reason), statements).await?.handled)
    }

    /// Acknowledges without a state change, recording why.
    pub async fn ignore(&self, ctx: &Ctx<'_>, workspace: Option<&str>, reason: impl Into<String>) -> Result<Handled, ApiError> {
        let outcome = Outcome::Ignored(reason.into());
        Ok(self.commit(ctx, Decision::known(&outcome, workspace), Vec::new()).await?.handled)
    }

    /// Holds the log line of the next commit until [`Incoming::log_deferred`]: work after
    /// the commit (the invoice.paid relay) adds its round trips to the same line.
    pub fn defer_log(&self) {
        self.deferred.set(true);
    }

    /// Writes the held log line with `more_trips` D1 round trips added.
    pub fn log_deferred(&self, more_trips: u32) {
        self.trips.set(self.trips.get() + more_trips);
        self.deferred.set(false);
        if let Some(line) = self.held_line.borrow_mut().take() {
            self.log(line.workspace.as_deref(), &line.outcome, line.detail.as_deref());
        }
    }

    /// One log line per accepted event (ids, outcome and D1 round trips; never the payload).
    fn log(&self, workspace: Option<&str>, outcome: &str, detail: Option<&str>) {
        if self.deferred.get() {
            let line = LogLine { workspace: workspace.map(str::to_string), outcome: outcome.to_string(), detail: detail.map(str::to_string) };
            *self.held_line.borrow_mut() = Some(line);
            return;
        }
        log_event(json!({"msg": "inbound event", "source": self.source.as_str(), "event_id": self.id,
                         "type": self.event_type, "workspace": workspace, "outcome": outcome, "detail": detail,
                         "d1_round_trips": self.trips.get()}));
    }
}

/// `200 {"received": true, "status": "applied" | "ignored" | "duplicate"}`.
pub fn acknowledge(handled: Handled) -> ApiResult {
    let status = match handled {
        Handled::Applied => "applied",
        Handled::Ignored => "ignored",
        Handled::Duplicate => "duplicate",
    };
    json_response(200, &json!({"received": true, "status": status}))
}

/// Verifies a `Stripe-Signature` header (both Stripe endpoints) with the 300 s tolerance.
fn verify_stripe(
    ctx: &Ctx<'_>,
    source: InboundSource,
    secret: &str,
    header: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    crate::core::inbound::signatures::verify_stripe(
        secret,
        header,
        body,
        ctx.now.div_euclid(1000),
        crate::core::inbound::signatures::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| signature_error(source, e))
}

/// The shared front of both Stripe endpoints: the secret must be configured, the raw body
/// is read once (1 MiB), the signature is checked before anything is parsed.
pub async fn receive_stripe(
    ctx: &Ctx<'_>,
    req: &mut Request,
    source: InboundSource,
    secret: Option<&str>,
    binding: &str,
) -> Result<StripeEnvelope, ApiError> {
    let secret = require_secret(secret, binding)?;
    let body = read_body(req, MAX_INBOUND_BODY).await?;
    let signature = header(req, "Stripe-Signature");
    verify_stripe(ctx, source, secret, signature.as_deref(), &body)?;
    parse_envelope(&body)
}
