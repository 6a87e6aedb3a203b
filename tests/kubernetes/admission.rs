//! heatscaler's own admission webhook against the real API server: the
//! shipped registration (`config/admission/webhook-systemd.yaml`, URL on
//! 127.0.0.1 as on a master, `caBundle` from a throwaway CA), the `heatscaler`
//! binary serving it with the shipped RBAC, and pods created by the real
//! ReplicaSet controller.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::daemon::DaemonProcess;
use crate::kubernetes::{Knobs, TestKubernetes, wait_for};
use crate::{NS, deployment, pods_of};
use heatscaler_daemon::admission::ANNOTATION;
use heatscaler_daemon::vpa::VerticalPodAutoscaler;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a serving certificate for 127.0.0.1 signed by it, as
/// docs/pod-resizing.md tells operators to make them.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=webhook-ca"],
        ]
        .concat(),
    );
    openssl(dir, &[&["req"][..], &ec, &["-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=webhook"]].concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tls.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// (cpu request, memory request, cpu limit, memory limit) of the pod's `app`.
fn sizes(pod: &Pod) -> (String, String, String, String) {
    let r = pod.spec.as_ref().unwrap().containers[0].resources.clone().unwrap_or_default();
    let requests = r.requests.unwrap_or_default();
    let limits = r.limits.unwrap_or_default();
    let q = |m: &std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
             k: &str| m.get(k).map(|q| q.0.clone()).unwrap_or_default();
    (q(&requests, "cpu"), q(&requests, "memory"), q(&limits, "cpu"), q(&limits, "memory"))
}

fn mark(pod: &Pod) -> Option<String> {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION)).cloned()
}

/// The live pod of `web` that is not `old` (its replacement).
async fn replacement(pods: &Api<Pod>, old: Option<&str>) -> Pod {
    wait_for("web's pod", Duration::from_secs(60), || async {
        pods_of(pods, "web")
            .await
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none() && p.metadata.uid.as_deref() != old)
    })
    .await
}

