//! Subresources with behaviour of their own: pods/eviction, pods/binding,
//! {deployments,replicasets}/scale and nodes/proxy (kubelet stats).
//! pods/resize is a write path (see `kinds::Sub::Resize`) acted on by the kubelet model.

pub mod binding;
pub mod eviction;
pub mod scale;
pub mod stats;
