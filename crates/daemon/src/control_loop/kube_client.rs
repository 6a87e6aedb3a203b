//! The Kubernetes client, as `kubernetes.access` says to build it.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::DaemonError;
use crate::config::{KubernetesAccess, KubernetesConfig};

pub async fn client(k: &KubernetesConfig) -> Result<kube::Client, DaemonError> {
    let err = |what: String| move |e: kube::config::KubeconfigError| DaemonError::Kubernetes(format!("{what}: {e}"));
    let options = KubeConfigOptions { context: k.context.clone(), ..KubeConfigOptions::default() };
    let file = match (&k.kubeconfig, &k.kubeconfig_credential) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(name)) => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                DaemonError::Kubernetes(format!(
                    "kubernetes.kubeconfig-credential {name}: CREDENTIALS_DIRECTORY is not set (add LoadCredential= to the unit)"
                ))
            })?;
            Some(PathBuf::from(dir).join(name))
        }
        (None, None) => None,
    };
    let mut config = match (k.access, file) {
        (KubernetesAccess::InCluster, _) => {
            kube::Config::incluster().map_err(|e| DaemonError::Kubernetes(format!("in-cluster configuration: {e}")))?
        }
        (_, Some(path)) => {
            let kubeconfig = crate::config::kubeconfig::read(&path).map_err(DaemonError::Kubernetes)?;
            let what = format!("kubeconfig {}", path.display());
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(err(what))?
        }
        (KubernetesAccess::Kubeconfig, None) => {
            return Err(DaemonError::Kubernetes(
                "kubernetes.access is kubeconfig but neither kubeconfig nor kubeconfig-credential is set".into(),
            ));
        }
        (KubernetesAccess::Infer, None) => match Kubeconfig::read() {
            // $KUBECONFIG or ~/.kube/config, with the configured context ...
            Ok(kubeconfig) => kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(err("the default kubeconfig".into()))?,
            // ... else the service account, as kubectl does.
            Err(_) => kube::Config::incluster().map_err(|e| {
                DaemonError::Kubernetes(format!("no kubeconfig found and not running in a cluster: {e}"))
            })?,
        },
    };
    // kube-rs retries 429/503/504 itself by default (15 attempts): an eviction
    // a PodDisruptionBudget refuses (429) would then hold a pass for minutes.
    // Every caller here retries on its own terms instead: the watches with
    // their backoff, the actuator with bounded backoff (never on an eviction's
    // 429), the alert sinks with their delivery policy.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| DaemonError::Kubernetes(format!("building the client: {e}")))
}
