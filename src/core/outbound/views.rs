//! Response shapes of the management API, separate from stored rows.
//!
//! Secrets never appear here, except once in the response that created a webhook
//! (`secret`): a webhook renders `has_secret` and `secret_hint` only, and its custom
//! header values as the viewer may see them (`masking`: admins all but credential-like
//! ones, managers none); response excerpts hide those values too.
//! Log lists carry no payload and no attempt history, so a page stays small whatever the
//! payloads weigh (SPEC §8.3); one log's detail carries both, and the headers sent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::core::catalog::EventType;
use crate::core::cursor::{capped_total, Cursor};
use crate::core::outbound::health::{self, Health};
use crate::core::outbound::delivery_log::{AttemptRecord, DeliveryLog};
use crate::core::outbound::masking::{mask_excerpt, shown_custom, shown_value, Viewer};
use crate::core::time::format_iso;
use crate::core::outbound::webhook::StoredWebhook;

#[derive(Serialize)]
pub struct WebhookView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub url: &'a str,
    pub events: &'a [EventType],
    pub active: bool,
    /// Values of credential-like names masked (`"••••" + last 4`).
    pub headers: BTreeMap<&'a str, String>,
    pub retry_count: u32,
    pub timeout_ms: u32,
    pub legacy_signature: bool,
    /// `"hmac"` or `"ed25519"`.
    pub signing: &'static str,
    /// `whpk_…` for an `ed25519` webhook, `null` otherwise; shown at any time.
    pub public_key: Option<&'a str>,
    pub rate_limit_per_second: Option<u32>,
    pub ordering: &'static str,
    pub has_secret: bool,
    pub secret_hint: Option<&'a str>,
    /// Only in the 201 of a create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
    pub disabled_reason: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub updated_by: Option<&'a str>,
    pub created_at: String,
    pub updated_at: String,
    pub health: HealthView,
    /// `"ok"`, or `"undecryptable"` when its sealed values do not open (rotate to repair).
    pub secret_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_logs: Option<Vec<LogView<'a>>>,
}

/// `health` of a webhook (SPEC §8.4).
#[derive(Serialize)]
pub struct HealthView {
    pub state: &'static str,
    pub consecutive_failures: u32,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    pub breaker_open_until: Option<String>,
}

impl HealthView {
    pub fn new(h: &Health, active: bool) -> Self {
        HealthView {
            state: health::state(h, active),
            consecutive_failures: h.consecutive_failures,
            last_success_at: h.last_success_at.map(format_iso),
            last_failure_at: h.last_failure_at.map(format_iso),
            breaker_open_until: h.breaker_open_until.map(format_iso),
        }
    }
}

/// The headers as `viewer` may see them. Inserted one by one rather than collected: a
/// `collect` into a `BTreeMap` brings a stable sort into the wasm (several KB).
fn shown_headers(headers: &BTreeMap<String, String>, viewer: Viewer) -> BTreeMap<&str, String> {
    let mut shown = BTreeMap::new();
    for (name, value) in headers {
        shown.insert(name.as_str(), shown_custom(viewer, name, value));
    }
    shown
}

impl<'a> WebhookView<'a> {
    pub fn new(w: &'a StoredWebhook, viewer: Viewer) -> Self {
        WebhookView {
            id: &w.id,
            name: &w.config.name,
            url: &w.config.url,
            events: &w.config.events,
            active: w.config.active,
            headers: shown_headers(&w.config.headers, viewer),
            retry_count: w.config.retry_count,
            timeout_ms: w.config.timeout_ms,
            legacy_signature: w.config.legacy_signature,
            signing: w.config.signing.as_str(),
            public_key: w.public_key.as_deref(),
            rate_limit_per_second: w.config.pacing.rate_limit_per_second,
            ordering: w.config.pacing.ordering.as_str(),
            has_secret: w.secret_hint.is_some(),
            secret_hint: w.secret_hint.as_deref(),
            secret: None,
            disabled_reason: w.disabled_reason.as_deref(),
            created_by: w.created_by.as_deref(),
            updated_by: w.updated_by.as_deref(),
            created_at: format_iso(w.created_at),
            updated_at: format_iso(w.updated_at),
            health: HealthView::new(&w.health, w.config.active),
            secret_status: w.secret_status.as_str(),
            recent_logs: None,
        }
    }
}

#[derive(Serialize)]
pub struct AttemptView<'a> {
    pub attempt: u32,
    pub attempted_at: String,
    pub response_status: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: u32,
    pub response_body: Option<Cow<'a, str>>,
}

/// Who reads a log, and the webhook's custom headers to hide from its excerpts.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub custom: &'a BTreeMap<String, String>,
    pub viewer: Viewer,
}

