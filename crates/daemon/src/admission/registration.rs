//! The webhook's `MutatingWebhookConfiguration`, written by the daemon itself
//! (as VPA's admission controller does with `--register-webhook`): the same
//! content as `config/admission/webhook-*.yaml`, the `caBundle` from the
//! certificate being served.
//!
//! Every replica registers, not only the leader: each serves with its own CA
//! (`certificate`), and the API server, calling whichever replica a Service or
//! its own host gives it, must trust each. So the `caBundle` is merged — the
//! CAs already there, this replica's appended, the oldest dropped beyond
//! [`MAX_BUNDLE_CAS`] — and written by server-side apply with heatscaler's
//! field manager, guarded by the `resourceVersion` read (two replicas merging
//! at once: one gets 409 and merges again). Everything else written is the
//! same from every replica, so a second apply changes nothing. A replica
//! whose CA was dropped puts it back at its next check.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::act::FIELD_MANAGER;
use crate::config::{AdmissionWebhookConfig, WebhookService};

/// The registration's name (the RBAC's `resourceNames`).
pub const REGISTRATION: &str = "heatscaler";
/// The one webhook in it.
pub const WEBHOOK: &str = "pods.admission.heatscaler.io";
pub const PATH: &str = "/mutate-pods";
/// CAs kept in the `caBundle`: the replicas (two in the shipped Deployment,
/// one per master under systemd) and their previous CAs during a rotation,
/// with room to spare. The bound keeps restarts from growing it for ever.
pub const MAX_BUNDLE_CAS: usize = 8;
/// Attempts at one merge when other replicas write at the same time.
const CONFLICT_RETRIES: usize = 4;
/// How long the API server waits for an answer before admitting the pod as
/// created (`failurePolicy: Ignore`).
const TIMEOUT_SECONDS: i32 = 5;

/// How the API server reaches this daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientTarget {
    /// `https://HOST:PORT/mutate-pods`: the API server on the daemon's host.
    Url { host: IpAddr, port: u16 },
    /// A Service in front of the replicas.
    Service(WebhookService),
}

impl ClientTarget {
    pub fn of(config: &AdmissionWebhookConfig) -> Self {
        match &config.service {
            Some(s) => Self::Service(s.clone()),
            None => {
                let ip = config.listen.ip();
                let host = match ip {
                    IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
                    IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    _ => ip,
                };
                Self::Url { host, port: config.listen.port() }
            }
        }
    }

    fn url(&self) -> Option<String> {
        match self {
            Self::Url { host: IpAddr::V6(v6), port } => Some(format!("https://[{v6}]:{port}{PATH}")),
            Self::Url { host, port } => Some(format!("https://{host}:{port}{PATH}")),
            Self::Service(_) => None,
        }
    }

    fn client_config(&self) -> serde_json::Value {
        match self {
            Self::Service(s) => {
                json!({"service": {"namespace": s.namespace, "name": s.name, "path": PATH, "port": s.port}})
            }
            url => json!({"url": url.url()}),
        }
    }

