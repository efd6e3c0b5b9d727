//! Resend email events (delivered through Svix) parsed into typed values, and the rules
//! that need no storage: tags given as a map or as a list, hard vs soft bounces, and which
//! events put a recipient on the suppression list.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::inbound::payload::{at, clean_id, clip, id, text};
use crate::core::time::{parse_iso, DateBound, UnixMillis};

/// The email event types the service stores (SPEC §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EmailEventType {
    Sent,
    Delivered,
    DeliveryDelayed,
    Bounced,
    Complained,
    Opened,
    Clicked,
    Suppressed,
}

impl EmailEventType {
    pub const ALL: [EmailEventType; 8] = [
        Self::Sent,
        Self::Delivered,
        Self::DeliveryDelayed,
        Self::Bounced,
        Self::Complained,
        Self::Opened,
        Self::Clicked,
        Self::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "email.sent",
            Self::Delivered => "email.delivered",
            Self::DeliveryDelayed => "email.delivery_delayed",
            Self::Bounced => "email.bounced",
            Self::Complained => "email.complained",
            Self::Opened => "email.opened",
            Self::Clicked => "email.clicked",
            Self::Suppressed => "email.suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A hard bounce is permanent (the address does not exist or refuses mail for good) and
/// suppresses the recipient; a soft one is temporary and does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    Hard,
    Soft,
}

impl BounceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }
}

/// Resend reports bounces with SES's vocabulary: `type` `Permanent` | `Transient` |
/// `Undetermined` and a `subType`. `Permanent` (or `hard`) is hard; `Transient`,
/// `Undetermined` (or `soft`) are soft. Without a usable `type`, the permanent sub-types
/// (`NoEmail`, `Suppressed`, `OnAccountSuppressionList`) are hard and anything else soft:
/// a recipient is never suppressed on a guess.
pub fn classify_bounce(kind: Option<&str>, sub_type: Option<&str>) -> BounceClass {
    let lower = |s: Option<&str>| s.map(|s| s.trim().to_ascii_lowercase()).unwrap_or_default();
    match lower(kind).as_str() {
        "permanent" | "hard" => BounceClass::Hard,
        "transient" | "soft" | "undetermined" => BounceClass::Soft,
        _ => match lower(sub_type).as_str() {
            "noemail" | "suppressed" | "onaccountsuppressionlist" | "hard" | "permanent" => BounceClass::Hard,
            _ => BounceClass::Soft,
        },
    }
}

/// Why a recipient is on the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionReason {
    HardBounce,
    Complaint,
    Suppressed,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::Complaint => "complaint",
            Self::Suppressed => "suppressed",
        }
    }
}

/// At most this many tags are read from one email.
const MAX_TAGS: usize = 50;
/// At most this many recipients are kept per event.
const MAX_RECIPIENTS: usize = 50;

/// Resend tags arrive as an object map (`{"workspace_id": "ws_a"}`) or as a list of
/// `{"name", "value"}`; both become a map. Non-string scalar values are stringified,
/// anything else is skipped.
pub fn parse_tags(v: Option<&Value>) -> BTreeMap<String, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let pairs: Vec<(String, String)> = match v {
        Some(Value::Object(map)) => map.iter().filter_map(|(k, v)| Some((k.clone(), scalar(v)?))).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| Some((item.get("name")?.as_str()?.to_string(), scalar(item.get("value")?)?)))
            .collect(),
        _ => Vec::new(),
    };
    // Inserted one by one (a later duplicate name wins, as with `collect`): a `collect` into
    // a `BTreeMap` brings a stable sort into the wasm (several KB).
    let mut tags = BTreeMap::new();
    for (k, v) in pairs.into_iter().take(MAX_TAGS).filter_map(|(k, v)| Some((clip(&k)?, clip(&v)?))) {
        tags.insert(k, v);
    }
    tags
}

