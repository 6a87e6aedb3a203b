//! VPA objects as users write them, the model they become, the status
//! written back, the CRD shipped for clusters without VPA, and resize
//! conditions read back from pods.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::api::condition::*;
use super::api::{Condition, VerticalPodAutoscaler};
use super::*;
use heatscaler_core::model::{ChangeRequirement, ResizeState, Resources, UpdateMode, WorkloadRef};
use heatscaler_core::model::{ContainerRecommendation, ContainerScalingMode, ControlledValues, ResourceKind};

const MI: i64 = 1 << 20;

/// A manifest as written for VPA, with a field a newer VPA added.
const MANIFEST: &str = r#"
apiVersion: autoscaling.k8s.io/v1
kind: VerticalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  recommenders: [{name: heatscaler}]
  updatePolicy:
    updateMode: InPlaceOrRecreate
    minReplicas: 3
    evictionRequirements:
      - {resources: [cpu, memory], changeRequirement: TargetHigherThanRequests}
  resourcePolicy:
    containerPolicies:
      - containerName: '*'
        minAllowed: {cpu: 50m, memory: 64Mi}
        maxAllowed: {cpu: "2", memory: 4Gi}
        controlledValues: RequestsOnly
      - containerName: istio-proxy
        mode: "Off"
      - containerName: app
        controlledResources: [memory]
  startupBoost: {cpu: {type: Factor, factor: 2}}
"#;

fn manifest() -> VerticalPodAutoscaler {
    heatscaler_core::yaml::from_str(MANIFEST).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn a_vpa_manifest_becomes_the_planner_model() {
    let m = to_model(&manifest(), Some(4)).unwrap();
    assert_eq!((m.namespace.as_str(), m.name.as_str()), ("shop", "web"));
    assert_eq!(m.workload, WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() });
    assert_eq!(m.update_mode, UpdateMode::InPlaceOrRecreate);
    assert_eq!((m.min_replicas, m.replicas), (Some(3), Some(4)));
    assert_eq!(m.eviction_requirements[0].resources, vec![ResourceKind::Cpu, ResourceKind::Memory]);
    assert_eq!(m.eviction_requirements[0].change, ChangeRequirement::TargetHigherThanRequests);
    let all = m.resource_policy.for_container("sidecar").unwrap();
    assert_eq!(all.min_allowed, Resources::new(50, 64 * MI));
    assert_eq!(all.max_allowed, Resources::new(2000, 4096 * MI));
    assert_eq!(all.controlled_values, ControlledValues::RequestsOnly);
    assert_eq!(m.resource_policy.for_container("istio-proxy").unwrap().mode, ContainerScalingMode::Off);
    assert_eq!(m.resource_policy.for_container("app").unwrap().controlled_resources, Some(vec![ResourceKind::Memory]));
    assert!(m.recommendations.is_empty());
}

#[test]
fn update_modes_and_the_deprecated_auto() {
    let mode = |text: Option<&str>| {
        let mut v = manifest();
        v.spec.update_policy.as_mut().unwrap().update_mode = text.map(|t| serde_json::from_value(json!(t)).unwrap());
        to_model(&v, None).map(|m| m.update_mode)
    };
    assert_eq!(mode(None), Ok(UpdateMode::Recreate), "VPA's default");
    assert_eq!(mode(Some("Auto")), Ok(UpdateMode::Recreate), "Auto is deprecated and means Recreate");
    assert_eq!(mode(Some("Off")), Ok(UpdateMode::Off));
    assert_eq!(mode(Some("Initial")), Ok(UpdateMode::Initial));
    assert_eq!(mode(Some("InPlace")), Ok(UpdateMode::InPlace));
    let err = mode(Some("Sometimes")).unwrap_err();
    assert!(err.0.starts_with("spec.updatePolicy.updateMode"), "{err}");
}

