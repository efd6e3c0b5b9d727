//! What a delivery looks like and what its outcome means (SPEC §4.5).
//!
//! `envelope` builds the exact bytes sent and signed; `request_headers` lists the
//! headers in order, with both signature schemes (§4.5 and Standard Webhooks, §8.2), or
//! for an `ed25519` webhook only the `v1a` one (§9.4);
//! `judge_attempt` turns one attempt's result into the next step.

use std::collections::BTreeMap;

use crate::core::catalog::EventType;
use crate::core::outbound::asymmetric::{signature_entry, KeyPair, Signing};
use crate::core::outbound::retry::{retry_after_secs, RetrySchedule};
use crate::core::outbound::secrets::{
    hmac_sha256, legacy_from_tag, legacy_signature, standard_from_tag, standard_key, standard_prefix, SecretSet,
};
use crate::core::time::{format_iso, UnixMillis};
use crate::core::outbound::delivery_log::DeliveryLog;
use crate::core::outbound::webhook::{StoredWebhook, WebhookSecret};

pub const USER_AGENT: &str = "PlaneConnection-Webhooks/1.0 (+https://planeconnection.com/docs/webhooks)";
/// How much of a receiver's response body the log keeps.
pub const RESPONSE_EXCERPT_BYTES: usize = 2048;

/// The delivered body: `{"id","type","created_at","data"}`. `data_json` must be a JSON
/// object's text; it is embedded byte for byte so the receiver sees what the publisher sent.
pub fn envelope(event_id: &str, event_type: EventType, created_at: UnixMillis, data_json: &str) -> String {
    // Ids, types and timestamps are ASCII without quotes or backslashes: no escaping needed,
    // but serde_json keeps that true if that ever changes.
    format!(
        r#"{{"id":{},"type":{},"created_at":{},"data":{}}}"#,
        serde_json::Value::from(event_id),
        serde_json::Value::from(event_type.as_str()),
        serde_json::Value::from(format_iso(created_at)),
        data_json
    )
}

/// `sha256=<hex HMAC-SHA256(secret as UTF-8, body)>`, as the seed's Node snippet computes.
pub fn signature_header(secret: &WebhookSecret, body: &[u8]) -> String {
    legacy_signature(secret, body)
}

/// Everything needed to address one delivery attempt.
pub struct DeliveryHeadersInput<'a> {
    pub event_type: &'a str,
    pub webhook_id: &'a str,
    pub delivery_id: &'a str,
    pub attempt_at: UnixMillis,
    /// `None` only for a legacy webhook not yet given a secret (see `sealed`).
    pub secrets: Option<&'a SecretSet>,
    /// A test delivery (`X-Webhook-Test: true`).
    pub test: bool,
    /// `X-Webhook-Signature` (and `-Previous`) are sent (the webhook's `legacy_signature`).
    pub legacy_signature: bool,
    /// `v1` (HMAC, and the seed's header) or `v1a` (Ed25519 only).
    pub signing: Signing,
    pub custom: &'a BTreeMap<String, String>,
}

/// The signatures one attempt needs. HMAC (SPEC §8.2): for each signing secret (current
/// first, then those in their grace period) one tag over the body with the secret's UTF-8
/// bytes (`X-Webhook-Signature`) and one over `standard_prefix` + body with its Standard
/// Webhooks key (`webhook-signature`). Ed25519 (§9.4): one signature over `standard_prefix`
/// + body per key pair, in the same order. Whoever computes them (Rust here for HMAC, Web
/// Crypto in the sender) hands them to `signed_headers` as `Signatures`, in plan order.
pub struct SigningPlan {
    /// `"<webhook-id>.<webhook-timestamp>."`.
    pub standard_prefix: String,
    /// (legacy key, standard key) per secret of an `hmac` webhook.
    pub keys: Vec<(Vec<u8>, Vec<u8>)>,
    /// The key pairs of an `ed25519` webhook.
    pub ed25519: Vec<KeyPair>,
}

/// The (legacy, standard) tags of one secret.
pub type SecretTags = ([u8; 32], [u8; 32]);

/// What `signed_headers` writes: HMAC tags, or Ed25519 signatures, in plan order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Signatures {
    pub hmac: Vec<SecretTags>,
    pub ed25519: Vec<[u8; 64]>,
}

