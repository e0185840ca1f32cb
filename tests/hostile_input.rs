//! Hostile input to the config loader and the selector parser (the log sanitiser has its own
//! properties in src/logs/tests.rs): generated and mutated input never panics, every config
//! error names file:line:column inside the text, and no error message carries a control
//! character back to the terminal.
//!
//! Seeds live in tests/corpus/config/ (every file there must also hold the contract);
//! proptest keeps shrunk failures in tests/corpus/{config,selector}/proptest-regressions.txt.

use std::path::{Path, PathBuf};

use imagegrid::config::{self, ConfigError};
use imagegrid::matrix::{Matrix, Selector};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const NAME: &str = "fuzz.toml";

fn persisted(path: &'static str) -> ProptestConfig {
    // 256 cases each (proptest's default; PROPTEST_CASES overrides it for a longer run).
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        ..ProptestConfig::default()
    }
}

/// No C0/C1 control character (ESC above all) may reach the terminal through an error.
fn assert_printable(what: &str, text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{what} carries a control character: {text:?}"
    );
}

/// Where a config error points is inside the text, and its message says so.
fn check_error(text: &str, e: &ConfigError) {
    assert_eq!(e.file, NAME);
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        e.line >= 1 && e.line <= lines.len(),
        "line {} of {}: {e}",
        e.line,
        lines.len()
    );
    let line = lines[e.line - 1];
    assert!(
        e.column >= 1 && e.column <= line.chars().count() + 1,
        "column {} of a {}-char line: {e}",
        e.column,
        line.chars().count()
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{NAME}:{}:{}: ", e.line, e.column)),
        "{shown}"
    );
    assert!(!e.message.trim().is_empty(), "{shown}");
    assert_printable("a config error", &shown);
}

/// The whole loader: parse, then build the matrix (unknown names, rules, exclusions).
fn load(text: &str) {
    match config::parse(NAME, text) {
        Ok(loaded) => {
            if let Err(e) = Matrix::from_config(&loaded) {
                check_error(text, &e);
            }
        }
        Err(e) => check_error(text, &e),
    }
}

fn corpus() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "tests/corpus/config",
        "tests/configs/valid",
        "tests/configs/invalid",
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.push(root.join("config.example.toml"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

#[test]
fn corpus_holds_the_contract() {
    let files = corpus();
    assert!(
        files
            .iter()
            .filter(
                |(p, _)| p.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"))
            )
            .count()
            >= 5,
        "tests/corpus/config has its seeds"
    );
    for (p, text) in &files {
        let r = std::panic::catch_unwind(|| load(text));
        assert!(r.is_ok(), "{} breaks the contract", p.display());
    }
}

// ---- generated configs ----------------------------------------------------------------------

/// Values of every kind, the hostile ones included.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("nan".to_string()),
        Just("true".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        "[a-z0-9./*:@_-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        // Control characters and escapes the terminal would act on, written as TOML escapes.
        prop::sample::select(vec![
            "\"\\u001b]0;pwned\\u0007\"",
            "\"\\u001b[2J\\u001b[?1049h\"",
            "\"a\\u0000b\"",
            "\"\\u009b31m\"",
            "\"\\r\\n\\t\\b\\f\"",
            "\"é€😀\\\\\"",
            "\"\\é\"",
            "'literal \\ no escape'",
            "\"\"\"multi\nline\"\"\"",
            "\"unterminated",
            "\"\\q bad escape\"",
            "\"ssh://root:hunter2@192.0.2.1\"",
            "\"tcp://192.0.2.1:2375\"",
            "\"unix:///tmp/x.sock\"",
            "\"debian-*/5.*/arm64\"",
            "\"a/[/c\"",
            "\"a//c\"",
        ])
        .prop_map(str::to_string),
        "[^\n]{0,16}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "endpoint",
            "arches",
            "max_parallel",
            "tls",
            "insecure",
            "ssh_key",
            "remote_socket",
            "distros",
            "versions",
            "exclude",
            "network",
            "buildkit",
            "pull",
            "idle_timeout_secs",
            "retries",
            "reconnect_wait_secs",
            "registry",
            "staging",
            "public",
            "data_dir",
            "templates_dir",
            "max_growth_bytes",
            "max_growth_percent",
            "base",
            "family",
            "tier",
            "quirks",
            "status",
            "tls.ca",
            "opam",
            "ocaml",
            "family_ocaml",
            "distro_latest",
            "family_latest",
            "latest",
            "username",
            "password_file",
            "password_env",
            "backoff_ms",
            "\"quoted key\"",
            "ключ",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,8}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => (key(), prop::collection::vec(value(), 0..4))
            .prop_map(|(k, vs)| format!("{k} = [{}]", vs.join(", "))),
        1 => (key(), key(), value()).prop_map(|(k, k2, v)| format!("{k} = {{ {k2} = {v} }}")),
        2 => prop::sample::select(vec![
            "[matrix]", "[build]", "[tags]", "[paths]", "[sizes]", "[publish]", "[[engine]]", "[[distro]]",
            "[engine]", "[[matrix]]", "[matrix.sub]", "[ build ]", "[[engine]", "[",
            "# comment", "", "   ", "\t", "key =", "= value", "\"\" = 1",
        ])
        .prop_map(str::to_string),
        1 => "[^\n]{0,24}",
    ]
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..24),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(lines, crlf, final_newline)| {
            let mut t = lines.join(if crlf { "\r\n" } else { "\n" });
            if final_newline {
                t.push('\n');
            }
            t
        })
}

