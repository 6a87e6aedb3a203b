//! Values that change over simulated time (replica counts, load, arrival
//! rates) and delays drawn from distributions (Heat updates, boots). Each is a
//! small enum, so a new generator or delay model is a new variant, not new
//! plumbing. Shapes are pure functions of time — no random state — so every
//! policy simulated on a scenario sees exactly the same demand.
//!
//! In a scenario, a shape is a plain value (`3`, `500m`) or one tagged map:
//! `{steps: [{at: 0s, value: 1}, {at: 5m, value: 7}]}` holds each value from
//! its time on; `{linear: [...]}` interpolates between points;
//! `{step: {at, from, to}}`, `{sine: {mean, amplitude, period, phase}}`,
//! `{square: {low, high, period, high-for, phase}}` and
//! `{diurnal: {trough, peak, peak-at, weekend}}` are the generators. A delay
//! is a duration (`30s`) or `{uniform: {min: 60s, max: 2m}}` or
//! `{lognormal: {median: 90s, p99: 4m}}`.

use std::fmt;
use std::time::Duration as StdDuration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Serialize};

use heatscaler_core::policy::{Duration, Quantity};

/// A number, or a Kubernetes quantity (`500m` is 0.5, `1Gi` is 1073741824).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Amount(pub f64);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a quantity such as `500m` or `2Gi`")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                Ok(Amount(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                Quantity::parse(v).map(|q| Amount(q.as_milli() as f64 / 1000.0)).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Point {
    pub at: Duration,
    pub value: Amount,
}

