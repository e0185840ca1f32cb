//! A search of lines of text (the help popup, the size inspector): the query, the lines that
//! match it (case-insensitive, colour codes ignored) and which of them is current. `n`/`N`
//! step through the matches, wrapping; the owner scrolls its view to the current one.

use crate::logs::strip_sgr;

/// A search over lines: indexes of the matching lines, ascending, and the current match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// What was searched for, as typed (never empty).
    pub query: String,
    /// Indexes of the lines containing the query, ascending.
    pub matches: Vec<usize>,
    /// Index into `matches` of the current match (0 when there is none).
    pub current: usize,
}

impl Search {
    /// A search for `query` in `lines`, its first match current; None for an empty query
    /// (an empty search clears the search).
    pub fn new<S: AsRef<str>>(query: &str, lines: &[S]) -> Option<Search> {
        if query.is_empty() {
            return None;
        }
        let mut s = Search {
            query: query.to_string(),
            ..Search::default()
        };
        s.recompute(lines);
        Some(s)
    }

    /// Find the matches again in `lines` (the text changed), keeping the current match's
    /// position in the list when it still exists.
    pub fn recompute<S: AsRef<str>>(&mut self, lines: &[S]) {
        let q = self.query.to_lowercase();
        self.matches = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| strip_sgr(l.as_ref()).to_lowercase().contains(&q))
            .map(|(i, _)| i)
            .collect();
        if self.current >= self.matches.len() {
            self.current = 0;
        }
    }

    /// The line of the current match.
    pub fn current_line(&self) -> Option<usize> {
        self.matches.get(self.current).copied()
    }

    /// Move to the next (`forward`) or previous match, wrapping around; the line it is on.
    pub fn step(&mut self, forward: bool) -> Option<usize> {
        let n = self.matches.len();
        if n == 0 {
            return None;
        }
        self.current = if forward {
            (self.current + 1) % n
        } else {
            (self.current + n - 1) % n
        };
        self.current_line()
    }

    /// Whether line `i` matches (for highlighting).
    pub fn is_match(&self, i: usize) -> bool {
        self.matches.binary_search(&i).is_ok()
    }

    /// How the status line reports it: `match 2 of 5 for "opam"`, or `no match for "opam"`.
    pub fn describe(&self) -> String {
        if self.matches.is_empty() {
            format!("no match for \"{}\"", self.query)
        } else {
            format!(
                "match {} of {} for \"{}\"",
                self.current + 1,
                self.matches.len(),
                self.query
            )
        }
    }
}

/// The first line to show so that `line` is in a view of `room` lines over `len` lines: the
/// line a third of the way down, the view kept within the text.
pub fn top_showing(line: usize, room: usize, len: usize) -> usize {
    line.saturating_sub(room / 3)
        .min(len.saturating_sub(room.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_steps_and_wraps() {
        let lines = [
            "Grid",
            "  b  build",
            "  B  Build all",
            "\u{1b}[1mbuilds\u{1b}[0m",
            "q",
        ];
        assert_eq!(Search::new("", &lines), None);
        let mut s = Search::new("BUILD", &lines).unwrap();
        assert_eq!(s.matches, vec![1, 2, 3]);
        assert_eq!(s.current_line(), Some(1));
        assert_eq!(s.step(true), Some(2));
        assert_eq!(s.step(true), Some(3));
        assert_eq!(s.step(true), Some(1));
        assert_eq!(s.step(false), Some(3));
        assert!(s.is_match(2) && !s.is_match(4));
        assert_eq!(s.describe(), "match 3 of 3 for \"BUILD\"");
        let mut none = Search::new("zzz", &lines).unwrap();
        assert_eq!(none.step(true), None);
        assert_eq!(none.describe(), "no match for \"zzz\"");
        // Fewer lines: the current match is kept in range.
        s.recompute(&lines[..2]);
        assert_eq!((s.matches.clone(), s.current), (vec![1], 0));
    }

    #[test]
    fn the_match_is_in_view() {
        assert_eq!(top_showing(0, 10, 50), 0);
        assert_eq!(top_showing(30, 9, 50), 27);
        assert_eq!(top_showing(49, 10, 50), 40);
        assert_eq!(top_showing(3, 10, 5), 0);
    }
}
