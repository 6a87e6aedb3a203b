//! The in-cluster manifests (config/kubernetes/): they parse as the API types,
//! the RBAC rules grant exactly the calls the code makes (least privilege),
//! the Deployment is hardened and runs leader election with the configuration
//! the daemon accepts, and `kubectl apply` of what kubesim serves works.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

const NAMESPACE: &str = "heatscaler";

/// Every Kubernetes API call heatscaler makes: (API group, resource, verb,
/// where). The first string of `where` is a file under crates/daemon/src/ (every
/// API call is the daemon's) and the second a
/// piece of code in it that makes the call: if the code changes, the test
/// says which entry to revisit.
const CLUSTER_CALLS: &[(&str, &str, &str, (&str, &str))] = &[
    ("", "nodes", "list", ("observe/watch.rs", "Api::<slim::Node>::all(")),
    ("", "nodes", "watch", ("observe/watch.rs", "Api::<slim::Node>::all(")),
    ("", "nodes", "get", ("act/kube.rs", "api.get_opt(name)")),
    ("", "nodes", "patch", ("act/kube.rs", "api.patch(name, &params, &body)")),
    ("", "nodes", "delete", ("act/kube.rs", "api.delete(name, &params)")),
    // Kubelet summary API / cAdvisor through the API server (observed usage).
    ("", "nodes/proxy", "get", ("usage/collector.rs", "/api/v1/nodes/{node}/proxy/{endpoint}")),
    ("", "pods", "list", ("observe/watch.rs", "Api::<slim::Pod>::all(")),
    ("", "pods", "watch", ("observe/watch.rs", "Api::<slim::Pod>::all(")),
    // A resize re-reads its pod first.
    ("", "pods", "get", ("vpa/client.rs", "pods.get_opt(&action.pod.name)")),
    // Drains (actuator) and evict-and-recreate (vpa).
    ("", "pods/eviction", "create", ("act/kube.rs", "api.evict(name, &params)")),
    ("", "pods/resize", "patch", ("vpa/client.rs", "patch_subresource(\"resize\"")),
    ("policy", "poddisruptionbudgets", "list", ("observe/watch.rs", "watcher(Api::<slim::PodDisruptionBudget>::all")),
    ("policy", "poddisruptionbudgets", "watch", ("observe/watch.rs", "watcher(Api::<slim::PodDisruptionBudget>::all")),
    // The admission webhook reads a new pod's ReplicaSet the watch has not delivered yet.
    ("apps", "replicasets", "get", ("admission/review.rs", "api.get_metadata_opt(name)")),
    ("apps", "replicasets", "list", ("observe/watch.rs", "watcher(Api::<slim::ReplicaSet>::all")),
    ("apps", "replicasets", "watch", ("observe/watch.rs", "watcher(Api::<slim::ReplicaSet>::all")),
    // Namespace labels, for pod affinity terms with a namespaceSelector.
    ("", "namespaces", "list", ("observe/watch.rs", "watcher(Api::<slim::Namespace>::all")),
    ("", "namespaces", "watch", ("observe/watch.rs", "watcher(Api::<slim::Namespace>::all")),
    // The placement advisor's template change: re-read, the PDBs over its pods, then a guarded JSON patch.
    ("policy", "poddisruptionbudgets", "list", ("act/placement.rs", "api.list(&ListParams::default())")),
    ("apps", "deployments", "get", ("act/placement.rs", "api.get_opt(&w.name)")),
    ("apps", "deployments", "patch", ("act/placement.rs", "api.patch(&w.name, &params, &Patch::Json")),
    ("apps", "statefulsets", "get", ("act/placement.rs", "api.get_opt(&w.name)")),
    ("apps", "statefulsets", "patch", ("act/placement.rs", "api.patch(&w.name, &params, &Patch::Json")),
    // kube-runtime's Recorder creates an Event, and patches it into a series when it repeats.
    ("events.k8s.io", "events", "create", ("alerts/kube_events.rs", "Recorder::new")),
    ("events.k8s.io", "events", "patch", ("alerts/kube_events.rs", "Recorder::new")),
    (
        "autoscaling.k8s.io",
        "verticalpodautoscalers",
        "list",
        ("control_loop/pod_level.rs", "watcher::watcher(api, watcher::Config::default())"),
    ),
    (
        "autoscaling.k8s.io",
        "verticalpodautoscalers",
        "watch",
        ("control_loop/pod_level.rs", "watcher::watcher(api, watcher::Config::default())"),
    ),
    ("autoscaling.k8s.io", "verticalpodautoscalers/status", "patch", ("vpa/client.rs", "api.patch_status(name")),
    // The recommender's history: read back once at start, saved by the leader.
    (
        "autoscaling.k8s.io",
        "verticalpodautoscalercheckpoints",
        "list",
        ("control_loop/pod_level.rs", "api.list(&ListParams"),
    ),
    ("autoscaling.k8s.io", "verticalpodautoscalercheckpoints", "patch", ("vpa/checkpoint.rs", "api.patch(name")),
    ("autoscaling.k8s.io", "verticalpodautoscalercheckpoints", "create", ("vpa/checkpoint.rs", "api.create(")),
    // heatscaler's own webhook registers itself; named `heatscaler` only.
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "get",
        ("admission/registration.rs", "self.api.get_opt(REGISTRATION)"),
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "patch",
        ("admission/registration.rs", "self.api.patch(REGISTRATION"),
    ),
    // Server-side apply creates it the first time.
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "create",
        ("admission/registration.rs", "Patch::Apply(&desired)"),
    ),
];