/// **A recreated pod comes back at its recommendation, with heatscaler's
/// mark; with the daemon stopped, pods are still created (`Ignore`).** The
/// daemon runs as a standby (another identity holds the lease): the webhook
/// needs no leadership, and the standby writes no status, so the
/// recommendation is the one the test wrote. The ReplicaSet is created with
/// the webhook already serving: its first pod may come before the watch
/// delivers the ReplicaSet, which the webhook then reads from the API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_pod_gets_its_recommendation_from_heatscalers_webhook_and_pods_are_created_without_it() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());

    hold_the_lease(&admin).await;

    let port = free_port();
    let telemetry: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = standby_config(
        &k8s,
        dir.path(),
        telemetry,
        &format!("admission-webhook: {{listen: '127.0.0.1:{port}', cert-file: tls.crt, key-file: tls.key}}\n"),
    );
    let mut daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"), telemetry, &[]);
    daemon.wait_ready(Duration::from_secs(60)).await;

    // The shipped registration, pointed at this daemon's port.
    let ca = std::process::Command::new("base64").arg("-w0").arg(dir.path().join("ca.crt")).output().unwrap();
    let ca = String::from_utf8(ca.stdout).unwrap();
    let registration =
        std::fs::read_to_string(crate::kubernetes::repo_root().join("config/admission/webhook-systemd.yaml"))
            .unwrap()
            .replace("CA_BUNDLE", &ca)
            .replace("https://127.0.0.1:9443/", &format!("https://127.0.0.1:{port}/"));
    let file = dir.path().join("webhook.yaml");
    std::fs::write(&file, registration).unwrap();
    k8s.kubectl(&["apply", "-f", file.to_str().unwrap()]);

    // A VPA object heatscaler handles, its status carrying a recommendation.
    create_web_vpa(&admin).await;
    // The daemon's VPA watch delivers the status (no way to ask it; a watch
    // event on the loopback takes milliseconds).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    let web = web_deployment(1);
    deployments.create(&PostParams::default(), &web).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let recommended = ("750m".to_string(), "300Mi".to_string(), "1500m".to_string(), "600Mi".to_string());

    let first = replacement(&pods, None).await;
    println!("first pod: {:?} {:?}", sizes(&first), mark(&first));
    assert_eq!(sizes(&first), recommended, "created at the recommendation, limits in proportion");
    assert!(mark(&first).is_some_and(|m| m.contains("from VPA web")), "{:?}", first.metadata.annotations);

    // Deleted: the ReplicaSet's replacement comes back at the recommendation.
    let uid = first.metadata.uid.clone().unwrap();
    pods.delete(first.metadata.name.as_deref().unwrap(), &DeleteParams::default().grace_period(0)).await.unwrap();
    let second = replacement(&pods, Some(&uid)).await;
    println!("replacement: {:?} {:?}", sizes(&second), mark(&second));
    assert_eq!(sizes(&second), recommended);
    assert!(mark(&second).is_some());
    let patched = daemon.metric("heatscaler_admission_reviews_total{outcome=\"patched\"}").await.unwrap_or(0.0);
    assert!(patched >= 2.0, "both creations counted: {patched}");
    assert!(!daemon.log().contains("hunter2"));

    // The daemon stopped: the pod is still created, at its template's size (Ignore).
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    let uid = second.metadata.uid.clone().unwrap();
    pods.delete(second.metadata.name.as_deref().unwrap(), &DeleteParams::default().grace_period(0)).await.unwrap();
    let third = replacement(&pods, Some(&uid)).await;
    println!("with the daemon stopped: {:?} {:?}", sizes(&third), mark(&third));
    assert_eq!(sizes(&third), ("500m".into(), "256Mi".into(), "1".into(), "512Mi".into()));
    assert_eq!(mark(&third), None);
}

/// The daemon's configuration file in `dir`: a standby (see
/// [`hold_the_lease`]) with the pod level on and the `webhook` section given.
fn standby_config(k8s: &TestKubernetes, dir: &Path, telemetry: SocketAddr, webhook: &str) -> std::path::PathBuf {
    let config = dir.join("heatscaler.yaml");
    let text = format!(
        "kubernetes: {{access: kubeconfig, kubeconfig: {kubeconfig}}}\n\
         telemetry: {{listen: '{telemetry}'}}\n\
         leader-election: {{enabled: true, identity: standby}}\n\
         pod-resize: {{enabled: true}}\n{webhook}",
        kubeconfig = k8s.heatscaler_kubeconfig().display(),
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// A VPA object heatscaler handles for `web`, its status carrying a
/// recommendation (750m / 300Mi).
async fn create_web_vpa(admin: &kube::Client) {
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(admin.clone(), NS);
    let vpa: VerticalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "recommenders": [{"name": "heatscaler"}], "updatePolicy": {"updateMode": "Initial"}}}))
    .unwrap();
    vpas.create(&PostParams::default(), &vpa).await.unwrap();
    let status = json!({"status": {"recommendation": {"containerRecommendations": [
        {"containerName": "app", "target": {"cpu": "750m", "memory": "300Mi"},
         "lowerBound": {"cpu": "500m", "memory": "200Mi"}, "upperBound": {"cpu": "1", "memory": "400Mi"}}]}}});
    vpas.patch_status("web", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

/// Another replica leads for the whole test: the daemon under test is a
/// standby, which serves the webhook (no leadership needed) and writes no VPA
/// status, so the recommendation is the one the test wrote.
async fn hold_the_lease(admin: &kube::Client) {
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "heatscaler");
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string();
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "heatscaler"},
        "spec": {"holderIdentity": "the-other-replica", "leaseDurationSeconds": 3600,
                 "acquireTime": now, "renewTime": now}}))
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.expect("the lease");
}

