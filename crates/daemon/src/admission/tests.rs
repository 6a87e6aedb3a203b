//! The webhook's answers: through [`Admitter::review`] on a store and VPA
//! objects filled as the watches fill them, and over TLS through the listener.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};

use k8s_openapi::api::core::v1 as k8s;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::*;
use crate::observe::{ClusterStore, slim};
use crate::telemetry::{AdmissionOutcome, Metrics};
use crate::vpa::VerticalPodAutoscaler;
use crate::vpa::client::VpaObjects;

/// A review of the creation of a pod of ReplicaSet `web-7d9f` in `shop`.
fn review_json(namespace_in_object: bool) -> Value {
    let mut metadata = json!({"generateName": "web-7d9f-",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
                             "uid": "rs-1", "controller": true}]});
    if namespace_in_object {
        metadata["namespace"] = json!("shop");
    }
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                "spec": {"containers": [{"name": "app", "image": "app",
                    "resources": {"requests": {"cpu": "500m", "memory": "256Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
                    "env": [{"name": "PASSWORD", "value": "hunter2"}]}]}},
            "oldObject": null, "dryRun": false
        }
    })
}

fn request(review: Value) -> AdmissionRequest<DynamicObject> {
    serde_json::from_value::<AdmissionReview<DynamicObject>>(review).unwrap().try_into().unwrap()
}

fn replica_set(deployment: Option<&str>) -> slim::ReplicaSet {
    let mut meta = json!({"name": "web-7d9f", "namespace": "shop", "uid": "rs-1"});
    if let Some(d) = deployment {
        meta["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": d, "uid": "d", "controller": true}]);
    }
    serde_json::from_value(json!({"metadata": meta,
        "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}}))
    .unwrap()
}

fn vpa(name: &str, mode: &str, recommenders: &[&str], target: Option<(&str, &str)>) -> VerticalPodAutoscaler {
    let mut v = json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": name, "namespace": "shop", "generation": 1},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "updatePolicy": {"updateMode": mode},
                 "recommenders": recommenders.iter().map(|r| json!({"name": r})).collect::<Vec<_>>()}
    });
    if let Some((cpu, memory)) = target {
        v["status"] = json!({"recommendation": {"containerRecommendations": [
            {"containerName": "app", "target": {"cpu": cpu, "memory": memory}}]}});
    }
    serde_json::from_value(v).unwrap()
}

struct Cluster {
    admitter: Admitter,
}

impl Cluster {
    /// The store has seen `web-7d9f` (of Deployment `web`) when `rs_seen`;
    /// the VPA objects are listed when `vpas` is `Some`.
    async fn new(rs_seen: bool, vpas: Option<Vec<VerticalPodAutoscaler>>) -> Self {
        let mut store = ClusterStore::new();
        store.apply_replica_set(Event::Init);
        if rs_seen {
            store.apply_replica_set(Event::InitApply(replica_set(Some("web"))));
        }
        store.apply_replica_set(Event::InitDone);
        let mut objects = VpaObjects::default();
        if let Some(vpas) = vpas {
            objects.apply(Event::Init);
            for v in vpas {
                objects.apply(Event::InitApply(v));
            }
            objects.apply(Event::InitDone);
        }
        Cluster {
            admitter: Admitter {
                store: Arc::new(Mutex::new(store)),
                vpas: Arc::new(StdMutex::new(objects)),
                recommender_name: "heatscaler".into(),
                claim_unnamed: false,
                client: None,
                dry_run: false,
            },
        }
    }

    async fn answer(&self) -> Answer {
        self.admitter.review(&request(review_json(false))).await
    }
}

/// The pod of a review once the answer's patch is applied.
fn admitted_pod(answer: &Answer) -> k8s::Pod {
    let mut pod = review_json(false)["request"]["object"].clone();
    if let Some(bytes) = &answer.response.patch {
        let patch: json_patch::Patch = serde_json::from_slice(bytes).unwrap();
        json_patch::patch(&mut pod, &patch).unwrap();
    }
    serde_json::from_value(pod).unwrap()
}