/// In heatscaler's namespace only (a Role): the leader lease.
const NAMESPACED_CALLS: &[(&str, &str, &str, (&str, &str))] = &[
    ("coordination.k8s.io", "leases", "get", ("control_loop/election/lease.rs", "self.api.get_opt(&self.name)")),
    ("coordination.k8s.io", "leases", "create", ("control_loop/election/lease.rs", "self.api.create(")),
    ("coordination.k8s.io", "leases", "update", ("control_loop/election/lease.rs", "self.api.replace(")),
];

/// In kube-system, on the status ConfigMap only (a Role with its name).
const STATUS_CALLS: &[(&str, &str, &str, (&str, &str))] = &[
    ("", "configmaps", "patch", ("act/status.rs", "api.patch(name, &params, &body)")),
    // `heatscaler explain` reads the leader's timers back.
    ("", "configmaps", "get", ("control_loop/status.rs", "api.get_opt(STATUS_CONFIGMAP)")),
];
const STATUS_NAMESPACE: &str = "kube-system";

/// The resource types the code builds an `Api` for; a new one needs a new entry above.
const API_TYPES: &[&str] = &[
    "Node",
    "Pod",
    "Lease",
    "PodDisruptionBudget",
    "ReplicaSet",
    "Namespace",
    "Deployment",
    "StatefulSet",
    "VerticalPodAutoscaler",
    "VerticalPodAutoscalerCheckpoint",
    "ConfigMap",
    "MutatingWebhookConfiguration",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifests() -> PathBuf {
    root().join("config/kubernetes")
}

/// Every document of every manifest file, with its file name.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in text.split("\n---\n") {
            let value = heatscaler_core::yaml::parse_value(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

/// The one object of `kind` in heatscaler's namespace (or cluster-scoped).
fn the<T: serde::de::DeserializeOwned>(docs: &[(String, Value)], kind: &str) -> T {
    the_in(docs, kind, NAMESPACE)
}

fn the_in<T: serde::de::DeserializeOwned>(docs: &[(String, Value)], kind: &str, namespace: &str) -> T {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|(_, d)| {
            d["kind"] == kind && [namespace, ""].contains(&d["metadata"]["namespace"].as_str().unwrap_or(""))
        })
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} in {namespace}");
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// (group, resource, verb) triples a set of rules grants; wildcards are refused.
fn granted(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in rules {
        let groups = r.api_groups.clone().unwrap_or_default();
        let resources = r.resources.clone().unwrap_or_default();
        assert!(r.non_resource_urls.is_none(), "no non-resource URLs");
        for v in groups.iter().chain(&resources).chain(&r.verbs) {
            assert_ne!(v, "*", "no wildcards: {r:?}");
        }
        for g in &groups {
            for res in &resources {
                for verb in &r.verbs {
                    assert!(out.insert((g.clone(), res.clone(), verb.clone())), "granted twice: {g} {res} {verb}");
                }
            }
        }
    }
    out
}

fn wanted(calls: &[(&str, &str, &str, (&str, &str))]) -> BTreeSet<(String, String, String)> {
    calls.iter().map(|(g, r, v, _)| (g.to_string(), r.to_string(), v.to_string())).collect()
}

fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn every_call_listed_is_still_made_and_every_api_type_is_listed() {
    let src = root().join("crates/daemon/src");
    for (group, resource, verb, (file, code)) in CLUSTER_CALLS.iter().chain(NAMESPACED_CALLS).chain(STATUS_CALLS) {
        let text = std::fs::read_to_string(src.join(file)).unwrap_or_else(|e| panic!("crates/daemon/src/{file}: {e}"));
        assert!(
            text.contains(code),
            "crates/daemon/src/{file} no longer contains `{code}`: is `{verb} {group}/{resource}` still needed? update the list and rbac.yaml"
        );
    }
    // The daemon and the command line talk to the API server; the core and
    // the simulator cannot (no Kubernetes client in their dependencies).
    let mut files = Vec::new();
    sources(&src, &mut files);
    sources(&root().join("src"), &mut files);
    for (path, text) in &files {
        for marker in ["Api::<", "Api<"] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                // The type up to the matching `>`.
                let mut depth = 1;
                let end = rest
                    .char_indices()
                    .find(|(_, c)| {
                        match c {
                            '<' => depth += 1,
                            '>' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map(|(j, _)| j)
                    .unwrap_or(rest.len());
                let ty = rest[..end].rsplit("::").next().unwrap_or_default();
                if ty == "K" || ty == "()" || ty.is_empty() {
                    continue; // generic helpers
                }
                assert!(
                    API_TYPES.contains(&ty),
                    "{} uses Api<{ty}>: add its calls to the list in tests/daemon/manifests.rs and to rbac.yaml",
                    path.display()
                );
            }
        }
        for call in ["create_subresource(", "replace_subresource(", "replace_status(", "create_status("] {
            assert!(!text.contains(call), "{} calls {call}: list it and grant it", path.display());
        }
    }
}

#[test]
fn rbac_grants_exactly_the_calls_the_code_makes() {
    let docs = documents();
    let cluster: ClusterRole = the(&docs, "ClusterRole");
    assert_eq!(granted(cluster.rules.as_deref().unwrap_or_default()), wanted(CLUSTER_CALLS));
    // The webhook's registration: only its own, by name (a create through
    // server-side apply is authorized with the name).
    for r in cluster.rules.as_deref().unwrap_or_default() {
        if r.resources.as_deref().unwrap_or_default().contains(&"mutatingwebhookconfigurations".to_string()) {
            let name = heatscaler_daemon::admission::registration::REGISTRATION.to_string();
            assert_eq!(r.resource_names.as_deref(), Some(&[name][..]), "{r:?}");
        }
    }
    let role: Role = the(&docs, "Role");
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    let rules = role.rules.clone().unwrap_or_default();
    assert_eq!(granted(&rules), wanted(NAMESPACED_CALLS));
    // get/update only on our lease (create cannot be limited by name).
    for r in &rules {
        if r.verbs.iter().any(|v| v != "create") {
            assert_eq!(r.resource_names.as_deref(), Some(&["heatscaler".to_string()][..]), "{r:?}");
        }
    }
    // The status ConfigMap: shipped here, and only it may be read and patched.
    let status_role: Role = the_in(&docs, "Role", STATUS_NAMESPACE);
    let status_rules = status_role.rules.clone().unwrap_or_default();
    assert_eq!(granted(&status_rules), wanted(STATUS_CALLS));
    for r in &status_rules {
        assert_eq!(r.resource_names.as_deref(), Some(&["heatscaler-status".to_string()][..]), "{r:?}");
    }
    let status_cm: ConfigMap = the_in(&docs, "ConfigMap", STATUS_NAMESPACE);
    assert_eq!(status_cm.metadata.name.as_deref(), Some(heatscaler_daemon::control_loop::status::STATUS_CONFIGMAP));
    assert_eq!(STATUS_NAMESPACE, heatscaler_daemon::control_loop::status::STATUS_NAMESPACE);
    assert!(status_cm.data.is_none(), "the daemon fills it; a re-apply must not reset it");
    let status_binding: RoleBinding = the_in(&docs, "RoleBinding", STATUS_NAMESPACE);
    assert_eq!(status_binding.role_ref.name, "heatscaler-status");
    assert_eq!(status_binding.subjects.as_ref().unwrap()[0].name, "heatscaler");

    let binding: ClusterRoleBinding = the(&docs, "ClusterRoleBinding");
    let role_binding: RoleBinding = the(&docs, "RoleBinding");
    assert_eq!(binding.role_ref.name, cluster.metadata.name.clone().unwrap());
    assert_eq!(role_binding.role_ref.name, role.metadata.name.clone().unwrap());
    for subjects in [binding.subjects.unwrap(), role_binding.subjects.unwrap()] {
        assert_eq!(subjects.len(), 1);
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str(), subjects[0].namespace.as_deref()),
            ("ServiceAccount", "heatscaler", Some(NAMESPACE))
        );
    }
}