/// The CA certificates of a PEM bundle, as the registration compares them.
fn cas(pem: &[u8]) -> Vec<Vec<u8>> {
    heatscaler_daemon::admission::registration::certificates(&String::from_utf8_lossy(pem))
}

/// The `caBundle` the API server uses to call heatscaler's webhook.
async fn registered_bundle(admin: &kube::Client) -> Option<Vec<Vec<u8>>> {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    let api: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let registration = api.get_opt("heatscaler").await.ok()??;
    let webhook = registration.webhooks?.into_iter().find(|w| w.name == "pods.admission.heatscaler.io")?;
    Some(cas(&webhook.client_config.ca_bundle?.0))
}

/// Whether the webhook at `port` serves a certificate `ca` (PEM) verifies for 127.0.0.1.
async fn serves_certificate_of(port: u16, ca: &[u8]) -> bool {
    let ca = reqwest::Certificate::from_pem(ca).unwrap();
    let client = reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca).build().unwrap();
    let answer = client.post(format!("https://127.0.0.1:{port}/mutate-pods")).body("{}").send().await;
    answer.is_ok_and(|r| r.status() == 400)
}

/// Waits until the API server calls the webhook: a new registration reaches
/// the API server's informers a moment after it is written. Server-side
/// dry-run creations of an ownerless pod (allowed: `sideEffects: None`) until
/// one has been reviewed.
async fn wait_until_called(admin: &kube::Client, daemon: &DaemonProcess) {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let probe: Pod = serde_json::from_value(json!({"metadata": {"name": "webhook-probe"},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}))
    .unwrap();
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    wait_for("the API server calling the webhook", Duration::from_secs(30), || async {
        pods.create(&dry_run, &probe).await.unwrap();
        daemon.metric("heatscaler_admission_reviews_total{outcome=\"unchanged\"}").await.filter(|n| *n > 0.0)
    })
    .await;
}

/// web as the tests create it: 500m / 256Mi requested, 1 / 512Mi limits.
fn web_deployment(replicas: i32) -> Deployment {
    deployment(
        "web",
        replicas,
        "500m",
        json!({"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}}),
    )
}

/// Creates `web` with no replica, waits until a pod of its ReplicaSet would
/// be created at its recommendation (a server-side dry run: the daemon's
/// watch has delivered the VPA status, which a loaded machine may take
/// seconds to do), then scales it to one: the real ReplicaSet controller
/// creates the pod.
async fn create_web_once_recommended(admin: &kube::Client) {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use kube::api::ListParams;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    let web = web_deployment(0);
    deployments.create(&PostParams::default(), &web).await.unwrap();
    let replicasets: Api<ReplicaSet> = Api::namespaced(admin.clone(), NS);
    let rs = wait_for("web's ReplicaSet", Duration::from_secs(30), || async {
        replicasets.list(&ListParams::default().labels("app=web")).await.ok()?.items.into_iter().next()
    })
    .await;
    let template = rs.spec.clone().unwrap().template.unwrap();
    let probe: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "web-probe-", "labels": template.metadata.unwrap().labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs.metadata.name,
                                 "uid": rs.metadata.uid, "controller": true}]},
        "spec": template.spec}))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    wait_for("the webhook knowing web's recommendation", Duration::from_secs(30), || async {
        mark(&pods.create(&dry_run, &probe).await.ok()?).map(|_| ())
    })
    .await;
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.unwrap();
}

