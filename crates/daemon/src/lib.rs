//! heatscaler's daemon: everything between the core's pure planner and the
//! outside world. Data flows one way (`docs/architecture.md`):
//!
//! - [`observe`] turns Kubernetes watches and Heat reads into the core's
//!   `model::Snapshot`; [`usage`] scrapes kubelets for the recommender; [`vpa`]
//!   reads and writes VerticalPodAutoscaler objects.
//! - the core's planner turns a snapshot into actions;
//! - [`act`] carries them out (every write to Kubernetes and Heat), through
//!   [`cloud`] for Keystone and Heat, and records progress on the Kubernetes
//!   objects themselves;
//! - [`alerts`] and [`telemetry`] tell operators what happened;
//! - [`control_loop`] runs it all (`heatscaler run`), with leader election.
//!
//! [`config`] loads and checks the configuration file; its policy sections
//! are the core's types.

pub mod act;
pub mod admission;
pub mod alerts;
pub mod cloud;
pub mod config;
pub mod control_loop;
pub mod files;
#[cfg(test)]
mod fuzz_targets;
mod http_serve;
pub mod observe;
pub mod telemetry;
pub mod usage;
pub mod vpa;
