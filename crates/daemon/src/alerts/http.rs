//! The HTTP POST shared by the webhook sinks, and how its outcome maps onto
//! "retry" or "give up".

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::SinkError;

/// One client per sink. Redirects are not followed: a 301/302 would turn the
/// POST into a GET and silently lose the alert (and a signed body must not be
/// replayed to another host), so a redirect is reported as a failure to fix
/// the URL. No client-wide timeout: the dispatcher bounds each attempt.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("heatscaler/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client with rustls and no custom roots always builds")
}

/// POSTs a JSON body. The URL never appears in the error: it may carry a token.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &Url,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<(), SinkError> {
    let response = client
        .post(url.clone())
        .header(CONTENT_TYPE, "application/json")
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(request_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = retry_after(response.headers());
    // Receivers explain a 400 in the body (Alertmanager, Slack's `invalid_payload`).
    let detail = response.text().await.unwrap_or_default();
    let message = describe(status, &detail);
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        Err(SinkError::Retryable { message, retry_after })
    } else {
        Err(SinkError::Permanent(message))
    }
}

fn request_error(e: reqwest::Error) -> SinkError {
    let retry = e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode();
    let message = format!("request failed: {}", error_chain(&e.without_url()));
    if retry { SinkError::retryable(message) } else { SinkError::Permanent(message) }
}

/// reqwest's top-level message is terse ("error sending request"); the cause
/// (connection refused, TLS) is in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

fn describe(status: StatusCode, body: &str) -> String {
    const MAX: usize = 200;
    let body = body.trim();
    if body.is_empty() {
        return format!("receiver answered HTTP {status}");
    }
    let mut end = body.len().min(MAX);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let ellipsis = if end < body.len() { "..." } else { "" };
    format!("receiver answered HTTP {status}: {}{ellipsis}", &body[..end])
}

/// `Retry-After` in seconds (the HTTP-date form is rare on webhooks and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_truncates_on_a_char_boundary() {
        let long = "é".repeat(300);
        let d = describe(StatusCode::BAD_REQUEST, &long);
        assert!(d.ends_with("..."));
        assert!(d.len() < 260);
        assert_eq!(describe(StatusCode::BAD_GATEWAY, " "), "receiver answered HTTP 502 Bad Gateway");
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
