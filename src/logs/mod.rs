//! Log sanitiser: the security boundary between untrusted build output and the operator's terminal.
//!
//! Build output (Docker engine streams, BuildKit vertex logs) is attacker-controlled: a
//! Dockerfile can print escape sequences that retitle the terminal, write the clipboard
//! (OSC 52), switch to the alternate screen, enable mouse reporting, ask the terminal to
//! answer (DCS/DECRQSS) or otherwise act on it. Everything shown in the TUI, printed by the
//! headless CLI or written to log files goes through [`LineSplitter`] (or [`sanitise_line`]).
//!
//! # Output contract (checked by property tests over arbitrary and escape-heavy input)
//!
//! * Every `ESC` in an output line starts an SGR sequence `\x1b[<digits ; :>m`; no other
//!   character in U+0000..=U+001F, U+007F..=U+009F is present (tabs are expanded to spaces).
//! * A line is at most `max_line_bytes` bytes, plus at most [`MAX_LINE_SUFFIX_BYTES`] for the
//!   closing reset and the truncation marker.
//! * Every line is self-contained: it starts from the default rendition (colour still in
//!   force from an earlier line is re-applied at its start) and ends in it (`\x1b[0m` is
//!   appended when the line leaves SGR state set, before the truncation marker if any). So
//!   lines can be shown alone, scrolled, stored and concatenated without colour bleeding.
//! * The output depends only on the bytes, not on how they were split into chunks.
//!
//! Use one [`LineSplitter`] per source: SGR state, partial lines, escape sequences and UTF-8
//! characters are tracked per stream. At [`LineSplitter::finish`] an incomplete character
//! becomes U+FFFD, an unfinished escape sequence is dropped, a trailing line that shows
//! nothing (e.g. only escape sequences) is not returned, and the splitter starts over.
//! [`sanitise_line`] joins the non-empty lines of a message with spaces and caps the result
//! at [`DEFAULT_MAX_LINE_BYTES`] like any line.
//!
//! # Input handling
//!
//! * Escape sequences are parsed by `vte` (alacritty's parser). SGR (`CSI params m` without
//!   private marker or intermediates, within vte's 32 parameters) is kept and re-emitted in
//!   canonical form: `;` between parameters, `:` between sub-parameters, empty ones as `0`.
//! * Dropped: all other CSI (alt screen, mouse modes, bracketed paste, DECSTBM, cursor moves
//!   to other lines, clears...), OSC (titles, OSC 52 clipboard; OSC 8 hyperlinks lose the link,
//!   their visible text stays), DCS, SOS/PM/APC whatever the terminator (BEL or ST), plain
//!   `ESC x` sequences (RIS, DECSC/DECRC, charset selection...), C0 controls other than `\n`,
//!   `\r`, `\t`, BS, DEL, C1 controls (U+0080..=U+009F; a lone raw byte 0x80..=0x9F is an 8-bit C1
//!   control to vte and is dropped too, other invalid bytes become U+FFFD), and bidi
//!   embedding/override/isolate controls (U+202A..=U+202E, U+2066..=U+2069), so a line cannot
//!   visually reorder itself ("Trojan Source").
//! * In-line editing used by progress bars and spinners is applied to the line as a terminal
//!   applies it, never emitted: a lone `\r` goes to column 0 and later characters overwrite
//!   earlier ones position by position (`"50%\r100%"` shows `"100%"`, `"abcdef\rXY"` shows
//!   `"XYcdef"`), each keeping the rendition it was written with; BS (0x08) steps one position
//!   left, stopping at column 0, like `CSI 1 D` (`"|\b/\b-\bdone"` shows `"done"`); EL (`CSI K`
//!   or `CSI 0 K`: erase from the cursor to the end of the line, `CSI 1 K`: from its start
//!   through the cursor, `CSI 2 K`: all of it; the cursor stays, erased positions show as
//!   blanks); CHA and HPA (`CSI n G`, ``CSI n ` ``: go to column n), CUF, HPR and CUB
//!   (`CSI n C`, `CSI n a`, `CSI n D`). Writing past the end of the line leaves spaces in
//!   between; a move may not leave a gap of more than 256 positions. A position is one `char`
//!   (no width tables: wide and combining characters may misalign). Sequences that act
//!   outside the line (other lines, the screen, scroll regions) cannot be applied to it and are
//!   dropped (see above).
//! * `\n` ends a line, `\r\n` too. `\t` advances to the next multiple of 8 positions (spaces at
//!   the end of the line; over existing text it only moves the cursor, as on a terminal).
//! * Invalid UTF-8 becomes U+FFFD; a character split across chunks is reassembled.
//! * An escape sequence may span at most [`MAX_ESCAPE_BYTES`] bytes from its `ESC`; then it is
//!   aborted as if CAN had arrived (at a UTF-8 boundary) and what follows is shown as text. So
//!   an unterminated OSC/DCS cannot swallow the rest of the log, nor grow vte's buffers.
//! * A line longer than `max_line_bytes` of sanitised output is cut at a character boundary,
//!   never inside an SGR sequence, and ends with ` … [line truncated: N bytes total]`, N being
//!   the raw byte count of the line without its `\n`. Bytes past the cap are counted, not
//!   stored: a 1 GB line costs no more memory than a capped one.
//!
//! # Cost
//!
//! Linear in the input: line ends and the escape budget are found by plain scans, vte works
//! in place, and each line is built in a reused buffer then copied once into an exact-size
//! `String` (the only allocation per line). A line rewritten in place switches to a buffer
//! of positions (also capped at `max_line_bytes`), so each overwrite is O(1).

