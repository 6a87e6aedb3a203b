//! The chaos soak: `heatscaler run` (the built binary) against the real
//! control plane and the real Keystone + Heat for a bounded time
//! (`HEATSCALER_SOAK_MINUTES`, default 20), under random load and random
//! faults drawn from a seeded RNG (`HEATSCALER_SOAK_SEED`; the seed is printed
//! first, so a run's schedule can be replayed), while invariants are checked
//! every few seconds from outside the daemon — the API server, Heat, the API
//! server's audit log of heatscaler's ServiceAccount, the webhook receiver,
//! and the fault proxy's request counts. Any violation fails the run with the
//! timeline. `#[ignore]`d: 20 minutes is no CI test (docs/decisions.md); run
//!
//! ```sh
//! flock /tmp/heatscaler-e2e.lock cargo test --test openstack chaos::soak -- --ignored --nocapture
//! HEATSCALER_SOAK_MINUTES=4 ...   # the short mode, same code
//! ```
//!
//! Faults, one window at a time (a shuffled deck, so every kind comes round):
//! the API server answering 5xx, 429 (API priority and fairness's answer) or
//! slowly, through a fault proxy in front of it (`harness::faultproxy`); the
//! API server killed (SIGKILL) and started again; heat-engine killed and
//! started again; Keystone answering 401 to every login (a fault proxy in
//! front of it) while the user's tokens are revoked. Meanwhile, on their own
//! clock: every watch cut, an emulated kubelet stopped (started again half the
//! time), the daemon `kill -9`'d and started again.
//!
//! Load, on its own seeded clock: deployments scaled up and down (some beyond
//! what the minions hold: scale-ups), created and emptied (idle minions to
//! remove), PodDisruptionBudgets added and removed, a guarded deployment
//! under `minAvailable: 2` and a DaemonSet throughout.
//!
//! Invariants (docs/reliability.md has the run's figures):
//! - **drained before removed**: when a member leaves Heat, its Node as last
//!   seen (at most a few seconds before) was cordoned and had no pod left
//!   that a drain evicts (not terminating, not a DaemonSet's, not mirror);
//! - **no PDB violated**: no budget's `disruptionsAllowed` below zero at any
//!   watch event, and heatscaler never deletes a pod directly (only the
//!   eviction API, which enforces budgets) — from the audit log;
//! - **no node left cordoned**: cordoned for more than 5 minutes counted while
//!   the daemon runs, no fault is active and the stack is idle;
//! - **no oscillation**: no shrink within `delay-after-add` of a growth
//!   (failed-member repair aside);
//! - **lasting faults alerted**: a fault that lasted past the alert bound
//!   within one daemon's life is alerted (`KubernetesFailing`,
//!   `OpenStackFailing`) at the webhook receiver within 2 minutes;
//! - **bounded requests**: at most [`REQUESTS_PER_MINUTE`] requests reach the
//!   API server's proxy in any minute while it fails;
//! - and, as in every scenario, no 403 for the shipped RBAC (`World`'s drop).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use heatscaler_core::model::MemberStatus;
use heatscaler_core::planner::protocol;
use heatscaler_daemon::cloud::group::NodeGroupBackend;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::builders::{Budget, PodTemplate, pdb};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::harness::faultproxy::{Fault, FaultProxy};
use crate::harness::{self, DaemonProcess, GROUP, Kube, NS, Spec, World, node_name, node_of};
use crate::kubernetes::Knobs;
use crate::support::openstack;

/// `kubernetes.failure-alert-after` and `openstack.failure-alert-after` in the soak's configuration.
const FAILURE_ALERT_AFTER: Duration = Duration::from_secs(30);
/// A lasting fault's alert must reach the webhook receiver within this.
const ALERT_WITHIN: Duration = Duration::from_secs(120);
/// `scale-down.delay-after-add` in the soak's configuration.
const DELAY_AFTER_ADD: Duration = Duration::from_secs(60);
/// How long a node may stay cordoned (counted while nothing excuses it).
const CORDON_GRACE: Duration = Duration::from_secs(300);
/// Requests a failing API server may receive from the daemon in any minute:
/// four watches relisting with back-off (800 ms doubling to 30 s: 7 attempts
/// each in the first minute), the actions in flight retrying with theirs, the
/// Kubernetes Events sink — a few dozen. The finding that led here: 166
/// requests in 39 s from one daemon.
const REQUESTS_PER_MINUTE: usize = 60;
/// How often the monitor looks.
const POLL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ApiServer5xx,
    ApiServer429,
    ApiServerSlow,
    ApiServerKilled,
    HeatEngineKilled,
    Keystone401,
    WatchesCut,
    KubeletStopped,
    DaemonKilled,
}

impl Kind {
    const WINDOWS: [Kind; 6] = [
        Kind::ApiServer5xx,
        Kind::ApiServer429,
        Kind::ApiServerSlow,
        Kind::ApiServerKilled,
        Kind::HeatEngineKilled,
        Kind::Keystone401,
    ];
    const MOMENTS: [Kind; 3] = [Kind::WatchesCut, Kind::KubeletStopped, Kind::DaemonKilled];

    /// The alert a lasting fault of this kind must raise.
    fn alert(self) -> Option<&'static str> {
        match self {
            Kind::ApiServer5xx | Kind::ApiServer429 | Kind::ApiServerKilled => Some("KubernetesFailing"),
            Kind::HeatEngineKilled | Kind::Keystone401 => Some("OpenStackFailing"),
            _ => None,
        }
    }

    /// The API server fails every request meanwhile (the request bound applies).
    fn fails_api_server(self) -> bool {
        matches!(self, Kind::ApiServer5xx | Kind::ApiServer429 | Kind::ApiServerKilled)
    }
}

#[derive(Clone, Debug)]
struct FaultRecord {
    kind: Kind,
    start: Instant,
    end: Option<Instant>,
}

