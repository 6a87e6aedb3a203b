//! Values that change over simulated time (replica counts, load) and delays
//! drawn from distributions (Heat updates, boots). Each is a small enum, so
//! workload generators (sinusoidal, bursty, trace replay) and other delay
//! models are new variants, not new plumbing.
//!
//! In a scenario, a shape is a plain value (`3`, `500m`) or one tagged map:
//! `{steps: [{at: 0s, value: 1}, {at: 5m, value: 7}]}` holds each value from
//! its time on; `{linear: [...]}` interpolates between points. A delay is a
//! duration (`30s`) or `{uniform: {min: 60s, max: 2m}}` or
//! `{lognormal: {median: 90s, p99: 4m}}`.

use std::fmt;
use std::time::Duration as StdDuration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Serialize};

use crate::config::{Duration, Quantity};

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
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum TaggedShape {
    Constant(Amount),
    Steps(Vec<Point>),
    Linear(Vec<Point>),
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value, or one of `steps: [...]`, `linear: [...]`")
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
        }
    }

    /// Times at which the value changes (what a controller must wake up for).
    /// Linear shapes change continuously; their sampling is the caller's.
    pub fn change_points(&self) -> Vec<StdDuration> {
        match self {
            Shape::Steps(points) => points.iter().map(|p| p.at.get()).collect(),
            Shape::Constant(_) | Shape::Linear(_) => vec![StdDuration::ZERO],
        }
    }

    pub fn is_continuous(&self) -> bool {
        matches!(self, Shape::Linear(_))
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
        let s: Shape = crate::yaml::from_str("{steps: [{at: 0s, value: 1}, {at: 5m, value: 7}]}").unwrap();
        assert_eq!(s.at(StdDuration::from_secs(299)), 1.0);
        assert_eq!(s.at(StdDuration::from_secs(300)), 7.0);
        let l: Shape = crate::yaml::from_str("{linear: [{at: 0s, value: 0}, {at: 10s, value: 500m}]}").unwrap();
        assert!((l.at(StdDuration::from_secs(5)) - 0.25).abs() < 1e-9);
        assert_eq!(l.at(StdDuration::from_secs(60)), 0.5);
        assert_eq!(crate::yaml::from_str::<Shape>("3").unwrap(), Shape::Constant(3.0));
        assert_eq!(crate::yaml::from_str::<Shape>("1Gi").unwrap(), Shape::Constant(1073741824.0));
        let bad: Shape = crate::yaml::from_str("{steps: [{at: 5m, value: 1}, {at: 1m, value: 2}]}").unwrap();
        assert_eq!(bad.problems()[0].0, ".steps[1].at");
        assert!(crate::yaml::from_str::<Shape>("{sine: 3}").is_err());
    }

    #[test]
    fn delays_parse_and_sample_reproducibly() {
        let fixed: Delay = crate::yaml::from_str("30s").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(fixed.sample(&mut rng), StdDuration::from_secs(30));
        let ln: Delay = crate::yaml::from_str("{lognormal: {median: 90s, p99: 4m}}").unwrap();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..1000).map(|_| ln.sample(&mut rng).as_secs_f64()).collect::<Vec<_>>()
        };
        let mut a = draw(7);
        assert_eq!(a, draw(7));
        a.sort_by(f64::total_cmp);
        assert!((80.0..100.0).contains(&a[500]), "median {}", a[500]);
        let u: Delay = crate::yaml::from_str("{uniform: {min: 2m, max: 1m}}").unwrap();
        assert!(u.problem().unwrap().contains("above max"));
    }
}