mod buffer;
mod sgr;
#[cfg(test)]
mod tests;

use std::fmt;

pub use buffer::LogBuffer;
use sgr::{Pen, RESET};

/// Default cap for one stored/displayed line, in bytes of sanitised output.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024;

/// Longest run of bytes an escape sequence may span (from its `ESC`) before it is aborted; bounds what an unterminated OSC/DCS can swallow.
pub const MAX_ESCAPE_BYTES: usize = 4096;

const MARKER_HEAD: &str = " \u{2026} [line truncated: ";
const MARKER_TAIL: &str = " bytes total]";

/// Most bytes an output line can exceed its `max_line_bytes` by: the closing SGR reset plus the truncation marker.
pub const MAX_LINE_SUFFIX_BYTES: usize =
    RESET.len() + MARKER_HEAD.len() + 20 /* u64::MAX digits */ + MARKER_TAIL.len();

const TAB_WIDTH: usize = 8;
/// How far past the end of the line a cursor move (CHA, HPA, CUF) may go.
const CURSOR_GAP_LIMIT: usize = 256;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
const ESC: u8 = 0x1b;
/// Scratch buffers larger than this are released after the line that grew them.
const KEEP_CAPACITY: usize = 4096;

/// Turns a stream of raw byte chunks from one source (a build's stdout/stderr, one BuildKit vertex) into sanitised complete lines.
pub struct LineSplitter {
    parser: vte::Parser,
    sink: Sink,
    /// Bytes since the last ESC/CAN/SUB (or forced abort), for the [`MAX_ESCAPE_BYTES`] budget.
    since_esc: usize,
    /// An incomplete UTF-8 sequence held back from vte (see [`LineSplitter::feed_vte`]).
    held: [u8; 4],
    held_len: usize,
}

impl fmt::Debug for LineSplitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSplitter")
            .field("max_line_bytes", &self.sink.max)
            .field("pending_raw_bytes", &self.sink.raw_len)
            .finish_non_exhaustive()
    }
}

impl Default for LineSplitter {
    /// A splitter with [`DEFAULT_MAX_LINE_BYTES`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    /// Creates a splitter whose lines hold at most `max_line_bytes` bytes of sanitised output (plus reset and marker).
    #[must_use]
    pub fn new(max_line_bytes: usize) -> Self {
        LineSplitter {
            parser: vte::Parser::new(),
            sink: Sink {
                max: max_line_bytes,
                pen: Pen::default(),
                raw_len: 0,
                line: Line::default(),
                out: Vec::new(),
                scratch: String::new(),
            },
            since_esc: 0,
            held: [0; 4],
            held_len: 0,
        }
    }