pub fn signing_plan(input: &DeliveryHeadersInput<'_>) -> SigningPlan {
    let standard_prefix = standard_prefix(input.delivery_id, input.attempt_at.div_euclid(1000));
    let signing_secrets = input.secrets.into_iter().flat_map(|set| std::iter::once(&set.current).chain(set.in_grace(input.attempt_at)));
    let (keys, ed25519) = match input.signing {
        Signing::Hmac => (signing_secrets.map(|s| (s.expose().as_bytes().to_vec(), standard_key(s))).collect(), Vec::new()),
        // A key that is not a `whsk_` pair (never written so) does not sign; the sender
        // refuses to send an `ed25519` delivery that no key signs.
        Signing::Ed25519 => (Vec::new(), signing_secrets.filter_map(KeyPair::from_secret).collect()),
    };
    SigningPlan { standard_prefix, keys, ed25519 }
}

impl SigningPlan {
    /// The HMAC tags computed in Rust (Ed25519 is signed by Web Crypto only).
    pub fn sign(&self, body: &[u8]) -> Signatures {
        let hmac = self
            .keys
            .iter()
            .map(|(legacy, standard)| {
                (hmac_sha256(legacy, &[body]), hmac_sha256(standard, &[self.standard_prefix.as_bytes(), body]))
            })
            .collect();
        Signatures { hmac, ed25519: Vec::new() }
    }
}

/// Platform headers first, then the webhook's custom headers (validated at write time
/// never to collide with the platform's). Every secret in its grace period signs too:
/// one more `v1,` entry in `webhook-signature` and one `sha256=` entry in
/// `X-Webhook-Signature-Previous` each.
pub fn request_headers(input: &DeliveryHeadersInput<'_>, body: &[u8]) -> Vec<(String, String)> {
    signed_headers(input, &signing_plan(input).sign(body))
}

/// `request_headers` with the tags of `signing_plan(input)` already computed.
pub fn signed_headers(input: &DeliveryHeadersInput<'_>, signatures: &Signatures) -> Vec<(String, String)> {
    let tags = &signatures.hmac;
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("User-Agent".to_string(), USER_AGENT.to_string()),
        ("X-Webhook-Event".to_string(), input.event_type.to_string()),
        ("X-Webhook-Timestamp".to_string(), format_iso(input.attempt_at)),
        ("X-Webhook-ID".to_string(), input.webhook_id.to_string()),
        ("X-Webhook-Delivery".to_string(), input.delivery_id.to_string()),
    ];
    if input.test {
        headers.push(("X-Webhook-Test".to_string(), "true".to_string()));
    }
    let timestamp = input.attempt_at.div_euclid(1000);
    if let Some(((current, _), previous)) = tags.split_first().filter(|_| input.legacy_signature) {
        headers.push(("X-Webhook-Signature".to_string(), legacy_from_tag(current)));
        if !previous.is_empty() {
            let previous: Vec<String> = previous.iter().map(|(legacy, _)| legacy_from_tag(legacy)).collect();
            headers.push(("X-Webhook-Signature-Previous".to_string(), previous.join(",")));
        }
    }
    headers.push(("webhook-id".to_string(), input.delivery_id.to_string()));
    headers.push(("webhook-timestamp".to_string(), timestamp.to_string()));
    if !tags.is_empty() {
        let standard: Vec<String> = tags.iter().map(|(_, standard)| standard_from_tag(standard)).collect();
        headers.push(("webhook-signature".to_string(), standard.join(" ")));
    } else if !signatures.ed25519.is_empty() {
        let entries: Vec<String> = signatures.ed25519.iter().map(signature_entry).collect();
        headers.push(("webhook-signature".to_string(), entries.join(" ")));
    }
    headers.extend(input.custom.iter().map(|(k, v)| (k.clone(), v.clone())));
    headers
}

