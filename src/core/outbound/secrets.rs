//! A webhook's signing secrets (SPEC §8.1, §8.2): the generated form, rotation with a
//! grace period, and the keys and signatures each scheme derives from them.
//!
//! A `SecretSet` is the current secret plus at most five previous ones, each with its own
//! expiry; expired ones never sign and are pruned whenever the set is written. Storage
//! (sealed with `core::crypto`) and the HTTP headers (`delivery::request_headers`) are
//! elsewhere.

use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::core::api::error::FieldErrors;
use crate::core::api::json_body::{reject_unknown_fields, type_name};
use crate::core::ids::fill_random;
use crate::core::outbound::asymmetric::{Signing, NO_SECRET_FOR_ED25519};
use crate::core::outbound::webhook::{parse_secret_value, WebhookSecret};
use crate::core::time::UnixMillis;

pub const GENERATED_PREFIX: &str = "whsec_";
pub const GENERATED_BYTES: usize = 32;
/// Previous secrets kept at most; rotating beyond drops the oldest.
pub const MAX_PREVIOUS: usize = 5;
pub const DEFAULT_GRACE_SECONDS: u32 = 86_400;
pub const MAX_GRACE_SECONDS: u32 = 604_800;
/// A `whsec_` secret is used base64-decoded when it decodes to this many bytes.
const DECODED_KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Padding optional, as Svix and Standard Webhooks libraries read secrets.
const BASE64_SECRET: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `whsec_` + base64 of 32 random bytes (the Standard Webhooks form).
pub fn generate() -> WebhookSecret {
    let mut bytes = [0u8; GENERATED_BYTES];
    fill_random(&mut bytes);
    from_bytes(&bytes)
}

fn from_bytes(bytes: &[u8; GENERATED_BYTES]) -> WebhookSecret {
    WebhookSecret::from_stored(format!("{GENERATED_PREFIX}{}", STANDARD.encode(bytes)))
}

/// The HMAC key of the Standard Webhooks signature: the decoded part after `whsec_` when
/// it is base64 of 24–64 bytes, otherwise the secret's UTF-8 bytes.
pub fn standard_key(secret: &WebhookSecret) -> Vec<u8> {
    let text = secret.expose();
    text.strip_prefix(GENERATED_PREFIX)
        .and_then(|encoded| BASE64_SECRET.decode(encoded).ok())
        .filter(|key| DECODED_KEY_BYTES.contains(&key.len()))
        .unwrap_or_else(|| text.as_bytes().to_vec())
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return [0; 32] };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of the concatenated `parts`, in Rust (the delivery path may use Web Crypto
/// for the same tags; see `delivery::signing`).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac(key, parts)
}

/// `"<id>.<timestamp>."`: what the Standard Webhooks message puts before the body.
pub fn standard_prefix(msg_id: &str, timestamp: i64) -> String {
    format!("{msg_id}.{timestamp}.")
}

/// `v1,<base64 tag>`, a Standard Webhooks signature from its HMAC tag.
pub fn standard_from_tag(tag: &[u8; 32]) -> String {
    format!("v1,{}", STANDARD.encode(tag))
}

/// `sha256=<hex tag>`, the seed's signature from its HMAC tag.
pub fn legacy_from_tag(tag: &[u8; 32]) -> String {
    format!("sha256={}", hex::encode(tag))
}

/// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` for one secret.
pub fn standard_signature(secret: &WebhookSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = standard_key(secret);
    let prefix = standard_prefix(msg_id, timestamp);
    standard_from_tag(&hmac(&key, &[prefix.as_bytes(), body]))
}

/// `sha256=<hex HMAC-SHA256(secret as UTF-8, body)>`, the seed's scheme.
pub fn legacy_signature(secret: &WebhookSecret, body: &[u8]) -> String {
    legacy_from_tag(&hmac(secret.expose().as_bytes(), &[body]))
}

/// A secret that still signs until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    pub expires_at: UnixMillis,
}

/// The current secret and the previous ones still in their grace period, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSet {
    pub current: WebhookSecret,
    pub previous: Vec<PreviousSecret>,
}

/// The sealed JSON form; `WebhookSecret` itself is deliberately not serializable.
#[derive(Serialize, Deserialize)]
struct SecretSetJson<'a> {
    #[serde(borrow)]
    current: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    previous: Vec<PreviousJson<'a>>,
}

#[derive(Serialize, Deserialize)]
struct PreviousJson<'a> {
    #[serde(borrow)]
    secret: std::borrow::Cow<'a, str>,
    expires_at: UnixMillis,
}

