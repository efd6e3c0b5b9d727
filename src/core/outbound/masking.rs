//! What a response may show of a header value (SPEC §8.5, §8.3 and §9.4).
//!
//! A value whose header name looks like a credential (`authorization`, `cookie`,
//! `proxy-*`, or a name containing `key`, `token`, `secret`, `password`, `auth`), or that
//! carries a signature, is shown as `"••••"` plus its last 4 characters; other values are
//! shown as they are to admins. Managers see every custom header value masked. A stored
//! response excerpt is masked the same way wherever it contains a custom header's value
//! (a receiver that echoes its request headers).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::core::api::auth::Role;

const MASK: &str = "••••";

/// Who reads: what they may see of custom header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Sees values, except credential-like ones.
    Admin,
    /// Sees no custom header value.
    Manager,
}

impl Viewer {
    pub fn of(role: Role) -> Viewer {
        if role == Role::Admin { Viewer::Admin } else { Viewer::Manager }
    }
}

/// Whether `viewer` sees the value of the custom header `name` masked.
pub fn hides_custom(viewer: Viewer, name: &str) -> bool {
    viewer == Viewer::Manager || is_sensitive_header(name)
}

/// A custom header's value as `viewer` may see it.
pub fn shown_custom(viewer: Viewer, name: &str, value: &str) -> String {
    if hides_custom(viewer, name) { mask(value) } else { value.to_string() }
}

/// `excerpt` with every occurrence of a custom header value hidden from `viewer` replaced
/// by its mask. Longest values first, so a value inside another is not half-replaced.
pub fn mask_excerpt<'a>(excerpt: &'a str, custom: &BTreeMap<String, String>, viewer: Viewer) -> Cow<'a, str> {
    let mut hidden: Vec<&str> = custom
        .iter()
        .filter(|(name, value)| !value.is_empty() && hides_custom(viewer, name))
        .map(|(_, value)| value.as_str())
        .collect();
    if !hidden.iter().any(|v| excerpt.contains(v)) {
        return Cow::Borrowed(excerpt);
    }
    hidden.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = excerpt.to_string();
    for value in hidden {
        if out.contains(value) {
            out = out.replace(value, &mask(value));
        }
    }
    Cow::Owned(out)
}

/// Whether a header's value must be masked in responses.
pub fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization"
        || name == "cookie"
        || name.starts_with("proxy-")
        || ["key", "token", "secret", "password", "auth", "signature"].iter().any(|w| name.contains(w))
}

/// `"••••"` + the last 4 characters (all of it hidden when it has 8 or fewer).
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 8 {
        return MASK.to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{MASK}{tail}")
}

/// The value as a response may show it.
pub fn shown_value(name: &str, value: &str) -> String {
    if is_sensitive_header(name) {
        mask(value)
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_are_sensitive_in_any_case() {
        for name in [
            "Authorization", "authorization", "Cookie", "Proxy-Authorization", "proxy-anything", "X-Api-Key",
            "x-auth-user", "X-Access-Token", "Client-Secret", "X-Password", "X-Webhook-Signature", "webhook-signature",
        ] {
            assert!(is_sensitive_header(name), "{name}");
        }
        for name in ["X-Tenant", "Accept", "X-Request-Source", "Content-Type", "X-Webhook-Event"] {
            assert!(!is_sensitive_header(name), "{name}");
        }
    }

    #[test]
    fn masks_keep_only_the_last_four_characters() {
        assert_eq!(mask("Bearer abcdefghij1234"), "••••1234");
        assert_eq!(mask("12345678"), "••••");
        assert_eq!(mask(""), "••••");
        assert_eq!(mask("ééééééééé€€€€"), "••••€€€€");
        assert_eq!(shown_value("Authorization", "Bearer sk_live_abcdefgh9876"), "••••9876");
        assert_eq!(shown_value("X-Tenant", "fbo-42"), "fbo-42");
    }

    #[test]
    fn managers_see_no_custom_value_admins_see_all_but_credentials() {
        assert_eq!(shown_custom(Viewer::Admin, "X-Tenant", "fbo-42"), "fbo-42");
        assert_eq!(shown_custom(Viewer::Manager, "X-Tenant", "fbo-42"), "••••");
        assert_eq!(shown_custom(Viewer::Manager, "X-Credential", "very-secret-9876"), "••••9876");
        assert_eq!(shown_custom(Viewer::Admin, "Authorization", "Bearer live-abcdef1234"), "••••1234");
        assert_eq!(Viewer::of(Role::Admin), Viewer::Admin);
        assert_eq!(Viewer::of(Role::Manager), Viewer::Manager);
    }

    #[test]
    fn excerpts_hide_the_values_the_viewer_may_not_see() {
        let custom = BTreeMap::from([
            ("Authorization".to_string(), "Bearer live-abcdef1234".to_string()),
            ("X-Tenant".to_string(), "fbo-42".to_string()),
            ("X-Empty".to_string(), String::new()),
        ]);
        let echo = r#"{"authorization":"Bearer live-abcdef1234","x-tenant":"fbo-42"}"#;
        assert_eq!(mask_excerpt(echo, &custom, Viewer::Admin), r#"{"authorization":"••••1234","x-tenant":"fbo-42"}"#);
        assert_eq!(mask_excerpt(echo, &custom, Viewer::Manager), r#"{"authorization":"••••1234","x-tenant":"••••"}"#);
        assert!(matches!(mask_excerpt("ok", &custom, Viewer::Manager), Cow::Borrowed("ok")));
        // A value inside a longer one: the longer is masked whole.
        let nested = BTreeMap::from([("X-A".to_string(), "abcdefghij".to_string()), ("X-B".to_string(), "cdef".to_string())]);
        assert_eq!(mask_excerpt("abcdefghij", &nested, Viewer::Manager), "••••ghij");
    }
}
