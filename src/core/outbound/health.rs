//! Endpoint health (SPEC §8.4): the circuit breaker and auto-disable rules.
//!
//! A webhook's [`Health`] is a small state machine fed by attempt outcomes:
//! closed → (threshold consecutive failures) → open until a cooldown ends → half-open,
//! where one delivery probes → closed on success, re-opened with a doubled cooldown
//! (capped) on failure. Any success closes the breaker and resets the count. A webhook
//! whose attempts have all failed for long enough, with enough failures, is disabled.
//!
//! Not here: reading and writing the columns (`store::deliveries`), taking the probe slot
//! atomically (the claim batch), sending (`delivery::consumer`).

use crate::core::time::{format_iso, UnixMillis};

/// Failures a webhook needs, besides the duration, before auto-disable.
pub const AUTO_DISABLE_MIN_FAILURES: u32 = 10;
/// The longest cooldown, whatever the number of re-opens.
pub const MAX_COOLDOWN_SECS: u32 = 3600;

/// The tunables, from `BREAKER_FAILURE_THRESHOLD`, `BREAKER_COOLDOWN_SECONDS` and
/// `AUTO_DISABLE_AFTER_HOURS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    pub threshold: u32,
    pub base_cooldown_ms: i64,
    pub max_cooldown_ms: i64,
    pub disable_after_ms: i64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy::new(10, 60, MAX_COOLDOWN_SECS, 120)
    }
}

impl HealthPolicy {
    /// Out-of-range values are brought into range (threshold ≥ 1, cooldown ≥ 1 s,
    /// max ≥ base).
    pub fn new(threshold: u32, cooldown_secs: u32, max_cooldown_secs: u32, disable_after_hours: u32) -> Self {
        let base = i64::from(cooldown_secs.max(1)) * 1000;
        HealthPolicy {
            threshold: threshold.max(1),
            base_cooldown_ms: base,
            max_cooldown_ms: (i64::from(max_cooldown_secs) * 1000).max(base),
            disable_after_ms: i64::from(disable_after_hours.max(1)) * 3_600_000,
        }
    }

    /// The cooldown of an opening after `opens_before` opens without a success between:
    /// base, 2×base, 4×base … up to the maximum.
    pub fn cooldown_ms(&self, opens_before: u32) -> i64 {
        let factor = 1i64.checked_shl(opens_before.min(40)).unwrap_or(i64::MAX);
        self.base_cooldown_ms.saturating_mul(factor).min(self.max_cooldown_ms)
    }
}

/// A webhook's health as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub consecutive_failures: u32,
    /// The first failure since the last success (the auto-disable clock).
    pub failing_since: Option<UnixMillis>,
    pub last_success_at: Option<UnixMillis>,
    pub last_failure_at: Option<UnixMillis>,
    /// `None`: closed. In the future: open. In the past: half-open (a probe may go).
    pub breaker_open_until: Option<UnixMillis>,
    /// Opens since the last success: the next cooldown doubles with each.
    pub breaker_opens: u32,
}

/// Whether `new` must be written over `old`: anything but `last_success_at` changed. A
/// success that changes nothing else is kept by the rollup row its batch writes anyway
/// (readers take the later of the two), so it costs the webhook row no write.
pub fn needs_write(old: &Health, new: &Health) -> bool {
    Health { last_success_at: old.last_success_at, ..new.clone() } != *old
}

/// What a consumer may do with the claimed deliveries of one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: send them all.
    All,
    /// Half-open and this consumer holds the probe slot: send one, postpone the others.
    ProbeOne { others_until: UnixMillis },
    /// Open, or half-open with the probe elsewhere: postpone all, without a request.
    None { until: UnixMillis },
}

