//! Kubernetes quantities (`500m`, `16Gi`, `1e3`) as integers.
//!
//! Parsing is delegated to `kube_quantity`; this module only fixes the unit we
//! keep (thousandths) so CPU millicores and memory bytes share one code path.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity string that is not valid Kubernetes syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Kubernetes quantity")]
pub struct QuantityError(pub String);

/// Parses a quantity into thousandths of its unit (`"500m"` → 500, `"2"` → 2000,
/// `"1Ki"` → 1_024_000). Saturates at `i64::MAX`.
pub fn parse_milli(text: &str) -> Result<i64, QuantityError> {
    let q = Quantity(text.trim().to_string());
    let parsed: kube_quantity::ParsedQuantity = (&q).try_into().map_err(|_| QuantityError(text.to_string()))?;
    let value = parsed.to_bytes_f64().ok_or_else(|| QuantityError(text.to_string()))?;
    Ok((value * 1000.0).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64)
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
    fn formats_round_trip() {
        assert_eq!(format_cpu_milli(250), "250m");
        assert_eq!(format_cpu_milli(2000), "2");
        assert_eq!(format_bytes(16 << 30), "16Gi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(parse_units(&format_bytes(3 << 20)).unwrap(), 3 << 20);
    }
}
