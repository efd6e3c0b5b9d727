//! `POST /api/webhooks/resend` (SPEC §5.3): email events through Svix.
//!
//! Every `email.*` event of SPEC §5.3 is stored (keyed by its `svix-id`) in the workspace
//! named by the email's `workspace_id` tag; a hard bounce, a complaint or a suppression
//! also puts each recipient on that workspace's suppression list. Other types, and
//! emails without a `workspace_id` tag, are acknowledged and recorded as ignored.

use worker::Request;

use super::pipeline::{acknowledge, require_secret, signature_error, Incoming};
use crate::core::inbound::signatures::{verify_svix, SvixHeaders, DEFAULT_TOLERANCE_SECS};
use crate::core::api::json_body::MAX_INBOUND_BODY;
use crate::core::inbound::resend_events::parse;
use crate::http::{header, read_body, ApiResult, OrInternal};
use crate::http::Ctx;
use crate::store::email;
use crate::store::inbound_events::InboundSource;

pub async fn handle(ctx: &Ctx<'_>, req: &mut Request) -> ApiResult {
    let source = InboundSource::Resend;
    let secret = require_secret(ctx.config.resend_secret.as_deref(), "RESEND_WEBHOOK_SECRET")?;
    let body = read_body(req, MAX_INBOUND_BODY).await?;
    let (id, timestamp, signature) = (header(req, "svix-id"), header(req, "svix-timestamp"), header(req, "svix-signature"));
    let headers = SvixHeaders { id: id.as_deref(), timestamp: timestamp.as_deref(), signature: signature.as_deref() };
    verify_svix(secret, &headers, &body, ctx.now.div_euclid(1000), DEFAULT_TOLERANCE_SECS)
        .map_err(|e| signature_error(source, e))?;
    // Verification succeeded, so the id header is present and not blank.
    let svix_id = id.as_deref().unwrap_or_default().trim();
    let envelope = parse(&body, ctx.now)?;
    let incoming = Incoming::new(source, svix_id, &envelope.event_type);
    let handled = match envelope.event {
        Err(reason) => incoming.ignore(ctx, None, reason).await?,
        Ok(None) => incoming.ignore(ctx, None, "event type not handled").await?,
        Ok(Some(event)) => match event.workspace_id.as_deref() {
            None => incoming.ignore(ctx, None, "the email has no workspace_id tag").await?,
            Some(workspace) => {
                let mut statements =
                    vec![email::insert_event(&ctx.db, svix_id, workspace, &event, ctx.now).or_internal("prepare email event")?];
                if let Some(reason) = event.suppression() {
                    let detail = event.suppression_detail();
                    for address in &event.to {
                        statements.push(
                            email::suppress(&ctx.db, workspace, address, reason, detail.as_deref(),
                                            event.email_id.as_deref(), event.occurred_at)
                                .or_internal("prepare suppression")?,
                        );
                    }
                }
                incoming.apply(ctx, Some(workspace), statements).await?
            }
        },
    };
    acknowledge(handled)
}
