//! kubesim's own memory at heatscaler's design scale: the cluster the
//! daemon's scale run watches (`kubesim::design_scale`, 5,000 nodes and
//! 150,000 pods at scale 1), loaded and left to settle (every pod started by
//! the kubelet model, so each was written twice as in a real cluster), then
//! every pod listed once over HTTP as a client's first list would. Prints the
//! resident set per object; `/usr/bin/time -v` on the test binary gives the
//! peak. Ignored by default (minutes):
//!
//! ```text
//! cargo test --release -p kubesim --test footprint -- --ignored --nocapture
//! HEATSCALER_SCALE=2 cargo test ...     # 10,000 nodes, 300,000 pods
//! ```

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

fn status_kib(field: &str) -> u64 {
    kubesim::design_scale::status_kib("self", field)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale figures; run by hand"]
async fn kubesim_memory_at_the_design_scale() {
    let scale: f64 = std::env::var("HEATSCALER_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
    };
    let (sim, cluster) = kubesim::design_scale::start(scale).await;
    let filled_rss = status_kib("VmRSS:");
    let start = Instant::now();
    // The ReplicaSets exist before their pods (their uid is the pods'
    // owner), so a ReplicaSet controller that runs between the two may
    // create pods of its own, then remove the surplus: settled is every pod
    // Ready and the surplus gone.
    let mut surplus = 0;
    while sim.ready_pods(None) < cluster.pods || sim.count::<Pod>() != cluster.pods {
        surplus = surplus.max(sim.count::<Pod>().saturating_sub(cluster.pods));
        assert!(start.elapsed() < Duration::from_secs(1800), "pods not all ready after 30 min");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let settled = start.elapsed();
    let settled_rss = status_kib("VmRSS:");
    // A client's first list: 500-pod pages with the daemon's field selector.
    let cpu_before = cpu();
    let listed_at = Instant::now();
    let pods: Api<Pod> = Api::all(sim.kube_client().unwrap());
    let mut params = ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed").limit(500);
    let mut listed = 0;
    loop {
        let page = pods.list(&params).await.unwrap();
        listed += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(listed, cluster.pods, "the list returns every running pod");
    let list_wall = listed_at.elapsed();
    let list_cpu = cpu() - cpu_before;
    let objects = (cluster.nodes + cluster.pods + cluster.replica_sets + cluster.pdbs) as f64;
    let per_object = |kib: u64| kib as f64 * 1024.0 / objects / 1000.0;
    println!(
        "KUBESIM: {} nodes, {} pods, {} ReplicaSets, {} PDBs ({})\n\
         \x20 filled in                             {:>7.1} s, RSS then {:>6} MiB\n\
         \x20 every pod Running + Ready after       {:>7.1} s more ({surplus} surplus pods removed)\n\
         \x20 RSS settled                           {:>7} MiB ({:.1} KB an object)\n\
         \x20 every pod listed (500 a page)         {:>7.1} s wall, {list_cpu:.1} s CPU (both sides)\n\
         \x20 RSS after the list                    {:>7} MiB\n\
         \x20 peak RSS (VmHWM)                      {:>7} MiB ({:.1} KB an object)",
        cluster.nodes,
        cluster.pods,
        cluster.replica_sets,
        cluster.pdbs,
        if cfg!(debug_assertions) { "debug build" } else { "release build" },
        cluster.filled.as_secs_f64(),
        filled_rss / 1024,
        settled.as_secs_f64(),
        settled_rss / 1024,
        per_object(settled_rss),
        list_wall.as_secs_f64(),
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024,
        per_object(status_kib("VmHWM:")),
    );
}