    /// Feed a chunk (may split lines, UTF-8 sequences and escape sequences anywhere); returns the lines completed by it.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        // Feed vte one raw line at a time, so that when it reports `\n` (always the last
        // byte fed) `sink.raw_len` is exactly the raw length of that line.
        let mut rest = chunk;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            self.feed(&rest[..end]);
            rest = &rest[end..];
        }
        std::mem::take(&mut self.sink.out)
    }

    /// End of stream: the trailing partial line, if any (`None` if it would show nothing); the splitter then starts over as for a new stream.
    pub fn finish(&mut self) -> Option<String> {
        // CAN aborts any sequence in progress and turns a pending partial character into U+FFFD.
        self.feed_vte(&[CAN]);
        self.since_esc = 0;
        let sink = &mut self.sink;
        let line = if sink.line.shows_nothing() {
            sink.line.reset();
            None
        } else {
            Some(sink.line.finish(sink.max, sink.raw_len))
        };
        sink.raw_len = 0;
        sink.pen = Pen::default();
        debug_assert!(sink.out.is_empty());
        line
    }

    /// Feeds one raw segment (containing at most one `\n`, at its end) to vte, aborting
    /// escape sequences that exceed their budget.
    fn feed(&mut self, segment: &[u8]) {
        let mut rest = segment;
        while !rest.is_empty() {
            match escape_budget(self.since_esc, rest) {
                (Some(abort_at), _) => {
                    self.advance(&rest[..abort_at]);
                    self.feed_vte(&[CAN]);
                    self.since_esc = 0;
                    rest = &rest[abort_at..];
                }
                (None, since_esc) => {
                    self.advance(rest);
                    self.since_esc = since_esc;
                    break;
                }
            }
        }
    }

    fn advance(&mut self, bytes: &[u8]) {
        self.sink.raw_len += bytes.len() as u64;
        self.feed_vte(bytes);
    }

    /// Passes bytes to vte, never ending a call inside a UTF-8 character.
    ///
    /// vte 0.15.0 loses the character after a UTF-8 sequence split across two `advance`
    /// calls (alacritty/vte#159), so an incomplete sequence at the end of a slice is held
    /// back (at most 3 bytes) until it is complete or broken. Holding bytes back never
    /// changes what vte reports, only when.
    fn feed_vte(&mut self, mut bytes: &[u8]) {
        if self.held_len > 0 {
            let need = utf8_len(self.held[0]);
            while self.held_len < need {
                match bytes.first() {
                    Some(&b) if is_continuation(b) => {
                        self.held[self.held_len] = b;
                        self.held_len += 1;
                        bytes = &bytes[1..];
                    }
                    Some(_) => break,
                    None => return,
                }
            }
            // Complete, or broken by a non-continuation byte: vte then reports U+FFFD
            // without looking past that byte, which it handles correctly.
            self.parser
                .advance(&mut self.sink, &self.held[..self.held_len]);
            self.held_len = 0;
        }
        let keep = incomplete_utf8_tail(bytes);
        let (now, later) = bytes.split_at(bytes.len() - keep);
        self.parser.advance(&mut self.sink, now);
        self.held[..keep].copy_from_slice(later);
        self.held_len = keep;
    }

    /// Bytes held in this splitter's own buffers (test hook for the memory bound).
    #[cfg(test)]
    fn buffered_capacity(&self) -> usize {
        let line = &self.sink.line;
        line.text.capacity()
            + line.text_pens.capacity() * std::mem::size_of::<Pen>()
            + line.cells.capacity() * std::mem::size_of::<Cell>()
            + line.erasures.capacity() * std::mem::size_of::<(u64, usize)>()
            + self.sink.scratch.capacity()
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Length of the UTF-8 sequence a lead byte (0xC2..=0xF4) announces.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Length of the trailing lead byte + continuation bytes of `bytes` that are too few to
/// complete a character (0 if none). Errs on the side of holding back (it does not check
/// the narrower second-byte ranges), which is harmless.
fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    for k in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - k];
        if !is_continuation(b) {
            return if (0xC2..=0xF4).contains(&b) && k < utf8_len(b) {
                k
            } else {
                0
            };
        }
    }
    0
}

