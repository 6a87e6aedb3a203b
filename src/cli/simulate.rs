use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use heatscaler_core::policy::Duration;
use heatscaler_sim::display::{Timelines, View};
use heatscaler_sim::scenario::{NodeListSpec, default_min_share};
use heatscaler_sim::trace::alibaba_gentd26::{self, Containers};
use heatscaler_sim::trace::{GpuSharing, TraceArg, TraceKind};
use heatscaler_sim::{self as sim, PolicyKind, Scenario};

/// Arguments of `heatscaler simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file; the embedded php-apache walk-through when omitted (or,
    /// with --trace, one group of 8-vCPU / 32 GiB minions).
    scenario: Option<PathBuf>,
    /// Replay a trace: `KIND:FILE` with KIND `csv` (the project's format,
    /// docs/simulator.md; also a plain FILE), `alibaba-openb` (the pod list of
    /// cluster-trace-gpu-v2023) or `alibaba-gentd26` (containers' memory
    /// utilisation, replayed at the pod level). Repeatable. See docs/traces.md.
    #[arg(long, value_name = "KIND:FILE")]
    trace: Vec<TraceArg>,
    /// Node groups from a node list, one per common shape:
    /// `alibaba-openb:openb_node_list_all_node.csv`. Without a scenario they
    /// replace the default trace cluster's group.
    #[arg(long, value_name = "KIND:FILE")]
    node_groups: Option<TraceArg>,
    /// With --node-groups: shapes held by fewer than this share of the
    /// listed nodes are left out.
    #[arg(long, default_value_t = default_min_share(), value_name = "SHARE")]
    min_share: f64,
    /// Price per hour of a group's minion (a flavor), `GROUP=PRICE`;
    /// default: its vCPUs. Repeatable.
    #[arg(long, value_name = "GROUP=PRICE", value_parser = price)]
    price: Vec<(String, f64)>,
    /// Start the replay at this trace time (`119d`, `10310960s`): pods
    /// alive then are running at the start.
    #[arg(long, value_name = "TIME")]
    from: Option<Duration>,
    /// End the replay at this trace time (default: the trace's last row).
    #[arg(long, value_name = "TIME")]
    to: Option<Duration>,
    /// Count, report and leave out trace rows that do not parse, instead of
    /// refusing the trace.
    #[arg(long)]
    skip_bad_rows: bool,
    /// alibaba-gentd26: replay all containers, or those whose id ends in an
    /// even or an odd hex digit.
    #[arg(long, value_enum, default_value_t = Containers::All)]
    containers: Containers,
    /// alibaba-openb: GPU-sharing pods (`gpu_milli`) ask for `shares` of a
    /// GPU (thousandths, on pods and minions alike; the default) or `whole`
    /// GPUs. Overrides the scenario's `gpu-sharing`.
    #[arg(long, value_name = "shares|whole")]
    gpu_sharing: Option<GpuSharing>,
    /// Policies to run side by side on the same demand, seed and provisioning
    /// model: `heatscaler` and the peers, re-implemented — `ca-defaults`
    /// (cluster-autoscaler's documented defaults; with VPA objects, VPA's
    /// defaults beside each peer, blind to each other), `ca-least-waste`,
    /// `ca-price`, `ca-priority-least-waste` (its `--expander` chains) and
    /// `karpenter-like`. Default: all of them. `heatscaler` is heatscaler as
    /// installed, its admission webhook included (new pods at their
    /// recommendation); `heatscaler-no-webhook` is heatscaler configured
    /// without it; `heatscaler-node-level` (pod resizing off) is heatscaler's
    /// node level alone.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "heatscaler,ca-defaults,ca-least-waste,ca-price,ca-priority-least-waste,karpenter-like",
        value_parser = policy
    )]
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
    /// Override one key of heatscaler's `scale-up` or `scale-down` policy
    /// (the scenario's `policy:`; the peers keep their own):
    /// `--set scale-down.unneeded-time=2m`. Repeatable; for measuring a knob
    /// on a trace without writing a scenario (docs/peers.md).
    #[arg(long, value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Override the simulated duration (`36h`, `7d`).
    #[arg(long)]
    duration: Option<Duration>,
    /// Instead of comparing policies, sweep the recommender's frontier:
    /// memory over-provisioning against OOM kills per pod-day for
    /// heatscaler's recommender and the VPA peer's, over target percentiles,
    /// safety margins and histories (docs/recommender.md). One run per point;
    /// --policy is ignored.
    #[arg(long)]
    frontier: bool,
    /// With --frontier: list every point, not only each frontier and the defaults.
    #[arg(long, requires = "frontier")]
    all_points: bool,
    /// With --frontier or --advisor-modes: runs at a time (default: the machine's cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// For a scenario with a `call-graph`: instead of comparing policies, run
    /// heatscaler once per placement-advisor mode (`off,recommend,apply`) and
    /// seed, and print latency, cross-node traffic, node-hours, evictions
    /// and oscillation side by side (docs/co-scheduling.md).
    #[arg(long, value_delimiter = ',', value_name = "MODES", value_parser = advisor_mode)]
    advisor_modes: Vec<heatscaler_core::policy::AdvisorMode>,
    /// Instead of comparing policies, run heatscaler once (the first of
    /// --policy that is `heatscaler` or `heatscaler-node-level`) and print
    /// the planner's explanation of the first decision pass at or after each
    /// of these times since the start (`1h30m,6h`): each node's requests and
    /// scale-down verdict, the pass's notes, pod decisions and actions — what
    /// `heatscaler explain` prints for a live cluster (docs/simulator.md).
    #[arg(long, value_delimiter = ',', value_name = "TIMES")]
    explain_at: Vec<Duration>,
    /// With --advisor-modes: the seeds (default: the scenario's).
    #[arg(long, value_delimiter = ',', value_name = "SEEDS", requires = "advisor_modes")]
    seeds: Vec<u64>,
}

