use std::process::ExitCode;
use std::time::Duration as StdDuration;

use heatscaler_core::policy::Duration;
use heatscaler_sim::bench::{self, Machine, Options};

/// Arguments of `heatscaler bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster sizes, in nodes (30 workload pods per node).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,5000,10000")]
    sizes: Vec<usize>,
    /// Shares of pods pending in the scale-up measurements.
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.05")]
    pending: Vec<f64>,
    /// Least repetitions of each planner measurement (fast ones repeat more).
    #[arg(long, default_value_t = 7)]
    repetitions: usize,
    /// Simulated time of the simulation-speed run (at most the scenario's week).
    #[arg(long, default_value = "168h")]
    simulated: Duration,
    /// Run only these benchmarks: planner, memory, simulation, harness.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = Options {
        sizes: args.sizes,
        pending: args.pending,
        repetitions: args.repetitions.max(1),
        simulated: StdDuration::max(args.simulated.get(), StdDuration::from_secs(60)),
        program: std::env::current_exe()?,
    };
    let machine = Machine::this();
    if !args.json {
        println!("heatscaler bench on {machine}\n");
    }
    let mut sections = Vec::new();
    for b in bench::all() {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == b.name()) {
            continue;
        }
        let section = b.run(&options)?;
        if !args.json {
            println!("{section}");
        }
        sections.push(section);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "machine": machine, "sections": sections }))?);
    }
    Ok(ExitCode::SUCCESS)
}
