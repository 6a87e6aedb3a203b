//! Operations end to end, against a real Kubernetes control plane and a real
//! Keystone + Heat:
//! - high availability: two `heatscaler run` processes with leader election on
//!   a real Lease (in the namespace the shipped Role grants, by default); the
//!   leader is killed (`kill -9`) in the middle of draining a minion; the
//!   standby takes the lease over once it expires and finishes exactly that
//!   removal (and `heatscaler explain` on the same world first);
//! - a dead alert sink does not delay a scale-up (measured).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{self, DaemonProcess, GROUP, Kube, NS, Spec, Webhooks, World, node_name, node_of, untouched};
use k8s_openapi::api::coordination::v1::Lease;
use kubesim::builders::{Budget, PodTemplate, pdb};

const HEAT: Duration = Duration::from_secs(120);
const KUBE: Duration = Duration::from_secs(60);
const LEASE_DURATION: Duration = Duration::from_secs(3);
const RETRY_PERIOD: Duration = Duration::from_millis(300);

/// The second replica: the world's configuration with its own identity,
/// telemetry port and webhook receiver (so whatever it reports is its own).
struct Standby {
    config: PathBuf,
    telemetry: SocketAddr,
    hooks: Webhooks,
}

async fn second_replica(w: &World) -> Standby {
    let mut config = heatscaler_core::yaml::parse_value(&w.config_text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let telemetry: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let hooks = Webhooks::start().await;
    config["leader-election"]["identity"] = "master-b".into();
    config["telemetry"]["listen"] = telemetry.to_string().into();
    config["alerts"]["sinks"][0]["url"] = hooks.url.clone().into();
    let path = w.dir.path().join("heatscaler-b.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    Standby { config: path, telemetry, hooks }
}

async fn leader_metric(d: &DaemonProcess) -> Option<f64> {
    d.metric("heatscaler_leader ").await
}

/// Events a replica reported (read in their core/v1 shape), by `reportingInstance`.
async fn events_from(w: &World, instance: &str) -> Vec<String> {
    w.list_all::<k8s_openapi::api::core::v1::Event>()
        .await
        .into_iter()
        .filter(|e| e.reporting_instance.as_deref() == Some(instance))
        .map(|e| e.reason.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_removal_in_flight_when_the_leader_is_killed() {
    let _slot = harness::slot().await;
    let started = Instant::now();
    let w = World::new(Spec {
        initial: 2,
        min: 1,
        // The lease where the daemon puts it by default, with the shipped RBAC.
        overrides: "leader-election: {enabled: true, identity: master-a, \
                    lease-duration: 3s, renew-deadline: 2s, retry-period: 300ms}\n\
                    scale-down: {unneeded-time: 4s, cooldown-before-removal: 3s}",
        // Evicted pods take their grace period (10 s, capped by
        // max-graceful-termination) × 0.2 to terminate: a drain lasts ~2 s.
        kube: Kube::Real {
            knobs: Default::default(),
            kubelet: kubelet_emu::Timing { grace_period_scale: 0.2, ..kubelet_emu::Timing::fast() },
        },
        ..Spec::default()
    })
    .await;
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));
    // As in e2e's crash test: workers-1 keeps a pod that may not be evicted,
    // so workers-0 is the one drained; its 3 pods fit on workers-1.
    let mut keeper =
        PodTemplate::new("app").label("app", "keeper").requests("100m", "128Mi").deployment(NS, "keeper", 1);
    let meta = keeper.spec.as_mut().unwrap().template.metadata.get_or_insert_with(Default::default);
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert("cluster-autoscaler.kubernetes.io/safe-to-evict".into(), "false".into());
    w.place_on(&m1, keeper).await;
    let filler = PodTemplate::new("app").label("app", "filler").requests("100m", "128Mi").grace_period(30);
    w.place_on(&m0, filler.deployment(NS, "filler", 3)).await;
    w.create(&pdb(NS, "filler", &[("app", "filler")], Budget::MaxUnavailable(3.into()))).await;
    let phase = async || w.node(&m0).await.as_ref().and_then(harness::removal_phase);

    // `heatscaler explain` on the same configuration, before any daemon runs:
    // the real stack read, one pass printed, nothing done.
    let explained = explain(&w).await;
    let status = |node: &str| {
        explained["explanation"]["nodes"].as_array().unwrap().iter().find(|n| n["node"] == node).unwrap()["status"]
            ["status"]
            .clone()
    };
    assert_eq!(status(&m0), "unneeded", "{explained}");
    assert_eq!(status(&m1), "pod-blocks", "keeper may not be evicted: {explained}");
    assert_eq!(explained["actions"], serde_json::json!([]), "unneeded-time has not passed");
    assert_eq!(explained["timers"]["source"], "fresh", "no daemon has published a status yet");
    assert!(w.nodes().await.iter().all(|n| untouched(n).is_ok()), "explain touched a node");

    // master-a leads; master-b syncs and stands by.
    let mut a = w.ready_daemon().await;
    wait_metric(&a, "master-a leads", 1.0).await;
    let b_side = second_replica(&w).await;
    let mut b = DaemonProcess::start(&b_side.config, &w.dir.path().join("daemon-b.log"), b_side.telemetry, &[]);
    b.wait_ready(KUBE).await;
    assert_eq!(leader_metric(&b).await, Some(0.0), "master-b is a standby");
    let readyz = reqwest::get(format!("http://{}/readyz", b_side.telemetry)).await.unwrap().text().await.unwrap();
    assert!(readyz.contains("standby"), "{readyz}");
    // The leader publishes its status (shipped RBAC: patch of this one ConfigMap); the standby never does.
    let (text, json) = published_status(&w, "master-a", |_| true).await;
    assert!(text.contains("written by the leader master-a") && text.contains("group workers: desired 2"), "{text}");
    assert!(text.contains(&format!("node {m1} (workers): pod")), "{text}");
    assert_eq!(json["groups"][0]["group"], "workers", "{json}");
    assert!(json["timers"]["unneeded-since"].is_object(), "{json}");

    // Kill the leader in the middle of the drain.
    let terminating = async || {
        let pods = w.pods("filler").await;
        pods.iter().filter(|p| node_of(p) == Some(&m0) && p.metadata.deletion_timestamp.is_some()).count()
    };
    w.wait("workers-0 mid-drain", KUBE, async || {
        terminating().await > 0 && phase().await.as_deref() == Some("draining")
    })
    .await;
    // Until now master-b has done nothing: no alert, no Event, its log says standby.
    assert!(b_side.hooks.reasons().is_empty(), "the standby alerted: {:?}", b_side.hooks.reasons());
    assert_eq!(events_from(&w, "master-b").await, Vec::<String>::new(), "the standby reported Events");
    assert!(!events_from(&w, "master-a").await.is_empty(), "the leader reported its steps");
    let b_log = b.log();
    assert!(b_log.contains("standby") && b_log.contains("master-a"), "master-b's log does not say standby");
    assert!(!b_log.contains("acquired the leader lease"));
    a.kill9();
    let killed = Instant::now();
    println!("killed the leader mid-drain: {} filler pod(s) terminating on workers-0", terminating().await);

    // master-b takes over once the lease expired by its own observation.
    let leads = wait_metric(&b, "master-b leads", 1.0).await;
    let failover = leads - killed;
    println!("FAILOVER TIME: leader killed -> standby leads: {failover:?} (lease-duration {LEASE_DURATION:?})");
    // The lease counts from the last renewal master-b saw (at most a retry
    // period before the kill); then its next attempt (a retry period, +20 %
    // jitter) and this test's metric poll (100 ms).
    assert!(failover + RETRY_PERIOD >= LEASE_DURATION, "took over before the lease expired: {failover:?}");
    assert!(
        failover <= LEASE_DURATION + RETRY_PERIOD.mul_f64(1.2) + Duration::from_millis(300),
        "not within the lease duration and one attempt: {failover:?}"
    );
    let (_, elected) = b_side.hooks.wait_for("LeaderElection", KUBE, |_| true).await;
    assert_eq!(elected["fields"]["identity"], "master-b", "{elected}");
    assert_eq!(elected["fields"]["previous"], "master-a", "{elected}");

    // ... and finishes exactly the removal in flight.
    w.assert_only_workers_0_removed().await;
    b_side.hooks.wait_for("ScaledDownGroup", KUBE, |_| true).await;
    println!("removal finished by master-b {:?} after the kill", killed.elapsed());

    // The new leader publishes; `explain` plans on its timers, not on fresh ones.
    // The removal's request time is one of its timers (scale-down.delay-after-delete).
    published_status(&w, "master-b", |j| j["timers"]["last-scale-down"].is_string()).await;
    let explained = explain(&w).await;
    assert_eq!(explained["timers"]["source"], "daemon", "{}", explained["timers"]);
    assert_eq!(explained["timers"]["leader"], "master-b");

    // A clean stop releases the lease.
    let (status, _) = b.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}");
    let lease = w.get::<Lease>("heatscaler", "heatscaler").await.expect("the Lease").spec.unwrap();
    assert_eq!(lease.holder_identity, None, "released on SIGTERM");
    assert_eq!(lease.lease_transitions, Some(1), "created by master-a, taken over by master-b");
    println!("scenario wall time: {:?}", started.elapsed());
}

/// A webhook receiver that accepts connections and never answers (a hung
/// endpoint: the worst kind of dead sink, each request waits its timeout).
async fn dead_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, connections)
}

