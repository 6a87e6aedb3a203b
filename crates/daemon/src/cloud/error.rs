use std::time::Duration;

/// What went wrong talking to OpenStack.
///
/// Every variant names what failed: the Keystone URL, or the operation (`op`,
/// e.g. `show stack k8s-prod`), so one log line is enough to act on. None
/// carries a request body, a header or a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    #[error("OpenStack configuration: {0}")]
    Config(String),
    #[error("Keystone at {auth_url} rejected the credentials (HTTP {status}): {message}")]
    AuthFailed { auth_url: String, status: u16, message: String },
    #[error("Keystone at {auth_url} is unreachable: {detail}")]
    KeystoneUnreachable { auth_url: String, detail: String },
    #[error("Keystone at {auth_url} failed: {message}")]
    Keystone { auth_url: String, message: String },
    #[error("no '{service}' endpoint in the Keystone catalog ({filters}): {message}")]
    NoEndpoint { service: String, filters: String, message: String },
    #[error("{op}: not found (HTTP 404): {message}")]
    NotFound { op: String, message: String },
    #[error("{op}: the stack is busy (HTTP 409 conflict): {message}")]
    Conflict { op: String, message: String },
    #[error("{op}: Heat rejected the request (HTTP 400): {message}")]
    BadRequest { op: String, message: String },
    #[error("{op}: not authorised (HTTP {status}): {message}")]
    Unauthorized { op: String, status: u16, message: String },
    #[error("{op}: Heat failed (HTTP {status}): {message}")]
    Server { op: String, status: u16, message: String },
    #[error("{op}: unexpected HTTP {status}: {message}")]
    Unexpected { op: String, status: u16, message: String },
    #[error("{op}: {url} is unreachable: {detail}")]
    Unreachable { op: String, url: String, detail: String },
    #[error("{op}: no answer within {timeout:?}")]
    Timeout { op: String, timeout: Duration },
    #[error("{op}: unexpected response: {detail}")]
    BadResponse { op: String, detail: String },
}

impl CloudError {
    /// Worth retrying a request that is safe to repeat: the failure says nothing
    /// about the request itself.
    pub fn is_transient(&self) -> bool {
        match self {
            CloudError::Unreachable { .. } | CloudError::Timeout { .. } | CloudError::KeystoneUnreachable { .. } => {
                true
            }
            CloudError::Server { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CloudError::NotFound { .. })
    }
}

/// A reqwest error with its causes ("connection refused"), which its own
/// `Display` leaves out. reqwest never puts headers or bodies in errors.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
