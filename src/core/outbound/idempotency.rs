//! Publish idempotency (SPEC §4.4, §8.5): where a caller's key is kept, and what makes
//! a reuse of it the same request.
//!
//! Keys from `POST /api/v1/events` are stored under `api:`; the service's own keys
//! (`stripe:invoice.paid:<invoice>`, …) never start with it, so the two never meet.
//! A key reused with another `type` or `data` is a conflict, told by a fingerprint:
//! SHA-256 of the type and of the data in canonical form (object keys sorted, no
//! insignificant whitespace), so a re-sent body with its keys reordered still matches.

use sha2::{Digest, Sha256};

const API_NAMESPACE: &str = "api:";

/// The stored form of a key given to the public API.
pub fn api_key(key: &str) -> String {
    format!("{API_NAMESPACE}{key}")
}

/// Whether a key (as stored) belongs to the public API's namespace.
pub fn is_api_key(stored: &str) -> bool {
    stored.starts_with(API_NAMESPACE)
}

/// Hex SHA-256 of `type` and the canonical `data`; `data_json` that does not parse (it
/// always does: it was validated) is hashed as it is.
pub fn fingerprint(event_type: &str, data_json: &str) -> String {
    // serde_json's map is ordered by key (no `preserve_order`), so this is canonical.
    let canonical = serde_json::from_str::<serde_json::Value>(data_json)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| data_json.to_string());
    let mut hash = Sha256::new();
    hash.update(event_type.as_bytes());
    hash.update([0u8]);
    hash.update(canonical.as_bytes());
    hex::encode(hash.finalize())
}

/// Whether a stored fingerprint allows a replay: rows from before fingerprints match.
pub fn same_request(stored: Option<&str>, ours: Option<&str>) -> bool {
    match (stored, ours) {
        (Some(stored), Some(ours)) => stored == ours,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_their_own_namespace() {
        assert_eq!(api_key("stripe:invoice.paid:inv_777"), "api:stripe:invoice.paid:inv_777");
        assert!(is_api_key(&api_key("k")));
        assert!(!is_api_key("stripe:invoice.paid:inv_777"), "internal keys stay outside");
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let a = fingerprint("flight.departed", r#"{"tail":"N512PC","gallons":310}"#);
        assert_eq!(a, fingerprint("flight.departed", r#"{ "gallons": 310, "tail": "N512PC" }"#));
        assert_ne!(a, fingerprint("flight.arrived", r#"{"tail":"N512PC","gallons":310}"#));
        assert_ne!(a, fingerprint("flight.departed", r#"{"tail":"N512PC","gallons":311}"#));
        assert_ne!(a, fingerprint("flight.departed", r#"{"tail":"N512PC","gallons":310,"x":null}"#));
        assert_eq!(a.len(), 64);
        // The separator keeps type and data apart.
        assert_ne!(fingerprint("a", r#"{"b":1}"#), fingerprint("a{", r#""b":1}"#));
    }

    #[test]
    fn legacy_rows_without_fingerprint_match() {
        assert!(same_request(None, Some("f")));
        assert!(same_request(Some("f"), Some("f")));
        assert!(!same_request(Some("f"), Some("g")));
    }
}