#[test]
fn ownership_follows_the_recommenders_list() {
    let mut v = manifest();
    assert!(handled_by(&v, "heatscaler", false));
    assert!(!handled_by(&v, "other", true), "named for another recommender");
    v.spec.recommenders.clear();
    assert!(!handled_by(&v, "heatscaler", false), "unnamed ones belong to VPA's default recommender");
    assert!(handled_by(&v, "heatscaler", true), "unless claim-unnamed-vpas");
    v.spec.recommenders = vec![api::RecommenderSelector { name: "default".into() }];
    assert!(!handled_by(&v, "heatscaler", true), "explicitly VPA's");
}

/// Every upstream field heatscaler does not honour, set on an object, is
/// named (with what applies instead) in the `UnsupportedFields` condition,
/// while the object is still recommended for; gone when the fields are.
#[test]
fn fields_heatscaler_does_not_honour_are_reported_in_a_condition() {
    let mut v = manifest();
    v.spec.update_policy.as_mut().unwrap().evict_after_oom_seconds = Some(60);
    let app = &mut v.spec.resource_policy.as_mut().unwrap().container_policies[2];
    app.oom_bump_up_ratio = Some(json!("1.5"));
    app.oom_min_bump_up = Some(json!(104857600));
    app.memory_aggregation_interval_seconds = Some(3600);
    app.memory_aggregation_interval_count = Some(24);
    app.startup_boost = Some(json!({"cpu": {"type": "Quantity", "quantity": "2"}}));
    // Read from YAML as a user writes it, and written back unchanged.
    let text = serde_json::to_string(&v).unwrap();
    let v: VerticalPodAutoscaler = heatscaler_core::yaml::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), text, "nothing the user wrote is dropped");

    let fields = unsupported_fields(&v);
    let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.updatePolicy.evictAfterOOMSeconds",
            "spec.startupBoost",
            "spec.resourcePolicy.containerPolicies[2].oomBumpUpRatio",
            "spec.resourcePolicy.containerPolicies[2].oomMinBumpUp",
            "spec.resourcePolicy.containerPolicies[2].memoryAggregationIntervalSeconds",
            "spec.resourcePolicy.containerPolicies[2].memoryAggregationIntervalCount",
            "spec.resourcePolicy.containerPolicies[2].startupBoost",
        ]
    );
    assert!(to_model(&v, None).is_ok(), "still acted on");

    let recs = [recommendation(250)];
    let update = StatusUpdate {
        recommendations: &recs,
        pods_matched: true,
        unsupported: None,
        generation: Some(1),
        unsupported_fields: &fields,
        upstream: &[],
    };
    let s = next_status(None, &update, t("2026-01-01T00:00:00Z"));
    let c = condition(&s, UNSUPPORTED_FIELDS).expect("reported");
    assert_eq!((c.status.as_str(), c.reason.as_deref()), ("True", Some("NotHonoured")));
    let message = c.message.as_deref().unwrap();
    for path in paths {
        assert!(message.contains(path), "{path} not in {message}");
    }
    assert!(message.contains("pod-resize.recommender.oom-bump-up-ratio"), "{message}");
    assert!(s.recommendation.is_some() && condition(&s, CONFIG_UNSUPPORTED).is_none());

    let fine = StatusUpdate { unsupported_fields: &[], ..update };
    assert!(condition(&next_status(Some(&s), &fine, t("2026-01-01T00:01:00Z")), UNSUPPORTED_FIELDS).is_none());
    let mut plain = manifest();
    plain.spec.startup_boost = None;
    assert_eq!(unsupported_fields(&plain), vec![]);
}

