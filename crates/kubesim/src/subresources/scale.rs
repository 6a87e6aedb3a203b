//! {deployments,replicasets}/scale: the autoscaling/v1 Scale view of `spec.replicas`.

use http::Method;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::kinds::Sub;
use crate::patch::{self, PatchType};
use crate::resources::Kind;
use crate::selectors::LabelSelector;
use crate::sim::Sim;
use crate::store::ObjKey;

fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(s) = LabelSelector::from_json(selector, LabelSelector::nothing()) {
        for r in s.requirements {
            let values: Vec<String> = r.values.into_iter().collect();
            parts.push(match r.op {
                crate::selectors::Op::Equals => format!("{}={}", r.key, values.join("")),
                crate::selectors::Op::In => format!("{} in ({})", r.key, values.join(",")),
                crate::selectors::Op::NotIn => format!("{} notin ({})", r.key, values.join(",")),
                crate::selectors::Op::Exists => r.key,
                _ => format!("!{}", r.key),
            });
        }
    }
    parts.join(",")
}

pub fn to_scale(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&obj["spec"]["selector"]),
        },
    })
}

#[allow(clippy::too_many_arguments)]
pub fn handle(
    sim: &Sim,
    kind: Kind,
    key: &ObjKey,
    method: &Method,
    body: Option<Value>,
    patch_type: Option<PatchType>,
    raw: &[u8],
    dry_run: bool,
) -> Result<Value, ApiError> {
    if !matches!(kind, Kind::Deployment | Kind::ReplicaSet) {
        return Err(ApiError::method_not_allowed());
    }
    let updated = match *method {
        Method::GET => return Ok(to_scale(&sim.registry.get(kind, key)?.value())),
        Method::PUT => {
            let scale = body.unwrap_or_default();
            sim.registry
                .update_with(kind, key, Sub::Main, dry_run, |current| apply_scale(kind, key, current, &scale))?
        }
        Method::PATCH => {
            let patch_type = patch_type.ok_or_else(|| ApiError::unsupported_media_type(""))?;
            sim.registry.update_with(kind, key, Sub::Main, dry_run, |current| {
                let scale = patch::apply_schemaless(&to_scale(current), patch_type, raw)?;
                apply_scale(kind, key, current, &scale)
            })?
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(to_scale(&updated.value()))
}

fn apply_scale(kind: Kind, key: &ObjKey, current: &Value, scale: &Value) -> Result<Value, ApiError> {
    if let Some(rv) = scale["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != current["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::stale(kind, &key.name));
    }
    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            kind,
            &key.name,
            &[crate::error::Cause {
                reason: "FieldValueInvalid",
                message: "Invalid value: must be greater than or equal to 0",
                field: "spec.replicas",
            }],
        ));
    }
    let mut next = current.clone();
    next["spec"]["replicas"] = json!(replicas);
    Ok(next)
}