impl Reader<'_> {
    fn excerpt<'b>(&self, body: Option<&'b str>) -> Option<Cow<'b, str>> {
        body.map(|b| mask_excerpt(b, self.custom, self.viewer))
    }
}

impl<'a> AttemptView<'a> {
    fn new(a: &'a AttemptRecord, reader: Reader<'_>) -> Self {
        AttemptView {
            attempt: a.attempt,
            attempted_at: format_iso(a.attempted_at),
            response_status: a.response_status,
            error: a.error.as_deref(),
            duration_ms: a.duration_ms,
            response_body: reader.excerpt(a.response_body.as_deref()),
        }
    }
}

/// A log in a list: its state, without payload or attempt history.
#[derive(Serialize)]
pub struct LogView<'a> {
    pub id: &'a str,
    pub webhook_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub status: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    pub response_status: Option<u16>,
    pub response_body: Option<Cow<'a, str>>,
    pub error: Option<&'a str>,
    pub duration_ms: Option<u32>,
    pub next_attempt_at: Option<String>,
    pub redelivery_of: Option<&'a str>,
    /// Sent by `POST /api/v1/webhooks/:id/test`.
    pub test: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl<'a> LogView<'a> {
    pub fn new(log: &'a DeliveryLog) -> Self {
        LogView {
            id: &log.id,
            webhook_id: &log.webhook_id,
            event_id: &log.event_id,
            event_type: &log.event_type,
            status: log.status.as_str(),
            attempts: log.attempts,
            max_attempts: log.max_attempts,
            response_status: log.response_status,
            response_body: log.response_body.as_deref().map(Cow::Borrowed),
            error: log.error.as_deref(),
            duration_ms: log.duration_ms,
            next_attempt_at: log.next_attempt_at.map(format_iso),
            redelivery_of: log.redelivery_of.as_deref(),
            test: log.test,
            created_at: format_iso(log.created_at),
            updated_at: format_iso(log.updated_at),
        }
    }
    /// The log with its excerpt masked for `reader`.
    pub fn read_by(log: &'a DeliveryLog, reader: Reader<'_>) -> Self {
        LogView { response_body: reader.excerpt(log.response_body.as_deref()), ..LogView::new(log) }
    }
}

/// One header as a response shows it (secret-bearing values masked).
#[derive(Serialize)]
pub struct HeaderView {
    pub name: String,
    pub value: String,
}

/// One log in full: the list fields, the delivered body, the headers of its latest
/// attempt and every attempt.
#[derive(Serialize)]
pub struct LogDetailView<'a> {
    #[serde(flatten)]
    pub log: LogView<'a>,
    /// The body that was sent, as JSON (not a string holding JSON).
    pub payload: Option<&'a RawValue>,
    pub request_headers: Vec<HeaderView>,
    pub attempt_history: Vec<AttemptView<'a>>,
}

impl<'a> LogDetailView<'a> {
    /// `payload` is the log's stored body parsed by the caller; `headers` are the
    /// headers the sender builds for it, shown here with secret-bearing values masked.
    /// Custom headers (those in `reader.custom`) are shown as the reader may see them.
    pub fn new(log: &'a DeliveryLog, payload: Option<&'a RawValue>, headers: &[(String, String)], reader: Reader<'_>) -> Self {
        LogDetailView {
            log: LogView::read_by(log, reader),
            payload,
            request_headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = if reader.custom.contains_key(name) {
                        shown_custom(reader.viewer, name, value)
                    } else {
                        shown_value(name, value)
                    };
                    HeaderView { name: name.clone(), value }
                })
                .collect(),
            attempt_history: log.history.iter().map(|a| AttemptView::new(a, reader)).collect(),
        }
    }
}

/// A log's stored payload as a `RawValue` borrowed from the log (kept verbatim, not copied).
pub fn parse_payload(log: &DeliveryLog) -> Option<&RawValue> {
    log.payload.as_deref().and_then(|p| serde_json::from_str(p).ok())
}

/// Renders logs for a list.
pub fn log_views(logs: &[DeliveryLog]) -> Vec<LogView<'_>> {
    logs.iter().map(LogView::new).collect()
}

/// Renders one webhook's logs for `reader` (excerpts masked).
pub fn log_views_for<'a>(logs: &'a [DeliveryLog], reader: Reader<'_>) -> Vec<LogView<'a>> {
    logs.iter().map(|l| LogView::read_by(l, reader)).collect()
}

/// A page of logs: `total` exact up to 10,000 (then `total_capped`), `next_cursor` to
/// continue with the same filters (`null` on the last page).
#[derive(Serialize)]
pub struct LogPage<'a> {
    pub data: Vec<LogView<'a>>,
    pub total: u64,
    pub total_capped: bool,
    pub limit: u32,
    pub offset: u32,
    pub next_cursor: Option<String>,
}

