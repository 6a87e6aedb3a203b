//! A small mutation fuzzer for the parsers of untrusted input, run by
//! `cargo test` on stable Rust (cargo-fuzz needs a nightly toolchain, which
//! neither the project's CI nor its developers are required to have).
//!
//! Each target starts from a committed corpus of valid inputs
//! (`tests/fuzz-corpus/<target>/`) and feeds its parser a bounded number of
//! deterministic mutations of them: bytes flipped, inserted, deleted,
//! duplicated, spliced from another seed, and the structural tokens of YAML,
//! JSON and CSV inserted. A panic fails the test with the seed and the input
//! (which becomes a regression test); so does an input that takes longer
//! than its budget. `HEATSCALER_FUZZ_ITERATIONS` and `HEATSCALER_FUZZ_SEED`
//! run longer or other campaigns (docs/testing.md).

use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Mutations per target in a plain `cargo test`.
pub const DEFAULT_ITERATIONS: u64 = 2_000;
/// Longest one input may take to be refused or accepted.
pub const INPUT_BUDGET: Duration = Duration::from_secs(2);

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b": ",
    b",",
    b"-",
    b"- ",
    b"\"",
    b"'",
    b"\n",
    b"  ",
    b"#",
    b"&a",
    b"*a",
    b"!!",
    b"~",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"4294967296",
    b"1e999",
    b"99999999999h",
    b"\\u0000",
    b"\xff",
    b"\r\n",
    b"<<: *a",
    b"---",
    b"|",
    b">",
    b"?",
    b"%",
    b"\t",
    b"=",
];

/// The seeds of `target` under `corpus_root` (every file of its folder).
pub fn corpus(corpus_root: &Path, target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_root.join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).expect("corpus file")).collect();
    assert!(!seeds.is_empty(), "fuzz corpus {} is empty", dir.display());
    seeds
}

/// Runs `parse` on the seeds and on mutations of them. `parse` may return
/// anything (an error is a fine answer to garbage); it must not panic nor
/// take longer than [`INPUT_BUDGET`].
pub fn run(target: &str, seeds: &[Vec<u8>], mut parse: impl FnMut(&[u8])) {
    let iterations =
        std::env::var("HEATSCALER_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_ITERATIONS);
    let seed: u64 = std::env::var("HEATSCALER_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut one = |input: &[u8], i: u64| {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(input)));
        let took = started.elapsed();
        let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned();
        assert!(outcome.is_ok(), "fuzz {target}: panic on input {i} (HEATSCALER_FUZZ_SEED={seed}):\n{shown:?}");
        assert!(
            took <= INPUT_BUDGET,
            "fuzz {target}: input {i} (HEATSCALER_FUZZ_SEED={seed}) took {took:?}:\n{shown:?}"
        );
    };
    for s in seeds {
        one(s, 0);
    }
    for i in 1..=iterations {
        let mut input = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..=8) {
            mutate(&mut input, seeds, &mut rng);
        }
        one(&input, i);
    }
}

fn mutate(input: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut ChaCha8Rng) {
    let at = |rng: &mut ChaCha8Rng, len: usize| if len == 0 { 0 } else { rng.random_range(0..=len) };
    match rng.random_range(0..6) {
        0 if !input.is_empty() => {
            let i = rng.random_range(0..input.len());
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 => {
            let i = at(rng, input.len());
            let token = TOKENS[rng.random_range(0..TOKENS.len())];
            input.splice(i..i, token.iter().copied());
        }
        2 if !input.is_empty() => {
            let i = rng.random_range(0..input.len());
            let n = rng.random_range(1..=(input.len() - i).min(64));
            input.drain(i..i + n);
        }
        3 if !input.is_empty() => {
            let i = rng.random_range(0..input.len());
            let n = rng.random_range(1..=(input.len() - i).min(64));
            let copy = input[i..i + n].to_vec();
            let j = at(rng, input.len());
            input.splice(j..j, copy);
        }
        4 => {
            let other = &seeds[rng.random_range(0..seeds.len())];
            if !other.is_empty() {
                let i = rng.random_range(0..other.len());
                let n = rng.random_range(1..=(other.len() - i).min(256));
                let j = at(rng, input.len());
                input.splice(j..j, other[i..i + n].iter().copied());
            }
        }
        _ => {
            let i = at(rng, input.len());
            input.insert(i, rng.random());
        }
    }
}
