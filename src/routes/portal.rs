//! `GET /portal`: the web console of SPEC §8.7. The page is built from `portal/` by
//! `portal/build.mjs` (one HTML file with its script and style inlined) and served from
//! the static assets (`scripts/build.sh` copies it there as `/portal.html`); it talks to
//! the worker only through the public API. No bearer: the page holds no data, and the
//! token stays in the URL fragment, which browsers never send.

use serde_json::json;
use worker::{Env, Headers};

use crate::core::api::error::ApiError;
use crate::core::api::portal::{content_security_policy, frame_ancestors, DEFAULT_FRAME_ANCESTORS};
use crate::delivery::log_event;
use crate::http::ApiResult;

#[cfg(test)]
pub const PORTAL_HTML: &str = include_str!("../../portal/dist/index.html");
/// The `script-src` and `style-src` hashes of the inlined code.
const PORTAL_HASHES: &str = include_str!("../../portal/dist/csp.txt");
/// Var: who may frame the page (CSP `frame-ancestors` sources), default `'self'`.
pub const FRAME_ANCESTORS_VAR: &str = "PORTAL_FRAME_ANCESTORS";

pub async fn page(env: &Env) -> ApiResult {
    let configured = env.var(FRAME_ANCESTORS_VAR).ok().map(|v| v.to_string());
    let ancestors = frame_ancestors(configured.as_deref()).unwrap_or_else(|reason| {
        log_event(json!({"level": "warn", "msg": "PORTAL_FRAME_ANCESTORS ignored", "reason": reason}));
        DEFAULT_FRAME_ANCESTORS.to_string()
    });
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).map_err(|_| ApiError::internal());
    set("Content-Type", "text/html; charset=utf-8")?;
    set("Content-Security-Policy", &content_security_policy(PORTAL_HASHES, &ancestors))?;
    set("X-Content-Type-Options", "nosniff")?;
    set("Referrer-Policy", "no-referrer")?;
    // A deploy changes the page (and its hashes): always revalidate.
    set("Cache-Control", "no-cache")?;
    super::static_asset(env, "/portal.html", headers).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    /// The hashes in csp.txt are those of the code inlined in the page (both written by
    /// portal/build.mjs): a hand edit of one without the other would blank the page.
    #[test]
    fn hashes_match_the_inlined_code() {
        for (tag, directive) in [("script", "script-src"), ("style", "style-src")] {
            let open = format!("<{tag}>");
            let start = PORTAL_HTML.find(&open).expect("inlined tag") + open.len();
            let end = start + PORTAL_HTML[start..].find(&format!("</{tag}>")).expect("closing tag");
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&PORTAL_HTML.as_bytes()[start..end]));
            assert!(PORTAL_HASHES.contains(&format!("{directive} 'sha256-{digest}'")), "{directive} hash");
        }
        assert_eq!(PORTAL_HTML.matches("<script").count(), 1, "one script, inlined");
        assert!(!PORTAL_HTML.contains(" style=\""), "no inline style attributes");
    }
}
