//! The daemon under test: the built `heatscaler` binary as a child process,
//! exactly as systemd or a container runtime would run it.

#![allow(dead_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct DaemonProcess {
    child: Child,
    log: PathBuf,
    telemetry: SocketAddr,
}

impl DaemonProcess {
    /// Starts `heatscaler --config CONFIG run [extra...]`, logging to `log` (appended).
    pub fn start(config: &Path, log: &Path, telemetry: SocketAddr, extra: &[&str]) -> DaemonProcess {
        let out = File::options().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_heatscaler"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .args(["--stop-timeout", "10s"])
            .args(extra)
            .env("HEATSCALER_LOG", "info,heatscaler=debug")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start the heatscaler binary");
        DaemonProcess { child, log: log.to_path_buf(), telemetry }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn fail(&self, what: &str) -> ! {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("{what}\n--- daemon log (last 60 lines) ---\n{}", tail.join("\n"));
    }

    /// One telemetry endpoint's status and body.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://{}{path}", self.telemetry);
        let r = reqwest::Client::new().get(url).timeout(Duration::from_secs(2)).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.unwrap_or_default()))
    }

    /// Waits for `/readyz` to say ready (first sync of Kubernetes and Heat done).
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.fail(&format!("the daemon exited ({status}) before it was ready"));
            }
            if let Some((200, _)) = self.get("/readyz").await {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("the daemon was not ready within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A metric's value (the first series whose line starts with `prefix`).
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await?;
        text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
    }

    /// Waits until the daemon has completed `n` planning passes more than now.
    pub async fn wait_passes(&self, n: u32, timeout: Duration) {
        let count = || self.metric("heatscaler_loop_duration_seconds_count");
        let start = count().await.unwrap_or(0.0);
        let deadline = Instant::now() + timeout;
        while count().await.unwrap_or(0.0) < start + f64::from(n) {
            if Instant::now() > deadline {
                self.fail(&format!("{n} planning passes did not complete within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`: no cleanup of any kind, as a crash or an OOM kill.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(ok.success(), "kill -{signal} failed");
    }

    /// SIGTERM, then waits for the exit (at most `timeout`); returns the status and how long it took.
    pub async fn terminate(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        self.signal("TERM");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            if start.elapsed() > timeout {
                self.fail(&format!("the daemon did not exit within {timeout:?} of SIGTERM"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines of a daemon log that report an authorization refusal (`403 Forbidden`
/// from the API server): with the shipped RBAC there must be none.
pub fn forbidden_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("forbidden") || lower.contains("code: 403") || lower.contains("\"code\":403")
        })
        .map(str::to_string)
        .collect()
}
