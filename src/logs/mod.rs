//! TEMPORARY placeholder until the sanitiser lands (being written now); same API.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024;
pub struct LineSplitter {
    buf: Vec<u8>,
}
impl LineSplitter {
    pub fn new(_max: usize) -> Self {
        LineSplitter { buf: Vec::new() }
    }
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            out.push(sanitise_line(&line[..line.len() - 1]));
        }
        out
    }
    pub fn finish(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            None
        } else {
            let b = std::mem::take(&mut self.buf);
            Some(sanitise_line(&b))
        }
    }
}
pub fn sanitise_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}
pub fn strip_sgr(line: &str) -> String {
    line.to_string()
}
#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: std::collections::VecDeque<String>,
    max_lines: usize,
    max_bytes: usize,
    bytes: usize,
    evicted: u64,
}
impl LogBuffer {
    pub fn new(max_lines: usize, max_bytes: usize) -> Self {
        LogBuffer {
            lines: Default::default(),
            max_lines,
            max_bytes,
            bytes: 0,
            evicted: 0,
        }
    }
    pub fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            if let Some(l) = self.lines.pop_front() {
                self.bytes -= l.len();
                self.evicted += 1;
            } else {
                break;
            }
        }
    }
    pub fn len(&self) -> usize {
        self.lines.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn evicted_lines(&self) -> u64 {
        self.evicted
    }
    pub fn get(&self, i: usize) -> Option<&str> {
        self.lines.get(i).map(|s| s.as_str())
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.lines.iter().map(|s| s.as_str())
    }
    pub fn total_lines(&self) -> u64 {
        self.evicted + self.lines.len() as u64
    }
}
