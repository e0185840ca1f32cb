//! Unit and property tests of the sanitiser.

use super::*;

/// All lines of `input` fed as one chunk, including the trailing partial line.
fn lines_with(max: usize, input: &[u8]) -> Vec<String> {
    let mut s = LineSplitter::new(max);
    let mut out = s.push(input);
    out.extend(s.finish());
    out
}

fn lines(input: &[u8]) -> Vec<String> {
    lines_with(DEFAULT_MAX_LINE_BYTES, input)
}

/// The single line `input` produces.
fn one(input: &[u8]) -> String {
    let out = lines(input);
    assert_eq!(
        out.len(),
        1,
        "expected one line from {input:?}, got {out:?}"
    );
    out.into_iter().next().unwrap()
}

/// Feeds `input` split at `cuts` (sorted offsets), then finishes.
fn lines_chunked(max: usize, input: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut s = LineSplitter::new(max);
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        out.extend(s.push(&input[start..cut]));
        start = cut;
    }
    out.extend(s.finish());
    out
}

fn lines_bytewise(max: usize, input: &[u8]) -> Vec<String> {
    let mut s = LineSplitter::new(max);
    let mut out = Vec::new();
    for b in input {
        out.extend(s.push(std::slice::from_ref(b)));
    }
    out.extend(s.finish());
    out
}

/// Characters the output must never hold, from the sanitiser's contract (C0, DEL and C1 are
/// Unicode's `Cc` category; bidi embeddings, overrides and isolates), written apart from the
/// sanitiser's own predicate so that the property checks do not share its mistakes.
fn oracle_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An SGR model of the oracle's own (not `Pen`): which attribute groups a line leaves set.
/// Group names are the SGR codes that reset them; `0` (or no parameter) resets everything;
/// a code it does not know counts as set until a full reset.
#[derive(Default, Debug)]
struct OracleSgr(std::collections::BTreeSet<&'static str>);

impl OracleSgr {
    /// Applies the parameters of one `ESC [ ... m` (the text between `[` and `m`).
    fn apply(&mut self, body: &str) {
        let params: Vec<&str> = body.split(';').collect();
        let mut i = 0;
        while i < params.len() {
            let sub: Vec<&str> = params[i].split(':').collect();
            let code: u32 = sub[0].parse().unwrap_or(0);
            i += 1;
            let group = match code {
                0 => {
                    self.0.clear();
                    continue;
                }
                1 | 2 => "22",
                3 => "23",
                4 if sub.get(1) == Some(&"0") => {
                    self.0.remove("24");
                    continue;
                }
                4 | 21 => "24",
                5 | 6 => "25",
                7 => "27",
                8 => "28",
                9 => "29",
                30..=37 | 90..=97 => "39",
                40..=47 | 100..=107 => "49",
                53 => "55",
                38 | 48 | 58 => {
                    // `38;5;n` and `38;2;r;g;b` take the next parameters; `38:5:n` does not.
                    if sub.len() == 1 {
                        match params.get(i).copied() {
                            Some("5") => i += 2,
                            Some("2") => i += 4,
                            _ => {}
                        }
                    }
                    match code {
                        38 => "39",
                        48 => "49",
                        _ => "59",
                    }
                }
                22 | 23 | 24 | 25 | 27 | 28 | 29 | 39 | 49 | 55 | 59 => {
                    let name = match code {
                        22 => "22",
                        23 => "23",
                        24 => "24",
                        25 => "25",
                        27 => "27",
                        28 => "28",
                        29 => "29",
                        39 => "39",
                        49 => "49",
                        55 => "55",
                        _ => "59",
                    };
                    self.0.remove(name);
                    continue;
                }
                _ => "unknown",
            };
            self.0.insert(group);
        }
    }
}

/// Asserts the output contract for one line: no byte longer than allowed, no forbidden
/// character outside `ESC [ digits ; : m`, and every SGR attribute reset by the end.
fn check_line(line: &str, max: usize) {
    assert!(
        line.len() <= max + MAX_LINE_SUFFIX_BYTES,
        "line of {} bytes exceeds {max} + suffix: {line:?}",
        line.len()
    );
    let mut pen = OracleSgr::default();
    let mut rest = line;
    while let Some(i) = rest.find(oracle_forbidden) {
        let tail = &rest[i..];
        let body = tail
            .strip_prefix("\x1b[")
            .and_then(|b| {
                let end = b.find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':'))?;
                (b[end..].starts_with('m')).then_some(&b[..end])
            })
            .unwrap_or_else(|| panic!("forbidden character at {i} in {line:?}"));
        pen.apply(body);
        rest = &tail[2 + body.len() + 1..];
    }
    assert!(
        pen.0.is_empty(),
        "line leaves SGR state set ({:?}): {line:?}",
        pen.0
    );
}

fn marker(n: u64) -> String {
    format!(" \u{2026} [line truncated: {n} bytes total]")
}

#[test]
fn splitters_and_buffers_can_move_between_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LineSplitter>();
    send_sync::<LogBuffer>();
}

