//! The newcomer's frictions (issue 18) in a real terminal (tmux), on the built-in matrix with
//! one engine whose socket does not exist (no build runs: these are the screen's answers to
//! keys, the wheel and NO_COLOR): the Dockerfile view scrolls and searches, Esc goes back one
//! level, the wheel scrolls the pane under the pointer, a confirm says the engine is down, and
//! without colour the focus, the shown tab and a range are still marked.

mod common;

use std::process::Command;

use common::*;

/// The built-in matrix and an engine `x` at a socket that does not exist.
fn config(dir: &std::path::Path) -> String {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[[engine]]\nname = \"x\"\nendpoint = \"unix://{}/missing.sock\"\narches = [\"amd64\", \"arm64\"]\n\
             [paths]\ndata_dir = \"{}\"\n",
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The screen with its escape codes (`capture-pane -e`).
fn screen_with_codes(t: &Tmux) -> String {
    let o = Command::new("tmux")
        .args(["capture-pane", "-e", "-p", "-t", &t.session_name()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Type raw bytes into the pane (mouse reports, as a terminal sends them).
fn raw(t: &Tmux, bytes: &str) {
    Command::new("tmux")
        .args(["send-keys", "-t", &t.session_name(), "-l", bytes])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
}

fn start(dir: &std::path::Path, envs: &str, w: u16, h: u16) -> Tmux {
    let cfg = config(dir);
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let t = Tmux::start_sized(&format!("{envs} {bin} --config {cfg}; sleep 60"), w, h);
    t.wait_for(20, "x down");
    t
}

#[test]
fn the_dockerfile_view_scrolls_searches_and_goes_back_with_esc() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), "", 80, 24);
    t.keys(&["d"]);
    let s = t.wait_for(10, "FROM ");
    assert!(s.contains("Dockerfile"), "{s}");
    t.keys(&["G"]);
    let end = t.screen();
    assert!(!end.contains("FROM "), "G scrolls to the end:\n{end}");
    t.keys(&["g"]);
    t.wait_for(5, "FROM ");
    t.keys(&["/", "o", "p", "a", "m", " ", "i", "n", "i", "t", "Enter"]);
    let s = t.wait_for(5, "match 1/");
    assert!(
        !s.contains("no match"),
        "the search runs on the Dockerfile:\n{s}"
    );
    // Esc: the search first, then the grid gets the keyboard back.
    t.keys(&["Escape"]);
    let s = t.screen();
    assert!(!s.contains("match 1/"), "{s}");
    t.keys(&["Escape"]);
    t.wait_for(5, "hjkl move");
}

#[test]
fn the_wheel_scrolls_the_log_under_the_pointer_not_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), "", 80, 24);
    t.keys(&["d"]);
    t.wait_for(10, "FROM ");
    t.keys(&["Escape"]);
    let before = t.screen();
    let title = |s: &str| {
        s.lines()
            .find(|l| l.contains("Dockerfile"))
            .unwrap_or_default()
            .to_string()
    };
    // Wheel down three notches over the detail pane (row 20, column 10; SGR reports are
    // 1-based), with the grid focused.
    for _ in 0..3 {
        raw(&t, "\x1b[<65;10;20M");
    }
    let after = t.screen();
    assert_eq!(
        title(&before),
        title(&after),
        "the focused cell stays:\n{after}"
    );
    assert!(
        !after.contains("FROM "),
        "the Dockerfile scrolled:\n{after}"
    );
    // A click on the arm64 tab shows arm64 (the tabs start at column 13, 1-based).
    raw(&t, "\x1b[<0;22;1M");
    raw(&t, "\x1b[<0;22;1m");
    t.wait_for(5, "[arm64]");
}

#[test]
fn no_color_keeps_focus_tab_and_range_visible() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), "NO_COLOR=1", 80, 24);
    t.keys(&["v", "j", "l"]);
    t.wait_for(5, "VISUAL");
    let s = screen_with_codes(&t);
    // No colour code (38/48) at all, and every reset is followed by the attributes again.
    assert!(!s.contains("[38;") && !s.contains("[48;"), "{s:?}");
    assert!(s.contains("\x1b[7m"), "reverse marks the focus: {s:?}");
    assert!(s.contains("\x1b[4m"), "underline marks the range: {s:?}");
    assert!(t.screen().contains("[amd64]"), "the shown tab is bracketed");
    assert!(
        t.screen().contains("┏"),
        "the focused pane has a thick border"
    );
    t.keys(&["Escape"]);
    let s = t.screen();
    assert!(!s.contains("VISUAL"), "Esc cancels the range:\n{s}");
    t.keys(&["H"]);
    t.wait_for(5, "size: ▁ <25%");
}

#[test]
fn a_build_confirm_says_the_engine_is_down() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture templates: a recipe that needs no pinned input (the built-in ones need opam
    // and opam-repository resolved first, which would stop the cell before it queues).
    let cfg = config(dir.path());
    let templates =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("templates_dir = \"{}\"\n", templates.display()));
    std::fs::write(&cfg, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let t = Tmux::start_sized(&format!("{bin} --config {cfg}; sleep 60"), 100, 30);
    t.wait_for(20, "x down");
    t.keys(&["b"]);
    let s = t.wait_for(10, "Build 1 cell?");
    assert!(s.contains("x is down"), "{s}");
    assert!(s.contains("its builds wait until it answers"), "{s}");
    t.keys(&["n"]);
    t.wait_for(5, "build not started");
    t.keys(&["b", "y"]);
    t.wait_for(20, "queued: waiting for engine x");
}

/// The help searches like the log: `/quit` scrolls it to the quit key (below the first page
/// at 80x24) and marks it reversed (NO_COLOR: no colour carries it), `n` stays on the only
/// match, Esc clears the search and leaves the help open, a second Esc closes it.
#[test]
fn the_help_searches_with_slash_n_and_esc() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(dir.path(), "NO_COLOR=1", 80, 24);
    t.keys(&["?"]);
    let s = t.wait_for(5, "help ·");
    assert!(!s.contains("quit (asks"), "below the first page:\n{s}");
    t.keys(&["/", "q", "u", "i", "t"]);
    let s = t.wait_for(5, "search: quit");
    assert!(
        s.contains("help ·"),
        "the help stays under its prompt:\n{s}"
    );
    t.keys(&["Enter"]);
    let s = t.wait_for(5, "match 1 of 1 for \"quit\"");
    assert!(s.contains("quit (asks when builds are running)"), "{s}");
    let codes = screen_with_codes(&t);
    let line = codes
        .lines()
        .find(|l| l.contains("quit (asks"))
        .unwrap()
        .to_string();
    assert!(line.contains("\x1b[7m") || line.contains(";7m"), "{line:?}");
    t.keys(&["n"]);
    t.wait_for(5, "match 1 of 1 for \"quit\"");
    t.keys(&["/", "z", "z", "z", "Enter"]);
    t.wait_for(5, "no match for \"zzz\"");
    t.keys(&["Escape"]);
    let s = t.wait_for(5, "search cleared");
    assert!(s.contains("help ·"), "Esc clears the search first:\n{s}");
    t.keys(&["Escape"]);
    let s = t.wait_for(5, "hjkl move");
    assert!(!s.contains("help ·"), "{s}");
}
