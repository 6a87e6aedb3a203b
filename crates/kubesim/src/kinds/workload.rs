//! Deployments, ReplicaSets and DaemonSets: defaults and selector validation.

use serde_json::{Value, json};

use super::pod::default_pod_spec;
use crate::error::{ApiError, Cause};
use crate::resources::Kind;
use crate::selectors::LabelSelector;

pub fn prepare_create(kind: Kind, obj: &mut Value) {
    apply_defaults(kind, obj);
    obj["metadata"]["generation"] = json!(1);
    obj.as_object_mut().map(|m| m.remove("status"));
}

pub fn apply_defaults(kind: Kind, obj: &mut Value) {
    let spec = &mut obj["spec"];
    if matches!(kind, Kind::Deployment | Kind::ReplicaSet) && spec["replicas"].is_null() {
        spec["replicas"] = json!(1);
    }
    if spec["revisionHistoryLimit"].is_null() && kind != Kind::ReplicaSet {
        spec["revisionHistoryLimit"] = json!(10);
    }
    match kind {
        Kind::Deployment => {
            if spec["strategy"].is_null() {
                spec["strategy"] =
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
            }
            if spec["progressDeadlineSeconds"].is_null() {
                spec["progressDeadlineSeconds"] = json!(600);
            }
        }
        Kind::DaemonSet if spec["updateStrategy"].is_null() => {
            spec["updateStrategy"] =
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}});
        }
        _ => {}
    }
    if !spec["template"]["spec"].is_null() {
        default_pod_spec(&mut spec["template"]["spec"]);
        let mut as_pod = json!({"spec": spec["template"]["spec"].take()});
        super::pod::canonicalize(&mut as_pod);
        spec["template"]["spec"] = as_pod["spec"].take();
    }
}

pub fn validate(kind: Kind, obj: &Value, name: &str) -> Result<(), ApiError> {
    let invalid =
        |field: &str, reason: &str, message: &str| ApiError::invalid(kind, name, &[Cause { reason, message, field }]);
    let spec = &obj["spec"];
    if spec["selector"].is_null() {
        return Err(invalid("spec.selector", "FieldValueRequired", "Required value"));
    }
    let selector = LabelSelector::from_json(&spec["selector"], LabelSelector::nothing())
        .map_err(|e| invalid("spec.selector", "FieldValueInvalid", &e))?;
    if selector.is_everything() {
        return Err(invalid(
            "spec.selector",
            "FieldValueInvalid",
            "Invalid value: \"{}\": empty selector is invalid for deployment",
        ));
    }
    if !selector.matches_labels(&spec["template"]["metadata"]["labels"]) {
        return Err(invalid(
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            "Invalid value: map[string]string{...}: `selector` does not match template `labels`",
        ));
    }
    if spec["template"]["spec"]["containers"].as_array().is_none_or(|c| c.is_empty()) {
        return Err(invalid("spec.template.spec.containers", "FieldValueRequired", "Required value"));
    }
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err(invalid("spec.replicas", "FieldValueInvalid", "Invalid value: must be greater than or equal to 0"));
    }
    Ok(())
}