/// The headers the sender built for the log's latest attempt (its time, or the log's
/// creation before any attempt), from the webhook as it is now. Signatures are not
/// recomputed for display: they appear as fully masked values.
pub fn latest_attempt_headers(log: &DeliveryLog, webhook: &StoredWebhook) -> Vec<(String, String)> {
    let attempt_at = log.history.last().map_or(log.created_at, |a| a.attempted_at);
    let input = DeliveryHeadersInput {
        event_type: &log.event_type,
        webhook_id: &webhook.id,
        delivery_id: &log.id,
        attempt_at,
        secrets: None,
        test: false,
        legacy_signature: webhook.config.legacy_signature,
        signing: webhook.config.signing,
        custom: &webhook.config.headers,
    };
    let mut headers = request_headers(&input, b"");
    if webhook.secret_hint.is_some() {
        // Before the custom headers, which the sender always puts last.
        let at = headers.len().saturating_sub(webhook.config.headers.len());
        let legacy = webhook.config.legacy_signature && webhook.config.signing == Signing::Hmac;
        let names: &[&str] = if legacy { &["webhook-signature", "X-Webhook-Signature"] } else { &["webhook-signature"] };
        for name in names {
            headers.insert(at, (name.to_string(), String::new()));
        }
    }
    headers
}

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this status (and maybe a `Retry-After`).
    Response { status: u16, retry_after: Option<String> },
    /// No answer within `timeout_ms`.
    Timeout { timeout_ms: u32 },
    /// Connection refused, reset, DNS failure…
    NetworkError(String),
    /// The target failed the SSRF rules at send time; never retried.
    Blocked(String),
    /// Nothing was sent: the webhook's sealed secrets or headers did not open (missing
    /// key, unknown key, tampered ciphertext). Retried like a failure, in case the
    /// operator restores the key.
    NotSent(String),
}