/// **The standard install's webhook: no certificate files, no hand step.**
/// The daemon (a standby, with the shipped RBAC) generates its CA and serving
/// certificate in its state directory (0600), registers the
/// MutatingWebhookConfiguration itself, and the real ReplicaSet controller's
/// pods come up at their recommendation with heatscaler's mark. Then the
/// certificate is renewed (validity 2 min, renewed 90 s before expiry): the
/// new CA is merged into the registration's caBundle, the listener serves the
/// new certificate, and pods created after the rotation are still mutated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_registers_its_webhook_with_a_generated_certificate_and_keeps_it_working_across_a_rotation() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    hold_the_lease(&admin).await;

    let port = free_port();
    let telemetry: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = standby_config(
        &k8s,
        dir.path(),
        telemetry,
        &format!(
            "admission-webhook:\n  listen: '127.0.0.1:{port}'\n  state-directory: state\n  \
             certificate-validity: 2m\n  renew-before: 90s\n"
        ),
    );
    let mut daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"), telemetry, &[]);
    daemon.wait_ready(Duration::from_secs(60)).await;

    // Registered with the generated CA, by the daemon, with the shipped RBAC.
    let first_ca = std::fs::read(state.join("webhook-ca.crt")).expect("the generated CA");
    let bundle = wait_for("the registration", Duration::from_secs(30), || async {
        registered_bundle(&admin).await.filter(|b| !b.is_empty())
    })
    .await;
    assert_eq!(bundle, cas(&first_ca), "the registration trusts the generated CA");
    for file in ["webhook.key", "webhook.crt", "webhook-ca.crt"] {
        assert!(heatscaler_daemon::admission::certificate::owner_only(&state.join(file)), "{file} is 0600");
    }
    let registration =
        k8s.kubectl(&["get", "mutatingwebhookconfiguration", "heatscaler", "-o", "json", "--show-managed-fields"]);
    let registration: serde_json::Value = serde_json::from_str(&registration).unwrap();
    let webhook = &registration["webhooks"][0];
    assert_eq!(webhook["clientConfig"]["url"], format!("https://127.0.0.1:{port}/mutate-pods"));
    assert_eq!((webhook["failurePolicy"].as_str(), webhook["sideEffects"].as_str()), (Some("Ignore"), Some("None")));
    let managers: Vec<&str> = registration["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["heatscaler"], "written by server-side apply with heatscaler's field manager");
    wait_until_called(&admin, &daemon).await;

    create_web_vpa(&admin).await;
    create_web_once_recommended(&admin).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let recommended = ("750m".to_string(), "300Mi".to_string(), "1500m".to_string(), "600Mi".to_string());
    let first = replacement(&pods, None).await;
    println!("first pod: {:?} {:?}", sizes(&first), mark(&first));
    assert_eq!(sizes(&first), recommended, "created at the recommendation");
    assert!(mark(&first).is_some_and(|m| m.contains("from VPA web")), "{:?}", first.metadata.annotations);

    // The rotation: a new CA in the state directory, merged into the
    // registration, and served.
    let second_ca = wait_for("the certificate renewed", Duration::from_secs(90), || async {
        std::fs::read(state.join("webhook-ca.crt")).ok().filter(|ca| cas(ca) != cas(&first_ca))
    })
    .await;
    let bundle = wait_for("the new CA registered", Duration::from_secs(30), || async {
        registered_bundle(&admin).await.filter(|b| b.contains(&cas(&second_ca)[0]))
    })
    .await;
    println!("caBundle after the rotation: {} CAs", bundle.len());
    wait_for("the renewed certificate served", Duration::from_secs(30), || async {
        serves_certificate_of(port, &second_ca).await.then_some(())
    })
    .await;
    let uid = first.metadata.uid.clone().unwrap();
    pods.delete(first.metadata.name.as_deref().unwrap(), &DeleteParams::default().grace_period(0)).await.unwrap();
    let second = replacement(&pods, Some(&uid)).await;
    println!("after the rotation: {:?} {:?}", sizes(&second), mark(&second));
    assert_eq!(sizes(&second), recommended, "still mutated after the rotation");
    assert!(mark(&second).is_some());

    // The key never reaches the log.
    let key = std::fs::read_to_string(state.join("webhook.key")).unwrap();
    let log = daemon.log();
    for line in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "a line of the private key is in the daemon's log");
    }
    assert!(log.contains("serving certificate renewed"), "the rotation is logged");
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// This host's first non-loopback IPv4 address (an Endpoints address may not be loopback).
fn host_address() -> String {
    let out = std::process::Command::new("hostname").arg("-I").output().expect("hostname -I");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| !ip.is_loopback()))
        .expect("a non-loopback IPv4 address")
        .to_string()
}

