//! The webhook as the daemon runs it: its certificate (the operator's files,
//! or one generated and renewed in the state directory), its listener, and
//! its registration kept calling this replica and trusting its CA.
//!
//! The order a renewal keeps: **register, then serve**. A renewed certificate
//! is issued in memory, its CA merged into the registration beside the one
//! served, and only once the registration read back holds it is it written
//! to the state directory and served. Serving it first would make the API
//! server fail its TLS handshake with this replica until the registration
//! caught up — for as long as the API server refused the write — and admit
//! every pod sent here unmutated (`failurePolicy: Ignore`). Likewise the
//! replica is not ready (`Health::await_webhook_registration`) until the
//! registration trusts the certificate it serves at start, so the webhook's
//! Service sends it nothing before.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::certificate::{CertificateStore, Fresh, Issued, serving_names};
use super::registration::{ClientTarget, Registered, Registrar, RegistrationError};
use super::review::Admitter;
use super::server::{ServedCertificate, WebhookError, WebhookServer};
use crate::config::AdmissionWebhookConfig;
use crate::files::{MAX_CA_BUNDLE_BYTES, read_text_bounded};
use crate::telemetry::{Health, Metrics};

/// How often the registration is checked (someone deleted it, another
/// replica's merge dropped this one's CA) when nothing is due sooner.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// After a failed registration or renewal.
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// Where this replica's CAs are registered: the API server's
/// `MutatingWebhookConfiguration` ([`Registrar`]).
pub trait Register: Send + Sync + 'static {
    /// `Ok` once the registration read back trusts every CA in `cas` (PEM).
    fn ensure(&self, cas: &str) -> impl Future<Output = Result<Registered, RegistrationError>> + Send;
}

impl Register for Registrar {
    fn ensure(&self, cas: &str) -> impl Future<Output = Result<Registered, RegistrationError>> + Send {
        Registrar::ensure(self, cas)
    }
}

/// Where this replica's CA comes from.
enum Certificate {
    /// The operator's files; `ca-file` (if any) re-read at each check, as
    /// cert-manager rotates it in place.
    Given { ca_file: Option<PathBuf> },
    /// Generated here and renewed before it expires; `renewal` is issued and
    /// waits for its CA to be registered before it is kept and served.
    Generated { store: CertificateStore, issued: Issued, renewal: Option<Box<Fresh>> },
}

impl Certificate {
    /// The CAs to register: the one served, and a renewal's.
    fn cas(&self) -> Result<Option<String>, WebhookError> {
        match self {
            Self::Generated { issued, renewal, .. } => {
                Ok(Some(format!("{}{}", issued.ca_pem, renewal.as_ref().map_or("", |r| r.ca_pem.as_str()))))
            }
            Self::Given { ca_file: None } => Ok(None),
            Self::Given { ca_file: Some(path) } => read_text_bounded(path, MAX_CA_BUNDLE_BYTES)
                .map(Some)
                .map_err(|e| WebhookError::CaFile { path: path.clone(), problem: e.to_string() }),
        }
    }
}

