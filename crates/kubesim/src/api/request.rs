//! Parsing of API requests: path → target resource, query parameters,
//! and the representation the client accepts.

use std::collections::HashMap;

use crate::error::ApiError;
use crate::resources::{self, ApiResource};

/// What a resource path addresses.
pub struct Target {
    pub resource: &'static ApiResource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Path after the subresource (nodes/{name}/proxy/<tail>).
    pub tail: Vec<String>,
}

/// Resolves the segments after `/api/v1` or `/apis/{group}/{version}`.
pub fn resolve(group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let not_found = || ApiError::new(404, "NotFound", "the server could not find the requested resource");
    let lookup = |plural: &str| resources::find(group, version, plural).ok_or_else(not_found);
    let target = |resource, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>, tail: &[&str]| Target {
        resource,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
        tail: tail.iter().map(|s| s.to_string()).collect(),
    };
    match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            Ok(target(lookup("namespaces")?, None, Some(ns), Some(sub), &[]))
        }
        ["namespaces", ns, plural, tail @ ..] => {
            let resource = lookup(plural)?;
            if !resource.namespaced() {
                return Err(not_found());
            }
            match tail {
                [] => Ok(target(resource, Some(ns), None, None, &[])),
                [name] => Ok(target(resource, Some(ns), Some(name), None, &[])),
                [name, sub, more @ ..] => {
                    if resource.subresource(sub).is_none() {
                        return Err(not_found());
                    }
                    Ok(target(resource, Some(ns), Some(name), Some(sub), more))
                }
            }
        }
        [plural, tail @ ..] => {
            let resource = lookup(plural)?;
            match tail {
                [] => Ok(target(resource, None, None, None, &[])),
                [name] if !resource.namespaced() => Ok(target(resource, None, Some(name), None, &[])),
                [name, sub, more @ ..] if !resource.namespaced() => {
                    if resource.subresource(sub).is_none() {
                        return Err(not_found());
                    }
                    Ok(target(resource, None, Some(name), Some(sub), more))
                }
                _ => Err(not_found()),
            }
        }
        [] => Err(not_found()),
    }
}

/// Query parameters (last value wins, like Go's url.Values.Get on a single value).
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}")))
            }
        }
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

/// How a response body should be shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr {
    Object,
    /// meta.k8s.io Table (server-side printing for kubectl get).
    Table(&'static str),
    /// meta.k8s.io PartialObjectMetadata(List).
    Metadata(&'static str),
}

/// Picks the first representation in the Accept header that kubesim can
/// produce; protobuf and unknown types are skipped, as a server without them would.
pub fn negotiate(accept: Option<&str>) -> Result<Repr, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Ok(Repr::Object) };
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).collect();
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let version = match params.get("v") {
            Some(&"v1") => "v1",
            Some(&"v1beta1") => "v1beta1",
            Some(_) => continue,
            None => "v1",
        };
        match params.get("as") {
            None => return Ok(Repr::Object),
            Some(&"Table") if params.get("g").is_none_or(|g| *g == "meta.k8s.io") => return Ok(Repr::Table(version)),
            Some(&("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if params.get("g").is_none_or(|g| *g == "meta.k8s.io") =>
            {
                return Ok(Repr::Metadata(version));
            }
            Some(_) => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json (asked for {accept})"
    )))
}
