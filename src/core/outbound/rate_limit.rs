//! The rate limit of an endpoint (SPEC §9.3): a token bucket R tokens deep, refilled at
//! R tokens per [`WINDOW_MS`]. The scheduler (`delivery::scheduler`) keeps the bucket and
//! asks it for start times; this module knows nothing of where they are kept.
//!
//! The depth is what keeps a backlog at the rate on a busy machine: the planned starts
//! lie on a fixed grid, and a scheduler that wakes late (a timer fired late, an isolate
//! busy elsewhere) finds the tokens it missed still there, up to R of them, instead of
//! losing that time (a one-token bucket lost every late wake-up: 2.3/s at R = 3 in a
//! loaded CI run). A deep bucket alone would let a saved-up burst of R follow a second of
//! refills, twice R in one window: the start log below forbids it.
//!
//! The bucket plans; [`StartLog`] enforces. A send that starts late (a busy isolate, a
//! timer fired late) must not let the next ones catch up into the same second, so the
//! actual start times of the last R requests are kept and a request starts only once the
//! R-th before it is [`WINDOW_MS`] old: a second and 50 ms, so that up to 50 ms of jitter
//! on the way to the receiver (measured: a loaded machine adds that much) does not put
//! R + 1 arrivals into one second. The price: a backlog drains at R × 1000/1050 ≈ 0.95 R
//! (the bucket refills at that pace too, so the log only catches starts that bunched and
//! a late start delays no later one).

use std::collections::VecDeque;

/// `rate_limit_per_second` bounds.
pub const RATE_MIN: u32 = 1;
pub const RATE_MAX: u32 = 1000;

/// The span in which a [`StartLog`] allows R starts.
pub const WINDOW_MS: i64 = 1_050;

/// A bucket of R tokens: the planned start of the next request (in microseconds; a
/// past time while tokens are saved up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacer {
    /// Rounded up, so R requests never take less than a second.
    interval_us: i64,
    /// R: the tokens an idle bucket holds.
    depth: i64,
    next_us: i64,
}

impl Pacer {
    /// A bucket for `per_second` (clamped to the valid range) whose next token is due
    /// at `next_ms` (a past time: one is ready now).
    pub fn new(per_second: u32, next_ms: i64) -> Self {
        let rate = i64::from(per_second.clamp(RATE_MIN, RATE_MAX));
        // R per WINDOW_MS, as the start log allows: the bucket, whose times are absolute,
        // stays the binding limit, so a late start delays no later one.
        let window_us = WINDOW_MS * 1000;
        Pacer { interval_us: (window_us + rate - 1) / rate, depth: rate, next_us: next_ms.saturating_mul(1000) }
    }

    /// The same bucket at another rate (the webhook was changed): the next token keeps
    /// its time.
    pub fn with_rate(self, per_second: u32) -> Self {
        Pacer { next_us: self.next_us, ..Pacer::new(per_second, 0) }
    }

    /// When the next token is due, in milliseconds (rounded up).
    pub fn next_ms(&self) -> i64 {
        (self.next_us + 999).div_euclid(1000)
    }

    /// Takes up to `n` tokens whose start times fall before `now + horizon_ms`, and
    /// returns those start times in milliseconds (rounded up, never before `now`). An
    /// idle bucket holds R tokens, never more.
    pub fn take(&mut self, now_ms: i64, n: usize, horizon_ms: i64) -> Vec<i64> {
        let now_us = now_ms.saturating_mul(1000);
        let end_us = now_us.saturating_add(horizon_ms.max(0).saturating_mul(1000));
        let saved_from = now_us.saturating_sub((self.depth - 1).saturating_mul(self.interval_us));
        let mut at = self.next_us.max(saved_from);
        let mut starts = Vec::new();
        while starts.len() < n && at < end_us.max(now_us + 1) {
            starts.push((at.max(now_us) + 999).div_euclid(1000));
            at += self.interval_us;
        }
        if !starts.is_empty() {
            self.next_us = at;
        }
        starts
    }
}

/// The actual start times (ms) of an endpoint's last R requests: the hard cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartLog {
    cap: usize,
    starts: VecDeque<i64>,
}

impl StartLog {
    pub fn new(per_second: u32) -> Self {
        let cap = per_second.clamp(RATE_MIN, RATE_MAX) as usize;
        StartLog { cap, starts: VecDeque::with_capacity(cap) }
    }

    /// The same log for another rate (the webhook was changed).
    pub fn with_rate(mut self, per_second: u32) -> Self {
        self.cap = per_second.clamp(RATE_MIN, RATE_MAX) as usize;
        while self.starts.len() > self.cap {
            self.starts.pop_front();
        }
        self
    }

    /// The earliest a new request may start at `now` or later.
    pub fn earliest(&self, now: i64) -> i64 {
        match self.starts.front() {
            Some(oldest) if self.starts.len() >= self.cap => now.max(oldest + WINDOW_MS),
            _ => now,
        }
    }

