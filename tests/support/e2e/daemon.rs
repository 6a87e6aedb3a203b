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
        metric_in(&text, prefix)
    }

    /// One `/metrics` scrape, retried with back-off until `deadline`: on two
    /// loaded cores a daemon decoding its first list of 150,000 pods answers
    /// in seconds, not the 2 s [`Self::get`] waits, and a missed read must not
    /// pass for "0 planning passes". Each try waits up to 15 s. Fails the
    /// test, with the daemon's log, when no try succeeded.
    pub async fn scrape_patiently(&self, deadline: Duration) -> Metrics {
        use backon::{ExponentialBuilder, Retryable};
        let url = format!("http://{}/metrics", self.telemetry);
        let client = reqwest::Client::new();
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let scrape = || async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let response = client.get(&url).timeout(Duration::from_secs(15)).send().await?;
            response.error_for_status()?.text().await
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(usize::MAX)
            .with_total_delay(Some(deadline));
        match scrape.retry(backoff).await {
            Ok(text) => Metrics { text, attempts: attempts.into_inner() },
            Err(e) => self.fail(&format!("/metrics did not answer within {deadline:?} ({e})")),
        }
    }

    /// Waits until the daemon has completed `n` planning passes more than now.
    pub async fn wait_passes(&self, n: u32, timeout: Duration) {
        let count = || self.metric("heatscaler_loop_duration_seconds_count");
        // The count to wait past is read patiently: a slow answer read as 0
        // would make passes that already ran count as the ones waited for.
        let start = self.scrape_patiently(timeout).await.get("heatscaler_loop_duration_seconds_count").unwrap_or(0.0);
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

/// The value of the first series in a `/metrics` text whose line starts with `prefix`.
fn metric_in(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

/// One successful `/metrics` scrape.
pub struct Metrics {
    pub text: String,
    /// How many tries it took (1 when the first answered in time).
    pub attempts: u32,
}

impl Metrics {
    /// The first series whose line starts with `prefix`; `None` when the
    /// daemon does not export it (not when it was slow to answer).
    pub fn get(&self, prefix: &str) -> Option<f64> {
        metric_in(&self.text, prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A `/metrics` that answers in 3 s, past an ordinary read's 2 s: read as
    /// nothing by [`DaemonProcess::metric`] (the scale run's "0 passes"),
    /// read by the patient scrape.
    #[tokio::test]
    async fn a_slow_metrics_answer_is_waited_for() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let telemetry = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = conn.read(&mut request).await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let body = "heatscaler_loop_duration_seconds_count 7\n";
                    let head =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                    let _ = conn.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        // Any child stands in for the daemon: only its telemetry address is used.
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let d = DaemonProcess { child, log: dir.path().join("log"), telemetry };
        assert_eq!(d.metric("heatscaler_loop_duration_seconds_count").await, None, "an ordinary read gives up");
        let metrics = d.scrape_patiently(Duration::from_secs(30)).await;
        assert_eq!(metrics.get("heatscaler_loop_duration_seconds_count"), Some(7.0));
        assert_eq!(metrics.get("heatscaler_not_exported"), None);
    }
}