/// The traces upstream VPA's admission controller and updater leave on pods
/// (annotation values as VPA 1.8.1 writes them), and the condition they lead to.
#[test]
fn upstream_vpa_traces_on_pods_are_read_and_reported() {
    use super::upstream::{UpstreamComponent, UpstreamMark, UpstreamSighting, mark};
    let annotations = |pairs: &[(&str, &str)]| {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>()
    };
    let admitted =
        annotations(&[("vpaUpdates", "Pod resources updated by web: container 0: cpu request, memory request")]);
    assert_eq!(mark(Some(&admitted)), Some(UpstreamMark { admitted_by: Some("web".into()), updated_in_place: false }));
    let resized = annotations(&[("vpaInPlaceUpdated", "true"), ("vpaObservedContainers", "app")]);
    assert_eq!(mark(Some(&resized)), Some(UpstreamMark { admitted_by: None, updated_in_place: true }));
    assert_eq!(mark(Some(&annotations(&[("vpaObservedContainers", "app")]))), None, "observed is not acted");
    assert_eq!(mark(Some(&annotations(&[("vpaUpdates", "something else")]))), None);
    assert_eq!(mark(None), None);

    let seen =
        [UpstreamSighting { component: UpstreamComponent::Updater, namespace: "shop".into(), pod: "web-1".into() }];
    let recs = [recommendation(250)];
    let update = StatusUpdate {
        recommendations: &recs,
        pods_matched: true,
        unsupported: None,
        generation: Some(1),
        unsupported_fields: &[],
        upstream: &seen,
    };
    let s = next_status(None, &update, t("2026-01-01T00:00:00Z"));
    let c = condition(&s, UPSTREAM_VPA_ACTIVE).expect("reported");
    assert_eq!(c.status, "True");
    assert!(c.message.as_deref().unwrap().contains("VPA's updater resized pod shop/web-1"), "{c:?}");
    let quiet = StatusUpdate { upstream: &[], ..update };
    assert!(condition(&next_status(Some(&s), &quiet, t("2026-01-01T00:01:00Z")), UPSTREAM_VPA_ACTIVE).is_none());
}

#[test]
fn unsupported_objects_name_the_field() {
    let problem = |edit: &dyn Fn(&mut VerticalPodAutoscaler)| {
        let mut v = manifest();
        edit(&mut v);
        to_model(&v, None).unwrap_err().0
    };
    assert!(problem(&|v| v.spec.target_ref = None).starts_with("Cannot read targetRef"));
    assert!(problem(&|v| v.spec.target_ref.as_mut().unwrap().kind = "Rollout".into()).contains("not Rollout"));
    assert_eq!(
        problem(&|v| v.spec.update_policy.as_mut().unwrap().min_replicas = Some(0)),
        "spec.updatePolicy.minReplicas: must be positive, not 0"
    );
    let bad_quantity = problem(&|v| {
        let p = &mut v.spec.resource_policy.as_mut().unwrap().container_policies[0];
        p.min_allowed
            .as_mut()
            .unwrap()
            .insert("cpu".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("lots".into()));
    });
    assert!(bad_quantity.starts_with("spec.resourcePolicy.containerPolicies[0].minAllowed.cpu:"), "{bad_quantity}");
    assert!(
        problem(&|v| v.spec.resource_policy.as_mut().unwrap().container_policies[1].mode = Some("Sometimes".into()))
            .starts_with("spec.resourcePolicy.containerPolicies[1].mode")
    );
    // An unknown updateMode from a newer VPA reads as Unknown, not as a parse error.
    let mut raw: Value = serde_json::to_value(manifest()).unwrap();
    raw["spec"]["updatePolicy"]["updateMode"] = json!("Predictive");
    let v: VerticalPodAutoscaler = serde_json::from_value(raw).unwrap();
    assert!(to_model(&v, None).is_err());
}

fn recommendation(cpu: i64) -> ContainerRecommendation {
    ContainerRecommendation {
        container_name: "app".into(),
        target: Resources::new(cpu, 300 * MI),
        lower_bound: Resources::new(cpu / 2, 200 * MI),
        upper_bound: Resources::new(cpu * 2, 600 * MI),
        uncapped_target: Resources::new(cpu, 300 * MI),
        capped: vec![],
    }
}

fn condition<'a>(status: &'a api::VerticalPodAutoscalerStatus, kind: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == kind)
}

