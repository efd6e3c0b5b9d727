//! `ApiError`: the one error type of the HTTP edge, and its JSON shape.
//!
//! Rendering into a `worker::Response` happens in `routes::http`; this module only
//! says which status and code each failure has, so it can be tested on the host.

use std::collections::BTreeMap;

use serde::Serialize;

/// Field name → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<FieldErrors>,
    /// Allowed methods, for 405 responses (`Allow` header).
    pub allow: Option<String>,
    /// Seconds to wait before trying again, for 503 responses (`Retry-After` header).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), fields: None, allow: None, retry_after: None }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn forbidden() -> Self {
        Self::new(403, "forbidden", "your role does not allow this action")
    }
    /// 403 for one part of a request the role may not use (the route itself is allowed).
    pub fn forbidden_because(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }
    pub fn method_not_allowed(allow: &[&str]) -> Self {
        let mut e = Self::new(405, "method_not_allowed", "method not allowed on this route");
        e.allow = Some(allow.join(", "));
        e
    }
    pub fn validation(fields: FieldErrors) -> Self {
        let message = match fields.len() {
            1 => "1 field is invalid".to_string(),
            n => format!("{n} fields are invalid"),
        };
        let mut e = Self::new(400, "validation_error", message);
        e.fields = Some(fields);
        e
    }
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        Self::validation(FieldErrors::from([(name.to_string(), problem.into())]))
    }
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_json", message)
    }
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_signature", message)
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(413, "payload_too_large", format!("request body exceeds {limit} bytes"))
    }
    pub fn unsupported_media_type() -> Self {
        Self::new(415, "unsupported_media_type", "Content-Type must be application/json")
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }
    /// 503 while the workspace moves to another shard (SPEC §9.2): writes wait a second.
    pub fn moving() -> Self {
        let mut e = Self::new(503, "workspace_moving", "the workspace is moving to another database; retry in a second");
        e.retry_after = Some(1);
        e
    }
    /// The message is generic on purpose: details go to the log, not to the caller.
    pub fn internal() -> Self {
        Self::new(500, "internal_error", "internal error; the request was not applied")
    }

    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail { code: self.code, message: &self.message, fields: self.fields.as_ref() },
        }
    }
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'static str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<&'a FieldErrors>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_carry_fields() {
        let e = ApiError::field("name", "is required");
        let json = serde_json::to_value(e.body()).unwrap();
        assert_eq!(json["error"]["code"], "validation_error");
        assert_eq!(json["error"]["fields"]["name"], "is required");
        assert_eq!(e.status, 400);
    }

    #[test]
    fn other_errors_have_no_fields_key() {
        let json = serde_json::to_value(ApiError::not_found("webhook").body()).unwrap();
        assert!(json["error"].get("fields").is_none());
        assert_eq!(json["error"]["message"], "webhook not found");
    }
}
