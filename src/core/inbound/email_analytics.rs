//! Deliverability analytics over a date range (SPEC §5.3): counts per event type and
//! rates.
//!
//! Rates count distinct emails (an email opened five times is one open) among the events
//! that happened in the range:
//! * `delivery` = delivered / sent, `bounce` = bounced / sent;
//! * `complaint`, `open`, `click` = complained, opened, clicked / delivered (the
//!   industry's basis: only a delivered email can be opened or reported).
//!
//! A rate is `null` when its denominator is 0, and rounded to 4 decimals.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::api::error::{ApiError, FieldErrors};
use crate::core::inbound::resend_events::EmailEventType;
use crate::core::time::{format_iso, parse_iso, DateBound, UnixMillis};

/// `date_from` / `date_to` (inclusive, ISO 8601 date or date-time; a bare `date_to`
/// covers its whole day). Both optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<UnixMillis>,
    pub to: Option<UnixMillis>,
}

pub fn parse_range<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<DateRange, ApiError> {
    let mut range = DateRange::default();
    let mut errors = FieldErrors::new();
    for (key, value) in pairs {
        let (slot, bound) = match key {
            "date_from" => (&mut range.from, DateBound::StartOfDay),
            "date_to" => (&mut range.to, DateBound::EndOfDay),
            _ => {
                errors.insert(key.to_string(), "unknown query parameter".into());
                continue;
            }
        };
        if slot.is_some() {
            errors.insert(key.to_string(), "given more than once".into());
            continue;
        }
        match parse_iso(value, bound) {
            Some(t) => *slot = Some(t),
            None => {
                errors.insert(key.to_string(), "must be an ISO 8601 date or date-time".into());
            }
        }
    }
    if let (Some(from), Some(to)) = (range.from, range.to) {
        if from > to {
            errors.insert("date_from".into(), "must not be after date_to".into());
        }
    }
    if errors.is_empty() { Ok(range) } else { Err(ApiError::validation(errors)) }
}

/// What the store counts for one event type in the range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCount {
    pub event_type: String,
    pub events: i64,
    /// Distinct emails with this event.
    pub emails: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Bounces {
    pub hard: i64,
    pub soft: i64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Rates {
    pub delivery: Option<f64>,
    pub bounce: Option<f64>,
    pub complaint: Option<f64>,
    pub open: Option<f64>,
    pub click: Option<f64>,
}

/// The body of `GET /api/v1/email/analytics`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Analytics {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// Events per type (every type present, 0 when none).
    pub counts: BTreeMap<&'static str, i64>,
    /// Distinct emails per type.
    pub unique_emails: BTreeMap<&'static str, i64>,
    pub bounces: Bounces,
    pub rates: Rates,
}

fn rate(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| (numerator as f64 / denominator as f64 * 10_000.0).round() / 10_000.0)
}

pub fn analytics(range: DateRange, rows: &[TypeCount]) -> Analytics {
    let mut counts = BTreeMap::new();
    let mut unique = BTreeMap::new();
    let mut bounces = Bounces { hard: 0, soft: 0 };
    for t in EmailEventType::ALL {
        let (events, emails) = rows
            .iter()
            .filter(|r| r.event_type == t.as_str())
            .fold((0, 0), |(e, m), r| (e + r.events.max(0), m + r.emails.max(0)));
        counts.insert(t.as_str(), events);
        unique.insert(t.as_str(), emails);
    }
    for r in rows.iter().filter(|r| r.event_type == EmailEventType::Bounced.as_str()) {
        bounces.hard += r.hard_bounces.max(0);
        bounces.soft += r.soft_bounces.max(0);
    }
    let n = |t: EmailEventType| unique.get(t.as_str()).copied().unwrap_or(0);
    let (sent, delivered) = (n(EmailEventType::Sent), n(EmailEventType::Delivered));
    let rates = Rates {
        delivery: rate(delivered, sent),
        bounce: rate(n(EmailEventType::Bounced), sent),
        complaint: rate(n(EmailEventType::Complained), delivered),
        open: rate(n(EmailEventType::Opened), delivered),
        click: rate(n(EmailEventType::Clicked), delivered),
    };
    Analytics {
        date_from: range.from.map(format_iso),
        date_to: range.to.map(format_iso),
        counts,
        unique_emails: unique,
        bounces,
        rates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: &str, events: i64, emails: i64) -> TypeCount {
        TypeCount { event_type: t.into(), events, emails, ..TypeCount::default() }
    }

    #[test]
    fn rates_on_a_known_mix() {
        let mut bounced = row("email.bounced", 2, 2);
        bounced.hard_bounces = 1;
        bounced.soft_bounces = 1;
        let rows = [row("email.sent", 10, 10), row("email.delivered", 8, 8), bounced, row("email.opened", 6, 4),
                    row("email.clicked", 3, 2), row("email.complained", 1, 1), row("email.other", 9, 9)];
        let a = analytics(DateRange::default(), &rows);
        assert_eq!(a.counts["email.opened"], 6);
        assert_eq!(a.unique_emails["email.opened"], 4);
        assert_eq!(a.counts["email.suppressed"], 0);
        assert_eq!(a.counts.len(), 8);
        assert_eq!(a.bounces, Bounces { hard: 1, soft: 1 });
        assert_eq!(a.rates, Rates { delivery: Some(0.8), bounce: Some(0.2), complaint: Some(0.125), open: Some(0.5), click: Some(0.25) });
    }

    #[test]
    fn empty_denominators_give_null_rates() {
        let a = analytics(DateRange::default(), &[row("email.opened", 1, 1)]);
        assert_eq!(a.rates, Rates { delivery: None, bounce: None, complaint: None, open: None, click: None });
        assert_eq!(rate(1, 3), Some(0.3333));
    }

    #[test]
    fn ranges() {
        let r = parse_range([("date_from", "2026-01-01"), ("date_to", "2026-01-31")]).unwrap();
        assert_eq!(format_iso(r.to.unwrap()), "2026-01-31T23:59:59.999Z");
        let a = analytics(r, &[]);
        assert_eq!(a.date_from.as_deref(), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(parse_range([]).unwrap(), DateRange::default());
        // One day, or one instant, is a range; only from after to is refused.
        assert!(parse_range([("date_from", "2026-01-01"), ("date_to", "2026-01-01")]).is_ok());
        let instant = "2026-01-01T10:00:00Z";
        let r = parse_range([("date_from", instant), ("date_to", instant)]).unwrap();
        assert_eq!((r.from, r.to), (Some(1_767_261_600_000), Some(1_767_261_600_000)));
        for (pairs, field) in [
            (vec![("date_from", "soon")], "date_from"),
            (vec![("date_to", "2026-02-30")], "date_to"),
            (vec![("date_from", "2026-02-02"), ("date_to", "2026-02-01")], "date_from"),
            (vec![("colour", "red")], "colour"),
            (vec![("date_to", "2026-01-01"), ("date_to", "2026-01-02")], "date_to"),
        ] {
            let e = parse_range(pairs.clone()).unwrap_err();
            assert!(e.fields.unwrap().contains_key(field), "{pairs:?}");
        }
    }
}
