//! Which D1 databases hold workspaces (`SHARDS`) and where a new workspace goes.
//!
//! Pure rules only: the list parsed from the var, and the placement choice from the
//! directory's counts. The directory itself and the per-isolate cache live in
//! `store::shards`; this module never sees a database.

/// The binding that always exists and always holds the directory and the inbound
/// provider state; also the whole deployment when `SHARDS` is unset.
pub const DIRECTORY_BINDING: &str = "DB";

/// At most this many shards: a binding name list longer than that is a typo, not a plan
/// (each shard is a D1 binding of the worker; Cloudflare allows ~5,000 bindings).
pub const MAX_SHARDS: usize = 64;

/// The shard bindings of `SHARDS`, in the order listed (the order breaks placement ties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardList(Vec<String>);

impl ShardList {
    /// Parses `SHARDS` ("DB,DB_2,DB_3"): unset or blank means `DB` alone. Names are
    /// binding names (a letter or `_`, then letters, digits or `_`), listed once each.
    pub fn parse(var: Option<&str>) -> Result<ShardList, String> {
        let Some(text) = var.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(ShardList(vec![DIRECTORY_BINDING.to_string()]));
        };
        let mut names: Vec<String> = Vec::new();
        for raw in text.split(',') {
            let name = raw.trim();
            if !is_binding_name(name) {
                return Err(format!("SHARDS: {name:?} is not a binding name (letters, digits and _, not starting with a digit)"));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("SHARDS: {name} is listed twice"));
            }
            names.push(name.to_string());
        }
        if names.len() > MAX_SHARDS {
            return Err(format!("SHARDS: {} bindings listed, at most {MAX_SHARDS}", names.len()));
        }
        Ok(ShardList(names))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }

    /// Where a workspace that has never been written lives: reads of it find nothing
    /// wherever they look, so they look here without placing it.
    pub fn first(&self) -> &str {
        // `parse` never returns an empty list.
        self.0.first().map_or(DIRECTORY_BINDING, String::as_str)
    }

    /// The shard a new workspace goes to: the one holding the fewest workspaces, ties to
    /// the first listed. `counts` are the directory's (binding, workspaces) pairs; shards
    /// it does not mention hold none, and bindings no longer listed are ignored.
    pub fn place(&self, counts: &[(String, u64)]) -> &str {
        let held = |name: &str| counts.iter().filter(|(n, _)| n == name).map(|(_, c)| *c).sum::<u64>();
        let mut best = self.first();
        let mut best_count = held(best);
        for name in self.0.iter().skip(1) {
            let count = held(name);
            if count < best_count {
                best = name;
                best_count = count;
            }
        }
        best
    }
}

fn is_binding_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> ShardList {
        ShardList::parse(Some(text)).expect("valid list")
    }

    fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn unset_or_blank_is_db_alone() {
        for var in [None, Some(""), Some("   ")] {
            assert_eq!(ShardList::parse(var).unwrap().names(), ["DB"]);
        }
    }

    #[test]
    fn names_are_trimmed_and_kept_in_order() {
        assert_eq!(list(" DB , DB_2,DB_3 ").names(), ["DB", "DB_2", "DB_3"]);
        assert_eq!(list("SHARD_A").names(), ["SHARD_A"]);
        assert_eq!(list("_x1").names(), ["_x1"]);
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        assert!(ShardList::parse(Some("DB,DB")).unwrap_err().contains("listed twice"));
        for bad in ["DB,", ",DB", "DB,,DB_2", "2DB", "DB-2", "DB 2", "DÉ"] {
            let err = ShardList::parse(Some(bad)).unwrap_err();
            assert!(err.contains("not a binding name"), "{bad}: {err}");
        }
        assert!(ShardList::parse(Some(&"A".repeat(65))).is_err());
        assert!(ShardList::parse(Some(&"A".repeat(64))).is_ok());
        let many: Vec<String> = (0..=MAX_SHARDS).map(|i| format!("S{i}")).collect();
        assert!(ShardList::parse(Some(&many.join(","))).unwrap_err().contains("at most 64"));
        let enough: Vec<String> = (0..MAX_SHARDS).map(|i| format!("S{i}")).collect();
        assert_eq!(ShardList::parse(Some(&enough.join(","))).unwrap().names().len(), MAX_SHARDS);
    }

    #[test]
    fn contains_and_first() {
        let l = list("DB_2,DB");
        assert!(l.contains("DB") && l.contains("DB_2") && !l.contains("DB_3"));
        assert_eq!(l.first(), "DB_2");
    }

    #[test]
    fn placement_takes_the_fewest_ties_to_the_first_listed() {
        let l = list("DB,DB_2,DB_3");
        assert_eq!(l.place(&[]), "DB");
        assert_eq!(l.place(&counts(&[("DB", 1)])), "DB_2");
        assert_eq!(l.place(&counts(&[("DB", 1), ("DB_2", 1)])), "DB_3");
        assert_eq!(l.place(&counts(&[("DB", 1), ("DB_2", 1), ("DB_3", 1)])), "DB");
        assert_eq!(l.place(&counts(&[("DB", 5), ("DB_2", 3), ("DB_3", 3)])), "DB_2");
        assert_eq!(l.place(&counts(&[("DB", 2), ("DB_2", 3), ("DB_3", 2)])), "DB");
        assert_eq!(l.place(&counts(&[("DB", 4), ("DB_2", 3), ("DB_3", 2)])), "DB_3");
    }

    #[test]
    fn placement_ignores_bindings_no_longer_listed() {
        let l = list("DB_2,DB_3");
        assert_eq!(l.place(&counts(&[("DB", 0), ("DB_2", 2), ("DB_3", 1)])), "DB_3");
        assert_eq!(l.place(&counts(&[("OLD", 0)])), "DB_2");
    }

    #[test]
    fn one_shard_always_places_there() {
        assert_eq!(list("DB").place(&counts(&[("DB", 1_000_000)])), "DB");
    }
}
