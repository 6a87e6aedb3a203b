//! Generic API semantics over the store: create (generateName, uid,
//! AlreadyExists), update with optimistic concurrency, read-modify-write for
//! patches, graceful deletion with finalizers and preconditions. Used alike by
//! HTTP handlers, built-in controllers and the harness.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::ids;
use crate::kinds::{self, Sub};
use crate::resources::Kind;
use crate::store::{Obj, ObjKey, Store, Write, Written, key_of};
use crate::time;

/// `DeleteOptions` as far as kubesim honours them.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// "Orphan", "Background" or "Foreground" (treated as Background).
    pub propagation_policy: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` JSON body (fields absent are left unset).
    pub fn from_json(v: &Value) -> DeleteOptions {
        let mut o = DeleteOptions {
            grace_period_seconds: v["gracePeriodSeconds"].as_i64(),
            precondition_uid: v["preconditions"]["uid"].as_str().map(str::to_string),
            precondition_resource_version: v["preconditions"]["resourceVersion"].as_str().map(str::to_string),
            propagation_policy: v["propagationPolicy"].as_str().map(str::to_string),
            dry_run: v["dryRun"].as_array().is_some_and(|a| a.iter().any(|d| d == "All")),
        };
        if o.propagation_policy.is_none() && v["orphanDependents"].as_bool() == Some(true) {
            o.propagation_policy = Some("Orphan".to_string());
        }
        o
    }
}

/// Outcome of a delete: gone now, or marked for (graceful / finalizer-gated) deletion.
#[derive(Clone, Debug)]
pub enum Deleted {
    Gone(Arc<Obj>),
    Pending(Arc<Obj>),
}

impl Deleted {
    pub fn object(&self) -> &Arc<Obj> {
        match self {
            Deleted::Gone(o) | Deleted::Pending(o) => o,
        }
    }
}

pub struct Registry {
    pub store: Arc<Store>,
}

impl Registry {
    pub fn new(store: Arc<Store>) -> Registry {
        Registry { store }
    }

    pub fn get(&self, kind: Kind, key: &ObjKey) -> Result<Arc<Obj>, ApiError> {
        self.store.get(kind, key).ok_or_else(|| ApiError::not_found(kind, &key.name))
    }

    /// POST semantics. `url_namespace` is the namespace of the request path.
    pub fn create(
        &self,
        kind: Kind,
        url_namespace: Option<&str>,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Obj>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request must be a JSON object"));
        }
        check_type_meta(kind, &obj)?;
        obj["apiVersion"] = json!(kind.api_version());
        obj["kind"] = json!(kind.kind());
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        if kind.namespaced() {
            let body_ns = obj["metadata"]["namespace"].as_str().unwrap_or("").to_string();
            let ns = match (url_namespace, body_ns.as_str()) {
                (Some(u), "") => u.to_string(),
                (Some(u), b) if u != b => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                (_, b) if !b.is_empty() => b.to_string(),
                _ => return Err(ApiError::bad_request("a namespace is required to create this object")),
            };
            obj["metadata"]["namespace"] = json!(ns);
            self.check_namespace_accepts(&ns)?;
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if obj["metadata"]["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
        }
        let generate_name = obj["metadata"]["generateName"].as_str().unwrap_or("").to_string();
        let given_name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        if given_name.is_empty() && generate_name.is_empty() {
            return Err(ApiError::invalid(
                kind,
                "",
                &[Cause {
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required",
                    field: "metadata.name",
                }],
            ));
        }
        {
            let meta = obj["metadata"].as_object_mut().expect("metadata is an object");
            for field in ["deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"] {
                meta.remove(field);
            }
            meta.insert("uid".into(), json!(ids::new_uid()));
            meta.insert("creationTimestamp".into(), json!(time::now_string()));
        }
        kinds::prepare_create(kind, &mut obj);
        for attempt in 0..8 {
            let name = if given_name.is_empty() {
                format!("{generate_name}{}", ids::name_suffix())
            } else {
                given_name.clone()
            };
            if !kinds::valid_name(&name) {
                return Err(ApiError::invalid(
                    kind,
                    &name,
                    &[Cause {
                        reason: "FieldValueInvalid",
                        message: &format!(
                            "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                        ),
                        field: "metadata.name",
                    }],
                ));
            }
            obj["metadata"]["name"] = json!(name);
            kinds::validate_create(kind, &obj)?;
            let key = key_of(kind, &obj);
            let candidate = obj.clone();
            let result = self.store.write(kind, &key, dry_run, |current| {
                if current.is_some() {
                    return Err(ApiError::already_exists(kind, &key.name));
                }
                Ok(Write::Put(candidate))
            });
            match result {
                Ok(written) => return Ok(written.object().expect("a put returns the object").clone()),
                Err(e) if e.reason == "AlreadyExists" && given_name.is_empty() && attempt < 7 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    fn check_namespace_accepts(&self, ns: &str) -> Result<(), ApiError> {
        match self.store.get(Kind::Namespace, &ObjKey::cluster(ns)) {
            None => Err(ApiError::not_found(Kind::Namespace, ns)),
            Some(n) if !n.value()["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// PUT semantics: replaces what `sub` may change; stale resourceVersion → 409.
    pub fn update(&self, kind: Kind, key: &ObjKey, obj: Value, sub: Sub, dry_run: bool) -> Result<Arc<Obj>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request must be a JSON object"));
        }
        check_type_meta(kind, &obj)?;
        let body_name = obj["metadata"]["name"].as_str().unwrap_or("");
        if !body_name.is_empty() && body_name != key.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                key.name
            )));
        }
        if kind.namespaced() {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
            if !ns.is_empty() && ns != key.namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        self.update_with(kind, key, sub, dry_run, |_| Ok(obj))
    }

    /// Read-modify-write: `f` computes the object a client would send from the
    /// current one (a patch, a scale change); the result goes through the same
    /// checks as an update. Atomic with respect to other writes.
    pub fn update_with(
        &self,
        kind: Kind,
        key: &ObjKey,
        sub: Sub,
        dry_run: bool,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Arc<Obj>, ApiError> {
        let written = self.store.write(kind, key, dry_run, |current| {
            let current = current.ok_or_else(|| ApiError::not_found(kind, &key.name))?;
            let new = f(&current.value())?;
            apply_update(kind, sub, new, current)
        })?;
        Ok(written.object().expect("an update either writes or finds the object").clone())
    }

    /// Internal write used by controllers: `f` edits the stored object
    /// directly (status, binding). Unchanged objects are not written. With
    /// `expect_uid`, a recreated object of the same name is left alone.
    pub fn mutate(
        &self,
        kind: Kind,
        key: &ObjKey,
        expect_uid: Option<&str>,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Written, ApiError> {
        let mut uid_mismatch = false;
        let written = self.store.write(kind, key, false, |current| {
            let Some(current) = current else { return Ok(Write::Unchanged) };
            if expect_uid.is_some_and(|uid| uid != current.uid()) {
                uid_mismatch = true;
                return Ok(Write::Unchanged);
            }
            let mut new = current.value().clone();
            f(&mut new)?;
            if is_finalized(&new) {
                return Ok(Write::Delete);
            }
            if new == current.value() { Ok(Write::Unchanged) } else { Ok(Write::Put(new)) }
        })?;
        Ok(if uid_mismatch { Written::Nothing } else { written })
    }

    /// DELETE semantics: preconditions, graceful deletion for pods,
    /// finalizers, namespace termination, orphaning dependents on request.
    pub fn delete(&self, kind: Kind, key: &ObjKey, opts: &DeleteOptions) -> Result<Deleted, ApiError> {
        if opts.propagation_policy.as_deref() == Some("Orphan") && !opts.dry_run {
            let current = self.get(kind, key)?;
            self.orphan_dependents(current.uid(), &key.namespace);
        }
        let written = self.store.write(kind, key, opts.dry_run, |current| {
            let current = current.ok_or_else(|| ApiError::not_found(kind, &key.name))?;
            check_preconditions(kind, key, opts, current)?;
            delete_decision(kind, opts, current)
        })?;
        Ok(match written {
            Written::Deleted(o) => Deleted::Gone(o),
            Written::Created(o) | Written::Updated(o) | Written::Unchanged(o) => Deleted::Pending(o),
            Written::Nothing => return Err(ApiError::not_found(kind, &key.name)),
        })
    }

    /// The last step of a pod's deletion (the kubelet's grace-0 delete, or
    /// pod GC): gone unless finalizers hold it.
    pub fn finish_deletion(&self, kind: Kind, key: &ObjKey, uid: &str) -> Result<Option<Deleted>, ApiError> {
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid.to_string()),
            ..Default::default()
        };
        match self.delete(kind, key, &opts) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.code == 404 || e.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn orphan_dependents(&self, owner_uid: &str, namespace: &str) {
        for kind in Kind::DEPENDENTS {
            let (items, _) = self.store.list(kind, Some(namespace));
            for obj in items {
                if obj.owned_by(owner_uid) {
                    let _ = self.mutate(kind, &obj.key, Some(obj.uid()), |v| {
                        if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|r| r["uid"] != owner_uid);
                        }
                        Ok(())
                    });
                }
            }
        }
    }
}

fn check_type_meta(kind: Kind, obj: &Value) -> Result<(), ApiError> {
    if let Some(v) = obj["apiVersion"].as_str()
        && !v.is_empty()
        && v != kind.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            kind.api_version()
        )));
    }
    if let Some(k) = obj["kind"].as_str()
        && !k.is_empty()
        && k != kind.kind()
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            kind.kind()
        )));
    }
    Ok(())
}

fn apply_update(kind: Kind, sub: Sub, mut new: Value, current: &Arc<Obj>) -> Result<Write, ApiError> {
    if !new.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    let current_rv = current.rv.to_string();
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && rv != current_rv
    {
        return Err(ApiError::stale(kind, &current.key.name));
    }
    new["apiVersion"] = json!(kind.api_version());
    new["kind"] = json!(kind.kind());
    new["metadata"]["name"] = json!(current.key.name);
    if kind.namespaced() {
        new["metadata"]["namespace"] = json!(current.key.namespace);
    }
    kinds::prepare_update(kind, sub, &mut new, &current.value());
    kinds::validate_update(kind, sub, &new, &current.value())?;
    if is_finalized(&new) {
        return Ok(Write::Delete);
    }
    new["metadata"]["resourceVersion"] = json!(current_rv);
    if new == current.value() { Ok(Write::Unchanged) } else { Ok(Write::Put(new)) }
}

/// An object marked for deletion whose last finalizer is gone and whose grace
/// period is over leaves the store on its next write.
fn is_finalized(v: &Value) -> bool {
    let meta = &v["metadata"];
    !meta["deletionTimestamp"].is_null()
        && meta["finalizers"].as_array().is_none_or(|f| f.is_empty())
        && meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
        && v["spec"]["finalizers"].as_array().is_none_or(|f| f.is_empty())
}

fn check_preconditions(kind: Kind, key: &ObjKey, opts: &DeleteOptions, current: &Obj) -> Result<(), ApiError> {
    if let Some(uid) = &opts.precondition_uid
        && uid != current.uid()
    {
        return Err(ApiError::conflict(
            kind,
            &key.name,
            &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", current.uid()),
        ));
    }
    if let Some(rv) = &opts.precondition_resource_version
        && *rv != current.rv.to_string()
    {
        return Err(ApiError::conflict(
            kind,
            &key.name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                current.rv
            ),
        ));
    }
    Ok(())
}

fn delete_decision(kind: Kind, opts: &DeleteOptions, current: &Obj) -> Result<Write, ApiError> {
    let v = &current.value();
    let meta = &v["metadata"];
    let has_finalizers = meta["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    let already = !meta["deletionTimestamp"].is_null();
    let now = time::now();
    match kind {
        Kind::Pod => {
            let mut grace =
                opts.grace_period_seconds.or_else(|| v["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30);
            if grace < 0 {
                grace = 1;
            }
            let phase = v["status"]["phase"].as_str().unwrap_or("");
            let unscheduled = v["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
            if unscheduled || phase == "Succeeded" || phase == "Failed" {
                grace = 0;
            }
            if already && grace >= meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) {
                return Ok(Write::Unchanged);
            }
            if grace == 0 && !has_finalizers {
                return Ok(Write::Delete);
            }
            let mut new = v.clone();
            let when = now.checked_add(jiff::SignedDuration::from_secs(grace)).unwrap_or(now);
            new["metadata"]["deletionTimestamp"] = json!(time::format_time(when));
            new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            Ok(Write::Put(new))
        }
        Kind::Namespace => {
            if already {
                return Ok(Write::Unchanged);
            }
            let mut new = v.clone();
            new["metadata"]["deletionTimestamp"] = json!(time::format_time(now));
            new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            new["status"]["phase"] = json!("Terminating");
            Ok(Write::Put(new))
        }
        _ => {
            if !has_finalizers {
                return Ok(Write::Delete);
            }
            if already {
                return Ok(Write::Unchanged);
            }
            let mut new = v.clone();
            new["metadata"]["deletionTimestamp"] = json!(time::format_time(now));
            new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            Ok(Write::Put(new))
        }
    }
}