impl AttemptResult {
    pub fn status(&self) -> Option<u16> {
        match self {
            AttemptResult::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Human-readable error for the log, `None` on success.
    pub fn error(&self) -> Option<String> {
        match self {
            AttemptResult::Response { status, .. } if (200..300).contains(status) => None,
            AttemptResult::Response { status, .. } if (300..400).contains(status) => {
                Some(format!("receiver answered {status} (redirects are not followed)"))
            }
            AttemptResult::Response { status, .. } => Some(format!("receiver answered {status}")),
            AttemptResult::Timeout { timeout_ms } => Some(format!("timed out after {timeout_ms} ms")),
            AttemptResult::NetworkError(e) => Some(format!("network error: {e}")),
            AttemptResult::Blocked(why) => Some(format!("target blocked: {why}")),
            AttemptResult::NotSent(why) => Some(format!("not sent: {why}")),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryIn { secs: u32 },
    GiveUp,
    /// 410 Gone: the receiver asked us to stop; disable the webhook.
    DisableWebhook,
}

/// Decides the next step; `attempts_made` includes this attempt, `unit` is a jitter sample.
pub fn judge_attempt(
    result: &AttemptResult,
    attempts_made: u32,
    max_attempts: u32,
    schedule: &RetrySchedule,
    now: UnixMillis,
    unit: f64,
) -> NextStep {
    let retry_after = match result {
        AttemptResult::Response { status, .. } if (200..300).contains(status) => return NextStep::Succeeded,
        AttemptResult::Response { status: 410, .. } => return NextStep::DisableWebhook,
        AttemptResult::Blocked(_) => return NextStep::GiveUp,
        AttemptResult::Response { status: 429 | 503, retry_after: Some(value) } => retry_after_secs(value, now),
        _ => None,
    };
    if attempts_made >= max_attempts {
        return NextStep::GiveUp;
    }
    let secs = retry_after.unwrap_or_else(|| schedule.delay_with_jitter(attempts_made, unit));
    NextStep::RetryIn { secs }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::outbound::secrets::standard_signature;

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::from_stored(s.to_string())
    }

    #[test]
    fn github_vector_signs_byte_exact() {
        // vectors/signatures.json, hmac_sha256_hex_body_only
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../../vectors/signatures.json")).unwrap();
        let v = &vectors["hmac_sha256_hex_body_only"][0];
        let got = signature_header(&secret(v["secret"].as_str().unwrap()), v["payload"].as_str().unwrap().as_bytes());
        assert_eq!(got, v["header"].as_str().unwrap());
    }

    #[test]
    fn envelope_embeds_data_verbatim() {
        let body = envelope("evt_1", EventType::INVOICE_PAID, 0, r#"{"b":1, "a":[2]}"#);
        assert_eq!(body, r#"{"id":"evt_1","type":"invoice.paid","created_at":"1970-01-01T00:00:00.000Z","data":{"b":1, "a":[2]}}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
    }

    fn names(headers: &[(String, String)]) -> Vec<&str> {
        headers.iter().map(|h| h.0.as_str()).collect()
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|h| h.0 == name).map(|h| h.1.as_str())
    }

    #[test]
    fn headers_in_order_with_and_without_secret() {
        let custom = BTreeMap::from([("X-Tenant".to_string(), "a".to_string())]);
        let mut input = DeliveryHeadersInput {
            event_type: "flight.departed", webhook_id: "wh_1", delivery_id: "dlv_1",
            attempt_at: 1_700_000_000_999, secrets: None, test: false, legacy_signature: true, signing: Signing::Hmac, custom: &custom,
        };
        let headers = request_headers(&input, b"{}");
        assert_eq!(names(&headers), ["Content-Type", "User-Agent", "X-Webhook-Event", "X-Webhook-Timestamp", "X-Webhook-ID", "X-Webhook-Delivery", "webhook-id", "webhook-timestamp", "X-Tenant"]);
        assert_eq!(get(&headers, "webhook-timestamp"), Some("1700000000"));
        let set = SecretSet::new(secret("0123456789abcdef"));
        input.secrets = Some(&set);
        input.test = true;
        let headers = request_headers(&input, b"{}");
        assert_eq!(names(&headers), ["Content-Type", "User-Agent", "X-Webhook-Event", "X-Webhook-Timestamp", "X-Webhook-ID", "X-Webhook-Delivery", "X-Webhook-Test", "X-Webhook-Signature", "webhook-id", "webhook-timestamp", "webhook-signature", "X-Tenant"]);
        assert!(get(&headers, "X-Webhook-Signature").is_some_and(|v| v.starts_with("sha256=") && v.len() == 71));
        assert_eq!(get(&headers, "webhook-id"), Some("dlv_1"));
        let sig = get(&headers, "webhook-signature").unwrap();
        assert_eq!(sig, standard_signature(&set.current, "dlv_1", 1_700_000_000, b"{}"));
    }

    #[test]
    fn standard_signature_matches_published_vector_through_the_headers() {
        // vectors/signatures.json svix[0]: msg_id as the delivery id, timestamp in seconds.
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../../vectors/signatures.json")).unwrap();
        let v = &vectors["svix"][0];
        let set = SecretSet::new(secret(v["secret"].as_str().unwrap()));
        let custom = BTreeMap::new();
        let input = DeliveryHeadersInput {
            event_type: "x", webhook_id: "wh_1", delivery_id: v["msg_id"].as_str().unwrap(),
            attempt_at: v["timestamp"].as_i64().unwrap() * 1000 + 500, secrets: Some(&set), test: false, legacy_signature: true, signing: Signing::Hmac, custom: &custom,
        };
        let headers = request_headers(&input, v["payload"].as_str().unwrap().as_bytes());
        assert_eq!(get(&headers, "webhook-signature"), v["signature"].as_str());
        assert_eq!(get(&headers, "webhook-timestamp").map(str::to_string), Some(v["timestamp"].to_string()));
    }

    #[test]
    fn secrets_in_grace_sign_too_until_they_expire() {
        let mut set = SecretSet::new(secret("whsec_first_secret_xxxx"));
        set.rotate(secret("whsec_second_secret_xxx"), 60, 0);
        set.rotate(secret("whsec_third_secret_xxxx"), 120, 0);
        let custom = BTreeMap::new();
        let at = |ms| DeliveryHeadersInput {
            event_type: "x", webhook_id: "wh", delivery_id: "dlv", attempt_at: ms, secrets: Some(&set), test: false, legacy_signature: true, signing: Signing::Hmac, custom: &custom,
        };
        let during = request_headers(&at(59_000), b"body");
        assert_eq!(get(&during, "webhook-signature").unwrap().split(' ').count(), 3);
        let previous = get(&during, "X-Webhook-Signature-Previous").unwrap();
        assert_eq!(previous, format!("{},{}", signature_header(&secret("whsec_second_secret_xxx"), b"body"),
                                     signature_header(&secret("whsec_first_secret_xxxx"), b"body")));
        assert_eq!(get(&during, "X-Webhook-Signature").unwrap(), signature_header(&secret("whsec_third_secret_xxxx"), b"body"));
        let later = request_headers(&at(60_000), b"body");
        assert_eq!(get(&later, "webhook-signature").unwrap().split(' ').count(), 2);
        let after = request_headers(&at(120_000), b"body");
        assert_eq!(get(&after, "webhook-signature").unwrap().split(' ').count(), 1);
        assert_eq!(get(&after, "X-Webhook-Signature-Previous"), None);
        // `legacy_signature: false`: only the timestamped scheme, for every key.
        let modern = DeliveryHeadersInput { legacy_signature: false, ..at(59_000) };
        let headers = request_headers(&modern, b"body");
        assert_eq!(get(&headers, "X-Webhook-Signature"), None);
        assert_eq!(get(&headers, "X-Webhook-Signature-Previous"), None);
        assert_eq!(get(&headers, "webhook-signature").unwrap().split(' ').count(), 3);
    }

    #[test]
    fn ed25519_webhooks_send_only_v1a_one_entry_per_key_in_grace() {
        use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
        let pair = |n: u8| {
            let key = SigningKey::from_bytes(&[n; 32]);
            let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
            pkcs8.extend_from_slice(&[n; 32]);
            KeyPair::from_pkcs8(&pkcs8, key.verifying_key().as_bytes()).unwrap()
        };
        let mut set = SecretSet::new(pair(1).to_secret());
        set.rotate(pair(2).to_secret(), 60, 0);
        let custom = BTreeMap::new();
        let input = DeliveryHeadersInput {
            event_type: "x", webhook_id: "wh", delivery_id: "dlv_9", attempt_at: 30_000, secrets: Some(&set), test: false,
            legacy_signature: true, signing: Signing::Ed25519, custom: &custom,
        };
        let plan = signing_plan(&input);
        assert!(plan.keys.is_empty(), "no HMAC for an ed25519 webhook");
        assert_eq!(plan.ed25519, vec![pair(2), pair(1)]);
        assert_eq!(plan.sign(b"{}"), Signatures::default());
        let message = crate::core::outbound::asymmetric::signed_message(&plan.standard_prefix, b"{}");
        let signatures = Signatures {
            hmac: Vec::new(),
            ed25519: plan.ed25519.iter().map(|k| SigningKey::from_bytes(k.seed()).sign(&message).to_bytes()).collect(),
        };
        let headers = signed_headers(&input, &signatures);
        assert_eq!(get(&headers, "X-Webhook-Signature"), None, "legacy_signature does not apply to ed25519");
        assert_eq!(get(&headers, "X-Webhook-Signature-Previous"), None);
        let entries: Vec<&str> = get(&headers, "webhook-signature").unwrap().split(' ').collect();
        assert_eq!(entries.len(), 2);
        for (entry, n) in entries.iter().zip([2u8, 1]) {
            let sig: [u8; 64] = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, entry.strip_prefix("v1a,").unwrap())
                .unwrap().try_into().unwrap();
            let public = VerifyingKey::from_bytes(&crate::core::outbound::asymmetric::parse_public_key(&pair(n).public_key()).unwrap()).unwrap();
            assert!(public.verify(b"dlv_9.30.{}", &ed25519_dalek::Signature::from_bytes(&sig)).is_ok());
        }
        // After the grace period only the current pair signs.
        assert_eq!(signing_plan(&DeliveryHeadersInput { attempt_at: 60_000, ..input }).ed25519, vec![pair(2)]);
    }

    #[test]
    fn judging_outcomes() {
        let s = RetrySchedule::parse("10,20").unwrap();
        let ok = AttemptResult::Response { status: 204, retry_after: None };
        assert_eq!(judge_attempt(&ok, 1, 4, &s, 0, 0.5), NextStep::Succeeded);
        let err = AttemptResult::Response { status: 500, retry_after: None };
        assert_eq!(judge_attempt(&err, 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 10 });
        assert_eq!(judge_attempt(&err, 2, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 20 });
        assert_eq!(judge_attempt(&err, 4, 4, &s, 0, 0.5), NextStep::GiveUp);
        let limited = AttemptResult::Response { status: 429, retry_after: Some("7".into()) };
        assert_eq!(judge_attempt(&limited, 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 7 });
        let gone = AttemptResult::Response { status: 410, retry_after: None };
        assert_eq!(judge_attempt(&gone, 1, 4, &s, 0, 0.5), NextStep::DisableWebhook);
        let redirect = AttemptResult::Response { status: 301, retry_after: None };
        assert_eq!(judge_attempt(&redirect, 1, 1, &s, 0, 0.5), NextStep::GiveUp);
        assert!(redirect.error().unwrap().contains("redirects are not followed"));
        assert_eq!(judge_attempt(&AttemptResult::Blocked("x".into()), 1, 4, &s, 0, 0.5), NextStep::GiveUp);
        assert_eq!(judge_attempt(&AttemptResult::Timeout { timeout_ms: 1000 }, 1, 2, &s, 0, 0.5), NextStep::RetryIn { secs: 10 });
    }

    #[test]
    fn plan_lists_current_then_grace_keys_and_signs_like_the_single_functions() {
        let mut set = SecretSet::new(secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        set.rotate(secret("a-plain-secret-of-some-length"), 3600, 1_700_000_000_000);
        let custom = BTreeMap::new();
        let input = DeliveryHeadersInput {
            event_type: "flight.departed", webhook_id: "wh_1", delivery_id: "dlv_1", attempt_at: 1_700_000_000_500,
            secrets: Some(&set), test: false, legacy_signature: true, signing: Signing::Hmac, custom: &custom,
        };
        let plan = signing_plan(&input);
        assert_eq!(plan.standard_prefix, "dlv_1.1700000000.");
        assert_eq!(plan.keys.len(), 2);
        assert_eq!(plan.keys[1].0, b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_vec());
        let headers = signed_headers(&input, &plan.sign(b"{}"));
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("X-Webhook-Signature"), Some(legacy_signature(&set.current, b"{}")));
        assert_eq!(get("X-Webhook-Signature-Previous"), Some(legacy_signature(&set.previous[0].secret, b"{}")));
        assert_eq!(get("webhook-signature"), Some(format!("{} {}",
            standard_signature(&set.current, "dlv_1", 1_700_000_000, b"{}"),
            standard_signature(&set.previous[0].secret, "dlv_1", 1_700_000_000, b"{}"))));
        // No secrets: no signature headers at all.
        let bare = DeliveryHeadersInput { secrets: None, ..input };
        assert!(signed_headers(&bare, &signing_plan(&bare).sign(b"{}")).iter().all(|(k, _)| !k.to_lowercase().contains("signature")));
    }

    #[test]
    fn the_log_records_the_status_and_error_of_each_kind_of_attempt() {
        let response = |status| AttemptResult::Response { status, retry_after: None };
        assert_eq!(response(503).status(), Some(503));
        assert_eq!(response(200).status(), Some(200));
        for other in [
            AttemptResult::Timeout { timeout_ms: 1000 },
            AttemptResult::NetworkError("x".into()),
            AttemptResult::Blocked("x".into()),
            AttemptResult::NotSent("x".into()),
        ] {
            assert_eq!(other.status(), None, "{other:?}");
        }
        for ok in [200, 201, 204, 299] {
            assert_eq!(response(ok).error(), None, "{ok}");
        }
        assert_eq!(response(300).error().as_deref(), Some("receiver answered 300 (redirects are not followed)"));
        assert_eq!(response(399).error().as_deref(), Some("receiver answered 399 (redirects are not followed)"));
        assert_eq!(response(199).error().as_deref(), Some("receiver answered 199"));
        assert_eq!(response(400).error().as_deref(), Some("receiver answered 400"));
        assert_eq!(response(500).error().as_deref(), Some("receiver answered 500"));
        assert_eq!(AttemptResult::Timeout { timeout_ms: 1500 }.error().as_deref(), Some("timed out after 1500 ms"));
        assert_eq!(AttemptResult::NetworkError("refused".into()).error().as_deref(), Some("network error: refused"));
        assert_eq!(AttemptResult::Blocked("private address".into()).error().as_deref(), Some("target blocked: private address"));
        assert_eq!(AttemptResult::NotSent("no key".into()).error().as_deref(), Some("not sent: no key"));
    }

    #[test]
    fn only_2xx_succeeds_and_410_disables_at_any_attempt() {
        let s = RetrySchedule::parse("10,20").unwrap();
        let judge = |status, made, max| judge_attempt(&AttemptResult::Response { status, retry_after: None }, made, max, &s, 0, 0.5);
        for ok in [200, 204, 299] {
            assert_eq!(judge(ok, 1, 4), NextStep::Succeeded, "{ok}");
            assert_eq!(judge(ok, 4, 4), NextStep::Succeeded, "{ok} on the last attempt");
        }
        for failed in [100, 199, 300, 302, 400, 404, 408, 409, 429, 500, 502, 503] {
            assert_eq!(judge(failed, 1, 4), NextStep::RetryIn { secs: 10 }, "{failed}");
            assert_eq!(judge(failed, 4, 4), NextStep::GiveUp, "{failed} on the last attempt");
        }
        assert_eq!(judge(410, 1, 4), NextStep::DisableWebhook);
        assert_eq!(judge(410, 4, 4), NextStep::DisableWebhook, "410 on the last attempt still disables");
    }

    #[test]
    fn retrying_ends_after_the_last_attempt_and_never_for_blocked_targets() {
        let s = RetrySchedule::parse("10,20").unwrap();
        let failure = AttemptResult::NetworkError("reset".into());
        assert_eq!(judge_attempt(&failure, 1, 3, &s, 0, 0.5), NextStep::RetryIn { secs: 10 });
        assert_eq!(judge_attempt(&failure, 2, 3, &s, 0, 0.5), NextStep::RetryIn { secs: 20 });
        assert_eq!(judge_attempt(&failure, 3, 3, &s, 0, 0.5), NextStep::GiveUp);
        assert_eq!(judge_attempt(&failure, 5, 3, &s, 0, 0.5), NextStep::GiveUp, "past the last attempt (a redelivery)");
        assert_eq!(judge_attempt(&failure, 1, 1, &s, 0, 0.5), NextStep::GiveUp, "retry_count 0: one attempt");
        assert_eq!(judge_attempt(&AttemptResult::NotSent("no key".into()), 1, 2, &s, 0, 0.5), NextStep::RetryIn { secs: 10 });
        assert_eq!(judge_attempt(&AttemptResult::Timeout { timeout_ms: 1 }, 2, 3, &s, 0, 0.5), NextStep::RetryIn { secs: 20 });
        assert_eq!(judge_attempt(&AttemptResult::Blocked("x".into()), 1, 10, &s, 0, 0.5), NextStep::GiveUp);
        // The schedule's delay is jittered by ±20 %.
        let default = RetrySchedule::default();
        assert_eq!(judge_attempt(&failure, 2, 10, &default, 0, 0.0), NextStep::RetryIn { secs: 240 });
        assert_eq!(judge_attempt(&failure, 2, 10, &default, 0, 1.0), NextStep::RetryIn { secs: 360 });
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let s = RetrySchedule::parse("10,20").unwrap();
        let with = |status: u16, value: &str| AttemptResult::Response { status, retry_after: Some(value.to_string()) };
        assert_eq!(judge_attempt(&with(429, "7"), 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 7 });
        assert_eq!(judge_attempt(&with(503, "7"), 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 7 });
        assert_eq!(judge_attempt(&with(503, "0"), 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 0 });
        assert_eq!(judge_attempt(&with(429, "999999"), 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 43_200 });
        for status in [500, 502, 504, 400, 408, 301] {
            assert_eq!(judge_attempt(&with(status, "7"), 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 10 }, "{status}");
        }
        assert_eq!(judge_attempt(&with(429, "soon"), 1, 4, &s, 0, 0.5), NextStep::RetryIn { secs: 10 }, "unreadable: the schedule");
        let at = crate::core::time::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(judge_attempt(&with(503, "Sun, 06 Nov 1994 08:50:37 GMT"), 1, 4, &s, at, 0.5), NextStep::RetryIn { secs: 60 });
        assert_eq!(judge_attempt(&with(429, "7"), 4, 4, &s, 0, 0.5), NextStep::GiveUp, "no attempt left");
        assert_eq!(judge_attempt(&with(200, "7"), 1, 4, &s, 0, 0.5), NextStep::Succeeded);
        assert_eq!(judge_attempt(&with(410, "7"), 1, 4, &s, 0, 0.5), NextStep::DisableWebhook);
    }

    fn stored_webhook(secret_hint: Option<&str>, headers: BTreeMap<String, String>) -> StoredWebhook {
        StoredWebhook {
            id: "wh_1".into(),
            config: crate::core::outbound::webhook::WebhookConfig {
                name: "n".into(), url: "https://example.com".into(), events: vec![], active: true, headers,
                retry_count: 3, timeout_ms: 10_000, legacy_signature: true, signing: Signing::Hmac, pacing: Default::default(),
            },
            secret_hint: secret_hint.map(str::to_string),
            disabled_reason: None,
            created_by: None,
            updated_by: None,
            created_at: 0,
            updated_at: 0,
            health: Default::default(),
            secret_status: Default::default(),
            public_key: None,
        }
    }

    fn log_with_history(attempted_at: &[UnixMillis]) -> DeliveryLog {
        use crate::core::outbound::delivery_log::{AttemptRecord, DeliveryStatus};
        DeliveryLog {
            id: "dlv_1".into(), webhook_id: "wh_1".into(), event_id: "evt_1".into(), event_type: "flight.departed".into(),
            status: DeliveryStatus::Failed, attempts: attempted_at.len() as u32, max_attempts: 4, response_status: None,
            response_body: None, error: None, duration_ms: None, next_attempt_at: None, redelivery_of: None, test: false,
            created_at: 1_700_000_000_000, updated_at: 1_700_000_000_000, payload: None,
            history: attempted_at
                .iter()
                .enumerate()
                .map(|(i, &at)| AttemptRecord { attempt: i as u32 + 1, attempted_at: at, response_status: Some(500), error: None, duration_ms: 5, response_body: None })
                .collect(),
        }
    }

    #[test]
    fn the_detail_shows_the_latest_attempts_headers_with_signatures_masked() {
        let custom = BTreeMap::from([("X-Tenant".to_string(), "a".to_string())]);
        let webhook = stored_webhook(Some("…abcd"), custom.clone());
        let headers = latest_attempt_headers(&log_with_history(&[1_700_000_005_000, 1_700_000_305_500]), &webhook);
        assert_eq!(names(&headers), ["Content-Type", "User-Agent", "X-Webhook-Event", "X-Webhook-Timestamp", "X-Webhook-ID", "X-Webhook-Delivery", "webhook-id", "webhook-timestamp", "X-Webhook-Signature", "webhook-signature", "X-Tenant"]);
        assert_eq!(get(&headers, "X-Webhook-Timestamp"), Some("2023-11-14T22:18:25.500Z"), "the latest attempt's time");
        assert_eq!(get(&headers, "webhook-timestamp"), Some("1700000305"));
        assert_eq!(get(&headers, "X-Webhook-ID"), Some("wh_1"));
        assert_eq!(get(&headers, "X-Webhook-Delivery"), Some("dlv_1"));
        assert_eq!(get(&headers, "X-Webhook-Event"), Some("flight.departed"));
        assert_eq!(get(&headers, "X-Webhook-Signature"), Some(""));
        assert_eq!(get(&headers, "webhook-signature"), Some(""));
        assert_eq!(get(&headers, "X-Tenant"), Some("a"));

        let never_sent = latest_attempt_headers(&log_with_history(&[]), &stored_webhook(None, BTreeMap::new()));
        assert_eq!(names(&never_sent), ["Content-Type", "User-Agent", "X-Webhook-Event", "X-Webhook-Timestamp", "X-Webhook-ID", "X-Webhook-Delivery", "webhook-id", "webhook-timestamp"]);
        assert_eq!(get(&never_sent, "webhook-timestamp"), Some("1700000000"), "the log's creation before any attempt");
    }
}
