//! Per-pod usage over simulated time: a signal (step, sine, square wave,
//! bursts, a diurnal week) times multiplicative noise. The noise of a replica
//! slot at a sample time is a pure function of (seed, shape, slot, time), so
//! every policy simulated sees exactly the same usage whatever it does to the
//! pods.
//!
//! In a scenario a signal is a plain amount (`300Mi`, `0.5`) or one tagged map:
//! `{step: {before: 200m, after: 1, at: 2d}}`,
//! `{sine: {mean: 500m, amplitude: 300m, period: 6h}}`,
//! `{square: {low: 100m, high: 1, period: 2h, duty: 0.5}}`,
//! `{bursty: {base: 200m, peak: 1500m, every: 3h, lasting: 15m}}`,
//! `{diurnal: {night: 100m, day: 1, weekend: 0.4}}`.

use std::fmt;
use std::time::Duration as StdDuration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

use crate::shapes::Amount;
use heatscaler_core::policy::Duration;

/// A usage level over time (cores, or bytes).
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    Constant(f64),
    /// `before` until `at`, then `after`.
    Step {
        before: f64,
        after: f64,
        at: StdDuration,
    },
    Sine {
        mean: f64,
        amplitude: f64,
        period: StdDuration,
    },
    /// `high` for the first `duty` of every period, `low` for the rest.
    Square {
        low: f64,
        high: f64,
        period: StdDuration,
        duty: f64,
    },
    /// `base`, with bursts to `peak` starting on average `every` apart
    /// (exponential gaps) and `lasting` each.
    Bursty {
        base: f64,
        peak: f64,
        every: StdDuration,
        lasting: StdDuration,
    },
    /// A working day: `night` at 03:00, `day` at 15:00 (cosine in between);
    /// Saturday and Sunday scaled by `weekend`. The simulation starts on a Monday at 00:00.
    Diurnal {
        night: f64,
        day: f64,
        weekend: f64,
    },
    /// Recorded samples `(seconds since the start, level)` in time order,
    /// each holding until the next (a trace; not written in scenarios).
    Series(std::sync::Arc<Vec<(f64, f64)>>),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum Tagged {
    Constant(Amount),
    Step(StepSpec),
    Sine(SineSpec),
    Square(SquareSpec),
    Bursty(BurstySpec),
    Diurnal(DiurnalSpec),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StepSpec {
    before: Amount,
    after: Amount,
    at: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SineSpec {
    mean: Amount,
    amplitude: Amount,
    period: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SquareSpec {
    low: Amount,
    high: Amount,
    period: Duration,
    #[serde(default = "half")]
    duty: f64,
}

fn half() -> f64 {
    0.5
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct BurstySpec {
    base: Amount,
    peak: Amount,
    every: Duration,
    lasting: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct DiurnalSpec {
    night: Amount,
    day: Amount,
    #[serde(default = "one")]
    weekend: f64,
}

fn one() -> f64 {
    1.0
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Signal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount, or one of `step`, `sine`, `square`, `bursty`, `diurnal`")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Signal, E> {
                Ok(Signal::Constant(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Signal, E> {
                Ok(Signal::Constant(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Signal, E> {
                Ok(Signal::Constant(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Signal, E> {
                Amount::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|a| Signal::Constant(a.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Signal, A::Error> {
                Ok(match Tagged::deserialize(MapAccessDeserializer::new(map))? {
                    Tagged::Constant(a) => Signal::Constant(a.0),
                    Tagged::Step(s) => Signal::Step { before: s.before.0, after: s.after.0, at: s.at.get() },
                    Tagged::Sine(s) => {
                        Signal::Sine { mean: s.mean.0, amplitude: s.amplitude.0, period: s.period.get() }
                    }
                    Tagged::Square(s) => {
                        Signal::Square { low: s.low.0, high: s.high.0, period: s.period.get(), duty: s.duty }
                    }
                    Tagged::Bursty(s) => Signal::Bursty {
                        base: s.base.0,
                        peak: s.peak.0,
                        every: s.every.get(),
                        lasting: s.lasting.get(),
                    },
                    Tagged::Diurnal(s) => Signal::Diurnal { night: s.night.0, day: s.day.0, weekend: s.weekend },
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Signal {
    /// What is wrong with it, as `(key path suffix, problem)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut amount = |key: &str, v: f64| {
            if !(v.is_finite() && v >= 0.0) {
                out.push((key.to_string(), format!("{v} must be a finite amount of zero or more")));
            }
        };
        let mut positive = Vec::new();
        match self {
            Signal::Constant(v) => amount("", *v),
            Signal::Step { before, after, .. } => {
                amount(".step.before", *before);
                amount(".step.after", *after);
            }
            Signal::Sine { mean, amplitude, period } => {
                amount(".sine.mean", *mean);
                amount(".sine.amplitude", *amplitude);
                if amplitude > mean {
                    out.push((".sine.amplitude".into(), "is above the mean: usage would go negative".into()));
                }
                positive.push((".sine.period", *period));
            }
            Signal::Square { low, high, period, duty } => {
                amount(".square.low", *low);
                amount(".square.high", *high);
                positive.push((".square.period", *period));
                if !(*duty > 0.0 && *duty < 1.0) {
                    out.push((".square.duty".into(), format!("{duty} is not between 0 and 1")));
                }
            }
            Signal::Bursty { base, peak, every, lasting } => {
                amount(".bursty.base", *base);
                amount(".bursty.peak", *peak);
                positive.push((".bursty.every", *every));
                positive.push((".bursty.lasting", *lasting));
            }
            Signal::Series(samples) => {
                for (_, v) in samples.iter() {
                    amount("", *v);
                }
            }
            Signal::Diurnal { night, day, weekend } => {
                amount(".diurnal.night", *night);
                amount(".diurnal.day", *day);
                amount(".diurnal.weekend", *weekend);
            }
        }
        for (key, d) in positive {
            if d.is_zero() {
                out.push((key.to_string(), "must be longer than zero".into()));
            }
        }
        out
    }
}

/// A signal made ready to read: bursts drawn once (workload-wide: replicas
/// of one service burst together).
#[derive(Clone, Debug)]
pub struct Track {
    signal: Signal,
    /// Burst intervals in seconds since the start, sorted.
    bursts: Vec<(f64, f64)>,
}

impl Track {
    pub fn new(signal: &Signal, horizon: StdDuration, seed: u64) -> Self {
        let mut bursts = Vec::new();
        if let Signal::Bursty { every, lasting, .. } = signal {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let gap = Exp::new(1.0 / every.as_secs_f64()).expect("every is positive (validated)");
            let mut t = gap.sample(&mut rng);
            while t < horizon.as_secs_f64() {
                bursts.push((t, t + lasting.as_secs_f64()));
                t += lasting.as_secs_f64() + gap.sample(&mut rng);
            }
        }
        Self { signal: signal.clone(), bursts }
    }

    /// The level `t` after the start.
    pub fn at(&self, t: StdDuration) -> f64 {
        let secs = t.as_secs_f64();
        let tau = std::f64::consts::TAU;
        match &self.signal {
            Signal::Constant(v) => *v,
            Signal::Step { before, after, at } => {
                if t < *at {
                    *before
                } else {
                    *after
                }
            }
            Signal::Sine { mean, amplitude, period } => mean + amplitude * (tau * secs / period.as_secs_f64()).sin(),
            Signal::Square { low, high, period, duty } => {
                let phase = (secs / period.as_secs_f64()).fract();
                if phase < *duty { *high } else { *low }
            }
            Signal::Bursty { base, peak, .. } => {
                let i = self.bursts.partition_point(|&(start, _)| start <= secs);
                if i > 0 && secs < self.bursts[i - 1].1 { *peak } else { *base }
            }
            Signal::Series(samples) => {
                let i = samples.partition_point(|&(at, _)| at <= secs);
                samples[i.saturating_sub(1)].1
            }
            Signal::Diurnal { night, day, weekend } => {
                let day_secs = 86_400.0;
                let weekday = ((secs / day_secs).floor() as i64).rem_euclid(7); // 0 = Monday
                let hour = (secs % day_secs) / 3600.0;
                // Lowest at 03:00, highest at 15:00.
                let x = 0.5 - 0.5 * (tau * (hour - 3.0) / 24.0).cos();
                let level = night + (day - night) * x;
                if weekday >= 5 { level * weekend } else { level }
            }
        }
    }
}

/// Multiplicative noise `1 + noise × N(0, 1)`, at least zero, as a pure
/// function of its inputs.
pub fn noise_factor(noise: f64, seed: u64, shape: usize, slot: usize, tick: u64, resource: u64) -> f64 {
    if noise == 0.0 {
        return 1.0;
    }
    let mut h = splitmix(seed ^ splitmix(shape as u64 ^ splitmix((slot as u64) << 32 ^ tick ^ (resource << 60))));
    let mut uniform = || {
        h = splitmix(h);
        ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    // Box–Muller.
    let (u1, u2) = (uniform(), uniform());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (1.0 + noise * normal).max(0.0)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn secs(s: u64) -> StdDuration {
        StdDuration::from_secs(s)
    }

    #[test]
    fn signals_follow_their_definition() {
        let step = Track::new(&Signal::Step { before: 1.0, after: 3.0, at: secs(H) }, secs(10 * H), 1);
        assert_eq!((step.at(secs(H - 1)), step.at(secs(H))), (1.0, 3.0));
        let sine = Track::new(&Signal::Sine { mean: 2.0, amplitude: 1.0, period: secs(4 * H) }, secs(H), 1);
        assert!((sine.at(secs(H)) - 3.0).abs() < 1e-9 && (sine.at(secs(3 * H)) - 1.0).abs() < 1e-9);
        let square = Track::new(&Signal::Square { low: 1.0, high: 5.0, period: secs(2 * H), duty: 0.25 }, secs(H), 1);
        assert_eq!((square.at(secs(0)), square.at(secs(H / 2 - 1)), square.at(secs(H))), (5.0, 5.0, 1.0));
        let week = Track::new(&Signal::Diurnal { night: 1.0, day: 3.0, weekend: 0.5 }, secs(H), 1);
        assert!((week.at(secs(3 * H)) - 1.0).abs() < 1e-9, "Monday 03:00");
        assert!((week.at(secs(15 * H)) - 3.0).abs() < 1e-9, "Monday 15:00");
        assert!((week.at(secs(5 * 24 * H + 15 * H)) - 1.5).abs() < 1e-9, "Saturday 15:00");
    }

    #[test]
    fn bursts_are_drawn_once_and_cover_about_their_share() {
        let signal = Signal::Bursty { base: 1.0, peak: 4.0, every: secs(3 * H), lasting: secs(H / 4) };
        let horizon = secs(30 * 24 * H);
        let track = Track::new(&signal, horizon, 7);
        let minutes = horizon.as_secs() / 60;
        let high = (0..minutes).filter(|m| track.at(secs(m * 60)) == 4.0).count() as f64 / minutes as f64;
        // Expected share: lasting / (every + lasting) = 0.25 / 3.25.
        assert!((high - 0.25 / 3.25).abs() < 0.02, "share in bursts {high}");
        let again = Track::new(&signal, horizon, 7);
        assert_eq!(track.bursts, again.bursts, "same seed, same bursts");
    }

    #[test]
    fn noise_is_a_pure_function_with_the_right_spread() {
        let a = noise_factor(0.1, 1, 2, 3, 4, 0);
        assert_eq!(a, noise_factor(0.1, 1, 2, 3, 4, 0));
        assert_ne!(a, noise_factor(0.1, 1, 2, 3, 5, 0));
        let n = 20_000;
        let samples: Vec<f64> = (0..n).map(|t| noise_factor(0.1, 9, 0, 0, t, 1)).collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let sd = (samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!((mean - 1.0).abs() < 0.005 && (sd - 0.1).abs() < 0.005, "mean {mean}, sd {sd}");
    }
}
