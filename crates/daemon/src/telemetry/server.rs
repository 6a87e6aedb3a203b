//! The telemetry HTTP endpoint: `/metrics`, `/healthz`, `/readyz`.
//!
//! It only reads shared state ([`Metrics`], [`Health`]), so a slow scrape can
//! never hold up the control loop, and a stuck loop cannot hide from the probes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Health, Metrics};
use crate::http_serve::{self, Limits};

/// The content type of the OpenMetrics text format that `prometheus-client`
/// writes. Prometheus negotiates and parses it natively (since 2.5); calling it
/// `text/plain; version=0.0.4` would mislabel the `# EOF` trailer and `_total`
/// counter conventions.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot listen on {addr} (telemetry.listen): {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("telemetry server on {addr} failed: {source}")]
    Serve { addr: SocketAddr, source: std::io::Error },
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Health,
}

/// A bound, not yet serving, telemetry endpoint. Binding first lets the daemon
/// fail at start-up with a clear error when the port is taken, and lets tests
/// bind port 0 and learn the address.
#[derive(Debug)]
pub struct TelemetryServer {
    listener: TcpListener,
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Health,
}

impl TelemetryServer {
    pub async fn bind(addr: SocketAddr, metrics: Arc<Metrics>, health: Health) -> Result<Self, TelemetryError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| TelemetryError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| TelemetryError::Bind { addr, source })?;
        Ok(Self { listener, addr, metrics, health })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish
    /// (at most [`SHUTDOWN_GRACE`]).
    ///
    /// At most [`MAX_CONNECTIONS`] connections are served at once (more wait
    /// in the listen backlog), and a client that has not sent a request's
    /// headers within [`HEADER_READ_TIMEOUT`] is disconnected: idle or slow
    /// clients can neither exhaust the process's file descriptors nor keep
    /// `/healthz` from the kubelet or systemd (axum::serve has neither bound).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), TelemetryError> {
        let addr = self.addr;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(AppState { metrics: self.metrics, health: self.health });
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
        let limits = Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
        };
        http_serve::serve(self.listener, app, limits, "telemetry", |stream| std::future::ready(Some(stream)), shutdown)
            .await;
        Ok(())
    }
}

/// Connections served at once: a few scrapers and probes need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// A client must send a request's headers within this (hyper's default is 30 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long in-flight requests may take once the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], s.metrics.encode()).into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    let l = s.health.liveness();
    let body = format!(
        "{}: main loop heartbeat {:.1}s ago (limit {}s)\n",
        if l.alive { "ok" } else { "unhealthy" },
        l.heartbeat_age.as_secs_f64(),
        l.timeout.as_secs()
    );
    (if l.alive { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, text(body)).into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let r = s.health.readiness();
    let mut body = if r.ready {
        format!("ready ({})\n", r.leadership.as_str())
    } else {
        format!("not ready: waiting for {} ({})\n", r.waiting_for.join(", "), r.leadership.as_str())
    };
    for problem in &r.degraded {
        body.push_str(&format!("degraded: {problem}\n"));
    }
    (if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, text(body)).into_response()
}

fn text(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}