fn requests(pod: &k8s::Pod) -> BTreeMap<String, String> {
    let r = pod.spec.as_ref().unwrap().containers[0].resources.clone().unwrap();
    r.requests.unwrap().into_iter().map(|(k, v)| (k, v.0)).collect()
}

#[tokio::test]
async fn a_dry_run_admits_the_pod_as_created_and_counts_what_it_would_have_done() {
    let mut c = Cluster::new(true, Some(vec![vpa("web", "Initial", &["heatscaler"], Some(("750m", "300Mi")))])).await;
    c.admitter.dry_run = true;
    let answer = c.answer().await;
    assert_eq!(answer.outcome, AdmissionOutcome::DryRun);
    assert!(answer.response.allowed);
    assert!(answer.response.patch.is_none(), "a dry run changes no pod");
    assert_eq!(answer.vpa.as_deref(), Some("shop/web"));
}

#[tokio::test]
async fn a_new_pod_of_a_handled_vpa_gets_its_published_recommendation() {
    let c = Cluster::new(true, Some(vec![vpa("web", "Initial", &["heatscaler"], Some(("750m", "300Mi")))])).await;
    let answer = c.answer().await;
    assert_eq!(answer.outcome, AdmissionOutcome::Patched);
    assert!(answer.response.allowed);
    assert_eq!(answer.response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002", "the request's uid is echoed");
    assert_eq!(answer.vpa.as_deref(), Some("shop/web"));
    let pod = admitted_pod(&answer);
    assert_eq!(requests(&pod), BTreeMap::from([("cpu".into(), "750m".into()), ("memory".into(), "300Mi".into())]));
    assert_eq!(admitted_by(pod.metadata.annotations.as_ref()), Some("web"));
    // The response as the API server reads it: a base64 JSONPatch.
    let wire = serde_json::to_value(answer.response.into_review()).unwrap();
    assert_eq!(wire["response"]["patchType"], "JSONPatch");
    assert_eq!(wire["response"]["allowed"], true);
    assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
}

#[tokio::test]
async fn every_problem_admits_the_pod_as_created() {
    let handled = || Some(vec![vpa("web", "Recreate", &["heatscaler"], Some(("750m", "300Mi")))]);
    let cases = [
        ("a pod of no VPA", Cluster::new(true, Some(Vec::new())).await, AdmissionOutcome::Unchanged),
        (
            "another recommender's VPA",
            Cluster::new(true, Some(vec![vpa("web", "Recreate", &["other"], Some(("750m", "300Mi")))])).await,
            AdmissionOutcome::Unchanged,
        ),
        (
            "no recommendation yet",
            Cluster::new(true, Some(vec![vpa("web", "Recreate", &["heatscaler"], None)])).await,
            AdmissionOutcome::Unchanged,
        ),
        (
            "updateMode: Off",
            Cluster::new(true, Some(vec![vpa("web", "Off", &["heatscaler"], Some(("750m", "300Mi")))])).await,
            AdmissionOutcome::Unchanged,
        ),
        ("the ReplicaSet not seen yet", Cluster::new(false, handled()).await, AdmissionOutcome::WorkloadUnknown),
        ("the VPA objects not listed yet", Cluster::new(true, None).await, AdmissionOutcome::NotSynced),
    ];
    for (what, cluster, outcome) in cases {
        let answer = cluster.answer().await;
        assert_eq!(answer.outcome, outcome, "{what}");
        assert!(answer.response.allowed, "{what}: allowed");
        assert_eq!(answer.response.patch, None, "{what}: no patch");
    }
    // Not a creation, or not a pod: nothing to do.
    let c = Cluster::new(true, handled()).await;
    let mut update = review_json(true);
    update["request"]["operation"] = json!("UPDATE");
    let answer = c.admitter.review(&request(update)).await;
    assert_eq!((answer.outcome, answer.response.allowed), (AdmissionOutcome::Unchanged, true));
    let mut broken = review_json(true);
    broken["request"]["object"]["spec"]["containers"] = json!("not a list");
    let answer = c.admitter.review(&request(broken)).await;
    assert_eq!((answer.outcome, answer.response.allowed), (AdmissionOutcome::Invalid, true));
}

/// A CA and a serving certificate for 127.0.0.1 signed by it (openssl, as
/// the end-to-end harness makes the test API server's webhook certificates).
fn certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=ca"]]
        .concat());
    run(&[&["req"][..], &ec, &["-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
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
    ]);
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn the_https_endpoint_answers_reviews_and_admits_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let c = Cluster::new(true, Some(vec![vpa("web", "Initial", &["heatscaler"], Some(("750m", "300Mi")))])).await;
    let metrics = Arc::new(Metrics::new());
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let served = ServedCertificate::watching(&cert, &key).unwrap();
    let server = WebhookServer::bind(any_port(), served, c.admitter.clone(), metrics.clone()).await.unwrap();
    let url = format!("https://{}/mutate-pods", server.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.crt")).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();

    let response = client.post(&url).json(&review_json(false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let review: Value = response.json().await.unwrap();
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["allowed"], true);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
    assert_eq!(metrics.admission_count(AdmissionOutcome::Patched), 1);

    let garbage = client.post(&url).body("{\"kind\": 3}").send().await.unwrap();
    assert_eq!(garbage.status(), 400, "no request to answer: the failure policy (Ignore) admits the pod");
    let huge = client.post(&url).body(vec![b' '; server::MAX_BODY + 1]).send().await.unwrap();
    assert_eq!(huge.status(), 413);
    assert_eq!(metrics.admission_count(AdmissionOutcome::Invalid), 2);
    assert!(metrics.encode().contains("heatscaler_admission_reviews_total{outcome=\"invalid\"} 2"));
    let _ = stop.send(());
    serving.await.unwrap();
}

#[test]
fn an_unreadable_certificate_fails_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "not a certificate\n").unwrap();
    std::fs::write(dir.path().join("tls.key"), "not a key\n").unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let err = ServedCertificate::watching(&cert, &key).expect_err("refused");
    assert!(err.to_string().contains("cert-file") && err.to_string().contains("tls.crt"), "{err}");
}

