//! Everything that needs a real Keystone + Heat, in one test binary, so one
//! OpenStack is started for all of it (`tests/support/openstack.rs`, with the
//! scripts beside this file) and the crates are linked once:
//!
//! - [`openstack`]: the session, the Heat client and the two node-group
//!   backends against the real Heat API;
//! - the end-to-end scenarios: `heatscaler run` as a child process against
//!   that Heat and, each, its own real Kubernetes control plane
//!   (`tests/support/kubernetes.rs`) with emulated kubelets — [`e2e`] (growing
//!   and shrinking, failures, drift, crashes), [`ha`] (leader election, alert
//!   sinks), [`placement`] (extended resources, pod affinity, topology
//!   spread), [`drain`] (DaemonSets, PDBs, a dead minion), [`resize`] (in-place
//!   pod resize through real admission), [`unified`] (both levels together
//!   with pod resizing on: a shrink that avoids a scale-up, an outgrown pod
//!   moved to a new minion through VPA's admission controller, an hour of
//!   mixed load in scaled time); a few at a time (`harness::slot`);
//! - [`on_kubesim`]: the scenarios that need kubesim instead (1,000 nodes;
//!   the same scenario timed on both, for docs/testing.md);
//! - [`chaos`]: the `#[ignore]`d chaos soak (20 minutes of random load and
//!   faults, invariants checked throughout; docs/reliability.md).
//!
//! `cargo test --test openstack e2e::` runs one module. Every log line of this
//! process is captured at TRACE (`openstack::logs`), so the no-secret-in-logs
//! checks cover all of it.

#[path = "../support/e2e/mod.rs"]
mod harness;
#[path = "../support/kubernetes.rs"]
mod kubernetes;
#[path = "../support/openstack.rs"]
mod support;

mod chaos;
mod drain;
mod e2e;
mod ha;
mod on_kubesim;
mod openstack;
mod placement;
mod resize;
mod unified;
