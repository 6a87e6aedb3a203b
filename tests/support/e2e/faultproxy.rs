//! A fault-injecting HTTP proxy between the daemon and one upstream (the
//! Kubernetes API server, or Keystone): it forwards every request as it came
//! and, while a fault is set, answers it with an error status, delays it, or
//! cuts the watch streams it carries. It counts the requests it receives, so a
//! test can bound how hard a client hammers a failing server.
//!
//! Why our own: toxiproxy (the usual tool) works on TCP, so behind TLS it can
//! delay or cut connections but cannot answer 503 or 429 with a Kubernetes
//! `Status`; it is not packaged for this machine either (no Debian package, a
//! Go build we would have to pin). mitmproxy-style HTTP proxies would need a
//! Python stack in the test world for a hundred lines of axum + reqwest. The
//! daemon talks plain HTTP to this proxy on loopback (its kubeconfig names
//! `http://127.0.0.1:PORT` with the same bearer token); the proxy talks TLS to
//! the API server, verifying it with the control plane's CA.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures::StreamExt;

/// What the proxy does to the requests it receives now.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Forward as they came.
    None,
    /// Answer every request with this status (and a body in the upstream's
    /// dialect: a Kubernetes `Status`, or Keystone's error document for 401).
    Status(u16),
    /// Forward every request after this delay.
    Latency(Duration),
}

/// One received request: when, and whether the proxy answered it itself.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub faulted: bool,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    fault: Mutex<Fault>,
    /// Bumped to cut every watch stream in flight.
    drops: tokio::sync::watch::Sender<u64>,
    seen: Mutex<Vec<Seen>>,
}

#[derive(Clone)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:PORT`: what the client is configured with instead of the upstream.
    pub url: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`https://127.0.0.1:6443`, no trailing slash),
    /// trusting `ca_pem` for it when it is HTTPS.
    pub async fn start(upstream: &str, ca_pem: Option<&[u8]>) -> FaultProxy {
        let mut builder = reqwest::Client::builder().no_proxy().pool_idle_timeout(Duration::from_secs(30));
        if let Some(pem) = ca_pem {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("the upstream's CA"));
        }
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: builder.build().expect("the proxy's client"),
            fault: Mutex::new(Fault::None),
            drops: tokio::sync::watch::Sender::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FaultProxy { shared, url, task: Arc::new(task) }
    }

    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    pub fn fault(&self) -> Fault {
        self.shared.fault.lock().unwrap().clone()
    }

    /// Ends every watch response in flight (the client sees its stream end,
    /// as when an API server or a load balancer closes it).
    pub fn drop_watches(&self) {
        self.shared.drops.send_modify(|n| *n += 1);
    }

    /// Every request received since the proxy started.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Requests received in `[from, to)`.
    pub fn count_between(&self, from: Instant, to: Instant) -> usize {
        self.shared.seen.lock().unwrap().iter().filter(|s| s.at >= from && s.at < to).count()
    }
}

fn is_watch(query: &str) -> bool {
    query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1")
}

fn error_body(status: u16, upstream_is_keystone: bool) -> (String, Option<&'static str>) {
    if upstream_is_keystone {
        let title = if status == 401 { "Unauthorized" } else { "Service Unavailable" };
        let body = serde_json::json!({"error": {"code": status, "title": title,
            "message": "The request you have made requires authentication."}});
        return (body.to_string(), None);
    }
    let (reason, retry_after) = match status {
        429 => ("TooManyRequests", Some("1")),
        401 => ("Unauthorized", None),
        500 => ("InternalError", None),
        504 => ("Timeout", None),
        _ => ("ServiceUnavailable", None),
    };
    let message =
        if status == 429 { "Too many requests, please try again later." } else { "injected by the fault proxy" };
    let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": status});
    (body.to_string(), retry_after)
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let fault = shared.fault.lock().unwrap().clone();
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let query = request.uri().query().unwrap_or_default().to_string();
    shared.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        method: request.method().to_string(),
        path: path_and_query.clone(),
        faulted: matches!(fault, Fault::Status(_)),
    });
    match fault {
        Fault::Status(code) => {
            let (body, retry_after) = error_body(code, path_and_query.starts_with("/v3"));
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            r.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
            if let Some(s) = retry_after {
                r.headers_mut().insert("retry-after", HeaderValue::from_static(s));
            }
            return r;
        }
        Fault::Latency(d) => tokio::time::sleep(d).await,
        Fault::None => {}
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return status(StatusCode::BAD_REQUEST, format!("reading the request: {e}")),
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if !matches!(k.as_str(), "host" | "connection" | "content-length" | "transfer-encoding") {
            headers.append(k.clone(), v.clone());
        }
    }
    let url = format!("{}{path_and_query}", shared.upstream);
    let upstream = shared.client.request(parts.method, url).headers(headers).body(body).send().await;
    let upstream = match upstream {
        Ok(r) => r,
        // The upstream is down (killed): what a load balancer in front of it answers.
        Err(e) => return status(StatusCode::BAD_GATEWAY, format!("upstream: {e}")),
    };
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (k, v) in upstream.headers() {
        if !matches!(k.as_str(), "connection" | "content-length" | "transfer-encoding") {
            response = response.header(k.clone(), v.clone());
        }
    }
    if !is_watch(&query) {
        let bytes = upstream.bytes().await.unwrap_or_default();
        return response.body(Body::from(bytes)).unwrap();
    }
    // A watch: stream it, until the upstream ends it or the test drops it.
    let mut drops = shared.drops.subscribe();
    drops.mark_unchanged();
    let chunks = futures::stream::unfold(Some(upstream), |state| async move {
        let mut r = state?;
        match r.chunk().await {
            Ok(Some(c)) => Some((Ok::<Bytes, reqwest::Error>(c), Some(r))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    });
    let cut = async move {
        let _ = drops.changed().await;
    };
    let stream = chunks.take_until(cut);
    response.body(Body::from_stream(stream)).unwrap()
}

fn status(code: StatusCode, message: String) -> Response {
    let mut r = Response::new(Body::from(message));
    *r.status_mut() = code;
    r
}
