//! The read routes of SPEC §5.4: what the inbound webhooks changed, for the caller's
//! workspace only (another workspace's invoice is a 404).

use worker::Request;

use crate::core::api::auth::Principal;
use crate::core::inbound::email_analytics::{analytics, parse_range};
use crate::core::api::error::ApiError;
use crate::core::inbound::views::{parse_trip_query, SuppressionList, MAX_SUPPRESSIONS_LISTED};
use crate::core::inbound::payload::clean_id;
use crate::http::{json_response, query_pairs, ApiResult, OrInternal};
use crate::http::Ctx;
use crate::store::{billing as billing_store, connect, email};

fn pairs(req: &Request) -> Vec<(String, String)> {
    query_pairs(req)
}

/// `GET /api/v1/invoices/:id`.
pub async fn invoice(ctx: &Ctx<'_>, p: &Principal, id: &str) -> ApiResult {
    let Some(id) = clean_id(id) else {
        return Err(ApiError::not_found("invoice"));
    };
    let view = billing_store::get_invoice(&ctx.db, &p.workspace_id, &id)
        .await
        .or_internal("read invoice")?
        .ok_or_else(|| ApiError::not_found("invoice"))?;
    json_response(200, &view)
}

/// `GET /api/v1/billing`.
pub async fn billing(ctx: &Ctx<'_>, p: &Principal) -> ApiResult {
    let view = billing_store::billing(&ctx.db, &p.workspace_id).await.or_internal("read billing")?;
    json_response(200, &view)
}

/// `GET /api/v1/connect/account`: 404 until a Connect event named this workspace.
pub async fn connect_account(ctx: &Ctx<'_>, p: &Principal) -> ApiResult {
    let view = connect::account(&ctx.db, &p.workspace_id)
        .await
        .or_internal("read connected account")?
        .ok_or_else(|| ApiError::not_found("connected account"))?;
    json_response(200, &view)
}

/// `GET /api/v1/connect/splits?trip_id=`.
pub async fn connect_splits(ctx: &Ctx<'_>, req: &Request, p: &Principal) -> ApiResult {
    let pairs = pairs(req);
    let trip_id = parse_trip_query(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let view = connect::splits(&ctx.db, &p.workspace_id, &trip_id).await.or_internal("read splits")?;
    json_response(200, &view)
}

/// `GET /api/v1/email/analytics?date_from=&date_to=`.
pub async fn email_analytics(ctx: &Ctx<'_>, req: &Request, p: &Principal) -> ApiResult {
    let pairs = pairs(req);
    let range = parse_range(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let counts = email::counts(&ctx.db, &p.workspace_id, range).await.or_internal("count email events")?;
    json_response(200, &analytics(range, &counts))
}

/// `GET /api/v1/email/suppressions`: newest first.
pub async fn email_suppressions(ctx: &Ctx<'_>, p: &Principal) -> ApiResult {
    let (data, total) = email::suppressions(&ctx.db, &p.workspace_id, MAX_SUPPRESSIONS_LISTED)
        .await
        .or_internal("read suppressions")?;
    json_response(200, &SuppressionList { data, total })
}
