//! Reading JSON request bodies: content type, size limit, syntax, unknown fields.
//!
//! Each check maps to one error code of SPEC §3, so routes can stay one-liners.

use serde_json::{Map, Value};

use crate::core::api::error::{ApiError, FieldErrors};

/// Management bodies (webhook create/update, test, redeliver).
pub const MAX_MANAGEMENT_BODY: usize = 64 * 1024;
/// `POST /api/v1/events`: room for a 256 KiB `data` object plus the envelope.
pub const MAX_PUBLISH_BODY: usize = 256 * 1024 + 4 * 1024;
/// Inbound provider webhooks (SPEC §5).
pub const MAX_INBOUND_BODY: usize = 1024 * 1024;

/// `application/json`, optionally with parameters such as `; charset=utf-8`.
pub fn is_json_content_type(header: Option<&str>) -> bool {
    header
        .and_then(|h| h.split(';').next())
        .map(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
        .unwrap_or(false)
}

/// Refuses a body whose declared length is already over the limit, before reading it.
pub fn check_declared_length(content_length: Option<&str>, limit: usize) -> Result<(), ApiError> {
    match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(n) if n > limit as u64 => Err(ApiError::payload_too_large(limit)),
        _ => Ok(()),
    }
}

/// Parses a JSON object body, checking the media type and the limit first.
/// An empty body is `None` (routes whose fields are all optional accept it).
pub fn parse_object(
    content_type: Option<&str>,
    bytes: &[u8],
    limit: usize,
) -> Result<Option<Map<String, Value>>, ApiError> {
    if bytes.len() > limit {
        return Err(ApiError::payload_too_large(limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json_content_type(content_type) {
        return Err(ApiError::unsupported_media_type());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::invalid_json("request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid_json(format!("request body is not valid JSON: {e}"))),
    }
}

/// Like [`parse_object`] but the body is required.
pub fn require_object(
    content_type: Option<&str>,
    bytes: &[u8],
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    parse_object(content_type, bytes, limit)?
        .ok_or_else(|| ApiError::invalid_json("request body is empty; a JSON object is required"))
}

/// Records every key that is not in `allowed` as an error.
pub fn reject_unknown_fields(obj: &Map<String, Value>, allowed: &[&str], errors: &mut FieldErrors) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.insert(key.clone(), "unknown field".to_string());
        }
    }
}

/// JSON type name for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: Option<&str> = Some("application/json");

    #[test]
    fn content_types() {
        assert!(is_json_content_type(Some("application/json; charset=utf-8")));
        assert!(is_json_content_type(Some("Application/JSON")));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(Some("application/jsonx")));
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn codes_for_each_failure() {
        assert_eq!(parse_object(Some("text/plain"), b"{}", 10).unwrap_err().code, "unsupported_media_type");
        assert_eq!(parse_object(CT, b"{", 10).unwrap_err().code, "invalid_json");
        assert_eq!(parse_object(CT, b"[1]", 10).unwrap_err().code, "invalid_json");
        assert_eq!(parse_object(CT, b"{\"a\":\"bbbbbbbbbbbbb\"}", 10).unwrap_err().status, 413);
        assert_eq!(parse_object(None, b"  ", 10).unwrap(), None);
        assert_eq!(require_object(None, b"", 10).unwrap_err().code, "invalid_json");
        assert!(parse_object(CT, b"{\"a\":1}", 10).unwrap().is_some());
        assert_eq!(check_declared_length(Some("11"), 10).unwrap_err().status, 413);
        assert!(check_declared_length(Some("garbage"), 10).is_ok());
    }

    #[test]
    fn unknown_fields_are_named() {
        let obj = require_object(CT, br#"{"name":"x","colour":"red"}"#, 100).unwrap();
        let mut errors = FieldErrors::new();
        reject_unknown_fields(&obj, &["name"], &mut errors);
        assert_eq!(errors.get("colour").map(String::as_str), Some("unknown field"));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn limits_in_bytes() {
        // SPEC §5: 1 MiB for provider webhooks; 64 KiB for management bodies; a 256 KiB
        // `data` object plus 4 KiB of envelope for a published event.
        assert_eq!(MAX_INBOUND_BODY, 1_048_576);
        assert_eq!(MAX_MANAGEMENT_BODY, 65_536);
        assert_eq!(MAX_PUBLISH_BODY, 266_240);
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_read_one_byte_more_is_refused() {
        let body = br#"{"a":"xxxx"}"#; // 12 bytes
        assert!(parse_object(CT, body, 12).unwrap().is_some());
        let err = parse_object(CT, body, 11).unwrap_err();
        assert_eq!((err.status, err.code), (413, "payload_too_large"));
        assert!(check_declared_length(Some("12"), 12).is_ok());
        assert!(check_declared_length(Some(" 12 "), 12).is_ok());
        assert!(check_declared_length(Some("0"), 12).is_ok());
        assert!(check_declared_length(None, 12).is_ok());
        let err = check_declared_length(Some("13"), 12).unwrap_err();
        assert_eq!((err.status, err.code), (413, "payload_too_large"));
    }
}
