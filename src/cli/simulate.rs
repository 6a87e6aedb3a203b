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
    // A scenario with only a `pod-level:` section has no node level to report.
    let node_level = scenario.pod_level.is_none()
        || !(scenario.nodes.is_empty()
            && scenario.node_groups.is_empty()
            && scenario.workloads.is_empty()
            && scenario.pods.is_empty());
    let report = node_level.then(|| sim::run(&scenario));
    let pod_level = scenario.pod_level.as_ref().map(|p| sim::podlevel::run(p, scenario.duration.get(), scenario.seed));
    let took = started.elapsed();
    if args.json {
        let json = match (&report, &pod_level) {
            (Some(r), None) => serde_json::to_value(r)?,
            (r, p) => serde_json::json!({ "node-level": r, "pod-level": p }),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        if let Some(report) = &report {
            print!("{report}");
        }
        if let Some(pod_level) = &pod_level {
            print!("{pod_level}");
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        eprintln!("simulated in {:.0} ms", took.as_secs_f64() * 1000.0);
    }
    Ok(ExitCode::SUCCESS)
}
