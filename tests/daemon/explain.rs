//! `heatscaler explain` (the binary) against kubesim over HTTP. Its run on a
//! real Heat stack is part of `tests/openstack/ha.rs` (which starts OpenStack anyway).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use kubesim::builders::PodTemplate;
use kubesim::{KubeSim, KubeSimHandle, NodeSpec, Options};

/// Runs `heatscaler --config <config> explain <extra…>` (shared with the
/// other modules that drive the binary, e.g. `mesh`).
pub(crate) async fn explain(config: &Path, extra: &[&str]) -> Output {
    let config = config.to_path_buf();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_heatscaler"))
            .arg("--config")
            .arg(config)
            .arg("explain")
            .args(extra)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// Writes `heatscaler.yaml` into `dir`: kubeconfig access to `sim`, then
/// `more` (further top-level sections, YAML) — the set-up every test that
/// runs the binary against kubesim repeats.
pub(crate) fn config_for(sim: &KubeSimHandle, dir: &Path, more: &str) -> PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let config = dir.join("heatscaler.yaml");
    std::fs::write(
        &config,
        format!("kubernetes:\n  access: kubeconfig\n  kubeconfig: {}\n{more}", kubeconfig.display()),
    )
    .unwrap();
    config
}

/// One 2-CPU node and three pods of 1.5 CPU: one runs, two cannot be scheduled.
async fn cluster() -> KubeSimHandle {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    sim.add_node(NodeSpec::new("node-1").cpu("2").memory("8Gi")).unwrap();
    sim.create(&PodTemplate::new("app").label("app", "web").requests("1500m", "128Mi").deployment("default", "web", 3))
        .unwrap();
    sim.wait_for("two pods unschedulable", Duration::from_secs(30), |s| {
        s.list::<k8s_openapi::api::core::v1::Pod>(Some("default"))
            .iter()
            .filter(|p| {
                p.status.as_ref().and_then(|s| s.conditions.as_ref()).into_iter().flatten().any(|c| {
                    c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
                })
            })
            .count()
            == 2
    })
    .await
    .unwrap();
    sim
}

