//! Runs at the design scale, ignored by default: they measure and print
//! (memory, planning time) rather than assert a bound, and take minutes.
//! Each module says how to run it, e.g.
//!
//! ```text
//! cargo test --release --test scale daemon_scale -- --ignored --nocapture
//! ```
//!
//! The binary's global allocator counts live heap bytes for `store_scale`
//! (jemalloc underneath, as in the daemon).

#[path = "../support/e2e/daemon.rs"]
mod daemon_process;

mod daemon_scale;
mod resize_scale;
mod store_scale;
