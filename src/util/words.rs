//! Counts in words: `1 cell`, `2 cells`, so that no message reads `1 builds`.

/// `n` and the noun, singular for exactly one: `count(1, "cell", "cells")` is `1 cell`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// The noun alone, by count: `noun(1, "build is", "builds are")`.
pub fn noun<'a>(n: usize, singular: &'a str, plural: &'a str) -> &'a str {
    if n == 1 {
        singular
    } else {
        plural
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_many() {
        assert_eq!(count(1, "cell", "cells"), "1 cell");
        assert_eq!(count(0, "cell", "cells"), "0 cells");
        assert_eq!(count(2, "alias", "aliases"), "2 aliases");
        assert_eq!(noun(1, "build is", "builds are"), "build is");
    }
}
