//! VerticalPodAutoscaler objects (`autoscaling.k8s.io/v1`), so users keep
//! their VPA manifests: the API types, which objects heatscaler handles and
//! what they mean to the planner, the status it writes back, how the pod
//! `resize` subresource is driven, and how the kubelet's answer is read back.
//!
//! The pure parts (`api`, `convert`, `status`, `pod`) do no I/O; `client`
//! holds the few calls the daemon makes through kube-rs; `checkpoint` saves
//! the recommender's history in VPA's checkpoint objects. See
//! `docs/pod-resizing.md` for the order the daemon calls them in.

pub mod api;
pub mod checkpoint;
pub mod client;
pub mod convert;
pub mod pod;
pub mod status;
#[cfg(test)]
mod tests;
pub mod upstream;

pub use api::VerticalPodAutoscaler;
pub use checkpoint::VerticalPodAutoscalerCheckpoint;
pub use convert::{
    ConfigUnsupported, SUPPORTED_TARGET_KINDS, UnsupportedField, handled_by, published_recommendations, to_model,
    unsupported_fields,
};
pub use pod::{allocated_requests, resize_state};
pub use status::{StatusUpdate, next_status, status_patch};
