//! The `heatscaler` binary: argument parsing and exit codes around the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (the `_rjem_` prefix is
/// tikv-jemalloc-sys's). Freed pages go back to the system within a second
/// (default: 10 s) and a background thread does it even while the daemon
/// idles between passes: the first list of 150,000 pods grows the pod table
/// step by step, each step freeing the buffer it copied from, and those pages
/// counted in the peak while they waited for decay (issue 22).
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: Option<&'static std::ffi::c_char> = Some({
    const CONF: &std::ffi::CStr = c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
    // SAFETY: a pointer to the first byte of a NUL-terminated static string.
    unsafe { &*CONF.as_ptr() }
});

fn main() -> ExitCode {
    // The memory benchmark measures each cluster size in a fresh process:
    // this program, started again by `heatscaler bench` with an environment
    // variable set. Not a command: nothing on the command line leads there.
    #[cfg(feature = "simulator")]
    if let Some(code) = heatscaler_sim::bench::serve_child() {
        return code;
    }
    cli::run(cli::Cli::parse())
}