/// Restarts the API server with `--enable-aggregator-routing=true`, so it
/// calls a Service's endpoints rather than its cluster IP (no kube-proxy
/// here), and waits until it answers again.
async fn restart_the_api_server_routing_to_endpoints(k8s: &TestKubernetes) -> kube::Client {
    let pid = std::fs::read_to_string(k8s.dir.join("run/kube-apiserver.pid")).unwrap().trim().to_string();
    let mut args = k8s.kill_apiserver();
    // Its port is free once the killed process is gone.
    wait_for("the API server gone", Duration::from_secs(30), || async {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;
    args.push("--enable-aggregator-routing=true".into());
    k8s.start_apiserver(&args);
    let admin = k8s.admin().await;
    let started = std::time::Instant::now();
    while admin.request_text(http::Request::get("/readyz").body(Vec::new()).unwrap()).await.ok().as_deref()
        != Some("ok")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the API server is not back: {}",
            k8s.log_tail("kube-apiserver", 30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    admin
}

/// The Service `heatscaler/heatscaler-webhook` with no selector, and its
/// Endpoints: this host's address at each of `ports` — what the endpoints
/// controller writes for the ready replicas behind config/kubernetes/webhook-service.yaml.
fn webhook_endpoints(k8s: &TestKubernetes, dir: &Path, ports: &[u16]) {
    let address = host_address();
    let subsets: String = ports
        .iter()
        .map(|port| {
            format!(
                "  - addresses: [{{ip: '{address}'}}]\n    ports: [{{name: webhook, port: {port}, protocol: TCP}}]\n"
            )
        })
        .collect();
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: heatscaler-webhook, namespace: heatscaler}}\n\
         spec:\n  ports:\n    - {{name: webhook, port: 443, targetPort: webhook, protocol: TCP}}\n---\n\
         apiVersion: v1\nkind: Endpoints\nmetadata: {{name: heatscaler-webhook, namespace: heatscaler}}\n\
         subsets:\n{subsets}"
    );
    std::fs::write(dir.join("service.yaml"), service).unwrap();
    k8s.kubectl(&["apply", "-f", dir.join("service.yaml").to_str().unwrap()]);
}

/// The `admission-webhook` section of a replica behind the Service, listening on `port`.
fn behind_the_service(port: u16, state: &str) -> String {
    format!(
        "admission-webhook:\n  listen: '0.0.0.0:{port}'\n  state-directory: {state}\n  \
         service: {{namespace: heatscaler, name: heatscaler-webhook, port: 443}}\n"
    )
}

