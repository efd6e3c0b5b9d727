//! Opaque page cursors (SPEC §8.3).
//!
//! Lists are ordered newest first by `(created_at, id)`. A cursor names the last row of
//! a page; the next page is the rows strictly after it in that order, so paging costs the
//! same at any depth (an index seek, not an `OFFSET` scan) and rows inserted meanwhile
//! never shift a page. The text is `base64url("<created_at>.<id>")`: opaque to clients,
//! checked on the way in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::core::api::error::{ApiError, FieldErrors};

/// `offset` still works, up to this depth.
pub const MAX_OFFSET: u32 = 10_000;
/// `total` counts exactly up to this many rows; beyond, it says this and `total_capped`.
pub const TOTAL_CAP: u64 = 10_000;

/// The position after a page's last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_at, self.id))
    }

    /// `None` for anything this service did not hand out.
    pub fn decode(text: &str) -> Option<Cursor> {
        if text.is_empty() || text.len() > 200 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        let raw = std::str::from_utf8(&raw).ok()?;
        let (at, id) = raw.split_once('.')?;
        let valid_id = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let valid_at = !at.is_empty() && at.len() <= 16 && at.bytes().all(|b| b.is_ascii_digit());
        if !(valid_id && valid_at) {
            return None;
        }
        Some(Cursor { created_at: at.parse().ok()?, id: id.to_string() })
    }
}

/// `limit` (1–100, default 50) and `cursor` of a list that pages by cursor only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// Reads `limit` and `cursor` from decoded query pairs; anything else is named as unknown.
pub fn parse_page_request<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<PageRequest, ApiError> {
    let mut page = PageRequest { limit: 50, cursor: None };
    let mut errors = FieldErrors::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        if seen.contains(&key) {
            errors.insert(key.to_string(), "given more than once".into());
            continue;
        }
        seen.push(key);
        match key {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => page.limit = n,
                _ => { errors.insert("limit".into(), "must be an integer from 1 to 100".into()); }
            },
            "cursor" => match Cursor::decode(value) {
                Some(c) => page.cursor = Some(c),
                None => { errors.insert("cursor".into(), "must be a next_cursor from a previous page".into()); }
            },
            _ => { errors.insert(key.to_string(), "unknown query parameter".into()); }
        }
    }
    if errors.is_empty() { Ok(page) } else { Err(ApiError::validation(errors)) }
}

/// A page's total as the API renders it: exact up to [`TOTAL_CAP`], capped beyond.
pub fn capped_total(counted: u64) -> (u64, bool) {
    if counted > TOTAL_CAP {
        (TOTAL_CAP, true)
    } else {
        (counted, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_is_opaque() {
        let c = Cursor { created_at: 1_767_225_600_000, id: "dlv_0123456789abcdef01234567".into() };
        let text = c.encode();
        assert!(!text.contains("dlv_"), "{text}");
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text), Some(c));
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        for bad in ["", "!!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("12.wh 1"), &URL_SAFE_NO_PAD.encode("-1.wh_1"),
            &URL_SAFE_NO_PAD.encode("1."), &URL_SAFE_NO_PAD.encode(".wh_1"), &URL_SAFE_NO_PAD.encode("99999999999999999.wh_1"),
            &"A".repeat(201)] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn totals_are_exact_up_to_ten_thousand() {
        assert_eq!(capped_total(0), (0, false));
        assert_eq!(capped_total(10_000), (10_000, false));
        assert_eq!(capped_total(10_001), (10_000, true));
    }

    #[test]
    fn page_requests_name_their_bad_parameter() {
        let ok = parse_page_request([("limit", "100")]).unwrap();
        assert_eq!((ok.limit, ok.cursor), (100, None));
        assert_eq!(parse_page_request([]).unwrap().limit, 50);
        for (pairs, field) in [
            (vec![("limit", "0")], "limit"), (vec![("limit", "101")], "limit"), (vec![("limit", "+5")], "limit"),
            (vec![("cursor", "x")], "cursor"), (vec![("offset", "1")], "offset"), (vec![("limit", "1"), ("limit", "1")], "limit"),
        ] {
            let e = parse_page_request(pairs.clone()).unwrap_err();
            assert!(e.fields.as_ref().unwrap().contains_key(field), "{pairs:?}");
        }
    }

    #[test]
    fn a_page_continues_from_its_cursor() {
        let c = Cursor { created_at: 1_767_225_600_000, id: "wh_01".into() };
        let page = parse_page_request([("cursor", c.encode().as_str()), ("limit", "1")]).unwrap();
        assert_eq!(page, PageRequest { limit: 1, cursor: Some(c) });
        let e = parse_page_request([("cursor", "x")]).unwrap_err();
        assert_eq!(e.fields.unwrap()["cursor"], "must be a next_cursor from a previous page");
        let e = parse_page_request([("limit", "0")]).unwrap_err();
        assert_eq!(e.fields.unwrap()["limit"], "must be an integer from 1 to 100");
        let e = parse_page_request([("offset", "0")]).unwrap_err();
        assert_eq!(e.fields.unwrap()["offset"], "unknown query parameter");
    }

    proptest! {
        #[test]
        fn any_text_decodes_or_is_refused_without_panicking(s in ".{0,300}") {
            let _ = Cursor::decode(&s);
        }

        #[test]
        fn every_cursor_round_trips(at in 0i64..=9_999_999_999_999, id in "[a-z]{1,4}_[0-9a-f]{1,24}") {
            let c = Cursor { created_at: at, id };
            prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
    }
}
