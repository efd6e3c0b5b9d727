//! Webhook configuration (SPEC §4.2): validated once, into types that cannot be invalid.
//!
//! `parse_create` and `parse_patch` read a JSON object and report every violation at
//! once, keyed by field name. The URL rule delegates to `ssrf::check_target_url`.
//! The secret travels beside the configuration (`NewWebhook`, `WebhookPatch`): it is
//! sealed at rest and read only to sign (see `secrets`).
//! An update's header value that is exactly the masked rendering of the stored value
//! (what a form showed and sent back unchanged) keeps the stored value: a mask is never
//! stored in place of a credential.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::core::catalog::EventType;
use crate::core::api::error::FieldErrors;
use crate::core::api::json_body::{reject_unknown_fields, type_name};
use crate::core::outbound::asymmetric::{Signing, NO_SECRET_FOR_ED25519};
use crate::core::outbound::masking::mask;
use crate::core::outbound::pacing::{self, Pacing, PacingPatch};
use crate::core::outbound::ssrf::check_target_url;

pub const NAME_MAX_CHARS: usize = 100;
pub const SECRET_MIN_CHARS: usize = 16;
pub const SECRET_MAX_CHARS: usize = 256;
pub const MAX_CUSTOM_HEADERS: usize = 20;
pub const HEADER_NAME_MAX: usize = 256;
pub const HEADER_VALUE_MAX: usize = 2048;
pub const RETRY_COUNT_MAX: u32 = 10;
pub const DEFAULT_RETRY_COUNT: u32 = 3;
pub const TIMEOUT_MS_MIN: u32 = 1_000;
pub const TIMEOUT_MS_MAX: u32 = 30_000;
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

const FIELDS: &[&str] = &["name", "url", "secret", "events", "active", "headers", "retry_count", "timeout_ms",
    "legacy_signature", "signing", pacing::RATE_FIELD, pacing::ORDERING_FIELD];
/// Names the platform sets, or that proxies and the HTTP layer own (hop-by-hop headers,
/// RFC 9110 §7.6.1; forwarding headers a receiver may trust): a webhook cannot set them.
const RESERVED_HEADERS: &[&str] = &[
    "host", "user-agent", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "expect",
    "forwarded", "x-real-ip",
];
/// Every name starting with one of these is reserved too (`content-*` covers
/// `content-type` and `content-length`).
const RESERVED_PREFIXES: &[&str] = &["content-", "proxy-", "x-forwarded-", "cf-", "webhook-", "x-webhook-"];

/// Whether a custom header name is reserved (case-insensitive).
pub fn is_reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED_HEADERS.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p))
}

/// A signing secret. `Debug` never shows it; only `expose` hands out the value.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn from_stored(value: String) -> Self {
        WebhookSecret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The last four characters, for users to recognise which secret is set.
    pub fn hint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        format!("…{tail}")
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A complete, valid webhook configuration (the secret is kept apart, sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub active: bool,
    pub headers: BTreeMap<String, String>,
    pub retry_count: u32,
    pub timeout_ms: u32,
    /// Whether deliveries carry the seed's `X-Webhook-Signature` (and `-Previous`), which
    /// covers neither a timestamp nor an id; `false` leaves only `webhook-signature`.
    pub legacy_signature: bool,
    /// `webhook-signature`'s scheme: `v1` (HMAC) or `v1a` (Ed25519; no `X-Webhook-Signature`).
    pub signing: Signing,
    /// Rate limit and ordering (`pacing`).
    pub pacing: Pacing,
}

/// Whether a webhook's sealed values (secrets, header values) open with the keys
/// configured. One row that does not is shown as such, never fails a whole list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SecretStatus {
    #[default]
    Ok,
    /// Tampered, or sealed under a key no longer configured. Its deliveries are not sent;
    /// rotating its secret repairs it (header values that do not open are dropped).
    Undecryptable,
}

