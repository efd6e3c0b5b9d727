//! Verification of the platform's HS256 bearer tokens into a [`Principal`].
//!
//! Only HS256 is accepted (no `none`, no algorithm confusion); `exp` is required.
//! Minting lives in `scripts/token.mjs` and in the tests, not here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::core::api::auth::{Principal, Role};

/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    UnsupportedAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    MissingClaim(&'static str),
    UnknownRole,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Malformed => f.write_str("token is not a well-formed JWT"),
            TokenError::UnsupportedAlgorithm => f.write_str("token algorithm must be HS256"),
            TokenError::BadSignature => f.write_str("token signature is invalid"),
            TokenError::Expired => f.write_str("token has expired"),
            TokenError::NotYetValid => f.write_str("token is not valid yet"),
            TokenError::MissingClaim(c) => write!(f, "token lacks the `{c}` claim"),
            TokenError::UnknownRole => f.write_str("token role is not one of admin, manager, member, service"),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    workspace_id: Option<String>,
    role: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)
}

/// Checks signature, algorithm, time window and claims; `now_secs` is Unix seconds.
pub fn verify(token: &str, secret: &[u8], now_secs: i64) -> Result<Principal, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&decode_part(header_b64)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    let signature = decode_part(signature_b64)?;
    let signed_len = header_b64.len() + 1 + claims_b64.len();
    let signed = token.get(..signed_len).ok_or(TokenError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| TokenError::BadSignature)?;
    mac.update(signed.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;

    let claims: Claims =
        serde_json::from_slice(&decode_part(claims_b64)?).map_err(|_| TokenError::Malformed)?;
    let exp = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
    if !exp.is_finite() || (now_secs as f64) >= exp {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.nbf {
        if !nbf.is_finite() || (now_secs as f64) < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    let workspace_id = claims
        .workspace_id
        .filter(|w| !w.is_empty() && w.len() <= 128 && !w.chars().any(char::is_control))
        .ok_or(TokenError::MissingClaim("workspace_id"))?;
    let role = claims.role.ok_or(TokenError::MissingClaim("role"))?;
    let role = Role::parse(&role).ok_or(TokenError::UnknownRole)?;
    Ok(Principal { user_id: claims.sub, workspace_id, role })
}

/// Builds an HS256 token; used by tests and benches on the host.
pub fn sign_for_tests(claims: &serde_json::Value, secret: &[u8], alg: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return signed, // HMAC accepts keys of any length
    };
    mac.update(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-for-jwt-verification";
    const NOW: i64 = 1_800_000_000;

    fn claims() -> serde_json::Value {
        json!({"sub": "usr_1", "workspace_id": "ws_a", "role": "admin", "exp": NOW + 60})
    }

    fn token(c: &serde_json::Value) -> String {
        sign_for_tests(c, SECRET, "HS256")
    }

    #[test]
    fn accepts_a_good_token() {
        let p = verify(&token(&claims()), SECRET, NOW).unwrap();
        assert_eq!(p.workspace_id, "ws_a");
        assert_eq!(p.role, Role::Admin);
        assert_eq!(p.user_id.as_deref(), Some("usr_1"));
    }

    #[test]
    fn rejects_alg_none() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims().to_string());
        assert_eq!(verify(&format!("{header}.{body}."), SECRET, NOW), Err(TokenError::UnsupportedAlgorithm));
        assert_eq!(verify(&format!("{header}.{body}"), SECRET, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn rejects_hs512_header_even_if_signed_with_the_key() {
        let t = sign_for_tests(&claims(), SECRET, "HS512");
        assert_eq!(verify(&t, SECRET, NOW), Err(TokenError::UnsupportedAlgorithm));
    }

    #[test]
    fn rejects_wrong_key() {
        let t = sign_for_tests(&claims(), b"another-secret", "HS256");
        assert_eq!(verify(&t, SECRET, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn rejects_tampered_payload() {
        let t = token(&claims());
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            json!({"sub": "usr_1", "workspace_id": "ws_b", "role": "admin", "exp": NOW + 60}).to_string(),
        );
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), SECRET, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn rejects_expired_and_not_yet_valid() {
        let mut c = claims();
        c["exp"] = json!(NOW);
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::Expired));
        let mut c = claims();
        c["nbf"] = json!(NOW + 10);
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::NotYetValid));
        c["nbf"] = json!(NOW);
        assert!(verify(&token(&c), SECRET, NOW).is_ok());
    }

    #[test]
    fn rejects_missing_claims() {
        for (claim, expected) in [
            ("workspace_id", TokenError::MissingClaim("workspace_id")),
            ("role", TokenError::MissingClaim("role")),
            ("exp", TokenError::MissingClaim("exp")),
        ] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(claim);
            assert_eq!(verify(&token(&c), SECRET, NOW), Err(expected), "{claim}");
        }
        let mut c = claims();
        c["workspace_id"] = json!("");
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::MissingClaim("workspace_id")));
    }

    #[test]
    fn rejects_unknown_role_and_wrong_types() {
        let mut c = claims();
        c["role"] = json!("owner");
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::UnknownRole));
        c["role"] = json!(["admin"]);
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::Malformed));
        let mut c = claims();
        c["exp"] = json!("tomorrow");
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn rejects_garbage_and_empty_strings() {
        for garbage in [
            "", ".", "..", "...", "a.b.c", "a.b", "Bearer x", "é.é.é", "eyJ.eyJ.eyJ",
            "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
        ] {
            assert!(verify(garbage, SECRET, NOW).is_err(), "{garbage:?}");
        }
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(verify(&huge, SECRET, NOW), Err(TokenError::Malformed));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in ".{0,300}") {
            let _ = verify(&s, SECRET, NOW);
        }

        #[test]
        fn never_accepts_a_mutated_token(pos in 0usize..200, byte in 0u8..128) {
            let t = token(&claims());
            let mut bytes = t.clone().into_bytes();
            let i = pos % bytes.len();
            proptest::prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(mutated) = String::from_utf8(bytes) {
                // Base64 padding bits may decode to the same bytes: only accept if identical claims.
                if let Ok(p) = verify(&mutated, SECRET, NOW) {
                    proptest::prop_assert_eq!(p.workspace_id, "ws_a");
                }
            }
        }
    }
}