/// One window of a failing API server, as the proxy counted it.
#[derive(Clone, Debug)]
struct RequestWindow {
    kind: Kind,
    at: Duration,
    lasted: Duration,
    total: usize,
    max_per_minute: usize,
}

#[derive(Default)]
struct Record {
    timeline: Vec<String>,
    faults: Vec<FaultRecord>,
    /// Each daemon process: started, ended.
    daemons: Vec<(Instant, Option<Instant>)>,
    checks: BTreeMap<&'static str, u64>,
    violations: Vec<String>,
    /// Alerts due and received: fault kind, when it began, the reason, the delay.
    alerts: Vec<(Kind, Duration, &'static str, Duration)>,
    /// Faults that did not last long enough for an alert, with whether one came anyway.
    short: Vec<(Kind, Duration, bool)>,
    requests: Vec<RequestWindow>,
    /// Fewest healthy pods minus desired healthy, per budget.
    pdb_slack: BTreeMap<String, i32>,
    notes: Vec<String>,
}

/// What the alert bounds leave unaccounted for: the daemon's outage check
/// (every second), the webhook's delivery on loopback, the soak recording a
/// fault's start just before it takes effect, and a restarted daemon's own
/// start (its process, its Kubernetes client) before its first Heat read.
const ALERT_SLACK: Duration = Duration::from_secs(5);

/// How long, within one daemon's life, a fault must last for its alert to be
/// due — from the daemon's own configuration as the soak wrote it, so the
/// invariant follows the settings instead of guessing them.
#[derive(Clone, Copy, Debug)]
struct AlertBounds {
    /// `kubernetes.failure-alert-after` + [`ALERT_SLACK`]: a failing watch is
    /// seen at once (the fault proxy cuts the watches when a window opens,
    /// a killed API server breaks them) and dated from its first error.
    kubernetes: Duration,
    /// `daemon.heat-poll-interval` + max(`openstack.failure-alert-after`,
    /// `openstack.request-timeout`) + [`ALERT_SLACK`]. The first read to fail
    /// starts at most a poll interval after the fault (the previous one
    /// succeeded just before it); the daemon dates the failure from that
    /// read's start but knows of it only when the read ends, at most a
    /// request timeout later; it alerts once the failure is
    /// `failure-alert-after` old. A fault that ends sooner may be over before
    /// the daemon could call it lasting.
    openstack: Duration,
}

impl AlertBounds {
    fn of(config: &heatscaler_daemon::config::Config) -> Self {
        let os = config.openstack.as_ref().expect("the soak's daemon has an openstack section");
        let alert_after = os.failure_alert_after.get();
        Self {
            kubernetes: config.kubernetes.failure_alert_after.get() + ALERT_SLACK,
            openstack: config.daemon.heat_poll_interval.get() + alert_after.max(os.request_timeout.get()) + ALERT_SLACK,
        }
    }

    fn lasting_after(&self, kind: Kind) -> Duration {
        match kind {
            Kind::HeatEngineKilled | Kind::Keystone401 => self.openstack,
            _ => self.kubernetes,
        }
    }
}

/// The soak's shared record, with its clock.
#[derive(Clone)]
struct Soak {
    t0: Instant,
    record: Arc<Mutex<Record>>,
    bounds: AlertBounds,
}

impl Soak {
    fn at(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.t0)
    }

    fn stamp(&self, t: Instant) -> String {
        format!("[{:>7.1}s]", self.at(t).as_secs_f64())
    }

    fn event(&self, text: impl AsRef<str>) {
        let line = format!("{} {}", self.stamp(Instant::now()), text.as_ref());
        println!("{line}");
        self.record.lock().unwrap().timeline.push(line);
    }

    fn violation(&self, text: impl AsRef<str>) {
        let line = format!("{} VIOLATION: {}", self.stamp(Instant::now()), text.as_ref());
        println!("{line}");
        let mut r = self.record.lock().unwrap();
        r.timeline.push(line.clone());
        r.violations.push(line);
    }

    fn checked(&self, what: &'static str, n: u64) {
        *self.record.lock().unwrap().checks.entry(what).or_default() += n;
    }

    fn note(&self, text: impl AsRef<str>) {
        self.event(text.as_ref());
        self.record.lock().unwrap().notes.push(text.as_ref().to_string());
    }

    fn fault_started(&self, kind: Kind, detail: String) -> usize {
        self.event(format!("FAULT {kind:?} begins: {detail}"));
        let mut r = self.record.lock().unwrap();
        r.faults.push(FaultRecord { kind, start: Instant::now(), end: None });
        r.faults.len() - 1
    }

    fn fault_ended(&self, i: usize) {
        let (kind, lasted) = {
            let mut r = self.record.lock().unwrap();
            let f = &mut r.faults[i];
            let now = Instant::now();
            f.end = Some(now);
            (f.kind, now - f.start)
        };
        self.event(format!("FAULT {kind:?} ends after {:.1}s", lasted.as_secs_f64()));
    }

    fn moment(&self, kind: Kind, detail: String) {
        let i = self.fault_started(kind, detail);
        self.record.lock().unwrap().faults[i].end = Some(Instant::now());
    }

    /// A window fault is in force now (or ended less than `settle` ago).
    fn fault_active(&self, settle: Duration) -> bool {
        let now = Instant::now();
        self.record
            .lock()
            .unwrap()
            .faults
            .iter()
            .filter(|f| Kind::WINDOWS.contains(&f.kind))
            .any(|f| f.end.is_none_or(|e| now.saturating_duration_since(e) < settle))
    }

    fn daemon_up(&self) -> bool {
        self.record.lock().unwrap().daemons.last().is_some_and(|(_, end)| end.is_none())
    }
}

/// What the soak changes, and how.
struct Chaos {
    soak: Soak,
    api: FaultProxy,
    keystone: FaultProxy,
    daemon: tokio::sync::Mutex<Option<DaemonProcess>>,
}