/// Starts the webhook: certificate, listener (bound before this returns, so
/// a taken port or an unreadable certificate fails the start) and upkeep.
/// A replica that registers is not ready (`health`) until the registration
/// trusts its CA. The task ends once `stop` turns true.
pub async fn start(
    config: &AdmissionWebhookConfig,
    own_namespace: String,
    admitter: Admitter,
    metrics: Arc<Metrics>,
    client: Client,
    health: Health,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, WebhookError> {
    let target = ClientTarget::of(config);
    let (served, certificate) = match config.given_certificate() {
        Some((cert, key)) => {
            (ServedCertificate::watching(cert, key)?, Certificate::Given { ca_file: config.ca_file.clone() })
        }
        None => {
            let store = CertificateStore {
                dir: config.state_directory.clone(),
                names: serving_names(&target),
                validity: config.certificate_validity.get(),
                renew_before: config.renew_before.get(),
            };
            let issued = store.current(SystemTime::now())?;
            let served = ServedCertificate::held(&issued.cert, &issued.key)?;
            (served, Certificate::Generated { store, issued, renewal: None })
        }
    };
    // Read once now: a wrong ca-file fails the start, not a check an hour in.
    certificate.cas()?;
    // A dry run changes nothing in the cluster: registering would make the
    // API server send pods here (and the webhook answers them unchanged).
    let registers = config.registers() && !admitter.dry_run;
    if config.registers() && !registers {
        tracing::info!("dry run: the admission webhook is served but not registered");
    }
    let server = WebhookServer::bind(config.listen, served.clone(), admitter, metrics).await?;
    tracing::info!(listen = %server.local_addr(), ?target, registers, "serving the admission webhook");
    let registrar = registers.then(|| Registrar::new(client, target, own_namespace));
    if registrar.is_some() {
        health.await_webhook_registration();
    }
    let upkeep = Upkeep { certificate, registrar, served, health };
    let mut serving_stop = stop.clone();
    Ok(tokio::spawn(async move {
        let serve = server.serve(async move {
            let _ = serving_stop.wait_for(|s| *s).await;
        });
        tokio::join!(serve, upkeep.run(stop));
    }))
}

/// The certificate's renewal and the registration, one check at a time.
struct Upkeep<R> {
    certificate: Certificate,
    registrar: Option<R>,
    served: ServedCertificate,
    health: Health,
}

impl<R: Register> Upkeep<R> {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        if self.registrar.is_none() && matches!(self.certificate, Certificate::Given { .. }) {
            return;
        }
        loop {
            let next = self.check(SystemTime::now()).await;
            let wait = next.duration_since(SystemTime::now()).unwrap_or_default().max(Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One check at `now`: issues a renewal that is due, registers the CAs
    /// (the served one, a renewal's), serves the renewal once its CA is
    /// registered. When the next check is due.
    async fn check(&mut self, now: SystemTime) -> SystemTime {
        let mut next = now + CHECK_EVERY;
        if let Certificate::Generated { store, issued, renewal } = &mut self.certificate
            && renewal.is_none()
            && now >= store.renew_at(issued)
        {
            match store.issue(now) {
                Ok(fresh) => *renewal = Some(Box::new(fresh)),
                Err(e) => {
                    tracing::warn!(error = %e, "admission webhook: the certificate could not be renewed; retrying");
                    next = next.min(now + RETRY_EVERY);
                }
            }
        }
        // Without a registrar the operator's registration (or none, in a
        // dry run) is what it is: a renewal is served at once.
        let mut registered = self.registrar.is_none();
        if let Some(registrar) = &self.registrar {
            match self.certificate.cas() {
                Ok(Some(cas)) => match registrar.ensure(&cas).await {
                    Ok(done) => {
                        if done == Registered::Applied {
                            tracing::info!("admission webhook: registration written");
                        }
                        self.health.mark_webhook_registered();
                        registered = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "admission webhook: not registered; retrying"),
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "admission webhook: not registered; retrying"),
            }
            if !registered {
                next = next.min(now + RETRY_EVERY);
            }
        }
        if let Certificate::Generated { store, issued, renewal } = &mut self.certificate {
            if registered && let Some(fresh) = renewal.take() {
                match store.keep(&fresh).map_err(WebhookError::from).and_then(|kept| {
                    self.served.reload().map_err(WebhookError::from)?;
                    Ok(kept)
                }) {
                    Ok(kept) => {
                        tracing::info!(
                            not_after = %jiff::Timestamp::try_from(kept.not_after).map(|t| t.to_string()).unwrap_or_default(),
                            "admission webhook: serving certificate renewed"
                        );
                        *issued = kept;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "admission webhook: the renewed certificate could not be served; retrying");
                        *renewal = Some(fresh);
                    }
                }
            }
            next = next.min(if renewal.is_some() { now + RETRY_EVERY } else { store.renew_at(issued) });
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::registration::certificates;
    use crate::telemetry::HealthOptions;
    use std::sync::Mutex;

    /// A registration in memory: the CAs it trusts; refuses writes while `refusing`.
    #[derive(Clone, Default)]
    struct Bundle {
        trusted: Arc<Mutex<Vec<Vec<u8>>>>,
        refusing: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Bundle {
        fn trusts(&self, ca_pem: &str) -> bool {
            let trusted = self.trusted.lock().unwrap();
            certificates(ca_pem).iter().all(|c| trusted.contains(c))
        }
        fn refuse(&self, refusing: bool) {
            self.refusing.store(refusing, std::sync::atomic::Ordering::Relaxed);
        }
    }

    impl Register for Bundle {
        fn ensure(&self, cas: &str) -> impl Future<Output = Result<Registered, RegistrationError>> + Send {
            let result = if self.refusing.load(std::sync::atomic::Ordering::Relaxed) {
                Err(RegistrationError::Contended)
            } else {
                let mut trusted = self.trusted.lock().unwrap();
                for ca in certificates(cas) {
                    if !trusted.contains(&ca) {
                        trusted.push(ca);
                    }
                }
                Ok(Registered::Applied)
            };
            std::future::ready(result)
        }
    }

    /// The CA (PEM) that signed the certificate being served.
    fn served_ca(upkeep: &Upkeep<Bundle>) -> String {
        let Certificate::Generated { issued, .. } = &upkeep.certificate else { unreachable!() };
        assert_eq!(
            upkeep.served.leaf(),
            certificates(&std::fs::read_to_string(&issued.cert).unwrap())[0],
            "the listener serves the kept certificate"
        );
        issued.ca_pem.clone()
    }

    /// A generated certificate kept in `dir` (1 h validity, renewed 20 min
    /// before), served, and its upkeep registering with `registrar` (none:
    /// a dry run or an operator's registration); synced, so readiness waits
    /// only for what the upkeep decides.
    fn upkeep_in(
        dir: &std::path::Path,
        registrar: Option<Bundle>,
        t0: SystemTime,
    ) -> (CertificateStore, Upkeep<Bundle>, Health) {
        let store = CertificateStore {
            dir: dir.join("state"),
            names: vec![super::super::certificate::ServingName::Ip([127, 0, 0, 1].into())],
            validity: Duration::from_secs(3600),
            renew_before: Duration::from_secs(1200),
        };
        let issued = store.current(t0).unwrap();
        let served = ServedCertificate::held(&issued.cert, &issued.key).unwrap();
        let health = Health::new(HealthOptions { heartbeat_timeout: Duration::from_secs(3600), heat_required: false });
        health.mark_kubernetes_synced();
        if registrar.is_some() {
            health.await_webhook_registration();
        }
        let upkeep = Upkeep {
            certificate: Certificate::Generated { store: store.clone(), issued, renewal: None },
            registrar,
            served,
            health: health.clone(),
        };
        (store, upkeep, health)
    }

    #[tokio::test]
    async fn a_replica_is_ready_and_serves_a_renewed_certificate_only_once_the_registration_trusts_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let bundle = Bundle::default();
        let (store, mut upkeep, health) = upkeep_in(dir.path(), Some(bundle.clone()), t0);

        // The API server refuses the registration: not ready, retried soon.
        bundle.refuse(true);
        let first_ca = served_ca(&upkeep);
        assert_eq!(upkeep.check(t0).await, t0 + RETRY_EVERY);
        assert!(!health.readiness().ready, "its CA is not trusted: the Service must not send it pods");
        bundle.refuse(false);
        assert_eq!(upkeep.check(t0).await, t0 + CHECK_EVERY);
        assert!(bundle.trusts(&first_ca) && health.readiness().ready);

        // Renewal due while the API server refuses writes: the renewed
        // certificate is neither kept nor served, the old one is.
        let due = t0 + Duration::from_secs(2400);
        bundle.refuse(true);
        assert_eq!(upkeep.check(due).await, due + RETRY_EVERY);
        assert_eq!(served_ca(&upkeep), first_ca, "the renewal waits for its CA to be registered");
        assert_eq!(store.current(due).unwrap().ca_pem, first_ca, "and a restart serves the old one too");
        assert!(health.readiness().ready, "what it serves is still trusted");

        // Accepted: both CAs trusted, then the renewal served.
        bundle.refuse(false);
        let later = due + RETRY_EVERY;
        let next = upkeep.check(later).await;
        let second_ca = served_ca(&upkeep);
        assert_ne!(second_ca, first_ca, "renewed");
        assert!(bundle.trusts(&second_ca) && bundle.trusts(&first_ca), "both trusted during the rotation");
        assert_eq!(store.current(later).unwrap().ca_pem, second_ca, "kept");
        assert_eq!(next, later + CHECK_EVERY);
    }

    #[tokio::test]
    async fn without_a_registration_a_renewal_is_served_at_once_and_readiness_does_not_wait() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let (_, mut upkeep, health) = upkeep_in(dir.path(), None, t0);
        let first_ca = served_ca(&upkeep);
        let due = t0 + Duration::from_secs(2400);
        upkeep.check(due).await;
        assert_ne!(served_ca(&upkeep), first_ca);
        assert!(health.readiness().ready, "a dry run is ready without a registration");
    }
}