/// A value over simulated time (time is measured from the scenario start).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    Constant(f64),
    /// Each point's value holds from its time until the next point; before the
    /// first point, the first value.
    Steps(Vec<Point>),
    /// Straight lines between points; flat before the first and after the last.
    Linear(Vec<Point>),
    /// `from` before `at`, `to` from `at` on.
    Step(Step),
    /// `mean + amplitude · sin(2π (t + phase) / period)`.
    Sine(Sine),
    /// `high` for `high-for` at the start of every period, `low` for the rest.
    Square(Square),
    /// A working week: each day a raised cosine from `trough` (12 h from the
    /// peak) to `peak` (at `peak-at`); Saturdays and Sundays reach only
    /// `trough + weekend · (peak − trough)`. Time zero is Monday 00:00.
    Diurnal(Diurnal),
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Step {
    pub at: Duration,
    pub from: Amount,
    pub to: Amount,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Sine {
    pub mean: Amount,
    pub amplitude: Amount,
    pub period: Duration,
    #[serde(default)]
    pub phase: Duration,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Square {
    pub low: Amount,
    pub high: Amount,
    pub period: Duration,
    /// How long each period stays high (half the period when left out).
    #[serde(default)]
    pub high_for: Option<Duration>,
    #[serde(default)]
    pub phase: Duration,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Diurnal {
    pub trough: Amount,
    pub peak: Amount,
    /// Time of day of the peak (`14h`, `13h30m`).
    pub peak_at: Duration,
    /// Share of the weekday swing reached at weekends (default 1: no weekend).
    #[serde(default = "one")]
    pub weekend: Amount,
}

fn one() -> Amount {
    Amount(1.0)
}

const DAY: f64 = 86_400.0;
const TAU: f64 = std::f64::consts::TAU;

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum TaggedShape {
    Constant(Amount),
    Steps(Vec<Point>),
    Linear(Vec<Point>),
    Step(Step),
    Sine(Sine),
    Square(Square),
    Diurnal(Diurnal),
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a value, or one of `steps: [...]`, `linear: [...]`, `step: {...}`, `sine: {...}`, \
                     `square: {...}`, `diurnal: {...}`",
                )
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shape, E> {
                Ok(Shape::Constant(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Shape, E> {
                Ok(Shape::Constant(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
                Ok(Shape::Constant(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
                Amount::deserialize(de::value::StrDeserializer::<E>::new(v)).map(|a| Shape::Constant(a.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                Ok(match TaggedShape::deserialize(MapAccessDeserializer::new(map))? {
                    TaggedShape::Constant(a) => Shape::Constant(a.0),
                    TaggedShape::Steps(p) => Shape::Steps(p),
                    TaggedShape::Linear(p) => Shape::Linear(p),
                    TaggedShape::Step(s) => Shape::Step(s),
                    TaggedShape::Sine(s) => Shape::Sine(s),
                    TaggedShape::Square(s) => Shape::Square(s),
                    TaggedShape::Diurnal(d) => Shape::Diurnal(d),
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Shape {
    pub fn at(&self, t: StdDuration) -> f64 {
        match self {
            Shape::Constant(v) => *v,
            Shape::Steps(points) => {
                let i = points.partition_point(|p| p.at.get() <= t);
                points[i.saturating_sub(1)].value.0
            }
            Shape::Linear(points) => {
                let i = points.partition_point(|p| p.at.get() <= t);
                if i == 0 {
                    return points[0].value.0;
                }
                if i == points.len() {
                    return points[i - 1].value.0;
                }
                let (a, b) = (&points[i - 1], &points[i]);
                let span = (b.at.get() - a.at.get()).as_secs_f64();
                let x = (t - a.at.get()).as_secs_f64() / span;
                a.value.0 + (b.value.0 - a.value.0) * x
            }
            Shape::Step(s) => {
                if t < s.at.get() {
                    s.from.0
                } else {
                    s.to.0
                }
            }
            Shape::Sine(s) => {
                let x = (t + s.phase.get()).as_secs_f64() / s.period.get().as_secs_f64();
                s.mean.0 + s.amplitude.0 * (TAU * x).sin()
            }
            Shape::Square(s) => {
                let period = s.period.get().as_secs_f64();
                let into = (t + s.phase.get()).as_secs_f64() % period;
                if into < s.high_for().as_secs_f64() { s.high.0 } else { s.low.0 }
            }
            Shape::Diurnal(d) => {
                let secs = t.as_secs_f64();
                let day = (secs / DAY).floor() as u64 % 7;
                let hour_angle = TAU * (secs % DAY - d.peak_at.get().as_secs_f64()) / DAY;
                let swing = (d.peak.0 - d.trough.0) * (1.0 + hour_angle.cos()) / 2.0;
                let factor = if day >= 5 { d.weekend.0 } else { 1.0 };
                d.trough.0 + factor * swing
            }
        }
    }

    /// The first time after `t` at which a piecewise-constant shape changes
    /// (what a controller must wake up for); `None` when it never changes
    /// again or changes continuously ([`Shape::is_continuous`]: the caller
    /// samples those).
    pub fn next_change(&self, t: StdDuration) -> Option<StdDuration> {
        match self {
            Shape::Steps(points) => points.iter().map(|p| p.at.get()).find(|&at| at > t),
            Shape::Step(s) => (s.at.get() > t).then(|| s.at.get()),
            Shape::Square(s) => {
                let period = s.period.get();
                let shifted = t + s.phase.get();
                let start = StdDuration::from_secs_f64(
                    (shifted.as_secs_f64() / period.as_secs_f64()).floor() * period.as_secs_f64(),
                );
                let edges = [start + s.high_for(), start + period];
                edges.into_iter().find(|&e| e > shifted).map(|e| e - s.phase.get())
            }
            Shape::Constant(_) | Shape::Linear(_) | Shape::Sine(_) | Shape::Diurnal(_) => None,
        }
    }

    pub fn is_continuous(&self) -> bool {
        matches!(self, Shape::Linear(_) | Shape::Sine(_) | Shape::Diurnal(_))
    }

    /// The largest value the shape ever takes (bounds a Poisson process
    /// thinned by this shape as its rate).
    pub fn max_value(&self) -> f64 {
        let points = |p: &[Point]| p.iter().map(|p| p.value.0).fold(0.0, f64::max);
        match self {
            Shape::Constant(v) => *v,
            Shape::Steps(p) | Shape::Linear(p) => points(p),
            Shape::Step(s) => s.from.0.max(s.to.0),
            Shape::Sine(s) => s.mean.0 + s.amplitude.0.abs(),
            Shape::Square(s) => s.low.0.max(s.high.0),
            Shape::Diurnal(d) => d.trough.0 + (d.peak.0 - d.trough.0) * d.weekend.0.max(1.0),
        }
    }

    /// Problems with the shape, as `(key path suffix, problem)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let (kind, points) = match self {
            Shape::Constant(v) if !(v.is_finite() && *v >= 0.0) => {
                return vec![(String::new(), format!("{v} must be a finite value of zero or more"))];
            }
            Shape::Constant(_) => return out,
            Shape::Steps(p) => ("steps", p),
            Shape::Linear(p) => ("linear", p),
            Shape::Step(s) => {
                non_negative(&mut out, ".step", &[("from", s.from), ("to", s.to)]);
                return out;
            }
            Shape::Sine(s) => {
                non_negative(&mut out, ".sine", &[("mean", s.mean), ("amplitude", s.amplitude)]);
                if s.amplitude.0 > s.mean.0 {
                    out.push((
                        ".sine.amplitude".into(),
                        format!("{} is above the mean (values would go below zero)", s.amplitude.0),
                    ));
                }
                positive_period(&mut out, ".sine.period", s.period);
                return out;
            }
            Shape::Square(s) => {
                non_negative(&mut out, ".square", &[("low", s.low), ("high", s.high)]);
                positive_period(&mut out, ".square.period", s.period);
                if s.high_for.is_some_and(|h| h > s.period) {
                    out.push((
                        ".square.high-for".into(),
                        format!("{} is longer than the period", s.high_for().as_secs()),
                    ));
                }
                return out;
            }
            Shape::Diurnal(d) => {
                non_negative(&mut out, ".diurnal", &[("trough", d.trough), ("peak", d.peak), ("weekend", d.weekend)]);
                if d.trough.0 > d.peak.0 {
                    out.push((".diurnal.trough".into(), format!("{} is above the peak {}", d.trough.0, d.peak.0)));
                }
                if d.peak_at.get().as_secs_f64() >= DAY {
                    out.push((".diurnal.peak-at".into(), format!("{} is not a time of day (below 24h)", d.peak_at)));
                }
                return out;
            }
        };
        if points.is_empty() {
            out.push((format!(".{kind}"), "needs at least one point".into()));
        }
        for (i, p) in points.iter().enumerate() {
            if !(p.value.0.is_finite() && p.value.0 >= 0.0) {
                out.push((
                    format!(".{kind}[{i}].value"),
                    format!("{} must be a finite value of zero or more", p.value.0),
                ));
            }
            if i > 0 && p.at <= points[i - 1].at {
                out.push((
                    format!(".{kind}[{i}].at"),
                    format!("{} is not after the previous point ({})", p.at, points[i - 1].at),
                ));
            }
        }
        out
    }
}

impl Square {
    fn high_for(&self) -> StdDuration {
        self.high_for.map_or(self.period.get() / 2, Duration::get)
    }
}

fn non_negative(out: &mut Vec<(String, String)>, prefix: &str, values: &[(&str, Amount)]) {
    for (key, v) in values {
        if !(v.0.is_finite() && v.0 >= 0.0) {
            out.push((format!("{prefix}.{key}"), format!("{} must be a finite value of zero or more", v.0)));
        }
    }
}

fn positive_period(out: &mut Vec<(String, String)>, path: &str, period: Duration) {
    if period.get().is_zero() {
        out.push((path.into(), "must be longer than zero".into()));
    }
}

/// A delay drawn per occurrence.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delay {
    Fixed(Duration),
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// Log-normal with this median and 99th percentile: boot times have a long tail.
    Lognormal {
        median: Duration,
        p99: Duration,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum TaggedDelay {
    Fixed(Duration),
    Uniform(Range),
    Lognormal(Tail),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Range {
    min: Duration,
    max: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Tail {
    median: Duration,
    p99: Duration,
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Delay;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `30s`, or `uniform: {min, max}`, or `lognormal: {median, p99}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Delay, E> {
                v.parse().map(Delay::Fixed).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Delay, E> {
                Duration::deserialize(de::value::I64Deserializer::<E>::new(v)).map(Delay::Fixed)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Delay, E> {
                Duration::deserialize(de::value::U64Deserializer::<E>::new(v)).map(Delay::Fixed)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Delay, A::Error> {
                Ok(match TaggedDelay::deserialize(MapAccessDeserializer::new(map))? {
                    TaggedDelay::Fixed(d) => Delay::Fixed(d),
                    TaggedDelay::Uniform(r) => Delay::Uniform { min: r.min, max: r.max },
                    TaggedDelay::Lognormal(t) => Delay::Lognormal { median: t.median, p99: t.p99 },
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Delay {
    pub fn sample(&self, rng: &mut impl Rng) -> StdDuration {
        match self {
            Delay::Fixed(d) => d.get(),
            Delay::Uniform { min, max } => {
                let (a, b) = (min.get().as_secs_f64(), max.get().as_secs_f64());
                StdDuration::from_secs_f64(if b > a { rng.random_range(a..b) } else { a })
            }
            Delay::Lognormal { median, p99 } => {
                let m = median.get().as_secs_f64().max(1e-3);
                let p = p99.get().as_secs_f64().max(m);
                // p99 = median · exp(2.326 σ)
                let sigma = (p / m).ln() / 2.326_347_874;
                match LogNormal::new(m.ln(), sigma) {
                    Ok(dist) => StdDuration::from_secs_f64(dist.sample(rng).min(86_400.0 * 365.0)),
                    Err(_) => median.get(),
                }
            }
        }
    }

    pub fn problem(&self) -> Option<String> {
        match self {
            Delay::Uniform { min, max } if min > max => Some(format!("min {min} is above max {max}")),
            Delay::Lognormal { median, p99 } if p99 < median => Some(format!("p99 {p99} is below the median {median}")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn shapes_parse_and_evaluate() {
        let s: Shape = heatscaler_core::yaml::from_str("{steps: [{at: 0s, value: 1}, {at: 5m, value: 7}]}").unwrap();
        assert_eq!(s.at(StdDuration::from_secs(299)), 1.0);
        assert_eq!(s.at(StdDuration::from_secs(300)), 7.0);
        let l: Shape =
            heatscaler_core::yaml::from_str("{linear: [{at: 0s, value: 0}, {at: 10s, value: 500m}]}").unwrap();
        assert!((l.at(StdDuration::from_secs(5)) - 0.25).abs() < 1e-9);
        assert_eq!(l.at(StdDuration::from_secs(60)), 0.5);
        assert_eq!(heatscaler_core::yaml::from_str::<Shape>("3").unwrap(), Shape::Constant(3.0));
        assert_eq!(heatscaler_core::yaml::from_str::<Shape>("1Gi").unwrap(), Shape::Constant(1073741824.0));
        let bad: Shape = heatscaler_core::yaml::from_str("{steps: [{at: 5m, value: 1}, {at: 1m, value: 2}]}").unwrap();
        assert_eq!(bad.problems()[0].0, ".steps[1].at");
        assert!(heatscaler_core::yaml::from_str::<Shape>("{sine: 3}").is_err());
    }

    fn at(shape: &Shape, secs: u64) -> f64 {
        shape.at(StdDuration::from_secs(secs))
    }

    #[test]
    fn generators_take_their_exact_values() {
        let sine: Shape = heatscaler_core::yaml::from_str("{sine: {mean: 20, amplitude: 10, period: 4h}}").unwrap();
        assert!((at(&sine, 0) - 20.0).abs() < 1e-9);
        assert!((at(&sine, 3600) - 30.0).abs() < 1e-9, "a quarter period: the crest");
        assert!((at(&sine, 3 * 3600) - 10.0).abs() < 1e-9, "three quarters: the trough");
        assert!(sine.is_continuous() && sine.next_change(StdDuration::ZERO).is_none());
        assert_eq!(sine.max_value(), 30.0);

        let square: Shape =
            heatscaler_core::yaml::from_str("{square: {low: 2, high: 9, period: 1h, high-for: 15m, phase: 5m}}")
                .unwrap();
        // Shifted by the phase: high from 55m to 1h10m, low until 1h55m.
        assert_eq!((at(&square, 0), at(&square, 9 * 60), at(&square, 10 * 60)), (9.0, 9.0, 2.0));
        assert_eq!((at(&square, 55 * 60 - 1), at(&square, 55 * 60)), (2.0, 9.0));
        let next = |t: u64| square.next_change(StdDuration::from_secs(t)).map(|d| d.as_secs());
        assert_eq!((next(0), next(600), next(55 * 60)), (Some(600), Some(55 * 60), Some(70 * 60)));
        let half: Shape = heatscaler_core::yaml::from_str("{square: {low: 0, high: 1, period: 10m}}").unwrap();
        assert_eq!((at(&half, 299), at(&half, 300)), (1.0, 0.0), "high-for defaults to half the period");

        let step: Shape = heatscaler_core::yaml::from_str("{step: {at: 1h, from: 3, to: 8}}").unwrap();
        assert_eq!((at(&step, 3599), at(&step, 3600)), (3.0, 8.0));
        assert_eq!(step.next_change(StdDuration::ZERO), Some(StdDuration::from_secs(3600)));
        assert_eq!(step.next_change(StdDuration::from_secs(3600)), None);

        let week: Shape =
            heatscaler_core::yaml::from_str("{diurnal: {trough: 10, peak: 50, peak-at: 14h, weekend: 0.25}}").unwrap();
        let day = 86_400;
        assert!((at(&week, 14 * 3600) - 50.0).abs() < 1e-9, "Monday's peak");
        assert!((at(&week, 2 * 3600) - 10.0).abs() < 1e-9, "twelve hours from the peak: the trough");
        assert!((at(&week, 4 * day + 20 * 3600) - 30.0).abs() < 1e-9, "Friday 20:00: half the swing");
        assert!((at(&week, 5 * day + 14 * 3600) - 20.0).abs() < 1e-9, "Saturday peaks at a quarter of the swing");
        assert!((at(&week, 7 * day + 14 * 3600) - 50.0).abs() < 1e-9, "the next Monday");
        assert_eq!(week.max_value(), 50.0);
    }

    #[test]
    fn generator_parameters_are_checked() {
        let problems = |text: &str| heatscaler_core::yaml::from_str::<Shape>(text).unwrap().problems();
        assert_eq!(problems("{sine: {mean: 2, amplitude: 3, period: 1h}}")[0].0, ".sine.amplitude");
        assert_eq!(problems("{sine: {mean: 2, amplitude: 1, period: 0s}}")[0].0, ".sine.period");
        assert_eq!(problems("{square: {low: 1, high: 2, period: 1h, high-for: 2h}}")[0].0, ".square.high-for");
        assert_eq!(problems("{diurnal: {trough: 5, peak: 2, peak-at: 14h}}")[0].0, ".diurnal.trough");
        assert_eq!(problems("{diurnal: {trough: 1, peak: 2, peak-at: 25h}}")[0].0, ".diurnal.peak-at");
        assert!(
            heatscaler_core::yaml::from_str::<Shape>("{sine: {mean: 1, period: 1h}}").is_err(),
            "amplitude is required"
        );
    }

    #[test]
    fn delays_parse_and_sample_reproducibly() {
        let fixed: Delay = heatscaler_core::yaml::from_str("30s").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(fixed.sample(&mut rng), StdDuration::from_secs(30));
        let ln: Delay = heatscaler_core::yaml::from_str("{lognormal: {median: 90s, p99: 4m}}").unwrap();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..1000).map(|_| ln.sample(&mut rng).as_secs_f64()).collect::<Vec<_>>()
        };
        let mut a = draw(7);
        assert_eq!(a, draw(7));
        a.sort_by(f64::total_cmp);
        assert!((80.0..100.0).contains(&a[500]), "median {}", a[500]);
        let u: Delay = heatscaler_core::yaml::from_str("{uniform: {min: 2m, max: 1m}}").unwrap();
        assert!(u.problem().unwrap().contains("above max"));
    }
}