/// `"Ann <Ann@Example.com>"` → `ann@example.com`; anything that is not an address → `None`.
pub fn normalize_address(raw: &str) -> Option<String> {
    let inner = match (raw.rfind('<'), raw.rfind('>')) {
        // A '>' before the '<' is no range: `get` refuses it, and so is the address.
        (Some(open), Some(close)) => raw.get(open + 1..close)?,
        _ => raw,
    };
    // ASCII folding: addresses on the wire are ASCII (IDN domains travel as punycode).
    let address = inner.trim().to_ascii_lowercase();
    let (local, domain) = address.split_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && address.len() <= 320
        && !address.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    valid.then_some(address)
}

/// One stored email event.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailEvent {
    pub event_type: EmailEventType,
    pub email_id: Option<String>,
    /// From the `workspace_id` tag.
    pub workspace_id: Option<String>,
    pub from: Option<String>,
    /// Normalized recipient addresses.
    pub to: Vec<String>,
    pub subject: Option<String>,
    /// When the event happened (the event's `created_at`).
    pub occurred_at: UnixMillis,
    /// When the email was created (`data.created_at`).
    pub email_created_at: Option<UnixMillis>,
    pub tags: BTreeMap<String, String>,
    pub bounce: Option<BounceClass>,
    /// Type-specific detail (bounce, click, open, suppression…) as a JSON object.
    pub detail: Value,
}

impl EmailEvent {
    /// Hard bounces, complaints and suppressions put the recipients on the list.
    pub fn suppression(&self) -> Option<SuppressionReason> {
        match self.event_type {
            EmailEventType::Bounced if self.bounce == Some(BounceClass::Hard) => Some(SuppressionReason::HardBounce),
            EmailEventType::Complained => Some(SuppressionReason::Complaint),
            EmailEventType::Suppressed => Some(SuppressionReason::Suppressed),
            _ => None,
        }
    }

    /// What the suppression list says about it: the provider's message, if any.
    pub fn suppression_detail(&self) -> Option<String> {
        ["bounce", "suppressed", "complaint", "failed"]
            .iter()
            .find_map(|key| self.detail.get(*key))
            .and_then(|d| d.get("message").or_else(|| d.get("type")).or_else(|| d.get("feedbackType")))
            .and_then(Value::as_str)
            .and_then(clip)
    }
}

/// A verified Resend delivery: its type and, for the handled types, the event.
#[derive(Debug, Clone, PartialEq)]
pub struct ResendEnvelope {
    pub event_type: String,
    /// `Ok(None)`: a type the service does not store; `Err`: a handled type it cannot use.
    pub event: Result<Option<EmailEvent>, String>,
}

/// Sub-objects of `data` kept as the event's detail, by Resend's names.
const DETAIL_KEYS: &[&str] = &["bounce", "click", "open", "complaint", "suppressed", "delivery_delayed", "failed"];

/// Parses a verified body. Not JSON → `invalid_json`; no `type` → `validation_error`.
pub fn parse(body: &[u8], received_at: UnixMillis) -> Result<ResendEnvelope, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("event is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::invalid_json("event must be a JSON object"));
    }
    let event_type = id(&v, &["type"]).ok_or_else(|| {
        ApiError::validation(FieldErrors::from([("type".to_string(), "is required in a Resend event".to_string())]))
    })?;
    let event = match EmailEventType::parse(&event_type) {
        None => Ok(None),
        Some(kind) => email_event(kind, &v, received_at).map(Some),
    };
    Ok(ResendEnvelope { event_type, event })
}