impl SecretStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretStatus::Ok => "ok",
            SecretStatus::Undecryptable => "undecryptable",
        }
    }
}

/// A webhook as stored: its configuration plus what the platform keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub id: String,
    pub config: WebhookConfig,
    /// The last characters of the current secret (`None` only for a legacy row without one).
    pub secret_hint: Option<String>,
    pub disabled_reason: Option<String>,
    /// The token `sub` of who created / last changed it (`None` for older rows or a
    /// token without `sub`).
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: crate::core::time::UnixMillis,
    pub updated_at: crate::core::time::UnixMillis,
    /// Endpoint health (SPEC §8.4).
    pub health: crate::core::outbound::health::Health,
    pub secret_status: SecretStatus,
    /// `whpk_…` of the current key pair of an `ed25519` webhook.
    pub public_key: Option<String>,
}

/// A valid partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    /// Replaces the current secret at once (no grace; rotation is the graceful way).
    pub secret: Option<WebhookSecret>,
    pub events: Option<Vec<EventType>>,
    pub active: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
    pub retry_count: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub legacy_signature: Option<bool>,
    /// Another scheme: a new credential of its kind replaces every current one.
    pub signing: Option<Signing>,
    pub pacing: PacingPatch,
}

impl WebhookConfig {
    pub fn apply(mut self, patch: WebhookPatch) -> WebhookConfig {
        if let Some(v) = patch.name { self.name = v; }
        if let Some(v) = patch.url { self.url = v; }
        if let Some(v) = patch.events { self.events = v; }
        if let Some(v) = patch.active { self.active = v; }
        if let Some(v) = patch.headers { self.headers = v; }
        if let Some(v) = patch.retry_count { self.retry_count = v; }
        if let Some(v) = patch.timeout_ms { self.timeout_ms = v; }
        if let Some(v) = patch.legacy_signature { self.legacy_signature = v; }
        if let Some(v) = patch.signing { self.signing = v; }
        self.pacing = self.pacing.apply(&patch.pacing);
        self
    }
}

/// A valid create request: the configuration, and the caller's secret if it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub config: WebhookConfig,
    pub secret: Option<WebhookSecret>,
}

