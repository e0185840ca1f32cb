//! TEMPORARY placeholder until the sanitiser lands (being written now); same API.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024;
pub struct LineSplitter { buf: Vec<u8> }
impl LineSplitter {
    pub fn new(_max: usize) -> Self { LineSplitter { buf: Vec::new() } }
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
        if self.buf.is_empty() { None } else { let b = std::mem::take(&mut self.buf); Some(sanitise_line(&b)) }
    }
}
pub fn sanitise_line(raw: &[u8]) -> String { String::from_utf8_lossy(raw).chars().filter(|c| !c.is_control()).collect() }
pub fn strip_sgr(line: &str) -> String { line.to_string() }