#[test]
fn status_carries_the_recommendation_and_conditions_as_vpa_writes_them() {
    let recs = [recommendation(250)];
    let update = StatusUpdate {
        recommendations: &recs,
        pods_matched: true,
        unsupported: None,
        generation: Some(1),
        unsupported_fields: &[],
        upstream: &[],
    };
    let t1 = t("2026-01-01T00:00:00Z");
    let patch = status_patch(None, &update, t1).unwrap();
    assert_eq!(
        patch["status"]["recommendation"],
        json!({"containerRecommendations": [{
            "containerName": "app",
            "target": {"cpu": "250m", "memory": "300Mi"},
            "lowerBound": {"cpu": "125m", "memory": "200Mi"},
            "upperBound": {"cpu": "500m", "memory": "600Mi"},
            "uncappedTarget": {"cpu": "250m", "memory": "300Mi"},
        }]})
    );
    assert_eq!(
        patch["status"]["conditions"],
        json!([{"type": "RecommendationProvided", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1}])
    );
    assert_eq!(patch["status"]["observedGeneration"], 1);

    // Written back unchanged: nothing to do.
    let written = next_status(None, &update, t1);
    assert_eq!(status_patch(Some(&written), &update, t("2026-01-01T00:05:00Z")), None);

    // A new recommendation: patched, and the condition keeps its transition time.
    let recs2 = [recommendation(400)];
    let update2 = StatusUpdate { recommendations: &recs2, ..update };
    let next = next_status(Some(&written), &update2, t("2026-01-01T00:10:00Z"));
    assert_eq!(condition(&next, RECOMMENDATION_PROVIDED).unwrap().last_transition_time.as_ref().unwrap().0, t1);
    assert!(status_patch(Some(&written), &update2, t("2026-01-01T00:10:00Z")).is_some());
}

/// `status.observedGeneration` and each condition heatscaler sets follow
/// `metadata.generation`: a spec change alone is written back, transition
/// times kept; a condition of another writer keeps its own generation.
#[test]
fn status_and_conditions_carry_the_observed_generation() {
    let recs = [recommendation(250)];
    let t1 = t("2026-01-01T00:00:00Z");
    let mut written = next_status(
        None,
        &StatusUpdate {
            recommendations: &recs,
            pods_matched: true,
            unsupported: None,
            generation: Some(3),
            unsupported_fields: &[],
            upstream: &[],
        },
        t1,
    );
    assert_eq!(written.observed_generation, Some(3));
    assert_eq!(condition(&written, RECOMMENDATION_PROVIDED).unwrap().observed_generation, Some(3));
    written.conditions.push(Condition {
        type_: LOW_CONFIDENCE.into(),
        status: "True".into(),
        observed_generation: Some(1),
        ..Default::default()
    });

    let respec = StatusUpdate {
        recommendations: &recs,
        pods_matched: true,
        unsupported: None,
        generation: Some(4),
        unsupported_fields: &[],
        upstream: &[],
    };
    let patch = status_patch(Some(&written), &respec, t("2026-01-01T00:05:00Z")).expect("a new generation is written");
    assert_eq!(patch["status"]["observedGeneration"], 4);
    let next = next_status(Some(&written), &respec, t("2026-01-01T00:05:00Z"));
    let provided = condition(&next, RECOMMENDATION_PROVIDED).unwrap();
    assert_eq!((provided.observed_generation, provided.last_transition_time.as_ref().unwrap().0), (Some(4), t1));
    assert_eq!(condition(&next, LOW_CONFIDENCE).unwrap().observed_generation, Some(1), "not ours to restamp");
    assert_eq!(status_patch(Some(&next), &respec, t("2026-01-01T00:10:00Z")), None);
}