impl SecretSet {
    pub fn new(current: WebhookSecret) -> SecretSet {
        SecretSet { current, previous: Vec::new() }
    }

    /// Drops previous secrets whose grace period is over (`expires_at <= now`).
    pub fn prune(&mut self, now: UnixMillis) {
        self.previous.retain(|p| p.expires_at > now);
    }

    /// Makes `new` current; the old current signs until `now + grace`. Keeps the five
    /// newest previous secrets. Returns when the old one expires.
    pub fn rotate(&mut self, new: WebhookSecret, grace_seconds: u32, now: UnixMillis) -> UnixMillis {
        let expires_at = now + i64::from(grace_seconds) * 1000;
        let old = std::mem::replace(&mut self.current, new);
        self.previous.insert(0, PreviousSecret { secret: old, expires_at });
        self.prune(now);
        self.previous.truncate(MAX_PREVIOUS);
        expires_at
    }

    /// Replaces the current secret at once (a `PUT` with `secret`): no grace for the old one.
    pub fn replace(&mut self, new: WebhookSecret, now: UnixMillis) {
        self.current = new;
        self.prune(now);
    }

    /// Previous secrets that still sign at `at`, newest first.
    pub fn in_grace(&self, at: UnixMillis) -> impl Iterator<Item = &WebhookSecret> {
        self.previous.iter().filter(move |p| p.expires_at > at).map(|p| &p.secret)
    }

    pub fn to_json(&self) -> String {
        let json = SecretSetJson {
            current: self.current.expose().into(),
            previous: self
                .previous
                .iter()
                .map(|p| PreviousJson { secret: p.secret.expose().into(), expires_at: p.expires_at })
                .collect(),
        };
        // A struct of strings and integers always serializes.
        serde_json::to_string(&json).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Option<SecretSet> {
        let json: SecretSetJson<'_> = serde_json::from_slice(bytes).ok()?;
        Some(SecretSet {
            current: WebhookSecret::from_stored(json.current.into_owned()),
            previous: json
                .previous
                .into_iter()
                .map(|p| PreviousSecret { secret: WebhookSecret::from_stored(p.secret.into_owned()), expires_at: p.expires_at })
                .collect(),
        })
    }
}

/// A valid rotate request (`{"secret"?, "grace_seconds"?}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateRequest {
    /// `None`: generate one.
    pub secret: Option<WebhookSecret>,
    pub grace_seconds: u32,
}