// ---- escape classes -------------------------------------------------------------------

#[test]
fn osc52_clipboard_write_dropped() {
    assert_eq!(one(b"a\x1b]52;c;ZXZpbCBjb21tYW5k\x07b"), "ab");
    assert_eq!(one(b"a\x1b]52;c;ZXZpbA==\x1b\\b"), "ab");
}

#[test]
fn osc_title_with_st_terminator_dropped() {
    assert_eq!(one(b"before\x1b]0;pwned title\x1b\\after"), "beforeafter");
    assert_eq!(one(b"before\x1b]2;pwned\x07after"), "beforeafter");
}

#[test]
fn osc8_hyperlink_keeps_visible_text() {
    let input = b"see \x1b]8;id=1;https://evil.example/x\x1b\\the docs\x1b]8;;\x1b\\ now";
    assert_eq!(one(input), "see the docs now");
    let bel = b"\x1b]8;;file:///etc/passwd\x07link\x1b]8;;\x07";
    assert_eq!(one(bel), "link");
}

#[test]
fn dcs_request_status_dropped() {
    // DECRQSS would make a terminal answer into the pty's input.
    assert_eq!(one(b"a\x1bP1$qm\x1b\\b"), "ab");
    assert_eq!(one(b"a\x1bP+q544e\x1b\\b"), "ab");
}

#[test]
fn apc_pm_sos_dropped() {
    assert_eq!(
        one(b"a\x1b_Gf=100;AAAA\x1b\\b\x1b^privacy\x1b\\c\x1bXsos\x1b\\d"),
        "abcd"
    );
}

#[test]
fn alt_screen_dropped() {
    assert_eq!(
        one(b"\x1b[?1049hfull screen\x1b[?1049l\x1b[?47h"),
        "full screen"
    );
}

#[test]
fn mouse_modes_and_bracketed_paste_dropped() {
    assert_eq!(
        one(b"\x1b[?1000h\x1b[?1002h\x1b[?1006hx\x1b[?2004h\x1b[?1000l"),
        "x"
    );
}

#[test]
fn cursor_moves_to_other_lines_clears_and_margins_dropped() {
    let input =
        b"a\x1b[2Ab\x1b[10;5Hc\x1b[2Jd\x1b[Ke\x1b[1;5rf\x1b[6ng\x1b[cH\x1b[?1Ki\x1b[3B\x1b[2Sj";
    assert_eq!(one(input), "abcdefgHij");
}

#[test]
fn plain_escape_sequences_dropped() {
    // RIS, DECSC/DECRC, charset selection (DEC graphics), keypad mode, index.
    assert_eq!(
        one(b"a\x1bcb\x1b7c\x1b8d\x1b(0e\x1b)Bf\x1b=g\x1bDh"),
        "abcdefgh"
    );
}

#[test]
fn c1_controls_dropped() {
    // Encoded as UTF-8: CSI, OSC, ST, NEL. The introducer goes; what follows is inert text.
    assert_eq!(one("\u{9b}2J".as_bytes()), "2J");
    assert_eq!(one("x\u{9d}0;t\u{9c}\u{85}y".as_bytes()), "x0;ty");
    // Lone raw 8-bit bytes.
    assert_eq!(one(b"\x9b2J\x9dz"), "2Jz");
}

#[test]
fn bel_dropped() {
    assert_eq!(one(b"ding\x07dong"), "dingdong");
}

/// BS used to be dropped like other C0 controls, which showed spinners and counters drawn
/// with it as garbage (`|/-\\|done`, `10%20%100%`). A terminal moves the cursor one position
/// left on BS, and the next characters overwrite: the log now shows what the terminal shows.
#[test]
fn backspace_steps_one_position_left() {
    assert_eq!(one(b"ab\x08\x08c"), "cb");
    // Field case F6, as the build printed it.
    assert_eq!(
        one(b"Solving environment: |\x08/\x08-\x08\\\x08|\x08done"),
        "Solving environment: done"
    );
    assert_eq!(
        one(b"Extracting (BS): 10%\x08\x08\x0820%\x08\x08\x08100%"),
        "Extracting (BS): 100%"
    );
    assert_eq!(
        one(b"Extracting (CUB): 10%\x1b[3D20%\x1b[3D100%"),
        "Extracting (CUB): 100%"
    );
    assert_eq!(one(b"abc\x08\x08\x08XYZ"), "XYZ");
    // At the first column it stays there.
    assert_eq!(one(b"\x08leading backspace"), "leading backspace");
    assert_eq!(one(b"x\x08\x08\x08\x08y"), "y");
    // Colour stays with the characters that made it.
    assert_eq!(one(b"\x1b[32mok\x1b[0m\x08\x08OK"), "OK");
    assert_eq!(one(b"ab\x1b[31mc\x1b[0m\x08\x08X"), "aX\x1b[31mc\x1b[0m");
    // Several lines, each its own.
    assert_eq!(lines(b"12\x08\x083\nab\x08c\n"), ["32", "ac"]);
}

