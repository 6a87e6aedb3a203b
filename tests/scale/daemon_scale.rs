//! The daemon's memory at the design scale: `heatscaler run` (the built
//! binary, a child process) watching a kubesim with 5,000 nodes, 150,000
//! pods, 3,000 ReplicaSets and 1,000 PDBs; prints its resident and peak
//! memory once synced and planning. Ignored by default (several minutes):
//!
//! ```text
//! cargo test --release --test scale daemon_scale -- --ignored --nocapture
//! HEATSCALER_SCALE=2 cargo test ...     # 10,000 nodes, 300,000 pods
//! HEATSCALER_SCALE=0.1 cargo test ...   # a tenth of it
//! ```

use std::time::{Duration, Instant};

use kubesim::design_scale::status_kib;

/// The process's CPU time so far, user + system, all threads (`/proc/PID/stat`
/// fields 14 and 15, in USER_HZ = 100 ticks a second on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name (field 2) may hold spaces: count from after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The daemon's resident set, read every 20 ms from its start, so the
/// report can say when the peak came: during the first list, or after the
/// sync while it planned.
struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(u64, Duration)>,
}

impl RssSampler {
    fn start(pid: u32, started: Instant) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = (0, Duration::ZERO);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { break };
                let rss = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
                    .unwrap_or(0);
                if rss > peak.0 {
                    peak = (rss, started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Self { stop, thread }
    }

    /// The highest sample (KiB) and when it was taken.
    fn finish(self) -> (u64, Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale figures; run by hand"]
async fn daemon_memory_at_5000_nodes_and_150000_pods() {
    let scale: f64 = std::env::var("HEATSCALER_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let (sim, cluster) = kubesim::design_scale::start(scale).await;
    let kubesim::design_scale::Cluster { nodes, pods: pod_n, replica_sets, pdbs, filled } = cluster;
    println!("kubesim filled with {nodes} nodes, {pod_n} pods, {replica_sets} ReplicaSets, {pdbs} PDBs in {filled:?}");
    // The daemon is measured against a settled cluster: every pod Ready and
    // the ReplicaSets' surplus gone (as kubesim's own footprint run waits).
    // Started earlier, at 10,000 nodes its list of pods outlasted the
    // 20,000 changes kubesim keeps per kind while 300,000 pods started, and
    // the pods' watch re-listed on `410 Gone` over and over.
    let settling = Instant::now();
    while sim.ready_pods(None) < pod_n || sim.count::<k8s_openapi::api::core::v1::Pod>() != pod_n {
        assert!(settling.elapsed() < Duration::from_secs(1800), "pods not all ready after 30 min");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("kubesim settled (every pod Ready, no surplus) in {:?} more", settling.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("heatscaler.yaml");
    std::fs::write(
        &config,
        format!(
            "kubernetes: {{access: kubeconfig, kubeconfig: {}}}\npod-resize: {{enabled: false}}\n\
             telemetry: {{listen: 127.0.0.1:{port}}}\nleader-election: {{enabled: false}}\n\
             alerts: {{kubernetes-events: false}}\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let telemetry = format!("127.0.0.1:{port}").parse().unwrap();
    let mut d = crate::daemon_process::DaemonProcess::start(&config, &dir.path().join("daemon.log"), telemetry, &[]);
    let start = Instant::now();
    let sampler = RssSampler::start(d.pid(), start);
    d.wait_ready(Duration::from_secs(600)).await;
    let synced = start.elapsed();
    let pid = d.pid();
    // Passes before the harness saw `/readyz` (polled every 100 ms): the
    // daemon plans only once every watch has listed, so any counted here
    // ran after the first list, never during it.
    // Read patiently: on a loaded machine a scrape can take longer than the
    // 2 s of an ordinary read, and a missed one would print as 0.
    let at_ready = d.scrape_patiently(Duration::from_secs(120)).await;
    let passes_at_ready = at_ready.get("heatscaler_loop_duration_seconds_count").unwrap_or(0.0);
    let room = at_ready.get("heatscaler_kubernetes_list_room_objects{resource=\"pods\"}");
    // Start-up and the first list of every watch: decoding is most of it.
    let sync_cpu = cpu_seconds(pid);
    d.wait_passes(3, Duration::from_secs(120)).await;
    let synced_rss = status_kib(pid, "VmRSS:");
    // Steady state: the allocator returns the pages freed after the first
    // list over its decay time (jemalloc: 10 s).
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (rss, peak) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
    let (sampled_peak, peak_at) = sampler.finish();
    let mib = |b: Option<f64>| b.map_or("-".to_string(), |b| format!("{:.0}", b / 1048576.0));
    let steady = d.scrape_patiently(Duration::from_secs(120)).await;
    let mut allocator = String::new();
    for family in ["heatscaler_allocator_peak_bytes", "heatscaler_allocator_bytes"] {
        let mut figures = Vec::new();
        for state in ["allocated", "active", "resident", "retained"] {
            let v = steady.get(&format!("{family}{{state=\"{state}\"}}"));
            figures.push(format!("{state} {}", mib(v)));
        }
        allocator.push_str(&format!("{} MiB; ", figures.join(", ")));
    }
    let passes = steady.get("heatscaler_loop_duration_seconds_count").unwrap_or(0.0);
    let pass = steady.get("heatscaler_loop_duration_seconds_sum").unwrap_or(0.0) / passes.max(1.0);
    let scrapes = format!("{} and {} tries", at_ready.attempts, steady.attempts);
    println!(
        "DAEMON: {nodes} nodes, {pod_n} pods, {replica_sets} ReplicaSets, {pdbs} PDBs ({})\n\
         \x20 kubesim filled in                          {:>7.1} s\n\
         \x20 daemon synced (first list of every watch)  {:>7.1} s wall, {sync_cpu:.1} s CPU (user + system)\n\
         \x20 daemon RSS right after sync                {:>7} MiB\n\
         \x20 daemon RSS 20 s later (steady)             {:>7} MiB\n\
         \x20 daemon peak RSS (VmHWM)                    {:>7} MiB\n\
         \x20 mean planning pass                         {:>7.0} ms over {passes} passes\n\
         \x20 RSS peak sampled every 20 ms               {:>7} MiB at {:.1} s, {}\n\
         \x20 passes counted when /readyz said ready     {passes_at_ready:>7}\n\
         \x20 room made for the first list of pods       {:>7}\n\
         \x20 jemalloc at its resident peak; now          {allocator}\n\
         \x20 /metrics scrapes (at ready; steady)         {scrapes}",
        if cfg!(debug_assertions) { "debug build" } else { "release build" },
        filled.as_secs_f64(),
        synced.as_secs_f64(),
        synced_rss / 1024,
        rss / 1024,
        peak / 1024,
        pass * 1000.0,
        sampled_peak / 1024,
        peak_at.as_secs_f64(),
        if peak_at <= synced { "during the first list" } else { "after the sync, while planning" },
        room.map_or("no".to_string(), |n| format!("{n} pods")),
    );
    let (status, _) = d.terminate(Duration::from_secs(30)).await;
    assert!(status.success());
}
