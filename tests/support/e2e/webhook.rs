//! A local webhook receiver: what the daemon alerted, and when it arrived.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::Value;

#[derive(Clone)]
pub struct Webhooks {
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
    pub url: String,
}

impl Webhooks {
    pub async fn start() -> Webhooks {
        let received: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |body: String| {
                let sink = sink.clone();
                async move {
                    let body: Value = serde_json::from_str(&body).unwrap_or_default();
                    sink.lock().unwrap().push((Instant::now(), body["event"].clone()));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhooks { received, url }
    }

    /// Every event received with this reason, with its arrival time.
    pub fn with_reason(&self, reason: &str) -> Vec<(Instant, Value)> {
        self.received.lock().unwrap().iter().filter(|(_, e)| e["reason"] == reason).cloned().collect()
    }

    pub fn reasons(&self) -> Vec<String> {
        self.received.lock().unwrap().iter().map(|(_, e)| e["reason"].as_str().unwrap_or("?").to_string()).collect()
    }

    /// Every event received, in order, one line each: what a failed scenario
    /// prints, so a CI log says what the daemon did and not only its last lines.
    pub fn transcript(&self) -> String {
        let received = self.received.lock().unwrap();
        let first = received.first().map(|(t, _)| *t);
        let line = |(t, e): &(Instant, Value)| {
            let at = first.map_or(Duration::ZERO, |f| t.duration_since(f));
            format!("+{:>7.2}s {} {}", at.as_secs_f64(), e["reason"].as_str().unwrap_or("?"), e["message"])
        };
        received.iter().map(line).collect::<Vec<_>>().join("\n")
    }

    /// Waits until `n` events with `reason` have arrived; returns them all.
    pub async fn wait_count(&self, reason: &str, n: usize, timeout: Duration) -> Vec<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.with_reason(reason);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} {reason} alerts within {timeout:?}; received: {:?}",
                got.len(),
                self.reasons()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an event with `reason` for which `matches` holds.
    pub async fn wait_for(
        &self,
        reason: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(hit) = self.with_reason(reason).into_iter().find(|(_, e)| matches(e)) {
                return hit;
            }
            assert!(Instant::now() < deadline, "no {reason} alert within {timeout:?}; received: {:?}", self.reasons());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
