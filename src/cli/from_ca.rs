//! `heatscaler config from-ca FILE`: a heatscaler configuration from a
//! cluster-autoscaler Deployment's flags (docs/migrating-from-cluster-autoscaler.md).
//! Every flag is either converted (the YAML names it in a comment) or listed
//! on standard error with why not: nothing is dropped silently.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Arguments of `heatscaler config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Convert a cluster-autoscaler Deployment (YAML, as `kubectl get deploy -o yaml` prints it)
    /// into a heatscaler configuration on standard output; flags that have no
    /// equivalent are listed on standard error.
    FromCa {
        /// The Deployment manifest (`-` for standard input).
        file: PathBuf,
    },
}

/// How a flag's value becomes a config value.
#[derive(Clone, Copy)]
enum Kind {
    Duration,
    Seconds,
    Bool,
    Number,
    Text,
}

/// cluster-autoscaler flag → heatscaler key (section, key) and value kind.
const FLAGS: &[(&str, &str, &str, Kind)] = &[
    ("scale-down-enabled", "scale-down", "enabled", Kind::Bool),
    ("scale-down-unneeded-time", "scale-down", "unneeded-time", Kind::Duration),
    ("scale-down-unready-time", "scale-down", "unready-time", Kind::Duration),
    ("scale-down-utilization-threshold", "scale-down", "utilization-threshold", Kind::Number),
    ("scale-down-gpu-utilization-threshold", "scale-down", "gpu-utilization-threshold", Kind::Number),
    ("scale-down-delay-after-add", "scale-down", "delay-after-add", Kind::Duration),
    ("scale-down-delay-after-delete", "scale-down", "delay-after-delete", Kind::Duration),
    ("scale-down-delay-after-failure", "scale-down", "delay-after-failure", Kind::Duration),
    ("max-graceful-termination-sec", "scale-down", "max-graceful-termination", Kind::Seconds),
    ("max-scale-down-parallelism", "scale-down", "max-nodes-per-step", Kind::Number),
    ("max-drain-parallelism", "scale-down", "max-drain-parallelism", Kind::Number),
    ("skip-nodes-with-local-storage", "scale-down", "skip-nodes-with-local-storage", Kind::Bool),
    ("skip-nodes-with-system-pods", "scale-down", "skip-nodes-with-system-pods", Kind::Bool),
    ("skip-nodes-with-custom-controller-pods", "scale-down", "skip-nodes-with-custom-controller-pods", Kind::Bool),
    ("new-pod-scale-up-delay", "scale-up", "new-pod-scale-up-delay", Kind::Duration),
    ("max-node-provision-time", "scale-up", "max-node-provision-time", Kind::Duration),
    ("initial-node-group-backoff-duration", "scale-up", "backoff-initial", Kind::Duration),
    ("max-node-group-backoff-duration", "scale-up", "backoff-max", Kind::Duration),
    ("max-nodes-total", "cluster-limits", "max-nodes-total", Kind::Number),
    ("max-total-unready-percentage", "cluster-limits", "max-total-unready-percentage", Kind::Number),
    ("ok-total-unready-count", "cluster-limits", "ok-total-unready-count", Kind::Number),
    ("balance-similar-node-groups", "scale-up", "balance-similar-node-groups", Kind::Bool),
    ("scan-interval", "daemon", "resync-interval", Kind::Duration),
    ("leader-elect", "leader-election", "enabled", Kind::Bool),
    ("leader-elect-resource-namespace", "leader-election", "namespace", Kind::Text),
    ("leader-elect-resource-name", "leader-election", "lease-name", Kind::Text),
    ("leader-elect-lease-duration", "leader-election", "lease-duration", Kind::Duration),
    ("leader-elect-renew-deadline", "leader-election", "renew-deadline", Kind::Duration),
    ("leader-elect-retry-period", "leader-election", "retry-period", Kind::Duration),
    ("kubeconfig", "kubernetes", "kubeconfig", Kind::Text),
];

