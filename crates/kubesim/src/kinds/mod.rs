//! Per-kind API semantics: defaulting on create, which parts of an object a
//! write may change (spec vs status subresource), validation, generation
//! tracking, and the field selectors each kind supports.

pub mod event;
mod pod;
mod workload;

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::quantity;
use crate::resources::{Kind, View};
use crate::store::Obj;

pub use pod::pod_requests_from_spec;

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
    /// pods/resize: container resources only.
    Resize,
    /// namespaces/finalize: spec.finalizers only.
    Finalize,
}

/// Defaults the API server applies on every write (decoding defaults the
/// object), so stored objects are always fully defaulted.
pub fn apply_defaults(kind: Kind, obj: &mut Value) {
    match kind {
        Kind::Pod => pod::apply_defaults(obj),
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet => workload::apply_defaults(kind, obj),
        _ => {}
    }
}

/// Defaults and resets applied to an object being created.
pub fn prepare_create(kind: Kind, obj: &mut Value) {
    if kind.tracks_generation() {
        obj["metadata"]["generation"] = json!(1);
    }
    match kind {
        Kind::Pod => pod::prepare_create(obj),
        Kind::Node => {
            if obj["status"]["allocatable"].is_null() && !obj["status"]["capacity"].is_null() {
                obj["status"]["allocatable"] = obj["status"]["capacity"].clone();
            }
            for field in ["capacity", "allocatable"] {
                quantity::canonicalize_map(&mut obj["status"][field]);
            }
        }
        Kind::Namespace => {
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet => workload::prepare_create(kind, obj),
        Kind::PodDisruptionBudget | Kind::VerticalPodAutoscaler => {
            obj.as_object_mut().map(|m| m.remove("status"));
        }
        Kind::Event | Kind::Lease | Kind::VerticalPodAutoscalerCheckpoint => {}
    }
}

pub fn validate_create(kind: Kind, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    match kind {
        Kind::Pod => pod::validate(obj, name),
        Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet => workload::validate(kind, obj, name),
        Kind::PodDisruptionBudget => validate_pdb(obj, name),
        Kind::Event => {
            if obj["involvedObject"].is_null() {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    &[Cause { reason: "FieldValueRequired", message: "Required value", field: "involvedObject" }],
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Carries over what a write to `sub` may not change, so that the result
/// differs from `old` only where such a write is allowed to.
pub fn prepare_update(kind: Kind, sub: Sub, new: &mut Value, old: &Value) {
    // Metadata the server owns.
    for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
        match old["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                new["metadata"].as_object_mut().map(|m| m.remove(field));
            }
        }
    }
    new["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
    match sub {
        Sub::Main => {
            apply_defaults(kind, new);
            if kind.has_status_subresource() {
                copy_field(new, old, "status");
            }
            if kind == Kind::Namespace {
                copy_field(new, old, "spec");
            }
        }
        Sub::Status => {
            let status = new["status"].take();
            *new = old.clone();
            if status.is_null() {
                new.as_object_mut().map(|m| m.remove("status"));
            } else {
                new["status"] = status;
            }
        }
        Sub::Resize => pod::keep_only_resize(new, old),
        Sub::Finalize => {
            let finalizers = new["spec"]["finalizers"].take();
            *new = old.clone();
            new["spec"]["finalizers"] = finalizers;
        }
    }
    match kind {
        Kind::Pod => pod::canonicalize(new),
        Kind::Node => {
            for field in ["capacity", "allocatable"] {
                quantity::canonicalize_map(&mut new["status"][field]);
            }
        }
        _ => {}
    }
    if kind.tracks_generation() && matches!(sub, Sub::Main | Sub::Resize) && new.get("spec") != old.get("spec") {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        new["metadata"]["generation"] = json!(generation);
    }
}

fn copy_field(new: &mut Value, old: &Value, field: &str) {
    match old.get(field) {
        Some(v) => new[field] = v.clone(),
        None => {
            new.as_object_mut().map(|m| m.remove(field));
        }
    }
}

pub fn validate_update(kind: Kind, sub: Sub, new: &Value, old: &Value) -> Result<(), ApiError> {
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    match (kind, sub) {
        (Kind::Pod, Sub::Main) => {
            pod::validate(new, name)?;
            pod::validate_spec_update(new, old, name)
        }
        (Kind::Pod, Sub::Resize) => pod::validate_resize(new, old, name),
        (Kind::Deployment | Kind::ReplicaSet | Kind::DaemonSet, Sub::Main) => {
            workload::validate(kind, new, name)?;
            if new["spec"]["selector"] != old["spec"]["selector"] {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    &[Cause { reason: "FieldValueInvalid", message: "field is immutable", field: "spec.selector" }],
                ));
            }
            Ok(())
        }
        (Kind::PodDisruptionBudget, Sub::Main) => validate_pdb(new, name),
        _ => Ok(()),
    }
}

fn validate_pdb(obj: &Value, name: &str) -> Result<(), ApiError> {
    let spec = &obj["spec"];
    if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
        return Err(ApiError::invalid(
            Kind::PodDisruptionBudget,
            name,
            &[Cause {
                reason: "FieldValueInvalid",
                message: "minAvailable and maxUnavailable cannot be both set",
                field: "spec",
            }],
        ));
    }
    Ok(())
}

/// The fields of a stored object a fieldSelector may name (besides
/// metadata.name and metadata.namespace, which the key holds): extracted when
/// the object is written, as the API server's watch cache keeps each object's
/// selectable fields beside it.
pub fn selectable_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Pod => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        Kind::Node => &["spec.unschedulable"],
        Kind::Namespace => &["status.phase"],
        Kind::ReplicaSet => &["status.replicas"],
        Kind::Event => event::SELECTABLE,
        _ => &[],
    }
}

/// Whether `field` may be used in a fieldSelector on this resource.
pub fn field_supported(kind: Kind, view: View, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match kind {
        Kind::Event => event::field_supported(view, field),
        _ => selectable_fields(kind).contains(&field),
    }
}

/// The value a field selector compares for `field` (as the request's view
/// names it) on a stored object.
pub fn field_value(kind: Kind, view: View, obj: &Obj, field: &str) -> String {
    match field {
        "metadata.name" => obj.key.name.clone(),
        "metadata.namespace" => obj.key.namespace.clone(),
        _ if kind == Kind::Event => obj.field(&event::stored_field(view, field)).to_string(),
        _ => obj.field(field).to_string(),
    }
}

/// The value of one of [`selectable_fields`] on an object as JSON.
pub fn extract_field(kind: Kind, obj: &Value, field: &str) -> String {
    if kind == Kind::Event && field == "source" {
        // The API server indexes source.component under "source".
        return obj["source"]["component"].as_str().unwrap_or("").to_string();
    }
    crate::selectors::field_value(obj, field)
}

/// DNS-1123 subdomain, the rule for most object names.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}
