//! Everything that needs a real Keystone + Heat, in one test binary, so one
//! OpenStack is started for all of it (`tests/support/openstack.rs`, with the
//! scripts beside this file) and the crates are linked once:
//!
//! - [`openstack`]: the session, the Heat client and the two node-group
//!   backends against the real Heat API;
//! - [`e2e`] and [`ha`]: `heatscaler run` as a child process against kubesim
//!   and that Heat, one scenario at a time (`harness::SERIAL`).
//!
//! `cargo test --test openstack e2e::` runs one module. Every log line of this
//! process is captured at TRACE (`openstack::logs`), so the no-secret-in-logs
//! checks cover all of it.

#[path = "../support/e2e/mod.rs"]
mod harness;
#[path = "../support/openstack.rs"]
mod support;

mod e2e;
mod ha;
mod openstack;
