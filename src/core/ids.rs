//! Prefixed random identifiers (`wh_…`, `evt_…`, `dlv_…`).
//!
//! Randomness comes from `getrandom` (crypto.getRandomValues in workerd).

/// 12 random bytes → 24 lowercase hex characters after the prefix.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    fill_random(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
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
