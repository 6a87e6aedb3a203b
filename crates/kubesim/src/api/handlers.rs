//! The verbs on resources and subresources.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, Response, header};
use serde_json::{Value, json};

use super::Body;
use super::lists::Page;
use super::request::{Query, Repr, Target, negotiate};
use super::respond;
use super::table::{self, Include};
use crate::error::ApiError;
use crate::kinds::{self, Sub, event};
use crate::patch::{self, PatchType};
use crate::registry::{DeleteOptions, Deleted};
use crate::resources::{ApiResource, Kind, View};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::sim::Sim;
use crate::store::{Obj, ObjKey};
use crate::subresources;

/// Label, field and namespace restrictions of a list or watch.
pub struct Filter {
    pub kind: Kind,
    pub view: View,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn from_query(resource: &ApiResource, namespace: Option<String>, q: &Query) -> Result<Filter, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?;
        fields.validate(&|f| kinds::field_supported(resource.bucket, resource.view, f))?;
        Ok(Filter { kind: resource.bucket, view: resource.view, namespace, labels, fields })
    }

    pub fn matches(&self, obj: &Obj) -> bool {
        if let Some(ns) = &self.namespace
            && obj.key.namespace != *ns
        {
            return false;
        }
        self.labels.matches_obj(obj)
            && (self.fields.is_empty() || self.fields.matches(&|f| kinds::field_value(self.kind, self.view, obj, f)))
    }
}

pub fn to_view(resource: &ApiResource, value: &Value) -> Value {
    match resource.view {
        View::Native => value.clone(),
        View::EventsV1 => event::to_events_v1(value),
    }
}

fn from_view(resource: &ApiResource, value: Value) -> Value {
    match resource.view {
        View::Native => value,
        View::EventsV1 if value.is_object() => event::from_events_v1(&value),
        View::EventsV1 => value,
    }
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("JSON values always serialise"))
}

/// One object in the requested representation.
pub fn render_object(resource: &ApiResource, repr: Repr, include: Include, obj: &Obj) -> Bytes {
    match repr {
        Repr::Object if resource.view == View::Native => obj.raw.clone(),
        Repr::Object => to_bytes(&to_view(resource, &obj.value())),
        Repr::Metadata(v) => to_bytes(&table::partial_metadata(&obj.value(), v)),
        Repr::Table(v) => to_bytes(&table::table(
            resource,
            v,
            &[&obj.value()],
            json!({"resourceVersion": obj.rv.to_string()}),
            include,
        )),
    }
}

fn render_list(resource: &ApiResource, repr: Repr, include: Include, page: &Page) -> Bytes {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        meta["remainingItemCount"] = json!(r);
    }
    match repr {
        Repr::Table(v) => {
            let decoded: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
            let values: Vec<&Value> = decoded.iter().collect();
            to_bytes(&table::table(resource, v, &values, meta, include))
        }
        Repr::Metadata(v) => {
            let items: Vec<Value> = page.items.iter().map(|o| table::partial_metadata(&o.value(), v)).collect();
            to_bytes(&json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": format!("meta.k8s.io/{v}"),
                "metadata": meta,
                "items": items,
            }))
        }
        Repr::Object => {
            let size: usize = page.items.iter().map(|o| o.raw.len() + 1).sum();
            let mut out = BytesMut::with_capacity(size + 256);
            out.put_slice(b"{\"kind\":");
            out.put_slice(&to_bytes(&json!(format!("{}List", resource.kind))));
            out.put_slice(b",\"apiVersion\":");
            out.put_slice(&to_bytes(&json!(resource.api_version())));
            out.put_slice(b",\"metadata\":");
            out.put_slice(&to_bytes(&meta));
            out.put_slice(b",\"items\":[");
            for (i, obj) in page.items.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                if resource.view == View::Native {
                    out.put_slice(&obj.raw);
                } else {
                    out.put_slice(&to_bytes(&to_view(resource, &obj.value())));
                }
            }
            out.put_slice(b"]}");
            out.freeze()
        }
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let base = ct.split(';').next().unwrap_or("").trim();
        if !matches!(base, "application/json" | "" | "*/*") {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json (got {ct})"
                ),
            ));
        }
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))
}

