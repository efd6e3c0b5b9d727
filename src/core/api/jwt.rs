//! Verification of the platform's HS256 bearer tokens into a [`Principal`].
//!
//! Only HS256 is accepted (no `none`, no algorithm confusion); `exp` and `iat` are
//! required, `iat` not in the future, and `exp − iat` within the deployment's maximum
//! lifetime (a token valid until 2100 is refused however well it is signed); a
//! `crit` header is refused (we implement no extension, RFC 7515 §4.1.11); `iss` and
//! `aud` are checked when the deployment names them. A key under 32 bytes is refused
//! before any token is looked at ([`check_secret`]): HS256 with a short key is guessable.
//! Minting lives in `scripts/token.mjs` and in the tests, not here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::core::api::auth::{Principal, Role};

/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a configured `AUTH_JWT_SECRET` cannot be used (answered 500, never accepted).
pub fn check_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "AUTH_JWT_SECRET is {} bytes; HS256 needs at least {MIN_SECRET_BYTES} (e.g. `openssl rand -base64 48`)",
            secret.len()
        ));
    }
    Ok(())
}

/// Who the tokens must come from and be meant for, when the deployment says so
/// (`AUTH_ISSUER`, `AUTH_AUDIENCE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// `AUTH_MAX_TOKEN_LIFETIME_SECONDS`: the most `exp − iat` may be (`None`: no limit).
    pub max_lifetime_secs: Option<u32>,
}

/// How far in the future `iat` may lie (clock skew between issuer and worker).
const IAT_SKEW_SECS: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    UnsupportedAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    MissingClaim(&'static str),
    UnknownRole,
    CriticalHeader,
    WrongIssuer,
    WrongAudience,
    TooLongLived,
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
            TokenError::CriticalHeader => f.write_str("token has a `crit` header; no extension is supported"),
            TokenError::WrongIssuer => f.write_str("token issuer (`iss`) is not the expected one"),
            TokenError::WrongAudience => f.write_str("token audience (`aud`) does not include this service"),
            TokenError::TooLongLived => f.write_str("token lifetime (`exp` − `iat`) exceeds the maximum this service accepts"),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    /// Any value, even `[]`, is refused: its presence asks for rules we do not apply.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    workspace_id: Option<String>,
    role: Option<String>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    /// Kept as JSON: only read when the deployment expects an issuer / audience, so a
    /// token's unusual `iss` / `aud` never matters elsewhere.
    iss: Option<serde_json::Value>,
    /// A string or an array of strings (RFC 7519 §4.1.3).
    aud: Option<serde_json::Value>,
}

fn audience_contains(aud: &serde_json::Value, expected: &str) -> bool {
    match aud {
        serde_json::Value::String(a) => a == expected,
        serde_json::Value::Array(all) => all.iter().any(|a| a.as_str() == Some(expected)),
        _ => false,
    }
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)
}

/// Checks signature, algorithm, time window and claims; `now_secs` is Unix seconds.
pub fn verify(token: &str, secret: &[u8], now_secs: i64) -> Result<Principal, TokenError> {
    verify_for(token, secret, now_secs, &Expected::default())
}