/// Where the escape budget forces an abort in `bytes`, given `since_esc` bytes already
/// spent; otherwise the budget spent after `bytes`.
///
/// Rule, per raw byte `b`: abort (inject CAN) before `b` if at least [`MAX_ESCAPE_BYTES`]
/// bytes passed since the last ESC/CAN/SUB and `b` cannot be inside a UTF-8 character (it
/// is not a continuation byte, or three continuation bytes precede it). Aborting there is a
/// no-op in plain text, so only over-long escape sequences are affected. The rule looks
/// at raw bytes only, hence does not depend on chunking.
fn escape_budget(mut since_esc: usize, bytes: &[u8]) -> (Option<usize>, usize) {
    let mut i = 0;
    while i < bytes.len() {
        if since_esc >= MAX_ESCAPE_BYTES {
            if !is_continuation(bytes[i]) || since_esc >= MAX_ESCAPE_BYTES + 3 {
                return (Some(i), 0);
            }
            since_esc += 1;
            i += 1;
            continue;
        }
        let end = bytes.len().min(i + (MAX_ESCAPE_BYTES - since_esc));
        let window = &bytes[i..end];
        since_esc = match window.iter().rposition(|&b| matches!(b, ESC | CAN | SUB)) {
            Some(r) => end - (i + r) - 1,
            None => since_esc + (end - i),
        };
        i = end;
    }
    (None, since_esc)
}

/// Sanitise one already-split line (convenience for short messages such as engine errors); embedded line breaks become single spaces.
#[must_use]
pub fn sanitise_line(raw: &[u8]) -> String {
    let mut splitter = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
    let mut lines = splitter.push(raw);
    lines.extend(splitter.finish());
    let mut lines = lines.into_iter().filter(|l| !l.is_empty());
    let Some(mut out) = lines.next() else {
        return String::new();
    };
    let mut dropped = false;
    for line in lines {
        if out.len() + 1 + line.len() > DEFAULT_MAX_LINE_BYTES {
            dropped = true;
            break;
        }
        out.push(' ');
        out.push_str(&line);
    }
    if dropped && !out.ends_with(MARKER_TAIL) {
        push_marker(&mut out, raw.len() as u64);
    }
    out
}

