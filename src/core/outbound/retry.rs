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
        assert_eq!(RetrySchedule::parse("999999"), Some(RetrySchedule(vec![43_200])), "capped at the queue's 12 h");
        assert_eq!(RetrySchedule::parse("43200,43201"), Some(RetrySchedule(vec![43_200, 43_200])));
        assert_eq!(RetrySchedule::parse(" 0 "), Some(RetrySchedule(vec![0])));
        assert_eq!(RetrySchedule::parse(""), None);
        assert_eq!(RetrySchedule::parse("5;300"), None);
    }

    #[test]
    fn default_schedule_is_the_spec_one() {
        // SPEC §4.5: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 12 h, 12 h, 12 h, 12 h.
        let s = RetrySchedule::default();
        let delays: Vec<u32> = (1..=12).map(|retry| s.base_delay(retry)).collect();
        assert_eq!(delays, [5, 300, 1800, 7200, 18_000, 36_000, 43_200, 43_200, 43_200, 43_200, 43_200, 43_200]);
        assert_eq!(s.base_delay(0), 5, "retry 0 is read as the first");
        assert_eq!(MAX_DELAY_SECS, 43_200, "Cloudflare Queues' longest delay: 12 h");
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
        assert_eq!(s.delay_with_jitter(1, 0.0), 4);
        assert_eq!(s.delay_with_jitter(1, 1.0), 6);
        assert_eq!(s.delay_with_jitter(3, 0.25), 1620, "1800 × (0.8 + 0.4 × 0.25)");
        assert_eq!(s.delay_with_jitter(4, 0.75), 7920, "7200 × (0.8 + 0.4 × 0.75)");
        assert_eq!(s.delay_with_jitter(2, -3.0), 240, "samples are clamped to [0, 1]");
        assert_eq!(s.delay_with_jitter(2, 7.0), 360);
        assert_eq!(s.delay_with_jitter(10, 1.0), 43_200, "never past the queue's 12 h");
        assert_eq!(s.delay_with_jitter(6, 1.0), 43_200, "10 h + 20 % is just 12 h");
        assert_eq!(s.delay_with_jitter(6, 0.0), 28_800);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after_secs("120", 0), Some(120));
        assert_eq!(retry_after_secs(" 30 ", 0), Some(30));
        assert_eq!(retry_after_secs("0", 0), Some(0));
        assert_eq!(retry_after_secs("43200", 0), Some(43_200));
        assert_eq!(retry_after_secs("43201", 0), Some(43_200));
        assert_eq!(retry_after_secs("99999999", 0), Some(43_200));
        let now = crate::core::time::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(60));
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:40:37 GMT", now), Some(0));
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:49:38 GMT", now + 1), Some(0), "999 ms round down");
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:49:38 GMT", now - 1500), Some(2));
        assert_eq!(retry_after_secs("Mon, 07 Nov 1994 08:49:37 GMT", now), Some(43_200), "a day away: capped at 12 h");
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 20:49:37 GMT", now), Some(43_200));
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 20:49:36 GMT", now), Some(43_199));
        assert_eq!(retry_after_secs("soon", now), None);
        assert_eq!(retry_after_secs("-5", now), None);
    }
}
