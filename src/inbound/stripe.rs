//! Not built yet (see the inbound issue): answers 404 until then.

use worker::Request;

use crate::core::error::ApiError;
use crate::routes::http::ApiResult;
use crate::routes::Ctx;

pub async fn handle(_ctx: &Ctx<'_>, _req: &mut Request) -> ApiResult {
    Err(ApiError::not_found("route"))
}