/// The generated certificate is one a client trusting only its CA accepts
/// for the address it names (as the API server checks it against the
/// registration's `caBundle`), and one naming another address is refused.
#[tokio::test]
async fn the_generated_certificate_verifies_against_its_ca_for_the_registered_address() {
    use super::certificate::{CertificateStore, ServingName};
    let dir = tempfile::tempdir().unwrap();
    let store = |ip: [u8; 4]| CertificateStore {
        dir: dir.path().join(format!("{ip:?}")),
        names: vec![ServingName::Ip(ip.into())],
        validity: std::time::Duration::from_secs(3600),
        renew_before: std::time::Duration::from_secs(600),
    };
    let c = Cluster::new(true, Some(vec![vpa("web", "Initial", &["heatscaler"], Some(("750m", "300Mi")))])).await;
    for (names, trusted) in [([127, 0, 0, 1], true), ([127, 0, 0, 2], false)] {
        let issued = store(names).current(std::time::SystemTime::now()).unwrap();
        let served = ServedCertificate::held(&issued.cert, &issued.key).unwrap();
        let server =
            WebhookServer::bind(any_port(), served, c.admitter.clone(), Arc::new(Metrics::new())).await.unwrap();
        let url = format!("https://{}/mutate-pods", server.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        let ca = reqwest::Certificate::from_pem(issued.ca_pem.as_bytes()).unwrap();
        let client =
            reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca).build().unwrap();
        let answer = client.post(&url).json(&review_json(false)).send().await;
        assert_eq!(answer.is_ok(), trusted, "certificate for {names:?} at 127.0.0.1: {answer:?}");
        if trusted {
            assert_eq!(answer.unwrap().status(), 200);
        }
        let _ = stop.send(());
        serving.await.unwrap();
    }
}