#[test]
fn erase_from_line_start_through_cursor() {
    // CSI 1 K blanks positions 0..=cursor; the cursor stays.
    assert_eq!(one(b"abcdef\x1b[3D\x1b[1K"), "    ef");
    assert_eq!(one(b"abcdef\x1b[3D\x1b[1KX"), "   Xef");
    // Reaching the end: nothing visible is left (later text is padded to the cursor).
    assert_eq!(lines(b"abcdef\x1b[1K\n"), [""]);
    assert_eq!(one(b"abcdef\x1b[1Kz"), "      z");
    // Only what was written before the erasure goes.
    assert_eq!(
        one(b"abcdefgh\x1b[4G\x1b[1K\x1b[1GAB\x1b[8G\x1b[2D\x1b[1K"),
        "      gh"
    );
    // Erasures of different reach, then writes.
    assert_eq!(
        one(b"0123456789\x1b[6G\x1b[1K\x1b[2G\x1b[1K\x1b[1GA\x1b[9G\x1b[1K\x1b[3GB"),
        "  B      9"
    );
    // Colour: erased positions show in the default rendition.
    assert_eq!(
        one(b"\x1b[31mabcd\x1b[0m\x1b[3D\x1b[1K"),
        "  \x1b[31mcd\x1b[0m"
    );
    // CSI n a (HPR) moves right like CSI n C.
    assert_eq!(one(b"ab\x1b[1Dx\x1b[2ay"), "ax  y");
}

/// Repeated erasures to the cursor far along a long line cost no more than the input.
#[test]
fn erase_to_cursor_is_linear() {
    let mut input = vec![b'b'; 8000];
    for _ in 0..200_000 {
        input.extend_from_slice(b"\x1b[1Gx\x1b[7000G\x1b[1K");
    }
    input.push(b'\n');
    let start = std::time::Instant::now();
    let out = lines(&input);
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("       ") && out[0].ends_with('b'));
    assert_eq!(out[0].trim_start().len(), 1000);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn nul_and_other_c0_and_del_dropped() {
    assert_eq!(one(b"a\0b\x0bc\x0cd\x7fe\x1af\x0e\x0fg"), "abcdefg");
}

#[test]
fn bidi_controls_dropped() {
    assert_eq!(one("a\u{202e}cba\u{2066}d\u{2069}".as_bytes()), "acbad");
}

// ---- colour -------------------------------------------------------------------------------

#[test]
fn colour_kept() {
    assert_eq!(
        one(b"\x1b[1;31merror\x1b[0m: boom"),
        "\x1b[1;31merror\x1b[0m: boom"
    );
}

#[test]
fn colour_256_and_truecolor_kept() {
    assert_eq!(one(b"\x1b[38;5;196mred"), "\x1b[38;5;196mred\x1b[0m");
    // Colon-form colours are re-emitted in the semicolon form more renderers understand.
    assert_eq!(
        one(b"\x1b[38:2::255:0:0mred\x1b[m"),
        "\x1b[38;2;255;0;0mred\x1b[0m"
    );
    assert_eq!(one(b"\x1b[48:5:21mblue\x1b[0m"), "\x1b[48;5;21mblue\x1b[0m");
    assert_eq!(
        one(b"\x1b[4:3;58:5:1mwavy\x1b[0m"),
        "\x1b[4:3;58:5:1mwavy\x1b[0m"
    );
    assert_eq!(
        one(b"\x1b[48;2;1;2;3mbg\x1b[49m."),
        "\x1b[48;2;1;2;3mbg\x1b[49m."
    );
}

#[test]
fn sgr_with_too_many_parameters_dropped() {
    let mut input = b"\x1b[".to_vec();
    input.extend_from_slice(&b"1;".repeat(40));
    input.extend_from_slice(b"31mx");
    assert_eq!(one(&input), "x");
}

#[test]
fn sgr_canonicalised() {
    assert_eq!(one(b"\x1b[01;031mx\x1b[;m"), "\x1b[1;31mx\x1b[0;0m");
}

#[test]
fn csi_m_with_private_marker_or_intermediate_dropped() {
    // `CSI > 4 ; 2 m` is xterm's modifyOtherKeys, not SGR.
    assert_eq!(one(b"\x1b[>4;2mx\x1b[?1m\x1b[1 m"), "x");
}

#[test]
fn underline_colour_survives_rewrites_and_carry_over() {
    let out = lines(b"\x1b[4:3;58:2::255:0:0mab\rA\nc\x1b[0m\n");
    assert_eq!(
        out,
        [
            "\x1b[4:3m\x1b[58:2:0:255:0:0mAb\x1b[0m",
            "\x1b[4:3m\x1b[58:2:0:255:0:0mc\x1b[0m"
        ]
    );
    // Canonical and synthesised forms agree: sanitising again changes nothing.
    for line in &out {
        assert_eq!(&one(line.as_bytes()), line);
    }
}

