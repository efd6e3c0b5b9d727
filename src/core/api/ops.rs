//! The operator API's door (SPEC §9.2): one bearer key, `OPS_API_KEY`, never a workspace
//! token. Unset or too short, the operator routes do not exist (404), so a deployment
//! that never configured them shows nothing; a missing or wrong key is a 401.

use subtle::ConstantTimeEq;

/// The shortest key accepted: shorter ones leave the operator API closed (404).
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, PartialEq, Eq)]
pub enum OpsAccess {
    /// No usable `OPS_API_KEY`: answer as if the route did not exist.
    Closed,
    /// No `Authorization: Bearer …`, or not the key.
    Refused,
    Granted,
}

/// Decides an operator request from the configured key and the `Authorization` header.
/// The key is compared in constant time (over equal lengths; the length is not secret).
pub fn check(configured: Option<&str>, authorization: Option<&str>) -> OpsAccess {
    let Some(key) = configured.filter(|k| k.len() >= MIN_KEY_BYTES) else {
        return OpsAccess::Closed;
    };
    let presented = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match presented {
        Some(p) if p.len() == key.len() && bool::from(p.as_bytes().ct_eq(key.as_bytes())) => OpsAccess::Granted,
        _ => OpsAccess::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ops-key-0123456789abcdef-0123456789";

    #[test]
    fn unset_or_short_key_closes_the_api() {
        assert_eq!(check(None, Some(&format!("Bearer {KEY}"))), OpsAccess::Closed);
        let short = &KEY[..31];
        assert_eq!(check(Some(short), Some(&format!("Bearer {short}"))), OpsAccess::Closed);
        assert_eq!(check(Some(&KEY[..32]), Some(&format!("Bearer {}", &KEY[..32]))), OpsAccess::Granted);
    }

    #[test]
    fn only_the_exact_key_as_bearer_is_granted() {
        assert_eq!(check(Some(KEY), Some(&format!("Bearer {KEY}"))), OpsAccess::Granted);
        assert_eq!(check(Some(KEY), Some(&format!("Bearer {KEY} "))), OpsAccess::Granted);
        assert_eq!(check(Some(KEY), None), OpsAccess::Refused);
        assert_eq!(check(Some(KEY), Some(KEY)), OpsAccess::Refused);
        assert_eq!(check(Some(KEY), Some(&format!("Basic {KEY}"))), OpsAccess::Refused);
        assert_eq!(check(Some(KEY), Some(&format!("Bearer {KEY}x"))), OpsAccess::Refused);
        assert_eq!(check(Some(KEY), Some(&format!("Bearer {}", &KEY[1..]))), OpsAccess::Refused);
        let mut wrong = KEY.to_string().into_bytes();
        wrong[10] ^= 1;
        assert_eq!(check(Some(KEY), Some(&format!("Bearer {}", String::from_utf8(wrong).unwrap()))), OpsAccess::Refused);
        assert_eq!(check(Some(KEY), Some("Bearer ")), OpsAccess::Refused);
    }
}
