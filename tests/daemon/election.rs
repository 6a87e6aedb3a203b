//! Leader election against kubesim over HTTP (kube-rs): the Lease with its
//! optimistic concurrency is served by the API server, not mocked. A leader's
//! partition from the API server is a real one: its client talks through a
//! TCP relay that the test cuts (connections then hang, as on a dead network).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use heatscaler_daemon::config::LeaderElectionConfig;
use heatscaler_daemon::control_loop::LeaderGate;
use heatscaler_daemon::control_loop::election::{Attempt, Candidate, LeaseClient, LeaseGate, Wiring};
use heatscaler_daemon::observe::Changes;
use heatscaler_daemon::telemetry::{Health, HealthOptions, Leadership, Metrics};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kubesim::{FaultRule, KubeSim, KubeSimHandle, Options};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const NS: &str = "kube-system";
const LEASE: &str = "heatscaler";

fn config(lease: Duration, renew: Duration, retry: Duration) -> LeaderElectionConfig {
    LeaderElectionConfig {
        enabled: true,
        namespace: NS.into(),
        lease_name: LEASE.into(),
        identity: None,
        lease_duration: heatscaler_daemon::config::Duration(lease),
        renew_deadline: heatscaler_daemon::config::Duration(renew),
        retry_period: heatscaler_daemon::config::Duration(retry),
    }
}

struct Replica {
    gate: LeaseGate,
    health: Health,
    metrics: Arc<Metrics>,
}

fn replica(client: kube::Client, identity: &str, config: &LeaderElectionConfig) -> Replica {
    let health = Health::new(HealthOptions { heartbeat_timeout: Duration::from_secs(60), heat_required: false });
    let metrics = Arc::new(Metrics::new());
    let wiring = Wiring {
        client,
        identity: identity.into(),
        health: health.clone(),
        metrics: metrics.clone(),
        changes: Changes::new(),
    };
    Replica { gate: LeaseGate::new(config, wiring), health, metrics }
}

fn client(sim: &KubeSimHandle) -> kube::Client {
    sim.kube_client_without_retries().unwrap()
}

fn lease(sim: &KubeSimHandle) -> Lease {
    sim.get::<Lease>(Some(NS), LEASE).expect("the lease exists")
}

fn holder(sim: &KubeSimHandle) -> Option<String> {
    lease(sim).spec.and_then(|s| s.holder_identity)
}

