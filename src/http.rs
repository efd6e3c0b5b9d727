//! HTTP plumbing shared by both HTTP sides (the API routes and the inbound receivers):
//! the handler context, bodies, bearer auth, JSON responses, and the one place where an
//! `ApiError` becomes a response.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use worker::{Context, Env, Headers, Request, ResponseBuilder};

use crate::config::Config;
use crate::core::api::auth::Principal;
use crate::core::api::error::ApiError;
use crate::core::api::json_body::check_declared_length;
use crate::core::api::jwt;
use crate::delivery::log_event;
use crate::store::shards::Shards;
use crate::store::Db;

/// What every handler gets.
pub struct Ctx<'a> {
    pub env: &'a Env,
    /// The request's execution context: work it hands to `waitUntil` (direct sends).
    pub wait: &'a Context,
    /// The database of this request's data: the caller's shard for the outbound routes,
    /// `DB` (inbound provider state, the directory) for the others (`Route::data_home`);
    /// it meters the rows the request reads and writes.
    pub db: &'a Db,
    /// The binding name of `db`: what queue messages for its deliveries carry.
    pub shard: String,
    pub config: std::rc::Rc<Config>,
    pub now: i64,
}

impl Ctx<'_> {
    /// The deployment's shards, their handles metered with this request's.
    pub fn shards(&self) -> Result<Shards<'_>, ApiError> {
        shards_of(self.env, &self.config, self.db)
    }
}

/// The shards of `SHARDS` with handles that add their rows to `meter`'s; an unusable
/// `SHARDS` answers 500 and is logged.
pub fn shards_of<'a>(env: &'a Env, config: &'a Config, meter: &'a Db) -> Result<Shards<'a>, ApiError> {
    match &config.shards {
        Ok(list) => Ok(Shards::metered(env, list, meter)),
        Err(reason) => {
            log_event(json!({"level": "error", "msg": "SHARDS is unusable", "reason": reason}));
            Err(ApiError::internal())
        }
    }
}

pub type ApiResult = Result<worker::Response, ApiError>;

/// Logs a storage or runtime failure (without request data) and answers 500.
pub trait OrInternal<T> {
    fn or_internal(self, during: &str) -> Result<T, ApiError>;
}

impl<T> OrInternal<T> for worker::Result<T> {
    fn or_internal(self, during: &str) -> Result<T, ApiError> {
        self.map_err(|e| internal_error(during, &e))
    }
}

/// The error path of [`OrInternal`], once for every `T` (not inlined into each caller).
#[inline(never)]
#[cold]
fn internal_error(during: &str, e: &worker::Error) -> ApiError {
    if crate::store::shards::is_moved_error(e) {
        log_event(json!({"level": "warn", "msg": "write refused: the workspace is moving", "during": during}));
        return ApiError::moving();
    }
    log_event(json!({"level": "error", "msg": "internal error", "during": during, "error": e.to_string()}));
    ApiError::internal()
}

pub fn json_response<T: Serialize>(status: u16, body: &T) -> ApiResult {
    json_text_response(status, serde_json::to_string(body).map_err(|_| ApiError::internal())?)
}

/// The non-generic part of [`json_response`]: once in the wasm, not once per body type.
#[inline(never)]
fn json_text_response(status: u16, text: String) -> ApiResult {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8").map_err(|_| ApiError::internal())?;
    Ok(ResponseBuilder::new().with_status(status).with_headers(headers).fixed(text.into_bytes()))
}

pub fn no_content() -> ApiResult {
    Ok(ResponseBuilder::new().with_status(204).empty())
}

/// The JSON error shape of SPEC §3, with `WWW-Authenticate` on 401 and `Allow` on 405.
pub fn error_response(e: &ApiError) -> worker::Response {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    if e.status == 401 {
        let _ = headers.set("WWW-Authenticate", r#"Bearer realm="planeconnection", error="invalid_token""#);
    }
    if let Some(allow) = &e.allow {
        let _ = headers.set("Allow", allow);
    }
    if let Some(secs) = e.retry_after {
        let _ = headers.set("Retry-After", &secs.to_string());
    }
    let text = serde_json::to_string(&e.body())
        .unwrap_or_else(|_| r#"{"error":{"code":"internal_error","message":"internal error"}}"#.into());
    ResponseBuilder::new().with_status(e.status).with_headers(headers).fixed(text.into_bytes())
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Reads the raw body, refusing it before reading when the declared length is too big;
/// a body of declared length within the limit is read in one call, and a chunked body
/// without `Content-Length` from the stream, stopping at `limit + 1` bytes (never read
/// further than that, whatever it weighs).
pub async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = header(req, "Content-Length");
    check_declared_length(declared.as_deref(), limit)?;
    let unreadable = || ApiError::invalid_json("request body could not be read");
    // A declared length within the limit is what the runtime delivers (it frames the body
    // by it): one read, without the per-chunk reader calls the stream costs (measured in
    // workerd: the reader's read/releaseLock were among the handler's top costs).
    if declared.as_deref().is_some_and(|v| v.trim().parse::<u64>().is_ok()) {
        let bytes = req.bytes().await.map_err(|_| unreadable())?;
        if bytes.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        return Ok(bytes);
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all (e.g. a POST without one) reads as empty.
        Err(worker::Error::RustError(_)) => return Ok(Vec::new()),
        Err(_) => return Err(unreadable()),
    };
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if bytes.len() + chunk.len() > limit {
            // Dropping the stream cancels it: the rest is never read.
            return Err(ApiError::payload_too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `Authorization: Bearer <jwt>` → the caller, or 401. A missing or too short
/// `AUTH_JWT_SECRET` answers 500 (the reason logged once per isolate), never accepts.
pub fn authenticate(req: &Request, config: &Config, now_ms: i64) -> Result<Principal, ApiError> {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    let unusable = |reason: String| {
        if !LOGGED.swap(true, Ordering::Relaxed) {
            log_event(json!({"level": "error", "msg": "authenticated routes are refused", "reason": reason}));
        }
        ApiError::internal()
    };
    let secret = config.jwt_secret.as_deref().ok_or_else(|| unusable("AUTH_JWT_SECRET is not configured".into()))?;
    jwt::check_secret(secret.as_bytes()).map_err(unusable)?;
    let value = header(req, "Authorization").ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
    let expected = jwt::Expected {
        issuer: config.auth_issuer.as_deref(),
        audience: config.auth_audience.as_deref(),
        max_lifetime_secs: Some(config.auth_max_token_lifetime_secs),
    };
    jwt::verify_for(token, secret.as_bytes(), now_ms.div_euclid(1000), &expected)
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}

/// Decoded query pairs of the request URL.
pub fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.url().map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()).unwrap_or_default()
}