#[test]
fn the_deployment_is_hardened_and_runs_leader_election_with_a_valid_configuration() {
    let docs = documents();
    for (file, d) in &docs {
        assert!(d["apiVersion"].is_string() && d["metadata"]["name"].is_string(), "{file}: {d}");
        let cluster_scoped = ["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(&d["kind"].as_str().unwrap());
        let status_object = d["metadata"]["name"] == "heatscaler-status";
        if !cluster_scoped {
            let ns = if status_object { STATUS_NAMESPACE } else { NAMESPACE };
            assert_eq!(d["metadata"]["namespace"], ns, "{file}: {}", d["kind"]);
        }
    }
    let deployment: Deployment = the(&docs, "Deployment");
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let labels = spec.selector.match_labels.clone().unwrap();
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("heatscaler"));
    let psc = pod.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let [container] = &pod.containers[..] else { panic!("one container") };
    let sc = container.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    let probe_path =
        |p: &Option<k8s_openapi::api::core::v1::Probe>| p.as_ref().unwrap().http_get.as_ref().unwrap().path.clone();
    assert_eq!(probe_path(&container.readiness_probe).as_deref(), Some("/readyz"));
    assert_eq!(probe_path(&container.liveness_probe).as_deref(), Some("/healthz"));
    let resources = container.resources.clone().unwrap();
    assert!(resources.requests.unwrap().contains_key("memory") && resources.limits.unwrap().contains_key("memory"));
    // --stop-timeout below the grace period, so the lease is released before SIGKILL.
    let args = container.args.clone().unwrap();
    let stop =
        args.iter().position(|a| a == "--stop-timeout").map(|i| humantime::parse_duration(&args[i + 1]).unwrap());
    assert!(stop.unwrap() < Duration::from_secs(pod.termination_grace_period_seconds.unwrap() as u64));
    let volumes = pod.volumes.unwrap();
    let secret = volumes.iter().find_map(|v| v.secret.clone()).expect("the OpenStack secret is a volume");
    assert_eq!(secret.secret_name.as_deref(), Some("heatscaler-openstack"));
    let config_map = volumes.iter().find_map(|v| v.config_map.clone()).unwrap();

    // The configuration in the ConfigMap is one the daemon accepts, in cluster, with election in our namespace.
    let cm: ConfigMap = the(&docs, "ConfigMap");
    assert_eq!(cm.metadata.name, Some(config_map.name));
    let text = &cm.data.unwrap()["heatscaler.yaml"];
    // The secret file is the pod's: stand one in for it.
    let secret_mount = container.volume_mounts.clone().unwrap().into_iter().find(|m| m.name == "openstack").unwrap();
    let secret_path = format!("{}/openstack-secret", secret_mount.mount_path);
    assert!(text.contains(&secret_path), "the config reads the mounted secret");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("openstack-secret"), "not-a-secret\n").unwrap();
    let text = text.replace(&secret_path, &dir.path().join("openstack-secret").display().to_string());
    let config = heatscaler_daemon::config::parse(&text, "configmap.yaml", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.kubernetes.access, heatscaler_daemon::config::KubernetesAccess::InCluster);
    assert!(config.leader_election.enabled);
    assert_eq!(config.leader_election.namespace, NAMESPACE);
    let role: Role = the(&docs, "Role");
    let named = role.rules.unwrap().into_iter().find_map(|r| r.resource_names).unwrap();
    assert_eq!(named, vec![config.leader_election.lease_name.clone()]);
    let port = container.ports.clone().unwrap()[0].container_port;
    assert_eq!(config.telemetry.listen.port() as i32, port, "probes reach the telemetry port");

    // The admission webhook is on: its port, the Service its registration
    // names (targeting that port), and a writable state directory for its
    // generated certificate.
    let webhook = config.admission_webhook.as_ref().expect("the installed configuration runs the webhook");
    assert!(webhook.given_certificate().is_none() && webhook.registers(), "self-registered, no hand step");
    let ports = container.ports.clone().unwrap();
    let webhook_port = ports.iter().find(|p| p.name.as_deref() == Some("webhook")).expect("a webhook port");
    assert_eq!(i32::from(webhook.listen.port()), webhook_port.container_port);
    let service: k8s_openapi::api::core::v1::Service = the(&docs, "Service");
    let named = webhook.service.as_ref().expect("registered with the Service");
    assert_eq!(service.metadata.name.as_deref(), Some(named.name.as_str()));
    assert_eq!(service.metadata.namespace.as_deref(), Some(named.namespace.as_str()));
    let service_spec = service.spec.unwrap();
    assert_eq!(service_spec.selector.unwrap(), labels, "every replica answers");
    let service_port = service_spec.ports.unwrap().into_iter().find(|p| i32::from(named.port) == p.port).unwrap();
    assert_eq!(service_port.target_port, Some(IntOrString::String("webhook".into())));
    let state = container
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.mount_path == webhook.state_directory.display().to_string());
    let state = state.expect("the state directory is mounted (the root file system is read-only)");
    assert_ne!(state.read_only, Some(true));
    assert!(volumes.iter().any(|v| v.name == state.name && v.empty_dir.is_some()));

    let pdb: PodDisruptionBudget = the(&docs, "PodDisruptionBudget");
    let pdb = pdb.spec.unwrap();
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(pdb.selector.unwrap().match_labels.unwrap(), labels);
}

