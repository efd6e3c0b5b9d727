//! Stats rollups (SPEC §9.1): what a batch of recorded outcomes adds to each webhook's
//! hourly row, and the duration histogram the stats percentiles come from.
//!
//! Durations go into [`BUCKETS`] buckets: exact below 8 ms, then each bucket starts about
//! 1.25× above the previous one, up to 48 s and more in the last. A percentile read back
//! is the middle of its bucket: off by at most [`MAX_RELATIVE_ERROR`] (12.5 %) of the true
//! value below 48 s (the unit tests check every duration).

use std::collections::BTreeMap;

use crate::core::time::UnixMillis;

pub const MS_PER_HOUR: i64 = 3_600_000;
pub const BUCKETS: usize = 48;
/// The worst error of a reported duration relative to the true one (24,652 ms reads back
/// as 27,733).
pub const MAX_RELATIVE_ERROR: f64 = 0.125;

/// The first duration (ms) of each bucket: 0…7 exact, then ⌈8 · 1.25^(b−8)⌉.
pub const BUCKET_STARTS: [u32; BUCKETS] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 16, 20, 25, 31, 39, 48, 60, 75, 94, 117, 146, 182, 228, 285, 356, 445, 556, 694,
    868, 1085, 1356, 1695, 2118, 2647, 3309, 4136, 5170, 6463, 8078, 10098, 12622, 15778, 19722, 24652, 30815, 38519,
    48149,
];

/// The bucket of a duration.
pub fn bucket(duration_ms: u32) -> usize {
    BUCKET_STARTS.partition_point(|start| *start <= duration_ms).saturating_sub(1)
}

/// The duration a bucket stands for: its middle (its start for the open-ended last one).
pub fn bucket_value(b: usize) -> u32 {
    match (BUCKET_STARTS.get(b), BUCKET_STARTS.get(b + 1)) {
        (Some(start), Some(next)) => start + (next - 1 - start) / 2,
        (Some(start), None) => *start,
        _ => 0,
    }
}

/// The start of the hour holding `at`.
pub fn hour_of(at: UnixMillis) -> UnixMillis {
    at.div_euclid(MS_PER_HOUR) * MS_PER_HOUR
}

/// One webhook's hour: deliveries ended by status, attempts made and their durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourRollup {
    pub success: u64,
    pub failed: u64,
    pub attempts: u64,
    pub durations: [u64; BUCKETS],
}

impl Default for HourRollup {
    fn default() -> Self {
        HourRollup { success: 0, failed: 0, attempts: 0, durations: [0; BUCKETS] }
    }
}

impl HourRollup {
    /// Adds another hour's figures (the stats route folds hours into days).
    pub fn add(&mut self, other: &HourRollup) {
        self.success += other.success;
        self.failed += other.failed;
        self.attempts += other.attempts;
        for (d, o) in self.durations.iter_mut().zip(other.durations.iter()) {
            *d += o;
        }
    }

    /// The histogram as `(duration, count)` pairs for `stats::percentile`.
    pub fn histogram(&self) -> Vec<(u32, u64)> {
        self.durations.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, n)| (bucket_value(b), *n)).collect()
    }
}

/// What a batch adds to the rollups, keyed by (webhook, hour).
#[derive(Debug, Default)]
pub struct RollupDelta {
    pub rows: BTreeMap<(String, UnixMillis), HourRollup>,
}

impl RollupDelta {
    /// One attempt made at `at` that took `duration_ms`; `ended` says whether the delivery
    /// ended with it (`Some(true)` success, `Some(false)` failed for good).
    pub fn attempt(&mut self, webhook_id: &str, at: UnixMillis, duration_ms: u32, ended: Option<bool>) {
        let row = self.rows.entry((webhook_id.to_string(), hour_of(at))).or_default();
        row.attempts += 1;
        row.durations[bucket(duration_ms)] += 1;
        match ended {
            Some(true) => row.success += 1,
            Some(false) => row.failed += 1,
            None => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_duration_in_order() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(7), 7);
        assert_eq!(bucket(8), 8);
        assert_eq!(bucket(9), 8);
        assert_eq!(bucket(10), 9);
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
        let mut last = 0;
        for d in 0..70_000u32 {
            let b = bucket(d);
            assert!(b >= last && BUCKET_STARTS[b] <= d);
            last = b;
        }
    }

    #[test]
    fn a_bucket_value_is_within_the_stated_error_of_every_duration_in_it() {
        for d in 1..60_000u32 {
            let v = bucket_value(bucket(d));
            let err = (f64::from(v) - f64::from(d)).abs() / f64::from(d);
            // The last bucket is open-ended; durations past the 30 s timeout land there.
            if bucket(d) < BUCKETS - 1 {
                assert!(err <= MAX_RELATIVE_ERROR, "{d} ms read back as {v} ms ({err})");
            }
        }
        assert_eq!(bucket_value(3), 3);
    }

    #[test]
    fn a_delta_groups_by_webhook_and_hour() {
        let mut d = RollupDelta::default();
        d.attempt("wh_a", 3_600_000 + 5, 120, Some(true));
        d.attempt("wh_a", 3_600_000 + 9, 3, None);
        d.attempt("wh_a", 7_200_000, 3, Some(false));
        d.attempt("wh_b", 3_600_001, 3, Some(false));
        assert_eq!(d.rows.len(), 3);
        let a = &d.rows[&("wh_a".to_string(), 3_600_000)];
        assert_eq!((a.success, a.failed, a.attempts), (1, 0, 2));
        assert_eq!(a.histogram(), vec![(3, 1), (bucket_value(bucket(120)), 1)]);
        let mut sum = HourRollup::default();
        for r in d.rows.values() {
            sum.add(r);
        }
        assert_eq!((sum.success, sum.failed, sum.attempts), (1, 2, 4));
    }
}
