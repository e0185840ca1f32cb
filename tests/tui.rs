//! The real binary in a real terminal (tmux): the grid shows, a build runs from the
//! keyboard, a publish runs from the keyboard, the terminal is restored on quit, on SIGTERM
//! and on a panic (mouse capture included), and a frozen engine holds up neither the screen
//! nor the other engines.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn config(dir: &std::path::Path) -> String {
    let distros =
        fixture_distro("fixture", &[]) + &fixture_distro("fixture-tui-slow", &["sleep-3120"]);
    fixture_config(
        dir,
        "test-tui",
        &unix_engine_toml("local", &["amd64"]),
        &distros,
        "distros = [\"fixture\", \"fixture-tui-slow\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    dir.join("config.toml").display().to_string()
}

#[test]
fn builds_from_the_keyboard_and_restores_the_terminal_on_quit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let t = Tmux::start(&format!("{bin} --config {cfg}; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; echo EXITED; sleep 60"));
    t.wait_for(20, "● local");
    t.keys(&["r", "b"]);
    t.wait_for(15, "Build 2 cells?");
    t.keys(&["y"]);
    let s = t.wait_for(120, "run done: 2 succeeded");
    // A cell shows ✓ and the image's size (whatever Debian's busybox weighs this year).
    assert!(
        s.split("✓ ").skip(1).any(|after| {
            let size: String = after
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            !size.is_empty() && after[size.len()..].starts_with(['k', 'K', 'M', 'G'])
        }),
        "no size next to a ✓:\n{s}"
    );
    t.keys(&["q"]);
    let s = t.wait_for(10, "EXITED");
    assert!(
        s.lines().any(|l| l == "icanon"),
        "terminal left in raw mode:\n{s}"
    );
}

#[test]
fn a_panic_inside_the_tui_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    // IMAGEGRID_TEST_PANIC=1 (test only) makes the first key panic inside the event loop; no
    // backtrace, so that the panic message stays on the screen.
    let t = Tmux::start(&format!("IMAGEGRID_TEST_PANIC=1 RUST_BACKTRACE=0 {bin} --config {cfg}; stty -a | tr ' ' '\\n' | grep -x -- '-\\?\\(icanon\\|echo\\)'; echo EXITED; sleep 60"));
    t.wait_for(20, "● local");
    let flags = "#{alternate_on} #{mouse_any_flag} #{mouse_button_flag} #{mouse_standard_flag} #{mouse_sgr_flag}";
    // tmux keeps one tracking mode of 1000/1002/1003 (the last set: any-event) and SGR reports.
    assert_eq!(
        t.format("#{alternate_on} #{mouse_any_flag} #{mouse_sgr_flag}"),
        "1 1 1",
        "the TUI runs on the alternate screen, mouse captured"
    );
    t.keys(&["j"]);
    let s = t.wait_for(10, "EXITED");
    assert!(s.contains("a panic inside the TUI, as asked"), "{s}");
    assert!(
        s.lines().any(|l| l == "icanon"),
        "terminal left in raw mode:\n{s}"
    );
    assert!(
        s.lines().any(|l| l == "echo"),
        "terminal left without echo:\n{s}"
    );
    assert_eq!(
        t.format(flags),
        "0 0 0 0 0",
        "alternate screen or mouse capture left on after the panic"
    );
}

