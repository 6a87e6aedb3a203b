//! A real Kubernetes control plane for integration tests (`tests/kubernetes/up.sh`:
//! etcd, kube-apiserver, kube-controller-manager, kube-scheduler 1.35) with
//! emulated kubelets (`crates/kubelet-emu`).
//!
//! Contract, for any test binary that includes this module:
//! - [`TestKubernetes::start`] runs `up.sh` into a fresh temp directory: one
//!   control plane per test, so tests never see each other's objects and may
//!   run in parallel. Dropping the value runs `down.sh`; a watchdog process
//!   also runs it (and deletes the directory) as soon as the test binary exits,
//!   however it exits, so nothing outlives a crashed test.
//!   `HEATSCALER_TEST_KUBERNETES_KEEP=1` keeps the directory (logs).
//! - `HEATSCALER_TEST_KUBERNETES=DIR`: use the control plane already running in
//!   DIR (started by hand with `tests/kubernetes/up.sh DIR`); it is left
//!   running, and the timing knobs asked for are those DIR was started with.
//! - The binaries must be installed (`tests/kubernetes/install.sh`); if they are
//!   not, the tests fail saying so. They are never skipped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubelet_emu::{Emulator, EmulatorOptions, Timing};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Timing knobs of a control plane started for a test (`up.sh`'s environment).
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    /// `--node-monitor-grace-period`: a node whose heartbeats stop is `Unknown` after this.
    pub node_monitor_grace_period: Option<Duration>,
    /// `--node-monitor-period`: how often the node lifecycle controller looks.
    pub node_monitor_period: Option<Duration>,
    /// `--default-unreachable/not-ready-toleration-seconds`: taint-based eviction delay.
    pub toleration_seconds: Option<u32>,
}

impl Knobs {
    /// For tests of unreachable nodes: Unknown after 4 s, evictions 2 s later.
    pub fn fast_node_lifecycle() -> Knobs {
        Knobs {
            node_monitor_grace_period: Some(Duration::from_secs(4)),
            node_monitor_period: Some(Duration::from_secs(1)),
            toleration_seconds: Some(2),
        }
    }
}

pub struct TestKubernetes {
    pub dir: PathBuf,
    env: BTreeMap<String, String>,
    /// Whether this value started the control plane (and so stops it).
    owned: bool,
}