fn advisor_mode(text: &str) -> Result<heatscaler_core::policy::AdvisorMode, String> {
    use heatscaler_core::policy::AdvisorMode;
    match text {
        "off" => Ok(AdvisorMode::Off),
        "recommend" => Ok(AdvisorMode::Recommend),
        "apply" => Ok(AdvisorMode::Apply),
        _ => Err(format!("unknown advisor mode `{text}` (known: off, recommend, apply)")),
    }
}

fn price(text: &str) -> Result<(String, f64), String> {
    let (group, price) = text.split_once('=').ok_or_else(|| format!("`{text}` is not GROUP=PRICE"))?;
    let price: f64 = price
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("`{price}` is not a price per hour ≥ 0"))?;
    Ok((group.to_string(), price))
}

fn policy(name: &str) -> Result<PolicyKind, String> {
    PolicyKind::parse(name).ok_or_else(|| {
        let known: Vec<&str> = PolicyKind::KNOWN.iter().map(|k| k.name()).collect();
        format!("unknown policy `{name}` (known: {})", known.join(", "))
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let node_traces = args.trace.iter().any(|t| t.kind.node_level());
    let loaded = match &args.scenario {
        Some(path) => Scenario::load(path),
        None if node_traces || args.node_groups.is_some() => {
            Scenario::parse(sim::scenario::TRACE_CLUSTER, "<embedded trace-cluster.yaml>")
        }
        None if !args.trace.is_empty() => Scenario::parse(sim::scenario::POD_LEVEL_ONLY, "<pod-level replay>"),
        None => Scenario::parse(sim::PHP_APACHE, "<embedded php-apache.yaml>"),
    };
    let mut scenario = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Some(g) = args.gpu_sharing {
        if !scenario.node_groups_from.is_empty() && scenario.gpu_sharing != g {
            eprintln!(
                "--gpu-sharing {}: the scenario's node-groups-from were made with gpu-sharing: {}; set it in the \
                 scenario instead",
                g.name(),
                scenario.gpu_sharing.name()
            );
            return Ok(ExitCode::FAILURE);
        }
        scenario.gpu_sharing = g;
    }
    if let Some(list) = &args.node_groups {
        if args.scenario.is_none() {
            scenario.node_groups.clear();
            scenario.name = "trace-replay".into();
            scenario.description = Some(format!("traces replayed on the node groups of {}", list.path.display()));
        }
        let spec = NodeListSpec {
            kind: list.kind,
            file: list.path.clone(),
            min_share: args.min_share,
            prices: Default::default(),
        };
        if let Err(problem) = scenario.add_node_list(&spec, std::path::Path::new("")) {
            eprintln!("invalid --node-groups {}: {problem}", list.path.display());
            return Ok(ExitCode::FAILURE);
        }
    }
    for (group, price) in &args.price {
        let Some(g) = scenario.node_groups.iter_mut().find(|g| &g.name == group) else {
            let known: Vec<&str> = scenario.node_groups.iter().map(|g| g.name.as_str()).collect();
            eprintln!("--price {group}=...: no group `{group}` (groups: {})", known.join(", "));
            return Ok(ExitCode::FAILURE);
        };
        g.price_per_hour = Some(*price);
    }
    let from = args.from.map_or(std::time::Duration::ZERO, |d| d.get());
    if args.from.is_some() {
        for t in &mut scenario.traces {
            t.start = Duration(from);
        }
    }
    let mut trace_end = std::time::Duration::ZERO;
    for arg in &args.trace {
        if arg.kind == TraceKind::AlibabaGentd26 {
            match alibaba_gentd26::read(&arg.path, args.containers, args.skip_bad_rows) {
                Ok(read) => {
                    report_skipped(&arg.path, read.skipped, &read.skipped_examples);
                    eprintln!(
                        "{}: {} container series replayed ({} with fewer than {} samples left out{})",
                        arg.path.display(),
                        read.series.len(),
                        read.too_short,
                        alibaba_gentd26::MIN_SAMPLES,
                        match args.containers {
                            Containers::All => String::new(),
                            _ => format!(", {} of the other half", read.other_half),
                        }
                    );
                    let longest = read.series.iter().map(|s| s.span()).max().unwrap_or_default();
                    trace_end = trace_end.max(longest + std::time::Duration::from_secs(60));
                    if let Err(problems) = scenario.add_workloads(sim::scenario::gentd26_workloads(&read.series)) {
                        eprintln!("the workloads of {} do not fit the scenario:", arg.path.display());
                        for p in problems {
                            eprintln!("  - {p}");
                        }
                        return Ok(ExitCode::FAILURE);
                    }
                }
                Err(problems) => {
                    eprintln!("invalid trace {}:", arg.path.display());
                    for p in problems {
                        eprintln!("  - {p}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
            }
            continue;
        }
        match scenario.add_trace(arg, from, args.skip_bad_rows) {
            Ok(checked) => {
                report_skipped(&arg.path, checked.skipped, &checked.skipped_examples);
                trace_end = trace_end.max(checked.last);
            }
            Err(problems) => {
                eprintln!("invalid trace {}:", arg.path.display());
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
    for assignment in &args.set {
        let applied = match assignment.split_once('=') {
            Some((key, value)) => scenario.policy.set(key.trim(), value.trim()),
            None => Err(format!("`{assignment}` is not SECTION.KEY=VALUE")),
        };
        if let Err(problem) = applied {
            eprintln!("--set {problem}");
            return Ok(ExitCode::FAILURE);
        }
    }
    match (args.duration, args.to) {
        (Some(d), _) => scenario.duration = d,
        (None, Some(to)) if to.get() > from => scenario.duration = Duration(to.get() - from),
        (None, Some(to)) => anyhow::bail!("--to {to} is not after --from {}", Duration(from)),
        (None, None) if args.scenario.is_none() && !args.trace.is_empty() => {
            let length = if node_traces { trace_end.saturating_sub(from) } else { trace_end };
            scenario.duration = Duration(length.max(std::time::Duration::from_secs(60)));
        }
        (None, None) => {}
    }
    if args.frontier {
        return frontier(&scenario, &args);
    }
    if !args.advisor_modes.is_empty() {
        return advisor_sweep(&scenario, &args);
    }
    if !args.explain_at.is_empty() {
        return explain_at(&scenario, &args);
    }
    let started = Instant::now();
    let progress = super::progress::Display::new(super::progress::wanted_here(), &args.policy[..]);
    let report = sim::compare_with_progress(&scenario, &args.policy, &progress).context("replaying a trace")?;
    progress.finish();
    let took = started.elapsed();
    if let Some(path) = &args.plot {
        let svg = sim::plot::svg(&report, &caption(&args, from))?;
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let timelines = if args.timeline { Timelines::All } else { Timelines::Auto };
        print!("{}", View { report: &report, timelines });
        std::io::Write::flush(&mut std::io::stdout())?;
        eprintln!("simulated {} policies in {:.0} ms", report.runs.len(), took.as_secs_f64() * 1000.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--frontier`: the sweep's table on stdout, its cost on stderr.
fn frontier(scenario: &Scenario, args: &Args) -> anyhow::Result<ExitCode> {
    use heatscaler_sim::frontier::{self, Grid, Recommender};
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let points =
        frontier::sweep(scenario, &Grid::standard(), &[Recommender::Heatscaler, Recommender::VpaPeer], threads)
            .context("sweeping the recommender's frontier")?;
    print!("{}", frontier::table(&points, args.all_points));
    std::io::Write::flush(&mut std::io::stdout())?;
    eprintln!("{} runs in {:.1} s ({threads} at a time)", points.len(), started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// `--advisor-modes`: the call graph's table on stdout, its cost on stderr.
fn advisor_sweep(scenario: &Scenario, args: &Args) -> anyhow::Result<ExitCode> {
    use heatscaler_sim::co_scheduling as sweep;
    if scenario.call_graph.is_none() {
        anyhow::bail!("--advisor-modes needs a scenario with a `call-graph` section");
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seeds = if args.seeds.is_empty() { vec![scenario.seed] } else { args.seeds.clone() };
    let started = Instant::now();
    let rows = sweep::sweep(scenario, &args.advisor_modes, &seeds, threads).context("running the call graph")?;
    println!("scenario {} ({} simulated per run)", scenario.name, scenario.duration);
    print!("{}", sweep::table(&rows));
    std::io::Write::flush(&mut std::io::stdout())?;
    eprintln!("{} runs in {:.1} s ({threads} at a time)", rows.len(), started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// `--explain-at`: heatscaler's explained passes on stdout, the run's
/// node-hours after them (the same run as the comparison's, same seed).
fn explain_at(scenario: &Scenario, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(&kind) = args.policy.iter().find(|k| {
        matches!(k, PolicyKind::HeatscalerNoWebhook | PolicyKind::HeatscalerNodeLevel | PolicyKind::Heatscaler)
    }) else {
        anyhow::bail!(
            "--explain-at explains heatscaler's passes: --policy names none of heatscaler, heatscaler-node-level, heatscaler-no-webhook"
        );
    };
    let at: Vec<std::time::Duration> = args.explain_at.iter().map(|d| d.get()).collect();
    let started = Instant::now();
    let (run, passes) = sim::run_explained(scenario, kind, &at).context("replaying a trace")?;
    println!("{} on {} ({} simulated)", kind.name(), scenario.name, scenario.duration);
    for pass in &passes {
        println!();
        print!("{pass}");
    }
    let missed: Vec<String> =
        at.iter().filter(|t| !passes.iter().any(|p| p.asked.contains(t))).map(|t| Duration(*t).to_string()).collect();
    if !missed.is_empty() {
        println!("\nno pass at or after {} (the run ended first)", missed.join(", "));
    }
    println!("\nnode-hours {:.2} over the run", run.node_level.node_hours);
    std::io::Write::flush(&mut std::io::stdout())?;
    eprintln!("simulated and explained in {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    Ok(ExitCode::SUCCESS)
}

/// What the plot's title names: the trace files replayed (by file name)
/// or the scenario file, and where the window starts in trace time.
fn caption(args: &Args, from: std::time::Duration) -> sim::plot::Caption {
    let name =
        |p: &std::path::Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into());
    let mut sources: Vec<String> = args.trace.iter().map(|t| name(&t.path)).collect();
    if let Some(scenario) = &args.scenario {
        sources.insert(0, name(scenario));
    }
    sim::plot::Caption { source: sources.join(" + "), start_secs: from.as_secs_f64() }
}

/// Says how many bad rows `--skip-bad-rows` left out, with the first few.
fn report_skipped(path: &std::path::Path, skipped: u64, examples: &[heatscaler_sim::TraceError]) {
    if skipped == 0 {
        return;
    }
    eprintln!("{}: {skipped} bad row(s) skipped (--skip-bad-rows), the first:", path.display());
    for e in examples {
        eprintln!("  - {e}");
    }
}