impl<'a> LogPage<'a> {
    /// `counted` is the filter's row count (up to the cap + 1); `more` whether rows follow.
    pub fn new(logs: &'a [DeliveryLog], counted: u64, more: bool, limit: u32, offset: u32) -> Self {
        let (total, total_capped) = capped_total(counted);
        LogPage {
            data: log_views(logs),
            total,
            total_capped,
            limit,
            offset,
            next_cursor: more.then(|| logs.last()).flatten().map(|l| next_cursor(l.created_at, &l.id)),
        }
    }
}

/// A page of webhooks: `next_cursor` continues the list (`null` on the last page).
#[derive(Serialize)]
pub struct WebhookPage<'a> {
    pub data: Vec<WebhookView<'a>>,
    pub next_cursor: Option<String>,
}

/// A cursor naming the row after which the next page starts.
pub fn next_cursor(created_at: i64, id: &str) -> String {
    Cursor { created_at, id: id.to_string() }.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::outbound::webhook::WebhookConfig;

    #[test]
    fn webhook_view_masks_credential_like_header_values() {
        let headers = BTreeMap::from([
            ("Authorization".to_string(), "Bearer sk_live_abcdefgh9876".to_string()),
            ("X-Api-Key".to_string(), "key_0123456789".to_string()),
            ("X-Tenant".to_string(), "fbo-42".to_string()),
        ]);
        let w = StoredWebhook {
            id: "wh_1".into(),
            config: WebhookConfig {
                name: "n".into(), url: "https://example.com".into(), events: vec![], active: true, headers,
                retry_count: 3, timeout_ms: 10_000, legacy_signature: true, signing: Default::default(), pacing: Default::default(),
            },
            secret_hint: Some("…abcd".into()),
            disabled_reason: None,
            created_by: Some("usr_1".into()),
            updated_by: None,
            created_at: 0,
            updated_at: 0,
            health: Default::default(),
            secret_status: Default::default(),
            public_key: None,
        };
        let v = serde_json::to_value(WebhookView::new(&w, Viewer::Admin)).unwrap();
        assert_eq!(v["secret_status"], "ok");
        assert_eq!(v["headers"]["Authorization"], "••••9876");
        assert_eq!(v["headers"]["X-Api-Key"], "••••6789");
        assert_eq!(v["headers"]["X-Tenant"], "fbo-42");
        assert_eq!(v["created_by"], "usr_1");
        assert!(v["updated_by"].is_null());
    }

    fn log(id: &str, created_at: i64, payload: Option<&str>) -> DeliveryLog {
        use crate::core::outbound::delivery_log::DeliveryStatus;
        DeliveryLog {
            id: id.into(), webhook_id: "wh_1".into(), event_id: "evt_1".into(), event_type: "flight.departed".into(),
            status: DeliveryStatus::Success, attempts: 1, max_attempts: 4, response_status: Some(200),
            response_body: Some("ok".into()), error: None, duration_ms: Some(12), next_attempt_at: None, redelivery_of: None,
            test: false, created_at, updated_at: created_at, payload: payload.map(str::to_string), history: vec![],
        }
    }

    #[test]
    fn a_log_page_lists_every_log_and_continues_after_the_last() {
        let logs = [log("dlv_a", 1_700_000_000_000, None), log("dlv_b", 1_700_000_000_500, None)];
        let page = serde_json::to_value(LogPage::new(&logs, 2, true, 2, 0)).unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["data"][1]["id"], "dlv_b");
        assert_eq!(page["data"][1]["status"], "success");
        let cursor = Cursor::decode(page["next_cursor"].as_str().unwrap()).unwrap();
        assert_eq!(cursor, Cursor { created_at: 1_700_000_000_500, id: "dlv_b".into() });
        assert_eq!((page["total"].as_u64(), page["total_capped"].as_bool()), (Some(2), Some(false)));
        let last = serde_json::to_value(LogPage::new(&logs, 2, false, 2, 0)).unwrap();
        assert!(last["next_cursor"].is_null());
    }

    #[test]
    fn the_payload_is_the_stored_text_verbatim() {
        let body = r#"{"type":"flight.departed","data":{ "n": 1.50 }}"#;
        let stored = log("dlv_a", 0, Some(body));
        assert_eq!(parse_payload(&stored).map(RawValue::get), Some(body));
        assert!(parse_payload(&log("dlv_b", 0, None)).is_none());
        assert!(parse_payload(&log("dlv_c", 0, Some("{not json"))).is_none());
    }
}