#[test]
fn no_pods_unsupported_and_foreign_conditions() {
    let mut current = api::VerticalPodAutoscalerStatus {
        recommendation: None,
        conditions: vec![
            Condition { type_: LOW_CONFIDENCE.into(), status: "True".into(), ..Default::default() },
            Condition { type_: CONFIG_DEPRECATED.into(), status: "True".into(), ..Default::default() },
        ],
        ..Default::default()
    };
    let now = t("2026-01-01T00:00:00Z");
    let none = StatusUpdate {
        recommendations: &[],
        pods_matched: false,
        unsupported: None,
        generation: Some(1),
        unsupported_fields: &[],
        upstream: &[],
    };
    let s = next_status(Some(&current), &none, now);
    let no_pods = condition(&s, NO_PODS_MATCHED).unwrap();
    assert_eq!((no_pods.status.as_str(), no_pods.reason.as_deref()), ("True", Some("NoPodsMatched")));
    assert_eq!(no_pods.message.as_deref(), Some("No pods match this VPA object"));
    let provided = condition(&s, RECOMMENDATION_PROVIDED).unwrap();
    assert_eq!((provided.status.as_str(), provided.reason.as_deref()), ("False", Some("NoPodsMatched")));
    assert!(condition(&s, LOW_CONFIDENCE).is_some(), "left alone, as VPA does");
    assert!(condition(&s, CONFIG_DEPRECATED).is_none(), "removed, as VPA does");

    current = s;
    let recs = [recommendation(250)];
    let problem = ConfigUnsupported("spec.targetRef.kind: not Rollout".into());
    let broken = StatusUpdate {
        recommendations: &recs,
        pods_matched: true,
        unsupported: Some(&problem),
        generation: Some(1),
        unsupported_fields: &[],
        upstream: &[],
    };
    let s = next_status(Some(&current), &broken, now);
    assert_eq!(condition(&s, CONFIG_UNSUPPORTED).unwrap().message.as_deref(), Some(problem.0.as_str()));
    assert!(s.recommendation.is_none(), "nothing is recommended for an unsupported object");
    let patch = status_patch(Some(&current), &broken, now).unwrap();
    assert_eq!(patch["status"]["recommendation"], Value::Null, "merge patch removes a stale one");

    let fixed = StatusUpdate { unsupported: None, ..broken };
    let s = next_status(Some(&s), &fixed, now);
    assert!(condition(&s, CONFIG_UNSUPPORTED).is_none() && condition(&s, NO_PODS_MATCHED).is_none());
    assert_eq!(condition(&s, RECOMMENDATION_PROVIDED).unwrap().status, "True");
}

/// Every field our types write must be declared in the CRD schema we ship,
/// else the API server would prune it.
#[test]
fn the_crd_declares_every_field_heatscaler_writes() {
    let crd =
        heatscaler_core::yaml::parse_value(include_str!("../../../../config/crd/verticalpodautoscaler.yaml")).unwrap();
    assert_eq!(crd["spec"]["names"]["plural"], api::PLURAL);
    assert_eq!(crd["spec"]["group"], api::GROUP);
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], api::VERSION);
    assert!(version["subresources"]["status"].is_object());
    let schema = &version["schema"]["openAPIV3Schema"];

    let mut full = manifest();
    let recs = [recommendation(250)];
    full.status = Some(next_status(
        None,
        &StatusUpdate {
            recommendations: &recs,
            pods_matched: true,
            unsupported: None,
            generation: Some(1),
            unsupported_fields: &[],
            upstream: &[],
        },
        t("2026-01-01T00:00:00Z"),
    ));
    let object = serde_json::to_value(&full).unwrap();
    let mut undeclared = Vec::new();
    check_declared(&object, schema, "", &mut undeclared);
    assert_eq!(undeclared, Vec::<String>::new());
    // And the check itself catches an undeclared field.
    let mut extra = object.clone();
    extra["spec"]["notAVpaField"] = json!({"cpu": {}});
    let mut found = Vec::new();
    check_declared(&extra, schema, "", &mut found);
    assert_eq!(found, vec![".spec.notAVpaField".to_string()]);
}

