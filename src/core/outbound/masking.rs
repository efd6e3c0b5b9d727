//! What a response may show of a header value (SPEC §8.5 and §8.3).
//!
//! A value whose header name looks like a credential (`authorization`, `cookie`,
//! `proxy-*`, or a name containing `key`, `token`, `secret`, `password`, `auth`), or that
//! carries a signature, is shown as `"••••"` plus its last 4 characters; other values are
//! shown as they are.

const MASK: &str = "••••";

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
}
