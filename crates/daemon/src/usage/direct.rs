//! Reads a kubelet's endpoint directly (`usage.kubelet: direct`), the way the
//! API server's node proxy would reach it, but with the daemon's own bearer
//! token: the kubelet authorises `/stats/*` as `nodes/stats` and `/metrics/*`
//! as `nodes/metrics`, both narrower than the proxy's `nodes/proxy`, which
//! reaches the whole kubelet API (exec, logs, pods).
//!
//! The serving certificate is always verified, against the configured CA
//! bundle only (kubelets' certificates are not from a public CA); there is no
//! insecure mode.

use std::path::{Path, PathBuf};

use super::collector::{MAX_BODY_BYTES, ScrapeFailure};
use crate::files;

/// Direct access to kubelets: the verifying HTTP client and the token file.
pub struct DirectKubelets {
    /// Built once; an unreadable CA bundle fails every scrape with its reason
    /// (configuration validation already requires the file to be set).
    http: Result<reqwest::Client, String>,
    token_file: PathBuf,
}

impl DirectKubelets {
    pub fn new(ca_file: Option<&Path>, token_file: &Path) -> Self {
        let http = match ca_file {
            None => Err("no kubelet-ca-file configured".to_string()),
            Some(path) => client(path).map_err(|e| format!("kubelet CA bundle {}: {e}", path.display())),
        };
        Self { http, token_file: token_file.to_path_buf() }
    }

    /// GET `endpoint` (e.g. `stats/summary`) from a kubelet at `address`
    /// (`https://<InternalIP>:<port>`, from the watched Node:
    /// [`crate::observe::ClusterStore::kubelet_address`]), or fail with why
    /// the Node gives no address.
    pub async fn get(&self, address: &Result<String, String>, endpoint: &str) -> Result<Vec<u8>, ScrapeFailure> {
        let http = self.http.as_ref().map_err(|e| ScrapeFailure::Request(e.clone()))?;
        let address = address.as_ref().map_err(|e| ScrapeFailure::Request(e.clone()))?;
        let url = format!("{address}/{endpoint}");
        let token = read_token(&self.token_file)?;
        let mut response = http
            .get(&url)
            .bearer_auth(token.trim())
            .send()
            .await
            .map_err(|e| ScrapeFailure::Request(format!("{url}: {}", error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeFailure::Request(format!("{url}: HTTP {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| ScrapeFailure::Request(e.to_string()))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY_BYTES {
                return Err(ScrapeFailure::TooLarge(MAX_BODY_BYTES));
            }
        }
        Ok(body)
    }
}

/// The bearer token, re-read at every scrape (projected ServiceAccount tokens
/// rotate), with a bound on its size like every file an operator names.
fn read_token(path: &Path) -> Result<String, ScrapeFailure> {
    files::read_text_bounded(path, files::MAX_SECRET_BYTES)
        .map_err(|e| ScrapeFailure::Request(format!("kubelet token file {}: {e}", path.display())))
}

fn client(ca_file: &Path) -> Result<reqwest::Client, String> {
    let pem = files::read_bounded(ca_file, files::MAX_CA_BUNDLE_BYTES).map_err(|e| e.to_string())?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false).https_only(true);
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| e.to_string())
}

/// reqwest's message plus its causes (the TLS reason is in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addresses: serde_json::Value, port: i32) -> k8s_openapi::api::core::v1::Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "m"},
            "status": {"addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_address_is_the_internal_ip_and_the_registered_port() {
        use crate::observe::convert::kubelet_address;
        let n = node(
            serde_json::json!([{"type": "Hostname", "address": "m"}, {"type": "InternalIP", "address": "10.0.0.5"}]),
            10250,
        );
        assert_eq!(kubelet_address(&n).unwrap(), "https://10.0.0.5:10250");
        let n = node(serde_json::json!([{"type": "InternalIP", "address": "fd00::5"}]), 10250);
        assert_eq!(kubelet_address(&n).unwrap(), "https://[fd00::5]:10250");
        assert!(kubelet_address(&node(serde_json::json!([{"type": "Hostname", "address": "m"}]), 10250)).is_err());
        assert!(kubelet_address(&node(serde_json::json!([{"type": "InternalIP", "address": "10.0.0.5"}]), 0)).is_err());
    }

    #[test]
    fn an_unreadable_ca_bundle_fails_scrapes_with_its_path() {
        let d = DirectKubelets::new(Some(Path::new("/nonexistent/ca.crt")), Path::new("/nonexistent/token"));
        assert!(d.http.unwrap_err().contains("/nonexistent/ca.crt"));
    }

    #[test]
    fn endless_token_and_ca_files_are_refused_at_their_bound() {
        let d = DirectKubelets::new(Some(Path::new("/dev/zero")), Path::new("/dev/zero"));
        let ca = d.http.unwrap_err();
        assert!(ca.contains("/dev/zero") && ca.contains("larger than"), "{ca}");
        let token = read_token(Path::new("/dev/zero")).unwrap_err();
        assert!(format!("{token:?}").contains("larger than"), "{token:?}");
    }
}