fn email_event(kind: EmailEventType, v: &Value, received_at: UnixMillis) -> Result<EmailEvent, String> {
    let data = v.get("data").filter(|d| d.is_object()).ok_or("event without a data object")?;
    let time = |path: &[&str]| text(v, path).and_then(|t| parse_iso(&t, DateBound::StartOfDay));
    let tags = parse_tags(data.get("tags"));
    let recipients: Vec<String> = match data.get("to") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).filter_map(normalize_address).collect(),
        Some(Value::String(s)) => s.split(',').filter_map(normalize_address).collect(),
        _ => Vec::new(),
    };
    let bounce = (kind == EmailEventType::Bounced).then(|| {
        classify_bounce(
            at(data, &["bounce", "type"]).and_then(Value::as_str),
            at(data, &["bounce", "subType"]).or_else(|| at(data, &["bounce", "sub_type"])).and_then(Value::as_str),
        )
    });
    let mut detail = Map::new();
    for key in DETAIL_KEYS {
        if let Some(value) = data.get(*key).filter(|d| !d.is_null()) {
            detail.insert((*key).to_string(), value.clone());
        }
    }
    if let Some(class) = bounce {
        detail.insert("bounce_class".into(), json!(class.as_str()));
    }
    Ok(EmailEvent {
        event_type: kind,
        email_id: id(data, &["email_id"]),
        workspace_id: tags.get("workspace_id").and_then(|w| clean_id(w)),
        from: text(data, &["from"]),
        to: recipients.into_iter().take(MAX_RECIPIENTS).collect(),
        subject: text(data, &["subject"]),
        occurred_at: time(&["created_at"]).or_else(|| time(&["data", "created_at"])).unwrap_or(received_at),
        email_created_at: time(&["data", "created_at"]),
        tags,
        bounce,
        detail: Value::Object(detail),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(v: Value) -> ResendEnvelope {
        parse(v.to_string().as_bytes(), 42).unwrap()
    }

    fn bounced(bounce: Value) -> EmailEvent {
        parse_json(json!({"type": "email.bounced", "created_at": "2026-01-05T10:00:00.000Z",
            "data": {"email_id": "em_1", "to": ["a@x.com"], "tags": {"workspace_id": "ws_a"}, "bounce": bounce}}))
        .event.unwrap().unwrap()
    }

    #[test]
    fn tags_as_a_map_or_as_a_list() {
        let map = parse_tags(Some(&json!({"workspace_id": "ws_a", "n": 5, "nested": {"x": 1}})));
        assert_eq!(map.get("workspace_id").map(String::as_str), Some("ws_a"));
        assert_eq!(map.get("n").map(String::as_str), Some("5"));
        assert!(!map.contains_key("nested"));
        let flags = parse_tags(Some(&json!({"vip": true, "test": false, "none": null})));
        assert_eq!(flags.get("vip").map(String::as_str), Some("true"));
        assert_eq!(flags.get("test").map(String::as_str), Some("false"));
        assert!(!flags.contains_key("none"));
        let list = parse_tags(Some(&json!([{"name": "workspace_id", "value": "ws_b"}, {"name": "x"}, "junk", {"value": "y"}])));
        assert_eq!(list.len(), 1);
        assert_eq!(list.get("workspace_id").map(String::as_str), Some("ws_b"));
        assert!(parse_tags(Some(&json!("nope"))).is_empty());
        assert!(parse_tags(None).is_empty());
    }

    #[test]
    fn bounce_classes() {
        use BounceClass::*;
        assert_eq!(classify_bounce(Some("Permanent"), Some("General")), Hard);
        assert_eq!(classify_bounce(Some("hard"), None), Hard);
        assert_eq!(classify_bounce(Some("Transient"), Some("MailboxFull")), Soft);
        assert_eq!(classify_bounce(Some("Undetermined"), Some("Undetermined")), Soft);
        assert_eq!(classify_bounce(None, Some("NoEmail")), Hard);
        assert_eq!(classify_bounce(None, Some("OnAccountSuppressionList")), Hard);
        assert_eq!(classify_bounce(None, Some("General")), Soft);
        assert_eq!(classify_bounce(None, None), Soft);
        // A usable `type` decides before the sub-type does.
        assert_eq!(classify_bounce(Some("Transient"), Some("NoEmail")), Soft);
        assert_eq!(classify_bounce(Some(" soft "), Some("Suppressed")), Soft);
        assert_eq!(classify_bounce(Some("Undetermined"), Some("OnAccountSuppressionList")), Soft);
        assert_eq!(classify_bounce(Some("Permanent"), Some("MailboxFull")), Hard);
        assert_eq!(bounced(json!({"type": "Permanent", "subType": "General", "message": "no such user"})).suppression(),
                   Some(SuppressionReason::HardBounce));
        let soft = bounced(json!({"type": "Transient", "subType": "MailboxFull"}));
        assert_eq!((soft.bounce, soft.suppression()), (Some(Soft), None));
        assert_eq!(soft.detail["bounce_class"], "soft");
        assert_eq!(soft.detail["bounce"]["subType"], "MailboxFull");
        let hard = bounced(json!({"type": "Permanent", "message": "550 no such user"}));
        assert_eq!(hard.suppression_detail().as_deref(), Some("550 no such user"));
    }

    #[test]
    fn addresses_are_normalized() {
        assert_eq!(normalize_address("Ann <Ann@Example.COM>").as_deref(), Some("ann@example.com"));
        assert_eq!(normalize_address(" bob@x.io ").as_deref(), Some("bob@x.io"));
        assert_eq!(normalize_address("not an address"), None);
        assert_eq!(normalize_address("@x.io"), None);
        assert_eq!(normalize_address("a b@x.io"), None);
        assert_eq!(normalize_address("x> ann@x.io <y"), None);
        assert_eq!(normalize_address("<>"), None);
        for bad in ["a\u{1}b@x.io", "a<b@x.io", "a>b@x.io", "Ann <a>b@x.io>"] {
            assert_eq!(normalize_address(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_address("Ann <ann@x.io"), None);
    }

    #[test]
    fn a_full_event() {
        let e = parse_json(json!({"type": "email.clicked", "created_at": "2026-01-05T10:00:00.000Z",
            "data": {"email_id": "em_1", "from": "Acme <no-reply@acme.com>", "to": ["Ann <ann@x.com>", "bad"],
                     "subject": "Hi", "created_at": "2026-01-05T09:59:59.894719+00:00",
                     "tags": [{"name": "workspace_id", "value": "ws_a"}],
                     "click": {"ipAddress": "1.2.3.4", "link": "https://x.com", "timestamp": "2026-01-05T10:00:00Z", "userAgent": "UA"}}}));
        assert_eq!(e.event_type, "email.clicked");
        let ev = e.event.unwrap().unwrap();
        assert_eq!(ev.to, vec!["ann@x.com"]);
        assert_eq!(ev.workspace_id.as_deref(), Some("ws_a"));
        assert_eq!(ev.occurred_at, parse_iso("2026-01-05T10:00:00Z", DateBound::StartOfDay).unwrap());
        assert_eq!(ev.email_created_at, parse_iso("2026-01-05T09:59:59.894Z", DateBound::StartOfDay));
        assert_eq!(ev.detail["click"]["link"], "https://x.com");
        assert_eq!(ev.suppression(), None);
    }

    #[test]
    fn recipients_as_a_list_or_as_one_comma_separated_string() {
        let e = parse_json(json!({"type": "email.sent", "created_at": "2026-01-05T10:00:00Z",
            "data": {"to": "a@x.com, Ann <B@Y.io>, nobody"}}));
        assert_eq!(e.event.unwrap().unwrap().to, vec!["a@x.com", "b@y.io"]);
    }

    #[test]
    fn suppression_reasons_as_stored() {
        // The `reason` of `GET /api/v1/email/suppressions` (docs/api.md).
        assert_eq!(SuppressionReason::HardBounce.as_str(), "hard_bounce");
        assert_eq!(SuppressionReason::Complaint.as_str(), "complaint");
        assert_eq!(SuppressionReason::Suppressed.as_str(), "suppressed");
    }

    #[test]
    fn complaints_and_suppressions_suppress() {
        for (kind, reason) in [("email.complained", SuppressionReason::Complaint), ("email.suppressed", SuppressionReason::Suppressed)] {
            let e = parse_json(json!({"type": kind, "created_at": "2026-01-05T10:00:00Z", "data": {"to": "x@y.z"}}));
            assert_eq!(e.event.unwrap().unwrap().suppression(), Some(reason));
        }
    }

    #[test]
    fn unknown_malformed_and_untimed_events() {
        assert_eq!(parse_json(json!({"type": "contact.created", "data": {}})).event, Ok(None));
        assert!(parse_json(json!({"type": "email.sent", "data": "x"})).event.is_err());
        let untimed = parse_json(json!({"type": "email.sent", "data": {}})).event.unwrap().unwrap();
        assert_eq!((untimed.occurred_at, untimed.workspace_id), (42, None));
        assert_eq!(parse(b"{}", 0).unwrap_err().code, "validation_error");
        assert_eq!(parse(b"x", 0).unwrap_err().code, "invalid_json");
    }
}
