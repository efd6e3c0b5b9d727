//! The portal page's security headers: a Content-Security-Policy that allows only the
//! page's own (hashed) script and style and calls to this origin, and the
//! `frame-ancestors` an operator sets in `PORTAL_FRAME_ANCESTORS` so the platform can
//! embed the page. Serving the page is `routes/portal.rs`; the page is `portal/`.

/// Where the page may be framed when nothing (or something unusable) is configured: only
/// by pages of this origin. Embedding in the platform's pages needs its origin set.
pub const DEFAULT_FRAME_ANCESTORS: &str = "'self'";

/// `script-src …; style-src …` with the hashes of the inlined code, written by
/// `portal/build.mjs` beside the page.
pub fn content_security_policy(hashed_sources: &str, frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; {}; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors {frame_ancestors}",
        hashed_sources.trim()
    )
}

/// The configured `frame-ancestors` source list if it is one: space-separated `'self'`,
/// `*`, or scheme/host sources (`https://app.example.com`, `https://*.example.com:8443`),
/// or `'none'` alone. Anything else (a `;` that would start a new directive, quotes,
/// commas, control characters) is refused, so the variable can never widen the policy.
pub fn frame_ancestors(configured: Option<&str>) -> Result<String, &'static str> {
    let Some(value) = configured.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_FRAME_ANCESTORS.to_string());
    };
    let sources: Vec<&str> = value.split_ascii_whitespace().collect();
    if sources.contains(&"'none'") {
        return if sources.len() == 1 { Ok("'none'".into()) } else { Err("'none' must stand alone") };
    }
    for source in &sources {
        let host_source = source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '/' | '*' | '_' | '[' | ']'));
        if !(*source == "'self'" || host_source) {
            return Err("each source must be 'self', 'none', * or a scheme/host source");
        }
    }
    Ok(sources.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_same_origin_only() {
        assert_eq!(frame_ancestors(None).unwrap(), "'self'");
        assert_eq!(frame_ancestors(Some("  ")).unwrap(), "'self'");
    }

    #[test]
    fn accepts_source_lists() {
        assert_eq!(frame_ancestors(Some("*")).unwrap(), "*");
        assert_eq!(frame_ancestors(Some("'none'")).unwrap(), "'none'");
        assert_eq!(
            frame_ancestors(Some(" 'self'   https://app.planeconnection.com https://*.example.com:8443 ")).unwrap(),
            "'self' https://app.planeconnection.com https://*.example.com:8443"
        );
        // Line breaks are whitespace between sources, never a line of the header.
        assert_eq!(frame_ancestors(Some("'self'\r\nhttps://a.com")).unwrap(), "'self' https://a.com");
    }

    #[test]
    fn refuses_what_could_change_the_policy() {
        for bad in ["'self'; script-src *", "https://a.com,https://b.com", "'unsafe-inline'", "'none' 'self'", "\"x\"", "https://a.com\u{0}"] {
            assert!(frame_ancestors(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_allows_nothing_inline_beyond_the_hashes() {
        let csp = content_security_policy("script-src 'sha256-A'; style-src 'sha256-B'\n", "'self'");
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-A'; style-src 'sha256-B'; connect-src 'self';"));
        assert!(csp.ends_with("frame-ancestors 'self'"));
        assert!(!csp.contains("unsafe"));
    }
}
