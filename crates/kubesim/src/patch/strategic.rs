//! Strategic merge patch, as kubectl and client-go produce it: merge keys,
//! `$patch: replace|delete|merge`, `$retainKeys`, `$setElementOrder/<field>`
//! and `$deleteFromPrimitiveList/<field>`.

use serde_json::{Map, Value};

use super::clean;
use super::schema::{ListStrategy, list_strategy};
use crate::error::ApiError;
use crate::resources::Kind;

pub fn merge(kind: Option<Kind>, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = original.clone();
    let Value::Object(patch) = patch else { return Err(ApiError::bad_request("patch must be an object")) };
    if !doc.is_object() {
        doc = Value::Object(Map::new());
    }
    let mut path = Vec::new();
    let Value::Object(map) = &mut doc else { unreachable!("made an object above") };
    if merge_map(kind, map, patch, &mut path)? == MapOutcome::Delete {
        return Err(ApiError::bad_request("$patch: delete at the top level of a patch is not allowed"));
    }
    Ok(doc)
}

#[derive(PartialEq, Eq)]
enum MapOutcome {
    Keep,
    Delete,
}

fn directive(patch: &Map<String, Value>) -> Option<&str> {
    patch.get("$patch").and_then(Value::as_str)
}

fn merge_map(
    kind: Option<Kind>,
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<MapOutcome, ApiError> {
    match directive(patch) {
        Some("delete") => return Ok(MapOutcome::Delete),
        Some("replace") => {
            let Value::Object(replacement) = clean(&Value::Object(patch.clone())) else { unreachable!() };
            *original = replacement;
            return Ok(MapOutcome::Keep);
        }
        Some("merge") | None => {}
        Some(other) => return Err(ApiError::bad_request(format!("unknown patch type: {other}"))),
    }
    for (key, value) in patch {
        if key.starts_with('$') {
            if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(list)), Value::Array(remove)) = (original.get_mut(field), value)
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        path.push(key.clone());
        match value {
            Value::Null => {
                original.remove(key);
            }
            Value::Object(patch_map) => match original.get_mut(key) {
                Some(Value::Object(orig_map)) => {
                    if merge_map(kind, orig_map, patch_map, path)? == MapOutcome::Delete {
                        original.remove(key);
                    }
                }
                _ => {
                    if directive(patch_map) == Some("delete") {
                        original.remove(key);
                    } else {
                        let mut fresh = Map::new();
                        merge_map(kind, &mut fresh, patch_map, path)?;
                        original.insert(key.clone(), Value::Object(fresh));
                    }
                }
            },
            Value::Array(patch_list) => {
                let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                let strategy = kind.map(|k| list_strategy(k, &segments)).unwrap_or(ListStrategy::Replace);
                let merged = match (strategy, original.remove(key)) {
                    (ListStrategy::Replace, _) | (_, None) | (_, Some(Value::Null)) => {
                        replace_list(kind, patch_list, path)?
                    }
                    (ListStrategy::MergePrimitive, Some(Value::Array(mut orig))) => {
                        for v in patch_list {
                            if !orig.contains(v) {
                                orig.push(v.clone());
                            }
                        }
                        orig
                    }
                    (ListStrategy::MergeByKey(merge_key), Some(Value::Array(orig))) => {
                        merge_list_by_key(kind, orig, patch_list, merge_key, path)?
                    }
                    (_, Some(_)) => replace_list(kind, patch_list, path)?,
                };
                original.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                original.insert(key.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    // $setElementOrder after merging, so newly added elements are ordered too.
    for (key, order) in patch {
        if let (Some(field), Value::Array(order)) = (key.strip_prefix("$setElementOrder/"), order) {
            path.push(field.to_string());
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let strategy = kind.map(|k| list_strategy(k, &segments)).unwrap_or(ListStrategy::Replace);
            path.pop();
            if let Some(Value::Array(list)) = original.get_mut(field) {
                set_element_order(list, order, strategy);
            }
        }
    }
    if let Some(Value::Array(retain)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(MapOutcome::Keep)
}

/// A list that replaces the original: elements are inserted, with their own
/// directives resolved (a `{$patch: replace}` marker element is dropped).
fn replace_list(kind: Option<Kind>, patch_list: &[Value], path: &mut Vec<String>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(patch_list.len());
    for v in patch_list {
        match v {
            Value::Object(m) if directive(m).is_some() && m.len() == 1 => {}
            Value::Object(m) if directive(m) == Some("delete") => {}
            Value::Object(m) => {
                let mut fresh = Map::new();
                merge_map(kind, &mut fresh, m, path)?;
                out.push(Value::Object(fresh));
            }
            other => out.push(clean(other)),
        }
    }
    Ok(out)
}

fn merge_list_by_key(
    kind: Option<Kind>,
    mut original: Vec<Value>,
    patch_list: &[Value],
    merge_key: &str,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    let replace_all = patch_list.iter().any(|v| v.as_object().is_some_and(|m| directive(m) == Some("replace")));
    if replace_all {
        return replace_list(kind, patch_list, path);
    }
    for item in patch_list {
        let Value::Object(patch_item) = item else {
            return Err(ApiError::bad_request(format!(
                "unable to find api field in struct for the list at {}: elements must be objects",
                path.join(".")
            )));
        };
        let Some(key_value) = patch_item.get(merge_key) else {
            return Err(ApiError::bad_request(format!(
                "map: {} does not contain declared merge key: {merge_key}",
                Value::Object(patch_item.clone())
            )));
        };
        let position = original.iter().position(|o| o.get(merge_key) == Some(key_value));
        if directive(patch_item) == Some("delete") {
            original.retain(|o| o.get(merge_key) != Some(key_value));
            continue;
        }
        match position {
            Some(i) => {
                if let Value::Object(orig_item) = &mut original[i]
                    && merge_map(kind, orig_item, patch_item, path)? == MapOutcome::Delete
                {
                    original.remove(i);
                }
            }
            None => {
                let mut fresh = Map::new();
                merge_map(kind, &mut fresh, patch_item, path)?;
                original.push(Value::Object(fresh));
            }
        }
    }
    Ok(original)
}

/// Reorders a merged list to follow `$setElementOrder`. Elements named in the
/// order take the slots such elements occupy, in the given order; elements
/// only the server had keep their positions.
fn set_element_order(list: &mut [Value], order: &[Value], strategy: ListStrategy) {
    let identity = |v: &Value| -> Option<Value> {
        match strategy {
            ListStrategy::MergeByKey(k) => v.get(k).cloned(),
            _ => Some(v.clone()),
        }
    };
    let wanted: Vec<Value> = order.iter().filter_map(&identity).collect();
    let rank = |v: &Value| identity(v).and_then(|id| wanted.iter().position(|w| *w == id));
    let slots: Vec<usize> = (0..list.len()).filter(|&i| rank(&list[i]).is_some()).collect();
    let mut ordered: Vec<Value> = slots.iter().map(|&i| list[i].clone()).collect();
    ordered.sort_by_key(|v| rank(v).unwrap_or(usize::MAX));
    for (slot, v) in slots.into_iter().zip(ordered) {
        list[slot] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
            "spec": {
                "containers": [
                    {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}],
                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                    {"name": "side", "image": "side:1"}
                ],
                "tolerations": [{"key": "k", "operator": "Exists"}]
            },
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}
        })
    }

    #[test]
    fn merges_containers_by_name_and_conditions_by_type() {
        let patch = json!({
            "metadata": {"labels": {"b": null, "c": "3"}},
            "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "200m"}},
                                     "env": [{"name": "B", "value": "2"}]}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        });
        let out = merge(Some(Kind::Pod), &pod(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        let c = &out["spec"]["containers"];
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[0]["resources"]["requests"], json!({"cpu": "200m", "memory": "64Mi"}));
        assert_eq!(c[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(out["status"]["conditions"][0], json!({"type": "Ready", "status": "True"}));
        assert_eq!(out["status"]["conditions"][1]["type"], "PodScheduled");
    }

    #[test]
    fn directives() {
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"], "finalizers": ["z"]},
            "spec": {
                "containers": [{"name": "side", "$patch": "delete"}],
                "tolerations": [{"key": "other", "operator": "Exists"}]
            }
        });
        let out = merge(Some(Kind::Pod), &pod(), &patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["y", "z"]));
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 1);
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "other", "operator": "Exists"}]), "atomic list");

        let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}});
        let out = merge(Some(Kind::Pod), &pod(), &patch).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "only", "image": "x"}]));

        let patch = json!({"metadata": {"labels": {"$patch": "replace", "z": "9"}}});
        let out = merge(Some(Kind::Pod), &pod(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"z": "9"}));

        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                                    "containers": [{"name": "app", "image": "app:2"}]}});
        let out = merge(Some(Kind::Pod), &pod(), &patch).unwrap();
        assert_eq!(out["spec"]["containers"][0]["name"], "side");
        assert_eq!(out["spec"]["containers"][1]["image"], "app:2");

        let dep = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let out = merge(Some(Kind::Deployment), &dep, &patch).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }
}
