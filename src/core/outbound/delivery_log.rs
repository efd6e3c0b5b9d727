//! Delivery logs (SPEC §4.6): the record of one (event, webhook) delivery, its attempts,
//! and the validated filter of `GET /api/v1/webhooks/logs`.

use crate::core::catalog::EventType;
use crate::core::cursor::{Cursor, MAX_OFFSET};
use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::time::{parse_iso, DateBound, UnixMillis};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Success,
    Failed,
}

impl DeliveryStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
        }
    }
}

/// One delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryLog {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<u32>,
    pub next_attempt_at: Option<UnixMillis>,
    pub redelivery_of: Option<String>,
    /// A test delivery (`POST /api/v1/webhooks/:id/test`).
    pub test: bool,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// The exact body that was (or will be) sent.
    pub payload: Option<String>,
    pub history: Vec<AttemptRecord>,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub attempted_at: UnixMillis,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
    /// The first 2 KiB of the receiver's answer to this attempt.
    pub response_body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub webhook_id: Option<String>,
    pub event_type: Option<EventType>,
    pub status: Option<DeliveryStatus>,
    pub date_from: Option<UnixMillis>,
    pub date_to: Option<UnixMillis>,
    pub limit: u32,
    pub offset: u32,
    /// Continue after this row (same filters); exclusive with `offset`.
    pub cursor: Option<Cursor>,
}

const PARAMS: &[&str] = &["webhook_id", "event_type", "status", "date_from", "date_to", "limit", "offset", "cursor"];

/// Builds a filter from decoded query pairs; every problem is reported by name.
pub fn parse_log_filter<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<LogFilter, ApiError> {
    let mut filter = LogFilter { limit: DEFAULT_LIMIT, ..LogFilter::default() };
    let mut errors = FieldErrors::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        if !PARAMS.contains(&key) {
            errors.insert(key.to_string(), "unknown query parameter".into());
            continue;
        }
        if seen.contains(&key) {
            errors.insert(key.to_string(), "given more than once".into());
            continue;
        }
        seen.push(key);
        let problem = match key {
            "webhook_id" if value.is_empty() || value.len() > 64 => Some("must be a webhook id"),
            "webhook_id" => { filter.webhook_id = Some(value.to_string()); None }
            "event_type" => match EventType::parse(value) {
                Some(t) => { filter.event_type = Some(t); None }
                None => Some("must be an event type of the catalog"),
            },
            "status" => match DeliveryStatus::parse(value) {
                Some(s) => { filter.status = Some(s); None }
                None => Some("must be pending, success or failed"),
            },
            "date_from" => match parse_iso(value, DateBound::StartOfDay) {
                Some(t) => { filter.date_from = Some(t); None }
                None => Some("must be an ISO 8601 date or date-time"),
            },
            "date_to" => match parse_iso(value, DateBound::EndOfDay) {
                Some(t) => { filter.date_to = Some(t); None }
                None => Some("must be an ISO 8601 date or date-time"),
            },
            "limit" => match parse_uint(value) {
                Some(n) if (1..=u64::from(MAX_LIMIT)).contains(&n) => { filter.limit = n as u32; None }
                _ => Some("must be an integer from 1 to 100"),
            },
            "cursor" => match Cursor::decode(value) {
                Some(c) => { filter.cursor = Some(c); None }
                None => Some("must be a next_cursor from a previous page"),
            },
            _ => match parse_uint(value) {
                Some(n) if n <= u64::from(MAX_OFFSET) => { filter.offset = n as u32; None }
                _ => Some("must be an integer from 0 to 10000 (use cursor to go deeper)"),
            },
        };
        if let Some(p) = problem {
            errors.insert(key.to_string(), p.to_string());
        }
    }
    if let (Some(from), Some(to)) = (filter.date_from, filter.date_to) {
        if from > to {
            errors.insert("date_from".into(), "must not be after date_to".into());
        }
    }
    if filter.cursor.is_some() && filter.offset > 0 {
        errors.insert("offset".into(), "cannot be combined with cursor".into());
    }
    if errors.is_empty() { Ok(filter) } else { Err(ApiError::validation(errors)) }
}

