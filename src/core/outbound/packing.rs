//! How many deliveries ride in one queue message, and how many one consumer invocation
//! takes on (SPEC §8.6).
//!
//! A message names deliveries by id (`{"log_ids": [...]}`), so one queue operation can
//! carry several. What bounds them is the invocation that consumes a batch of such
//! messages: each delivery is one outbound fetch (a subrequest; Free allows 50 per
//! invocation, Paid 10,000), and its sends run behind 6 connections within the 15 minutes
//! a consumer invocation may last, under a lease that `lease.rs` makes cover them all.
//! The consumer takes at most [`deliveries_per_invocation`] and re-queues the rest. A
//! direct send (from a publishing request's `waitUntil`) must end within 30 s.
//!
//! Not here: the message format (`delivery`), the sends (`delivery::consumer`).

use super::lease::{PRODUCTION_CONNECTIONS, SEND_SLACK_MS};

/// Cloudflare Queues accepts messages of at most 128 KB.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// A message's bytes besides its ids (`{"shard":"…","log_ids":[]}`, a shard name of at
/// most 64 bytes, and the queue's own framing).
const MESSAGE_OVERHEAD_BYTES: usize = 256;
/// More ids than this in one message would only be split again by the consumer.
pub const MAX_DELIVERIES_PER_MESSAGE: usize = 1_000;

/// Subrequests per invocation on the Workers Free plan.
pub const FREE_SUBREQUESTS: usize = 50;
/// Subrequests kept for what is not a delivery's fetch: the claim and the record, two
/// health re-read rounds (2 each), the operational events' publish and its queue send,
/// the re-queues of postponed, retried and surplus deliveries.
pub const RESERVED_SUBREQUESTS: usize = 10;
/// A queue consumer invocation may run this long (wall clock).
pub const CONSUMER_WALL_MS: i64 = 15 * 60 * 1000;
/// The largest webhook timeout (SPEC §4.2).
pub const MAX_TIMEOUT_MS: i64 = 30_000;
/// Kept free of sends at the end of an invocation, for its D1 round trips.
const WALL_MARGIN_MS: i64 = 60_000;

/// Deliveries one consumer invocation may take on: one fetch each within the
/// subrequest budget, and rounds of `concurrency` sends of the largest timeout within
/// the wall-clock limit (162 with 6 connections).
pub fn deliveries_per_invocation(subrequest_limit: usize, concurrency: usize) -> usize {
    let by_budget = subrequest_limit.saturating_sub(RESERVED_SUBREQUESTS).max(1);
    let rounds = (CONSUMER_WALL_MS - WALL_MARGIN_MS) / (MAX_TIMEOUT_MS + SEND_SLACK_MS);
    let by_time = usize::try_from(rounds).unwrap_or(1).max(1) * concurrency.clamp(1, PRODUCTION_CONNECTIONS);
    by_budget.min(by_time)
}

/// Work handed to `waitUntil` may run this long after the response.
pub const WAIT_UNTIL_MS: i64 = 30_000;
/// A direct send's D1 round trips (claim, record, health) around its fetch, at most.
const DIRECT_ROUND_TRIPS_MS: i64 = 3_000;

/// Whether a delivery with this timeout can be sent from the publishing request's
/// `waitUntil` (one round: at most 6 deliveries) and recorded before it is cut off.
pub fn fits_direct_send(timeout_ms: u32) -> bool {
    i64::from(timeout_ms) + SEND_SLACK_MS + DIRECT_ROUND_TRIPS_MS <= WAIT_UNTIL_MS
}

/// Splits `ids` into messages of at most `per_message` ids and [`MAX_MESSAGE_BYTES`].
pub fn pack<T: AsRef<str>>(ids: &[T], per_message: usize) -> Vec<&[T]> {
    let per_message = per_message.clamp(1, MAX_DELIVERIES_PER_MESSAGE);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = MESSAGE_OVERHEAD_BYTES;
    for (i, id) in ids.iter().enumerate() {
        // Quotes and a comma around each id.
        let len = id.as_ref().len() + 3;
        if i > start && (i - start == per_message || bytes + len > MAX_MESSAGE_BYTES) {
            out.push(&ids[start..i]);
            start = i;
            bytes = MESSAGE_OVERHEAD_BYTES;
        }
        bytes += len;
    }
    if start < ids.len() {
        out.push(&ids[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_and_paid_budgets() {
        // Free: 50 subrequests, 10 kept for D1 and queue sends.
        assert_eq!(deliveries_per_invocation(FREE_SUBREQUESTS, 6), 40);
        // Paid: 1,000 subrequests, but 27 rounds of 31 s fit in 15 minutes less a minute.
        assert_eq!(deliveries_per_invocation(1_000, 6), 27 * 6);
        assert_eq!(deliveries_per_invocation(1_000, 1), 27);
        assert_eq!(deliveries_per_invocation(5, 6), 1);
    }

    #[test]
    fn the_invocation_cap_keeps_the_lease_inside_the_wall_clock() {
        let n = deliveries_per_invocation(usize::MAX, 6);
        let lease = super::super::lease::batch_lease_ms(n, 6, MAX_TIMEOUT_MS as u32, 0);
        assert!(lease <= CONSUMER_WALL_MS - WALL_MARGIN_MS, "{lease}");
    }

    #[test]
    fn direct_sends_fit_wait_until() {
        assert!(fits_direct_send(10_000));
        assert!(fits_direct_send(26_000));
        assert!(!fits_direct_send(26_001));
        assert!(!fits_direct_send(30_000));
    }

    #[test]
    fn packs_by_count() {
        let ids: Vec<String> = (0..25).map(|i| format!("dlv_{i:024}")).collect();
        let sizes: Vec<usize> = pack(&ids, 10).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert_eq!(pack(&ids, 1).len(), 25);
        assert_eq!(pack(&ids, 0).len(), 25);
        assert!(pack::<String>(&[], 10).is_empty());
        let all: Vec<&String> = pack(&ids, 7).into_iter().flatten().collect();
        assert_eq!(all, ids.iter().collect::<Vec<_>>(), "every id once, in order");
    }

    #[test]
    fn packs_by_bytes() {
        let ids: Vec<String> = (0..200).map(|i| format!("{i:01000}")).collect();
        let chunks = pack(&ids, 1_000);
        assert!(chunks.len() > 1);
        for c in &chunks {
            let bytes: usize = c.iter().map(|id| id.len() + 3).sum::<usize>() + MESSAGE_OVERHEAD_BYTES;
            assert!(bytes <= MAX_MESSAGE_BYTES);
        }
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 200);
    }

    #[test]
    fn a_message_is_filled_to_exactly_128_kb_and_never_beyond() {
        // Each id costs its length plus 3 (quotes, comma); 256 bytes are the envelope.
        // 1,019-character ids cost 1,022 bytes: 128 of them fill 131,072 bytes exactly.
        let ids: Vec<String> = (0..300).map(|i| format!("{i:01019}")).collect();
        let sizes: Vec<usize> = pack(&ids, 1_000).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![128, 128, 44]);
        // One byte more per id: 127 fit.
        let ids: Vec<String> = (0..300).map(|i| format!("{i:01020}")).collect();
        assert_eq!(pack(&ids, 1_000)[0].len(), 127);
    }

    #[test]
    fn an_id_larger_than_a_message_still_travels_alone() {
        let ids = vec!["a".repeat(200_000), "b".to_string()];
        let chunks = pack(&ids, 10);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![1, 1]);
    }
}