#[test]
fn colour_carried_over_and_reset_per_line() {
    let out = lines(b"\x1b[31mone\ntwo\x1b[0m\nthree\n\x1b[1mbold\n\n");
    assert_eq!(
        out,
        [
            "\x1b[31mone\x1b[0m",
            "\x1b[31mtwo\x1b[0m",
            "three",
            "\x1b[1mbold\x1b[0m",
            ""
        ]
    );
}

#[test]
fn sgr_only_line_is_empty() {
    assert_eq!(lines(b"\x1b[31m\x1b[0m\nx\n"), ["", "x"]);
}

// ---- layout ---------------------------------------------------------------------------------

#[test]
fn tabs_expand_to_multiples_of_eight() {
    assert_eq!(one(b"a\tb"), "a       b");
    assert_eq!(one(b"12345678\tx"), "12345678        x");
    assert_eq!(one(b"\t"), "        ");
    assert_eq!(one("é\tx".as_bytes()), "é       x");
}

#[test]
fn carriage_return_overwrites() {
    assert_eq!(one(b"50%\r100%"), "100%");
    assert_eq!(one(b"abcdef\rXY"), "XYcdef");
    assert_eq!(one(b"abc\r"), "abc");
    assert_eq!(one(b"10%\r20%\r30%\r"), "30%");
    assert_eq!(one(b"abcdefghijk\r\tX"), "abcdefghXjk");
    assert_eq!(one(b"ab\r\tX"), "ab      X");
}

#[test]
fn carriage_return_keeps_colour_of_surviving_text() {
    assert_eq!(one(b"\x1b[32mabcdef\x1b[0m\rXY"), "XY\x1b[32mcdef\x1b[0m");
    assert_eq!(one(b"abcdef\r\x1b[31mXY\x1b[0m"), "\x1b[31mXY\x1b[0mcdef");
    assert_eq!(
        one(b"\x1b[33m[..  ]\r[...  ]\r[....]\x1b[0m done"),
        "\x1b[33m[....]\x1b[0m done"
    );
}

#[test]
fn in_line_editing_is_applied() {
    // opam-style status line: "\r\x1b[K" before each redraw.
    assert_eq!(
        one(b"Processing  1/30\r\x1b[KProcessing 12/30\r\x1b[Kdone"),
        "done"
    );
    assert_eq!(one(b"downloading 99%\x1b[2K\rok"), "ok");
    assert_eq!(one(b"abcdef\x1b[3D\x1b[1K"), "    ef"); // EL 1: start through the cursor
    assert_eq!(lines(b"abc\x1b[2K\n"), [""]);
    // Spinner: print, step back, print.
    assert_eq!(one(b"wait |\x1b[1D/\x1b[1D-\x1b[D\\"), "wait \\");
    assert_eq!(one(b"a\x1b[5Gb\x1b[1Gc\x1b[2Cd"), "c  db");
    // Erasing also erases what truncation dropped.
    let mut long = vec![b'x'; 40];
    long.extend_from_slice(b"\r\x1b[Kshort");
    assert_eq!(lines_with(16, &long), ["short"]);
    // A far cursor move is capped like any content, and limited past the end of the line.
    let out = lines_with(16, b"a\x1b[65535Cb");
    assert_eq!(out, [format!("a{}{}", " ".repeat(15), marker(10))]);
    assert_eq!(one(b"a\x1b[65535Cb"), format!("a{}b", " ".repeat(255)));
    assert_eq!(one(b"a\x1b[9999Gb"), format!("a{}b", " ".repeat(255)));
    assert_eq!(one(b"[\x1b[70G OK ]"), format!("[{} OK ]", " ".repeat(68)));
    let long = "x".repeat(3000);
    let input = format!("{long}\r\x1b[2500Gy\x1b[9999Cz");
    assert_eq!(
        one(input.as_bytes()),
        format!("{}y{}", &long[..2499], &long[2500..]) + "z"
    );
}

#[test]
fn crlf_is_a_newline() {
    assert_eq!(lines(b"a\r\nb\r\n\r\nc"), ["a", "b", "", "c"]);
}

// ---- UTF-8 ----------------------------------------------------------------------------------

#[test]
fn invalid_utf8_decoded_lossily() {
    assert_eq!(one(b"a\xffb\xc3(c\xe2\x82"), "a\u{fffd}b\u{fffd}(c\u{fffd}");
    // A lone raw byte in 0x80..=0x9F is an 8-bit C1 control to vte: dropped, not U+FFFD.
    assert_eq!(one(b"\xed\xa0\x80x"), "\u{fffd}\u{fffd}x");
}

#[test]
fn utf8_split_across_chunks() {
    let input = "é€😀 ok\n".as_bytes();
    for cut in 0..=input.len() {
        assert_eq!(
            lines_chunked(64, input, &[cut]),
            ["é€😀 ok"],
            "cut at {cut}"
        );
    }
    assert_eq!(lines_bytewise(64, input), ["é€😀 ok"]);
}

