//! The change heatscaler's admission webhook makes to a new pod: each
//! container its VPA object recommends gets the recommendation's requests
//! (and proportional limits), as VPA's admission controller does, written as
//! an RFC 6902 JSON patch with an annotation saying what was set.
//!
//! What each container gets is decided by `recommender::admitted`, the
//! function the planner predicts a recreated pod's size with: the webhook and
//! the planner's model cannot disagree. This module only turns that decision
//! into the patch and the annotation. It does no I/O.

use k8s_openapi::api::core::v1 as k8s;
use serde_json::{Value, json};

use crate::observe::convert;
use heatscaler_core::model::{ResourceKind, Resources, VerticalScaling};
use heatscaler_core::recommender::admitted;

/// The annotation heatscaler's webhook writes on every pod it admitted with a
/// recommendation. Its own key, not VPA's `vpaUpdates`: the daemon reads
/// `vpaUpdates` as evidence that *upstream's* admission controller acts on
/// objects heatscaler handles (`vpa::upstream`), and must not take its own
/// pods for that.
pub const ANNOTATION: &str = "heatscaler.io/vpa-updates";
const PREFIX: &str = "Pod resources updated by heatscaler from VPA ";

/// The VPA object named by heatscaler's mark, when the pod has one.
pub fn admitted_by(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<&str> {
    let value = annotations?.get(ANNOTATION)?;
    let rest = value.strip_prefix(PREFIX)?;
    Some(rest.split(':').next().unwrap_or(rest).trim()).filter(|n| !n.is_empty())
}

/// A new pod's change: the JSON patch and the annotation's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub patch: json_patch::Patch,
    /// What was set, as the annotation says it (`container 0: cpu request, …`).
    pub annotation: String,
}

/// The change `vpa` makes to `pod` at creation, or `None` when it makes
/// none: the object is `Off`, has no recommendation yet, or names none of the
/// pod's containers (or only ones whose policy is `Off`). A pod whose
/// containers are already at the recommendation is still marked, so the
/// daemon can tell that the webhook was called for it.
pub fn mutation(pod: &k8s::Pod, vpa: &VerticalScaling) -> Option<Mutation> {
    let spec = pod.spec.as_ref()?;
    let created = convert::template(spec).containers;
    let mut ops: Vec<Value> = Vec::new();
    let mut said: Vec<String> = Vec::new();
    let mut any = false;
    for (i, (container, model)) in spec.containers.iter().zip(&created).enumerate() {
        let Some(applied) = admitted(model, vpa) else { continue };
        any = true;
        let base = format!("/spec/containers/{i}/resources");
        let resources = container.resources.as_ref();
        let mut changes = Vec::new();
        let mut container_ops = Vec::new();
        for (field, old, new, present) in [
            ("requests", &model.requests, &applied.requests, resources.and_then(|r| r.requests.as_ref()).is_some()),
            ("limits", &model.limits, &applied.limits, resources.and_then(|r| r.limits.as_ref()).is_some()),
        ] {
            let changed: Vec<ResourceKind> =
                ResourceKind::ALL.into_iter().filter(|k| k.get(old) != k.get(new) && k.get(new) != 0).collect();
            if changed.is_empty() {
                continue;
            }
            if !present {
                container_ops.push(json!({"op": "add", "path": format!("{base}/{field}"), "value": {}}));
            }
            for kind in changed {
                container_ops.push(json!({
                    "op": "add",
                    "path": format!("{base}/{field}/{}", kind.name()),
                    "value": quantity(kind, new),
                }));
                let what = if field == "requests" { "request" } else { "limit" };
                changes.push(format!("{} {what}", kind.name()));
            }
        }
        if !container_ops.is_empty() && resources.is_none() {
            ops.push(json!({"op": "add", "path": base, "value": {}}));
        }
        ops.extend(container_ops);
        if changes.is_empty() {
            said.push(format!("container {i}: at the recommendation"));
        } else {
            said.push(format!("container {i}: {}", changes.join(", ")));
        }
    }
    if !any {
        return None;
    }
    let annotation = format!("{PREFIX}{}: {}", vpa.name, said.join("; "));
    if pod.metadata.annotations.is_none() {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
    }
    ops.push(json!({
        "op": "add",
        "path": format!("/metadata/annotations/{}", ANNOTATION.replace('~', "~0").replace('/', "~1")),
        "value": annotation,
    }));
    let patch = serde_json::from_value(Value::Array(ops)).expect("the operations are RFC 6902 add operations");
    Some(Mutation { patch, annotation })
}

