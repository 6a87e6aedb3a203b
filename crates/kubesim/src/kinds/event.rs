//! core/v1 and events.k8s.io/v1 events: one stored object, two shapes. kube-rs'
//! recorder writes events.k8s.io/v1; `kubectl describe` reads core/v1.

use serde_json::{Map, Value};

use crate::resources::View;

/// (core/v1 field, events.k8s.io/v1 field) for every renamed field.
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn rename(obj: &Value, api_version: &str, from_core: bool) -> Value {
    let Value::Object(map) = obj else { return obj.clone() };
    let mut out = Map::new();
    for (k, v) in map {
        let renamed = RENAMES
            .iter()
            .find(|(core, v1)| if from_core { core == k } else { v1 == k })
            .map(|(core, v1)| if from_core { *v1 } else { *core })
            .unwrap_or(k);
        out.insert(renamed.to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.to_string()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// The events.k8s.io/v1 shape of a stored core/v1 event.
pub fn to_events_v1(core: &Value) -> Value {
    rename(core, "events.k8s.io/v1", true)
}

/// The core/v1 shape (storage) of an events.k8s.io/v1 event.
pub fn from_events_v1(v1: &Value) -> Value {
    let mut core = rename(v1, "v1", false);
    // core/v1 readers (kubectl describe) show lastTimestamp/firstTimestamp; a
    // real server leaves them empty for events.k8s.io writers, and kubectl
    // falls back to eventTime, which is kept.
    if core["source"].is_null() && !core["reportingComponent"].is_null() {
        core["source"] = serde_json::json!({"component": core["reportingComponent"].clone()});
    }
    core
}

/// A field name of the events.k8s.io view, mapped to its core/v1 name.
fn core_field(view: View, field: &str) -> String {
    if view != View::EventsV1 {
        return field.to_string();
    }
    for (core, v1) in RENAMES {
        if field == *v1 {
            return core.to_string();
        }
        if let Some(rest) = field.strip_prefix(&format!("{v1}.")) {
            return format!("{core}.{rest}");
        }
    }
    field.to_string()
}

/// The core/v1 fields an Event may be selected by (besides metadata.name
/// and metadata.namespace).
pub const SELECTABLE: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

pub fn field_supported(view: View, field: &str) -> bool {
    SELECTABLE.contains(&core_field(view, field).as_str())
}

/// The name a field of `view` has on the stored (core/v1) Event.
pub fn stored_field(view: View, field: &str) -> String {
    core_field(view, field)
}
