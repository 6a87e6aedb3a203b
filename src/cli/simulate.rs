use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use heatscaler::config::Duration;
use heatscaler::sim::display::{Timelines, View};
use heatscaler::sim::{self, PolicyKind, Scenario};

/// Arguments of `heatscaler simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file; the embedded php-apache walk-through when omitted (or,
    /// with --trace, one group of 8-vCPU / 32 GiB minions).
    scenario: Option<PathBuf>,
    /// Replay a trace file (CSV of pod starts, usage and ends; format in
    /// docs/simulator.md) in the scenario. Repeatable.
    #[arg(long, value_name = "FILE")]
    trace: Vec<PathBuf>,
    /// Policies to run side by side on the same demand, seed and provisioning
    /// model: `heatscaler`, `ca-defaults` (cluster-autoscaler's documented
    /// defaults, re-implemented).
    #[arg(long, value_delimiter = ',', default_value = "heatscaler,ca-defaults", value_parser = policy)]
    policy: Vec<PolicyKind>,
    /// Print the report as JSON (per policy: summary, timeline, sampled series).
    #[arg(long)]
    json: bool,
    /// Write an SVG plot of minions (or cost per hour) against the fluid
    /// lower bound and the demand over time, one line per policy.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Print every run's timeline, however long.
    #[arg(long)]
    timeline: bool,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the simulated duration (`36h`, `7d`).
    #[arg(long)]
    duration: Option<Duration>,
}

fn policy(name: &str) -> Result<PolicyKind, String> {
    PolicyKind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown policy `{name}` (known: {})", known.join(", "))
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = match &args.scenario {
        Some(path) => Scenario::load(path),
        None if !args.trace.is_empty() => {
            Scenario::parse(sim::scenario::TRACE_CLUSTER, "<embedded trace-cluster.yaml>")
        }
        None => Scenario::parse(sim::PHP_APACHE, "<embedded php-apache.yaml>"),
    };
    let mut scenario = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut trace_end = std::time::Duration::ZERO;
    for file in &args.trace {
        match scenario.add_trace(file) {
            Ok(end) => trace_end = trace_end.max(end),
            Err(problems) => {
                eprintln!("invalid trace {}:", file.display());
                for p in problems {
                    eprintln!("  - {p}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    match args.duration {
        Some(d) => scenario.duration = d,
        None if args.scenario.is_none() && !args.trace.is_empty() => {
            scenario.duration = Duration(trace_end.max(std::time::Duration::from_secs(60)));
        }
        None => {}
    }
    let started = Instant::now();
    // A scenario with only a `pod-level:` section has no node level to report.
    let node_level = scenario.pod_level.is_none()
        || !(scenario.nodes.is_empty()
            && scenario.node_groups.is_empty()
            && scenario.workloads.is_empty()
            && scenario.pods.is_empty()
            && scenario.bursts.is_empty()
            && scenario.traces.is_empty());
    let report = match node_level {
        true => Some(sim::compare(&scenario, &args.policy).context("replaying a trace")?),
        false => None,
    };
    let pod_level = scenario.pod_level.as_ref().map(|p| sim::podlevel::run(p, scenario.duration.get(), scenario.seed));
    let took = started.elapsed();
    if let Some(path) = &args.plot {
        let Some(report) = &report else {
            anyhow::bail!("--plot draws the node level, and this scenario has only a pod-level section");
        };
        let svg = sim::plot::svg(report)?;
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        let json = match (&report, &pod_level) {
            (Some(r), None) => serde_json::to_value(r)?,
            (r, p) => serde_json::json!({ "node-level": r, "pod-level": p }),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        if let Some(report) = &report {
            let timelines = if args.timeline { Timelines::All } else { Timelines::Auto };
            print!("{}", View { report, timelines });
        }
        if let Some(pod_level) = &pod_level {
            print!("{pod_level}");
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        let policies = report.as_ref().map_or(0, |r| r.runs.len());
        eprintln!("simulated {policies} policies in {:.0} ms", took.as_secs_f64() * 1000.0);
    }
    Ok(ExitCode::SUCCESS)
}