    /// Whether the registered webhook already calls this target.
    fn is_in(&self, webhook: &MutatingWebhook) -> bool {
        let c = &webhook.client_config;
        match self {
            Self::Service(s) => {
                c.url.is_none()
                    && c.service.as_ref().is_some_and(|r| {
                        r.namespace == s.namespace
                            && r.name == s.name
                            && r.path.as_deref() == Some(PATH)
                            && r.port.unwrap_or(443) == i32::from(s.port)
                    })
            }
            url => c.service.is_none() && c.url == url.url(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("reading MutatingWebhookConfiguration {REGISTRATION}: {0}")]
    Read(kube::Error),
    #[error("applying MutatingWebhookConfiguration {REGISTRATION}: {0}")]
    Apply(kube::Error),
    #[error("MutatingWebhookConfiguration {REGISTRATION}: other writers kept changing it ({CONFLICT_RETRIES} tries)")]
    Contended,
}

/// What one check did.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    /// Written: created, or its bundle or target changed.
    Applied,
    /// Already calls this target and trusts this replica's CA.
    Unchanged,
}

/// The certificates in a PEM bundle, as DER (so the same certificate written
/// with other line breaks is the same). A bundle that does not parse — edited
/// by hand — holds none: the merge then writes this replica's CA alone, and
/// the other replicas put theirs back at their next check.
pub fn certificates(bundle: &str) -> Vec<Vec<u8>> {
    pem::parse_many(bundle)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect()
}

fn to_pem(certificates: &[Vec<u8>]) -> String {
    let blocks: Vec<pem::Pem> = certificates.iter().map(|der| pem::Pem::new("CERTIFICATE", der.clone())).collect();
    pem::encode_many_config(&blocks, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

/// The bundle to register: the CAs in `existing` other than `own`, oldest
/// first, then `own` — at most [`MAX_BUNDLE_CAS`], the oldest dropped.
pub fn merged_bundle(existing: &str, own: &str) -> String {
    let own = certificates(own);
    let mut merged: Vec<Vec<u8>> = certificates(existing).into_iter().filter(|c| !own.contains(c)).collect();
    merged.dedup();
    merged.extend(own);
    let excess = merged.len().saturating_sub(MAX_BUNDLE_CAS);
    to_pem(&merged[excess..])
}

/// The registration, as `config/admission/webhook-*.yaml` ship it.
pub fn registration(target: &ClientTarget, own_namespace: &str, bundle: &str) -> MutatingWebhookConfiguration {
    let mut client_config = target.client_config();
    client_config["caBundle"] = json!(ByteString(bundle.as_bytes().to_vec()));
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": REGISTRATION, "labels": {"app.kubernetes.io/name": "heatscaler"}},
        "webhooks": [{
            "name": WEBHOOK,
            "admissionReviewVersions": ["v1"],
            "clientConfig": client_config,
            // Never block a pod: a webhook down, slow or failing admits it as created.
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
            "reinvocationPolicy": "IfNeeded",
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            // Never the control plane's pods, nor heatscaler's own (its
            // replicas must start while the webhook they serve is down).
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                "operator": "NotIn", "values": ["kube-system", own_namespace]}]},
        }],
    }))
    .expect("the registration is a MutatingWebhookConfiguration")
}

