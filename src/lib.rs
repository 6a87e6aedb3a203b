//! heatscaler: one daemon that sizes a Kubernetes cluster on OpenStack Heat at
//! both levels at once — minions in Heat-managed node groups, and pod requests
//! resized in place — from one snapshot, by one pure planner.
//!
//! Data flows one way (see `docs/architecture.md`): observers build a
//! [`model::Snapshot`], the planner turns it into actions, the actuator carries
//! them out and records progress on the Kubernetes objects themselves.

pub mod act;
pub mod alerts;
pub mod bench;
pub mod cloud;
pub mod config;
pub mod control_loop;
pub mod model;
pub mod observe;
pub mod planner;
pub mod policy;
pub mod recommender;
pub mod sim;
pub mod telemetry;
pub mod usage;
pub mod vpa;
pub mod yaml;