#[test]
fn character_after_split_utf8_survives() {
    // vte 0.15.0 drops 'C' when fed "B\u{301}" | "C..." split inside U+0301 (alacritty/vte#159).
    for input in ["B\u{301}C\u{2500}\n", "ünïcødé\n", "é1€2😀3\n"] {
        let expected = [input.trim_end()];
        for cut in 0..=input.len() {
            assert_eq!(
                lines_chunked(64, input.as_bytes(), &[cut]),
                expected,
                "{input:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn escape_split_across_chunks() {
    let input = b"\x1b[1;31mred\x1b[0m \x1b]0;title\x1b\\x\x1b[2J\x1bP1$qm\x1b\\y\n";
    let expected = ["\x1b[1;31mred\x1b[0m xy"];
    assert_eq!(lines_bytewise(64, input), expected);
    for cut in 0..=input.len() {
        assert_eq!(lines_chunked(64, input, &[cut]), expected, "cut at {cut}");
    }
}

// ---- truncation and bounds ----------------------------------------------------------------

#[test]
fn ten_megabyte_line_is_bounded() {
    const TEN_MB: usize = 10 * 1024 * 1024;
    let chunk = vec![b'a'; 64 * 1024];
    let mut s = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
    let mut peak = 0;
    for _ in 0..TEN_MB / chunk.len() {
        assert!(s.push(&chunk).is_empty());
        peak = peak.max(s.buffered_capacity());
    }
    let out = s.push(b"\n");
    assert_eq!(out.len(), 1);
    let line = &out[0];
    assert!(
        line.ends_with(&marker(TEN_MB as u64)),
        "{}",
        &line[line.len() - 60..]
    );
    assert_eq!(
        line.len(),
        DEFAULT_MAX_LINE_BYTES + marker(TEN_MB as u64).len()
    );
    check_line(line, DEFAULT_MAX_LINE_BYTES);
    assert!(peak <= 2 * DEFAULT_MAX_LINE_BYTES, "buffered {peak} bytes");
}

#[test]
fn truncation_never_cuts_sgr_or_chars_and_resets() {
    // "\x1b[31m" (5) + "abcde" (5) fit in 10; 'f' does not.
    let out = lines_with(10, b"\x1b[31mabcdefgh\n");
    assert_eq!(out, [format!("\x1b[31mabcde\x1b[0m{}", marker(13))]);
    // The SGR would straddle the cap: it is not written, so no reset is needed.
    assert_eq!(lines_with(6, b"ab\x1b[31mcd"), [format!("ab{}", marker(9))]);
    // '€' (3 bytes) would straddle the cap.
    assert_eq!(
        lines_with(5, "aaaa€".as_bytes()),
        [format!("aaaa{}", marker(7))]
    );
}

#[test]
fn truncated_progress_line_keeps_overwrites() {
    let mut input = vec![b'.'; 100];
    input.extend_from_slice(b"\rdone\n");
    let out = lines_with(20, &input);
    assert_eq!(out, [format!("done{}{}", ".".repeat(16), marker(105))]);
}

#[test]
fn overwriting_with_wider_chars_stays_capped() {
    let mut input = vec![b'a'; 20];
    input.push(b'\r');
    input.extend_from_slice("€".repeat(20).as_bytes());
    let out = lines_with(20, &input);
    assert_eq!(out, [format!("{}{}", "€".repeat(6), marker(81))]);
    check_line(&out[0], 20);
}

#[test]
fn unterminated_osc_is_capped_then_dropped() {
    let mut input = b"start\x1b]0;".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3 * MAX_ESCAPE_BYTES));
    input.extend_from_slice(b"\nnext line\n");
    let out = lines(&input);
    assert_eq!(out.len(), 2, "{out:?}");
    // The sequence is aborted MAX_ESCAPE_BYTES bytes after its ESC; the rest is text.
    let swallowed = MAX_ESCAPE_BYTES - "]0;".len();
    assert_eq!(
        out[0],
        format!("start{}", "x".repeat(3 * MAX_ESCAPE_BYTES - swallowed))
    );
    assert_eq!(out[1], "next line");
}

#[test]
fn unterminated_dcs_and_apc_are_capped() {
    for intro in [&b"\x1bP1$q"[..], b"\x1b_G", b"\x1b[?"] {
        let mut input = intro.to_vec();
        input.extend(std::iter::repeat_n(b'\n', 2 * MAX_ESCAPE_BYTES));
        input.extend_from_slice(b"visible\n");
        let out = lines(&input);
        assert_eq!(out.last().map(String::as_str), Some("visible"), "{intro:?}");
    }
}

#[test]
fn long_osc_of_continuation_bytes_is_capped() {
    let mut input = b"\x1b]0;".to_vec();
    input.extend(std::iter::repeat_n(0x80u8, 3 * MAX_ESCAPE_BYTES));
    input.extend_from_slice(b"\nok\n");
    let out = lines(&input);
    assert_eq!(out.last().map(String::as_str), Some("ok"));
}

#[test]
fn abort_is_a_no_op_in_plain_text() {
    // Long lines of multi-byte text cross the escape budget many times.
    let text = "é€😀x".repeat(3 * MAX_ESCAPE_BYTES / 10);
    assert_eq!(one(text.as_bytes()), text);
}

// ---- finish ---------------------------------------------------------------------------------

#[test]
fn finish_returns_partial_line() {
    let mut s = LineSplitter::new(64);
    assert_eq!(s.push(b"one\ntw"), ["one"]);
    assert_eq!(s.push(b"o"), Vec::<String>::new());
    assert_eq!(s.finish().as_deref(), Some("two"));
    assert_eq!(s.finish(), None);
    assert_eq!(s.push(b"x\n"), ["x"]);
    assert_eq!(s.finish(), None);
    s.push(b"\x1b[31m\x1b]0;unterminated");
    assert_eq!(s.finish(), None);
    s.push(b"cut \xe2\x82");
    assert_eq!(s.finish().as_deref(), Some("cut \u{fffd}"));
    // Colour does not leak into the next stream.
    s.push(b"\x1b[31mred");
    assert_eq!(s.finish().as_deref(), Some("\x1b[31mred\x1b[0m"));
    assert_eq!(s.push(b"plain\n"), ["plain"]);
}

// ---- convenience functions ------------------------------------------------------------------

#[test]
fn sanitise_line_joins_and_cleans() {
    assert_eq!(
        sanitise_line(b"Error: \x1b]0;x\x07bad\r\n\nthing\x1b[2J"),
        "Error: bad thing"
    );
    assert_eq!(sanitise_line(b""), "");
    assert_eq!(
        sanitise_line(b"\x1b[31mred\nstill red"),
        "\x1b[31mred\x1b[0m \x1b[31mstill red\x1b[0m"
    );
    let long = "word ".repeat(1000) + "\n";
    let out = sanitise_line(long.repeat(10).as_bytes());
    check_line(&out, DEFAULT_MAX_LINE_BYTES);
    assert!(out.ends_with(&marker(50010)), "{}", &out[out.len() - 60..]);
}

#[test]
fn strip_sgr_leaves_plain_text() {
    assert_eq!(
        strip_sgr("\x1b[1;31merror\x1b[0m: \x1b[38:2:0:1:2:3mx\x1b[0m"),
        "error: x"
    );
    assert_eq!(strip_sgr("plain"), "plain");
    // Not sanitiser output: still no control characters come out.
    assert_eq!(
        strip_sgr("a\x1b]0;t\x07b\x1b[2Jc\u{9b}d\x1b"),
        "a]0;tb[2Jcd"
    );
}

// ---- throughput shape -----------------------------------------------------------------------

/// 10 MB of mixed input: must be linear (quadratic behaviour would take minutes here).
#[test]
fn ten_megabytes_of_mixed_input() {
    let mut block = Vec::new();
    block.extend_from_slice(b"#5 [2/7] RUN opam install -y dune \x1b[1;32mok\x1b[0m\n");
    block.extend_from_slice(b"\x1b]0;title\x07\x1b[?1049h\x1b[2J\xff\xfe tabs\there\r\n");
    for i in 0..50 {
        block.extend_from_slice(format!("\x1b[36m{i:>3}%\x1b[0m [{}]\r", "#".repeat(i)).as_bytes());
    }
    block.extend_from_slice("é€😀 \u{9b}31m utf-8\n".as_bytes());
    // Cursor jumps that pad, then overwrite or erase; ignored EL 1 on a long line.
    block.extend_from_slice(&b"\x1b[256Gx\ry\x1b[2K\x1b[256Gx\r\x1b[K".repeat(20));
    block.extend_from_slice(&b"\x1b[99G|\n".repeat(5));
    block.extend(std::iter::repeat_n(b'b', 5_000));
    block.extend_from_slice(&b"\x1b[1K".repeat(500));
    block.push(b'\n');
    // Worst case for overwrites: a capped line rewritten with wider characters.
    block.extend(std::iter::repeat_n(b'a', 20_000));
    block.push(b'\r');
    block.extend_from_slice("€".repeat(20_000).as_bytes());
    block.push(b'\n');
    let per_block = lines(&block).len();
    let mut input = Vec::with_capacity(10 << 20);
    while input.len() < 10 << 20 {
        input.extend_from_slice(&block);
    }
    let blocks = input.len() / block.len();
    let mut s = LineSplitter::default();
    let mut count = 0;
    for chunk in input.chunks(64 * 1024) {
        for line in s.push(chunk) {
            assert!(line.len() <= DEFAULT_MAX_LINE_BYTES + MAX_LINE_SUFFIX_BYTES);
            count += 1;
        }
    }
    assert_eq!(s.finish(), None);
    assert_eq!(count, blocks * per_block);
}

// ---- corpus ---------------------------------------------------------------------------------

/// Every `tests/corpus/sanitiser/*.bin` holds the contract, split at every offset.
#[test]
fn corpus_files_hold_the_contract() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sanitiser");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("bin") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        for max in [8, DEFAULT_MAX_LINE_BYTES] {
            let whole = lines_with(max, &input);
            for line in &whole {
                check_line(line, max);
            }
            assert_eq!(lines_bytewise(max, &input), whole, "{path:?} bytewise");
            let step = (input.len() / 200).max(1);
            for cut in (0..=input.len()).step_by(step) {
                assert_eq!(
                    lines_chunked(max, &input, &[cut]),
                    whole,
                    "{path:?} cut {cut}"
                );
            }
        }
        seen += 1;
    }
    assert!(seen > 0, "no corpus files in {dir:?}");
}