/// Decides whether deliveries of a webhook may go now. `holds_probe`: this consumer took
/// the webhook's probe slot in its claim (only possible when half-open).
pub fn admit(h: &Health, now: UnixMillis, holds_probe: bool, policy: &HealthPolicy) -> Admission {
    match h.breaker_open_until {
        None => Admission::All,
        Some(until) if now < until => Admission::None { until },
        // Those waiting for the probe come back after one base cooldown: by then the
        // probe has closed the breaker, or re-opened it and they are postponed again.
        Some(_) if holds_probe => Admission::ProbeOne { others_until: now + policy.base_cooldown_ms },
        Some(_) => Admission::None { until: now + policy.base_cooldown_ms },
    }
}

/// One attempt's outcome, for health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub success: bool,
    /// When it ended.
    pub at: UnixMillis,
}

/// The health after a batch's attempts, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub health: Health,
    pub opened: bool,
    pub closed: bool,
    /// Set when the webhook must be disabled: the reason, saying since when.
    pub disable_reason: Option<String>,
}

/// Sorts by `at`, keeping the order of equal ones (as `sort_by_key` would): an insertion
/// sort, since a batch holds at most a few hundred attempts at one webhook, and the
/// standard library's stable sort is several KB of wasm per element type.
fn stable_sort_by_end(attempts: &mut [Attempt]) {
    for i in 1..attempts.len() {
        let mut j = i;
        while j > 0 && attempts[j - 1].at > attempts[j].at {
            attempts.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Applies one batch's attempts at a webhook (in any order; they are taken by end time).
/// `probed`: the batch sent the half-open probe. `active`: the webhook is still enabled
/// (only an active webhook is auto-disabled, so the reason is given once).
pub fn record(h: &Health, attempts: &[Attempt], probed: bool, active: bool, now: UnixMillis, policy: &HealthPolicy) -> Recorded {
    let mut sorted = attempts.to_vec();
    stable_sort_by_end(&mut sorted);
    let mut next = h.clone();
    let mut any_success = false;
    for a in &sorted {
        if a.success {
            any_success = true;
            next.consecutive_failures = 0;
            next.failing_since = None;
            next.last_success_at = Some(next.last_success_at.map_or(a.at, |t| t.max(a.at)));
        } else {
            next.consecutive_failures = next.consecutive_failures.saturating_add(1);
            next.failing_since.get_or_insert(a.at);
            next.last_failure_at = Some(next.last_failure_at.map_or(a.at, |t| t.max(a.at)));
        }
    }
    let was_open = h.breaker_open_until.is_some();
    let mut opened = false;
    if any_success {
        // A success anywhere: the endpoint answers; close and forget the re-opens.
        next.breaker_open_until = None;
        next.breaker_opens = 0;
        // Failures that ended after the last success count again from there.
        if next.consecutive_failures >= policy.threshold {
            next.breaker_open_until = Some(now + policy.cooldown_ms(0));
            next.breaker_opens = 1;
            opened = true;
        }
    } else if probed && !sorted.is_empty() {
        next.breaker_open_until = Some(now + policy.cooldown_ms(next.breaker_opens));
        next.breaker_opens = next.breaker_opens.saturating_add(1);
        opened = true;
    } else if !was_open && next.consecutive_failures >= policy.threshold {
        next.breaker_open_until = Some(now + policy.cooldown_ms(next.breaker_opens));
        next.breaker_opens = next.breaker_opens.saturating_add(1);
        opened = true;
    }
    let closed = was_open && next.breaker_open_until.is_none();
    let disable_reason = match next.failing_since {
        Some(since)
            if active
                && !any_success
                && !sorted.is_empty()
                && next.consecutive_failures >= AUTO_DISABLE_MIN_FAILURES
                && now.saturating_sub(since) >= policy.disable_after_ms =>
        {
            Some(format!(
                "every attempt failed since {} ({} consecutive failures); webhook disabled",
                format_iso(since),
                next.consecutive_failures
            ))
        }
        _ => None,
    };
    Recorded { health: next, opened, closed, disable_reason }
}

/// The state a webhook renders (`health.state`).
pub fn state(h: &Health, active: bool) -> &'static str {
    if !active {
        "disabled"
    } else if h.breaker_open_until.is_some() {
        "breaker_open"
    } else if h.consecutive_failures > 0 {
        "failing"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: i64 = 3_600_000;

    fn policy() -> HealthPolicy {
        HealthPolicy::new(3, 60, 3600, 120)
    }

    fn fail(at: i64) -> Attempt {
        Attempt { success: false, at }
    }

    fn ok(at: i64) -> Attempt {
        Attempt { success: true, at }
    }

    #[test]
    fn cooldown_doubles_up_to_the_cap() {
        let p = policy();
        let secs: Vec<i64> = (0..9).map(|n| p.cooldown_ms(n) / 1000).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(p.cooldown_ms(u32::MAX), 3_600_000);
        let d = HealthPolicy::default();
        assert_eq!((d.threshold, d.base_cooldown_ms, d.max_cooldown_ms, d.disable_after_ms), (10, 60_000, 3_600_000, 120 * HOUR));
        // Nonsense configuration is brought into range.
        let z = HealthPolicy::new(0, 0, 0, 0);
        assert_eq!((z.threshold, z.base_cooldown_ms, z.max_cooldown_ms), (1, 1000, 1000));
    }

    #[test]
    fn opens_at_the_threshold_then_probes_and_closes() {
        let p = policy();
        let h = record(&Health::default(), &[fail(1), fail(2)], false, true, 10, &p);
        assert_eq!((h.health.consecutive_failures, h.opened), (2, false));
        assert_eq!(admit(&h.health, 10, false, &p), Admission::All);
        let h = record(&h.health, &[fail(20)], false, true, 20, &p);
        assert!(h.opened);
        assert_eq!(h.health.breaker_open_until, Some(60_020));
        assert_eq!(h.health.failing_since, Some(1));
        // Open: everything waits for the end, without a request.
        assert_eq!(admit(&h.health, 30, false, &p), Admission::None { until: 60_020 });
        assert_eq!(admit(&h.health, 30, true, &p), Admission::None { until: 60_020 });
        // Half-open: the probe holder sends one; others come back later.
        assert_eq!(admit(&h.health, 60_020, true, &p), Admission::ProbeOne { others_until: 120_020 });
        assert_eq!(admit(&h.health, 60_020, false, &p), Admission::None { until: 120_020 });
        // The probe fails: re-opened for twice as long.
        let r = record(&h.health, &[fail(60_100)], true, true, 60_100, &p);
        assert!(r.opened && !r.closed);
        assert_eq!(r.health.breaker_open_until, Some(60_100 + 120_000));
        assert_eq!(r.health.breaker_opens, 2);
        // The next probe succeeds: closed, count and doubling reset.
        let c = record(&r.health, &[ok(200_000)], true, true, 200_000, &p);
        assert!(c.closed);
        assert_eq!(c.health, Health { last_success_at: Some(200_000), last_failure_at: Some(60_100), ..Health::default() });
        assert_eq!(state(&c.health, true), "ok");
    }

    #[test]
    fn a_success_anywhere_resets_and_later_failures_count_from_there() {
        let p = policy();
        let h = Health { consecutive_failures: 2, failing_since: Some(5), ..Health::default() };
        let r = record(&h, &[fail(30), ok(10), fail(20)], false, true, 40, &p);
        assert_eq!(r.health.consecutive_failures, 2, "the failures after the success");
        assert_eq!(r.health.failing_since, Some(20));
        assert_eq!(r.health.last_success_at, Some(10));
        assert_eq!(state(&r.health, true), "failing");
        assert_eq!(state(&r.health, false), "disabled");
    }

    #[test]
    fn auto_disable_needs_the_duration_and_ten_failures_and_no_success() {
        let p = policy();
        let since = 0;
        let long = 120 * HOUR;
        let h = Health { consecutive_failures: 9, failing_since: Some(since), breaker_open_until: Some(1), ..Health::default() };
        let r = record(&h, &[fail(long)], false, true, long, &p);
        assert_eq!(r.disable_reason.as_deref(),
                   Some("every attempt failed since 1970-01-01T00:00:00.000Z (10 consecutive failures); webhook disabled"));
        // One ms short of the duration.
        assert!(record(&h, &[fail(long - 1)], false, true, long - 1, &p).disable_reason.is_none());
        // Nine failures only.
        let few = Health { consecutive_failures: 8, ..h.clone() };
        assert!(record(&few, &[fail(long)], false, true, long, &p).disable_reason.is_none());
        // A success in the batch.
        assert!(record(&h, &[fail(long), ok(long - 5)], false, true, long, &p).disable_reason.is_none());
        // Already disabled: no second reason.
        assert!(record(&h, &[fail(long)], false, false, long, &p).disable_reason.is_none());
        // No attempt in the batch: nothing is decided.
        assert!(record(&h, &[], false, true, long, &p).disable_reason.is_none());
    }

    #[test]
    fn failures_after_a_success_in_the_same_batch_reopen_for_the_base_cooldown() {
        let p = policy();
        let open = Health { consecutive_failures: 7, failing_since: Some(0), breaker_open_until: Some(500), breaker_opens: 3, ..Health::default() };
        let r = record(&open, &[ok(1_000), fail(1_100), fail(1_200), fail(1_300)], true, true, 2_000, &p);
        assert_eq!(r.health.consecutive_failures, 3);
        assert_eq!(r.health.failing_since, Some(1_100));
        assert_eq!(r.health.breaker_open_until, Some(2_000 + 60_000), "the first cooldown again, not a doubled one");
        assert_eq!(r.health.breaker_opens, 1);
        assert!(r.opened && !r.closed);
        assert_eq!(state(&r.health, true), "breaker_open");
        // Two failures after the success: below the threshold of 3, closed.
        let r = record(&open, &[ok(1_000), fail(1_100), fail(1_200)], true, true, 2_000, &p);
        assert_eq!((r.health.breaker_open_until, r.health.breaker_opens, r.opened, r.closed), (None, 0, false, true));
    }

    #[test]
    fn the_default_policy_is_the_spec_one() {
        // SPEC §8.4: 10 failures, 60 s doubling up to 3600 s, 120 h with at least 10 failures.
        let d = HealthPolicy::default();
        let secs: Vec<i64> = (0..8).map(|n| d.cooldown_ms(n) / 1000).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(AUTO_DISABLE_MIN_FAILURES, 10);
        let nine = record(&Health::default(), &[fail(1); 9], false, true, 2, &d);
        assert!(!nine.opened);
        let ten = record(&nine.health, &[fail(3)], false, true, 4, &d);
        assert_eq!(ten.health.breaker_open_until, Some(4 + 60_000));
        let hours = |h: i64| h * 3_600_000;
        let failing = Health { consecutive_failures: 20, failing_since: Some(0), ..Health::default() };
        assert!(record(&failing, &[fail(hours(120) - 1)], false, true, hours(120) - 1, &d).disable_reason.is_none());
        assert!(record(&failing, &[fail(hours(120))], false, true, hours(120), &d).disable_reason.is_some());
    }

    fn arb_attempts() -> impl Strategy<Value = Vec<(bool, i64)>> {
        prop::collection::vec((any::<bool>(), 0i64..1_000_000), 0..30)
    }

    proptest! {
        #[test]
        fn the_insertion_sort_is_the_standard_stable_sort(batch in prop::collection::vec((any::<bool>(), 0i64..20), 0..40)) {
            // Few distinct end times: many ties, whose order must be kept.
            let attempts: Vec<Attempt> = batch.iter().map(|(s, at)| Attempt { success: *s, at: *at }).collect();
            let mut ours = attempts.clone();
            stable_sort_by_end(&mut ours);
            let mut reference = attempts;
            reference.sort_by_key(|a| a.at);
            prop_assert_eq!(ours, reference);
        }

        #[test]
        fn cooldown_is_monotonic_and_bounded(base in 1u32..4000, max in 1u32..8000, n in 0u32..100) {
            let p = HealthPolicy::new(3, base, max, 1);
            prop_assert!(p.cooldown_ms(n) <= p.cooldown_ms(n + 1));
            prop_assert!(p.cooldown_ms(n) >= p.base_cooldown_ms.min(p.max_cooldown_ms));
            prop_assert!(p.cooldown_ms(n) <= p.max_cooldown_ms);
        }

        #[test]
        fn the_count_is_the_failures_after_the_last_success(start in 0u32..50, batch in arb_attempts(), probed in any::<bool>()) {
            let p = policy();
            let h = Health { consecutive_failures: start, failing_since: (start > 0).then_some(0), ..Health::default() };
            let attempts: Vec<Attempt> = batch.iter().map(|(s, at)| Attempt { success: *s, at: *at }).collect();
            let r = record(&h, &attempts, probed, true, 2_000_000, &p);
            let mut sorted = attempts.clone();
            sorted.sort_by_key(|a| a.at);
            let trailing = sorted.iter().rev().take_while(|a| !a.success).count() as u32;
            let expected = if sorted.iter().any(|a| a.success) { trailing } else { start + trailing };
            prop_assert_eq!(r.health.consecutive_failures, expected);
            // An open breaker always has a reason to be open: enough failures, or a failed probe.
            if r.opened { prop_assert!(r.health.consecutive_failures >= p.threshold || probed); }
            if r.health.consecutive_failures == 0 { prop_assert_eq!(r.health.failing_since, None); }
            if let Some(until) = r.health.breaker_open_until {
                prop_assert!(until > 2_000_000 || h.breaker_open_until == Some(until));
            }
        }

        /// A dead endpoint under a steady stream of due deliveries: requests are bounded by
        /// the threshold plus one probe per cooldown, whatever the stream.
        #[test]
        fn a_dead_endpoint_gets_threshold_plus_one_probe_per_cooldown(per_tick in 1usize..20, tick_ms in 100i64..5000) {
            let p = HealthPolicy::new(5, 10, 80, 120);
            let horizon = 3_600_000i64;
            let mut h = Health::default();
            let (mut requests, mut probes) = (0u64, 0u64);
            let mut now = 0;
            while now < horizon {
                match admit(&h, now, true, &p) {
                    Admission::All => {
                        let batch: Vec<Attempt> = (0..per_tick).map(|_| fail(now)).collect();
                        requests += per_tick as u64;
                        h = record(&h, &batch, false, true, now, &p).health;
                    }
                    Admission::ProbeOne { .. } => {
                        requests += 1;
                        probes += 1;
                        h = record(&h, &[fail(now)], true, true, now, &p).health;
                    }
                    Admission::None { until } => prop_assert!(until > now),
                }
                now += tick_ms;
            }
            // Before the first opening at most threshold - 1 + one batch; then one probe per
            // cooldown: 10 s, 20 s, 40 s, then 80 s each (plus a tick of lag each).
            let max_probes = 3 + (horizon / 80_000) as u64 + 1;
            prop_assert!(probes <= max_probes, "probes {probes}");
            prop_assert!(requests <= (p.threshold as u64 - 1 + per_tick as u64) + probes);
        }
    }

    #[test]
    fn a_success_that_changes_nothing_else_is_not_written() {
        let ok = Health { last_success_at: Some(1_000_000), ..Health::default() };
        let later = |at| Health { last_success_at: Some(at), ..ok.clone() };
        assert!(!needs_write(&ok, &ok));
        assert!(!needs_write(&ok, &later(1_000_000 + 3_600_000)));
        assert!(!needs_write(&Health::default(), &later(5)));
        // A failure, a recovery, a breaker change: always written.
        assert!(needs_write(&ok, &Health { consecutive_failures: 1, last_failure_at: Some(7), ..ok.clone() }));
        let failing = Health { consecutive_failures: 2, failing_since: Some(3), last_failure_at: Some(4), ..Health::default() };
        assert!(needs_write(&failing, &Health { last_success_at: Some(9), last_failure_at: Some(4), ..Health::default() }));
        assert!(needs_write(&ok, &Health { breaker_open_until: Some(9), ..later(1_000_001) }));
    }
}
