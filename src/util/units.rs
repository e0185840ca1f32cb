//! Byte sizes for people: decimal units, as `docker images` prints them.

/// Decimal units with one decimal place, sign kept: `412.3MB`, `-1.2kB`, `12B`.
pub fn human_size(bytes: i64) -> String {
    let s = humansize::format_size(
        bytes.unsigned_abs(),
        humansize::DECIMAL
            .decimal_places(1)
            .space_after_value(false),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size_short(412_000_000), "412M");
        assert_eq!(human_size_short(1_300_000_000), "1.3G");
        assert_eq!(human_size_short(-950_000), "-950k");
        assert_eq!(human_size_short(12), "12B");
        assert!(human_size(-1200).starts_with('-'));
    }
}
