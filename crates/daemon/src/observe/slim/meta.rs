//! Object metadata as the watches keep it: no managed fields (most of a
//! small object's bytes), and only the annotations the conversion reads —
//! the others (`kubectl.kubernetes.io/last-applied-configuration` alone can
//! be kilobytes) are skipped by key, their values never allocated.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

/// Which annotations of a kind are worth keeping.
pub(super) trait KeptAnnotations {
    fn keep(key: &str) -> bool;
}

pub(super) struct PodAnnotations;
pub(super) struct NodeAnnotations;
/// For kinds whose annotations nothing reads (PodDisruptionBudgets, ReplicaSets).
pub(super) struct NoAnnotations;

impl KeptAnnotations for PodAnnotations {
    fn keep(key: &str) -> bool {
        crate::observe::convert::pod_annotation_kept(key)
            || crate::vpa::upstream::annotation_kept(key)
            || key == crate::admission::ANNOTATION
    }
}

impl KeptAnnotations for NoAnnotations {
    fn keep(_: &str) -> bool {
        false
    }
}

impl KeptAnnotations for NodeAnnotations {
    fn keep(key: &str) -> bool {
        crate::observe::convert::annotation_kept(key)
    }
}

/// The metadata fields the watcher (`resourceVersion`), the store (keys) and
/// the conversion read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound = "")]
struct Meta<K: KeptAnnotations> {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    /// A budget's spec generation, against the disruption controller's
    /// `observedGeneration`.
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Kept<K>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

impl<K: KeptAnnotations> From<Meta<K>> for ObjectMeta {
    fn from(m: Meta<K>) -> Self {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            labels: m.labels,
            annotations: m.annotations.0,
            owner_references: m.owner_references,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        }
    }
}

/// `deserialize_with` for a slim type's `metadata`.
pub(super) fn object_meta<'de, K: KeptAnnotations, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    Meta::<K>::deserialize(d).map(ObjectMeta::from)
}

/// The kept annotations (`None` when the object has none at all, as the API
/// server sends it).
struct Kept<K>(Option<BTreeMap<String, String>>, PhantomData<K>);

impl<K> Default for Kept<K> {
    fn default() -> Self {
        Kept(None, PhantomData)
    }
}

impl<'de, K: KeptAnnotations> Deserialize<'de> for Kept<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(KeptVisitor::<K>(PhantomData))
    }
}

struct KeptVisitor<K>(PhantomData<K>);

impl<'de, K: KeptAnnotations> Visitor<'de> for KeptVisitor<K> {
    type Value = Kept<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of annotations")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Kept::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Kept::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if K::keep(&key) {
                kept.insert(key, map.next_value::<String>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        // An object with annotations, none of them kept, reads as one with an
        // empty map: both mean "none of ours" to the conversion.
        Ok(Kept(Some(kept), PhantomData))
    }
}
