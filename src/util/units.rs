//! Byte sizes for people (decimal units, as `docker images` prints them), and durations.

/// Decimal units with one decimal place, always shown (so that `3.0MB` sits beside `2.5MB`,
/// never `3MB`), sign kept: `412.3MB`, `-1.2kB`, `12B` (whole bytes have no decimals).
pub fn human_size(bytes: i64) -> String {
    let s = if bytes.unsigned_abs() < 1000 {
        format!("{}B", bytes.unsigned_abs())
    } else {
        humansize::format_size(
            bytes.unsigned_abs(),
            humansize::DECIMAL
                .decimal_places(1)
                .decimal_zeroes(1)
                .space_after_value(false),
        )
    };
    if bytes < 0 {
        format!("-{s}")
    } else {
        s
    }
}

/// Compact size for grid cells: `412M`, `1.3G`, `950k`, `12B` (decimal, like docker).
pub fn human_size_short(bytes: i64) -> String {
    let b = bytes.unsigned_abs() as f64;
    let (v, unit) = if b >= 1e9 {
        (b / 1e9, "G")
    } else if b >= 1e6 {
        (b / 1e6, "M")
    } else if b >= 1e3 {
        (b / 1e3, "k")
    } else {
        (b, "B")
    };
    let sign = if bytes < 0 { "-" } else { "" };
    if v < 10.0 && unit != "B" {
        format!("{sign}{v:.1}{unit}")
    } else {
        format!("{sign}{v:.0}{unit}")
    }
}

/// A duration for people, rounded to the second: `45s`, `3m 10s`, `2h 05m`.
pub fn human_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_secs(44.6), "45s");
        assert_eq!(human_secs(190.0), "3m 10s");
        assert_eq!(human_secs(7500.0), "2h 05m");
        assert_eq!(human_secs(-3.0), "0s");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size_short(412_000_000), "412M");
        assert_eq!(human_size_short(1_300_000_000), "1.3G");
        assert_eq!(human_size_short(-950_000), "-950k");
        assert_eq!(human_size_short(12), "12B");
        assert!(human_size(-1200).starts_with('-'));
        // One format: a whole number of megabytes keeps its decimal.
        assert_eq!(human_size(3_000_000), "3.0MB");
        assert_eq!(human_size(2_500_000), "2.5MB");
        assert_eq!(human_size(54), "54B");
        assert_eq!(human_size(-500_000), "-500.0kB");
    }
}