    /// A request started at `at`.
    pub fn record(&mut self, at: i64) {
        if self.starts.len() >= self.cap {
            self.starts.pop_front();
        }
        self.starts.push_back(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_starts_never_put_more_than_r_in_a_second() {
        // Planned every 200 ms (R = 5); the third to sixth start late, together.
        let mut log = StartLog::new(5);
        let mut starts = Vec::new();
        for planned in [0, 200, 400, 600, 800, 1000, 1200, 1400, 1600] {
            let wanted = if (400..=1000).contains(&planned) { 1000 } else { planned };
            let at = log.earliest(wanted);
            log.record(at);
            starts.push(at);
        }
        assert!(max_in_window(&starts) <= 5, "{starts:?}");
        assert_eq!(starts, vec![0, 200, 1000, 1000, 1000, 1050, 1250, 2050, 2050]);
        assert_eq!(log.clone().with_rate(2).earliest(2000), 3100, "the last two started at 2050");
        assert_eq!(StartLog::new(3).earliest(7), 7);
    }

    /// Most start times in any half-open window `[t, t + 1000)`, t over every start.
    fn max_in_window(starts: &[i64]) -> usize {
        starts.iter().map(|t| starts.iter().filter(|s| **s >= *t && **s < t + 1000).count()).max().unwrap_or(0)
    }

    #[test]
    fn a_backlog_goes_out_at_the_rate_and_never_faster() {
        for rate in [1, 2, 3, 7, 10, 33, 100, 999, 1000] {
            let mut p = Pacer::new(rate, 0);
            let mut starts = Vec::new();
            // A backlog drained in chunks asked for every 37 ms, as a scheduler would (the
            // first start is clamped to the first call, a few ms after its grid point: 1 %).
            let mut now = 5;
            while starts.len() < 3 * rate as usize {
                starts.extend(p.take(now, 50, 250));
                now += 37;
            }
            assert!(max_in_window(&starts) <= rate as usize, "rate {rate}: {}", max_in_window(&starts));
            let span = (starts[starts.len() - 1] - starts[0]) as f64 / 1000.0;
            let achieved = (starts.len() - 1) as f64 / span;
            let r = f64::from(rate);
            assert!(achieved >= 0.95 * r && achieved <= r * 1000.0 / 1050.0 * 1.01, "rate {rate}: {achieved}");
        }
    }

    #[test]
    fn idling_saves_at_most_r_tokens() {
        let mut p = Pacer::new(5, 0);
        assert_eq!(p.take(0, 10, 1000), vec![0, 210, 420, 630, 840]);
        // A long pause: five tokens now (the start log spreads them), then the spacing again.
        assert_eq!(p.take(60_000, 7, 1000), vec![60_000, 60_000, 60_000, 60_000, 60_000, 60_210, 60_420]);
        assert_eq!(p.next_ms(), 60_630);
    }

    #[test]
    fn late_wake_ups_lose_no_throughput_and_the_log_still_caps_every_window() {
        // R = 3, a backlog, a scheduler that asks for one start at a time and wakes up to
        // 300 ms late each time: the planned grid holds, the log keeps ≤ R per window.
        for rate in [3_u32, 5, 50] {
            let mut p = Pacer::new(rate, 0);
            let mut log = StartLog::new(rate);
            let mut starts = Vec::new();
            let mut now = 0;
            let mut late = 0;
            while starts.len() < 30 * rate as usize {
                let Some(&planned) = p.take(now, 1, 0).first() else {
                    now = p.next_ms() + late;
                    late = (late + 137) % 300;
                    continue;
                };
                let at = log.earliest(planned);
                log.record(at);
                starts.push(at);
                now = at;
            }
            assert!(max_in_window(&starts) <= rate as usize, "rate {rate}: {}", max_in_window(&starts));
            let span = (starts[starts.len() - 1] - starts[0]) as f64 / 1000.0;
            let achieved = (starts.len() - 1) as f64 / span;
            assert!(achieved >= 0.9 * f64::from(rate), "rate {rate}: {achieved}");
        }
    }

    #[test]
    fn the_horizon_bounds_a_chunk_and_a_short_one_still_takes_the_due_token() {
        let mut p = Pacer::new(1, 0);
        assert_eq!(p.take(100, 5, 0), vec![100], "the token due now is taken even without horizon");
        assert!(p.take(200, 5, 500).is_empty(), "next token only at 1150");
        assert_eq!(p.take(1150, 5, 10), vec![1150]);
    }

    #[test]
    fn a_rate_change_keeps_the_next_token_time() {
        let mut p = Pacer::new(2, 0);
        p.take(0, 1, 1);
        let q = p.with_rate(1000);
        assert_eq!(q.next_ms(), 525);
        assert_eq!(Pacer::new(0, 0), Pacer::new(1, 0), "clamped");
        assert_eq!(Pacer::new(5000, 0), Pacer::new(1000, 0), "clamped");
    }

    #[test]
    fn rounding_never_shortens_the_interval() {
        // 1.05/7 s = 150 000 µs: seven starts span at least a second.
        let mut p = Pacer::new(7, 0);
        let starts = p.take(0, 8, 2000);
        assert!(starts[7] - starts[0] >= 1000);
    }
}
