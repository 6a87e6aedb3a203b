//! Kubernetes quantities (`500m`, `16Gi`, `1e3`) as integers.
//!
//! The grammar is the API server's (`resource.Quantity`): an optional sign, a
//! decimal number, then a binary suffix (`Ki` … `Ei`), a decimal suffix
//! (`n`, `u`, `m`, `k`, `M` … `E`) or an exponent (`e3`, `E-2`). We keep one
//! unit, thousandths, so CPU millicores and memory bytes share one code path.
//! The value is computed in `f64` and rounded to the nearest thousandth —
//! exact for every quantity with fewer than 16 significant digits, which is
//! every quantity a cluster or a configuration file holds.

/// A quantity string that is not valid Kubernetes syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Kubernetes quantity")]
pub struct QuantityError(pub String);

/// Parses a quantity into thousandths of its unit (`"500m"` → 500, `"2"` → 2000,
/// `"1Ki"` → 1_024_000). Saturates at `i64::MAX`.
pub fn parse_milli(text: &str) -> Result<i64, QuantityError> {
    let value = parse(text.trim()).ok_or_else(|| QuantityError(text.to_string()))?;
    Ok((value * 1000.0).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
}

/// The value of a quantity in its unit, or `None` when it is not one.
fn parse(text: &str) -> Option<f64> {
    let number_end = number_length(text)?;
    let (number, suffix) = text.split_at(number_end);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "Ki" => 1024_f64,
        "Mi" => 1024_f64.powi(2),
        "Gi" => 1024_f64.powi(3),
        "Ti" => 1024_f64.powi(4),
        "Pi" => 1024_f64.powi(5),
        "Ei" => 1024_f64.powi(6),
        "n" => 1000_f64.powi(-3),
        "u" => 1000_f64.powi(-2),
        "m" => 1000_f64.powi(-1),
        "k" => 1000_f64,
        "M" => 1000_f64.powi(2),
        "G" => 1000_f64.powi(3),
        "T" => 1000_f64.powi(4),
        "P" => 1000_f64.powi(5),
        "E" => 1000_f64.powi(6),
        _ => return None,
    };
    let value = number * scale;
    value.is_finite().then_some(value)
}

/// Length of the leading signed decimal number, with its exponent when `e`
/// or `E` is followed by digits (else the `E` is the exa suffix); `None`
/// when the text does not start with a number.
fn number_length(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let digits = |from: usize| bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let whole = digits(at);
    at += whole;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        fraction = digits(at + 1);
        at += 1 + fraction;
    }
    if whole + fraction == 0 {
        return None;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        let sign = usize::from(matches!(bytes.get(at + 1), Some(b'+' | b'-')));
        let exponent = digits(at + 1 + sign);
        if exponent > 0 {
            at += 1 + sign + exponent;
        }
    }
    Some(at)
}

/// Parses a quantity into whole units, rounding up (memory bytes, pods, GPUs).
pub fn parse_units(text: &str) -> Result<i64, QuantityError> {
    let milli = parse_milli(text)?;
    Ok(milli.div_euclid(1000) + i64::from(milli.rem_euclid(1000) != 0))
}

/// Formats millicores the way Kubernetes prints them (`250m`, `2`).
pub fn format_cpu_milli(milli: i64) -> String {
    if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{milli}m") }
}

/// Formats bytes with the largest binary suffix that divides them exactly
/// (`512Mi`, `16Gi`), else plain bytes — the form `kubectl` shows back.
pub fn format_bytes(bytes: i64) -> String {
    const UNITS: [(&str, i64); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    for (suffix, size) in UNITS {
        if bytes != 0 && bytes % size == 0 {
            return format!("{}{suffix}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_kubernetes_accepts() {
        assert_eq!(parse_milli("500m").unwrap(), 500);
        assert_eq!(parse_milli("2").unwrap(), 2000);
        assert_eq!(parse_milli("0.1").unwrap(), 100);
        assert_eq!(parse_units("1Ki").unwrap(), 1024);
        assert_eq!(parse_units("1e3").unwrap(), 1000);
        assert_eq!(parse_units("1500m").unwrap(), 2);
        assert!(parse_milli("abc").is_err());
    }

    #[test]
    fn follows_the_api_server_grammar() {
        assert_eq!(parse_milli("+1.5").unwrap(), 1500);
        assert_eq!(parse_milli("-2").unwrap(), -2000);
        assert_eq!(parse_milli(".5").unwrap(), 500);
        assert_eq!(parse_milli("5.").unwrap(), 5000);
        assert_eq!(parse_milli(" 16Gi ").unwrap(), (16 << 30) * 1000);
        assert_eq!(parse_milli("250u").unwrap(), 0, "below a thousandth rounds to zero");
        assert_eq!(parse_units("2k").unwrap(), 2000);
        assert_eq!(parse_units("1M").unwrap(), 1_000_000);
        assert_eq!(parse_units("3P").unwrap(), 3_000_000_000_000_000);
        assert_eq!(parse_units("3e15").unwrap(), 3_000_000_000_000_000);
        assert_eq!(parse_units("5E-1").unwrap(), 1, "an exponent may be negative; units round up");
        assert_eq!(parse_milli("1E").unwrap(), i64::MAX, "`E` alone is exa, and saturates in thousandths");
        assert_eq!(parse_milli("1Ei").unwrap(), i64::MAX);
        for bad in ["", "Ki", "m", "+", ".", "1.2.3", "1KI", "1 Ki", "+-1", "1e", "1e+", "12Mix", "nan", "inf"] {
            assert!(parse_milli(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn formats_round_trip() {
        assert_eq!(format_cpu_milli(250), "250m");
        assert_eq!(format_cpu_milli(2000), "2");
        assert_eq!(format_bytes(16 << 30), "16Gi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(parse_units(&format_bytes(3 << 20)).unwrap(), 3 << 20);
    }
}