impl TestKubernetes {
    /// A control plane for one test (see the module docs).
    pub fn start(knobs: Knobs) -> TestKubernetes {
        let (dir, owned) = match std::env::var_os("HEATSCALER_TEST_KUBERNETES") {
            Some(dir) => (PathBuf::from(dir), false),
            None => (start(&knobs), true),
        };
        let env_file = dir.join("env");
        let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; is a control plane running there (tests/kubernetes/up.sh {})?",
                env_file.display(),
                dir.display()
            )
        });
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TestKubernetes { dir, env, owned }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("{key} missing from {}/env", self.dir.display()))
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// The shipped `heatscaler` ServiceAccount's token, bound to `config/kubernetes/rbac.yaml`.
    pub fn heatscaler_kubeconfig(&self) -> PathBuf {
        self.dir.join("heatscaler.kubeconfig")
    }

    /// `--node-monitor-grace-period` the control plane runs with.
    pub fn node_monitor_grace_period(&self) -> Duration {
        let text = self.var("HEATSCALER_K8S_NODE_MONITOR_GRACE_PERIOD");
        humantime::parse_duration(text).unwrap_or_else(|e| panic!("grace period {text}: {e}"))
    }

    pub fn toleration_seconds(&self) -> u64 {
        self.var("HEATSCALER_K8S_TOLERATION_SECONDS").parse().expect("toleration seconds")
    }

    /// A client for a kubeconfig file of this control plane.
    pub async fn client_for(&self, kubeconfig: &Path) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig");
        kube::Client::try_from(config).expect("a client")
    }

    pub async fn admin(&self) -> kube::Client {
        self.client_for(&self.admin_kubeconfig()).await
    }

    /// heatscaler's identity, as the daemon runs in the cluster.
    pub async fn heatscaler(&self) -> kube::Client {
        self.client_for(&self.heatscaler_kubeconfig()).await
    }

    /// Kubelets for this control plane (they use the admin's credentials, as kwok does).
    pub async fn emulator(&self, timing: Timing) -> Emulator {
        let options = EmulatorOptions::new(
            self.admin().await,
            self.var("HEATSCALER_K8S_KUBELET_CERT"),
            self.var("HEATSCALER_K8S_KUBELET_KEY"),
        )
        .timing(timing)
        .node_network(kubelet_emu::parse_network(self.var("HEATSCALER_K8S_NODE_NET")).expect("node network"));
        Emulator::start(options).await.expect("start the kubelet emulator")
    }

    /// kubectl with the admin kubeconfig; panics with its output when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new(Path::new(self.var("HEATSCALER_K8S_BIN")).join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Where the API server's audit log of heatscaler's own requests is, and
    /// how long it is now: [`TestKubernetes::forbidden_since`] reads what follows.
    pub fn audit_mark(&self) -> AuditMark {
        let path = PathBuf::from(self.env.get("HEATSCALER_K8S_AUDIT_LOG").unwrap_or_else(|| {
            panic!(
                "{}/env names no audit log: this control plane was started by an older up.sh; \
                 restart it (tests/kubernetes/down.sh then up.sh)",
                self.dir.display()
            )
        }));
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        AuditMark { path, offset }
    }

    /// The API server's URL (`https://127.0.0.1:PORT`), as the kubeconfigs name it.
    pub fn server(&self) -> String {
        let kc = kube::config::Kubeconfig::read_from(self.heatscaler_kubeconfig()).expect("read the kubeconfig");
        kc.clusters[0].cluster.as_ref().and_then(|c| c.server.clone()).expect("a server in the kubeconfig")
    }

    /// The cluster CA (PEM) the API server's certificate is signed by.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("pki/ca.crt")).expect("the cluster CA")
    }

    /// Kills the API server (SIGKILL to its session), as a crash or an OOM
    /// kill does; returns its command line, for [`TestKubernetes::start_apiserver`].
    pub fn kill_apiserver(&self) -> Vec<String> {
        let pid = std::fs::read_to_string(self.dir.join("run/kube-apiserver.pid")).expect("the API server's pid");
        let pid = pid.trim();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the API server's command line");
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let status = Command::new("kill").arg("-KILL").arg("--").arg(format!("-{pid}")).status().unwrap();
        assert!(status.success(), "kill the API server");
        args
    }

    /// Starts the API server again with the command line it had, as up.sh
    /// starts it (own session, log appended, pid file for down.sh); does not
    /// wait for it to be ready.
    pub fn start_apiserver(&self, args: &[String]) {
        let script = r#"log=$1; pidfile=$2; shift 2; setsid "$@" >>"$log" 2>&1 </dev/null & echo $! >"$pidfile""#;
        let status = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("restart-apiserver")
            .arg(self.dir.join("log/kube-apiserver.log"))
            .arg(self.dir.join("run/kube-apiserver.pid"))
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "start the API server");
    }

    /// The last lines of a component's log (for assertion messages).
    pub fn log_tail(&self, component: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("log").join(format!("{component}.log"))).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for TestKubernetes {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(repo_root().join("tests/kubernetes/down.sh"))
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn start(knobs: &Knobs) -> PathBuf {
    let scripts = repo_root().join("tests/kubernetes");
    let dir = tempfile::Builder::new().prefix("heatscaler-kubernetes-").tempdir().unwrap().keep();
    watchdog(&scripts.join("down.sh"), &dir);
    let started = Instant::now();
    let mut up = Command::new(scripts.join("up.sh"));
    up.arg(&dir).stdin(Stdio::null());
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    if let Some(d) = knobs.node_monitor_grace_period {
        up.env("HEATSCALER_K8S_NODE_MONITOR_GRACE_PERIOD", secs(d));
    }
    if let Some(d) = knobs.node_monitor_period {
        up.env("HEATSCALER_K8S_NODE_MONITOR_PERIOD", secs(d));
    }
    if let Some(s) = knobs.toleration_seconds {
        up.env("HEATSCALER_K8S_TOLERATION_SECONDS", s.to_string());
    }
    let out = up.output().expect("run tests/kubernetes/up.sh");
    if out.status.code() == Some(3) {
        panic!(
            "the Kubernetes test binaries are not installed: run tests/kubernetes/install.sh (CI runs it)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !out.status.success() {
        panic!(
            "tests/kubernetes/up.sh {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("test Kubernetes up in {:.1?} in {}", started.elapsed(), dir.display());
    dir
}

/// A process outside this one's process group that waits for this test binary
/// to exit, however it exits, then stops the control plane and removes its
/// directory. Never waited for: it outlives this process by design.
#[allow(clippy::zombie_processes)]
fn watchdog(down: &Path, dir: &Path) {
    let keep = std::env::var("HEATSCALER_TEST_KUBERNETES_KEEP").is_ok_and(|v| v == "1");
    let script =
        r#"while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; "$2" "$3" >/dev/null 2>&1; [ "$4" = 1 ] || rm -rf "$3""#;
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("heatscaler-kubernetes-watchdog")
        .arg(std::process::id().to_string())
        .arg(down)
        .arg(dir)
        .arg(if keep { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the Kubernetes watchdog");
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A position in the audit log (`tests/kubernetes/up.sh` audits every request
/// of heatscaler's ServiceAccount).
#[derive(Clone, Debug)]
pub struct AuditMark {
    pub path: PathBuf,
    pub offset: u64,
}

impl AuditMark {
    /// heatscaler's requests the API server refused with 403 since the mark,
    /// as `verb URI: message`. The shipped RBAC must cover every call the
    /// daemon makes, so any of these is a defect.
    pub fn forbidden_since(&self) -> Vec<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            let _ = f.seek(SeekFrom::Start(self.offset));
            let _ = f.read_to_string(&mut text);
        }
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["responseStatus"]["code"] == 403)
            .map(|e| {
                format!(
                    "{} {}: {}",
                    e["verb"].as_str().unwrap_or("?"),
                    e["requestURI"].as_str().unwrap_or("?"),
                    e["responseStatus"]["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}
