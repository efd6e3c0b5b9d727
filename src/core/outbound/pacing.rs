//! A webhook's pacing settings (SPEC §9.3): `rate_limit_per_second` (1–1000 or `null`)
//! and `ordering` (`"none"` or `"fifo"`), validated for create and update. A webhook with
//! either set is *scheduled*: its deliveries go out through its endpoint's scheduler
//! (`fifo`, `rate_limit`); one with neither never meets a scheduler.

use serde_json::{Map, Value};

use crate::core::api::error::FieldErrors;
use crate::core::outbound::fifo::Ordering;
use crate::core::outbound::rate_limit::{RATE_MAX, RATE_MIN};
use crate::core::outbound::webhook::{expected, parse_integer};

pub const RATE_FIELD: &str = "rate_limit_per_second";
pub const ORDERING_FIELD: &str = "ordering";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pacing {
    pub rate_limit_per_second: Option<u32>,
    pub ordering: Ordering,
}

impl Pacing {
    /// Whether the endpoint's deliveries go through its scheduler.
    pub fn is_scheduled(&self) -> bool {
        self.rate_limit_per_second.is_some() || self.ordering == Ordering::Fifo
    }

    pub fn apply(self, patch: &PacingPatch) -> Pacing {
        Pacing {
            rate_limit_per_second: patch.rate_limit_per_second.unwrap_or(self.rate_limit_per_second),
            ordering: patch.ordering.unwrap_or(self.ordering),
        }
    }

    /// From stored columns; values outside the rules (a hand-edited row) mean no limit.
    pub fn from_stored(rate: Option<i64>, ordering: Option<&str>) -> Pacing {
        Pacing {
            rate_limit_per_second: rate
                .filter(|r| (i64::from(RATE_MIN)..=i64::from(RATE_MAX)).contains(r))
                .map(|r| r as u32),
            ordering: ordering.and_then(Ordering::parse).unwrap_or_default(),
        }
    }
}

/// A valid partial update: `None` leaves a field as it is; `Some(None)` removes the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacingPatch {
    pub rate_limit_per_second: Option<Option<u32>>,
    pub ordering: Option<Ordering>,
}

impl PacingPatch {
    pub fn is_empty(&self) -> bool {
        self.rate_limit_per_second.is_none() && self.ordering.is_none()
    }
}

/// Reads the two fields of a create or update body into `patch`, reporting problems.
pub fn parse_fields(obj: &Map<String, Value>, patch: &mut PacingPatch, errors: &mut FieldErrors) {
    if let Some(v) = obj.get(RATE_FIELD) {
        let parsed = match v {
            Value::Null => Ok(None),
            other => parse_integer(other, RATE_MIN, RATE_MAX).map(Some),
        };
        match parsed {
            Ok(rate) => patch.rate_limit_per_second = Some(rate),
            Err(problem) => {
                errors.insert(RATE_FIELD.into(), format!("{problem}, or null for no limit"));
            }
        }
    }
    if let Some(v) = obj.get(ORDERING_FIELD) {
        match v.as_str().map(Ordering::parse) {
            Some(Some(o)) => patch.ordering = Some(o),
            Some(None) => {
                errors.insert(ORDERING_FIELD.into(), "must be \"none\" or \"fifo\"".into());
            }
            None => {
                errors.insert(ORDERING_FIELD.into(), expected("a string", v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> (PacingPatch, FieldErrors) {
        let mut patch = PacingPatch::default();
        let mut errors = FieldErrors::new();
        parse_fields(v.as_object().expect("object"), &mut patch, &mut errors);
        (patch, errors)
    }

    #[test]
    fn rate_bounds_and_null() {
        for ok in [1, 1000] {
            assert_eq!(parse(json!({"rate_limit_per_second": ok})).0.rate_limit_per_second, Some(Some(ok)));
        }
        assert_eq!(parse(json!({"rate_limit_per_second": null})).0.rate_limit_per_second, Some(None));
        for bad in [json!(0), json!(1001), json!(-1), json!(2.5), json!("5"), json!(true), json!(1e10)] {
            let (_, e) = parse(json!({"rate_limit_per_second": bad}));
            assert!(e.contains_key(RATE_FIELD), "{bad}");
        }
    }

    #[test]
    fn ordering_values() {
        assert_eq!(parse(json!({"ordering": "fifo"})).0.ordering, Some(Ordering::Fifo));
        assert_eq!(parse(json!({"ordering": "none"})).0.ordering, Some(Ordering::None));
        for bad in [json!("FIFO"), json!(""), json!(null), json!(1), json!(["fifo"])] {
            assert!(parse(json!({"ordering": bad})).1.contains_key(ORDERING_FIELD), "{bad}");
        }
    }

    #[test]
    fn scheduled_when_either_is_set_and_patches_apply() {
        assert!(!Pacing::default().is_scheduled());
        let limited = Pacing::default().apply(&PacingPatch { rate_limit_per_second: Some(Some(5)), ordering: None });
        assert!(limited.is_scheduled());
        let fifo = Pacing::default().apply(&PacingPatch { rate_limit_per_second: None, ordering: Some(Ordering::Fifo) });
        assert!(fifo.is_scheduled());
        let cleared = limited.apply(&PacingPatch { rate_limit_per_second: Some(None), ordering: None });
        assert_eq!(cleared, Pacing::default());
        assert!(PacingPatch::default().is_empty());
        assert_eq!(Pacing::from_stored(Some(0), Some("odd")), Pacing::default());
        assert_eq!(Pacing::from_stored(Some(7), Some("fifo")), Pacing { rate_limit_per_second: Some(7), ordering: Ordering::Fifo });
    }
}
