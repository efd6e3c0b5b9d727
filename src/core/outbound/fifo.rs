//! Which of a scheduled endpoint's pending deliveries may be attempted now (SPEC §9.3).
//!
//! A FIFO endpoint sends only its oldest pending delivery (publish order), one at a time:
//! while that one waits for a retry, every later one waits too, without using attempts;
//! once it ends (success or exhausted) it is no longer pending and the next one is the
//! head. An unordered endpoint sends whatever is due. Either way the rate limit's
//! [`Pacer`] gives the start times. The caller reads the rows (D1 stays the source of
//! truth for what is pending and in which order) and does the sending.

use crate::core::outbound::rate_limit::Pacer;

/// `ordering` of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    #[default]
    None,
    Fifo,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::Fifo => "fifo",
        }
    }

    pub fn parse(s: &str) -> Option<Ordering> {
        match s {
            "none" => Some(Ordering::None),
            "fifo" => Some(Ordering::Fifo),
            _ => None,
        }
    }
}

/// A pending delivery of the lane, as read: when it falls due and whose lease holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneRow {
    pub id: String,
    pub due_at: Option<i64>,
    pub leased_until: Option<i64>,
}

impl LaneRow {
    /// Free to be claimed at `now`: due, and no live lease.
    fn ready(&self, now: i64) -> bool {
        self.due_at.is_none_or(|t| t <= now) && self.leased_until.is_none_or(|t| t < now)
    }

    /// When it may become ready.
    fn ready_at(&self) -> i64 {
        self.due_at.unwrap_or(0).max(self.leased_until.map_or(0, |t| t + 1))
    }
}

/// What the scheduler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing pending.
    Idle,
    /// Attempt these deliveries, each not before its start time (ms).
    Send { ids: Vec<String>, starts: Vec<i64> },
    /// Nothing may go before this time (ms).
    WaitUntil(i64),
}

/// A lease held by someone else is looked at again after at most this long: a consumer
/// that claimed a scheduled delivery only hands it over (milliseconds), while a crashed
/// sender's lease runs its course.
pub const LEASE_POLL_MS: i64 = 1_000;

/// The next step of a lane. `rows` are pending deliveries in publish order: for FIFO the
/// head first (due or not), otherwise those ready now; `later` is when the first of the
/// others becomes ready (unordered lanes only; the reader caps a lease's share of it at
/// [`LEASE_POLL_MS`]). `pacer` is the rate limit, if any;
/// `max` caps a chunk and `horizon_ms` how far ahead its start times may reach.
pub fn next_step(
    ordering: Ordering,
    rows: &[LaneRow],
    later: Option<i64>,
    pacer: Option<&mut Pacer>,
    now: i64,
    max: usize,
    horizon_ms: i64,
) -> Step {
    let ready: Vec<&LaneRow> = match ordering {
        Ordering::Fifo => match rows.first() {
            None => return Step::Idle,
            Some(head) if !head.ready(now) => {
                let at = match head.leased_until {
                    Some(t) if t >= now => (t + 1).min(now + LEASE_POLL_MS),
                    _ => head.ready_at(),
                };
                return Step::WaitUntil(at.max(now));
            }
            Some(head) => vec![head],
        },
        Ordering::None => rows.iter().filter(|r| r.ready(now)).take(max.max(1)).collect(),
    };
    if ready.is_empty() {
        let first = rows.iter().map(LaneRow::ready_at).chain(later).min();
        return first.map_or(Step::Idle, |at| Step::WaitUntil(at.max(now)));
    }
    let starts = match pacer {
        Some(p) => {
            let starts = p.take(now, ready.len(), horizon_ms);
            if starts.is_empty() {
                // The bucket is empty: look again when its next token comes within reach.
                return Step::WaitUntil((p.next_ms() - horizon_ms).max(now + 1));
            }
            starts
        }
        None => vec![now; ready.len()],
    };
    let ids = ready.iter().take(starts.len()).map(|r| r.id.clone()).collect();
    Step::Send { ids, starts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, due: Option<i64>, lease: Option<i64>) -> LaneRow {
        LaneRow { id: id.into(), due_at: due, leased_until: lease }
    }

    #[test]
    fn fifo_sends_the_head_only_and_a_waiting_head_holds_the_rest() {
        let rows = vec![row("a", Some(0), None), row("b", Some(0), None)];
        assert_eq!(next_step(Ordering::Fifo, &rows, None, None, 10, 50, 1000),
                   Step::Send { ids: vec!["a".into()], starts: vec![10] });
        // The head failed and retries at 5000: "b" is due but waits.
        let rows = vec![row("a", Some(5000), None), row("b", Some(0), None)];
        assert_eq!(next_step(Ordering::Fifo, &rows, None, None, 10, 50, 1000), Step::WaitUntil(5000));
        assert_eq!(next_step(Ordering::Fifo, &[], None, None, 10, 50, 1000), Step::Idle);
    }

    #[test]
    fn a_leased_head_is_polled_not_skipped() {
        let rows = vec![row("a", Some(0), Some(60_000)), row("b", Some(0), None)];
        assert_eq!(next_step(Ordering::Fifo, &rows, None, None, 10, 50, 1000), Step::WaitUntil(10 + LEASE_POLL_MS));
        let rows = vec![row("a", Some(0), Some(500))];
        assert_eq!(next_step(Ordering::Fifo, &rows, None, None, 10, 50, 1000), Step::WaitUntil(501));
        // An expired lease is no lease.
        let rows = vec![row("a", Some(0), Some(5))];
        assert!(matches!(next_step(Ordering::Fifo, &rows, None, None, 10, 50, 1000), Step::Send { .. }));
    }

    #[test]
    fn unordered_sends_what_is_ready_up_to_the_chunk() {
        let rows: Vec<LaneRow> = (0..5).map(|i| row(&i.to_string(), None, None)).collect();
        assert_eq!(next_step(Ordering::None, &rows, None, None, 7, 3, 1000),
                   Step::Send { ids: vec!["0".into(), "1".into(), "2".into()], starts: vec![7; 3] });
        assert_eq!(next_step(Ordering::None, &[], Some(900), None, 7, 3, 1000), Step::WaitUntil(900));
        assert_eq!(next_step(Ordering::None, &[], None, None, 7, 3, 1000), Step::Idle);
    }

    #[test]
    fn the_rate_limit_spaces_a_chunk_and_waits_for_its_next_token() {
        let rows: Vec<LaneRow> = (0..5).map(|i| row(&i.to_string(), None, None)).collect();
        let mut p = Pacer::new(4, 0);
        // Four per 1,050 ms: 262.5 ms apart.
        assert_eq!(next_step(Ordering::None, &rows, None, Some(&mut p), 0, 50, 600),
                   Step::Send { ids: vec!["0".into(), "1".into(), "2".into()], starts: vec![0, 263, 525] });
        assert_eq!(next_step(Ordering::None, &rows[3..], None, Some(&mut p), 600, 50, 100), Step::WaitUntil(688));
        assert_eq!(next_step(Ordering::Fifo, &rows[3..], None, Some(&mut p), 700, 50, 100),
                   Step::Send { ids: vec!["3".into()], starts: vec![788] });
    }

    #[test]
    fn orderings_by_name() {
        assert_eq!(Ordering::parse("fifo"), Some(Ordering::Fifo));
        assert_eq!(Ordering::parse("none"), Some(Ordering::None));
        assert_eq!(Ordering::parse("FIFO"), None);
        assert_eq!(Ordering::Fifo.as_str(), "fifo");
    }
}
