//! How long a consumer holds the deliveries it claimed (SPEC §8.6).
//!
//! A consumer claims a whole batch in one D1 round trip, sends at most `concurrency`
//! deliveries at a time, and records every outcome in one round trip when the last send
//! ends. The lease therefore covers the whole batch, not one send: a send ends within its
//! webhook's timeout plus [`SEND_SLACK_MS`] (the answer's excerpt is read within what is
//! left of the timeout, at least 250 ms), and with `concurrency` slots freed as each send
//! ends, `n` sends finish within `ceil(n / concurrency)` such durations. Until the lease
//! ends, neither the cron nor a duplicate message can take a delivery from a live
//! consumer, so a send's outcome is recorded once, by the consumer that sent it.
//!
//! Not here: the claim itself (`store::deliveries`), the send (`delivery::sender`).

/// Workers production opens at most this many outbound connections per invocation; a
/// higher in-flight count would only make sends wait for a connection while their
/// timeout runs.
pub const PRODUCTION_CONNECTIONS: usize = 6;

/// Time a send may take beyond its webhook's timeout (answer excerpt, scheduling).
pub const SEND_SLACK_MS: i64 = 1_000;

/// Sends in a batch of `claims` run in this many rounds of `concurrency`.
pub fn send_rounds(claims: usize, concurrency: usize) -> i64 {
    let concurrency = concurrency.clamp(1, PRODUCTION_CONNECTIONS);
    i64::try_from(claims.div_ceil(concurrency)).unwrap_or(i64::MAX)
}

/// The lease, in ms from the claim, that covers every send of the batch plus `margin_ms`
/// for the D1 round trips around them. `max_timeout_ms` is the largest webhook timeout.
pub fn batch_lease_ms(claims: usize, concurrency: usize, max_timeout_ms: u32, margin_ms: i64) -> i64 {
    let per_round = i64::from(max_timeout_ms) + SEND_SLACK_MS;
    send_rounds(claims, concurrency).saturating_mul(per_round).saturating_add(margin_ms.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_batches_of_the_connection_cap() {
        assert_eq!(send_rounds(0, 6), 0);
        assert_eq!(send_rounds(1, 6), 1);
        assert_eq!(send_rounds(6, 6), 1);
        assert_eq!(send_rounds(7, 6), 2);
        assert_eq!(send_rounds(100, 6), 17);
        assert_eq!(send_rounds(10, 1), 10);
        // More in flight than production allows is production's 6; zero is one.
        assert_eq!(send_rounds(100, 100), 17);
        assert_eq!(send_rounds(3, 0), 3);
    }

    #[test]
    fn a_paid_batch_of_slow_receivers_is_covered() {
        // 100 messages, 6 connections, 30 s timeouts: 17 rounds of 31 s, plus 60 s.
        assert_eq!(batch_lease_ms(100, 6, 30_000, 60_000), 17 * 31_000 + 60_000);
        // The default Free batch: 10 messages, 10 s timeouts.
        assert_eq!(batch_lease_ms(10, 6, 10_000, 60_000), 2 * 11_000 + 60_000);
        assert_eq!(batch_lease_ms(1, 6, 1_000, -5), 2_000);
    }

    #[test]
    fn the_lease_outlasts_any_schedule_of_the_sends() {
        // Greedy slots: each send waits for the earliest free slot. The batch ends by the
        // lease for every mix of durations up to the timeout.
        for n in 1..40usize {
            for c in 1..=6usize {
                let durations: Vec<i64> = (0..n).map(|i| ((i * 7919) % 1000 + 1) as i64 * 31).collect();
                let mut slots = vec![0i64; c];
                for d in &durations {
                    let first = slots.iter_mut().min().expect("c >= 1");
                    *first += d;
                }
                let end = slots.into_iter().max().unwrap_or(0);
                assert!(end <= batch_lease_ms(n, c, 31_000 - SEND_SLACK_MS as u32, 0), "n={n} c={c}");
            }
        }
    }
}
