//! The webhook as the daemon runs it: its certificate (the operator's files,
//! or one generated and renewed in the state directory), its listener, and
//! its registration kept calling this replica and trusting its CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::certificate::{CertificateStore, Issued, serving_names};
use super::registration::{ClientTarget, Registered, Registrar};
use super::review::Admitter;
use super::server::{WebhookError, WebhookServer};
use crate::config::AdmissionWebhookConfig;
use crate::files::{MAX_CA_BUNDLE_BYTES, read_text_bounded};
use crate::telemetry::Metrics;

/// How often the registration is checked (someone deleted it, another
/// replica's merge dropped this one's CA) when nothing is due sooner.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// After a failed registration or renewal.
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// Where this replica's CA comes from.
enum Certificate {
    /// The operator's files; `ca-file` (if any) re-read at each check, as
    /// cert-manager rotates it in place.
    Given { ca_file: Option<PathBuf> },
    /// Generated here and renewed before it expires.
    Generated { store: CertificateStore, issued: Issued },
}

impl Certificate {
    fn own_ca(&self) -> Result<Option<String>, WebhookError> {
        match self {
            Self::Generated { issued, .. } => Ok(Some(issued.ca_pem.clone())),
            Self::Given { ca_file: None } => Ok(None),
            Self::Given { ca_file: Some(path) } => read_text_bounded(path, MAX_CA_BUNDLE_BYTES)
                .map(Some)
                .map_err(|e| WebhookError::CaFile { path: path.clone(), problem: e.to_string() }),
        }
    }

    /// Renews a generated certificate that is due; the listener picks the
    /// new files up (`server::ReloadingCertificate`). When it is due next.
    fn renew_if_due(&mut self, now: SystemTime) -> Option<SystemTime> {
        let Self::Generated { store, issued } = self else { return None };
        if now >= store.renew_at(issued) {
            match store.generate(now) {
                Ok(new) => {
                    tracing::info!(
                        not_after = %jiff::Timestamp::try_from(new.not_after).map(|t| t.to_string()).unwrap_or_default(),
                        "admission webhook: serving certificate renewed"
                    );
                    *issued = new;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admission webhook: the certificate could not be renewed; retrying");
                    return Some(now + RETRY_EVERY);
                }
            }
        }
        Some(store.renew_at(issued))
    }
}

/// Starts the webhook: certificate, listener (bound before this returns, so
/// a taken port or an unreadable certificate fails the start) and upkeep.
/// The task ends once `stop` turns true.
pub async fn start(
    config: &AdmissionWebhookConfig,
    own_namespace: String,
    admitter: Admitter,
    metrics: Arc<Metrics>,
    client: Client,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, WebhookError> {
    let target = ClientTarget::of(config);
    let (cert, key, certificate) = match config.given_certificate() {
        Some((cert, key)) => {
            (cert.to_path_buf(), key.to_path_buf(), Certificate::Given { ca_file: config.ca_file.clone() })
        }
        None => {
            let store = CertificateStore {
                dir: config.state_directory.clone(),
                names: serving_names(&target),
                validity: config.certificate_validity.get(),
                renew_before: config.renew_before.get(),
            };
            let issued = store.ensure(SystemTime::now())?;
            (issued.cert.clone(), issued.key.clone(), Certificate::Generated { store, issued })
        }
    };
    // Read once now: a wrong ca-file fails the start, not a check an hour in.
    certificate.own_ca()?;
    // A dry run changes nothing in the cluster: registering would make the
    // API server send pods here (and the webhook answers them unchanged).
    let registers = config.registers() && !admitter.dry_run;
    if config.registers() && !registers {
        tracing::info!("dry run: the admission webhook is served but not registered");
    }
    let server = WebhookServer::bind(config.listen, &cert, &key, admitter, metrics).await?;
    tracing::info!(listen = %server.local_addr(), ?target, registers, "serving the admission webhook");
    let registrar = registers.then(|| Registrar::new(client, target, own_namespace));
    let mut serving_stop = stop.clone();
    Ok(tokio::spawn(async move {
        let serve = server.serve(async move {
            let _ = serving_stop.wait_for(|s| *s).await;
        });
        tokio::join!(serve, upkeep(certificate, registrar, stop));
    }))
}

async fn upkeep(mut certificate: Certificate, registrar: Option<Registrar>, mut stop: watch::Receiver<bool>) {
    if registrar.is_none() && matches!(certificate, Certificate::Given { .. }) {
        return;
    }
    loop {
        let now = SystemTime::now();
        let mut next = now + CHECK_EVERY;
        if let Some(due) = certificate.renew_if_due(now) {
            next = next.min(due);
        }
        if let Some(registrar) = &registrar {
            match certificate.own_ca() {
                Ok(Some(ca)) => match registrar.ensure(&ca).await {
                    Ok(Registered::Applied) => tracing::info!("admission webhook: registration written"),
                    Ok(Registered::Unchanged) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "admission webhook: not registered; retrying");
                        next = next.min(now + RETRY_EVERY);
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "admission webhook: not registered; retrying"),
            }
        }
        let wait = next.duration_since(SystemTime::now()).unwrap_or_default().max(Duration::from_secs(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