/// Validates a create body; required fields must be present.
pub fn parse_create(obj: &Map<String, Value>, allow_private: bool) -> Result<NewWebhook, FieldErrors> {
    let mut errors = FieldErrors::new();
    for required in ["name", "url", "events"] {
        if !obj.contains_key(required) {
            errors.insert(required.to_string(), "is required".to_string());
        }
    }
    let patch = parse_fields(obj, allow_private, None, &mut errors);
    if patch.secret.is_some() && patch.signing == Some(Signing::Ed25519) {
        errors.insert("secret".into(), NO_SECRET_FOR_ED25519.into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Present because the required fields were checked above.
    let (Some(name), Some(url), Some(events)) = (patch.name, patch.url, patch.events) else {
        return Err(errors);
    };
    let config = WebhookConfig {
        name,
        url,
        events,
        active: patch.active.unwrap_or(true),
        headers: patch.headers.unwrap_or_default(),
        retry_count: patch.retry_count.unwrap_or(DEFAULT_RETRY_COUNT),
        timeout_ms: patch.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        legacy_signature: patch.legacy_signature.unwrap_or(true),
        signing: patch.signing.unwrap_or_default(),
        pacing: Pacing::default().apply(&patch.pacing),
    };
    Ok(NewWebhook { config, secret: patch.secret })
}

/// Validates an update body; every field is optional. `stored` is the webhook's current
/// configuration: a header value sent back masked keeps the stored one, and a `secret`
/// needs the scheme (given or stored) to be `hmac`.
pub fn parse_patch(
    obj: &Map<String, Value>,
    allow_private: bool,
    stored: &WebhookConfig,
) -> Result<WebhookPatch, FieldErrors> {
    let mut errors = FieldErrors::new();
    let patch = parse_fields(obj, allow_private, Some(&stored.headers), &mut errors);
    if patch.secret.is_some() && patch.signing.unwrap_or(stored.signing) == Signing::Ed25519 {
        errors.insert("secret".into(), NO_SECRET_FOR_ED25519.into());
    }
    if errors.is_empty() { Ok(patch) } else { Err(errors) }
}

fn parse_fields(
    obj: &Map<String, Value>,
    allow_private: bool,
    stored: Option<&BTreeMap<String, String>>,
    errors: &mut FieldErrors,
) -> WebhookPatch {
    reject_unknown_fields(obj, FIELDS, errors);
    let mut patch = WebhookPatch::default();
    let mut check = |field: &str, result: Result<(), String>| {
        if let Err(problem) = result {
            errors.insert(field.to_string(), problem);
        }
    };
    if let Some(v) = obj.get("name") {
        check("name", parse_name(v).map(|n| patch.name = Some(n)));
    }
    if let Some(v) = obj.get("url") {
        check("url", parse_url(v, allow_private).map(|u| patch.url = Some(u)));
    }
    if let Some(v) = obj.get("secret") {
        check("secret", parse_secret_value(v).map(|s| patch.secret = Some(s)));
    }
    if let Some(v) = obj.get("events") {
        check("events", parse_events(v).map(|e| patch.events = Some(e)));
    }
    if let Some(v) = obj.get("active") {
        check("active", v.as_bool().map(|b| patch.active = Some(b)).ok_or_else(|| expected("a boolean", v)));
    }
    if let Some(v) = obj.get("headers") {
        check("headers", parse_headers(v, stored).map(|h| patch.headers = Some(h)));
    }
    if let Some(v) = obj.get("retry_count") {
        check("retry_count", parse_integer(v, 0, RETRY_COUNT_MAX).map(|n| patch.retry_count = Some(n)));
    }
    if let Some(v) = obj.get("legacy_signature") {
        check("legacy_signature", v.as_bool().map(|b| patch.legacy_signature = Some(b)).ok_or_else(|| expected("a boolean", v)));
    }
    if let Some(v) = obj.get("signing") {
        let parsed = v.as_str().and_then(Signing::parse).ok_or_else(|| "must be \"hmac\" or \"ed25519\"".to_string());
        check("signing", parsed.map(|s| patch.signing = Some(s)));
    }
    if let Some(v) = obj.get("timeout_ms") {
        check("timeout_ms", parse_integer(v, TIMEOUT_MS_MIN, TIMEOUT_MS_MAX).map(|n| patch.timeout_ms = Some(n)));
    }
    pacing::parse_fields(obj, &mut patch.pacing, errors);
    patch
}

pub(crate) fn expected(what: &str, got: &Value) -> String {
    format!("must be {what}, not {}", type_name(got))
}

fn parse_name(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or_else(|| expected("a string", v))?.trim();
    match s.chars().count() {
        0 => Err("must not be empty".into()),
        n if n > NAME_MAX_CHARS => Err(format!("must be at most {NAME_MAX_CHARS} characters")),
        _ if s.chars().any(char::is_control) => Err("must not contain control characters".into()),
        _ => Ok(s.to_string()),
    }
}

fn parse_url(v: &Value, allow_private: bool) -> Result<String, String> {
    let s = v.as_str().ok_or_else(|| expected("a string", v))?;
    check_target_url(s, allow_private).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// A caller's secret: a string of 16–256 characters. `null` is refused: every webhook
/// has a secret (rotate it instead of removing it).
pub fn parse_secret_value(v: &Value) -> Result<WebhookSecret, String> {
    match v {
        Value::Null => Err("cannot be removed: every webhook is signed; replace it with \
                            POST /api/v1/webhooks/{id}/secret/rotate".into()),
        Value::String(s) => {
            let n = s.chars().count();
            if !(SECRET_MIN_CHARS..=SECRET_MAX_CHARS).contains(&n) {
                Err(format!("must be {SECRET_MIN_CHARS} to {SECRET_MAX_CHARS} characters"))
            } else if s.chars().any(char::is_control) {
                Err("must not contain control characters".into())
            } else {
                Ok(WebhookSecret(s.clone()))
            }
        }
        other => Err(expected("a string", other)),
    }
}

fn parse_events(v: &Value) -> Result<Vec<EventType>, String> {
    let items = v.as_array().ok_or_else(|| expected("an array of event types", v))?;
    if items.is_empty() {
        return Err("must list at least one event type".into());
    }
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let name = item.as_str().ok_or_else(|| format!("items {}", expected("strings", item)))?;
        let event = EventType::parse(name).ok_or_else(|| {
            format!("unknown event type {name:?}; see GET /api/v1/webhooks/events")
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

pub(crate) fn parse_integer(v: &Value, min: u32, max: u32) -> Result<u32, String> {
    let out_of_range = || format!("must be an integer from {min} to {max}");
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(i) if (u64::from(min)..=u64::from(max)).contains(&i) => Ok(i as u32),
            _ => Err(out_of_range()),
        },
        other => Err(expected("an integer", other)),
    }
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= HEADER_NAME_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The stored value a masked `value` stands for: the same header (any case) whose masked
/// rendering is exactly `value`.
fn unmasked<'a>(stored: Option<&'a BTreeMap<String, String>>, name: &str, value: &str) -> Option<&'a String> {
    stored?
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| mask(v) == value)
}

fn parse_headers(v: &Value, stored: Option<&BTreeMap<String, String>>) -> Result<BTreeMap<String, String>, String> {
    let obj = match v {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(obj) => obj,
        other => return Err(expected("an object of header names to string values", other)),
    };
    if obj.len() > MAX_CUSTOM_HEADERS {
        return Err(format!("at most {MAX_CUSTOM_HEADERS} headers"));
    }
    let mut headers = BTreeMap::new();
    let mut seen_lowercase = Vec::new();
    for (name, value) in obj {
        if !is_header_name(name) {
            return Err(format!("{name:?} is not a valid header name"));
        }
        let lower = name.to_ascii_lowercase();
        if is_reserved_header(&lower) {
            return Err(format!("{name:?} is reserved and set by the platform"));
        }
        if seen_lowercase.contains(&lower) {
            return Err(format!("{name:?} is given twice"));
        }
        let value = value.as_str().ok_or_else(|| format!("value of {name:?} {}", expected("a string", value)))?;
        if let Some(kept) = unmasked(stored, name, value) {
            seen_lowercase.push(lower);
            headers.insert(name.clone(), kept.clone());
            continue;
        }
        if value.contains(['\r', '\n', '\0']) {
            return Err(format!("value of {name:?} must not contain CR, LF or NUL"));
        }
        if value.len() > HEADER_VALUE_MAX {
            return Err(format!("value of {name:?} must be at most {HEADER_VALUE_MAX} bytes"));
        }
        // What every HTTP stack sends as it is: a value outside visible ASCII would reach
        // the receiver as bytes it did not expect (a `•` as `â¢`).
        if !value.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b)) {
            return Err(format!("value of {name:?} must be visible ASCII (0x20–0x7E) or tab"));
        }
        seen_lowercase.push(lower);
        headers.insert(name.clone(), value.to_string());
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn cfg() -> WebhookConfig {
        parse_create(&obj(valid()), false).unwrap().config
    }

    fn with_headers(h: &BTreeMap<String, String>) -> WebhookConfig {
        WebhookConfig { headers: h.clone(), ..cfg() }
    }

    fn valid() -> Value {
        json!({"name": "Flights", "url": "https://example.com/hook", "events": ["flight.departed"]})
    }

    fn create_err(v: Value) -> FieldErrors {
        parse_create(&obj(v), false).unwrap_err()
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = valid();
        v[field] = value;
        v
    }

    #[test]
    fn defaults_apply() {
        let NewWebhook { config: c, secret } = parse_create(&obj(valid()), false).unwrap();
        assert!(c.active);
        assert_eq!((c.retry_count, c.timeout_ms), (3, 10_000));
        assert!(c.legacy_signature);
        let off = parse_create(&obj(with("legacy_signature", json!(false))), false).unwrap();
        assert!(!off.config.legacy_signature);
        assert!(create_err(with("legacy_signature", json!("no"))).contains_key("legacy_signature"));
        assert!(secret.is_none() && c.headers.is_empty());
    }

    #[test]
    fn required_fields_are_all_reported() {
        let e = create_err(json!({}));
        assert_eq!(e.keys().collect::<Vec<_>>(), ["events", "name", "url"]);
    }

    #[test]
    fn name_boundaries() {
        assert!(parse_create(&obj(with("name", json!("a".repeat(100)))), false).is_ok());
        assert!(create_err(with("name", json!("a".repeat(101)))).contains_key("name"));
        assert!(create_err(with("name", json!("   "))).contains_key("name"));
        assert_eq!(create_err(with("name", json!(5)))["name"], "must be a string, not a number");
        assert_eq!(create_err(with("name", json!("Fl\u{7}ights")))["name"], "must not contain control characters");
        let c = parse_create(&obj(with("name", json!("  padded  "))), false).unwrap();
        assert_eq!(c.config.name, "padded");
        // 100 multi-byte characters are 100 characters, not 300 bytes.
        assert!(parse_create(&obj(with("name", json!("✈".repeat(100)))), false).is_ok());
    }

    #[test]
    fn retry_count_and_timeout_boundaries() {
        for (field, ok, bad) in [
            ("retry_count", vec![json!(0), json!(10)], vec![json!(-1), json!(11), json!(1.5), json!("3"), json!(null)]),
            ("timeout_ms", vec![json!(1000), json!(30000)], vec![json!(999), json!(30001), json!(1e10), json!(true)]),
        ] {
            for v in ok {
                assert!(parse_create(&obj(with(field, v.clone())), false).is_ok(), "{field}={v}");
            }
            for v in bad {
                assert!(create_err(with(field, v.clone())).contains_key(field), "{field}={v}");
            }
        }
    }

    #[test]
    fn events_rules() {
        assert!(create_err(with("events", json!([]))).contains_key("events"));
        assert!(create_err(with("events", json!(["flight.landed"]))).contains_key("events"));
        assert!(create_err(with("events", json!("flight.departed"))).contains_key("events"));
        assert!(create_err(with("events", json!([1]))).contains_key("events"));
        let c = parse_create(&obj(with("events", json!(["flight.departed", "flight.departed", "invoice.paid"]))), false).unwrap();
        assert_eq!(c.config.events.len(), 2, "duplicates collapse");
    }

    #[test]
    fn secret_rules() {
        assert!(parse_create(&obj(with("secret", json!("a".repeat(16)))), false).is_ok());
        assert!(parse_create(&obj(with("secret", json!("a".repeat(256)))), false).is_ok());
        assert!(create_err(with("secret", json!("a".repeat(15)))).contains_key("secret"));
        assert!(create_err(with("secret", json!("a".repeat(257)))).contains_key("secret"));
        assert!(create_err(with("secret", json!(12345678901234567u64))).contains_key("secret"));
        assert!(create_err(with("secret", json!(null))).contains_key("secret"));
        let secret = WebhookSecret("whsec_abcdefghijklmnop".into());
        assert_eq!(secret.hint(), "…mnop");
        assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
    }

    #[test]
    fn header_rules() {
        let ok = parse_create(&obj(with("headers", json!({"X-Tenant": "fbo-1", "Authorization": "Bearer x"}))), false).unwrap();
        assert_eq!(ok.config.headers.len(), 2);
        for bad in [
            json!({"Content-Type": "text/plain"}),
            json!({"host": "evil"}),
            json!({"User-Agent": "me"}),
            json!({"X-Webhook-Signature": "forged"}),
            json!({"x-webhook-anything": "x"}),
            json!({"webhook-signature": "forged"}),
            json!({"Webhook-Id": "x"}),
            json!({"X-Ok": "a\r\nInjected: yes"}),
            json!({"X-Ok": "a\nb"}),
            json!({"Bad Name": "x"}),
            json!({"": "x"}),
            json!({"X-Num": 5}),
            json!({"X-A": "1", "x-a": "2"}),
            json!(["X-A"]),
        ] {
            assert!(create_err(with("headers", bad.clone())).contains_key("headers"), "{bad}");
        }
        let many: Map<String, Value> = (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        assert!(create_err(with("headers", Value::Object(many))).contains_key("headers"));
        // Values: up to 2,048 bytes; a tab is the one control character allowed.
        let longest = "v".repeat(2048);
        assert!(parse_create(&obj(with("headers", json!({"X-Long": longest}))), false).is_ok());
        let e = create_err(with("headers", json!({"X-Long": format!("{longest}v")})));
        assert!(e["headers"].contains("at most 2048 bytes"), "{}", e["headers"]);
        let tabbed = parse_create(&obj(with("headers", json!({"X-Tab": "a\tb"}))), false).unwrap();
        assert_eq!(tabbed.config.headers["X-Tab"], "a\tb");
        let e = create_err(with("headers", json!({"X-Bell": "a\u{7}b"})));
        assert!(e["headers"].contains("visible ASCII"), "{}", e["headers"]);
        for bad in ["caf\u{e9}", "\u{2022}\u{2022}\u{2022}\u{2022}1234", "a\u{7f}b", "\u{a0}"] {
            let e = create_err(with("headers", json!({"X-Bad": bad})));
            assert!(e["headers"].contains("visible ASCII"), "{bad:?}: {}", e["headers"]);
        }
        let twenty: Map<String, Value> = (0..20).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        assert!(parse_create(&obj(with("headers", Value::Object(twenty))), false).is_ok());
    }

    #[test]
    fn reserved_header_names_in_any_case() {
        for name in [
            "Content-Type", "content-length", "Content-Encoding", "Content-Disposition", "CONTENT-MD5",
            "Host", "User-Agent", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
            "Expect", "Proxy-Authorization", "Proxy-Connection", "proxy-authenticate", "Forwarded",
            "X-Forwarded-For", "x-forwarded-host", "X-Forwarded-Proto", "X-Real-IP", "CF-Connecting-IP",
            "cf-ray", "CF-Worker", "Webhook-Id", "webhook-signature", "Webhook-Timestamp", "X-Webhook-Signature",
            "x-webhook-test",
        ] {
            assert!(is_reserved_header(name), "{name}");
            let e = create_err(with("headers", json!({ name: "v" })));
            assert!(e["headers"].contains("reserved"), "{name}: {}", e["headers"]);
        }
        for name in ["X-Tenant", "Authorization", "X-Api-Key", "Tea", "Teapot", "X-Forwarded", "Contents",
                     "X-Cf-Thing", "Webhooks", "Accept", "X-Real-Ip-Note", "Expected"] {
            assert!(!is_reserved_header(name), "{name}");
            assert!(parse_create(&obj(with("headers", json!({ name: "v" }))), false).is_ok(), "{name}");
        }
    }

    #[test]
    fn url_rules() {
        assert!(create_err(with("url", json!("http://example.com"))).contains_key("url"));
        assert!(create_err(with("url", json!("https://10.0.0.1/x"))).contains_key("url"));
        assert!(create_err(with("url", json!(format!("https://example.com/{}", "a".repeat(2048))))).contains_key("url"));
        assert!(parse_create(&obj(with("url", json!("http://localhost:9000/hook"))), true).is_ok());
    }

    #[test]
    fn unknown_fields_and_several_errors_together() {
        let mut v = with("colour", json!("red"));
        v["retry_count"] = json!(99);
        let e = create_err(v);
        assert_eq!(e.get("colour").map(String::as_str), Some("unknown field"));
        assert!(e.contains_key("retry_count"));
    }

    #[test]
    fn patch_is_partial_and_null_secret_is_refused() {
        let e = parse_patch(&obj(json!({"secret": null, "active": false})), false, &cfg()).unwrap_err();
        assert!(e["secret"].contains("rotate"));
        let p = parse_patch(&obj(json!({"secret": "t".repeat(20), "active": false})), false, &cfg()).unwrap();
        assert_eq!(p.secret.as_ref().map(WebhookSecret::expose), Some("t".repeat(20).as_str()));
        let base = parse_create(&obj(with("secret", json!("s".repeat(20)))), false).unwrap().config;
        let updated = base.clone().apply(p);
        assert!(!updated.active);
        assert_eq!(updated.name, base.name);
        assert!(parse_patch(&obj(json!({"name": null})), false, &cfg()).is_err());
        assert!(parse_patch(&obj(json!({})), false, &cfg()).unwrap() == WebhookPatch::default());
    }

    #[test]
    fn a_masked_value_sent_back_keeps_the_stored_value() {
        let stored = BTreeMap::from([
            ("Authorization".to_string(), "Bearer live-abcdef1234".to_string()),
            ("X-Short".to_string(), "tiny".to_string()),
        ]);
        let body = json!({"headers": {"authorization": "\u{2022}\u{2022}\u{2022}\u{2022}1234",
                                      "X-Short": "\u{2022}\u{2022}\u{2022}\u{2022}", "X-Tenant": "fbo-1"}});
        let p = parse_patch(&obj(body), false, &with_headers(&stored)).unwrap();
        let h = p.headers.unwrap();
        assert_eq!(h["authorization"], "Bearer live-abcdef1234");
        assert_eq!(h["X-Short"], "tiny");
        assert_eq!(h["X-Tenant"], "fbo-1");
        // A mask of other digits, or of a header not stored, is not ASCII: refused.
        for body in [json!({"headers": {"Authorization": "\u{2022}\u{2022}\u{2022}\u{2022}9999"}}),
                     json!({"headers": {"X-New": "\u{2022}\u{2022}\u{2022}\u{2022}1234"}})] {
            assert!(parse_patch(&obj(body), false, &with_headers(&stored)).unwrap_err().contains_key("headers"));
        }
    }

    #[test]
    fn signing_scheme_and_no_secret_for_ed25519() {
        assert_eq!(cfg().signing, Signing::Hmac);
        assert_eq!(parse_create(&obj(with("signing", json!("ed25519"))), false).unwrap().config.signing, Signing::Ed25519);
        for bad in [json!("rsa"), json!(1), json!(null)] {
            assert!(create_err(with("signing", bad)).contains_key("signing"));
        }
        let mut both = with("signing", json!("ed25519"));
        both["secret"] = json!("s".repeat(20));
        assert!(create_err(both).get("secret").unwrap().contains("ed25519"));
        // Update: the scheme given, else the stored one, decides.
        let secret = json!({"secret": "s".repeat(20)});
        let ed = WebhookConfig { signing: Signing::Ed25519, ..cfg() };
        assert!(parse_patch(&obj(secret.clone()), false, &ed).unwrap_err().contains_key("secret"));
        assert!(parse_patch(&obj(secret.clone()), false, &cfg()).is_ok());
        let mut to_ed = secret.clone();
        to_ed["signing"] = json!("ed25519");
        assert!(parse_patch(&obj(to_ed), false, &cfg()).unwrap_err().contains_key("secret"));
        let mut to_hmac = secret;
        to_hmac["signing"] = json!("hmac");
        let p = parse_patch(&obj(to_hmac), false, &ed).unwrap();
        assert_eq!(ed.apply(p).signing, Signing::Hmac);
    }
}
