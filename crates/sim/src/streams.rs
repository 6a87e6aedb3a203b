//! Random streams of the scenario seed. Every random draw that shapes a run
//! comes from a stream of its own, so what one part of the simulation draws
//! never shifts another's draws: every policy run on a scenario gets the same
//! bursts, runtimes and boot times (common random numbers), whatever the
//! policy did. The world's own draws (stack update and pod termination
//! times, which follow what the policy did) take the seed's stream 0.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Streams of the bursty generators, one per generator.
const BURSTS: u64 = 1 << 32;
/// Boot times, one stream per member ever created.
const BOOTS: u64 = 2 << 32;
/// The cluster-autoscaler peer's random expander.
pub const CA_DEFAULTS: u64 = 3 << 32;

/// A random stream of the scenario's seed.
pub fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The stream of the `index`-th bursty generator.
pub fn burst_stream(seed: u64, index: usize) -> ChaCha8Rng {
    stream(seed, BURSTS + index as u64)
}

/// The boot-time stream of the `index`-th member group `group` ever
/// created: the n-th minion of a group boots in the same time under every
/// policy.
pub fn boot_stream(seed: u64, group: usize, index: u32) -> ChaCha8Rng {
    stream(seed, BOOTS + ((group as u64) << 24) + u64::from(index))
}
