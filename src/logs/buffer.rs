//! Bounded in-memory store of sanitised lines.

use std::collections::VecDeque;

/// Bounded in-memory log: capped by line count AND total bytes; counts what it evicted so the UI can say "N older lines only on disk".
#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<String>,
    max_lines: usize,
    max_bytes: usize,
    bytes: usize,
    evicted: u64,
}

impl LogBuffer {
    /// Creates an empty buffer holding at most `max_lines` lines and `max_bytes` bytes.
    #[must_use]
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        LogBuffer {
            lines: VecDeque::new(),
            max_lines,
            max_bytes,
            bytes: 0,
            evicted: 0,
        }
    }

    /// Appends a line, evicting the oldest until both caps hold again (hard caps: a line larger than `max_bytes` is evicted at once).
    pub fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            match self.lines.pop_front() {
                Some(old) => {
                    self.bytes -= old.len();
                    self.evicted += 1;
                }
                None => break,
            }
        }
    }

    /// Number of lines held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line is held (lines may still have been evicted).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Total bytes (string lengths) of the lines held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines dropped from the front so far (still in the on-disk log, not in memory).
    #[must_use]
    pub fn evicted_lines(&self) -> u64 {
        self.evicted
    }

    /// The `i`-th held line, 0 being the oldest held (absolute number `evicted_lines() + i + 1`).
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&str> {
        self.lines.get(i).map(String::as_str)
    }

    /// Held lines, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.lines.iter().map(String::as_str)
    }

    /// Evicted plus held lines: the absolute (1-based) line number of the newest line.
    #[must_use]
    pub fn total_lines(&self) -> u64 {
        self.evicted + self.lines.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_by_line_count() {
        let mut b = LogBuffer::new(3, 1 << 20);
        for i in 0..5 {
            b.push(format!("line {i}"));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.evicted_lines(), 2);
        assert_eq!(b.total_lines(), 5);
        assert_eq!(b.get(0), Some("line 2"));
        assert_eq!(b.get(3), None);
        assert_eq!(b.iter().collect::<Vec<_>>(), ["line 2", "line 3", "line 4"]);
        assert_eq!(b.iter().next_back(), Some("line 4"));
        assert_eq!(b.iter().len(), 3);
        assert_eq!(b.bytes(), 18);
    }

    #[test]
    fn evicts_by_bytes() {
        let mut b = LogBuffer::new(100, 10);
        b.push("aaaa".into());
        b.push("bbbb".into());
        assert_eq!((b.len(), b.bytes(), b.evicted_lines()), (2, 8, 0));
        b.push("cccccc".into()); // 14 bytes: "aaaa" goes
        assert_eq!((b.len(), b.bytes(), b.evicted_lines()), (2, 10, 1));
        b.push("d".into()); // 11 bytes: "bbbb" goes
        assert_eq!(b.iter().collect::<Vec<_>>(), ["cccccc", "d"]);
        assert_eq!((b.bytes(), b.evicted_lines(), b.total_lines()), (7, 2, 4));
    }

    #[test]
    fn oversized_line_is_evicted_immediately() {
        let mut b = LogBuffer::new(100, 10);
        b.push("ok".into());
        b.push("x".repeat(11));
        assert!(b.is_empty());
        assert_eq!((b.bytes(), b.evicted_lines(), b.total_lines()), (0, 2, 2));
    }

    #[test]
    fn zero_line_cap_holds_nothing() {
        let mut b = LogBuffer::new(0, 100);
        b.push(String::new());
        assert!(b.is_empty());
        assert_eq!(b.total_lines(), 1);
    }
}