/// Remove SGR sequences too: plain text for search, --no-color output and failure summaries (never returns a control character, whatever the input).
#[must_use]
pub fn strip_sgr(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(is_forbidden) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let skip = sgr_len(tail).unwrap_or_else(|| tail.chars().next().map_or(1, char::len_utf8));
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// Show control characters as visible escapes (`\u{1b}`): for quoting untrusted text (a
/// config value, a selector) in an error message, where it must be seen, not acted on.
#[must_use]
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_forbidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Length of the SGR sequence `\x1b[<digits ; :>m` at the start of `s`, if there is one.
fn sgr_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("\x1b[")?;
    let params = body
        .bytes()
        .take_while(|b| matches!(b, b'0'..=b'9' | b';' | b':'))
        .count();
    (body.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// Characters never emitted: C0, DEL, C1, and bidi embedding/override/isolate controls.
#[inline]
fn is_forbidden(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

fn push_marker(out: &mut String, raw_len: u64) {
    use fmt::Write;
    let _ = write!(out, "{MARKER_HEAD}{raw_len}{MARKER_TAIL}");
}

fn marker_len(raw_len: u64) -> usize {
    MARKER_HEAD.len() + raw_len.checked_ilog10().map_or(1, |d| d as usize + 1) + MARKER_TAIL.len()
}

/// vte's callback target: keeps the pen and the line being built, collects finished lines.
struct Sink {
    max: usize,
    /// Rendition in force in the stream (persists across lines).
    pen: Pen,
    /// Raw bytes fed since the current line started.
    raw_len: u64,
    line: Line,
    out: Vec<String>,
    /// Reused buffer for the canonical form of one SGR sequence.
    scratch: String,
}

impl vte::Perform for Sink {
    #[inline(always)]
    fn print(&mut self, c: char) {
        // vte passes DEL, and C1 controls completed across chunks, to `print`.
        if !(' '..'\x7f').contains(&c) && is_forbidden(c) {
            return;
        }
        // Hot path (most characters): appending to text in the pen already in force.
        let line = &mut self.line;
        if line.fast && line.col == line.width && line.text.len() + c.len_utf8() <= self.max {
            line.text.push(c);
            line.width += 1;
            line.col += 1;
            return;
        }
        line.put(c, self.pen, self.max);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                // `\n` is always the last byte fed (see `LineSplitter::push`).
                let raw_len = self.raw_len.saturating_sub(1);
                self.raw_len = 0;
                let line = self.line.finish(self.max, raw_len);
                self.out.push(line);
            }
            b'\r' => self.line.col = 0,
            // BS: one position left, as `CSI 1 D` (a terminal stops at the first column).
            0x08 => self.line.col = self.line.col.saturating_sub(1),
            b'\t' => self.line.tab(self.pen, self.max),
            _ => {}
        }
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        ignore: bool,
        action: char,
    ) {
        // `ignore`: vte dropped parameters (more than 32); the sequence is not trustworthy.
        // Intermediates include private markers (`?`, `>`...): never SGR or EL.
        if ignore || !intermediates.is_empty() {
            return;
        }
        let first = params
            .iter()
            .next()
            .and_then(|p| p.first())
            .copied()
            .unwrap_or(0);
        // Cursor moves count at least 1.
        let count = usize::from(first.max(1));
        let line = &mut self.line;
        // A move may go anywhere over the existing text, but leave a gap of at most
        // CURSOR_GAP_LIMIT positions past it (and never past the storable positions): else
        // a few input bytes could make the line pad (and the output grow) by `max` bytes.
        let reach = line.width.max(CURSOR_GAP_LIMIT).min(self.max);
        match action {
            'm' => {
                // Only attributes a reset is known to clear go through (see sgr::known_params).
                let empty = params.iter().next().is_none();
                let known = sgr::known_params(params.iter());
                if known.is_empty() && !empty {
                    return;
                }
                self.scratch.clear();
                sgr::write_canonical(&mut self.scratch, known.iter().map(Vec::as_slice));
                let before = self.pen;
                self.pen.apply(known.iter().map(Vec::as_slice));
                line.fast = false;
                line.sgr(&self.scratch, before, self.pen, self.max);
            }
            // Interpreted within the line (progress bars, spinners), never emitted.
            'K' => line.erase(first),
            'G' | '`' => line.col = (count - 1).min(reach),
            'C' | 'a' => line.col = line.col.saturating_add(count).min(reach.max(line.col)),
            'D' => line.col = line.col.saturating_sub(count),
            _ => {}
        }
    }
}

/// One visible position: a character and the rendition it was written with.
#[derive(Clone, Copy)]
struct Cell {
    ch: char,
    pen: Pen,
    /// [`Line::erasures`] so far when it was written: later ones reaching it blank it.
    at: u64,
}

/// The line being built.
///
/// Text mode (the common case): the output is appended to `text` as it arrives, SGR
/// sequences verbatim. Once the cursor moved back (`\r`, CUB...) and something is written
/// or erased inside the existing text, the line switches to cell mode: one [`Cell`] per
/// position, rendered at the end. It returns to text mode only when erased whole.
#[derive(Default)]
struct Line {
    /// Text mode: output so far (SGR sequences and characters), at most `max` bytes.
    text: String,
    /// Text mode: the pen after each SGR sequence in `text`, in order.
    text_pens: Vec<Pen>,
    /// Text mode: the rendition in force at the end of `text`.
    text_pen: Pen,
    /// Cell mode: one entry per position, at most `max` entries.
    cells: Vec<Cell>,
    cell_mode: bool,
    /// Cursor position (in chars).
    col: usize,
    /// Positions written so far.
    width: usize,
    /// Some content did not fit.
    truncated: bool,
    /// Fast path allowed: text mode, not truncated, and `text_pen` equals the stream's pen
    /// (cleared whenever one of these may have changed; see [`Sink::print`]).
    fast: bool,
    /// Cell mode: `CSI 1 K` erasures not yet applied, as (number, last column erased), columns
    /// strictly decreasing: an older erasure that reaches no further than a newer one adds
    /// nothing. A cell is blank if an erasure numbered after it reaches its column. Applying
    /// them lazily keeps an erasure O(1) amortised (erasing eagerly would cost the cursor's
    /// column per 4 input bytes).
    erasures: Vec<(u64, usize)>,
    /// Erasures made in this line so far.
    erased: u64,
}

impl Line {
    /// Writes `ch` at the cursor with rendition `pen`.
    fn put(&mut self, ch: char, pen: Pen, max: usize) {
        if self.width < self.col && !self.pad_to_cursor(pen, max) {
            return;
        }
        if self.col < self.width {
            if !self.cell_mode {
                self.enter_cell_mode();
            }
            self.cells[self.col] = Cell {
                ch,
                pen,
                at: self.erased,
            };
        } else if !self.append(ch, pen, max) {
            return;
        }
        self.col += 1;
    }

    /// A cursor moved past the end of the line leaves blanks behind it when written at.
    /// False if they did not all fit.
    fn pad_to_cursor(&mut self, pen: Pen, max: usize) -> bool {
        const SPACES: &str = "                                                                ";
        let gap = self.col - self.width;
        let fits = if self.cell_mode {
            let n = gap.min(max.saturating_sub(self.cells.len()));
            self.cells.resize(
                self.cells.len() + n,
                Cell {
                    ch: ' ',
                    pen,
                    at: self.erased,
                },
            );
            self.width += n;
            n == gap
        } else {
            if self.truncated || !self.sync_pen(pen, max) {
                return false;
            }
            let n = gap.min(max.saturating_sub(self.text.len()));
            let mut left = n;
            while left > 0 {
                let k = left.min(SPACES.len());
                self.text.push_str(&SPACES[..k]);
                left -= k;
            }
            self.width += n;
            self.fast = true;
            n == gap
        };
        if !fits {
            self.cut();
        }
        fits
    }

    /// Marks the line truncated: content did not fit.
    fn cut(&mut self) {
        self.truncated = true;
        self.fast = false;
    }

    /// Adds a position at the end of the line (not moving the cursor). False if it did not fit.
    fn append(&mut self, ch: char, pen: Pen, max: usize) -> bool {
        if self.cell_mode {
            if self.cells.len() >= max {
                self.cut();
                return false;
            }
            self.cells.push(Cell {
                ch,
                pen,
                at: self.erased,
            });
        } else {
            if self.truncated || !self.sync_pen(pen, max) {
                return false;
            }
            if self.text.len() + ch.len_utf8() > max {
                self.cut();
                return false;
            }
            self.text.push(ch);
            // `pen` is the stream's pen and now in force at the end of `text`.
            self.fast = true;
        }
        self.width += 1;
        true
    }

    /// EL (`CSI n K`): 0 erases from the cursor to the end, 1 from the start through the
    /// cursor, 2 the whole line; the cursor stays. Content lost to truncation past the cursor
    /// goes too (0, 2), and so does what 1 erases.
    fn erase(&mut self, mode: u16) {
        match mode {
            // Through the cursor, and nothing visible after it: as good as all of it. The
            // positions stay (a later write pads up to the cursor).
            1 if self.col + 1 >= self.width => {
                let col = self.col;
                self.reset();
                self.col = col;
            }
            1 => {
                if !self.cell_mode {
                    self.enter_cell_mode();
                }
                self.erased += 1;
                while self.erasures.last().is_some_and(|&(_, c)| c <= self.col) {
                    self.erasures.pop();
                }
                self.erasures.push((self.erased, self.col));
            }
            // Erasing everything (the usual `\r` + `CSI K` redraw): back to text mode.
            0 | 2 if self.col == 0 => self.reset(),
            0 if self.col <= self.width => {
                if self.col < self.width {
                    if !self.cell_mode {
                        self.enter_cell_mode();
                    }
                    self.cells.truncate(self.col);
                    self.width = self.col;
                }
                self.truncated = false;
            }
            2 => {
                let col = self.col;
                self.reset();
                self.col = col;
            }
            _ => {}
        }
    }

    /// An SGR sequence arrived: `seq` is its canonical form, `before`/`after` the pens.
    fn sgr(&mut self, seq: &str, before: Pen, after: Pen, max: usize) {
        // Inside rewritten text the pen is applied per cell as characters arrive.
        if self.cell_mode || self.col < self.width || self.truncated {
            return;
        }
        if !self.sync_pen(before, max) {
            return;
        }
        if self.text.len() + seq.len() > max {
            self.cut();
            return;
        }
        self.text.push_str(seq);
        self.text_pens.push(after);
        self.text_pen = after;
        // `after` is the stream's pen.
        self.fast = true;
    }

    /// Text mode: makes the rendition at the end of `text` equal `pen` (carry-over from a
    /// previous line, or a change made while the cursor was elsewhere). False if it did not fit.
    fn sync_pen(&mut self, pen: Pen, max: usize) -> bool {
        if pen == self.text_pen {
            return true;
        }
        let before = self.text.len();
        sgr::write_transition(&mut self.text, &self.text_pen, &pen);
        if self.text.len() > max {
            self.text.truncate(before);
            self.cut();
            return false;
        }
        if self.text.len() > before {
            self.text_pens.push(pen);
        }
        self.text_pen = pen;
        true
    }

    fn tab(&mut self, pen: Pen, max: usize) {
        let target = (self.col / TAB_WIDTH + 1) * TAB_WIDTH;
        if self.col < self.width {
            // Over existing text a tab only moves the cursor, as on a terminal.
            self.col = target.min(self.width);
        }
        for _ in self.col..target {
            self.put(' ', pen, max);
        }
    }

    fn enter_cell_mode(&mut self) {
        self.cells.clear();
        self.cells.reserve(self.width);
        if self.text_pens.is_empty() {
            // No SGR in the text (the usual progress line): every position in the default pen.
            let pen = Pen::default();
            let at = self.erased;
            self.cells
                .extend(self.text.chars().map(|ch| Cell { ch, pen, at }));
        } else {
            self.cells_from_styled_text();
        }
        debug_assert_eq!(self.cells.len(), self.width);
        self.cell_mode = true;
        self.fast = false;
        self.text.clear();
        self.text_pens.clear();
        self.text_pen = Pen::default();
    }

    fn cells_from_styled_text(&mut self) {
        let mut pen = Pen::default();
        let mut pens = self.text_pens.iter();
        let mut chars = self.text.chars();
        while let Some(ch) = chars.next() {
            if ch == '\x1b' {
                // Our own canonical SGR: skip to its final `m`.
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
                pen = pens.next().copied().unwrap_or_default();
            } else {
                self.cells.push(Cell {
                    ch,
                    pen,
                    at: self.erased,
                });
            }
        }
    }

    /// Nothing visible and nothing cut: an empty line.
    fn shows_nothing(&self) -> bool {
        self.width == 0 && !self.truncated
    }

    /// Renders the line (one exact-size `String`) and resets for the next one.
    fn finish(&mut self, max: usize, raw_len: u64) -> String {
        let out = if self.cell_mode {
            self.render_cells(max, raw_len)
        } else if self.shows_nothing() {
            String::new()
        } else {
            let reset = self.text_pen != Pen::default();
            let extra = if reset { RESET.len() } else { 0 }
                + if self.truncated {
                    marker_len(raw_len)
                } else {
                    0
                };
            let mut out = String::with_capacity(self.text.len() + extra);
            out.push_str(&self.text);
            if reset {
                out.push_str(RESET);
            }
            if self.truncated {
                push_marker(&mut out, raw_len);
            }
            out
        };
        self.reset();
        out
    }

    fn render_cells(&self, max: usize, raw_len: u64) -> String {
        let mut out = String::with_capacity(self.cells.len() + 32);
        let mut cur = Pen::default();
        let mut cut = false;
        let blank = Cell {
            ch: ' ',
            pen: Pen::default(),
            at: 0,
        };
        for (i, cell) in self.cells.iter().enumerate() {
            // The first erasure after the cell was written reaches furthest of those after it.
            let k = self.erasures.partition_point(|&(n, _)| n <= cell.at);
            let cell = match self.erasures.get(k) {
                Some(&(_, col)) if col >= i => &blank,
                _ => cell,
            };
            let before = out.len();
            if cell.pen != cur {
                sgr::write_transition(&mut out, &cur, &cell.pen);
            }
            out.push(cell.ch);
            if out.len() > max {
                out.truncate(before);
                cut = true;
                break;
            }
            cur = cell.pen;
        }
        if cur.has_known() {
            out.push_str(RESET);
        }
        if self.truncated || cut {
            push_marker(&mut out, raw_len);
        }
        out.shrink_to_fit();
        out
    }

    fn reset(&mut self) {
        self.text.clear();
        self.text_pens.clear();
        self.cells.clear();
        if self.text.capacity() > KEEP_CAPACITY {
            self.text.shrink_to(KEEP_CAPACITY);
        }
        if self.text_pens.capacity() > KEEP_CAPACITY / 16 {
            self.text_pens.shrink_to(KEEP_CAPACITY / 16);
        }
        if self.cells.capacity() > KEEP_CAPACITY / 16 {
            self.cells.shrink_to(KEEP_CAPACITY / 16);
        }
        self.erasures.clear();
        if self.erasures.capacity() > KEEP_CAPACITY / 16 {
            self.erasures.shrink_to(KEEP_CAPACITY / 16);
        }
        self.erased = 0;
        self.text_pen = Pen::default();
        self.fast = false;
        self.cell_mode = false;
        self.col = 0;
        self.width = 0;
        self.truncated = false;
    }
}