/// The VPA CRD we ship keeps every property of upstream's v1 schema (VPA's
/// release pinned in tools/vpa-replay/go.mod, its `deploy/vpa-v1-crd-gen.yaml`
/// read from the Go module cache), with the same type, format, enum, bounds
/// and required lists: a property missing here would be pruned by the API
/// server, silently dropping what the user wrote.
#[test]
fn the_crd_keeps_every_field_of_upstreams_v1_schema() {
    let ours =
        heatscaler_core::yaml::parse_value(include_str!("../../../../config/crd/verticalpodautoscaler.yaml")).unwrap();
    let upstream = upstream_vpa_crd();
    let (ours, upstream) = (v1_schema(&ours), v1_schema(&upstream));
    let (mut ours_shape, mut upstream_shape) = (Vec::new(), Vec::new());
    schema_shape(ours, "", &mut ours_shape);
    schema_shape(upstream, "", &mut upstream_shape);
    let missing: Vec<&String> = upstream_shape.iter().filter(|p| !ours_shape.contains(p)).collect();
    assert!(missing.is_empty(), "upstream's VPA v1 schema has, and ours lacks or declares differently:\n{missing:#?}");
    // The comparison saw upstream's whole schema, the fields the issue names included.
    for path in
        [".spec.updatePolicy.evictAfterOOMSeconds", ".spec.startupBoost.cpu.factor", ".status.observedGeneration"]
    {
        assert!(upstream_shape.iter().any(|s| s.starts_with(&format!("{path}: "))), "upstream lacks {path}?");
    }
}

/// `deploy/vpa-v1-crd-gen.yaml` of the VPA module tools/vpa-replay pins,
/// through `go mod download` (the module cache when it is there, else the Go
/// proxy): the CRD is upstream's, not a copy kept here that could drift.
fn upstream_vpa_crd() -> Value {
    const MODULE: &str = "k8s.io/autoscaler/vertical-pod-autoscaler";
    let replay = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/vpa-replay");
    let go_mod = std::fs::read_to_string(replay.join("go.mod")).unwrap();
    let version = go_mod
        .lines()
        .filter_map(|l| l.trim().strip_prefix(MODULE))
        .find_map(|rest| rest.split_whitespace().next())
        .expect("tools/vpa-replay/go.mod requires the VPA module");
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json", &format!("{MODULE}@{version}")])
        .current_dir(&replay)
        .output()
        .unwrap_or_else(|e| panic!("`go mod download {MODULE}@{version}` could not run (Go is needed; tests/install-deps.sh installs it): {e}"));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("`go mod download` answered no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr))
    });
    let dir = info["Dir"].as_str().unwrap_or_else(|| panic!("`go mod download` gave no module directory: {info}"));
    let path = std::path::Path::new(dir).join("deploy/vpa-v1-crd-gen.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split("\n---\n")
        .map(|doc| heatscaler_core::yaml::parse_value(doc).unwrap())
        .find(|doc| doc["metadata"]["name"] == "verticalpodautoscalers.autoscaling.k8s.io")
        .unwrap_or_else(|| panic!("{} has no VerticalPodAutoscaler CRD", path.display()))
}

fn v1_schema(crd: &Value) -> &Value {
    let versions = crd["spec"]["versions"].as_array().unwrap();
    let v1 = versions.iter().find(|v| v["name"] == "v1").expect("a v1 version");
    &v1["schema"]["openAPIV3Schema"]
}