/// kubesim serves Namespaces, Deployments and PodDisruptionBudgets (not RBAC,
/// ServiceAccounts, ConfigMaps or Secrets): those are applied with the real
/// kubectl, and the Deployment's pods must land on the two control-plane
/// nodes (its affinity and tolerations), never on the minion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_manifests_kubesim_serves() {
    let kubectl = Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        println!("SKIPPED: /usr/bin/kubectl is not installed; the manifests were checked by the other tests only");
        return;
    }
    let sim = kubesim::KubeSim::start(kubesim::Options::fast()).await.unwrap();
    for master in ["master-1", "master-2"] {
        sim.add_node(
            kubesim::NodeSpec::new(master)
                .cpu("2")
                .memory("8Gi")
                .label("node-role.kubernetes.io/control-plane", "")
                .taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
        )
        .unwrap();
    }
    sim.add_node(kubesim::NodeSpec::new("minion-0").cpu("8").memory("32Gi")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    for file in ["namespace.yaml", "deployment.yaml", "pdb.yaml"] {
        let path = manifests().join(file);
        let kubeconfig = kubeconfig.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("/usr/bin/kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["apply", "-f"])
                .arg(&path)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "kubectl apply -f {file}: {}", String::from_utf8_lossy(&out.stderr));
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    println!("not applied (kubesim does not serve these kinds): rbac.yaml, configmap.yaml");
    let running = sim
        .wait_for("two heatscaler pods running", Duration::from_secs(30), |s| s.ready_pods(Some(NAMESPACE)) == 2)
        .await;
    if let Err(e) = running {
        let pods: Vec<_> = sim
            .list::<Pod>(Some(NAMESPACE))
            .into_iter()
            .map(|p| (p.metadata.name, p.spec.and_then(|s| s.node_name), p.status))
            .collect();
        let deployment = sim.get::<Deployment>(Some(NAMESPACE), "heatscaler").and_then(|d| d.status);
        let events: Vec<_> =
            sim.list::<k8s_openapi::api::core::v1::Event>(None).into_iter().map(|e| (e.reason, e.message)).collect();
        panic!("{e}\npods: {pods:#?}\ndeployment: {deployment:?}\nevents: {events:?}");
    }
    let mut nodes: Vec<String> =
        sim.list::<Pod>(Some(NAMESPACE)).into_iter().filter_map(|p| p.spec.and_then(|s| s.node_name)).collect();
    nodes.sort();
    assert_eq!(nodes, ["master-1", "master-2"], "one replica per control-plane node, none on the minion");
}

/// docs/operations.md is the operators' runbook: every alert reason has a row.
#[test]
fn the_operations_guide_has_a_runbook_entry_for_every_alert_reason() {
    let doc = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    for reason in heatscaler_daemon::alerts::Reason::ALL {
        assert!(doc.contains(&format!("| `{reason}` |")), "docs/operations.md: no runbook row for {reason}");
    }
}

/// `usage.kubelet: direct` ships its own ClusterRole (applied over rbac.yaml's):
/// the same rules with `nodes/stats get` (what the kubelet authorises for
/// `/stats/summary`, usage/direct.rs) in place of `nodes/proxy get`.
#[test]
fn the_direct_kubelet_cluster_role_swaps_nodes_proxy_for_nodes_stats() {
    let docs = documents();
    let shipped: ClusterRole = the(&docs, "ClusterRole");
    let text = std::fs::read_to_string(manifests().join("kubelet-direct/rbac.yaml")).unwrap();
    let value = heatscaler_core::yaml::parse_value(&text).unwrap();
    let direct: ClusterRole = serde_json::from_value(value).unwrap();
    assert_eq!(direct.metadata.name, shipped.metadata.name, "it must replace the shipped ClusterRole's rules");
    let mut expected = granted(shipped.rules.as_deref().unwrap_or_default());
    assert!(expected.remove(&("".into(), "nodes/proxy".into(), "get".into())));
    expected.insert(("".into(), "nodes/stats".into(), "get".into()));
    assert_eq!(granted(direct.rules.as_deref().unwrap_or_default()), expected);
}
