//! The PATCH content types: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), strategic merge patch, and a minimal server-side apply.

mod schema;
mod strategic;

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::Kind;

/// Applies a patch to an object that has no list-merge schema (a Scale):
/// strategic merge then behaves like a JSON merge patch with directives.
pub fn apply_schemaless(original: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Strategic | PatchType::Apply => strategic::merge(None, original, &parse_object(body)?),
        other => apply(Kind::Lease, original, other, body),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Applies a patch body to an object of `kind`.
pub fn apply(kind: Kind, original: &Value, patch_type: PatchType, body: &[u8]) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &patch).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            let patch = parse_object(body)?;
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
        PatchType::Strategic => {
            if kind.is_custom() {
                // A custom resource on a real cluster: strategic merge is not defined for it.
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "strategic merge patch is not supported for custom resources",
                ));
            }
            let patch = parse_object(body)?;
            strategic::merge(Some(kind), original, &patch)
        }
        PatchType::Apply => {
            let patch = parse_object(body)?;
            if kind.is_custom() {
                let mut doc = original.clone();
                json_patch::merge(&mut doc, &patch);
                return Ok(doc);
            }
            strategic::merge(Some(kind), original, &patch)
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("error decoding patch: {e} (kubesim accepts JSON patch bodies only)"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request("patch body must be a JSON object"));
    }
    Ok(v)
}

/// Removes `$`-directives and nulls from a value that is being inserted rather
/// than merged (a new map key, a new list element).
pub(crate) fn clean(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, v)| !k.starts_with('$') && !v.is_null()).map(|(k, v)| (k.clone(), clean(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}
