//! The steps every inbound endpoint shares: a configured secret, a verified signature,
//! the dedupe check, recording the outcome with the state change, and the answer.

use serde_json::json;
use worker::{D1PreparedStatement, D1Result, Request};

use crate::core::api::error::ApiError;
use crate::core::inbound::signatures::SignatureError;
use crate::core::api::json_body::MAX_INBOUND_BODY;
use crate::core::inbound::stripe_events::{parse_envelope, StripeEnvelope};
use crate::delivery::log_event;
use crate::http::{header, json_response, read_body, ApiResult, OrInternal};
use crate::http::Ctx;
use crate::store::inbound_events::{self, InboundRecord, InboundSource, Outcome};

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
}

impl Incoming<'_> {
    pub async fn seen(&self, ctx: &Ctx<'_>) -> Result<bool, ApiError> {
        inbound_events::seen(&ctx.db, self.source, self.id).await.or_internal("inbound dedupe check")
    }

    /// The dedupe record, to be written with (or after) the state change.
    pub fn record(&self, ctx: &Ctx<'_>, workspace: Option<&str>, outcome: &Outcome) -> Result<D1PreparedStatement, ApiError> {
        inbound_events::record(
            &ctx.db,
            &InboundRecord {
                source: self.source,
                event_id: self.id,
                event_type: self.event_type,
                workspace,
                outcome,
                now: ctx.now,
            },
        )
        .or_internal("prepare inbound record")
    }

    /// Runs `statements` and the dedupe record in one batch (atomic in D1).
    pub async fn commit(
        &self,
        ctx: &Ctx<'_>,
        workspace: Option<&str>,
        mut statements: Vec<D1PreparedStatement>,
        outcome: Outcome,
    ) -> Result<(Handled, Vec<D1Result>), ApiError> {
        statements.push(self.record(ctx, workspace, &outcome)?);
        let results = ctx.db.batch(statements).await.or_internal("apply inbound event")?;
        Ok((self.logged(workspace, &outcome), results))
    }

    /// Applies `statements` and records the event as applied.
    pub async fn apply(
        &self,
        ctx: &Ctx<'_>,
        workspace: Option<&str>,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<Handled, ApiError> {
        Ok(self.commit(ctx, workspace, statements, Outcome::Applied).await?.0)
    }

    /// Acknowledges without a state change, recording why.
    pub async fn ignore(&self, ctx: &Ctx<'_>, workspace: Option<&str>, reason: impl Into<String>) -> Result<Handled, ApiError> {
        Ok(self.commit(ctx, workspace, Vec::new(), Outcome::Ignored(reason.into())).await?.0)
    }

    /// One log line per accepted event (ids and outcome only, never the payload).
    pub fn logged(&self, workspace: Option<&str>, outcome: &Outcome) -> Handled {
        let detail = match outcome {
            Outcome::Applied => None,
            Outcome::Ignored(reason) => Some(reason.as_str()),
        };
        log_event(json!({"msg": "inbound event", "source": self.source.as_str(), "event_id": self.id,
                         "type": self.event_type, "workspace": workspace, "outcome": outcome.as_str(), "detail": detail}));
        match outcome {
            Outcome::Applied => Handled::Applied,
            Outcome::Ignored(_) => Handled::Ignored,
        }
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
