//! heatscaler's own mutating admission webhook: VPA's third part. A pod
//! created for a workload whose VPA object heatscaler handles gets the
//! recommendation's requests at creation, as VPA's admission controller gives
//! it — so a pod recreated by a drain or an eviction comes back at its
//! recommendation, `updateMode: Initial` works, and the planner may count on
//! both (`Snapshot::admission_applies_recommendations`).
//!
//! - [`mutation`]: the change to one pod (pure; shares its decision with the
//!   planner's model through `recommender::admitted`).
//! - [`review`]: one `AdmissionReview` → the pod's workload and VPA object →
//!   the answer (always `allowed`).
//! - [`server`]: the HTTPS listener (`POST /mutate-pods`).
//! - [`certificate`]: its own CA and serving certificate when the operator
//!   gives none, kept in the state directory and renewed.
//! - [`registration`]: the `MutatingWebhookConfiguration` the daemon writes.
//! - [`upkeep`]: the three together as the daemon runs them.
//! - [`witness`]: whether the API server calls it, from the pods' marks
//!   (the planner stops counting on it when it does not).

pub mod certificate;
pub mod mutation;
pub mod registration;
pub mod review;
pub mod server;
#[cfg(test)]
mod tests;
pub mod upkeep;
pub mod witness;

pub use mutation::{ANNOTATION, Mutation, admitted_by, mutation};
pub use review::{Admitter, Answer};
pub use server::{ServedCertificate, WebhookError, WebhookServer};