/// **The in-cluster registration: a Service.** The API server is restarted
/// with `--enable-aggregator-routing=true`, so it calls a Service's
/// endpoints rather than its cluster IP (no kube-proxy here); the Service
/// `heatscaler/heatscaler-webhook` has no selector and an Endpoints object
/// pointing at the daemon on this host's address. The daemon (config as
/// config/kubernetes/configmap.yaml: `service:`) names the Service in its
/// registration and its certificate `heatscaler-webhook.heatscaler.svc`,
/// which the API server checks; a ReplicaSet's pod comes up mutated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_cluster_registration_names_the_service_and_the_api_server_calls_it_through_it() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = restart_the_api_server_routing_to_endpoints(&k8s).await;
    hold_the_lease(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    webhook_endpoints(&k8s, dir.path(), &[port]);

    let telemetry: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = standby_config(&k8s, dir.path(), telemetry, &behind_the_service(port, "state"));
    let mut daemon = DaemonProcess::start(&config, &dir.path().join("daemon.log"), telemetry, &[]);
    daemon.wait_ready(Duration::from_secs(60)).await;
    let ca = std::fs::read(dir.path().join("state/webhook-ca.crt")).expect("the generated CA");
    wait_for("the registration", Duration::from_secs(30), || async {
        registered_bundle(&admin).await.filter(|b| *b == cas(&ca))
    })
    .await;
    let registration = k8s.kubectl(&["get", "mutatingwebhookconfiguration", "heatscaler", "-o", "json"]);
    let registration: serde_json::Value = serde_json::from_str(&registration).unwrap();
    let client = &registration["webhooks"][0]["clientConfig"];
    assert_eq!(client["service"]["name"], "heatscaler-webhook");
    assert_eq!(client["service"]["namespace"], "heatscaler");
    assert_eq!(client["url"], serde_json::Value::Null);
    wait_until_called(&admin, &daemon).await;

    create_web_vpa(&admin).await;
    create_web_once_recommended(&admin).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let first = replacement(&pods, None).await;
    println!("through the Service: {:?} {:?}", sizes(&first), mark(&first));
    let mut outcomes = Vec::new();
    for outcome in ["patched", "unchanged", "not_synced", "workload_unknown", "invalid"] {
        let series = format!("heatscaler_admission_reviews_total{{outcome=\"{outcome}\"}}");
        outcomes.push((outcome, daemon.metric(&series).await));
    }
    assert_eq!(sizes(&first), ("750m".into(), "300Mi".into(), "1500m".into(), "600Mi".into()), "{outcomes:?}");
    assert!(mark(&first).is_some_and(|m| m.contains("from VPA web")), "{:?}", first.metadata.annotations);
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// The shipped ClusterRole's rule for the webhook's registration, removed
/// (the API server then refuses heatscaler's reads and writes of it with
/// 403) until the returned rule is put back with [`grant_registration`].
async fn revoke_registration(k8s: &TestKubernetes) -> serde_json::Value {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    let role: serde_json::Value =
        serde_json::from_str(&k8s.kubectl(&["get", "clusterrole", "heatscaler", "-o", "json"])).unwrap();
    let rules = role["rules"].as_array().unwrap();
    let index = rules
        .iter()
        .position(|r| r["resources"].as_array().unwrap().iter().any(|r| r == "mutatingwebhookconfigurations"))
        .expect("the shipped RBAC lets heatscaler register its webhook");
    let patch = json!([{"op": "remove", "path": format!("/rules/{index}")}]).to_string();
    k8s.kubectl(&["patch", "clusterrole", "heatscaler", "--type=json", "-p", &patch]);
    let heatscaler: Api<MutatingWebhookConfiguration> = Api::all(k8s.heatscaler().await);
    wait_for("heatscaler refused its registration", Duration::from_secs(30), || async {
        matches!(heatscaler.get_opt("heatscaler").await, Err(kube::Error::Api(e)) if e.code == 403).then_some(())
    })
    .await;
    rules[index].clone()
}

fn grant_registration(k8s: &TestKubernetes, rule: &serde_json::Value) {
    let patch = json!([{"op": "add", "path": "/rules/-", "value": rule}]).to_string();
    k8s.kubectl(&["patch", "clusterrole", "heatscaler", "--type=json", "-p", &patch]);
}

/// **A new replica is not ready — so not behind the webhook's Service —
/// until the registration trusts its CA.** Replica A serves behind the
/// Service and is registered. Replica B starts with its own fresh CA while
/// the API server refuses heatscaler's writes to the registration (its
/// ClusterRole's rule removed): B syncs, is refused, and its `/readyz` says
/// it waits for the registration, which does not hold B's CA. Were it ready,
/// the endpoints controller would put it behind the Service and the API
/// server, failing TLS to it, would admit pods sent there unmutated. The
/// rule back, B registers (both CAs in the bundle) and is ready; then, as a
/// rolling update ends, A goes and the Service's endpoints are B alone: the
/// API server calls B, and the pod created then is mutated by B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_is_ready_only_once_the_registration_trusts_its_ca_and_then_mutates_pods() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = restart_the_api_server_routing_to_endpoints(&k8s).await;
    hold_the_lease(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    webhook_endpoints(&k8s, dir.path(), &[port_a]);

    let replica = |name: &str, port: u16| {
        let telemetry: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let home = dir.path().join(name);
        std::fs::create_dir(&home).unwrap();
        let config = standby_config(&k8s, &home, telemetry, &behind_the_service(port, "state"));
        (DaemonProcess::start(&config, &home.join("daemon.log"), telemetry, &[]), home.join("state/webhook-ca.crt"))
    };
    let (mut a, a_ca) = replica("a", port_a);
    a.wait_ready(Duration::from_secs(60)).await;
    let a_ca = cas(&std::fs::read(a_ca).unwrap());
    assert_eq!(registered_bundle(&admin).await, Some(a_ca.clone()), "A is ready once registered");
    wait_until_called(&admin, &a).await;
    create_web_vpa(&admin).await;
    create_web_once_recommended(&admin).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let first = replacement(&pods, None).await;
    assert!(mark(&first).is_some(), "mutated through A");

    // B starts while the registration is refused to it.
    let rule = revoke_registration(&k8s).await;
    let (mut b, b_ca) = replica("b", port_b);
    wait_for("B refused its registration", Duration::from_secs(60), || async {
        b.log().contains("admission webhook: not registered; retrying").then_some(())
    })
    .await;
    let (status, body) = wait_for("B synced with Kubernetes", Duration::from_secs(60), || async {
        b.get("/readyz").await.filter(|(_, body)| !body.contains("first Kubernetes sync"))
    })
    .await;
    let b_ca = cas(&std::fs::read(b_ca).unwrap());
    let bundle = registered_bundle(&admin).await.unwrap();
    println!("B synced, its CA not registered: /readyz {status} {body:?}; caBundle: {} CA(s)", bundle.len());
    assert!(!bundle.contains(&b_ca[0]), "B's CA is not in the bundle");
    assert_eq!(status, 503, "B must not be ready while the API server cannot verify it: {body:?}");
    assert!(body.contains("the admission webhook's registration to trust this replica's CA"), "{body:?}");

    // The rule back: B registers within its retry (10 s) and is ready.
    grant_registration(&k8s, &rule);
    b.wait_ready(Duration::from_secs(60)).await;
    let bundle = registered_bundle(&admin).await.unwrap();
    println!("B ready: caBundle {} CA(s)", bundle.len());
    assert!(bundle.contains(&b_ca[0]) && bundle.contains(&a_ca[0]), "both replicas' CAs are trusted");

    // A goes (the end of a rolling update): the Service's endpoints are B alone.
    let (status, _) = a.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    webhook_endpoints(&k8s, dir.path(), &[port_b]);
    wait_until_called(&admin, &b).await;
    let uid = first.metadata.uid.clone().unwrap();
    pods.delete(first.metadata.name.as_deref().unwrap(), &DeleteParams::default().grace_period(0)).await.unwrap();
    let second = replacement(&pods, Some(&uid)).await;
    println!("created through B: {:?} {:?}", sizes(&second), mark(&second));
    assert_eq!(sizes(&second), ("750m".into(), "300Mi".into(), "1500m".into(), "600Mi".into()));
    assert!(mark(&second).is_some_and(|m| m.contains("from VPA web")), "{:?}", second.metadata.annotations);
    let patched = b.metric("heatscaler_admission_reviews_total{outcome=\"patched\"}").await.unwrap_or(0.0);
    assert!(patched >= 1.0, "B mutated it: {patched}");
    let (status, _) = b.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}
