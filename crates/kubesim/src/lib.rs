//! kubesim: a Kubernetes API server for tests, faithful enough that kube-rs
//! and the real kubectl work against it — real wire protocol (discovery,
//! lists with selectors and pagination, watches with resourceVersion
//! semantics, bookmarks and 410 Gone, every patch type, optimistic
//! concurrency, Status errors), an in-memory store with a global revision,
//! and a built-in control plane (scheduler, kubelet model with in-place
//! resize, OOM kills and stats, ReplicaSet/Deployment/DaemonSet/disruption
//! controllers, garbage collection).
//!
//! Harnesses start it in-process with [`KubeSim::start`] and steer the
//! simulated cluster through [`KubeSimHandle`]; the code under test only uses
//! HTTP. The `kubesim` binary serves the same for kubectl, with an admin API
//! under `/kubesim/`. See the crate README for semantics and limits.

pub mod api;
mod controllers;
pub mod error;
mod events;
pub mod faults;
mod harness;
mod ids;
mod kinds;
pub mod options;
mod patch;
mod podutil;
pub mod quantity;
mod registry;
mod resources;
mod selectors;
mod sim;
mod store;
mod subresources;
pub mod time;
pub mod usage;

pub use error::ApiError;
pub use faults::FaultRule;
pub use harness::builders::{self, Budget, PodTemplate};
pub use harness::design_scale;
pub use harness::nodes::{NodeSpec, Taint};
pub use harness::{Error, KubeSim, KubeSimHandle, kubeconfig};
pub use options::{Options, Scoring};
pub use usage::{UsageModel, UsageStep, UsageTarget};
