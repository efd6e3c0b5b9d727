//! Retry policy of outbound deliveries (SPEC §4.5): schedule, jitter, `Retry-After`.

use crate::core::time::{parse_http_date, UnixMillis};

/// Cloudflare Queues cannot delay a message longer than 12 hours.
pub const MAX_DELAY_SECS: u32 = 12 * 3600;
pub const DEFAULT_SCHEDULE: &[u32] = &[5, 300, 1800, 7200, 18_000, 36_000, 43_200, 43_200, 43_200, 43_200];
const JITTER: f64 = 0.2;

/// Delays between attempts, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<u32>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(DEFAULT_SCHEDULE.to_vec())
    }
}

impl RetrySchedule {
    /// `"5,300,1800"`; values are capped at 12 h. Returns `None` when malformed.
    pub fn parse(text: &str) -> Option<RetrySchedule> {
        let delays = text
            .split(',')
            .map(|part| part.trim().parse::<u32>().ok().map(|d| d.min(MAX_DELAY_SECS)))
            .collect::<Option<Vec<u32>>>()?;
        if delays.is_empty() { None } else { Some(RetrySchedule(delays)) }
    }

    /// Base delay before retry number `retry` (1 = the first retry); the last entry
    /// repeats when there are more retries than entries.
    pub fn base_delay(&self, retry: u32) -> u32 {
        let index = (retry.max(1) - 1) as usize;
        self.0.get(index).or(self.0.last()).copied().unwrap_or(5)
    }

    /// Base delay with ±20 % jitter; `unit` is a uniform sample in [0, 1).
    pub fn delay_with_jitter(&self, retry: u32, unit: f64) -> u32 {
        let base = f64::from(self.base_delay(retry));
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        ((base * factor).round() as u32).min(MAX_DELAY_SECS)
    }
}

/// Seconds to wait from a `Retry-After` value (delta-seconds or HTTP-date), capped at 12 h.
pub fn retry_after_secs(header: &str, now: UnixMillis) -> Option<u32> {
    let header = header.trim();
    if let Ok(secs) = header.parse::<u64>() {
        return Some(secs.min(u64::from(MAX_DELAY_SECS)) as u32);
    }
    let at = parse_http_date(header)?;
    let secs = (at - now).max(0) / 1000;
    Some(secs.min(i64::from(MAX_DELAY_SECS)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schedules() {
        assert_eq!(RetrySchedule::parse("1, 2,3"), Some(RetrySchedule(vec![1, 2, 3])));
        assert_eq!(RetrySchedule::parse("1,,3"), None);
        assert_eq!(RetrySchedule::parse("-1"), None);
        assert_eq!(RetrySchedule::parse("999999"), Some(RetrySchedule(vec![MAX_DELAY_SECS])));
    }

    #[test]
    fn default_schedule_and_repeat_of_the_last_entry() {
        let s = RetrySchedule::default();
        assert_eq!(s.base_delay(1), 5);
        assert_eq!(s.base_delay(2), 300);
        assert_eq!(s.base_delay(10), 43_200);
        assert_eq!(s.base_delay(11), 43_200);
        let short = RetrySchedule::parse("1,2").unwrap();
        assert_eq!(short.base_delay(5), 2);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::default();
        assert_eq!(s.delay_with_jitter(2, 0.0), 240);
        assert_eq!(s.delay_with_jitter(2, 0.5), 300);
        assert!(s.delay_with_jitter(2, 0.999_999) <= 360);
        assert_eq!(s.delay_with_jitter(10, 1.0), MAX_DELAY_SECS, "never past the queue's limit");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after_secs("120", 0), Some(120));
        assert_eq!(retry_after_secs("99999999", 0), Some(MAX_DELAY_SECS));
        let now = crate::core::time::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(60));
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:40:37 GMT", now), Some(0));
        assert_eq!(retry_after_secs("soon", now), None);
        assert_eq!(retry_after_secs("-5", now), None);
    }
}