fn parse_uint(s: &str) -> Option<u64> {
    // Digits only (no sign, no spaces), at most 12 of them; "" fails to parse.
    if s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<LogFilter, ApiError> {
        parse_log_filter(pairs.iter().copied())
    }

    fn bad_field(pairs: &[(&str, &str)]) -> String {
        let e = parse(pairs).unwrap_err();
        e.fields.unwrap().keys().next().unwrap().clone()
    }

    #[test]
    fn defaults() {
        let f = parse(&[]).unwrap();
        assert_eq!((f.limit, f.offset), (50, 0));
    }

    #[test]
    fn good_filters() {
        let f = parse(&[("status", "failed"), ("limit", "100"), ("offset", "0"), ("date_from", "2026-01-01"),
            ("date_to", "2026-01-01T10:00:00Z"), ("event_type", "invoice.paid"), ("webhook_id", "wh_1")]).unwrap();
        assert_eq!(f.status, Some(DeliveryStatus::Failed));
        assert_eq!(f.limit, 100);
    }

    #[test]
    fn bad_filters_name_their_parameter() {
        for (pairs, field) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "101")], "limit"),
            (vec![("limit", "ten")], "limit"),
            (vec![("offset", "-1")], "offset"),
            (vec![("offset", "1.5")], "offset"),
            (vec![("status", "done")], "status"),
            (vec![("event_type", "flight.landed")], "event_type"),
            (vec![("date_from", "yesterday")], "date_from"),
            (vec![("date_to", "2026-02-30")], "date_to"),
            (vec![("date_from", "2026-02-02"), ("date_to", "2026-02-01")], "date_from"),
            (vec![("colour", "red")], "colour"),
            (vec![("limit", "1"), ("limit", "2")], "limit"),
            (vec![("offset", "10001")], "offset"),
            (vec![("cursor", "not-a-cursor")], "cursor"),
            (vec![("cursor", &Cursor { created_at: 1, id: "dlv_1".into() }.encode()), ("offset", "5")], "offset"),
        ] {
            assert_eq!(bad_field(&pairs), field, "{pairs:?}");
        }
    }

    #[test]
    fn statuses_by_their_spec_names() {
        for (text, status) in [("pending", DeliveryStatus::Pending), ("success", DeliveryStatus::Success), ("failed", DeliveryStatus::Failed)] {
            assert_eq!(DeliveryStatus::parse(text), Some(status));
            assert_eq!(status.as_str(), text);
            assert_eq!(parse(&[("status", text)]).unwrap().status, Some(status));
        }
        assert_eq!(DeliveryStatus::parse("Success"), None);
    }

    #[test]
    fn webhook_ids_of_1_to_64_characters() {
        let longest = format!("wh_{}", "a".repeat(61));
        assert_eq!(parse(&[("webhook_id", &longest)]).unwrap().webhook_id.as_deref(), Some(longest.as_str()));
        assert_eq!(parse(&[("webhook_id", "w")]).unwrap().webhook_id.as_deref(), Some("w"));
        assert_eq!(bad_field(&[("webhook_id", "")]), "webhook_id");
        assert_eq!(bad_field(&[("webhook_id", &format!("{longest}a"))]), "webhook_id");
    }

    #[test]
    fn numbers_are_at_most_12_digits() {
        assert_eq!(parse(&[("limit", "000000000005")]).unwrap().limit, 5);
        assert_eq!(bad_field(&[("limit", "0000000000005")]), "limit");
        assert_eq!(bad_field(&[("limit", "")]), "limit");
        assert_eq!(bad_field(&[("offset", "+5")]), "offset");
        assert_eq!(parse(&[("offset", "10000")]).unwrap().offset, 10_000);
    }

    #[test]
    fn offsets_and_cursors() {
        assert_eq!(parse(&[("offset", "5")]).unwrap().offset, 5);
        let cursor = Cursor { created_at: 1, id: "dlv_1".into() };
        let f = parse(&[("cursor", &cursor.encode()), ("offset", "0")]).unwrap();
        assert_eq!((f.cursor, f.offset), (Some(cursor), 0));
    }

    #[test]
    fn a_range_may_be_one_instant() {
        let at = "2026-01-01T10:00:00Z";
        let f = parse(&[("date_from", at), ("date_to", at)]).unwrap();
        assert_eq!((f.date_from, f.date_to), (Some(1_767_261_600_000), Some(1_767_261_600_000)));
    }
}
