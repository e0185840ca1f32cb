//! Cell selectors: `debian-13/5.4/arm64`, globs like `debian-*/5.*/arm64` or `*/*/riscv64`,
//! and shorter forms (`debian-13` = `debian-13/*/*`). The version part `opam` names base cells.

use glob::{MatchOptions, Pattern};

use super::Cell;

/// A parsed selector.
#[derive(Debug, Clone)]
pub struct Selector {
    raw: String,
    parts: [Pattern; 3],
}

const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Selector {
    /// Parse `distro[/version[/arch]]`, each part a glob.
    /// Parse `distro/version/arch` globs. Errors name the problem with control characters
    /// shown escaped (the text may come from a script or a pasted line).
    pub fn parse(text: &str) -> Result<Selector, super::SelectorError> {
        Self::parse_raw(text).map_err(|e| super::SelectorError(crate::logs::escape_controls(&e)))
    }

    fn parse_raw(text: &str) -> Result<Selector, String> {
        let raw = text.trim();
        if raw.is_empty() {
            return Err("empty selector".into());
        }
        let pieces: Vec<&str> = raw.split('/').collect();
        if pieces.len() > 3 {
            return Err(format!(
                "selector `{raw}` has {} parts; expected distro/version/arch",
                pieces.len()
            ));
        }
        let mut parts = Vec::with_capacity(3);
        for (i, piece) in pieces
            .iter()
            .chain(std::iter::repeat(&"*"))
            .take(3)
            .enumerate()
        {
            if piece.is_empty() {
                return Err(format!(
                    "selector `{raw}` has an empty {} part",
                    PART_NAMES[i]
                ));
            }
            let pat = Pattern::new(piece)
                .map_err(|e| format!("selector `{raw}`: bad glob `{piece}`: {}", e.msg))?;
            parts.push(pat);
        }
        let parts: [Pattern; 3] = parts.try_into().expect("three parts");
        Ok(Selector {
            raw: raw.to_string(),
            parts,
        })
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Does it select this cell?
    pub fn matches(&self, cell: &Cell) -> bool {
        self.parts[0].matches_with(&cell.distro, MATCH)
            && self.parts[1].matches_with(cell.version_part(), MATCH)
            && self.parts[2].matches_with(&cell.arch, MATCH)
    }

    /// The parts that are plain names (no glob characters): (part index, text).
    pub fn literal_parts(&self) -> impl Iterator<Item = (usize, &str)> {
        self.parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.as_str().contains(['*', '?', '[']))
            .map(|(i, p)| (i, p.as_str()))
    }
}

/// Human names of the three parts.
pub const PART_NAMES: [&str; 3] = ["distro", "version", "arch"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Level;

    fn cell(d: &str, v: Option<&str>, a: &str) -> Cell {
        Cell::new(d, v, a)
    }

    #[test]
    fn globs_and_short_forms() {
        let c = cell("debian-13", Some("5.4"), "arm64");
        for s in [
            "debian-13/5.4/arm64",
            "debian-*/5.*/arm64",
            "*/*/arm64",
            "debian-13",
            "debian-13/5.4",
            "*",
        ] {
            assert!(Selector::parse(s).unwrap().matches(&c), "{s}");
        }
        for s in ["alpine-*", "*/4.14/*", "*/*/riscv64", "debian-13/opam"] {
            assert!(!Selector::parse(s).unwrap().matches(&c), "{s}");
        }
        let base = cell("debian-13", None, "arm64");
        assert_eq!(base.level, Level::Base);
        assert!(Selector::parse("*/opam/*").unwrap().matches(&base));
    }

    #[test]
    fn bad_selectors() {
        assert!(Selector::parse("").unwrap_err().0.contains("empty"));
        assert!(Selector::parse("a/b/c/d")
            .unwrap_err()
            .0
            .contains("4 parts"));
        assert!(Selector::parse("a//c")
            .unwrap_err()
            .0
            .contains("empty version"));
        assert!(Selector::parse("a/[/c").unwrap_err().0.contains("bad glob"));
    }
}