/// The `caBundle` of heatscaler's webhook in `registration` (PEM).
fn bundle(registration: &MutatingWebhookConfiguration) -> String {
    webhook(registration)
        .and_then(|w| w.client_config.ca_bundle.as_ref())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

fn webhook(registration: &MutatingWebhookConfiguration) -> Option<&MutatingWebhook> {
    registration.webhooks.as_ref()?.iter().find(|w| w.name == WEBHOOK)
}

/// Whether `registration` calls `target` and trusts every CA of `own` (DER).
fn holds(registration: &MutatingWebhookConfiguration, target: &ClientTarget, own: &[Vec<u8>]) -> bool {
    let trusted = certificates(&bundle(registration));
    webhook(registration).is_some_and(|w| target.is_in(w)) && own.iter().all(|c| trusted.contains(c))
}

/// Writes this replica's registration.
#[derive(Clone)]
pub struct Registrar {
    api: Api<MutatingWebhookConfiguration>,
    target: ClientTarget,
    own_namespace: String,
}

impl Registrar {
    pub fn new(client: Client, target: ClientTarget, own_namespace: String) -> Self {
        Self { api: Api::all(client), target, own_namespace }
    }

    /// Makes the registration call this target and trust every CA in
    /// `own_ca` (PEM); `Ok` once the registration read back does.
    pub async fn ensure(&self, own_ca: &str) -> Result<Registered, RegistrationError> {
        let own = certificates(own_ca);
        for _ in 0..CONFLICT_RETRIES {
            let existing = self.api.get_opt(REGISTRATION).await.map_err(RegistrationError::Read)?;
            if existing.as_ref().is_some_and(|e| holds(e, &self.target, &own)) {
                return Ok(Registered::Unchanged);
            }
            let bundle = existing.as_ref().map(bundle).unwrap_or_default();
            let mut desired = registration(&self.target, &self.own_namespace, &merged_bundle(&bundle, own_ca));
            // Guarded by what was read: a concurrent merge is not lost.
            desired.metadata.resource_version = existing.as_ref().and_then(|e| e.resource_version());
            let params = PatchParams::apply(FIELD_MANAGER).force();
            match self.api.patch(REGISTRATION, &params, &Patch::Apply(&desired)).await {
                // What the API server stored is what it calls with: read back.
                Ok(stored) if holds(&stored, &self.target, &own) => return Ok(Registered::Applied),
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    tokio::time::sleep(Duration::from_millis(50 + rand::random::<u64>() % 200)).await;
                }
                Err(e) => return Err(RegistrationError::Apply(e)),
            }
        }
        Err(RegistrationError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(n: u8) -> String {
        to_pem(&[vec![n; 75]])
    }

    #[test]
    fn the_bundle_keeps_the_other_replicas_cas_appends_its_own_once_and_is_bounded() {
        assert_eq!(merged_bundle("", &ca(0)), ca(0));
        let two = merged_bundle(&ca(0), &ca(1));
        assert_eq!(certificates(&two), [certificates(&ca(0)), certificates(&ca(1))].concat());
        // Already there, written with other line breaks: moved to the end, not repeated.
        let reflowed = ca(0).replace('\n', "\r\n");
        assert_eq!(certificates(&merged_bundle(&format!("{reflowed}{}", ca(1)), &ca(0))).len(), 2);
        assert_eq!(certificates(&merged_bundle(&two, &ca(0)))[1], certificates(&ca(0))[0]);
        // Restarts and rotations do not grow it for ever: the oldest go.
        let mut bundle = String::new();
        for n in 0..20 {
            bundle = merged_bundle(&bundle, &ca(n));
        }
        let kept = certificates(&bundle);
        assert_eq!(kept.len(), MAX_BUNDLE_CAS);
        assert_eq!(kept.last(), certificates(&ca(19)).first(), "its own is always in");
        assert_eq!(kept[0], certificates(&ca(12))[0]);
    }

    /// The registration the daemon writes is the one the repository ships
    /// (config/admission/webhook-*.yaml), but for the bundle.
    #[test]
    fn the_registration_is_the_shipped_manifests() {
        let shipped = |file: &str| -> serde_json::Value {
            let text = std::fs::read_to_string(format!("{}/../../config/admission/{file}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
            let doc = text.split("\n---\n").last().unwrap();
            let mut v = heatscaler_core::yaml::parse_value(doc).unwrap();
            v["webhooks"][0]["clientConfig"]["caBundle"] = json!("BUNDLE");
            v
        };
        let written = |target: ClientTarget| {
            let mut v = serde_json::to_value(registration(&target, "heatscaler", &ca(0))).unwrap();
            assert_eq!(v["webhooks"][0]["clientConfig"]["caBundle"], json!(ByteString(ca(0).into_bytes())));
            v["webhooks"][0]["clientConfig"]["caBundle"] = json!("BUNDLE");
            v
        };
        let url = ClientTarget::Url { host: [127, 0, 0, 1].into(), port: 9443 };
        assert_eq!(written(url), shipped("webhook-systemd.yaml"));
        let service = ClientTarget::Service(WebhookService {
            namespace: "heatscaler".into(),
            name: "heatscaler-webhook".into(),
            port: 443,
        });
        assert_eq!(written(service), shipped("webhook-in-cluster.yaml"));
    }

    #[test]
    fn the_url_is_the_listeners_address_loopback_for_an_unspecified_one() {
        let mut config = AdmissionWebhookConfig { listen: "0.0.0.0:9443".parse().unwrap(), ..Default::default() };
        assert_eq!(ClientTarget::of(&config).url().unwrap(), "https://127.0.0.1:9443/mutate-pods");
        config.listen = "[::]:8443".parse().unwrap();
        assert_eq!(ClientTarget::of(&config).url().unwrap(), "https://[::1]:8443/mutate-pods");
        config.listen = "10.0.0.5:9443".parse().unwrap();
        assert_eq!(ClientTarget::of(&config).url().unwrap(), "https://10.0.0.5:9443/mutate-pods");
        config.service = Some(WebhookService { namespace: "hs".into(), name: "w".into(), port: 443 });
        assert_eq!(ClientTarget::of(&config).url(), None);
    }
}