/// Flags about cluster-autoscaler's own process (logging, profiling): nothing to carry over.
const PROCESS_FLAGS: &[&str] = &[
    "v",
    "logtostderr",
    "stderrthreshold",
    "alsologtostderr",
    "log-file",
    "profiling",
    "address",
    "write-status-configmap",
];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Command::FromCa { file } = args.command;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("read standard input")?
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?
    };
    let flags = flags_of(&text)?;
    let (yaml, skipped) = convert(&flags);
    print!("{yaml}");
    if !skipped.is_empty() {
        eprintln!("not converted ({}):", skipped.len());
        for (flag, why) in &skipped {
            eprintln!("  --{flag}: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--name=value` / `--name value` flags of the cluster-autoscaler container, in order.
fn flags_of(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut args = Vec::new();
    for doc in text.split("\n---") {
        let v = heatscaler_core::yaml::parse_value(doc).context("the file is not YAML")?;
        let containers =
            v.pointer("/spec/template/spec/containers").and_then(|c| c.as_array()).cloned().unwrap_or_default();
        for c in containers {
            let words: Vec<String> = ["command", "args"]
                .iter()
                .filter_map(|k| c.get(*k).and_then(|a| a.as_array()).cloned())
                .flatten()
                .filter_map(|w| w.as_str().map(str::to_string))
                .collect();
            if words.iter().any(|w| w.contains("cluster-autoscaler") || w.starts_with("--cloud-provider")) {
                args.extend(words);
            }
        }
    }
    if args.is_empty() {
        bail!(
            "no cluster-autoscaler container found (a Deployment whose container command or args run cluster-autoscaler)"
        );
    }
    let mut flags = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(flag) = args[i].strip_prefix("--").or_else(|| args[i].strip_prefix('-').filter(|f| !f.is_empty())) {
            match flag.split_once('=') {
                Some((k, v)) => flags.push((k.to_string(), v.to_string())),
                None if args.get(i + 1).is_some_and(|n| !n.starts_with('-')) => {
                    flags.push((flag.to_string(), args[i + 1].clone()));
                    i += 1;
                }
                None => flags.push((flag.to_string(), "true".into())),
            }
        }
        i += 1;
    }
    Ok(flags)
}

/// The configuration text and the flags not converted, with why.
fn convert(flags: &[(String, String)]) -> (String, Vec<(String, String)>) {
    let mut sections: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut groups = Vec::new();
    let mut skipped = Vec::new();
    let mut ignored_labels: Vec<(String, String)> = Vec::new();
    for (flag, value) in flags {
        if let Some(&(_, section, key, kind)) = FLAGS.iter().find(|(f, ..)| f == flag) {
            match render(value, kind) {
                Some(v) => sections.entry(section).or_default().push(format!("  {key}: {v}    # --{flag}={value}")),
                None => skipped.push((flag.clone(), format!("cannot read `{value}` as {}", kind_name(kind)))),
            }
            continue;
        }
        match flag.as_str() {
            "nodes" => match value.splitn(3, ':').collect::<Vec<_>>()[..] {
                [min, max, name] if min.parse::<u32>().is_ok() && max.parse::<u32>().is_ok() => groups.push(format!(
                    "  - name: {name}    # --nodes={value}\n    stack: SET-ME    # the Heat stack of {name} (`openstack stack list`)\n    \
                     backend: {{kind: resource-group, resource: kube_minions, count-parameter: number_of_minions, removal-parameter: minions_to_remove}}\n    \
                     min-size: {min}\n    max-size: {max}\n"
                )),
                _ => skipped.push((flag.clone(), format!("expected MIN:MAX:NAME, got `{value}`"))),
            },
            "expander" => match value.split(',').next().unwrap_or_default() {
                e @ ("least-waste" | "priority" | "random" | "price") => {
                    sections.entry("scale-up").or_default().push(format!("  expander: {e}    # --expander={value}"))
                }
                other => skipped.push((flag.clone(), format!("expander `{other}` has no equivalent (least-waste, priority, random, price)"))),
            },
            "cores-total" | "memory-total" => match value.split_once(':') {
                Some((min, max)) if max.parse::<u64>().is_ok() => {
                    let (key, v) = if flag == "cores-total" {
                        ("max-cores-total", max.to_string())
                    } else {
                        ("max-memory-total", format!("{max}Gi"))
                    };
                    sections.entry("cluster-limits").or_default().push(format!("  {key}: {v}    # --{flag}={value}"));
                    if min != "0" {
                        skipped.push((flag.clone(), format!("the minimum {min} has no equivalent (only the maximum is kept)")));
                    }
                }
                _ => skipped.push((flag.clone(), format!("expected MIN:MAX, got `{value}`"))),
            },
            "cloud-provider" | "cloud-config" => skipped.push((
                flag.clone(),
                "OpenStack credentials go in the openstack section (or OS_CLOUD / clouds.yaml): see docs/openstack.md".into(),
            )),
            f if PROCESS_FLAGS.contains(&f) => {
                skipped.push((flag.clone(), "cluster-autoscaler's own process setting; HEATSCALER_LOG / telemetry instead".into()))
            }
            // Repeatable: one list key for all of them.
            "balancing-ignore-label" if !value.is_empty() => ignored_labels.push((value.clone(), format!("--{flag}={value}"))),
            _ => skipped.push((flag.clone(), "unknown to heatscaler".into())),
        }
    }
    if !ignored_labels.is_empty() {
        let (labels, from): (Vec<String>, Vec<String>) = ignored_labels.into_iter().unzip();
        let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
        sections.entry("scale-up").or_default().push(format!(
            "  balancing-ignore-labels: [{}]    # {}",
            labels.join(", "),
            from.join(" ")
        ));
    }
    let mut out = String::from(
        "# From a cluster-autoscaler Deployment by `heatscaler config from-ca`; check it with\n# `heatscaler check-config`. Defaults apply to every key not listed.\n",
    );
    out.push_str(
        "openstack: {}    # credentials: OS_CLOUD / clouds.yaml, or auth-url with a credential (docs/openstack.md)\n",
    );
    if !groups.is_empty() {
        out.push_str("node-groups:\n");
        groups.iter().for_each(|g| out.push_str(g));
    }
    for (section, lines) in sections {
        out.push_str(&format!("{section}:\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    (out, skipped)
}

fn render(value: &str, kind: Kind) -> Option<String> {
    match kind {
        Kind::Duration => humantime::parse_duration(value).ok().map(|d| humantime::format_duration(d).to_string()),
        Kind::Seconds => value.parse::<u64>().ok().map(|s| format!("{s}s")),
        Kind::Bool => value.parse::<bool>().ok().map(|b| b.to_string()),
        Kind::Number => value.parse::<f64>().ok().map(|_| value.to_string()),
        Kind::Text => (!value.is_empty()).then(|| format!("{value:?}")),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Duration => "a duration",
        Kind::Seconds => "seconds",
        Kind::Bool => "true or false",
        Kind::Number => "a number",
        Kind::Text => "text",
    }
}
