//! The real kubectl against kubesim: get, describe, cordon/uncordon, a drain
//! that waits on a PodDisruptionBudget and completes once it allows, and
//! `get -w`. Skipped (and passing) only when kubectl is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{WAIT, nodes, start};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kubesim::{Budget, KubeSimHandle, PodTemplate, builders::pdb};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

fn kubectl_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).collect::<Vec<_>>())
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/kubectl")).chain(candidates).find(|p| p.is_file())
}

struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--kubeconfig").arg(&self.kubeconfig).arg("--cache-dir").arg(&self.cache).args(args);
        c.env_remove("KUBECONFIG").kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().await.expect("kubectl runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubectl {args:?} failed: {stdout}\n{stderr}");
        stdout
    }
}

fn setup(sim: &KubeSimHandle, dir: &Path) -> Option<Kubectl> {
    let Some(binary) = kubectl_binary() else {
        println!("skipped: kubectl not found");
        return None;
    };
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    Some(Kubectl { binary, kubeconfig, cache: dir.join("cache") })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_describes_cordons_and_drains_through_a_budget() {
    let (sim, _client) = start(nodes(3, "4", "8Gi")).await;
    let dir = tempfile::tempdir().unwrap();
    let Some(k) = setup(&sim, dir.path()) else { return };

    let out = k.run(&["get", "nodes"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("STATUS") && lines[0].contains("VERSION"), "{out}");
    assert_eq!(lines.iter().filter(|l| l.contains(" Ready ") && l.contains("v1.35.0")).count(), 3, "{out}");

    sim.create(&PodTemplate::new("web").label("app", "web").requests("500m", "256Mi").deployment("default", "web", 3))
        .unwrap();
    sim.create(&pdb("default", "web", &[("app", "web")], Budget::MinAvailable(json!(3)))).unwrap();
    sim.wait_for("web ready", WAIT, |s| s.ready_pods(Some("default")) == 3).await.unwrap();

    let out = k.run(&["get", "pods", "-A"]).await;
    assert!(out.lines().next().unwrap().starts_with("NAMESPACE"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("default") && l.contains("1/1") && l.contains("Running")).count(),
        3,
        "{out}"
    );

    // The node with a web pod on it.
    let target = sim.list::<Pod>(Some("default")).into_iter().find_map(|p| p.spec?.node_name).expect("a scheduled pod");
    let out = k.run(&["describe", "node", &target]).await;
    assert!(out.contains(&format!("Name:               {target}")), "{out}");
    assert!(out.contains("Non-terminated Pods:          (1 in total)"), "{out}");
    assert!(out.contains("500m (12%)"), "{out}");
    assert!(out.contains(&format!("HolderIdentity:  {target}")), "{out}");

    let out = k.run(&["cordon", &target]).await;
    assert_eq!(out.trim(), format!("node/{target} cordoned"));
    assert_eq!(sim.get::<Node>(None, &target).unwrap().spec.unwrap().unschedulable, Some(true));
    assert!(k.run(&["get", "node", &target]).await.contains("Ready,SchedulingDisabled"));
    let out = k.run(&["uncordon", &target]).await;
    assert_eq!(out.trim(), format!("node/{target} uncordoned"));
    assert_eq!(sim.get::<Node>(None, &target).unwrap().spec.unwrap().unschedulable, None);

    // Watch pods while draining.
    let mut watch = k.command(&["get", "pods", "-w"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut watch_out = BufReader::new(watch.stdout.take().unwrap()).lines();
    let header = watch_out.next_line().await.unwrap().unwrap();
    assert!(header.starts_with("NAME"), "{header}");

    let mut drain = k
        .command(&["drain", &target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=120s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut drain_err = BufReader::new(drain.stderr.take().unwrap()).lines();
    // kubectl reports the budget refusing the eviction and keeps retrying.
    let refusal = tokio::time::timeout(WAIT, async {
        while let Some(line) = drain_err.next_line().await.unwrap() {
            if line.contains("Cannot evict pod as it would violate the pod's disruption budget.") {
                return line;
            }
        }
        panic!("drain ended without reporting the budget");
    })
    .await
    .expect("drain reports the blocked eviction");
    assert!(refusal.contains("will retry after 5s"), "{refusal}");
    assert_eq!(sim.get::<Node>(None, &target).unwrap().spec.unwrap().unschedulable, Some(true), "drain cordons first");
    assert_eq!(sim.ready_pods(Some("default")), 3, "nothing evicted yet");

    // Scaling up gives the budget room: the next retry succeeds and the drain completes.
    sim.update::<Deployment>(Some("default"), "web", |d| d.spec.as_mut().unwrap().replicas = Some(4)).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), drain.wait()).await.expect("drain finishes").unwrap();
    let mut stdout = String::new();
    drain.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains(&format!("node/{target} drained")), "{stdout}");
    assert!(stdout.contains("evicted"), "{stdout}");

    // Server state: nothing left on the node, four web pods ready elsewhere.
    sim.wait_for("rescheduled elsewhere", WAIT, |s| {
        let pods = s.list::<Pod>(Some("default"));
        pods.iter().all(|p| p.spec.as_ref().unwrap().node_name.as_deref() != Some(target.as_str()))
            && s.ready_pods(Some("default")) == 4
    })
    .await
    .unwrap();

    // `get -w` showed the evicted pod terminating and new pods.
    let watched = tokio::time::timeout(WAIT, async {
        let mut seen = Vec::new();
        while let Some(line) = watch_out.next_line().await.unwrap() {
            seen.push(line);
            if seen.iter().any(|l| l.contains("Terminating"))
                && seen.iter().filter(|l| l.contains("Running")).count() >= 5
            {
                break;
            }
        }
        seen
    })
    .await
    .expect("kubectl get -w shows the changes");
    assert!(watched.iter().any(|l| l.contains("Pending")), "{watched:?}");
    watch.kill().await.ok();
}
