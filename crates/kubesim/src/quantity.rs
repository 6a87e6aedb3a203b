//! Kubernetes resource quantities ("500m", "1.5", "128Mi", "1e3").
//!
//! The API server stores quantities in canonical form ("0.5" comes back as
//! "500m", "1024Mi" as "1Gi"); clients that compare what they wrote with what
//! they read depend on that, so kubesim canonicalises the same fields.

/// A parsed quantity: an exact value in nano-units plus the notation it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    /// Value × 10⁹, exact for every suffix Kubernetes accepts.
    pub nanos: i128,
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    pub fn parse(text: &str) -> Option<Quantity> {
        let s = text.trim();
        if s.is_empty() {
            return None;
        }
        let (negative, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (number, suffix) = s.split_at(num_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if frac_part.len() > 9 || int_part.len() > 27 {
            return None;
        }
        let int: i128 = if int_part.is_empty() { 0 } else { int_part.parse().ok()? };
        let frac: i128 = if frac_part.is_empty() {
            0
        } else {
            frac_part.parse::<i128>().ok()? * 10i128.pow(9 - frac_part.len() as u32)
        };
        let base = int.checked_mul(NANO)?.checked_add(frac)?;
        let (multiplier, divisor, format) = match suffix {
            "" => (1, 1, Format::DecimalSi),
            "n" => (1, NANO, Format::DecimalSi),
            "u" => (1, 1_000_000, Format::DecimalSi),
            "m" => (1, 1_000, Format::DecimalSi),
            "k" => (1_000, 1, Format::DecimalSi),
            "M" => (1_000_000, 1, Format::DecimalSi),
            "G" => (10i128.pow(9), 1, Format::DecimalSi),
            "T" => (10i128.pow(12), 1, Format::DecimalSi),
            "P" => (10i128.pow(15), 1, Format::DecimalSi),
            "E" => (10i128.pow(18), 1, Format::DecimalSi),
            "Ki" => (1 << 10, 1, Format::BinarySi),
            "Mi" => (1 << 20, 1, Format::BinarySi),
            "Gi" => (1 << 30, 1, Format::BinarySi),
            "Ti" => (1 << 40, 1, Format::BinarySi),
            "Pi" => (1 << 50, 1, Format::BinarySi),
            "Ei" => (1 << 60, 1, Format::BinarySi),
            exp if exp.starts_with(['e', 'E']) => {
                let e: i32 = exp[1..].parse().ok()?;
                if !(-9..=27).contains(&e) {
                    return None;
                }
                if e >= 0 {
                    (10i128.pow(e as u32), 1, Format::DecimalExponent)
                } else {
                    (1, 10i128.pow((-e) as u32), Format::DecimalExponent)
                }
            }
            _ => return None,
        };
        // Sub-nano remainders round up, as resource.Quantity does.
        let scaled = base.checked_mul(multiplier)?;
        let nanos = (scaled + divisor - 1) / divisor;
        Some(Quantity { nanos: if negative { -nanos } else { nanos }, format })
    }

    /// Value in milli-units, rounded up (resource.Quantity.MilliValue).
    pub fn millis(&self) -> i64 {
        div_ceil(self.nanos, 1_000_000) as i64
    }

    /// Value in whole units, rounded up (resource.Quantity.Value).
    pub fn value(&self) -> i64 {
        div_ceil(self.nanos, NANO) as i64
    }

    /// The canonical text the API server would return for this quantity.
    pub fn canonical(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let format = match self.format {
            Format::BinarySi if self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0 => Format::DecimalSi,
            f => f,
        };
        match format {
            Format::BinarySi => {
                let units = self.nanos / NANO;
                let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
                let mut k = 0;
                while k + 1 < suffixes.len() && units % (1i128 << (10 * (k + 1))) == 0 {
                    k += 1;
                }
                format!("{}{}", units >> (10 * k), suffixes[k])
            }
            Format::DecimalSi | Format::DecimalExponent => {
                // Largest power of 1000 (from 10⁻⁹) that divides the value exactly.
                let mut exp3: i32 = -3; // in units of 10³, starting at nano
                let mut mantissa = self.nanos;
                while exp3 < 6 && mantissa % 1000 == 0 {
                    mantissa /= 1000;
                    exp3 += 1;
                }
                if format == Format::DecimalExponent {
                    if exp3 == 0 {
                        return mantissa.to_string();
                    }
                    return format!("{mantissa}e{}", exp3 * 3);
                }
                let suffix = match exp3 {
                    -3 => "n",
                    -2 => "u",
                    -1 => "m",
                    0 => "",
                    1 => "k",
                    2 => "M",
                    3 => "G",
                    4 => "T",
                    5 => "P",
                    _ => "E",
                };
                format!("{mantissa}{suffix}")
            }
        }
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 { q + 1 } else { q }
}

/// CPU in millicores, from a quantity string; None if unparsable.
pub fn cpu_millis(text: &str) -> Option<i64> {
    Quantity::parse(text).map(|q| q.millis())
}

/// Bytes (or any whole-unit resource), from a quantity string; None if unparsable.
pub fn whole_units(text: &str) -> Option<i64> {
    Quantity::parse(text).map(|q| q.value())
}

/// Canonical CPU text for a millicore count ("1500m", "2").
pub fn format_millis(millis: i64) -> String {
    Quantity { nanos: millis as i128 * 1_000_000, format: Format::DecimalSi }.canonical()
}

/// Canonical memory text for a byte count ("1Gi", "1536Mi", "1000").
pub fn format_bytes(bytes: i64) -> String {
    Quantity { nanos: bytes as i128 * NANO, format: Format::BinarySi }.canonical()
}

/// Canonicalise every quantity in a `{name: quantity}` map in place.
pub fn canonicalize_map(map: &mut serde_json::Value) {
    if let Some(m) = map.as_object_mut() {
        for v in m.values_mut() {
            let canonical = match v {
                serde_json::Value::String(s) => Quantity::parse(s).map(|q| q.canonical()),
                serde_json::Value::Number(n) => Quantity::parse(&n.to_string()).map(|q| q.canonical()),
                _ => None,
            };
            if let Some(c) = canonical {
                *v = serde_json::Value::String(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s).unwrap().canonical()
    }

    #[test]
    fn parses_and_canonicalises_like_the_api_server() {
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1500m"), "1500m");
        assert_eq!(canon("1024Mi"), "1Gi");
        assert_eq!(canon("1536Mi"), "1536Mi");
        assert_eq!(canon("512"), "512");
        assert_eq!(canon("2000000"), "2M");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("100Ki"), "100Ki");
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("0.1"), Some(100));
        assert_eq!(whole_units("128Mi"), Some(128 << 20));
        assert_eq!(whole_units("1G"), Some(1_000_000_000));
        assert_eq!(whole_units("1.5Gi"), Some(1536 << 20));
        assert_eq!(cpu_millis("1n"), Some(1), "sub-milli rounds up");
        assert!(Quantity::parse("12x").is_none());
        assert!(Quantity::parse("").is_none());
        assert_eq!(format_millis(1500), "1500m");
        assert_eq!(format_bytes(1 << 30), "1Gi");
    }
}