/// A corpus file with random edits: bytes inserted, deleted or replaced anywhere.
fn mutated() -> impl Strategy<Value = String> {
    let seeds = corpus();
    let n = seeds.len();
    (
        0..n,
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                "[^\n]{0,3}|\n|\r|\"|\\[|\\]|=|\\{|\\}",
            ),
            1..8,
        ),
    )
        .prop_map(move |(i, edits)| {
            let mut chars: Vec<char> = seeds[i].1.chars().collect();
            for (at, kind, s) in edits {
                let pos = at.index(chars.len() + 1);
                match kind {
                    0 => {
                        chars.splice(pos..pos, s.chars());
                    }
                    1 if pos < chars.len() => {
                        let end = (pos + s.chars().count().max(1)).min(chars.len());
                        chars.drain(pos..end);
                    }
                    _ => {
                        let end = (pos + s.chars().count()).min(chars.len());
                        chars.splice(pos..end, s.chars());
                    }
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    #![proptest_config(persisted("tests/corpus/config/proptest-regressions.txt"))]

    #[test]
    fn generated_configs_hold_the_contract(text in document()) {
        load(&text);
    }

    #[test]
    fn mutated_configs_hold_the_contract(text in mutated()) {
        load(&text);
    }

    #[test]
    fn arbitrary_text_holds_the_contract(text in "\\PC{0,200}|[\\x00-\\x7f]{0,200}") {
        load(&text);
    }
}

// ---- selectors ------------------------------------------------------------------------------

fn selector_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.*?/-]{0,24}",
        "[a-z0-9.*?\\[\\]!^/-]{0,24}",
        "\\PC{0,24}",
        "[\\x00-\\x7f]{0,24}",
        Just("\u{1b}]0;pwned\u{7}/5.4/amd64".to_string()),
        Just("debian-\u{1b}[2J*".to_string()),
    ]
}

proptest! {
    #![proptest_config(persisted("tests/corpus/selector/proptest-regressions.txt"))]

    #[test]
    fn selectors_never_panic_and_errors_are_printable(text in selector_text()) {
        let matrix = Matrix::builtin();
        match Selector::parse(&text) {
            Ok(sel) => {
                for c in &matrix.cells {
                    let _ = sel.matches(c);
                }
                let _ = sel.literal_parts().count();
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(!e.trim().is_empty());
                assert_printable("a selector error", &e);
            }
        }
        if let Err(e) = matrix.parse_selectors(std::slice::from_ref(&text)) {
            assert_printable("a selector error", &e.to_string());
        }
    }

    #[test]
    fn every_cell_id_selects_its_cell(i in any::<prop::sample::Index>()) {
        let matrix = Matrix::builtin();
        let cell = i.get(&matrix.cells);
        let sels = matrix.parse_selectors(std::slice::from_ref(&cell.id)).unwrap();
        let picked: Vec<&str> = matrix.select(&sels).iter().map(|c| c.id.as_str()).collect();
        prop_assert_eq!(picked, vec![cell.id.as_str()]);
    }
}
