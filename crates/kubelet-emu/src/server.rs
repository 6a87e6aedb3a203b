//! The kubelet's HTTPS endpoint (port 10250 on a real node): one port per
//! emulator process, one listener per node on the node's own address (its
//! InternalIP, from a network routed to the loopback; see the crate docs). A request's node is the one whose address the connection
//! was accepted on — as with real VMs, the API server reaches a node's kubelet
//! at the node's address, so the node proxy (`/api/v1/nodes/<n>/proxy/...`)
//! lands on the right emulated node. A stopped kubelet's listener is closed:
//! connections are refused, as on a node whose kubelet is down.
//!
//! The serving certificate is not checked by the API server unless it is
//! started with `--kubelet-certificate-authority` (a default cluster is not),
//! so one certificate serves every node (a test that verifies it, as the
//! daemon's direct usage path does, gives one with every node address). With
//! [`crate::EmulatorOptions::webhook_auth`] bearer tokens are authenticated and
//! authorised as the kubelet does in webhook mode; client certificates are not
//! requested, so the API server's node proxy then gets 401 — without it,
//! anything on the loopback may read the stats.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::NodeContext;

pub(crate) type NodesByIp = Arc<Mutex<HashMap<Ipv4Addr, Arc<NodeContext>>>>;

/// A TLS acceptor for the kubelet endpoint from PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use anyhow::Context as _;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("kubelet serving certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("kubelet serving certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("kubelet serving key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections until dropped; connections in flight end with it.
/// `auth`: the client for TokenReviews and SubjectAccessReviews when requests
/// are authenticated and authorised (see [`crate::EmulatorOptions::webhook_auth`]).
pub(crate) async fn serve(listener: TcpListener, acceptor: TlsAcceptor, nodes: NodesByIp, auth: Option<kube::Client>) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("kubelet endpoint accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let local = match stream.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V4(ip)) => ip,
            _ => continue,
        };
        let acceptor = acceptor.clone();
        let nodes = nodes.clone();
        let auth = auth.clone();
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |req| {
                let node = nodes.lock().unwrap_or_else(|e| e.into_inner()).get(&local).cloned();
                let auth = auth.clone();
                async move {
                    if let (Some(client), Some(node)) = (auth, &node)
                        && let Err(denied) = authorize(&client, &node.spec.name, &req).await
                    {
                        return Ok::<_, std::convert::Infallible>(denied);
                    }
                    Ok::<_, std::convert::Infallible>(handle(node, req))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// The subresource of `nodes` the kubelet checks for a path
/// (`pkg/kubelet/server/auth.go`, without fine-grained authorisation).
pub fn subresource(path: &str) -> &'static str {
    if path.starts_with("/stats/") || path == "/stats" {
        "stats"
    } else if path.starts_with("/metrics") {
        "metrics"
    } else {
        "proxy"
    }
}

/// The kubelet's webhook authentication and authorisation: 401 without a
/// token the API server accepts, 403 when the SubjectAccessReview denies
/// `<verb> nodes/<subresource>` on this node.
async fn authorize(client: &kube::Client, node: &str, req: &Request<Incoming>) -> Result<(), Response<Full<Bytes>>> {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
    use kube::api::{Api, PostParams};
    let unauthorized = || text(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n".into());
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let review =
        TokenReview { spec: TokenReviewSpec { token: Some(token.to_string()), audiences: None }, ..Default::default() };
    let reviewed =
        Api::<TokenReview>::all(client.clone()).create(&PostParams::default(), &review).await.map_err(|e| {
            tracing::warn!("kubelet endpoint: TokenReview failed: {e}");
            unauthorized()
        })?;
    let status = reviewed.status.unwrap_or_default();
    let user = match (status.authenticated, status.user) {
        (Some(true), Some(user)) => user,
        _ => return Err(unauthorized()),
    };
    // The kubelet maps the HTTP method to a verb as the API server does.
    let verb = match *req.method() {
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "get",
    };
    let subresource = subresource(req.uri().path());
    let access = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups,
            uid: user.uid,
            extra: user.extra,
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                resource: Some("nodes".into()),
                subresource: Some(subresource.into()),
                name: Some(node.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let allowed = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &access)
        .await
        .map(|r| r.status.is_some_and(|s| s.allowed))
        .unwrap_or_else(|e| {
            tracing::warn!("kubelet endpoint: SubjectAccessReview failed: {e}");
            false
        });
    if allowed {
        return Ok(());
    }
    let who = user.username.unwrap_or_default();
    Err(text(
        StatusCode::FORBIDDEN,
        "text/plain",
        format!("Forbidden (user={who}, verb={verb}, resource=nodes, subresource={subresource})\n"),
    ))
}

fn handle(node: Option<Arc<NodeContext>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(node) = node else {
        return text(StatusCode::NOT_FOUND, "text/plain", "no node at this address\n".into());
    };
    if req.method() != http::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n".into());
    }
    let now = jiff::Timestamp::now();
    let name = node.spec.name.as_str();
    let samples = || node.usage.sample(name, now);
    match req.uri().path().trim_end_matches('/') {
        "/stats/summary" => {
            let memory = node.memory_capacity();
            let body = crate::stats::summary(
                name,
                node.registered,
                memory,
                node.usage.node_cpu_total(name, now),
                &samples(),
                now,
            );
            text(StatusCode::OK, "application/json", body.to_string())
        }
        "/metrics/cadvisor" => {
            let meta = node.pods_meta.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let body = crate::stats::cadvisor(node.usage.node_cpu_total(name, now), &samples(), &meta, now);
            text(StatusCode::OK, "text/plain; version=0.0.4", body)
        }
        "/metrics/resource" => {
            let body = crate::stats::resource_metrics(node.usage.node_cpu_total(name, now), &samples(), now);
            text(StatusCode::OK, "text/plain; version=0.0.4", body)
        }
        "/healthz" => text(StatusCode::OK, "text/plain", "ok".into()),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "404 page not found\n".into()),
    }
}