/// [`verify`], also requiring the `iss` / `aud` the deployment expects.
pub fn verify_for(token: &str, secret: &[u8], now_secs: i64, expected: &Expected<'_>) -> Result<Principal, TokenError> {
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
    if header.crit.is_some() {
        return Err(TokenError::CriticalHeader);
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
    let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
    if !iat.is_finite() || iat > now_secs as f64 + IAT_SKEW_SECS {
        return Err(TokenError::NotYetValid);
    }
    if expected.max_lifetime_secs.is_some_and(|max| exp - iat > f64::from(max)) {
        return Err(TokenError::TooLongLived);
    }
    if let Some(nbf) = claims.nbf {
        if !nbf.is_finite() || (now_secs as f64) < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(issuer) = expected.issuer {
        if claims.iss.as_ref().and_then(serde_json::Value::as_str) != Some(issuer) {
            return Err(TokenError::WrongIssuer);
        }
    }
    if let Some(audience) = expected.audience {
        if !claims.aud.as_ref().is_some_and(|a| audience_contains(a, audience)) {
            return Err(TokenError::WrongAudience);
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
    sign_with_header(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#), claims, secret)
}

/// Builds a token with any header JSON; used by tests on the host.
pub fn sign_with_header(header_json: &str, claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(header_json);
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
        json!({"sub": "usr_1", "workspace_id": "ws_a", "role": "admin", "exp": NOW + 60, "iat": NOW})
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
            json!({"sub": "usr_1", "workspace_id": "ws_b", "role": "admin", "exp": NOW + 60, "iat": NOW}).to_string(),
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
            ("iat", TokenError::MissingClaim("iat")),
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

    #[test]
    fn refuses_short_secrets() {
        assert!(check_secret(&[b'k'; 31]).unwrap_err().contains("31 bytes"));
        assert!(check_secret(b"").is_err());
        assert!(check_secret(&[b'k'; 32]).is_ok());
        assert!(check_secret(SECRET).is_ok(), "the tests' own secret is long enough");
    }

    #[test]
    fn rejects_any_crit_header() {
        for header in [
            r#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":"b64","b64":false}"#,
        ] {
            let t = sign_with_header(header, &claims(), SECRET);
            assert_eq!(verify(&t, SECRET, NOW), Err(TokenError::CriticalHeader), "{header}");
        }
        let t = sign_with_header(r#"{"alg":"HS256","kid":"k1"}"#, &claims(), SECRET);
        assert!(verify(&t, SECRET, NOW).is_ok(), "other header fields are fine");
    }

    #[test]
    fn checks_issuer_only_when_expected() {
        let want = Expected { issuer: Some("https://sessions.planeconnection.test"), audience: None, max_lifetime_secs: None };
        let mut c = claims();
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::WrongIssuer), "missing iss");
        c["iss"] = json!("https://evil.test");
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::WrongIssuer));
        c["iss"] = json!(["https://sessions.planeconnection.test"]);
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::WrongIssuer), "iss is a string");
        c["iss"] = json!("https://sessions.planeconnection.test");
        assert!(verify_for(&token(&c), SECRET, NOW, &want).is_ok());
        c["iss"] = json!("anything");
        assert!(verify(&token(&c), SECRET, NOW).is_ok(), "not configured: not checked");
    }

    #[test]
    fn checks_audience_as_string_or_array() {
        let want = Expected { issuer: None, audience: Some("webhooks"), max_lifetime_secs: None };
        let mut c = claims();
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::WrongAudience), "missing aud");
        for (aud, ok) in [
            (json!("webhooks"), true),
            (json!(["billing", "webhooks"]), true),
            (json!(["webhooks"]), true),
            (json!("Webhooks"), false),
            (json!([]), false),
            (json!(["billing"]), false),
            (json!("webhooks-staging"), false),
        ] {
            c["aud"] = aud.clone();
            assert_eq!(verify_for(&token(&c), SECRET, NOW, &want).is_ok(), ok, "{aud}");
        }
        c["aud"] = json!(42);
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::WrongAudience));
        assert!(verify(&token(&c), SECRET, NOW).is_ok(), "not configured: not checked");
    }

    #[test]
    fn expiry_and_not_before_boundaries() {
        let mut c = claims();
        for (exp, ok) in [(NOW - 3600, false), (NOW - 1, false), (NOW, false), (NOW + 1, true)] {
            c["exp"] = json!(exp);
            assert_eq!(verify(&token(&c), SECRET, NOW).is_ok(), ok, "exp {exp}");
        }
        c["exp"] = json!(NOW - 1);
        assert_eq!(verify(&token(&c), SECRET, NOW), Err(TokenError::Expired));
        c["exp"] = json!(NOW as f64 + 0.5);
        assert!(verify(&token(&c), SECRET, NOW).is_ok(), "fractional seconds are allowed (RFC 7519 NumericDate)");
        let mut c = claims();
        for (nbf, ok) in [(NOW - 3600, true), (NOW, true), (NOW + 1, false), (NOW + 3600, false)] {
            c["nbf"] = json!(nbf);
            assert_eq!(verify(&token(&c), SECRET, NOW).is_ok(), ok, "nbf {nbf}");
        }
    }

    #[test]
    fn workspace_ids_are_1_to_128_characters_without_control_characters() {
        let mut c = claims();
        for (workspace, ok) in [
            ("w".to_string(), true),
            ("w".repeat(128), true),
            ("w".repeat(129), false),
            ("ws\u{0}a".to_string(), false),
            ("ws\na".to_string(), false),
            ("ws\u{7f}".to_string(), false),
        ] {
            c["workspace_id"] = json!(workspace);
            let got = verify(&token(&c), SECRET, NOW);
            if ok {
                assert_eq!(got.map(|p| p.workspace_id), Ok(workspace.clone()));
            } else {
                assert_eq!(got, Err(TokenError::MissingClaim("workspace_id")), "{workspace:?}");
            }
        }
    }

    #[test]
    fn tokens_up_to_8_kib_are_read_longer_ones_refused_unread() {
        // A valid token padded with an extra claim to exactly `len` bytes.
        let padded = |len: usize| {
            let mut n = len * 3 / 4 - 200; // base64 makes 4 bytes of 3: start just below (the lengths assert checks)
            loop {
                let mut c = claims();
                c["pad"] = json!("p".repeat(n));
                let t = token(&c);
                if t.len() >= len {
                    return t;
                }
                n += 1;
            }
        };
        let (ok, too_long) = (padded(8192), padded(8193));
        assert_eq!((ok.len(), too_long.len()), (8192, 8193));
        assert!(verify(&ok, SECRET, NOW).is_ok(), "{} bytes", ok.len());
        assert_eq!(verify(&too_long, SECRET, NOW), Err(TokenError::Malformed), "{} bytes", too_long.len());
    }

    #[test]
    fn errors_explain_themselves() {
        let cases = [
            (TokenError::Malformed, "token is not a well-formed JWT"),
            (TokenError::UnsupportedAlgorithm, "token algorithm must be HS256"),
            (TokenError::BadSignature, "token signature is invalid"),
            (TokenError::Expired, "token has expired"),
            (TokenError::NotYetValid, "token is not valid yet"),
            (TokenError::MissingClaim("exp"), "token lacks the `exp` claim"),
            (TokenError::UnknownRole, "token role is not one of admin, manager, member, service"),
            (TokenError::CriticalHeader, "token has a `crit` header; no extension is supported"),
            (TokenError::WrongIssuer, "token issuer (`iss`) is not the expected one"),
            (TokenError::WrongAudience, "token audience (`aud`) does not include this service"),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn every_role_of_the_spec_is_accepted() {
        for (name, role) in [("admin", Role::Admin), ("manager", Role::Manager), ("member", Role::Member), ("service", Role::Service)] {
            let mut c = claims();
            c["role"] = json!(name);
            assert_eq!(verify(&token(&c), SECRET, NOW).map(|p| p.role), Ok(role));
        }
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(verify(&token(&c), SECRET, NOW).map(|p| p.user_id), Ok(None), "`sub` is optional");
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

    #[test]
    fn lifetime_is_bounded_and_iat_not_in_the_future() {
        let want = Expected { max_lifetime_secs: Some(86_400), ..Expected::default() };
        let mut c = claims();
        c["exp"] = json!(4_102_444_800i64); // 2100
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::TooLongLived));
        assert!(verify(&token(&c), SECRET, NOW).is_ok(), "no limit configured");
        c["exp"] = json!(NOW + 86_400);
        assert!(verify_for(&token(&c), SECRET, NOW, &want).is_ok());
        c["exp"] = json!(NOW + 86_401);
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::TooLongLived));
        // A future `iat` would move the window out of the limit's reach.
        c["iat"] = json!(NOW + 3600);
        c["exp"] = json!(NOW + 7200);
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::NotYetValid));
        c["iat"] = json!(NOW + 30);
        assert!(verify_for(&token(&c), SECRET, NOW, &want).is_ok(), "within the clock skew");
        c["iat"] = json!("now");
        assert_eq!(verify_for(&token(&c), SECRET, NOW, &want), Err(TokenError::Malformed));
    }
}