// ---- properties -----------------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::FileFailurePersistence;

    fn config() -> ProptestConfig {
        // 256 cases (proptest's default; the PROPTEST_CASES environment variable overrides it).
        ProptestConfig {
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
                "tests/corpus/sanitiser/proptest-regressions.txt",
            ))),
            ..ProptestConfig::default()
        }
    }

    fn max_line_bytes() -> impl Strategy<Value = usize> {
        prop_oneof![0usize..48, Just(DEFAULT_MAX_LINE_BYTES)]
    }

    fn cuts(len: usize, raw: &[Index]) -> Vec<usize> {
        let mut cuts: Vec<usize> = raw.iter().map(|i| i.index(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }

    fn params() -> impl Strategy<Value = String> {
        prop::collection::vec((0u16..300, prop::bool::ANY), 0..6).prop_map(|ps| {
            let mut s = String::new();
            for (i, (p, colon)) in ps.into_iter().enumerate() {
                if i > 0 {
                    s.push(if colon { ':' } else { ';' });
                }
                s.push_str(&p.to_string());
            }
            s
        })
    }

    fn terminator() -> impl Strategy<Value = &'static [u8]> {
        prop_oneof![
            Just(&b"\x07"[..]),
            Just(&b"\x1b\\"[..]),
            Just(&b"\x18"[..]),
            Just(&b""[..]),
            Just(&b"\xc2\x9c"[..]),
        ]
    }

    /// One fragment of escape-heavy terminal output.
    fn token() -> impl Strategy<Value = Vec<u8>> {
        let controls = vec![&b"\n"[..], &b"\r\n"[..], &b"\r"[..], &b"\t"[..]];
        let csi_markers = vec!["", "?", ">", "!"];
        let osc_kinds = vec!["0;", "2;", "8;;", "52;c;", "8;id=1;"];
        let fills = vec![b'z', 0x80, 0xc3, b'\n'];
        let join = |head: String, tail: &[u8]| [head.as_bytes(), tail].concat();
        prop_oneof![
            4 => "[ -~]{0,12}".prop_map(String::into_bytes),
            2 => any::<String>().prop_map(String::into_bytes),
            3 => prop::sample::select(controls).prop_map(<[u8]>::to_vec),
            3 => params().prop_map(|p| format!("\x1b[{p}m").into_bytes()),
            1 => (0u8..=255).prop_map(|n| format!("\x1b[38;5;{n}m").into_bytes()),
            1 => (any::<u8>(), any::<u8>(), any::<u8>())
                .prop_map(|(r, g, b)| format!("\x1b[38:2::{r}:{g}:{b}m").into_bytes()),
            // Any CSI, including the in-line editing ones and SGR with private markers.
            2 => (prop::sample::select(csi_markers), params(), 0x40u8..0x7f)
                .prop_map(move |(m, ps, f)| join(format!("\x1b[{m}{ps}"), &[f])),
            2 => (prop::sample::select(osc_kinds), "[ -~]{0,10}", terminator())
                .prop_map(move |(k, t, end)| join(format!("\x1b]{k}{t}"), end)),
            1 => ("[ -~\n]{0,10}", terminator())
                .prop_map(move |(t, end)| join(format!("\x1bP1$q{t}"), end)),
            1 => (prop::sample::select(vec!["X", "^", "_"]), "[ -~]{0,6}", terminator())
                .prop_map(move |(k, t, end)| join(format!("\x1b{k}{t}"), end)),
            2 => any::<u8>().prop_map(|b| vec![0x1b, b]),
            2 => (0u8..0x20).prop_map(|b| vec![b]),
            1 => Just(vec![0x7f]),
            1 => (0x80u32..0xa0)
                .prop_map(|c| char::from_u32(c).unwrap().to_string().into_bytes()),
            2 => (0x80u8..=0xff).prop_map(|b| vec![b]),
            // Escape sequences right at the abort budget.
            1 => (MAX_ESCAPE_BYTES - 8..MAX_ESCAPE_BYTES + 8, prop::sample::select(fills))
                .prop_map(move |(n, fill)| join("\x1b]0;".into(), &vec![fill; n])),
        ]
    }

    fn escape_heavy() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(token(), 0..40).prop_map(|t| t.concat())
    }

    /// Line-editing tokens for the terminal model.
    fn editing_token() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-dé€😀]{1,4}",
            1 => prop::sample::select(vec!["\r", "\n", "\t", "\x1b[K", "\x1b[0K", "\x1b[2K"])
                .prop_map(str::to_string),
            1 => (prop::sample::select(vec!["G", "`", "C", "D"]), 0u8..12)
                .prop_map(|(a, n)| format!("\x1b[{n}{a}")),
        ]
    }

    /// What a terminal shows, given text, `\r`, `\t`, `\n` and the in-line CSI controls
    /// (one position per char).
    fn reference_screen(input: &str) -> Vec<String> {
        fn put(cells: &mut Vec<char>, col: &mut usize, c: char) {
            while cells.len() < *col {
                cells.push(' ');
            }
            if *col < cells.len() {
                cells[*col] = c;
            } else {
                cells.push(c);
            }
            *col += 1;
        }
        let mut out = Vec::new();
        let (mut cells, mut col): (Vec<char>, usize) = (Vec::new(), 0);
        let mut chars = input.chars();
        while let Some(c) = chars.next() {
            match c {
                '\n' => {
                    out.push(cells.drain(..).collect());
                    col = 0;
                }
                '\r' => col = 0,
                '\t' => {
                    let target = (col / 8 + 1) * 8;
                    if col < cells.len() {
                        col = target.min(cells.len());
                    }
                    while col < target {
                        put(&mut cells, &mut col, ' ');
                    }
                }
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['));
                    let mut n = 0usize;
                    let action = loop {
                        match chars.next().unwrap() {
                            d @ '0'..='9' => n = n * 10 + d.to_digit(10).unwrap() as usize,
                            a => break a,
                        }
                    };
                    match action {
                        'K' if n == 0 => cells.truncate(col),
                        'K' => cells.clear(),
                        'G' | '`' => col = n.max(1) - 1,
                        'C' => col += n.max(1),
                        'D' => col = col.saturating_sub(n.max(1)),
                        _ => unreachable!(),
                    }
                }
                c => put(&mut cells, &mut col, c),
            }
        }
        if !cells.is_empty() {
            out.push(cells.into_iter().collect());
        }
        out
    }

    fn check_all(input: &[u8], max: usize, raw_cuts: Vec<Index>) -> Result<(), TestCaseError> {
        let whole = lines_with(max, input);
        for line in &whole {
            check_line(line, max);
        }
        let chunked = lines_chunked(max, input, &cuts(input.len(), &raw_cuts));
        prop_assert_eq!(&chunked, &whole);
        prop_assert_eq!(&lines_bytewise(max, input), &whole);
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_hold_the_contract(
            input in prop::collection::vec(any::<u8>(), 0..1024),
            max in max_line_bytes(),
            raw_cuts in prop::collection::vec(any::<Index>(), 0..8),
        ) {
            check_all(&input, max, raw_cuts)?;
        }

        #[test]
        fn escape_heavy_input_holds_the_contract(
            input in escape_heavy(),
            max in max_line_bytes(),
            raw_cuts in prop::collection::vec(any::<Index>(), 0..8),
        ) {
            check_all(&input, max, raw_cuts)?;
        }

        #[test]
        fn untruncated_output_is_a_fixed_point(input in escape_heavy()) {
            for line in lines(&input) {
                if !line.contains(MARKER_TAIL) {
                    prop_assert_eq!(one_or_empty(line.as_bytes()), line);
                }
            }
        }

        #[test]
        fn line_editing_matches_a_terminal(
            tokens in prop::collection::vec(editing_token(), 0..80),
            raw_cuts in prop::collection::vec(any::<Index>(), 0..4),
        ) {
            let input = tokens.concat();
            let cuts = cuts(input.len(), &raw_cuts);
            let got = lines_chunked(DEFAULT_MAX_LINE_BYTES, input.as_bytes(), &cuts);
            prop_assert_eq!(got, reference_screen(&input));
        }

        #[test]
        fn stripping_sgr_leaves_the_text(
            parts in prop::collection::vec(prop_oneof![
                "[ -~é€]{0,10}".prop_map(|t| (t, false)),
                params().prop_map(|p| (format!("\x1b[{p}m"), true)),
                Just(("\n".to_string(), false)),
            ], 0..30),
        ) {
            let input: String = parts.iter().map(|(s, _)| s.as_str()).collect();
            let text: String =
                parts.iter().filter(|(_, sgr)| !sgr).map(|(s, _)| s.as_str()).collect();
            let got: Vec<String> = lines(input.as_bytes()).iter().map(|l| strip_sgr(l)).collect();
            let mut expected: Vec<String> = text.split('\n').map(str::to_string).collect();
            // A trailing partial line that shows nothing is not returned.
            if expected.last().is_some_and(String::is_empty) {
                expected.pop();
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn sanitise_line_holds_the_contract(input in escape_heavy()) {
            check_line(&sanitise_line(&input), DEFAULT_MAX_LINE_BYTES);
        }
    }

    fn one_or_empty(input: &[u8]) -> String {
        let out = lines(input);
        assert!(out.len() <= 1, "{out:?}");
        out.into_iter().next().unwrap_or_default()
    }
}
