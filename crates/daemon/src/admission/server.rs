//! The webhook's HTTPS listener: `POST /mutate-pods`, `admission.k8s.io/v1`
//! `AdmissionReview` in and out, on its own port with the operator's
//! certificate or the generated one (`upkeep`).
//!
//! Its own listener, not the telemetry one: the API server must reach it
//! over TLS (the telemetry port is plain HTTP, often loopback only), and a
//! flood of scrapes must not delay a pod's creation, nor the reverse.
//!
//! What a VPA maintainer expects of an admission controller: no request can
//! make it refuse a pod (every answer is `allowed`; a request it cannot read
//! gets an HTTP error, which the registration's `failurePolicy: Ignore` turns
//! into an admission as created); bodies are bounded ([`MAX_BODY`]); a slow
//! client is cut off ([`HANDSHAKE_TIMEOUT`], [`HEADER_READ_TIMEOUT`],
//! [`BODY_READ_TIMEOUT`]); and pod specs are never logged (env values and
//! secret references live there).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::review::Admitter;
use crate::http_serve::{self, Limits};
use crate::telemetry::{AdmissionOutcome, Metrics};

/// The largest review read. A pod is at most what etcd stores (1.5 MiB by
/// default, 3 MiB requests); a CREATE review carries it once.
pub const MAX_BODY: usize = 4 << 20;
/// A client must finish its TLS handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// ... send a request's headers within this ...
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and its body within this. The API server waits `timeoutSeconds`
/// (the shipped registration: 5 s) and then admits the pod as created.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once (the API servers keep a few alive each).
pub const MAX_CONNECTIONS: usize = 256;
/// How often the certificate files are looked at for a rotation.
const CERT_CHECK_EVERY: Duration = Duration::from_secs(10);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot listen on {addr} (admission-webhook.listen): {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("admission-webhook: {0}")]
    Certificate(#[from] CertificateError),
    #[error("{0}")]
    Generate(#[from] super::certificate::GenerateError),
    #[error("admission-webhook.ca-file {path}: {problem}")]
    CaFile { path: PathBuf, problem: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cert-file {path}: {problem}")]
    Cert { path: PathBuf, problem: String },
    #[error("key-file {path}: {problem}")]
    Key { path: PathBuf, problem: String },
}

#[derive(Clone)]
struct AppState {
    admitter: Admitter,
    metrics: Arc<Metrics>,
}

/// A bound, not yet serving, webhook endpoint (binding first fails the start
/// clearly when the port is taken or the certificate unreadable).
pub struct WebhookServer {
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    state: AppState,
}

impl WebhookServer {
    /// Binds `listen`, serving `certificate`.
    pub async fn bind(
        listen: SocketAddr,
        certificate: ServedCertificate,
        admitter: Admitter,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WebhookError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(certificate.0);
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let addr = listen;
        let listener = TcpListener::bind(addr).await.map_err(|source| WebhookError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| WebhookError::Bind { addr, source })?;
        Ok(Self { listener, addr, acceptor: TlsAcceptor::from(Arc::new(tls)), state: AppState { admitter, metrics } })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets reviews in flight finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let addr = self.addr;
        let app = Router::new().route("/mutate-pods", post(mutate_pods)).with_state(self.state);
        tracing::info!(%addr, "serving the admission webhook (POST /mutate-pods)");
        let limits = Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
        };
        let acceptor = self.acceptor;
        let handshake = move |stream| {
            let acceptor = acceptor.clone();
            async move { tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await.ok()?.ok() }
        };
        http_serve::serve(self.listener, app, limits, "admission webhook", handshake, shutdown).await;
    }
}

async fn mutate_pods(State(s): State<AppState>, body: Body) -> Response {
    let refuse = |status: StatusCode, why: &str| {
        s.metrics.record_admission(AdmissionOutcome::Invalid);
        tracing::warn!(%status, why, "admission webhook: a review could not be read; the pod is admitted as created");
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{why}\n")).into_response()
    };
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "the review's body was not sent in time"),
        Ok(Err(_)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the review is too large, or its body broke off"),
        Ok(Ok(bytes)) => bytes,
    };
    // The request's uid must be echoed: without a readable request there is
    // nothing to answer, and the API server's failure policy decides.
    let review = serde_json::from_slice::<AdmissionReview<DynamicObject>>(&bytes).ok();
    let request: AdmissionRequest<DynamicObject> = match review.map(TryInto::try_into) {
        Some(Ok(request)) => request,
        _ => return refuse(StatusCode::BAD_REQUEST, "not an admission.k8s.io/v1 AdmissionReview request"),
    };
    let answer = s.admitter.review(&request).await;
    s.metrics.record_admission(answer.outcome);
    // Names only: never the pod's spec (env values, secret references).
    let pod = request.object.as_ref().and_then(|o| o.metadata.generate_name.as_deref().or(o.metadata.name.as_deref()));
    match &answer.vpa {
        Some(vpa) if answer.outcome == AdmissionOutcome::DryRun => {
            tracing::debug!(namespace = ?request.namespace, pod, %vpa, "dry run: would admit with the recommendation")
        }
        Some(vpa) => tracing::debug!(namespace = ?request.namespace, pod, %vpa, "admitted with the recommendation"),
        None => tracing::trace!(namespace = ?request.namespace, pod, outcome = ?answer.outcome, "admitted as created"),
    }
    let review = answer.response.into_review();
    ([(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(&review).unwrap_or_default()).into_response()
}

/// The certificate the listener serves, from a PEM pair of files.
///
/// - [`Self::watching`]: the operator's files, re-read when they change
///   (cert-manager and kubelet-projected secrets rotate them in place):
///   checked at most every [`CERT_CHECK_EVERY`], on a handshake.
/// - [`Self::held`]: the generated certificate, re-read only when told
///   ([`Self::reload`]): the upkeep replaces its files once the renewed CA is
///   registered, and a pair half-replaced is never read.
///
/// A rotation that cannot be read keeps the last good pair and is logged.
#[derive(Clone, Debug)]
pub struct ServedCertificate(Arc<ReloadingCertificate>);

impl ServedCertificate {
    pub fn watching(cert: &Path, key: &Path) -> Result<Self, CertificateError> {
        ReloadingCertificate::load(cert, key, true).map(|c| Self(Arc::new(c)))
    }

    pub fn held(cert: &Path, key: &Path) -> Result<Self, CertificateError> {
        ReloadingCertificate::load(cert, key, false).map(|c| Self(Arc::new(c)))
    }

    /// Serves the files' pair from the next handshake on.
    pub fn reload(&self) -> Result<(), CertificateError> {
        let c = &self.0;
        let key = certified_key(&c.cert, &c.key, &c.provider)?;
        let mut current = c.current.lock().unwrap_or_else(|e| e.into_inner());
        current.key = Arc::new(key);
        current.stamp = (modified(&c.cert), modified(&c.key));
        Ok(())
    }

    /// The leaf certificate served now (DER).
    pub fn leaf(&self) -> Vec<u8> {
        let current = self.0.current.lock().unwrap_or_else(|e| e.into_inner());
        current.key.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }
}

#[derive(Debug)]
struct ReloadingCertificate {
    cert: PathBuf,
    key: PathBuf,
    /// Whether a handshake looks at the files for a rotation.
    watch: bool,
    provider: Arc<CryptoProvider>,
    current: StdMutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadingCertificate {
    fn load(cert: &Path, key: &Path, watch: bool) -> Result<Self, CertificateError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = (modified(cert), modified(key));
        let certified = certified_key(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            watch,
            provider,
            current: StdMutex::new(Loaded { key: Arc::new(certified), stamp, checked: Instant::now() }),
        })
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if self.watch && current.checked.elapsed() >= CERT_CHECK_EVERY {
            current.checked = Instant::now();
            let stamp = (modified(&self.cert), modified(&self.key));
            if stamp != current.stamp {
                match certified_key(&self.cert, &self.key, &self.provider) {
                    Ok(key) => {
                        tracing::info!(cert = %self.cert.display(), "admission webhook: serving certificate reloaded");
                        current.key = Arc::new(key);
                        current.stamp = stamp;
                    }
                    Err(e) => tracing::warn!(error = %e, "admission webhook: keeping the previous certificate"),
                }
            }
        }
        Some(current.key.clone())
    }
}

fn certified_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, CertificateError> {
    let cert_error = |problem: String| CertificateError::Cert { path: cert.to_path_buf(), problem };
    let key_error = |problem: String| CertificateError::Key { path: key.to_path_buf(), problem };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate in it".into()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| key_error(e.to_string()))?;
    let signing = provider.key_provider.load_private_key(der).map_err(|e| key_error(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| key_error(format!("does not match the certificate: {e}")))?;
    Ok(certified)
}
