use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use heatscaler::sim::{self, Scenario};

/// Arguments of `heatscaler simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file; the embedded php-apache walk-through when omitted.
    scenario: Option<PathBuf>,
    /// Print the report as JSON (timeline, sampled series, summary).
    #[arg(long)]
    json: bool,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut scenario = match &args.scenario {
        Some(path) => match Scenario::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => Scenario::parse(sim::PHP_APACHE, "<embedded php-apache.yaml>").context("embedded scenario")?,
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let started = Instant::now();
    let report = sim::run(&scenario);
    let took = started.elapsed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        std::io::Write::flush(&mut std::io::stdout())?;
        eprintln!("simulated in {:.0} ms", took.as_secs_f64() * 1000.0);
    }
    Ok(ExitCode::SUCCESS)
}
