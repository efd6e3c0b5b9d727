//! Prefixed random identifiers (`wh_…`, `evt_…`, `dlv_…`).
//!
//! Randomness comes from `getrandom` (crypto.getRandomValues in workerd).

/// 12 random bytes → 24 lowercase hex characters after the prefix.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    fill_random(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A delivery id that sorts by creation time: `dlv_` + the time in ms as 12 hex digits +
/// 6 random bytes (the same length as `new_id`). The delivery table's primary key is then
/// also its creation order (migration 0008); SQL makes the same shape with
/// [`delivery_id_sql`].
pub fn new_delivery_id(now_ms: i64) -> String {
    let mut bytes = [0u8; 6];
    fill_random(&mut bytes);
    format!("{DELIVERY_PREFIX}{}{}", delivery_id_time(now_ms), hex::encode(bytes))
}

/// The time part of a delivery id: the lowest id of that millisecond is `dlv_` + this.
pub fn delivery_id_time(ms: i64) -> String {
    format!("{:012x}", ms.clamp(0, 0xffff_ffff_ffff))
}

/// The ids of one event's fan-out: `dlv_` + the time as in [`new_delivery_id`] + 4 random
/// bytes of the event, to which SQL appends 6 random bytes per delivery
/// ([`DELIVERY_RANDOM_SQL`]). They still sort by time, and the event's deliveries are
/// one range of the primary key (`>` the prefix, `<` the prefix + `g`), read back
/// without a `RETURNING` (which D1 counts as two rows read per row).
pub fn new_fanout_id_prefix(now_ms: i64) -> String {
    let mut bytes = [0u8; 4];
    fill_random(&mut bytes);
    format!("{DELIVERY_PREFIX}{}{}", delivery_id_time(now_ms), hex::encode(bytes))
}

/// A delivery id's 6 random bytes, made in SQL (appended to its time, or to a
/// [`new_fanout_id_prefix`]).
pub const DELIVERY_RANDOM_SQL: &str = "lower(hex(randomblob(6)))";

/// Above every id that starts with a fan-out prefix (ids are lowercase hex after it).
pub const FANOUT_ID_RANGE_END: &str = "g";

/// `new_delivery_id` in SQL, for the time in ms the SQL expression `at` gives.
pub fn delivery_id_sql(at: &str) -> String {
    format!("'{DELIVERY_PREFIX}' || printf('%012x', {at}) || {DELIVERY_RANDOM_SQL}")
}

pub fn fill_random(bytes: &mut [u8]) {
    // getrandom only fails when the platform has no entropy source; workerd and every
    // host we test on have one. Falling back to zeros would make ids collide, so an id
    // insert would then fail loudly on the primary key instead of silently.
    let _ = getrandom::fill(bytes);
}

/// A uniform sample in [0, 1) for jitter.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Ids we hand out are short ASCII; anything else cannot name one of our resources.
pub fn looks_like_id(candidate: &str, prefix: &str) -> bool {
    candidate.len() <= 64
        && candidate.starts_with(prefix)
        && candidate.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub const WEBHOOK_PREFIX: &str = "wh_";
pub const EVENT_PREFIX: &str = "evt_";
pub const DELIVERY_PREFIX: &str = "dlv_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = new_id(WEBHOOK_PREFIX);
        let b = new_id(WEBHOOK_PREFIX);
        assert!(a.starts_with("wh_") && a.len() == 27);
        assert_ne!(a, b);
        assert!(looks_like_id(&a, WEBHOOK_PREFIX));
        assert!(!looks_like_id("wh_../x", WEBHOOK_PREFIX));
        assert!(!looks_like_id("evt_1", WEBHOOK_PREFIX));
    }

    #[test]
    fn delivery_ids_sort_by_time_and_look_like_ids() {
        let a = new_delivery_id(1_764_000_000_000);
        let b = new_delivery_id(1_764_000_000_001);
        assert_eq!(a.len(), new_id(DELIVERY_PREFIX).len());
        assert!(a.starts_with("dlv_019ab697e800"));
        assert!(a < b && looks_like_id(&a, DELIVERY_PREFIX));
        assert!(a.as_str() >= format!("dlv_{}", delivery_id_time(1_764_000_000_000)).as_str());
        assert_eq!(delivery_id_time(-5), "000000000000");
    }

    #[test]
    fn fanout_prefixes_sort_by_time_and_bound_their_ids() {
        let p = new_fanout_id_prefix(1_764_000_000_000);
        assert!(p.starts_with("dlv_019ab697e800") && p.len() == 4 + 12 + 8);
        assert!(p > new_fanout_id_prefix(1_763_999_999_999) && p < new_fanout_id_prefix(1_764_000_000_001));
        let id = format!("{p}{}", "ffffffffffff");
        assert!(id.as_str() > p.as_str() && id < format!("{p}{FANOUT_ID_RANGE_END}") && looks_like_id(&id, DELIVERY_PREFIX));
        assert_ne!(p, new_fanout_id_prefix(1_764_000_000_000));
    }

    #[test]
    fn random_unit_is_in_range_and_spread_over_it() {
        let xs: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        // Jitter must vary: each tenth of [0, 1) is hit (all but impossible to miss by chance).
        for tenth in 0..10 {
            let (lo, hi) = (f64::from(tenth) / 10.0, f64::from(tenth + 1) / 10.0);
            assert!(xs.iter().any(|x| (lo..hi).contains(x)), "nothing in [{lo}, {hi})");
        }
    }
}
