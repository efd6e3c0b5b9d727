//! Recover (SPEC §8.4): which failed deliveries a recovery redelivers, and in what chunks.
//!
//! A recovery names a window of time; every delivery of the webhook that ended `failed`
//! in it gets one redelivery, unless it already has one (pending, successful, or failed
//! itself: then that redelivery is the one a recovery may take), so each event is
//! recovered once per chain. The window cannot start before the log retention.
//! One recovery per webhook runs at a time (`store::recover` holds the webhook). The window is closed at the request (an open `until` is
//! "now"), so redeliveries that fail later never join their own recovery. The work runs
//! in the background, [`CHUNK`] originals per queue message, walking the failed
//! deliveries by (end time, id) with a cursor.
//!
//! Not here: the SQL (`store::recover`), the queue messages (`delivery`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::api::error::FieldErrors;
use crate::core::api::json_body::{reject_unknown_fields, type_name};
use crate::core::time::{parse_iso, DateBound, UnixMillis};

/// Redeliveries created per invocation: one `INSERT … SELECT` of this many rows, then
/// their queue messages in `CHUNK / 100` sends, well inside D1's and the subrequest limits.
pub const CHUNK: u32 = 500;

/// The window of a recovery, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: UnixMillis,
    pub until: UnixMillis,
}

/// Where the previous chunk stopped: the last original's end time and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub at: UnixMillis,
    pub id: String,
}

/// Parses `{"since": ISO, "until"?: ISO}`; `until` defaults to, and is capped at, `now`.
/// `since` must not be before `now - retention_days` (those logs are purged).
pub fn parse_window(body: &Map<String, Value>, now: UnixMillis, retention_days: u32) -> Result<Window, FieldErrors> {
    let mut errors = FieldErrors::new();
    reject_unknown_fields(body, &["since", "until"], &mut errors);
    let mut time = |name: &str, required: bool| match body.get(name) {
        None | Some(Value::Null) if required => {
            errors.insert(name.into(), "is required (an ISO 8601 date-time)".into());
            None
        }
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let bound = if name == "since" { DateBound::StartOfDay } else { DateBound::EndOfDay };
            let parsed = parse_iso(s, bound);
            if parsed.is_none() {
                errors.insert(name.into(), format!("{s:?} is not an ISO 8601 date or date-time"));
            }
            parsed
        }
        Some(other) => {
            errors.insert(name.into(), format!("must be an ISO 8601 string, not {}", type_name(other)));
            None
        }
    };
    let since = time("since", true);
    let until = time("until", false);
    let oldest = now - i64::from(retention_days) * 86_400_000;
    if since.is_some_and(|s| s < oldest) {
        errors.insert("since".into(), format!(
            "must not be before the log retention ({retention_days} days; {})", crate::core::time::format_iso(oldest)));
    }
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            errors.insert("until".into(), "must not be before since".into());
        }
    }
    match since {
        Some(since) if errors.is_empty() => Ok(Window { since, until: until.unwrap_or(now).min(now) }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    const NOW: i64 = 1_775_000_000_000;

    #[test]
    fn windows() {
        let w = parse_window(&obj(json!({"since": "2026-03-01T00:00:00Z"})), NOW, 36_500).unwrap();
        assert_eq!(w, Window { since: 1_772_323_200_000, until: NOW });
        let w = parse_window(&obj(json!({"since": "2026-03-01", "until": "2026-03-01"})), NOW, 36_500).unwrap();
        assert_eq!(w.until - w.since, 86_400_000 - 1, "a bare until covers its whole day");
        // A future until is capped at now: redeliveries never join their own recovery.
        let w = parse_window(&obj(json!({"since": "2026-03-01", "until": "2999-01-01T00:00:00Z"})), NOW, 36_500).unwrap();
        assert_eq!(w.until, NOW);
    }

    #[test]
    fn a_window_of_one_instant_is_allowed() {
        let at = "2026-03-01T12:00:00.000Z";
        let w = parse_window(&obj(json!({"since": at, "until": at})), NOW, 36_500).unwrap();
        assert_eq!(w, Window { since: 1_772_366_400_000, until: 1_772_366_400_000 });
        let e = parse_window(&obj(json!({"since": at, "until": "2026-03-01T11:59:59.999Z"})), NOW, 36_500).unwrap_err();
        assert_eq!(e.get("until").map(String::as_str), Some("must not be before since"));
    }

    #[test]
    fn bad_windows_name_the_field() {
        for (body, field) in [
            (json!({}), "since"),
            (json!({"since": "yesterday"}), "since"),
            (json!({"since": 5}), "since"),
            (json!({"since": "2026-03-02", "until": "2026-03-01T00:00:00Z"}), "until"),
            (json!({"since": "2026-03-02", "until": "2026-13-01"}), "until"),
            (json!({"since": "2026-03-02", "extra": 1}), "extra"),
        ] {
            let e = parse_window(&obj(body.clone()), NOW, 36_500).unwrap_err();
            assert!(e.contains_key(field), "{body}: {e:?}");
        }
    }

    #[test]
    fn since_before_the_retention_is_refused() {
        let e = parse_window(&obj(json!({"since": "1970-01-01"})), NOW, 30).unwrap_err();
        assert!(e["since"].contains("retention (30 days"), "{e:?}");
        let thirty_days_ago = crate::core::time::format_iso(NOW - 30 * 86_400_000);
        assert!(parse_window(&obj(json!({"since": thirty_days_ago})), NOW, 30).is_ok());
    }
}
