//! `simulate` and `bench` in a build without the `simulator` feature (the
//! daemon as installed on a master or in the cluster, built with
//! `--no-default-features`): they remain commands, so the answer to typing
//! them is how to get a build that has them, not "unrecognized subcommand".

use std::process::ExitCode;

/// Whatever follows the command; nothing is read.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this heatscaler was built without the simulator (--no-default-features, as installed daemons are): \
         `simulate` and `bench` need the `simulator` feature, on by default — run them from a clone with \
         `cargo run --release -- simulate`, or build with `cargo build --release --features simulator`"
    )
}
