//! VPA's own admission controller (v1.8.1, built unchanged from its Go module
//! by `tests/vpa-admission/install.sh`) registered with a scenario's real API
//! server as operators run it: a `MutatingWebhookConfiguration` it writes
//! itself (by URL, as out-of-cluster installs do), TLS from a throwaway CA,
//! failure policy `Fail` so a pod created while it is down is refused rather
//! than silently admitted unchanged. heatscaler ships no admission controller
//! (docs/pod-resizing.md): where recreated pods must come back at the
//! recommendation, this is the component that does it, reading the VPA
//! status heatscaler writes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Api;

use super::free_port;
use crate::support::repo_root;

/// The name VPA's admission controller registers its webhook under.
pub const WEBHOOK_CONFIG: &str = "vpa-webhook-config";
/// The annotation it leaves on every pod it changed.
pub const UPDATES_ANNOTATION: &str = "vpaUpdates";

pub struct VpaAdmission {
    child: Child,
    pub log: PathBuf,
}

impl Drop for VpaAdmission {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the binary if it is not cached (seconds when it is).
fn binary() -> PathBuf {
    let script = repo_root().join("tests/vpa-admission/install.sh");
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = std::env::var_os("HEATSCALER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/heatscaler"));
    cache.join("vpa/1.8.1/bin/admission-controller")
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a serving certificate for 127.0.0.1 signed by it.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=vpa-webhook-ca"]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    openssl(dir, &csr);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

impl VpaAdmission {
    /// Starts it with the cluster administrator's kubeconfig (it is a cluster
    /// component, not heatscaler) and waits until its webhook is registered.
    pub async fn start(admin_kubeconfig: &Path, dir: &Path, client: &kube::Client) -> VpaAdmission {
        let bin = binary();
        let dir = dir.join("vpa-admission");
        std::fs::create_dir_all(&dir).unwrap();
        certificates(&dir);
        let port = free_port().to_string();
        let metrics = format!("127.0.0.1:{}", free_port());
        let log = dir.join("admission-controller.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .current_dir(&dir)
            .arg(format!("--kubeconfig={}", admin_kubeconfig.display()))
            .args(["--client-ca-file=ca.crt", "--tls-cert-file=server.crt", "--tls-private-key=server.key"])
            .arg(format!("--port={port}"))
            .arg(format!("--address={metrics}"))
            .args(["--register-by-url=true", "--webhook-address=https://127.0.0.1"])
            .arg(format!("--webhook-port={port}"))
            .args(["--webhook-timeout-seconds=10", "--webhook-failure-policy-fail=true", "--v=2"])
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start VPA's admission controller");
        let mut me = VpaAdmission { child, log };
        let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        // It registers 10 s after start (upstream's fixed delay).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = me.child.try_wait().unwrap() {
                panic!("VPA's admission controller exited ({status}):\n{}", me.log_tail(30));
            }
            if configs.get_opt(WEBHOOK_CONFIG).await.ok().flatten().is_some() {
                return me;
            }
            assert!(
                Instant::now() < deadline,
                "VPA's admission controller registered no webhook:\n{}",
                me.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