/// Validates the optional body of `POST /api/v1/webhooks/:id/secret/rotate`; an
/// `ed25519` webhook takes no `secret` (a new pair is generated).
pub fn parse_rotate(body: Option<&Map<String, Value>>, signing: Signing) -> Result<RotateRequest, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut request = RotateRequest { secret: None, grace_seconds: DEFAULT_GRACE_SECONDS };
    let Some(body) = body else { return Ok(request) };
    reject_unknown_fields(body, &["secret", "grace_seconds"], &mut errors);
    if let Some(v) = body.get("secret") {
        match parse_secret_value(v) {
            Ok(_) if signing == Signing::Ed25519 => {
                errors.insert("secret".into(), NO_SECRET_FOR_ED25519.into());
            }
            Ok(secret) => request.secret = Some(secret),
            Err(problem) => {
                errors.insert("secret".into(), problem);
            }
        }
    }
    if let Some(v) = body.get("grace_seconds") {
        match v.as_u64() {
            Some(n) if n <= u64::from(MAX_GRACE_SECONDS) => request.grace_seconds = n as u32,
            _ if v.is_number() => {
                errors.insert("grace_seconds".into(), format!("must be an integer from 0 to {MAX_GRACE_SECONDS}"));
            }
            _ => {
                errors.insert("grace_seconds".into(), format!("must be an integer, not {}", type_name(v)));
            }
        }
    }
    if errors.is_empty() { Ok(request) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &str) -> WebhookSecret {
        WebhookSecret::from_stored(v.to_string())
    }

    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../vectors/signatures.json")).unwrap()
    }

    #[test]
    fn published_svix_vectors_sign_byte_exact() {
        // vectors/signatures.json `svix`: our webhook-id plays their msg_id.
        for v in vectors()["svix"].as_array().unwrap() {
            let got = standard_signature(
                &s(v["secret"].as_str().unwrap()),
                v["msg_id"].as_str().unwrap(),
                v["timestamp"].as_i64().unwrap(),
                v["payload"].as_str().unwrap().as_bytes(),
            );
            assert_eq!(got, v["signature"].as_str().unwrap(), "{}", v["source"]);
        }
    }

    #[test]
    fn published_body_only_vector() {
        let v = &vectors()["hmac_sha256_hex_body_only"][0];
        let got = legacy_signature(&s(v["secret"].as_str().unwrap()), v["payload"].as_str().unwrap().as_bytes());
        assert_eq!(got, v["header"].as_str().unwrap());
    }

    #[test]
    fn generated_secrets_have_the_standard_form() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        let text = a.expose();
        assert!(text.starts_with("whsec_") && text.len() == 6 + 44, "{}", text.len());
        assert_eq!(standard_key(&a).len(), 32);
        assert_eq!(from_bytes(&[0; 32]).expose(), "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    }

    #[test]
    fn key_derivation_rules() {
        // 24 and 64 decoded bytes: decoded; 23 and 65: the text itself; not base64: the text.
        for (n, decoded) in [(24, true), (64, true), (23, false), (65, false), (16, false)] {
            let secret = s(&format!("whsec_{}", STANDARD.encode(vec![7u8; n])));
            let key = standard_key(&secret);
            assert_eq!(key == vec![7u8; n], decoded, "{n} bytes");
            if !decoded {
                assert_eq!(key, secret.expose().as_bytes());
            }
        }
        // Padding is optional (Svix secrets of 24 bytes have none anyway).
        let unpadded = s(&format!("whsec_{}", STANDARD.encode([1u8; 32]).trim_end_matches('=')));
        assert_eq!(standard_key(&unpadded), vec![1u8; 32]);
        for literal in ["whsec_not*base64*at*all!!", "my-own-secret-0123456789", "WHSEC_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert_eq!(standard_key(&s(literal)), literal.as_bytes(), "{literal}");
        }
    }

    #[test]
    fn rotation_keeps_five_previous_each_with_its_expiry() {
        let mut set = SecretSet::new(s("secret-0-xxxxxxxxxx"));
        let mut expiries = Vec::new();
        for i in 1..=7 {
            expiries.push(set.rotate(s(&format!("secret-{i}-xxxxxxxxxx")), 100 + i, 1_000 * i64::from(i)));
        }
        assert_eq!(set.current.expose(), "secret-7-xxxxxxxxxx");
        let names: Vec<&str> = set.previous.iter().map(|p| p.secret.expose()).collect();
        assert_eq!(names, ["secret-6-xxxxxxxxxx", "secret-5-xxxxxxxxxx", "secret-4-xxxxxxxxxx", "secret-3-xxxxxxxxxx", "secret-2-xxxxxxxxxx"]);
        assert_eq!(set.previous[0].expires_at, expiries[6]);
        assert_eq!(expiries[6], 7_000 + 107_000);
    }

    #[test]
    fn expired_secrets_stop_signing_and_are_pruned() {
        let mut set = SecretSet::new(s("old-secret-xxxxxxxx"));
        let until = set.rotate(s("new-secret-xxxxxxxx"), 60, 0);
        assert_eq!(until, 60_000);
        assert_eq!(set.in_grace(59_999).count(), 1);
        assert_eq!(set.in_grace(60_000).count(), 0, "expiry is exclusive");
        set.prune(60_000);
        assert!(set.previous.is_empty());
        // Grace 0: the old secret never signs again.
        let mut zero = SecretSet::new(s("old-secret-xxxxxxxx"));
        zero.rotate(s("new-secret-xxxxxxxx"), 0, 5);
        assert!(zero.previous.is_empty());
        // A rotation prunes the expired ones too.
        let mut set = SecretSet::new(s("a-secret-xxxxxxxxxx"));
        set.rotate(s("b-secret-xxxxxxxxxx"), 1, 0);
        set.rotate(s("c-secret-xxxxxxxxxx"), 10, 5_000);
        assert_eq!(set.previous.len(), 1);
        assert_eq!(set.previous[0].secret.expose(), "b-secret-xxxxxxxxxx");
    }

    #[test]
    fn replace_has_no_grace() {
        let mut set = SecretSet::new(s("old-secret-xxxxxxxx"));
        set.replace(s("new-secret-xxxxxxxx"), 0);
        assert_eq!(set.current.expose(), "new-secret-xxxxxxxx");
        assert!(set.previous.is_empty());
        // Previous secrets in their grace keep it; expired ones are pruned.
        let mut set = SecretSet::new(s("a-secret-xxxxxxxxxx"));
        set.rotate(s("b-secret-xxxxxxxxxx"), 10, 0);
        set.rotate(s("c-secret-xxxxxxxxxx"), 60, 0);
        set.replace(s("d-secret-xxxxxxxxxx"), 10_000);
        assert_eq!(set.current.expose(), "d-secret-xxxxxxxxxx");
        let left: Vec<(&str, UnixMillis)> = set.previous.iter().map(|p| (p.secret.expose(), p.expires_at)).collect();
        assert_eq!(left, [("b-secret-xxxxxxxxxx", 60_000)]);
    }

    #[test]
    fn spec_limits_of_secrets() {
        // SPEC §8.1: 32 random bytes, grace 0–604800 s (default 86400), at most 5 previous.
        assert_eq!((GENERATED_BYTES, DEFAULT_GRACE_SECONDS, MAX_GRACE_SECONDS, MAX_PREVIOUS), (32, 86_400, 604_800, 5));
        let mut set = SecretSet::new(s("secret-0-xxxxxxxxxx"));
        for i in 1..=6 {
            set.rotate(s(&format!("secret-{i}-xxxxxxxxxx")), 604_800, 0);
        }
        assert_eq!(set.previous.len(), 5);
        assert_eq!(set.previous[4].expires_at, 604_800_000);
    }

    #[test]
    fn rotate_body_errors_say_what_is_expected() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let message = |body: Value| parse_rotate(Some(&obj(body)), Signing::Hmac).unwrap_err().get("grace_seconds").cloned();
        for out_of_range in [json!(-1), json!(604_801), json!(1.5), json!(1e10)] {
            assert_eq!(message(json!({ "grace_seconds": out_of_range })).as_deref(), Some("must be an integer from 0 to 604800"));
        }
        assert_eq!(message(json!({"grace_seconds": "60"})).as_deref(), Some("must be an integer, not a string"));
        assert_eq!(message(json!({"grace_seconds": null})).as_deref(), Some("must be an integer, not null"));
        assert_eq!(message(json!({"grace_seconds": true})).as_deref(), Some("must be an integer, not a boolean"));
        let both = parse_rotate(Some(&obj(json!({"secret": "short", "grace_seconds": 60}))), Signing::Hmac).unwrap_err();
        assert_eq!(both.len(), 1, "{both:?}");
        let secret = "s".repeat(16);
        let ok = parse_rotate(Some(&obj(json!({"secret": secret}))), Signing::Hmac).unwrap();
        assert_eq!(ok, RotateRequest { secret: Some(WebhookSecret::from_stored("s".repeat(16))), grace_seconds: 86_400 });
    }

    #[test]
    fn json_round_trip_and_debug_redaction() {
        let mut set = SecretSet::new(s("old-secret-xxxxxxxx"));
        set.rotate(s("new-secret-xxxxxxxx"), 60, 0);
        let json = set.to_json();
        assert_eq!(SecretSet::from_json(json.as_bytes()), Some(set.clone()));
        assert!(SecretSet::from_json(b"{}").is_none());
        assert!(!format!("{set:?}").contains("secret-xxxxxxxx"));
    }

    #[test]
    fn rotate_body_rules() {
        let obj = |v: Value| v.as_object().unwrap().clone();
        let ed = parse_rotate(Some(&obj(json!({"secret": "x".repeat(16)}))), Signing::Ed25519).unwrap_err();
        assert!(ed["secret"].contains("ed25519"));
        assert_eq!(parse_rotate(None, Signing::Ed25519).unwrap().secret, None);
        assert_eq!(parse_rotate(None, Signing::Hmac).unwrap(), RotateRequest { secret: None, grace_seconds: 86_400 });
        let ok = parse_rotate(Some(&obj(json!({"secret": "x".repeat(16), "grace_seconds": 604800}))), Signing::Hmac).unwrap();
        assert_eq!(ok.grace_seconds, 604_800);
        assert_eq!(parse_rotate(Some(&obj(json!({"grace_seconds": 0}))), Signing::Hmac).unwrap().grace_seconds, 0);
        for (body, field) in [
            (json!({"grace_seconds": -1}), "grace_seconds"),
            (json!({"grace_seconds": 604801}), "grace_seconds"),
            (json!({"grace_seconds": 1.5}), "grace_seconds"),
            (json!({"grace_seconds": "60"}), "grace_seconds"),
            (json!({"grace_seconds": null}), "grace_seconds"),
            (json!({"secret": "short"}), "secret"),
            (json!({"secret": null}), "secret"),
            (json!({"secret": "x".repeat(257)}), "secret"),
            (json!({"colour": 1}), "colour"),
        ] {
            let e = parse_rotate(Some(&obj(body.clone())), Signing::Hmac).unwrap_err();
            assert!(e.contains_key(field), "{body} → {e:?}");
        }
    }
}
