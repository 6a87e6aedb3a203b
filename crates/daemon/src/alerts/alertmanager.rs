//! Prometheus Alertmanager: `POST {url}/api/v2/alerts` with a JSON array of alerts.
//!
//! A scaling event is a point in time, not a condition that holds, so each
//! alert carries `endsAt = startsAt + dedup-window` (5 minutes unless
//! configured otherwise — Alertmanager's own `resolve_timeout`): it fires, is
//! routed and grouped like any alert, and resolves by itself; the same event
//! recurring after the window fires again. Labels identify the alert for
//! Alertmanager's grouping and inhibition: `alertname` (the reason),
//! `severity`, `source="heatscaler"`, and `group`/`node`/`namespace`/`pod`
//! where they apply. Everything else goes in annotations.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::Url;
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::http;
use super::{EventSink, ScalingEvent, SinkError};

/// How long an alert stays firing when the dedup window is zero.
const DEFAULT_ALERT_DURATION: Duration = Duration::from_secs(5 * 60);

pub struct AlertmanagerSink {
    endpoint: Url,
    alert_duration: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for AlertmanagerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry basic-auth credentials.
        f.debug_struct("AlertmanagerSink").field("alert_duration", &self.alert_duration).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    labels: BTreeMap<&'static str, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
}

impl AlertmanagerSink {
    /// `base` is Alertmanager's base URL (with its route prefix, if any).
    pub fn new(base: Url, alert_duration: Duration) -> Self {
        let mut endpoint = base;
        if let Ok(mut segments) = endpoint.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "v2", "alerts"]);
        }
        let alert_duration = if alert_duration.is_zero() { DEFAULT_ALERT_DURATION } else { alert_duration };
        Self { endpoint, alert_duration, client: http::client() }
    }

    fn payload(&self, e: &ScalingEvent) -> Vec<u8> {
        let mut labels = BTreeMap::from([
            ("alertname", e.reason.as_str().to_string()),
            ("severity", e.severity.as_str().to_string()),
            ("source", "heatscaler".to_string()),
        ]);
        if let Some(g) = &e.group {
            labels.insert("group", g.clone());
        }
        let mut annotations = BTreeMap::new();
        if let Some(o) = &e.object {
            if o.is_node() {
                labels.insert("node", o.name.clone());
            } else if o.is_pod() {
                labels.insert("pod", o.name.clone());
            } else {
                labels.insert("object_kind", o.kind.clone());
                labels.insert("object_name", o.name.clone());
            }
            if let Some(ns) = &o.namespace {
                labels.insert("namespace", ns.clone());
            }
            if let Some(uid) = &o.uid {
                annotations.insert("object_uid".to_string(), uid.clone());
            }
        }
        annotations.insert("summary".into(), format!("{} on {}", e.reason, e.target()));
        annotations.insert("description".into(), e.message.clone());
        annotations.insert("event_id".into(), e.id.clone());
        for (k, v) in &e.fields {
            annotations.entry(annotation_name(k)).or_insert_with(|| v.clone());
        }
        let ends = e.time.checked_add(self.alert_duration).unwrap_or(e.time);
        let alerts = [Alert { labels, annotations, starts_at: e.time.to_string(), ends_at: ends.to_string() }];
        serde_json::to_vec(&alerts).expect("alerts serialize")
    }
}

/// Alertmanager label and annotation names match `[a-zA-Z_][a-zA-Z0-9_]*`.
fn annotation_name(key: &str) -> String {
    let mut s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

impl EventSink for AlertmanagerSink {
    fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(
            async move { http::post_json(&self.client, &self.endpoint, self.payload(event), HeaderMap::new()).await },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_a_route_prefix() {
        let s = AlertmanagerSink::new(Url::parse("http://am.example:9093").unwrap(), Duration::ZERO);
        assert_eq!(s.endpoint.as_str(), "http://am.example:9093/api/v2/alerts");
        let s = AlertmanagerSink::new(Url::parse("https://ops.example/alertmanager/").unwrap(), Duration::ZERO);
        assert_eq!(s.endpoint.as_str(), "https://ops.example/alertmanager/api/v2/alerts");
        assert_eq!(s.alert_duration, DEFAULT_ALERT_DURATION);
    }

    #[test]
    fn annotation_names_are_valid() {
        assert_eq!(annotation_name("from_size"), "from_size");
        assert_eq!(annotation_name("a.b-c"), "a_b_c");
        assert_eq!(annotation_name("9x"), "_9x");
    }
}