fn minutes() -> f64 {
    std::env::var("HEATSCALER_SOAK_MINUTES").ok().map_or(20.0, |v| {
        v.parse().unwrap_or_else(|e| panic!("HEATSCALER_SOAK_MINUTES={v}: {e} (a number of minutes, e.g. 4)"))
    })
}

fn seed() -> u64 {
    std::env::var("HEATSCALER_SOAK_SEED").ok().map_or_else(
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        |v| v.parse().unwrap_or_else(|e| panic!("HEATSCALER_SOAK_SEED={v}: {e} (an unsigned integer)")),
    )
}

fn secs(rng: &mut ChaCha8Rng, from: u64, to: u64) -> Duration {
    Duration::from_millis(rng.random_range(from * 1000..=to * 1000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a 20-minute soak (HEATSCALER_SOAK_MINUTES): run by hand, see docs/testing.md"]
async fn soak() {
    let minutes = minutes();
    let seed = seed();
    println!("CHAOS SOAK: seed {seed} ({minutes} min); replay with HEATSCALER_SOAK_SEED={seed}");
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let _slot = harness::slot().await;
    let w = Arc::new(
        World::new(Spec {
            initial: 2,
            min: 1,
            max: 6,
            kube: Kube::Real {
                // Dead kubelets are noticed in 20 s and their pods evicted a minute later.
                knobs: Knobs {
                    node_monitor_grace_period: Some(Duration::from_secs(20)),
                    node_monitor_period: Some(Duration::from_secs(2)),
                    toleration_seconds: Some(60),
                },
                kubelet: kubelet_emu::Timing { grace_period_scale: 0.1, ..kubelet_emu::Timing::fast() },
            },
            overrides: "scale-down: {unneeded-time: 20s, delay-after-add: 60s, delay-after-delete: 10s, \
                        delay-after-failure: 10s, cooldown-before-removal: 5s, unready-time: 60s, \
                        max-eviction-time: 60s, max-graceful-termination: 10s}\n\
                        scale-up: {max-node-provision-time: 90s}\n\
                        openstack: {failure-alert-after: 30s, request-timeout: 10s, stack-update-timeout: 2m}\n\
                        alerts: {retry-initial: 1s, retry-max: 30s}",
            ..Spec::default()
        })
        .await,
    );
    let k8s = w.k8s.as_ref().expect("the soak runs on the real control plane");
    let os = openstack();

    // The daemon reaches the API server and Keystone through fault proxies.
    let api = FaultProxy::start(&k8s.server(), Some(&k8s.ca_pem())).await;
    let keystone = FaultProxy::start(os.var("HEATSCALER_OS_KEYSTONE_URL"), None).await;
    let bounds = AlertBounds::of(&write_proxied_config(&w, &api.url, &keystone.url));
    println!(
        "alerts due for faults lasting {:?} (Kubernetes) / {:?} (OpenStack) under one daemon, within {ALERT_WITHIN:?}",
        bounds.kubernetes, bounds.openstack
    );

    let soak = Soak { t0: Instant::now(), record: Arc::default(), bounds };
    let chaos = Arc::new(Chaos { soak: soak.clone(), api, keystone, daemon: tokio::sync::Mutex::new(None) });

    // Workloads present throughout: a DaemonSet and a guarded deployment.
    let agent = PodTemplate::new("agent").label("app", "agent").requests("10m", "16Mi").grace_period(2);
    w.create(&agent.daemon_set(NS, "agent")).await;
    let guarded = PodTemplate::new("app").label("app", "guarded").requests("200m", "64Mi").grace_period(2);
    w.create(&guarded.deployment(NS, "guarded", 3)).await;
    w.create(&pdb(NS, "guarded", &[("app", "guarded")], Budget::MinAvailable(2.into()))).await;

    chaos.start_daemon(&w).await;
    {
        let mut d = chaos.daemon.lock().await;
        d.as_mut().unwrap().wait_ready(Duration::from_secs(90)).await;
    }
    soak.event("daemon ready; chaos begins");
    let end = Instant::now() + duration;

    let stop = stop_channel();
    let monitor = tokio::spawn(Monitor::run(w.clone(), chaos.clone(), stop.1.clone()));
    let budgets = tokio::spawn(watch_budgets(w.client.clone(), soak.clone(), stop.1.clone()));
    let load = tokio::spawn(load(w.clone(), soak.clone(), ChaCha8Rng::seed_from_u64(seed ^ 0x10ad), end));
    let moments = tokio::spawn(moments(w.clone(), chaos.clone(), ChaCha8Rng::seed_from_u64(seed ^ 0x3e7), end));
    windows(&w, &chaos, ChaCha8Rng::seed_from_u64(seed), end).await;
    moments.await.unwrap();
    load.await.unwrap();
    chaos.api.set(Fault::None);
    chaos.keystone.set(Fault::None);
    soak.event("chaos over; waiting for the alert deadlines of the last faults");
    let last_due = soak.record.lock().unwrap().faults.iter().map(|f| f.start + ALERT_WITHIN).max();
    if let Some(t) = last_due {
        tokio::time::sleep_until((t + POLL * 2).into()).await;
    }
    let _ = stop.0.send(true);
    monitor.await.unwrap();
    budgets.abort();

    // A clean stop at the end.
    let mut daemon = chaos.daemon.lock().await.take().expect("a daemon runs");
    let (status, took) = daemon.terminate(Duration::from_secs(30)).await;
    if !status.success() {
        soak.violation(format!("the daemon exited with {status} on SIGTERM"));
    }
    soak.event(format!("SIGTERM -> exit in {took:?}"));
    soak.record.lock().unwrap().daemons.last_mut().unwrap().1 = Some(Instant::now());

    let report = report(&soak, seed, minutes, &w);
    println!("{report}");
    let violations = soak.record.lock().unwrap().violations.clone();
    assert!(
        violations.is_empty(),
        "{} invariant violation(s):\n{}\n--- timeline ---\n{}",
        violations.len(),
        violations.join("\n"),
        soak.record.lock().unwrap().timeline.join("\n")
    );
}

/// A stop flag for the monitor tasks.
fn stop_channel() -> (tokio::sync::watch::Sender<bool>, tokio::sync::watch::Receiver<bool>) {
    tokio::sync::watch::channel(false)
}

/// Points the daemon's configuration at the proxies: a kubeconfig naming the
/// API server's proxy (plain HTTP on loopback, the same token), a clouds.yaml
/// naming Keystone's, and the Kubernetes alert bound. Returns the
/// configuration as the daemon will load it.
fn write_proxied_config(w: &World, api: &str, keystone: &str) -> heatscaler_daemon::config::Config {
    let k8s = w.k8s.as_ref().unwrap();
    let text = std::fs::read_to_string(k8s.heatscaler_kubeconfig()).unwrap();
    let mut kubeconfig = heatscaler_core::yaml::parse_value(&text).unwrap();
    for c in kubeconfig["clusters"].as_array_mut().unwrap() {
        c["cluster"] = serde_json::json!({"server": api});
    }
    let kubeconfig_path = w.dir.path().join("proxied.kubeconfig");
    write_private(&kubeconfig_path, &serde_json::to_string_pretty(&kubeconfig).unwrap());

    let os = openstack();
    let clouds = std::fs::read_to_string(os.clouds_yaml()).unwrap();
    let clouds = clouds.replace(os.var("HEATSCALER_OS_KEYSTONE_URL"), keystone);
    let clouds_path = w.dir.path().join("proxied-clouds.yaml");
    write_private(&clouds_path, &clouds);

    let mut config = heatscaler_core::yaml::parse_value(&w.config_text).unwrap();
    config["kubernetes"]["kubeconfig"] = kubeconfig_path.display().to_string().into();
    config["kubernetes"]["failure-alert-after"] = format!("{}s", FAILURE_ALERT_AFTER.as_secs()).into();
    config["openstack"]["clouds-yaml"] = clouds_path.display().to_string().into();
    std::fs::write(&w.config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    heatscaler_daemon::config::load(&w.config_path).unwrap_or_else(|e| panic!("the soak's configuration: {e}"))
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Chaos {
    /// A daemon process by the World's own helper: the same configuration,
    /// log (appended) and telemetry address every time.
    async fn start_daemon(&self, w: &World) {
        *self.daemon.lock().await = Some(w.start_daemon(&[]));
        self.soak.record.lock().unwrap().daemons.push((Instant::now(), None));
        self.soak.event("daemon started");
    }
}

/// The window faults, one at a time: a shuffled deck of kinds, each short
/// (under the alert bound) or lasting, with quiet gaps long enough for the
/// daemon's watches to recover (their back-off reaches 30 s).
async fn windows(w: &World, chaos: &Chaos, mut rng: ChaCha8Rng, end: Instant) {
    let soak = &chaos.soak;
    let k8s = w.k8s.as_ref().unwrap();
    let os = openstack();
    let mut deck: Vec<Kind> = Vec::new();
    loop {
        tokio::time::sleep(secs(&mut rng, 40, 70)).await;
        if deck.is_empty() {
            deck = Kind::WINDOWS.to_vec();
            deck.shuffle(&mut rng);
        }
        let kind = deck.pop().unwrap();
        let lasting = rng.random_bool(0.5);
        let lasted = if lasting { secs(&mut rng, 55, 80) } else { secs(&mut rng, 8, 20) };
        if Instant::now() + lasted > end {
            return;
        }
        let i = match kind {
            Kind::ApiServer5xx => {
                let code = *[500u16, 503, 504].choose(&mut rng).unwrap();
                chaos.api.set(Fault::Status(code));
                chaos.api.drop_watches();
                soak.fault_started(kind, format!("every request answered {code}, watches cut, for {lasted:?}"))
            }
            Kind::ApiServer429 => {
                chaos.api.set(Fault::Status(429));
                chaos.api.drop_watches();
                soak.fault_started(kind, format!("every request answered 429 TooManyRequests for {lasted:?}"))
            }
            Kind::ApiServerSlow => {
                let delay = secs(&mut rng, 1, 4);
                chaos.api.set(Fault::Latency(delay));
                soak.fault_started(kind, format!("every request delayed {delay:?} for {lasted:?}"))
            }
            Kind::ApiServerKilled => {
                let args = k8s.kill_apiserver();
                let i = soak.fault_started(kind, format!("kube-apiserver SIGKILLed for {lasted:?}"));
                tokio::time::sleep(lasted).await;
                // The proxy stands for the load balancer in front of the API
                // server: it sends the new process nothing until its /readyz
                // is ok, as a health check does. A kube-apiserver serves before
                // its RBAC informers have synced and meanwhile refuses
                // authorised requests with 403 (kubernetes/kubernetes#101422):
                // the first full run after the fixes met that, a few seconds
                // after a restart, for watches the shipped role grants.
                chaos.api.set(Fault::Status(503));
                k8s.start_apiserver(&args);
                wait_api_server(w, soak).await;
                chaos.api.set(Fault::None);
                soak.fault_ended(i);
                continue;
            }
            Kind::HeatEngineKilled => {
                os.kill_heat_engine();
                let i = soak.fault_started(kind, format!("heat-engine SIGKILLed for {lasted:?}"));
                tokio::time::sleep(lasted).await;
                os.start_heat_engine();
                soak.fault_ended(i);
                continue;
            }
            Kind::Keystone401 => {
                chaos.keystone.set(Fault::Status(401));
                os.revoke_tokens(os.var("HEATSCALER_OS_USER_ID")).await;
                soak.fault_started(kind, format!("Keystone answers 401, the user's tokens revoked, for {lasted:?}"))
            }
            _ => unreachable!("not a window fault"),
        };
        tokio::time::sleep(lasted).await;
        chaos.api.set(Fault::None);
        chaos.keystone.set(Fault::None);
        soak.fault_ended(i);
    }
}

async fn wait_api_server(w: &World, soak: &Soak) {
    let started = Instant::now();
    let ready = || async {
        let request = http::Request::get("/readyz").body(Vec::new()).unwrap();
        w.client.request_text(request).await.is_ok_and(|text| text.trim() == "ok")
    };
    while !ready().await {
        if started.elapsed() > Duration::from_secs(120) {
            soak.violation("the restarted API server did not answer within 120 s");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    soak.event(format!("kube-apiserver ready again, {:.1}s after its start", started.elapsed().as_secs_f64()));
}

/// The momentary faults, on their own clock.
async fn moments(w: Arc<World>, chaos: Arc<Chaos>, mut rng: ChaCha8Rng, end: Instant) {
    let soak = &chaos.soak;
    let mut deck: Vec<Kind> = Vec::new();
    loop {
        tokio::time::sleep(secs(&mut rng, 25, 60)).await;
        if Instant::now() + Duration::from_secs(10) > end {
            return;
        }
        if deck.is_empty() {
            deck = Kind::MOMENTS.to_vec();
            deck.shuffle(&mut rng);
        }
        match deck.pop().unwrap() {
            Kind::WatchesCut => {
                chaos.api.drop_watches();
                soak.moment(Kind::WatchesCut, "every watch stream of the daemon cut".into());
            }
            Kind::KubeletStopped => {
                let emu = w.kubelets.emulator();
                let running: Vec<String> =
                    emu.nodes().into_iter().filter(|n| n.kubelet_running).map(|n| n.name).collect();
                let Some(node) = running.choose(&mut rng).cloned() else { continue };
                let back = rng.random_bool(0.5).then(|| secs(&mut rng, 30, 90));
                if emu.stop_kubelet(&node).is_err() {
                    continue;
                }
                soak.moment(
                    Kind::KubeletStopped,
                    format!(
                        "the kubelet of {node} stopped{}",
                        back.map_or(" for good".into(), |d| format!(", back in {d:?}"))
                    ),
                );
                if let Some(after) = back {
                    // Not the World: its drop (the 403 check) belongs to the test.
                    let (kubelets, soak) = (w.kubelets.clone(), soak.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        match kubelets.emulator().start_kubelet(&node).await {
                            Ok(()) => soak.event(format!("the kubelet of {node} runs again")),
                            Err(e) => soak.event(format!("the kubelet of {node} not restarted: {e:#}")),
                        }
                    });
                }
            }
            Kind::DaemonKilled => {
                let pause = secs(&mut rng, 1, 8);
                if let Some(mut old) = chaos.daemon.lock().await.take() {
                    old.kill9();
                }
                soak.record.lock().unwrap().daemons.last_mut().unwrap().1 = Some(Instant::now());
                soak.moment(Kind::DaemonKilled, format!("the daemon kill -9'd, started again in {pause:?}"));
                tokio::time::sleep(pause).await;
                chaos.start_daemon(&w).await;
            }
            _ => unreachable!("not a momentary fault"),
        }
    }
}

/// Random load on its own clock: `load-0..3` (300m to 900m a pod) scaled to
/// 1–4 pods, emptied (idle minions to remove) or scaled past what the minions
/// hold (5–7 pods: a scale-up), and budgets added to and removed from them.
async fn load(w: Arc<World>, soak: Soak, mut rng: ChaCha8Rng, end: Instant) {
    const CPU: [&str; 4] = ["300m", "500m", "700m", "900m"];
    let deployments: Api<Deployment> = Api::namespaced(w.client.clone(), NS);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(w.client.clone(), NS);
    let mut budgeted = [false; 4];
    while Instant::now() < end {
        tokio::time::sleep(secs(&mut rng, 5, 15)).await;
        let i = rng.random_range(0..4);
        let name = format!("load-{i}");
        let roll: f64 = rng.random();
        let result = if roll < 0.15 {
            if budgeted[i] {
                let r = budgets.delete(&name, &DeleteParams::default()).await.map(|_| format!("budget {name} deleted"));
                budgeted[i] &= r.is_err();
                r
            } else {
                let budget = if rng.random_bool(0.5) {
                    Budget::MinAvailable(1.into())
                } else {
                    Budget::MaxUnavailable(1.into())
                };
                let what = format!("budget {name} created: {budget:?}");
                let r = budgets.create(&PostParams::default(), &pdb(NS, &name, &[("app", &name)], budget)).await;
                budgeted[i] = r.is_ok();
                r.map(|_| what)
            }
        } else {
            let n = if roll < 0.35 {
                0
            } else if roll < 0.5 {
                rng.random_range(5..=7)
            } else {
                rng.random_range(1..=4)
            };
            scale(&deployments, &name, CPU[i], n).await
        };
        match result {
            Ok(what) => soak.event(format!("LOAD {what}")),
            Err(e) => soak.event(format!("LOAD {name}: not applied ({e})")),
        }
    }
}

async fn scale(api: &Api<Deployment>, name: &str, cpu: &str, n: i32) -> Result<String, kube::Error> {
    let patch = serde_json::json!({"spec": {"replicas": n}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(format!("{name} scaled to {n}")),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let d = PodTemplate::new("app")
                .label("app", name)
                .requests(cpu, "128Mi")
                .grace_period(2)
                .deployment(NS, name, n);
            api.create(&PostParams::default(), &d).await.map(|_| format!("{name} created: {n} pods of {cpu}"))
        }
        Err(e) => Err(e),
    }
}

/// A node as last seen: whether it was cordoned, and the pods a drain would
/// still have to evict from it.
#[derive(Clone, Debug)]
struct NodeView {
    at: Instant,
    cordoned: bool,
    evictable: Vec<String>,
}

fn is_cordoned(n: &Node) -> bool {
    let spec = n.spec.as_ref();
    spec.and_then(|s| s.unschedulable) == Some(true)
        || spec.and_then(|s| s.taints.as_ref()).into_iter().flatten().any(|t| t.key == protocol::REMOVAL_TAINT)
}

/// A pod a drain must evict: bound, not terminating, not finished, neither a
/// DaemonSet's nor a mirror pod.
fn is_evictable(p: &Pod) -> bool {
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    let daemon_set = p.metadata.owner_references.iter().flatten().any(|o| o.kind == "DaemonSet");
    let mirror = p.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    p.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed")) && !daemon_set && !mirror
}

fn name_of<K: kube::Resource>(o: &K) -> String {
    format!("{}/{}", o.meta().namespace.clone().unwrap_or_default(), o.meta().name.clone().unwrap_or_default())
}

/// The invariants that need polling, every [`POLL`].
struct Monitor {
    w: Arc<World>,
    chaos: Arc<Chaos>,
    views: BTreeMap<String, NodeView>,
    /// Heat's members at the last read, with their status.
    members: Option<BTreeMap<String, MemberStatus>>,
    desired: Option<u32>,
    last_growth: Option<Instant>,
    /// Per node: how long it has been cordoned with nothing to excuse it.
    cordoned_for: BTreeMap<String, Duration>,
    cordon_flagged: BTreeSet<String>,
    last_step: Instant,
    audit: std::path::PathBuf,
    audit_offset: u64,
    alerts_settled: BTreeSet<usize>,
    requests_settled: BTreeSet<usize>,
}

impl Monitor {
    async fn run(w: Arc<World>, chaos: Arc<Chaos>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mark = w.k8s.as_ref().unwrap().audit_mark();
        let mut m = Monitor {
            w,
            chaos,
            views: BTreeMap::new(),
            members: None,
            desired: None,
            last_growth: None,
            cordoned_for: BTreeMap::new(),
            cordon_flagged: BTreeSet::new(),
            last_step: Instant::now(),
            audit: mark.path,
            audit_offset: mark.offset,
            alerts_settled: BTreeSet::new(),
            requests_settled: BTreeSet::new(),
        };
        loop {
            m.step().await;
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => break,
            }
        }
        m.step().await;
    }

    fn soak(&self) -> &Soak {
        &self.chaos.soak
    }

    async fn step(&mut self) {
        let now = Instant::now();
        let dt = now - self.last_step;
        self.last_step = now;
        let kube_ok = self.look_at_nodes().await;
        let heat = tokio::time::timeout(Duration::from_secs(15), self.w.backend.read()).await;
        let heat_idle = match heat {
            Ok(Ok(s)) => {
                self.soak().checked("Heat reads", 1);
                self.look_at_heat(&s);
                !s.busy
            }
            _ => false,
        };
        if kube_ok {
            let excused = !self.soak().daemon_up() || self.soak().fault_active(Duration::from_secs(60)) || !heat_idle;
            self.look_at_cordons(dt, excused);
        }
        self.read_audit();
        self.settle_alerts();
        self.settle_requests();
    }

    /// Lists nodes and pods and records each node's drain state.
    async fn look_at_nodes(&mut self) -> bool {
        let nodes: Api<Node> = Api::all(self.w.client.clone());
        let pods: Api<Pod> = Api::all(self.w.client.clone());
        let lp = ListParams::default();
        let both =
            tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(nodes.list(&lp), pods.list(&lp)) });
        let (Ok(nodes), Ok(pods)) = (match both.await {
            Ok(r) => r,
            Err(_) => return false,
        }) else {
            return false;
        };
        let at = Instant::now();
        for n in &nodes.items {
            let name = n.metadata.name.clone().unwrap_or_default();
            let evictable: Vec<String> = pods
                .items
                .iter()
                .filter(|p| node_of(p) == Some(name.as_str()) && is_evictable(p))
                .map(name_of)
                .collect();
            self.views.insert(name, NodeView { at, cordoned: is_cordoned(n), evictable });
        }
        self.soak().checked("node snapshots (drain state recorded)", nodes.items.len() as u64);
        true
    }

    fn look_at_heat(&mut self, s: &heatscaler_daemon::cloud::group::GroupSnapshot) {
        let now: BTreeMap<String, MemberStatus> = s.members.iter().map(|m| (m.name.clone(), m.status)).collect();
        let before = self.members.replace(now.clone());
        let desired = self.desired.replace(s.desired);
        let Some(before) = before else { return };
        // Members that left Heat: was each one's node drained?
        let mut repaired = false;
        for (member, status) in before.iter().filter(|(m, _)| !now.contains_key(*m)) {
            let node = node_name(GROUP, member);
            let registered = self.w.minions.log(|l| l.registered.contains_key(&format!("{GROUP}/{member}")));
            if !registered || *status == MemberStatus::Failed {
                repaired = true;
                self.soak().checked("members removed that never had a node (failed or never joined)", 1);
                self.soak().event(format!("member {member} ({status:?}) left Heat; it never had a node"));
                continue;
            }
            match self.views.get(&node) {
                None => self.soak().note(format!("member {member} left Heat; its node {node} was never seen")),
                Some(v) if v.at.elapsed() > Duration::from_secs(10) => self.soak().note(format!(
                    "member {member} left Heat; its node {node} was last seen {:.0}s ago (the API server was down): \
                     its drain is not verified",
                    v.at.elapsed().as_secs_f64()
                )),
                Some(v) => {
                    self.soak().checked("removed members whose node was checked drained", 1);
                    if !v.cordoned || !v.evictable.is_empty() {
                        self.soak().violation(format!(
                            "member {member} left Heat while its node {node} was not drained: cordoned {}, pods \
                             still to evict {:?}",
                            v.cordoned, v.evictable
                        ));
                    } else {
                        self.soak().event(format!("member {member} left Heat; {node} was cordoned and drained"));
                    }
                }
            }
        }
        // Growth, shrink, growth: never a shrink within delay-after-add of a growth.
        let Some(desired) = desired else { return };
        let at = Instant::now();
        if s.desired > desired {
            self.last_growth = Some(at);
            self.soak().event(format!("Heat: {GROUP} grows {desired} -> {}", s.desired));
        } else if s.desired < desired {
            let not_joined = before.iter().any(|(m, st)| {
                *st != MemberStatus::Complete
                    || !self.w.minions.log(|l| l.registered.contains_key(&format!("{GROUP}/{m}")))
            });
            self.soak().event(format!("Heat: {GROUP} shrinks {desired} -> {}", s.desired));
            if repaired || not_joined {
                self.soak().checked("shrinks not checked for cooldown (a failed or booting member involved)", 1);
            } else {
                self.soak().checked("shrinks checked against delay-after-add", 1);
                // Heat is read every POLL: a growth may be seen up to that late.
                if let Some(g) = self.last_growth
                    && at - g + POLL + Duration::from_secs(3) < DELAY_AFTER_ADD
                {
                    self.soak().violation(format!(
                        "{GROUP} shrank {:.0}s after it grew (delay-after-add {DELAY_AFTER_ADD:?})",
                        (at - g).as_secs_f64()
                    ));
                }
            }
        }
    }

    fn look_at_cordons(&mut self, dt: Duration, excused: bool) {
        let cordoned: BTreeSet<String> =
            self.views.iter().filter(|(_, v)| v.at.elapsed() < POLL && v.cordoned).map(|(n, _)| n.clone()).collect();
        self.cordoned_for.retain(|n, _| cordoned.contains(n));
        for n in cordoned {
            self.soak().checked("cordon checks", 1);
            let t = self.cordoned_for.entry(n.clone()).or_default();
            if !excused {
                *t += dt;
            }
            if *t > CORDON_GRACE && self.cordon_flagged.insert(n.clone()) {
                let t = *t;
                self.soak().violation(format!(
                    "{n} cordoned for {:.0}s while the daemon ran, nothing failed and Heat was idle",
                    t.as_secs_f64()
                ));
            }
        }
    }

    /// heatscaler's requests as the API server audited them: evictions, and
    /// no pod deleted around the eviction API (which enforces budgets).
    fn read_audit(&mut self) {
        use std::io::{Read, Seek, SeekFrom};
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.audit) {
            let _ = f.seek(SeekFrom::Start(self.audit_offset));
            let _ = f.read_to_string(&mut text);
        }
        let Some(complete) = text.rfind('\n') else { return };
        self.audit_offset += complete as u64 + 1;
        for line in text[..complete].lines() {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            self.soak().checked("audited requests of heatscaler", 1);
            let o = &e["objectRef"];
            if o["resource"] != "pods" {
                continue;
            }
            let pod = format!("{}/{}", o["namespace"].as_str().unwrap_or(""), o["name"].as_str().unwrap_or(""));
            let code = e["responseStatus"]["code"].as_i64().unwrap_or(0);
            match (e["verb"].as_str(), o["subresource"].as_str()) {
                (Some("create"), Some("eviction")) if code == 201 => self.soak().checked("evictions accepted", 1),
                (Some("create"), Some("eviction")) if code == 429 => {
                    self.soak().checked("evictions refused by a budget (429)", 1)
                }
                (Some("create"), Some("eviction")) => self.soak().checked("evictions failing otherwise", 1),
                (Some("delete"), None) => {
                    self.soak().violation(format!("heatscaler deleted pod {pod} directly, around its budget ({code})"))
                }
                _ => {}
            }
        }
    }

    /// Every fault whose alert deadline has passed: due, and received in time?
    fn settle_alerts(&mut self) {
        let now = Instant::now();
        let (faults, daemons) = {
            let r = self.soak().record.lock().unwrap();
            (r.faults.clone(), r.daemons.clone())
        };
        for (i, f) in faults.iter().enumerate() {
            let Some(reason) = f.kind.alert() else { continue };
            let Some(end) = f.end else { continue };
            if self.alerts_settled.contains(&i) {
                continue;
            }
            // The longest stretch of the fault one daemon process lived through.
            let stretch = daemons
                .iter()
                .map(|(s, e)| {
                    let from = f.start.max(*s);
                    let to = end.min(e.unwrap_or(now));
                    (from, to.saturating_duration_since(from))
                })
                .max_by_key(|(_, d)| *d);
            let Some((from, lived)) = stretch else { continue };
            let bounds = self.soak().bounds;
            let due = lived >= bounds.lasting_after(f.kind);
            let deadline = if due { from + ALERT_WITHIN } else { end + bounds.lasting_after(f.kind) };
            if now < deadline.max(end) {
                continue;
            }
            self.alerts_settled.insert(i);
            let hits = self.w.hooks.with_reason(reason);
            let hit = hits.iter().map(|(t, _)| *t).find(|t| *t >= f.start && *t <= deadline);
            let at = self.soak().at(f.start);
            if due {
                self.soak().checked("lasting faults checked for their alert", 1);
                match hit {
                    Some(t) => {
                        let delay = t - f.start;
                        self.soak().event(format!(
                            "alert {reason} for {:?} (from {:.0}s) received after {:.1}s",
                            f.kind,
                            at.as_secs_f64(),
                            delay.as_secs_f64()
                        ));
                        self.soak().record.lock().unwrap().alerts.push((f.kind, at, reason, delay));
                    }
                    None => self.soak().violation(format!(
                        "{:?} from {:.0}s lasted {:.0}s under one daemon but no {reason} alert came within {ALERT_WITHIN:?}",
                        f.kind,
                        at.as_secs_f64(),
                        lived.as_secs_f64()
                    )),
                }
            } else {
                self.soak().checked("short faults (no alert due)", 1);
                self.soak().record.lock().unwrap().short.push((f.kind, at, hit.is_some()));
            }
        }
    }

    /// Every ended window of a failing API server: how many requests reached it per minute.
    fn settle_requests(&mut self) {
        let faults = self.soak().record.lock().unwrap().faults.clone();
        for (i, f) in faults.iter().enumerate() {
            let Some(end) = f.end else { continue };
            if !f.kind.fails_api_server() || !self.requests_settled.insert(i) {
                continue;
            }
            let seen: Vec<Instant> =
                self.chaos.api.seen().into_iter().map(|s| s.at).filter(|t| *t >= f.start && *t <= end).collect();
            let max_per_minute = seen
                .iter()
                .map(|t| seen.iter().filter(|u| **u >= *t && **u < *t + Duration::from_secs(60)).count())
                .max()
                .unwrap_or(0);
            let at = self.soak().at(f.start);
            self.soak().checked("failing-API-server windows counted at the proxy", 1);
            self.soak().event(format!(
                "{:?} from {:.0}s: {} requests reached the API server's proxy in {:.0}s, at most {max_per_minute} in a minute",
                f.kind,
                at.as_secs_f64(),
                seen.len(),
                (end - f.start).as_secs_f64()
            ));
            self.soak().record.lock().unwrap().requests.push(RequestWindow {
                kind: f.kind,
                at,
                lasted: end - f.start,
                total: seen.len(),
                max_per_minute,
            });
            if max_per_minute > REQUESTS_PER_MINUTE {
                self.soak().violation(format!(
                    "{max_per_minute} requests in a minute reached the failing API server ({:?} from {:.0}s; bound {REQUESTS_PER_MINUTE})",
                    f.kind,
                    at.as_secs_f64()
                ));
            }
        }
    }
}

/// Every budget's status at every watch event: `disruptionsAllowed` never
/// below zero; the fewest healthy pods against the desired, for the report.
async fn watch_budgets(client: kube::Client, soak: Soak, _stop: tokio::sync::watch::Receiver<bool>) {
    let api: Api<PodDisruptionBudget> = Api::all(client);
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        let (watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = event else { continue };
        let Some(status) = p.status.as_ref() else { continue };
        soak.checked("budget statuses checked (watch events)", 1);
        let name = name_of(&p);
        if status.disruptions_allowed < 0 {
            soak.violation(format!("budget {name}: disruptionsAllowed {}", status.disruptions_allowed));
        }
        let slack = status.current_healthy - status.desired_healthy;
        let mut r = soak.record.lock().unwrap();
        let low = r.pdb_slack.entry(name).or_insert(i32::MAX);
        *low = (*low).min(slack);
    }
}

fn report(soak: &Soak, seed: u64, minutes: f64, w: &World) -> String {
    use std::fmt::Write;
    let r = soak.record.lock().unwrap();
    let mut out = String::new();
    let _ = writeln!(out, "==== CHAOS SOAK REPORT ====");
    let _ = writeln!(out, "seed {seed}, {minutes} min of chaos, {:.0} s in all", soak.t0.elapsed().as_secs_f64());
    let mut by_kind: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    for f in &r.faults {
        let e = by_kind.entry(f.kind).or_default();
        e.0 += 1;
        if f.end.is_some_and(|end| end - f.start >= soak.bounds.lasting_after(f.kind)) && f.kind.alert().is_some() {
            e.1 += 1;
        }
    }
    let _ = writeln!(out, "faults injected ({}):", r.faults.len());
    for (k, (n, lasting)) in &by_kind {
        let _ = writeln!(
            out,
            "  {k:?}: {n}{}",
            if k.alert().is_some() { format!(" ({lasting} lasting)") } else { String::new() }
        );
    }
    let _ = writeln!(out, "invariant checks:");
    for (what, n) in &r.checks {
        let _ = writeln!(out, "  {what}: {n}");
    }
    let _ = writeln!(out, "alerts of lasting faults (fault, began at, reason, delay):");
    for (k, at, reason, delay) in &r.alerts {
        let _ = writeln!(out, "  {k:?} at {:.0}s: {reason} after {:.1}s", at.as_secs_f64(), delay.as_secs_f64());
    }
    let _ = writeln!(out, "short faults (no alert due; alerted anyway?):");
    for (k, at, alerted) in &r.short {
        let _ =
            writeln!(out, "  {k:?} at {:.0}s: {}", at.as_secs_f64(), if *alerted { "alerted" } else { "not alerted" });
    }
    let _ = writeln!(
        out,
        "requests reaching the failing API server (window: total, most in a minute; bound {REQUESTS_PER_MINUTE}):"
    );
    for q in &r.requests {
        let _ = writeln!(
            out,
            "  {:?} at {:.0}s for {:.0}s: {}, {}",
            q.kind,
            q.at.as_secs_f64(),
            q.lasted.as_secs_f64(),
            q.total,
            q.max_per_minute
        );
    }
    let _ = writeln!(out, "fewest healthy pods minus desired, per budget: {:?}", r.pdb_slack);
    let _ = writeln!(out, "daemon processes: {}", r.daemons.len());
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for reason in w.hooks.reasons() {
        *reasons.entry(reason).or_default() += 1;
    }
    let _ = writeln!(out, "alerts received by the webhook, by reason: {reasons:?}");
    let _ = writeln!(out, "notes: {}", if r.notes.is_empty() { "none".to_string() } else { r.notes.join("; ") });
    let _ = writeln!(out, "violations: {}", r.violations.len());
    for v in &r.violations {
        let _ = writeln!(out, "  {v}");
    }
    out
}
