//! Value types that appear in the configuration file: durations like `10m`,
//! Kubernetes quantities like `16Gi` or `500m`, and fractions in `[0, 1]`.
//!
//! Each rejects bad input while deserializing, so serde's path tracking names
//! the key that holds the bad value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A non-negative duration written the way operators write them: `30s`, `10m`, `1h 30m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.starts_with('-') {
            return Err(format!("duration `{s}` is negative; durations must be zero or more"));
        }
        if s == "0" {
            return Ok(Self::default());
        }
        humantime::parse_duration(s)
            .map(Self)
            .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. `30s`, `10m`, `1h`"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `30s` or `10m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else if v < 0 {
                    Err(E::custom(format!("duration {v} is negative; durations must be zero or more")))
                } else {
                    Err(E::custom(format!("bare number {v} has no unit; write e.g. `{v}s`")))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                if v < 0.0 {
                    Err(E::custom(format!("duration {v} is negative; durations must be zero or more")))
                } else {
                    Err(E::custom(format!("bare number {v} has no unit; write e.g. `{v}s`")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A Kubernetes resource quantity (`500m`, `4`, `16Gi`), kept as its canonical
/// integer: millicores for CPU-like resources, plain units (bytes, pods, GPUs) otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    text: String,
    /// The value in thousandths (so `500m` is 500 and `2` is 2000).
    milli: i128,
}

impl Quantity {
    pub fn parse(s: &str) -> Result<Self, String> {
        let milli =
            crate::model::quantity::parse_milli(s).map_err(|e| format!("{e}; write e.g. `500m`, `4`, `16Gi`"))?;
        if milli < 0 {
            return Err(format!("quantity `{s}` is negative"));
        }
        Ok(Self { text: s.trim().to_string(), milli: i128::from(milli) })
    }
    /// Thousandths of a unit: millicores for `cpu`.
    pub fn as_milli(&self) -> i64 {
        i64::try_from(self.milli).unwrap_or(i64::MAX)
    }
    /// Whole units, rounded up: bytes for memory, count for pods and GPUs.
    pub fn as_units(&self) -> i64 {
        i64::try_from((self.milli + 999) / 1000).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Kubernetes quantity such as `500m`, `4` or `16Gi`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A fraction in `[0, 1]`, such as a utilisation threshold.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
pub struct Fraction(pub f64);

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&v) || v.is_nan() {
            return Err(de::Error::custom(format!("{v} is not a fraction between 0 and 1")));
        }
        Ok(Self(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_reject_negatives() {
        assert_eq!("10m".parse::<Duration>().unwrap(), Duration::from_secs(600));
        assert_eq!("1h 30m".parse::<Duration>().unwrap(), Duration::from_secs(5400));
        assert_eq!("0".parse::<Duration>().unwrap(), Duration::default());
        assert!("-5m".parse::<Duration>().unwrap_err().contains("negative"));
        assert!("ten minutes".parse::<Duration>().unwrap_err().contains("not a duration"));
    }

    #[test]
    fn quantities_keep_milli_and_units() {
        assert_eq!(Quantity::parse("500m").unwrap().as_milli(), 500);
        assert_eq!(Quantity::parse("4").unwrap().as_milli(), 4000);
        assert_eq!(Quantity::parse("16Gi").unwrap().as_units(), 16 * 1024 * 1024 * 1024);
        assert_eq!(Quantity::parse("1G").unwrap().as_units(), 1_000_000_000);
        assert!(Quantity::parse("lots").is_err());
    }
}
