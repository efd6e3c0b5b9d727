//! "An older event never overwrites newer state" (SPEC §5.1).
//!
//! Providers deliver events out of order. Every row an inbound event sets keeps the
//! *version* of that event; an update is applied only when its version is at least the
//! stored one. The version is the event's `created` second, doubled, plus one for events
//! that end something (a deletion, a deauthorization, a reversal, a payment): when two
//! events share a second, the ending one wins, so a `customer.subscription.updated` from
//! the same second can never resurrect a subscription that `…deleted` ended.
//!
//! The store applies [`supersedes`] inside its SQL (`WHERE excluded.event_version >=
//! t.event_version`) so that concurrent deliveries are ordered by D1, not by the worker.

/// Orders provider events; larger is newer.
pub type EventVersion = i64;

/// Timestamps beyond this (year ~1.1 million) are clamped, keeping versions exact in
/// D1's f64 numbers.
const MAX_CREATED_SECS: i64 = 1 << 45;

/// The version of an event created at `created_secs` (Unix seconds).
pub fn version(created_secs: i64, ends_something: bool) -> EventVersion {
    created_secs.clamp(0, MAX_CREATED_SECS) * 2 + i64::from(ends_something)
}

/// Whether an event of version `incoming` may overwrite a row last set at `stored`.
/// Equal versions apply (a redelivered event rewrites the same values).
pub fn supersedes(incoming: EventVersion, stored: Option<EventVersion>) -> bool {
    stored.is_none_or(|s| incoming >= s)
}

/// The same rule as [`supersedes`], as the SQL guard of an upsert on `table`.
pub fn sql_guard(table: &str) -> String {
    format!("excluded.event_version >= {table}.event_version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_events_win_and_older_ones_are_skipped() {
        let older = version(1_700_000_000, false);
        let newer = version(1_700_000_001, false);
        assert!(supersedes(newer, Some(older)));
        assert!(!supersedes(older, Some(newer)));
        assert!(supersedes(older, None));
        assert!(supersedes(older, Some(older)), "a redelivery rewrites the same state");
    }

    #[test]
    fn an_ending_event_wins_a_tie_within_one_second() {
        let updated = version(1_700_000_000, false);
        let deleted = version(1_700_000_000, true);
        assert!(supersedes(deleted, Some(updated)));
        assert!(!supersedes(updated, Some(deleted)));
        // …but not against a later second.
        assert!(supersedes(version(1_700_000_001, false), Some(deleted)));
    }

    #[test]
    fn absurd_timestamps_are_clamped() {
        assert_eq!(version(-5, false), 0);
        assert_eq!(version(i64::MAX, true), MAX_CREATED_SECS * 2 + 1);
        assert!(((MAX_CREATED_SECS * 2 + 1) as f64) < 9_007_199_254_740_992.0);
        assert_eq!(sql_guard("subscriptions"), "excluded.event_version >= subscriptions.event_version");
    }
}
