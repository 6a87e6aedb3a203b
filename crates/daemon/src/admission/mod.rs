//! heatscaler's own mutating admission webhook: VPA's third part. A pod
//! created for a workload whose VPA object heatscaler handles gets the
//! recommendation's requests at creation, as VPA's admission controller gives
//! it — so a pod recreated by a drain or an eviction comes back at its
//! recommendation, `updateMode: Initial` works, and the planner may count on
//! both (`Snapshot::admission_applies_recommendations`).
//!
//! - [`mutation`]: the change to one pod (pure; shares its decision with the
//!   planner's model through `recommender::admitted`).

pub mod mutation;

pub use mutation::{ANNOTATION, Mutation, admitted_by, mutation};
