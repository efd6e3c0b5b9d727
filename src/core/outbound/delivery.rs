//! What a delivery looks like and what its outcome means (SPEC §4.5).
//!
//! `envelope` builds the exact bytes sent and signed; `request_headers` lists the
//! headers in order, with both signature schemes (§4.5 and Standard Webhooks, §8.2);
//! `judge_attempt` turns one attempt's result into the next step.

use std::collections::BTreeMap;

use crate::core::catalog::EventType;
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
    pub custom: &'a BTreeMap<String, String>,
}

/// The HMACs one attempt needs (SPEC §8.2): for each signing secret (current first, then
/// those in their grace period) one tag over the body with the secret's UTF-8 bytes
/// (`X-Webhook-Signature`) and one over `standard_prefix` + body with its Standard
/// Webhooks key (`webhook-signature`). Whoever computes the tags (Rust here, Web Crypto in
/// the sender) hands them to `signed_headers` in the same order.
pub struct SigningPlan {
    /// `"<webhook-id>.<webhook-timestamp>."`.
    pub standard_prefix: String,
    /// (legacy key, standard key) per secret.
    pub keys: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The (legacy, standard) tags of one secret.
pub type SecretTags = ([u8; 32], [u8; 32]);

pub fn signing_plan(input: &DeliveryHeadersInput<'_>) -> SigningPlan {
    let standard_prefix = standard_prefix(input.delivery_id, input.attempt_at.div_euclid(1000));
    let keys = match input.secrets {
        Some(set) => std::iter::once(&set.current)
            .chain(set.in_grace(input.attempt_at))
            .map(|s| (s.expose().as_bytes().to_vec(), standard_key(s)))
            .collect(),
        None => Vec::new(),
    };
    SigningPlan { standard_prefix, keys }
}

impl SigningPlan {
    /// The tags computed in Rust.
    pub fn sign(&self, body: &[u8]) -> Vec<SecretTags> {
        self.keys
            .iter()
            .map(|(legacy, standard)| {
                (hmac_sha256(legacy, &[body]), hmac_sha256(standard, &[self.standard_prefix.as_bytes(), body]))
            })
            .collect()
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
pub fn signed_headers(input: &DeliveryHeadersInput<'_>, tags: &[SecretTags]) -> Vec<(String, String)> {
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
    if let Some(((current, _), previous)) = tags.split_first() {
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
        custom: &webhook.config.headers,
    };
    let mut headers = request_headers(&input, b"");
    if webhook.secret_hint.is_some() {
        // Before the custom headers, which the sender always puts last.
        let at = headers.len().saturating_sub(webhook.config.headers.len());
        for name in ["webhook-signature", "X-Webhook-Signature"] {
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
            attempt_at: 1_700_000_000_999, secrets: None, test: false, custom: &custom,
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
            attempt_at: v["timestamp"].as_i64().unwrap() * 1000 + 500, secrets: Some(&set), test: false, custom: &custom,
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
            event_type: "x", webhook_id: "wh", delivery_id: "dlv", attempt_at: ms, secrets: Some(&set), test: false, custom: &custom,
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
            secrets: Some(&set), test: false, custom: &custom,
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
}
