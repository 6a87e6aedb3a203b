//! From Kubernetes API objects to the compact model the planner reads.
//!
//! Pure functions, called once per object as it arrives from a watch: the
//! full API object is dropped right after, so the daemon's memory grows with
//! what decisions need, not with what the API server sends (a pod's managed
//! fields, status history and environment are most of its bytes).

mod node;
mod pdb;
mod pod;
mod replica_set;
mod selectors;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use heatscaler_core::model::{Resources, Timestamp, quantity};

pub use node::{annotation_kept, kubelet_address, node};
pub use pdb::pdb;
pub use pod::annotation_kept as pod_annotation_kept;
pub use pod::{is_workload_pod, owner, pod, template, workload};
pub use replica_set::{ReplicaSet, replica_set};
pub use selectors::label_selector;

/// A resource list as integers. An invalid quantity (the API server rejects
/// them, so only a hand-made object carries one) counts as zero.
fn resources(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
    let mut r = Resources::default();
    for (name, q) in list.into_iter().flatten() {
        let amount = if name == Resources::CPU { quantity::parse_milli(&q.0) } else { quantity::parse_units(&q.0) };
        match amount {
            Ok(amount) => r.set(name, amount),
            Err(e) => tracing::debug!(resource = %name, error = %e, "ignoring an invalid quantity"),
        }
    }
    r
}

fn time(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.map(|t| t.0)
}
