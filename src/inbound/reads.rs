//! Not built yet (see the inbound issue): answers 404 until then.

use worker::Request;

use crate::core::auth::Principal;
use crate::core::error::ApiError;
use crate::routes::http::ApiResult;
use crate::routes::Ctx;

pub async fn invoice(_ctx: &Ctx<'_>, _p: &Principal, _id: &str) -> ApiResult { Err(ApiError::not_found("route")) }
pub async fn billing(_ctx: &Ctx<'_>, _p: &Principal) -> ApiResult { Err(ApiError::not_found("route")) }
pub async fn connect_account(_ctx: &Ctx<'_>, _p: &Principal) -> ApiResult { Err(ApiError::not_found("route")) }
pub async fn connect_splits(_ctx: &Ctx<'_>, _req: &Request, _p: &Principal) -> ApiResult { Err(ApiError::not_found("route")) }
pub async fn email_analytics(_ctx: &Ctx<'_>, _req: &Request, _p: &Principal) -> ApiResult { Err(ApiError::not_found("route")) }
pub async fn email_suppressions(_ctx: &Ctx<'_>, _p: &Principal) -> ApiResult { Err(ApiError::not_found("route")) }