/// A quantity as the API server writes it (`750m`, `300Mi`).
fn quantity(kind: ResourceKind, r: &Resources) -> String {
    let one = match kind {
        ResourceKind::Cpu => Resources::new(r.cpu_milli, 0),
        ResourceKind::Memory => Resources::new(0, r.memory),
    };
    one.to_quantities().remove(kind.name()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use heatscaler_core::model::{
        ContainerRecommendation, ContainerResourcePolicy, PodResourcePolicy, UpdateMode, WorkloadRef,
    };

    const MI: i64 = 1 << 20;

    /// A ReplicaSet's new pod (`generateName`, no name yet): `app` at 500m /
    /// 256Mi with limits 1 / 512Mi, and a `sidecar` with no resources.
    fn new_pod() -> k8s::Pod {
        serde_json::from_value(json!({
            "metadata": {"generateName": "web-7d9f-", "namespace": "shop",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f",
                                              "uid": "rs-1", "controller": true}]},
            "spec": {"containers": [
                {"name": "app", "image": "app", "resources": {
                    "requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                 "env": [{"name": "PASSWORD", "value": "hunter2"}]},
                {"name": "sidecar", "image": "proxy"}
            ]}
        }))
        .unwrap()
    }

    fn vpa(recommendations: &[(&str, Resources)]) -> VerticalScaling {
        VerticalScaling {
            namespace: "shop".into(),
            name: "web-vpa".into(),
            workload: WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() },
            update_mode: UpdateMode::Initial,
            min_replicas: None,
            resource_policy: PodResourcePolicy::default(),
            eviction_requirements: Vec::new(),
            replicas: None,
            recommendations: recommendations
                .iter()
                .map(|(c, target)| ContainerRecommendation {
                    container_name: (*c).into(),
                    target: target.clone(),
                    lower_bound: target.clone(),
                    upper_bound: target.clone(),
                    uncapped_target: target.clone(),
                    capped: Vec::new(),
                })
                .collect(),
        }
    }

    /// The pod as the API server stores it once the patch is applied.
    fn patched(pod: &k8s::Pod, m: &Mutation) -> k8s::Pod {
        let mut doc = serde_json::to_value(pod).unwrap();
        json_patch::patch(&mut doc, &m.patch).expect("the patch applies");
        serde_json::from_value(doc).unwrap()
    }

    fn resources_of(pod: &k8s::Pod, i: usize) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let r = pod.spec.as_ref().unwrap().containers[i].resources.clone().unwrap_or_default();
        let q = |m: Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()
        };
        (q(r.requests), q(r.limits))
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_recommended_container_gets_its_target_and_proportional_limits_and_the_pod_the_mark() {
        let pod = new_pod();
        let m = mutation(&pod, &vpa(&[("app", Resources::new(750, 300 * MI))])).expect("a mutation");
        let after = patched(&pod, &m);
        let (requests, limits) = resources_of(&after, 0);
        assert_eq!(requests, map(&[("cpu", "750m"), ("memory", "300Mi")]));
        assert_eq!(limits, map(&[("cpu", "1500m"), ("memory", "600Mi")]));
        assert_eq!(resources_of(&after, 1), (BTreeMap::new(), BTreeMap::new()), "sidecar: the VPA does not name it");
        let annotations = after.metadata.annotations.clone();
        assert_eq!(
            annotations.as_ref().and_then(|a| a.get(ANNOTATION)).map(String::as_str),
            Some(
                "Pod resources updated by heatscaler from VPA web-vpa: \
                 container 0: cpu request, memory request, cpu limit, memory limit"
            )
        );
        assert_eq!(admitted_by(annotations.as_ref()), Some("web-vpa"));
        // Never taken for upstream VPA's admission controller.
        assert_eq!(crate::vpa::upstream::mark(annotations.as_ref()), None);
        // Everything else is as created (the env var included: never touched, never copied).
        let mut expected = serde_json::to_value(&pod).unwrap();
        let mut got = serde_json::to_value(&after).unwrap();
        for doc in [&mut expected, &mut got] {
            doc["spec"]["containers"][0]["resources"] = Value::Null;
            doc["metadata"]["annotations"] = Value::Null;
        }
        assert_eq!(got, expected);
        assert!(!m.annotation.contains("hunter2"));
    }

    #[test]
    fn no_recommendation_no_patch() {
        assert_eq!(mutation(&new_pod(), &vpa(&[])), None);
        let mut off = vpa(&[("app", Resources::new(750, 300 * MI))]);
        off.update_mode = UpdateMode::Off;
        assert_eq!(mutation(&new_pod(), &off), None, "updateMode: Off mutates nothing");
        assert_eq!(mutation(&new_pod(), &vpa(&[("other", Resources::new(750, 300 * MI))])), None);
    }

    #[test]
    fn a_container_with_no_resources_gets_them_created() {
        let pod = new_pod();
        let m = mutation(&pod, &vpa(&[("sidecar", Resources::new(100, 64 * MI))])).expect("a mutation");
        let after = patched(&pod, &m);
        assert_eq!(resources_of(&after, 1), (map(&[("cpu", "100m"), ("memory", "64Mi")]), BTreeMap::new()));
        assert_eq!(resources_of(&after, 0).0, map(&[("cpu", "500m"), ("memory", "256Mi")]), "app untouched");
    }

    #[test]
    fn min_and_max_allowed_and_controlled_resources_as_the_object_says_now() {
        let pod = new_pod();
        let mut v = vpa(&[("app", Resources::new(100, 4096 * MI))]);
        v.resource_policy = PodResourcePolicy {
            container_policies: vec![ContainerResourcePolicy {
                container_name: "*".into(),
                min_allowed: Resources::new(200, 0),
                max_allowed: Resources::new(0, 1024 * MI),
                ..Default::default()
            }],
        };
        let after = patched(&pod, &mutation(&pod, &v).unwrap());
        assert_eq!(resources_of(&after, 0).0, map(&[("cpu", "200m"), ("memory", "1Gi")]));
        v.resource_policy.container_policies[0].controlled_resources = Some(vec![ResourceKind::Memory]);
        let after = patched(&pod, &mutation(&pod, &v).unwrap());
        assert_eq!(resources_of(&after, 0).0, map(&[("cpu", "500m"), ("memory", "1Gi")]), "cpu not controlled");
    }

    #[test]
    fn a_pod_already_at_the_recommendation_is_marked_and_nothing_else() {
        let pod = new_pod();
        let m = mutation(&pod, &vpa(&[("app", Resources::new(500, 256 * MI))])).expect("marked");
        let after = patched(&pod, &m);
        assert_eq!(resources_of(&after, 0), resources_of(&pod, 0));
        assert!(m.annotation.ends_with("container 0: at the recommendation"), "{}", m.annotation);
    }
}
