//! `[inputs]`: where the moving refs a recipe names come from (opam, opam-repository) and how
//! long a resolution of them stays valid.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// The upstream opam repository.
pub const DEFAULT_OPAM: &str = "https://github.com/ocaml/opam";
/// The upstream opam-repository.
pub const DEFAULT_OPAM_REPOSITORY: &str = "https://github.com/ocaml/opam-repository";

/// The `[inputs]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    /// The opam git repository (URL, or a path relative to the config file) whose branches
    /// 2.1 ... 2.5 and newest release tag are pinned.
    #[serde(default = "default_opam")]
    pub opam: Spanned<String>,
    /// The opam-repository git repository (URL or path) whose master is pinned and checked
    /// out as the base images' build context.
    #[serde(default = "default_opam_repository")]
    pub opam_repository: Spanned<String>,
    /// How long a resolution stays valid (`7d`, `12h`, `30m`, `0s`: always resolve again).
    #[serde(default = "default_refresh", deserialize_with = "refresh")]
    pub refresh: Duration,
}

impl Default for InputsConfig {
    fn default() -> Self {
        InputsConfig {
            opam: default_opam(),
            opam_repository: default_opam_repository(),
            refresh: default_refresh(),
        }
    }
}

fn default_opam() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_OPAM.to_string())
}
fn default_opam_repository() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_OPAM_REPOSITORY.to_string())
}
fn default_refresh() -> Duration {
    // The pipeline's weekly cycle (`Conf.days_between_rebuilds = 7`).
    Duration::from_secs(7 * 24 * 3600)
}

fn refresh<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_period(&text).map_err(serde::de::Error::custom)
}

/// `7d`, `12h`, `30m`, `45s` (one number, one unit) as a duration.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a period: write a number and a unit, as in `7d`, `12h`, `30m` or `0s`"
        )
    };
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: u64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        'd' => 24 * 3600,
        'h' => 3600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_period("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_period("0s"), Ok(Duration::ZERO));
        for bad in ["", "7", "d", "7w", "-1d", "1.5d"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_refresh_is_an_error_at_its_line() {
        let e = crate::config::parse("c.toml", "[inputs]\nrefresh = \"weekly\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("`weekly` is not a period"), "{e}");
        let ok = crate::config::parse("c.toml", "[inputs]\nopam = \"../opam\"\n").unwrap();
        assert_eq!(ok.config.inputs.opam.get_ref(), "../opam");
        assert_eq!(
            ok.config.inputs.opam_repository.get_ref(),
            DEFAULT_OPAM_REPOSITORY
        );
    }
}