fn pending_pods(sim: &KubeSimHandle) -> Vec<String> {
    sim.list::<k8s_openapi::api::core::v1::Pod>(Some("default"))
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explains_why_pending_pods_trigger_no_scale_up_without_acting() {
    let sim = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&sim, dir.path(), "");

    let out = explain(&config, &["--json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["nodes"], 1, "{plan}");
    assert_eq!(plan["pods"], 3, "{plan}");
    assert_eq!(plan["unschedulable_pods"], 2, "{plan}");
    assert_eq!(plan["actions"], serde_json::json!([]));
    let pods = plan["explanation"]["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "{plan}");
    assert!(pods.iter().all(|p| p["outcome"]["outcome"] == "no-scale-up"), "{plan}");

    let out = explain(&config, &[]).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(text.contains("1 node(s), 3 pod(s) (2 unschedulable), 0 node group(s)"), "{text}");
    for pod in pending_pods(&sim) {
        assert!(text.contains(&pod), "{pod} not explained:\n{text}");
    }
    assert!(text.contains("No action this pass."), "{text}");
    // Nothing reported or changed: no Event of ours, the node as it was.
    let ours = sim
        .list::<k8s_openapi::api::core::v1::Event>(None)
        .into_iter()
        .filter(|e| e.reporting_component.as_deref() == Some("heatscaler"))
        .count();
    assert_eq!(ours, 0, "explain reported Events");
    let node = sim.get::<k8s_openapi::api::core::v1::Node>(None, "node-1").unwrap();
    assert_eq!(node.spec.unwrap().taints, None, "explain touched the node");
    assert_eq!(pending_pods(&sim).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_heat_cannot_be_reached_is_named_in_the_error() {
    let sim = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    std::fs::write(dir.path().join("secret"), "s3cr3t-value\n").unwrap();
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("heatscaler.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
kubernetes: {{ access: kubeconfig, kubeconfig: {kubeconfig} }}
openstack:
  auth-url: http://127.0.0.1:{port}/v3
  application-credential: {{ id: abc, secret: {{ file: secret }} }}
  request-timeout: 2s
node-groups:
  - name: workers
    stack: k8s-workers
    backend: {{ kind: resource-group, resource: kube_minions, count-parameter: number_of_minions, removal-parameter: minions_to_remove }}
    min-size: 0
    max-size: 5
    node-mapping: {{ by: provider-id }}
"#,
            kubeconfig = kubeconfig.display()
        ),
    )
    .unwrap();
    let out = explain(&config, &["--timeout", "30s"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no plan is printed");
    assert!(stderr.contains("node group(s) workers"), "the error names the group: {stderr}");
    assert!(!stderr.contains("s3cr3t-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_kubeconfig_with_an_inline_token_is_never_echoed() {
    const CANARY: &str = "CanaryKubeToken0123456789";
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // `users` must be a list: the parser fails right after the token's line.
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers:\n  name: x\n  user:\n    token: {CANARY}\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("heatscaler.yaml");
    std::fs::write(&config, format!("kubernetes:\n  access: kubeconfig\n  kubeconfig: {}\n", kubeconfig.display()))
        .unwrap();
    let out = explain(&config, &["--timeout", "10s"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("kubernetes.kubeconfig") && stderr.contains("(line"), "{stderr}");
    assert!(!stderr.contains(CANARY) && !String::from_utf8_lossy(&out.stdout).contains(CANARY), "{stderr}");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_heatscaler"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "check-config accepts a kubeconfig the daemon cannot read");
    assert!(stderr.contains("kubernetes.kubeconfig") && !stderr.contains(CANARY), "{stderr}");
}

/// Issue 17, point 6: `explain` covers the pod level — per pod, why it would
/// be resized, recreated, moved or left alone — on the recommendation the
/// running recommender published in each VPA object's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explains_the_pod_level_from_the_published_recommendations() {
    use heatscaler_daemon::vpa::{VerticalPodAutoscaler, api};
    use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
    use kube::api::{Patch, PatchParams, PostParams};
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    sim.add_node(NodeSpec::new("node-1").cpu("4").memory("8Gi")).unwrap();
    let web = PodTemplate::new("app").label("app", "web").requests("100m", "128Mi").limits("200m", "256Mi");
    sim.create(&web.deployment("default", "web", 1)).unwrap();
    let batch = PodTemplate::new("job").label("app", "batch");
    sim.create(&batch.deployment("default", "batch", 1)).unwrap();
    sim.wait_for("pods running", Duration::from_secs(30), |s| s.ready_pods(Some("default")) >= 2).await.unwrap();
    let client = sim.kube_client().unwrap();
    let vpas: kube::Api<VerticalPodAutoscaler> = kube::Api::namespaced(client, "default");
    for (name, container) in [("web", "app"), ("batch", "job")] {
        let spec = api::VerticalPodAutoscalerSpec {
            target_ref: Some(CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: name.into(),
            }),
            update_policy: Some(api::PodUpdatePolicy {
                update_mode: Some(api::UpdateMode::InPlaceOrRecreate),
                ..Default::default()
            }),
            resource_policy: None,
            recommenders: vec![api::RecommenderSelector { name: "heatscaler".into() }],
            startup_boost: None,
        };
        vpas.create(&PostParams::default(), &VerticalPodAutoscaler::new("default", name, spec)).await.unwrap();
        let status = serde_json::json!({"status": {"recommendation": {"containerRecommendations": [{
            "containerName": container,
            "target": {"cpu": "500m", "memory": "128Mi"},
            "lowerBound": {"cpu": "400m", "memory": "100Mi"},
            "upperBound": {"cpu": "1", "memory": "256Mi"},
        }]}}});
        vpas.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_for(&sim, dir.path(), "pod-resize:\n  enabled: true\n");

    let out = explain(&config, &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    let line = |app: &str| text.lines().find(|l| l.contains(&format!("pod default/{app}-"))).unwrap_or_default();
    assert!(line("web").contains("(vpa default/web): resized in place"), "{text}");
    assert!(line("batch").contains("QoS class from BestEffort to Burstable"), "{text}");
    assert!(text.contains("resize pod default/web-"), "the action it would take:\n{text}");
    let web_pod = sim
        .list::<k8s_openapi::api::core::v1::Pod>(Some("default"))
        .into_iter()
        .find(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with("web-")));
    let requests = web_pod.unwrap().spec.unwrap().containers[0].resources.clone().unwrap().requests.unwrap();
    assert_eq!(requests["cpu"].0, "100m", "explain resized nothing");
}
