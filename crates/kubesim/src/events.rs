//! Events recorded by the built-in components (scheduler, kubelet,
//! controllers), deduplicated into counts the way client-go's recorder does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::resources::Kind;
use crate::store::ObjKey;
use crate::time;

pub struct EventRecorder {
    registry: Arc<Registry>,
    enabled: bool,
    /// (object uid, reason, message, component) → event key, for aggregation.
    recent: Mutex<HashMap<(String, String, String, String), ObjKey>>,
}

const RECENT_LIMIT: usize = 8192;

impl EventRecorder {
    pub fn new(registry: Arc<Registry>, enabled: bool) -> EventRecorder {
        EventRecorder { registry, enabled, recent: Mutex::new(HashMap::new()) }
    }

    /// Records (or counts again) an event about `object`.
    pub fn record(
        &self,
        object: &Value,
        event_type: &str,
        reason: &str,
        message: &str,
        component: &str,
        host: Option<&str>,
    ) {
        if !self.enabled {
            return;
        }
        let meta = &object["metadata"];
        let uid = meta["uid"].as_str().unwrap_or("").to_string();
        let dedup = (uid.clone(), reason.to_string(), message.to_string(), component.to_string());
        let now = time::now_string();
        let existing = self.recent.lock().unwrap_or_else(|e| e.into_inner()).get(&dedup).cloned();
        if let Some(key) = existing {
            let updated = self.registry.mutate(Kind::Event, &key, None, |ev| {
                let count = ev["count"].as_i64().unwrap_or(1) + 1;
                ev["count"] = json!(count);
                ev["lastTimestamp"] = json!(now);
                Ok(())
            });
            if matches!(updated, Ok(crate::store::Written::Updated(_))) {
                return;
            }
        }
        let name = meta["name"].as_str().unwrap_or("");
        let object_ns = meta["namespace"].as_str().unwrap_or("");
        let ns = if object_ns.is_empty() { "default" } else { object_ns };
        let nanos = time::now().as_nanosecond();
        let mut involved = json!({
            "kind": object["kind"],
            "name": name,
            "uid": uid,
            "apiVersion": object["apiVersion"],
            "resourceVersion": meta["resourceVersion"],
        });
        if !object_ns.is_empty() {
            involved["namespace"] = json!(object_ns);
        }
        let mut source = json!({"component": component});
        if let Some(h) = host {
            source["host"] = json!(h);
        }
        let event = json!({
            "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": host.unwrap_or(""),
        });
        if let Ok(created) = self.registry.create(Kind::Event, Some(ns), event, false) {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() >= RECENT_LIMIT {
                recent.clear();
            }
            recent.insert(dedup, created.key.clone());
        }
    }
}
