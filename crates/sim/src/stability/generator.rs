//! Random mixed scenarios from a seed, written as scenario YAML (so a
//! failing seed prints the very file that reproduces it with `heatscaler
//! simulate`): one to three node groups of different shapes, two to five
//! workloads whose replica counts grow, shrink or stay, some behind a PDB,
//! most with a VPA object (`Recreate` or `InPlaceOrRecreate`) whose per-replica
//! usage steps up or down, bursts, or swings; VPA's admission controller
//! declared or not; `min-update-interval` short or default.

use std::fmt::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Node shapes (cores, GiB); usage is kept within the smallest used.
const SHAPES: [(u32, u32); 3] = [(4, 16), (8, 32), (16, 64)];

/// Simulated time each generated scenario runs.
pub const DURATION_HOURS: u32 = 3;

pub fn generate(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5ab1e);
    let mut y = String::new();
    let admission = rng.random_bool(0.5);
    let interval = if rng.random_bool(0.5) { "60s" } else { "10m" };
    let _ = writeln!(y, "name: stability-{seed}");
    let _ = writeln!(y, "seed: {seed}");
    let _ = writeln!(y, "duration: {DURATION_HOURS}h");
    let _ = writeln!(y, "sample-interval: 10m");
    let _ = writeln!(y, "metrics-interval: 1m");
    let _ = writeln!(
        y,
        "provisioning: {{heat-update: 30s, boot: {{lognormal: {{median: 90s, p99: 4m}}}}, pod-termination: {{uniform: {{min: 1s, max: 10s}}}}}}"
    );
    let _ = writeln!(y, "vpa-admission-controller: {admission}");
    let _ = writeln!(y, "policy:");
    let _ = writeln!(y, "  pod-resize: {{updater: {{min-update-interval: {interval}}}}}");
    let groups = rng.random_range(1..=3usize);
    let mut smallest = u32::MAX;
    let _ = writeln!(y, "node-groups:");
    for g in 0..groups {
        let (cpu, mem) = SHAPES[rng.random_range(0..SHAPES.len())];
        smallest = smallest.min(cpu);
        let min = rng.random_range(0..=1u32);
        let initial = rng.random_range(min.max(1)..=3u32);
        let price = f64::from(cpu) * rng.random_range(0.04..0.06);
        let _ = writeln!(
            y,
            "  - {{name: g{g}, min-size: {min}, max-size: 8, initial-size: {initial}, price-per-hour: {price:.3}, shape: {{allocatable: {{cpu: \"{cpu}\", memory: {mem}Gi}}}}}}"
        );
    }
    let _ = writeln!(y, "daemonsets: [{{name: proxy, requests: {{cpu: 100m, memory: 128Mi}}}}]");
    let _ = writeln!(y, "workloads:");
    let workloads = rng.random_range(2..=5usize);
    // At most this much per replica, so every recommendation fits a minion of the smallest shape.
    let cap_cpu = f64::from(smallest) * 0.55;
    let cap_mem_mi = f64::from(smallest) * 4.0 * 1024.0 * 0.55;
    for w in 0..workloads {
        let cpu_m = rng.random_range(2..=16u32) * 125;
        let mem_mi = rng.random_range(1..=12u32) * 256;
        let limits = match rng.random_range(0..3) {
            0 => String::new(),
            1 => format!(", limits: {{memory: {}Mi}}", mem_mi * 2),
            _ => format!(", limits: {{cpu: {cpu_m}m, memory: {mem_mi}Mi}}"), // Guaranteed
        };
        let _ = writeln!(y, "  - name: w{w}");
        let _ = writeln!(
            y,
            "    pod: {{containers: [{{name: app, requests: {{cpu: {cpu_m}m, memory: {mem_mi}Mi}}{limits}}}]}}"
        );
        let r0 = rng.random_range(1..=6u32);
        let replicas = match rng.random_range(0..3) {
            0 => format!("{r0}"),
            1 => {
                let at = rng.random_range(20..=120u32);
                let r1 = rng.random_range(1..=8u32);
                format!("{{steps: [{{at: 0s, value: {r0}}}, {{at: {at}m, value: {r1}}}]}}")
            }
            _ => {
                let (a, b) = (rng.random_range(15..=60u32), rng.random_range(70..=150u32));
                let (r1, r2) = (rng.random_range(1..=8u32), rng.random_range(1..=8u32));
                format!("{{steps: [{{at: 0s, value: {r0}}}, {{at: {a}m, value: {r1}}}, {{at: {b}m, value: {r2}}}]}}")
            }
        };
        let _ = writeln!(y, "    replicas: {replicas}");
        if rng.random_bool(0.4) {
            let _ = writeln!(y, "    pdb: {{max-unavailable: 1}}");
        }
        if rng.random_bool(0.75) {
            let mode = if rng.random_bool(0.5) { "InPlaceOrRecreate" } else { "Recreate" };
            let base = f64::from(cpu_m) / 1000.0;
            let level = |rng: &mut ChaCha8Rng, cap: f64| (base * rng.random_range(0.3..2.5)).min(cap);
            let cpu = signal(&mut rng, |r| level(r, cap_cpu), "");
            let mem_base = f64::from(mem_mi);
            let mem_level = |rng: &mut ChaCha8Rng| (mem_base * rng.random_range(0.4..1.8)).min(cap_mem_mi).round();
            let memory = signal(&mut rng, mem_level, "Mi");
            let _ = writeln!(y, "    vpa: {{update-mode: {mode}, cpu: {cpu}, memory: {memory}, noise: 0.05}}");
        }
    }
    y
}

/// A usage signal: constant, a step up or down, bursts, or a swing.
fn signal(rng: &mut ChaCha8Rng, mut level: impl FnMut(&mut ChaCha8Rng) -> f64, unit: &str) -> String {
    let (x, z) = (level(rng), level(rng));
    let f = |v: f64| if unit.is_empty() { format!("{v:.3}") } else { format!("{v}{unit}") };
    let (lo, hi) = (f(x.min(z)), f(x.max(z)));
    match rng.random_range(0..4) {
        0 => f(x),
        1 => format!("{{step: {{before: {}, after: {}, at: {}m}}}}", f(x), f(z), rng.random_range(10..=150u32)),
        2 => format!(
            "{{bursty: {{base: {lo}, peak: {hi}, every: {}m, lasting: {}m}}}}",
            rng.random_range(30..=90u32),
            rng.random_range(5..=20u32)
        ),
        _ => format!("{{square: {{low: {lo}, high: {hi}, period: {}m, duty: 0.5}}}}", rng.random_range(40..=120u32)),
    }
}
