//! Slack-compatible incoming webhooks (also accepted by Mattermost and Rocket.Chat):
//! `{"text": ..., "blocks": [...]}`. `text` is the notification fallback;
//! `blocks` carry the formatted message. The webhook URL is a credential (it
//! alone lets anyone post to the channel), so it is only ever held as a
//! [`SecretString`] and never printed.

use futures::future::BoxFuture;
use reqwest::Url;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::http;
use super::{EventSink, ScalingEvent, Severity, SinkError};

pub struct SlackSink {
    url: Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSink").field("url", &"[REDACTED]").finish_non_exhaustive()
    }
}

/// The Slack URL could not be parsed. Says nothing about the URL itself.
#[derive(Debug, thiserror::Error)]
#[error("the Slack webhook URL is not a valid http(s) URL ({0})")]
pub struct SlackUrlError(String);

impl SlackSink {
    pub fn new(url: &SecretString) -> Result<Self, SlackUrlError> {
        // url::ParseError's message never quotes the input.
        let url = Url::parse(url.expose_secret()).map_err(|e| SlackUrlError(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SlackUrlError("scheme must be http or https".into()));
        }
        Ok(Self { url, client: http::client() })
    }
}

pub(crate) fn payload(e: &ScalingEvent) -> serde_json::Value {
    let icon = match e.severity {
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":rotating_light:",
    };
    let target = escape(&e.target());
    let message = escape(&e.message);
    let text = format!("{icon} {} on {target}: {message}", e.reason);
    let mut context: Vec<String> = vec![format!("severity: {}", e.severity.as_str())];
    if let Some(g) = &e.group {
        context.push(format!("group: `{}`", escape(g)));
    }
    context.extend(e.fields.iter().map(|(k, v)| format!("{}: `{}`", escape(k), escape(v))));
    context.push(format!("at {}", e.time));
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}* on {target}\n{message}", e.reason)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context.join("  ·  ")}]}
        ]
    })
}

/// Slack's mrkdwn control characters (`&`, `<`, `>`): an object name cannot
/// turn into a link or a mention.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl EventSink for SlackSink {
    fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&payload(event)).expect("JSON value serializes");
            http::post_json(&self.client, &self.url, body, HeaderMap::new()).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::ObjectRef;

    #[test]
    fn names_cannot_inject_mentions() {
        let e = ScalingEvent::drain_failed(ObjectRef::node("<!channel>"), "workers", "a & b");
        let p = payload(&e);
        let text = p["text"].as_str().unwrap();
        assert!(text.contains("&lt;!channel&gt;") && text.contains("a &amp; b"), "{text}");
    }

    #[test]
    fn bad_url_error_does_not_echo_it() {
        let err = SlackSink::new(&SecretString::from("hooks.slack.com/services/T000/B000/XXXXsecret")).unwrap_err();
        assert!(!err.to_string().contains("XXXXsecret"));
        let ok = SlackSink::new(&SecretString::from("https://hooks.slack.com/services/T0/B0/XXXXsecret")).unwrap();
        assert!(!format!("{ok:?}").contains("XXXXsecret"));
    }
}
