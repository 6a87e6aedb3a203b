//! What the pod, node, namespace, PodDisruptionBudget and ReplicaSet watches decode list
//! pages and watch events into: only the fields [`super::convert`] reads, so no
//! full API object is ever held for a pod, a node, a budget or a ReplicaSet.
//!
//! A kube-apiserver Pod is several kilobytes of JSON — managed fields, the
//! environment, probes, volume mounts, images, last-applied annotations —
//! and a page of 500 decoded as `k8s_openapi` objects was the daemon's peak
//! at 150,000 pods (issue 22). serde skips everything these types do not
//! name without allocating it; unwanted annotations are skipped by key.
//!
//! Each type implements [`kube::Resource`] for `Api<K>` and the watcher, and
//! turns into its `k8s_openapi` type with only these fields set
//! ([`Pod::into_api`]), so one conversion ([`super::convert::pod`]) serves the
//! watches, the actuator's fresh reads and the resize client alike. The
//! conversion test (`convert/tests.rs`) decodes real API server objects both
//! ways and fails when a field the model reads is not decoded here.

/// `impl kube::Resource` for a slim type of a built-in kind (`""` is the core group).
macro_rules! builtin_resource {
    ($ty:ty, $group:literal, $version:literal, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
use builtin_resource;

mod meta;
mod namespace;
mod node;
mod pdb;
mod pod;
mod replica_set;

pub use namespace::Namespace;
pub use node::Node;
pub use pdb::PodDisruptionBudget;
pub use pod::Pod;
pub use replica_set::ReplicaSet;
