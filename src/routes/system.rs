//! `GET /api/v1/health` and `GET /api/v1/openapi.json`.

use serde_json::json;
use worker::{Env, Headers};

use crate::http::{json_response, ApiResult};
use crate::http::Ctx;
use crate::core::api::error::ApiError;
use crate::store;

/// The OpenAPI 3.1 description of every route (kept beside the code it describes). The
/// worker serves it from the static assets (`scripts/build.sh` copies it there).
#[cfg(test)]
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub async fn health(ctx: &Ctx<'_>) -> ApiResult {
    let d1_ok = store::ping(&ctx.db).await.is_ok();
    let body = json!({
        "status": if d1_ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "d1": if d1_ok { "ok" } else { "unreachable" },
    });
    json_response(if d1_ok { 200 } else { 503 }, &body)
}

pub async fn openapi(env: &Env) -> ApiResult {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8").map_err(|_| ApiError::internal())?;
    super::static_asset(env, "/openapi.json", headers).await
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;
    use crate::core::api::routes::ALL;

    #[test]
    fn openapi_describes_every_served_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        for (method, path, route) in ALL {
            let operation = &doc["paths"][*path][method.to_lowercase()];
            assert!(operation.is_object(), "{method} {path} ({route:?}) is not in openapi.json");
            assert!(operation["responses"].is_object(), "{method} {path} has no responses");
        }
        let described: usize = doc["paths"].as_object().unwrap().values()
            .map(|p| p.as_object().unwrap().keys().filter(|k| *k != "parameters").count())
            .sum();
        assert_eq!(described, ALL.len(), "openapi.json describes routes that do not exist");
    }
}