/// From the first pod of `deployment` turning unschedulable to the next
/// `ScaledUpGroup` alert at the (live) test receiver.
async fn reaction(w: &World, deployment: k8s_openapi::api::apps::v1::Deployment) -> Duration {
    let name = deployment.metadata.name.clone().unwrap();
    let before = w.hooks.with_reason("ScaledUpGroup").len();
    w.create(&deployment).await;
    w.wait("a pod unschedulable", KUBE, async || w.pods(&name).await.iter().any(harness::is_unschedulable)).await;
    let unschedulable = Instant::now();
    let scaled = w.hooks.wait_count("ScaledUpGroup", before + 1, KUBE).await;
    scaled[before].0.saturating_duration_since(unschedulable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_alert_sink_does_not_delay_a_scale_up() {
    let _slot = harness::slot().await;
    let w =
        World::new(Spec { initial: 1, min: 1, max: 4, overrides: "scale-down: {enabled: false}", ..Spec::default() })
            .await;
    let deployment = |name: &str| {
        PodTemplate::new("app").label("app", name).requests("1500m", "128Mi").grace_period(2).deployment(NS, name, 2)
    };

    // Without the dead sink: one 2-CPU minion, two pods of 1.5 CPU → one more minion.
    let mut daemon = w.ready_daemon().await;
    let without = reaction(&w, deployment("first")).await;
    w.wait_heat("2 members", HEAT, |s| s.desired == 2 && s.members.len() == 2 && !s.busy).await;
    w.wait("first running", KUBE, async || w.running("first").await.len() == 2).await;
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());

    // The same with a second webhook sink that never answers.
    let (dead_url, connections) = dead_receiver().await;
    let mut config = heatscaler_core::yaml::parse_value(&w.config_text).unwrap();
    let mut dead = config["alerts"]["sinks"][0].clone();
    dead["name"] = "dead".into();
    dead["url"] = dead_url.into();
    config["alerts"]["sinks"].as_array_mut().unwrap().push(dead);
    let sink_timeout = Duration::from_secs(10); // the sinks' default per-request timeout
    std::fs::write(&w.config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let mut daemon = w.ready_daemon().await;
    let with = reaction(&w, deployment("second")).await;
    println!("DEAD SINK: reaction without it {without:?}, with a hung webhook sink {with:?}");
    assert!(connections.load(Ordering::SeqCst) > 0, "the dead sink was sent alerts");
    // Had planning or the scale-up waited for the sink, it would have taken at least its timeout.
    assert!(with < sink_timeout, "the scale-up waited for the dead sink: {with:?}");
    w.wait_heat("the second scale-up settled", HEAT, |s| s.desired >= 3 && !s.busy).await;
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// The status ConfigMap once `leader` wrote it: its text and JSON.
async fn published_status(
    w: &World,
    leader: &str,
    until: impl Fn(&serde_json::Value) -> bool,
) -> (String, serde_json::Value) {
    use heatscaler_daemon::control_loop::status::{HUMAN_KEY, MACHINE_KEY, STATUS_CONFIGMAP, STATUS_NAMESPACE};
    let deadline = Instant::now() + KUBE;
    loop {
        let cm = w.get::<k8s_openapi::api::core::v1::ConfigMap>(STATUS_NAMESPACE, STATUS_CONFIGMAP).await;
        let data = cm.expect("the shipped status ConfigMap").data.unwrap_or_default();
        if let Some(json) = data.get(MACHINE_KEY) {
            let json: serde_json::Value = serde_json::from_str(json).unwrap();
            if json["leader"] == leader && until(&json) {
                return (data[HUMAN_KEY].clone(), json);
            }
        }
        assert!(Instant::now() < deadline, "no such status written by {leader} within {KUBE:?}: {data:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `heatscaler explain --json` with the world's configuration.
async fn explain(w: &World) -> serde_json::Value {
    let config = w.config_path.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_heatscaler"))
            .arg("--config")
            .arg(config)
            .args(["explain", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "explain failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("explain --json printed no JSON ({e}): {stderr}"))
}

/// Waits until the replica's `heatscaler_leader` gauge is `value`; returns when it was seen.
async fn wait_metric(d: &DaemonProcess, what: &str, value: f64) -> Instant {
    let deadline = Instant::now() + KUBE;
    loop {
        if leader_metric(d).await == Some(value) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: not within {KUBE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