/// Polls every 10 ms until `f` holds; asserts that no two replicas lead at once meanwhile.
async fn until(what: &str, timeout: Duration, replicas: &[&Replica], mut f: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let leaders = replicas.iter().filter(|r| r.gate.is_leader()).count();
        assert!(leaders <= 1, "{leaders} replicas lead at once");
        if f() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_exactly_one_leads_and_the_lease_names_it() {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    let cfg = config(Duration::from_secs(3), Duration::from_secs(2), Duration::from_millis(200));
    let a = replica(client(&sim), "master-a", &cfg);
    let b = replica(client(&sim), "master-b", &cfg);
    assert_eq!(a.health.leadership(), Leadership::Standby, "no lease before campaigning");
    a.gate.campaign();
    b.gate.campaign();
    until("a leader", Duration::from_secs(5), &[&a, &b], || a.gate.is_leader() || b.gate.is_leader()).await;
    // Ten renewals: leadership stays where it is.
    let (leader, standby) = if a.gate.is_leader() { (&a, &b) } else { (&b, &a) };
    let end = Instant::now() + Duration::from_secs(2);
    until("two seconds", Duration::from_secs(3), &[&a, &b], || Instant::now() > end).await;
    assert!(leader.gate.is_leader() && !standby.gate.is_leader());
    assert_eq!(holder(&sim).as_deref(), Some(leader.gate.identity()));
    let spec = lease(&sim).spec.unwrap();
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(spec.lease_transitions, Some(0), "created held: no transition");
    assert!(spec.renew_time.unwrap().0 > spec.acquire_time.unwrap().0, "renewed since acquired");
    // What /readyz and the heatscaler_leader metric say.
    assert_eq!(leader.health.leadership(), Leadership::Leader);
    assert_eq!(standby.health.leadership(), Leadership::Standby);
    assert!(leader.metrics.encode().contains("heatscaler_leader 1"));
    assert!(standby.metrics.encode().contains("heatscaler_leader 0"));
    let event = leader.gate.change_event(true).unwrap();
    assert_eq!(event.reason.as_str(), "LeaderElection");
    assert_eq!(event.object.as_ref().unwrap().kind, "Lease");
}

/// A TCP relay to kubesim that can be cut: after `cut`, open connections
/// stall and new ones are accepted but never answered.
struct Relay {
    url: String,
    cut: Arc<AtomicBool>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let flag = flag.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if flag.load(Ordering::SeqCst) {
                        // Hold the connection open, answer nothing.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    let mut outbound = TcpStream::connect(&upstream).await.unwrap();
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = outbound.split();
                    let forward = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            use tokio::io::AsyncReadExt;
                            let n = ri.read(&mut buf).await.unwrap_or(0);
                            if n == 0 || flag.load(Ordering::SeqCst) {
                                break;
                            }
                            if wo.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let back = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            use tokio::io::AsyncReadExt;
                            let n = ro.read(&mut buf).await.unwrap_or(0);
                            if n == 0 || flag.load(Ordering::SeqCst) {
                                break;
                            }
                            if wi.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! { _ = forward => {}, _ = back => {} }
                    if flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                });
            }
        });
        Relay { url, cut }
    }

    fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_retry = false;
        kube::Client::try_from(config).unwrap()
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_stops_acting_before_the_standby_takes_over() {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    let (lease_duration, renew, retry) = (Duration::from_secs(3), Duration::from_secs(2), Duration::from_millis(200));
    let cfg = config(lease_duration, renew, retry);
    let relay = Relay::start(sim.url()).await;
    let a = replica(relay.client(), "master-a", &cfg);
    let b = replica(client(&sim), "master-b", &cfg);
    a.gate.campaign();
    until("master-a leads", Duration::from_secs(5), &[&a, &b], || a.gate.is_leader()).await;
    b.gate.campaign();
    let end = Instant::now() + Duration::from_secs(1);
    until("master-b standing by", Duration::from_secs(3), &[&a, &b], || Instant::now() > end).await;
    assert!(!b.gate.is_leader());

    relay.cut();
    let cut = Instant::now();
    let a_stopped = until("master-a stops", Duration::from_secs(10), &[&a, &b], || !a.gate.is_leader()).await;
    let b_leads = until("master-b leads", Duration::from_secs(10), &[&a, &b], || b.gate.is_leader()).await;
    let (stop, takeover) = (a_stopped - cut, b_leads - cut);
    println!(
        "partitioned leader stopped acting after {stop:?}; standby took over after {takeover:?} (lease {lease_duration:?}, renew-deadline {renew:?})"
    );
    assert!(a_stopped < b_leads, "the old leader stops before the new one starts");
    // Its deadline is at most renew-deadline after the cut; `until` notices within a poll (10 ms).
    assert!(stop <= renew + Duration::from_millis(50), "stops within renew-deadline of the cut: {stop:?}");
    // Its last renewal was at most one retry period before the cut, and the
    // standby counts the lease from when it saw that renewal.
    assert!(takeover + retry >= lease_duration, "took over before the lease expired: {takeover:?}");
    assert_eq!(holder(&sim).as_deref(), Some("master-b"));
    assert_eq!(lease(&sim).spec.unwrap().lease_transitions, Some(1));
    assert_eq!(a.health.leadership(), Leadership::Standby, "published without a successful request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_taken_over_at_once() {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    let lease_duration = Duration::from_secs(10);
    let cfg = config(lease_duration, Duration::from_secs(7), Duration::from_millis(200));
    let a = replica(client(&sim), "master-a", &cfg);
    let b = replica(client(&sim), "master-b", &cfg);
    a.gate.campaign();
    until("master-a leads", Duration::from_secs(5), &[&a, &b], || a.gate.is_leader()).await;
    b.gate.campaign();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let released = Instant::now();
    a.gate.release(Duration::from_secs(2)).await;
    assert!(!a.gate.is_leader(), "no longer acting once released");
    let b_leads = until("master-b leads", lease_duration, &[&a, &b], || b.gate.is_leader()).await;
    let took = b_leads - released;
    println!("release -> standby leads: {took:?} (retry period 200ms, lease {lease_duration:?})");
    assert!(took < lease_duration / 2, "the standby waited for the lease to expire: {took:?}");
    let spec = lease(&sim).spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("master-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // A released gate campaigns no more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.gate.is_leader() && b.gate.is_leader());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_racing_for_a_free_lease_conflict_and_exactly_one_wins() {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    let lease_duration = Duration::from_secs(15);
    let metrics = Arc::new(Metrics::new());
    let api = || Api::<Lease>::namespaced(client(&sim), NS);
    let (a, b) = (
        LeaseClient::new(api(), LEASE.into(), metrics.clone()),
        LeaseClient::new(api(), LEASE.into(), metrics.clone()),
    );
    let ca = Candidate { identity: "master-a".into(), lease_duration };
    let cb = Candidate { identity: "master-b".into(), lease_duration };
    // Both reads are served before either write lands (writes are held 500 ms,
    // reads are not, so the two reads only need to start within that window,
    // even on a loaded machine): each writes over the same resourceVersion, and
    // the API server must refuse one of them (409).
    sim.add_fault(
        FaultRule::latency(Duration::from_millis(500))
            .on_path("/apis/coordination.k8s.io")
            .on_verbs(&["create", "update"]),
    );
    let gets = || {
        let text = metrics.encode();
        text.lines()
            .filter(|l| {
                l.starts_with("heatscaler_kubernetes_request_duration_seconds_count") && l.contains("verb=\"get\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let mut winners = Vec::new();
    for round in 0..4 {
        let before = gets();
        let now = Instant::now();
        let (mut oa, mut ob) = (None, None);
        let (ra, rb) = tokio::join!(a.acquire_or_renew(&ca, &mut oa, now), b.acquire_or_renew(&cb, &mut ob, now));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let leading = |r: &Attempt| matches!(r, Attempt::Leading { .. });
        assert!(leading(&ra) != leading(&rb), "round {round}: exactly one wins: {ra:?} / {rb:?}");
        let winner = if leading(&ra) { "master-a" } else { "master-b" };
        let loser = if leading(&ra) { &rb } else { &ra };
        assert_eq!(loser, &Attempt::Standby { holder: winner.into() }, "the loser re-read and saw the winner");
        assert_eq!(holder(&sim).as_deref(), Some(winner));
        // Two reads, and the loser's re-read after its 409.
        assert_eq!(gets() - before, 3.0, "round {round}: the conflict path ran");
        winners.push(winner);
        // The winner releases: next round races for a free lease again.
        let c = if winner == "master-a" { (&a, &ca) } else { (&b, &cb) };
        assert!(c.0.release(c.1).await.unwrap());
    }
    println!("race winners: {winners:?}");
    assert_eq!(lease(&sim).spec.unwrap().lease_transitions, Some(3), "created, then three handovers");
}