/// One line per schema node: its property path and what constrains its
/// values (descriptions aside, which are ours to word).
fn schema_shape(schema: &Value, path: &str, out: &mut Vec<String>) {
    let mut required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    required.sort_unstable();
    out.push(format!(
        "{path}: type={} format={} enum={} minimum={} required={required:?} int-or-string={} map-type={}",
        schema["type"],
        schema["format"],
        schema["enum"],
        schema["minimum"],
        schema["x-kubernetes-int-or-string"],
        schema["x-kubernetes-map-type"],
    ));
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            schema_shape(property, &format!("{path}.{name}"), out);
        }
    }
    if schema["items"].is_object() {
        schema_shape(&schema["items"], &format!("{path}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        schema_shape(&schema["additionalProperties"], &format!("{path}{{}}"), out);
    }
}

/// The same for the checkpoint CRD, with a checkpoint of real history.
#[test]
fn the_checkpoint_crd_declares_every_field_heatscaler_writes() {
    let crd =
        heatscaler_core::yaml::parse_value(include_str!("../../../../config/crd/verticalpodautoscalercheckpoint.yaml"))
            .unwrap();
    assert_eq!(crd["spec"]["names"]["plural"], checkpoint::PLURAL);
    assert_eq!(crd["spec"]["names"]["kind"], checkpoint::KIND);
    assert_eq!(crd["spec"]["group"], api::GROUP);
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], api::VERSION);
    assert!(version["subresources"].is_null(), "VPA's checkpoint CRD has no status subresource");
    let schema = &version["schema"]["openAPIV3Schema"];

    let mut vpa = manifest();
    vpa.metadata.uid = Some("vpa-uid".into());
    let m = to_model(&vpa, None).unwrap();
    let mut rec = heatscaler_core::recommender::Recommender::from_config(&Default::default());
    let pod = heatscaler_core::model::PodKey { namespace: "shop".into(), name: "web-0".into() };
    let start = t("2026-01-01T00:00:00Z");
    for minute in 0..30 {
        let at = start + jiff::SignedDuration::from_mins(minute);
        rec.add_cpu_sample(&m.workload, &pod, "app", at, 0.2, 250).unwrap();
        rec.add_memory_sample(&m.workload, &pod, "app", at, 300 << 20).unwrap();
    }
    let saved: Vec<_> = rec.checkpoints_of(&m.workload, start + jiff::SignedDuration::from_hours(1)).collect();
    assert_eq!(saved.len(), 1);
    let object = VerticalPodAutoscalerCheckpoint::new(&vpa, "app", saved[0].status.clone());
    assert_eq!(object.metadata.name.as_deref(), Some("web-app"));
    assert_eq!(object.metadata.owner_references.as_ref().unwrap()[0].uid, "vpa-uid");
    let value = serde_json::to_value(&object).unwrap();
    assert!(!value["status"]["cpuHistogram"]["bucketWeights"].as_object().unwrap().is_empty(), "{value}");
    let mut undeclared = Vec::new();
    check_declared(&value, schema, "", &mut undeclared);
    assert_eq!(undeclared, Vec::<String>::new());
}

fn check_declared(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) if path == ".metadata" => {
            let _ = map; // ObjectMeta is the API server's, not the CRD's.
        }
        Value::Object(_) if schema["x-kubernetes-preserve-unknown-fields"] == true => {}
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{path}.{k}");
                if let Some(s) = schema["properties"].get(k) {
                    check_declared(v, s, &p, out);
                } else if schema["additionalProperties"].is_object() {
                    check_declared(v, &schema["additionalProperties"], &p, out);
                } else {
                    out.push(p);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_declared(v, &schema["items"], &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn pod_with(conditions: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1"},
        "status": {
            "conditions": conditions,
            "containerStatuses": [{
                "name": "app", "image": "app", "imageID": "", "ready": true, "restartCount": 0,
                "resources": {"requests": {"cpu": "250m", "memory": "300Mi"}},
            }],
        },
    }))
    .unwrap()
}

#[test]
fn resize_conditions_read_back_into_the_model() {
    let seen = t("2026-01-01T00:10:00Z");
    let at = "2026-01-01T00:00:00Z";
    let state = |conditions: Value| resize_state(&pod_with(conditions), seen);
    assert_eq!(state(json!([{"type": "Ready", "status": "True"}])), ResizeState::None);
    assert_eq!(
        state(json!([{"type": "PodResizePending", "status": "True", "reason": "Infeasible",
                      "message": "Node didn't have enough capacity", "lastTransitionTime": at}])),
        ResizeState::Infeasible { since: t(at), message: "Node didn't have enough capacity".into() }
    );
    assert_eq!(
        state(json!([{"type": "PodResizePending", "status": "True", "reason": "Deferred", "message": "later"}])),
        ResizeState::Deferred { since: seen, message: "later".into() },
        "no transition time: when we saw it"
    );
    assert_eq!(
        state(json!([{"type": "PodResizeInProgress", "status": "True", "lastTransitionTime": at}])),
        ResizeState::InProgress { since: t(at) }
    );
    assert_eq!(
        state(json!([{"type": "PodResizeInProgress", "status": "True", "reason": "Error", "message": "oom",
                      "lastTransitionTime": at}])),
        ResizeState::Error { since: t(at), message: "oom".into() }
    );
    assert!(
        matches!(
            state(json!([
                {"type": "PodResizeInProgress", "status": "True"},
                {"type": "PodResizePending", "status": "True", "reason": "Deferred"},
            ])),
            ResizeState::Deferred { .. }
        ),
        "a new pending request wins over the one in progress"
    );
    let pod = pod_with(json!([]));
    let statuses = pod.status.unwrap().container_statuses.unwrap();
    assert_eq!(allocated_requests(&statuses[0]), Some(Resources::new(250, 300 * MI)));
}

