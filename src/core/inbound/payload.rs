//! Reading fields out of a provider's JSON payload without trusting its shape.
//!
//! Signed payloads are authentic, not well-formed: a field may be missing, of another
//! type, or absurdly long. These accessors answer `None` for anything unexpected, so
//! parsers never panic and never store unbounded text.

use serde_json::Value;

/// Longest identifier kept (Stripe ids are < 100 characters; platform ids are ours).
pub const MAX_ID_LEN: usize = 255;
/// Longest free text kept (messages, subjects, links).
pub const MAX_TEXT_LEN: usize = 2_000;

/// The value at a path of object keys.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// A non-empty identifier (≤ [`MAX_ID_LEN`] characters, no control characters).
pub fn id(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).and_then(Value::as_str).and_then(clean_id)
}

/// An identifier that Stripe may send as a string or as an expanded object with an `id`.
pub fn id_ref(v: &Value, path: &[&str]) -> Option<String> {
    match at(v, path)? {
        Value::String(s) => clean_id(s),
        obj @ Value::Object(_) => id(obj, &["id"]),
        _ => None,
    }
}

pub fn clean_id(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s.chars().count() <= MAX_ID_LEN && !s.chars().any(char::is_control)).then(|| s.to_string())
}

/// Free text, cut to [`MAX_TEXT_LEN`] characters; empty text is `None`.
pub fn text(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).and_then(Value::as_str).and_then(clip)
}

pub fn clip(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.chars().take(MAX_TEXT_LEN).collect())
}

/// An integer (amounts in minor units, counts, Unix seconds); floats and strings are `None`.
pub fn int(v: &Value, path: &[&str]) -> Option<i64> {
    // D1 stores numbers as f64: anything beyond 2^53 could not round-trip.
    at(v, path).and_then(Value::as_i64).filter(|n| n.unsigned_abs() <= 1 << 53)
}

/// A boolean; anything else is `false`.
pub fn flag(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// An array of strings (non-strings skipped, at most `max` kept).
pub fn strings(v: &Value, path: &[&str], max: usize) -> Vec<String> {
    at(v, path)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).filter_map(clip).take(max).collect())
        .unwrap_or_default()
}

/// An ISO currency code as Stripe sends it (lowercase, 3 letters).
pub fn currency(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path)
        .and_then(Value::as_str)
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_tolerate_every_shape() {
        let v = json!({"a": {"b": "x", "n": 5, "f": 1.5, "big": 1u64 << 60, "t": true, "l": ["p", 1, "q"]},
                       "c": {"id": "cus_1"}, "e": "", "long": "y".repeat(300), "cur": "USD"});
        assert_eq!(id(&v, &["a", "b"]).as_deref(), Some("x"));
        assert_eq!(id(&v, &["a", "n"]), None);
        assert_eq!(id(&v, &["e"]), None);
        assert_eq!(id(&v, &["long"]), None);
        assert_eq!(id(&v, &["nope", "deeper"]), None);
        assert_eq!(id_ref(&v, &["c"]).as_deref(), Some("cus_1"));
        assert_eq!(id_ref(&v, &["a", "b"]).as_deref(), Some("x"));
        assert_eq!(int(&v, &["a", "n"]), Some(5));
        assert_eq!(int(&v, &["a", "f"]), None);
        assert_eq!(int(&v, &["a", "big"]), None);
        assert!(flag(&v, &["a", "t"]));
        assert!(!flag(&v, &["a", "b"]));
        assert_eq!(strings(&v, &["a", "l"], 10), vec!["p", "q"]);
        assert_eq!(strings(&v, &["a", "l"], 1), vec!["p"]);
        assert_eq!(text(&v, &["long"]).map(|s| s.len()), Some(300));
        assert_eq!(currency(&v, &["cur"]).as_deref(), Some("usd"));
        assert_eq!(currency(&v, &["e"]), None);
        assert_eq!(clip(&"é".repeat(3000)).map(|s| s.chars().count()), Some(MAX_TEXT_LEN));
    }
}