#[test]
fn sigterm_restores_the_terminal_and_cancels_builds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let t = Tmux::start(&format!("{bin} --config {cfg}; stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; echo EXITED; sleep 60"));
    t.wait_for(20, "● local");
    t.keys(&["j", "r", "b", "y"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !process_running("sleep 3120") {
        assert!(
            Instant::now() < deadline,
            "slow build never started:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = Command::new("pgrep")
        .args(["-f", &format!("^{bin} --config {cfg}")])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout)
        .lines()
        .next()
        .expect("imagegrid runs")
        .to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let s = t.wait_for(15, "EXITED");
    assert!(
        s.lines().any(|l| l == "icanon"),
        "terminal left in raw mode:\n{s}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_running("sleep 3120") {
        assert!(
            Instant::now() < deadline,
            "the build kept running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = Command::new(bin)
        .args(["--config", &cfg, "history", "--json"])
        .output()
        .unwrap();
    let hist: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        hist.iter()
            .any(|h| h["cell"] == "fixture-tui-slow/opam/amd64" && h["status"] == "cancelled"),
        "{hist:?}"
    );
}

#[test]
fn publishes_from_the_keyboard_and_reports_on_the_status_line() {
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("it-tui-{}-{}", std::process::id(), rand_suffix());
    fixture_config(
        dir.path(),
        &format!("{repo}/staging"),
        &unix_engine_toml("local", &["amd64"]),
        &fixture_distro("fixture", &[]),
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let cfg = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[tags]\n",
        &format!("[tags]\nregistry = \"{reg}\"\npublic = \"{repo}/opam\"\n"),
    );
    std::fs::write(&cfg, text).unwrap();
    let docker_config = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let t = Tmux::start(&format!(
        "DOCKER_CONFIG={} {bin} --config {}; echo EXITED; sleep 60",
        docker_config.path().display(),
        cfg.display()
    ));
    t.wait_for(20, "● local");
    // Nothing built yet: nothing to publish, and why.
    t.keys(&["P"]);
    t.wait_for(
        5,
        "nothing to publish: fixture-opam: not every arch is built",
    );
    t.keys(&["r", "b", "y"]);
    t.wait_for(120, "run done: 2 succeeded");
    t.keys(&["P"]);
    let s = t.wait_for(15, &format!("Publish 1 tag and 0 aliases to {reg}?"));
    assert!(s.contains("fixture-opam"), "{s}");
    t.keys(&["y"]);
    t.wait_for(
        60,
        "publish done: 1 tag and 0 aliases published, 0 not published",
    );
    let r = registry_get(
        &reg,
        &format!("/v2/{repo}/opam/manifests/fixture-opam"),
        "application/vnd.docker.distribution.manifest.list.v2+json",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["manifests"][0]["platform"]["architecture"],
        "amd64"
    );
    t.keys(&["q"]);
    t.wait_for(10, "EXITED");
}

#[test]
fn frozen_engine_holds_up_neither_the_screen_nor_other_engines() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let frozen = rt.block_on(PrivateEngine::start());
    let dir = tempfile::tempdir().unwrap();
    let engines = unix_engine_toml("local", &["amd64"]) + &frozen.engine_toml("frozen", &["arm64"]);
    fixture_config(
        dir.path(),
        "test-tui-frozen",
        &engines,
        &fixture_distro("fixture", &[]),
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
    );
    let cfg = dir.path().join("config.toml").display().to_string();
    // Stopped before imagegrid starts: connecting to it hangs until the connect timeout, and
    // every later health check hangs the same way.
    frozen.signal("STOP");
    let t = Tmux::start(&format!(
        "{} --config {cfg}; sleep 60",
        env!("CARGO_BIN_EXE_imagegrid")
    ));
    t.wait_for(20, "● local");
    // Connecting, or already past the connect timeout on a slow start: either way it is down.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = t.screen();
        if s.contains("frozen down: connecting") || s.contains("frozen down: no answer from") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the frozen engine is not shown down:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The keyboard is answered while the frozen engine has not answered yet (a generous bound:
    // this is a liveness check; the latency itself is measured in benches/load.rs).
    for _ in 0..3 {
        t.keys(&["?"]);
        t.wait_for(15, "help · ? Esc q close");
        t.keys(&["?"]);
        let deadline = Instant::now() + Duration::from_secs(15);
        while t.screen().contains("help · ? Esc q close") {
            assert!(
                Instant::now() < deadline,
                "help did not close:\n{}",
                t.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The other engine builds as usual.
    t.keys(&["r", "b"]);
    t.wait_for(15, "Build 2 cells?");
    t.keys(&["y"]);
    t.wait_for(120, "run done: 2 succeeded");
    // And the frozen one is reported once its connection attempt times out.
    t.wait_for(20, "frozen down: no answer from");
}

/// Field case F7 (ratatui#2431, unicode-width#22): a log of emoji newer than the terminal's
/// width tables, shown after a log of `Z`s in the same pane, must not keep the `Z`s where the
/// terminal drew nothing. Switching cells, resizing and coming back repaint the pane in full.
#[test]
fn switching_logs_leaves_no_residue_of_wide_characters() {
    let dir = tempfile::tempdir().unwrap();
    let distros =
        fixture_distro("fixture-z", &["zlines"]) + &fixture_distro("fixture-emoji", &["emoji"]);
    fixture_config(
        dir.path(),
        "test-tui-emoji",
        &unix_engine_toml("local", &["amd64"]),
        &distros,
        "distros = [\"fixture-z\", \"fixture-emoji\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let cfg = dir.path().join("config.toml").display().to_string();
    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let built = Command::new(bin)
        // Without the cache: a cached step prints nothing, and the engines are shared.
        .args([
            "--config",
            &cfg,
            "build",
            "fixture-*/opam/amd64",
            "--no-cache",
        ])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let t = Tmux::start_sized(&format!("{bin} --config {cfg}"), 120, 40);
    t.wait_for(20, "ZZZZZZZZZZ");
    let residue = |s: &str| {
        s.lines()
            .filter(|l| l.contains("u15 line") && l.contains('Z'))
            .count()
    };
    t.keys(&["j"]);
    let s = t.wait_for(20, "u15 line 60");
    assert_eq!(residue(&s), 0, "Z left on emoji rows:\n{s}");
    for size in [("80", "30"), ("120", "40")] {
        Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &t.session_name(),
                "-x",
                size.0,
                "-y",
                size.1,
            ])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(600));
    }
    t.keys(&["k", "j"]);
    let s = t.wait_for(20, "u15 line 60");
    assert_eq!(
        residue(&s),
        0,
        "Z left on emoji rows after resizing and switching:\n{s}"
    );
    assert!(
        s.lines()
            .filter(|l| l.starts_with('│'))
            .all(|l| l.trim_end().ends_with('│')),
        "a bordered row lost its right border:\n{s}"
    );
}