#[test]
fn a_resize_patch_keeps_other_resources_and_unset_limits() {
    use heatscaler_core::planner::action::ContainerResize;
    use heatscaler_core::planner::explain::CpuMemory;
    let r = ContainerResize {
        container: "app".into(),
        from: CpuMemory { cpu_milli: 250, memory: 300 * MI },
        requests: CpuMemory { cpu_milli: 500, memory: 512 * MI },
        limits: CpuMemory { cpu_milli: 0, memory: 1024 * MI },
    };
    let current = json!({"requests": {"cpu": "250m", "memory": "300Mi", "ephemeral-storage": "1Gi"},
                         "limits": {"cpu": "1", "memory": "600Mi"}});
    assert_eq!(
        client::resized(&current, &r),
        json!({"requests": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
               "limits": {"cpu": "1", "memory": "1Gi"}})
    );
    // Already asked for, written differently: compares equal once normalised.
    let same = json!({"requests": {"cpu": "0.5", "memory": "536870912"}, "limits": {"memory": "1Gi"}});
    assert_eq!(
        client::resized(&same, &r),
        json!({"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}})
    );
    assert_eq!(client::resized(&Value::Null, &r)["requests"]["cpu"], "500m", "a container without resources");
}

#[test]
fn watch_events_keep_the_handled_objects() {
    use kube::runtime::watcher::Event;
    let named = |ns: &str, name: &str, recommender: Option<&str>| {
        let mut v = manifest();
        v.metadata.namespace = Some(ns.into());
        v.metadata.name = Some(name.into());
        v.spec.recommenders =
            recommender.map(|r| vec![api::RecommenderSelector { name: r.into() }]).unwrap_or_default();
        v
    };
    let mut objects = client::VpaObjects::default();
    objects.apply(Event::Init);
    objects.apply(Event::InitApply(named("a", "ours", Some("heatscaler"))));
    objects.apply(Event::InitApply(named("a", "vpas", None)));
    assert!(objects.is_empty(), "a relist shows once complete");
    objects.apply(Event::InitDone);
    assert_eq!(objects.len(), 2);
    let mut broken = named("b", "broken", Some("heatscaler"));
    broken.spec.target_ref = None;
    objects.apply(Event::Apply(broken));

    let handled = objects.handled("heatscaler", false, |w| (w.name == "web").then_some(5));
    let names: Vec<_> = handled.iter().map(|h| h.object.key()).collect();
    assert_eq!(names, ["a/ours", "b/broken"]);
    assert_eq!(handled[0].model.as_ref().unwrap().replicas, Some(5));
    assert!(handled[1].model.as_ref().unwrap_err().0.starts_with("Cannot read targetRef"));
    assert_eq!(objects.handled("heatscaler", true, |_| None).len(), 3, "claiming unnamed ones too");

    objects.apply(Event::Delete(named("a", "ours", Some("heatscaler"))));
    // A relist without `b/broken` drops it (deleted while the watch was down).
    objects.apply(Event::Init);
    objects.apply(Event::InitApply(named("a", "vpas", None)));
    objects.apply(Event::InitDone);
    assert_eq!(objects.len(), 1);
    assert!(objects.get("a", "vpas").is_some());
}
