//! The `heatscaler` binary: argument parsing and exit codes around the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