fn key_for(resource: &ApiResource, namespace: &Option<String>, name: &str) -> ObjKey {
    if resource.namespaced() { ObjKey::new(namespace.as_deref().unwrap_or(""), name) } else { ObjKey::cluster(name) }
}

fn delete_options(headers: &HeaderMap, q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut opts = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        DeleteOptions::from_json(&parse_body(headers, body)?)
    } else {
        DeleteOptions::default()
    };
    if let Some(g) = q.int("gracePeriodSeconds")? {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = q.get("propagationPolicy") {
        opts.propagation_policy = Some(p.to_string());
    }
    if q.dry_run() {
        opts.dry_run = true;
    }
    Ok(opts)
}

pub async fn resource(
    sim: &Arc<Sim>,
    method: &Method,
    target: Target,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let repr = negotiate(accept)?;
    let include = Include::parse(q.get("includeObject"));
    let res = target.resource;
    let kind = res.bucket;
    let Some(name) = target.name.clone() else {
        return collection(sim, method, res, target.namespace, q, headers, body, repr, include).await;
    };
    let key = key_for(res, &target.namespace, &name);
    let ok = |code: u16, obj: &Obj| -> Result<Response<Body>, ApiError> {
        Ok(respond::json_bytes(code, render_object(res, repr, include, obj)))
    };
    match (target.subresource.as_deref(), method.clone()) {
        (None, Method::GET) if q.flag("watch") => {
            let mut filter = Filter::from_query(res, target.namespace.clone(), q)?;
            filter.fields.requirements.push(crate::selectors::FieldRequirement {
                field: "metadata.name".into(),
                value: name,
                negate: false,
            });
            super::watch::serve(sim.clone(), res, filter, q, repr, include)
        }
        (None | Some("status" | "resize"), Method::GET) => ok(200, &*sim.registry.get(kind, &key)?),
        (None, Method::PUT) => {
            let obj = from_view(res, parse_body(headers, &body)?);
            ok(200, &*sim.registry.update(kind, &key, obj, Sub::Main, q.dry_run())?)
        }
        (Some("status"), Method::PUT) => {
            ok(200, &*sim.registry.update(kind, &key, parse_body(headers, &body)?, Sub::Status, q.dry_run())?)
        }
        (Some("resize"), Method::PUT) if kind == Kind::Pod => {
            ok(200, &*sim.registry.update(kind, &key, parse_body(headers, &body)?, Sub::Resize, q.dry_run())?)
        }
        (Some("finalize"), Method::PUT) => {
            ok(200, &*sim.registry.update(kind, &key, parse_body(headers, &body)?, Sub::Finalize, q.dry_run())?)
        }
        (sub @ (None | Some("status" | "resize")), Method::PATCH) => {
            let sub = match sub {
                None => Sub::Main,
                Some("status") => Sub::Status,
                _ if kind == Kind::Pod => Sub::Resize,
                _ => return Err(ApiError::method_not_allowed()),
            };
            patch(sim, res, &key, target.namespace.as_deref(), sub, q, headers, &body, repr, include)
        }
        (None, Method::DELETE) => {
            let opts = delete_options(headers, q, &body)?;
            let deleted = sim.registry.delete(kind, &key, &opts)?;
            let code = match &deleted {
                Deleted::Pending(_) if opts.propagation_policy.as_deref() == Some("Foreground") => 202,
                _ => 200,
            };
            ok(code, deleted.object())
        }
        (Some("eviction"), Method::POST) if kind == Kind::Pod => {
            let eviction = parse_body(headers, &body)?;
            let status = subresources::eviction::evict(sim, &key, &eviction, q.dry_run())?;
            Ok(respond::json(201, &status))
        }
        (Some("binding"), Method::POST) if kind == Kind::Pod => {
            let binding = parse_body(headers, &body)?;
            let status = subresources::binding::bind(sim, &key, &binding)?;
            Ok(respond::json(201, &status))
        }
        (Some("scale"), m) => {
            let parsed = if m == Method::PUT { Some(parse_body(headers, &body)?) } else { None };
            let patch_type =
                headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(PatchType::from_content_type);
            let scale = subresources::scale::handle(sim, kind, &key, &m, parsed, patch_type, &body, q.dry_run())?;
            Ok(respond::json(200, &scale))
        }
        (Some("proxy"), Method::GET) if kind == Kind::Node => {
            subresources::stats::proxy(sim, &name, &target.tail).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

#[allow(clippy::too_many_arguments)]
fn patch(
    sim: &Arc<Sim>,
    res: &'static ApiResource,
    key: &ObjKey,
    namespace: Option<&str>,
    sub: Sub,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
    repr: Repr,
    include: Include,
) -> Result<Response<Body>, ApiError> {
    let kind = res.bucket;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let patch_type =
        PatchType::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    if patch_type == PatchType::Apply && q.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::bad_request("PATCH, fieldManager is required for apply requests"));
    }
    let result = sim.registry.update_with(kind, key, sub, q.dry_run(), |current| {
        if res.view == View::Native {
            patch::apply(kind, current, patch_type, body)
        } else {
            Ok(from_view(res, patch::apply(kind, &to_view(res, current), patch_type, body)?))
        }
    });
    match result {
        Ok(obj) => Ok(respond::json_bytes(200, render_object(res, repr, include, &obj))),
        Err(e) if e.code == 404 && patch_type == PatchType::Apply && sub == Sub::Main => {
            // Server-side apply creates what does not exist yet.
            let mut obj: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding apply patch: {e}")))?;
            obj["metadata"]["name"] = json!(key.name);
            let created = sim.registry.create(kind, namespace, from_view(res, obj), q.dry_run())?;
            Ok(respond::json_bytes(201, render_object(res, repr, include, &created)))
        }
        Err(e) => Err(e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn collection(
    sim: &Arc<Sim>,
    method: &Method,
    res: &'static ApiResource,
    namespace: Option<String>,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
    repr: Repr,
    include: Include,
) -> Result<Response<Body>, ApiError> {
    let kind = res.bucket;
    match *method {
        Method::GET if q.flag("watch") => {
            let filter = Filter::from_query(res, namespace, q)?;
            super::watch::serve(sim.clone(), res, filter, q, repr, include)
        }
        Method::GET => {
            let filter = Filter::from_query(res, namespace.clone(), q)?;
            let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
            let page = match q.get("continue").filter(|c| !c.is_empty()) {
                Some(token) => sim.snapshots.next_page(token, limit)?,
                None => {
                    let (items, rv) = sim.store.list(kind, namespace.as_deref());
                    check_list_resource_version(q, rv)?;
                    let items: Vec<Arc<Obj>> = items.into_iter().filter(|o| filter.matches(o)).collect();
                    sim.snapshots.first_page(items, rv, limit)
                }
            };
            Ok(respond::json_bytes(200, render_list(res, repr, include, &page)))
        }
        Method::POST => {
            if res.namespaced() && namespace.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            let obj = from_view(res, parse_body(headers, &body)?);
            let created = sim.registry.create(kind, namespace.as_deref(), obj, q.dry_run())?;
            Ok(respond::json_bytes(201, render_object(res, repr, include, &created)))
        }
        Method::DELETE => {
            let filter = Filter::from_query(res, namespace.clone(), q)?;
            let opts = delete_options(headers, q, &body)?;
            let (items, _) = sim.store.list(kind, namespace.as_deref());
            let mut deleted = Vec::new();
            for obj in items.into_iter().filter(|o| filter.matches(o)) {
                match sim.registry.delete(kind, &obj.key, &opts) {
                    Ok(d) => deleted.push(d.object().clone()),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let page = Page { items: deleted, rv: sim.store.current_rv(), continue_token: None, remaining: None };
            Ok(respond::json_bytes(200, render_list(res, repr, include, &page)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `resourceVersionMatch=Exact` needs the state at that revision, which only
/// exists while it is the current one (no MVCC snapshots are kept).
fn check_list_resource_version(q: &Query, current: u64) -> Result<(), ApiError> {
    let Some(rv) = q.get("resourceVersion").filter(|r| !r.is_empty()) else { return Ok(()) };
    let requested: u64 = rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version \"{rv}\"")))?;
    match q.get("resourceVersionMatch") {
        Some("Exact") if requested != current => {
            Err(ApiError::expired(format!("too old resource version: {requested} ({current})")))
        }
        Some("Exact" | "NotOlderThan") | None => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!("unsupported resourceVersionMatch \"{other}\""))),
    }
}
