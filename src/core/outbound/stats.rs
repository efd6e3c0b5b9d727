//! Stats of one webhook (SPEC §8.4): the window, bucket arithmetic and percentiles.
//!
//! A window ends now and starts at the beginning of the oldest of its buckets (24 hours,
//! or 7 or 30 UTC days), so the series' buckets are whole hours or days. Counts cover
//! the deliveries created in the window, by their status now; the success rate is
//! successes over finished deliveries; durations are those of their attempts, with
//! nearest-rank percentiles.

use serde::Serialize;

use crate::core::time::{format_iso, UnixMillis, MS_PER_DAY};

const MS_PER_HOUR: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsWindow {
    pub name: &'static str,
    pub bucket_ms: i64,
    pub buckets: i64,
}

/// `24h` (hourly series), `7d` or `30d` (daily series).
pub fn parse_window(value: &str) -> Option<StatsWindow> {
    match value {
        "24h" => Some(StatsWindow { name: "24h", bucket_ms: MS_PER_HOUR, buckets: 24 }),
        "7d" => Some(StatsWindow { name: "7d", bucket_ms: MS_PER_DAY, buckets: 7 }),
        "30d" => Some(StatsWindow { name: "30d", bucket_ms: MS_PER_DAY, buckets: 30 }),
        _ => None,
    }
}

impl StatsWindow {
    /// The first instant of the window: the start of the oldest bucket.
    pub fn from(&self, now: UnixMillis) -> UnixMillis {
        now.div_euclid(self.bucket_ms) * self.bucket_ms - (self.buckets - 1) * self.bucket_ms
    }
}

/// The `p`-th percentile (nearest rank) of a histogram of `(value, count)`, sorted or not.
pub fn percentile(histogram: &[(u32, u64)], p: u32) -> Option<u32> {
    let mut sorted = histogram.to_vec();
    sorted.sort_unstable_by_key(|(v, _)| *v);
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (u64::from(p.min(100)) * total).div_ceil(100).max(1);
    let mut seen = 0;
    sorted.into_iter().find(|(_, n)| {
        seen += n;
        seen >= rank
    }).map(|(v, _)| v)
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Point {
    pub start: String,
    pub success: u64,
    pub failed: u64,
}

/// Every bucket of the window, oldest first, with zeros where nothing happened.
/// `rows` are `(bucket index, successes, failures)`; out-of-range indexes are ignored.
pub fn series(window: &StatsWindow, from: UnixMillis, rows: &[(i64, u64, u64)]) -> Vec<Point> {
    (0..window.buckets)
        .map(|i| {
            let (success, failed) = rows
                .iter()
                .filter(|(b, _, _)| *b == i)
                .fold((0, 0), |(s, f), (_, rs, rf)| (s + rs, f + rf));
            Point { start: format_iso(from + i * window.bucket_ms), success, failed }
        })
        .collect()
}

/// Successes over finished deliveries, `None` when none finished.
pub fn success_rate(success: u64, failed: u64) -> Option<f64> {
    let done = success + failed;
    (done > 0).then(|| success as f64 / done as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn windows_start_at_whole_buckets() {
        let now = 1_773_144_125_000; // 2026-03-10T12:02:05Z
        let day = parse_window("24h").unwrap();
        assert_eq!(format_iso(day.from(now)), "2026-03-09T13:00:00.000Z");
        assert_eq!(format_iso(parse_window("7d").unwrap().from(now)), "2026-03-04T00:00:00.000Z");
        assert_eq!(format_iso(parse_window("30d").unwrap().from(now)), "2026-02-09T00:00:00.000Z");
        assert!(parse_window("1h").is_none() && parse_window("").is_none() && parse_window("24H").is_none());
        let s = series(&day, day.from(now), &[(0, 1, 2), (23, 3, 0), (24, 9, 9), (-1, 9, 9)]);
        assert_eq!(s.len(), 24);
        assert_eq!((s[0].success, s[0].failed, s[23].success), (1, 2, 3));
        assert_eq!(s[23].start, "2026-03-10T12:00:00.000Z");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let h = [(30, 1), (10, 1), (20, 1), (40, 1)];
        assert_eq!(percentile(&h, 50), Some(20));
        assert_eq!(percentile(&h, 95), Some(40));
        assert_eq!(percentile(&h, 0), Some(10));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[(7, 0)], 50), None);
        assert_eq!(success_rate(3, 1), Some(0.75));
        assert_eq!(success_rate(0, 0), None);
    }

    proptest! {
        #[test]
        fn percentile_matches_the_sorted_list(values in prop::collection::vec(0u32..500, 1..200), p in 0u32..=100) {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let mut histogram: Vec<(u32, u64)> = Vec::new();
            for v in &values {
                match histogram.iter_mut().find(|(x, _)| x == v) {
                    Some(e) => e.1 += 1,
                    None => histogram.push((*v, 1)),
                }
            }
            let rank = ((p as usize * sorted.len()).div_ceil(100)).max(1);
            prop_assert_eq!(percentile(&histogram, p), Some(sorted[rank - 1]));
        }
    }
}
