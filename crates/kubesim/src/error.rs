//! API errors, rendered as real `Status` objects.

use serde_json::{Value, json};

use crate::resources::Kind;

/// An error the API answers with: HTTP code, `Status.reason`, message and details,
/// shaped exactly as the API server shapes them so clients classify them correctly.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429/503/500 with retry).
    pub retry_after: Option<u64>,
}

/// One entry of `Status.details.causes`.
pub struct Cause<'a> {
    pub reason: &'a str,
    pub message: &'a str,
    pub field: &'a str,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError { code, reason: reason.to_string(), message: message.into(), details: None, retry_after: None }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn resource_details(kind: Kind, name: &str) -> Value {
        let group = kind.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let mut d = json!({ "name": name, "kind": kind.plural() });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        d
    }

    pub fn not_found(kind: Kind, name: &str) -> Self {
        ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", kind.qualified_resource()))
            .with_details(Self::resource_details(kind, name))
    }

    pub fn already_exists(kind: Kind, name: &str) -> Self {
        ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", kind.qualified_resource()))
            .with_details(Self::resource_details(kind, name))
    }

    pub fn conflict(kind: Kind, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", kind.qualified_resource()),
        )
        .with_details(Self::resource_details(kind, name))
    }

    pub fn stale(kind: Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid: `Kind "name" is invalid: field: message`.
    pub fn invalid(kind: Kind, name: &str, causes: &[Cause<'_>]) -> Self {
        let group = kind.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let text: Vec<String> = causes
            .iter()
            .map(|c| if c.field.is_empty() { c.message.to_string() } else { format!("{}: {}", c.field, c.message) })
            .collect();
        let message = if text.len() == 1 {
            format!("{} \"{name}\" is invalid: {}", kind.kind(), text[0])
        } else {
            format!("{} \"{name}\" is invalid: [{}]", kind.kind(), text.join(", "))
        };
        let causes: Vec<Value> =
            causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect();
        let mut details = json!({ "name": name, "kind": kind.kind(), "causes": causes });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        ApiError::new(422, "Invalid", message).with_details(details)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
        )
    }

    /// 410 Expired: a watch or continue token older than the retained history.
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(500, "InternalError", format!("Internal error occurred: {message}"))
            .with_details(json!({ "causes": [{ "message": message }] }))
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut e = ApiError::new(429, "TooManyRequests", message);
        if let Some(s) = retry_after {
            e.retry_after = Some(s);
            e.details = Some(json!({ "retryAfterSeconds": s }));
        }
        e
    }

    pub fn service_unavailable(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut e = ApiError::new(503, "ServiceUnavailable", message);
        e.retry_after = retry_after;
        if let Some(s) = retry_after {
            e.details = Some(json!({ "retryAfterSeconds": s }));
        }
        e
    }

    pub fn with_causes(mut self, causes: Value) -> Self {
        let mut details = self.details.take().unwrap_or_else(|| json!({}));
        details["causes"] = causes;
        self.details = Some(details);
        self
    }

    /// The `Status` object sent on the wire.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

/// A `Status` with `status: Success`, as returned by deletes of collections and evictions.
pub fn success_status(code: u16, details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}
