//! The binary end to end: exit codes, JSON output, history and logs, and a run killed
//! with SIGKILL leaving a readable history with its build marked interrupted.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn imagegrid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args(args)
        .env_remove("IMAGEGRID_CONFIG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn offline_commands() {
    let o = imagegrid(&["matrix", "--json", "debian-13/5.4/*"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let cells: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "debian-13/5.4/amd64",
            "debian-13/5.4/arm64",
            "debian-13/5.4/ppc64le",
            "debian-13/5.4/s390x",
            "debian-13/5.4/riscv64"
        ]
    );
    assert_eq!(cells[0]["depends_on"], "debian-13/opam/amd64");

    let o = imagegrid(&["dockerfile", "debian-13/opam/amd64"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("FROM debian:13 AS opam-builder"));

    let o = imagegrid(&["dockerfile", "alpine-3.24/5.4/riscv64"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no cell `alpine-3.24/5.4/riscv64`"),
        "{}",
        text(&o.stderr)
    );

    let o = imagegrid(&[
        "--config",
        "tests/configs/invalid/unknown_distro.toml",
        "matrix",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("tests/configs/invalid/unknown_distro.toml:4:3: matrix.distros: unknown distro `debian-14`"), "{}", text(&o.stderr));

    let o = imagegrid(&["build"]);
    assert_eq!(o.status.code(), Some(2), "no selector is a usage error");
    let o = imagegrid(&["--help"]);
    assert!(text(&o.stdout).contains("Examples:"));
}

fn write_config(dir: &std::path::Path, distros: &str, names: &str) -> String {
    let engines = unix_engine_toml("unix", &["amd64"]);
    fixture_config(
        dir,
        &format!(
            "test-cli-{}",
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .replace('.', "-")
                .to_lowercase()
        ),
        &engines,
        distros,
        &format!("distros = [{names}]\nversions = [\"5.4\"]\narches = [\"amd64\"]"),
    );
    dir.join("config.toml").display().to_string()
}

#[test]
fn build_exit_codes_json_history_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &(fixture_distro("fixture", &[]) + &fixture_distro("fixture-broken", &["fail"])),
        "\"fixture\", \"fixture-broken\"",
    );
    let o = imagegrid(&["--config", &cfg, "build", "fixture/5.4/amd64", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let events: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["succeeded"], 2, "the base came along: {last}");
    assert!(events.iter().any(|e| e["event"] == "log"));

    let o = imagegrid(&["--config", &cfg, "build", "fixture-broken/*/*"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("fixture-broken/opam/amd64: failed: step"),
        "{err}"
    );
    assert!(
        err.contains("fixture-broken/5.4/amd64: skipped: base fixture-broken/opam/amd64 failed"),
        "{err}"
    );

    let o = imagegrid(&["--config", &cfg, "history", "--json"]);
    let hist: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(hist.len(), 4);
    assert!(
        hist.iter()
            .any(|h| h["status"] == "failed"
                && h["failure"].as_str().unwrap().contains("exit code 3"))
    );

    let o = imagegrid(&["--config", &cfg, "log", "fixture-broken/opam/amd64"]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("caml/mlvalues.h"),
        "{}",
        text(&o.stdout)
    );

    // --failed picks exactly the failed cell (its dependant comes back through it).
    let o = imagegrid(&["--config", &cfg, "build", "--failed", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let started: Vec<String> = text(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "started")
        .map(|e| e["cell"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started, ["fixture-broken/opam/amd64"]);

    let o = imagegrid(&["--config", &cfg, "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("engine unix: reachable"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn unreachable_engine_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_text = format!(
        "[[engine]]\nname = \"gone\"\nendpoint = \"unix://{}/nope.sock\"\n[paths]\ndata_dir = \"{}\"\n",
        dir.path().display(),
        dir.path().display()
    );
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let o = imagegrid(&[
        "--config",
        cfg.to_str().unwrap(),
        "build",
        "debian-13/opam/amd64",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("engine gone: unreachable"),
        "{}",
        text(&o.stderr)
    );
    let o = imagegrid(&["--config", cfg.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("does not exist"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn killed_run_leaves_readable_history_with_interrupted_builds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &fixture_distro("fixture-killed", &["sleep-3119"]),
        "\"fixture-killed\"",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args([
            "--config",
            &cfg,
            "build",
            "fixture-killed/opam/amd64",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !process_running("sleep 3119") {
        assert!(
            Instant::now() < deadline,
            "the build never reached its slow step"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let o = imagegrid(&["--config", &cfg, "history", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hist: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0]["status"], "interrupted");
    // The log up to the kill is on disk.
    let o = imagegrid(&["--config", &cfg, "log", "fixture-killed/opam/amd64"]);
    assert!(
        text(&o.stdout).contains("slow step starting"),
        "{}",
        text(&o.stdout)
    );
    // The engine stops the orphaned build once the client connection is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_running("sleep 3119") {
        assert!(
            Instant::now() < deadline,
            "build kept running after its client died"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A tmpfs of a given size mounted for one test, unmounted (lazily, so a straggler cannot
/// keep it) when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("imagegrid-tmpfs.")
            .tempdir()
            .unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(ok.success(), "mount a tmpfs (the tests run as root)");
        Tmpfs { dir }
    }
    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fill a filesystem until it refuses, then free `keep_free` bytes.
fn fill(path: &std::path::Path, keep_free: u64) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                break;
            }
        }
    }
    f.set_len(written.saturating_sub(keep_free)).unwrap();
}

#[test]
fn full_disk_is_a_clear_error_and_corrupts_nothing() {
    let fs = Tmpfs::mount("4m");
    let data = fs.path();
    let cfg = write_config(
        data,
        &(fixture_distro("fixture", &[]) + &fixture_distro("fixture-spam", &["lines-200000"])),
        "\"fixture\", \"fixture-spam\"",
    );
    // A first build is recorded normally: it must survive what follows.
    let o = imagegrid(&["--config", &cfg, "build", "fixture/opam/amd64"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let before = imagegrid(&["--config", &cfg, "history", "--json"]);
    let before: Vec<serde_json::Value> = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(before.len(), 1);
    let first_log = std::fs::read(data.join("logs/1.log")).unwrap();

    // Room for the build's history row, not for its 1.3 MB log.
    fill(&data.join("filler"), 128 * 1024);
    let o = imagegrid(&[
        "--config",
        &cfg,
        "build",
        "fixture-spam/opam/amd64",
        "--json",
        "--no-cache",
    ]);
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a storage failure is an error: {err}"
    );
    let log2 = data.join("logs/2.log").display().to_string();
    assert!(
        err.contains(&format!("{log2}: No space left on device")),
        "names the file and the reason: {err}"
    );
    assert!(err.contains("history or log write(s) failed"), "{err}");
    let events: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "store_error" && e["message"].as_str().unwrap().contains(&log2)),
        "a store_error event names the file"
    );
    let db = data.join("history.sqlite").display().to_string();
    assert!(
        events.iter().any(|e| e["event"] == "store_error"
            && e["message"].as_str().unwrap().contains(&db)
            && e["message"].as_str().unwrap().contains("disk is full")),
        "the unrecorded end is reported too"
    );
    // The build itself went on and its result was still reported.
    assert!(
        events.iter().any(|e| e["event"] == "finished"
            && e["cell"] == "fixture-spam/opam/amd64"
            && e["status"] == "succeeded"),
        "{:?}",
        events
            .iter()
            .filter(|e| e["event"] != "log")
            .collect::<Vec<_>>()
    );

    // Still full: the history stays readable.
    let o = imagegrid(&["--config", &cfg, "history", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let during: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(during[0], before[0], "the earlier record is untouched");

    // Room again: nothing is corrupt, the earlier build is intact, the cut log is a clean prefix.
    std::fs::remove_file(data.join("filler")).unwrap();
    let o = imagegrid(&["--config", &cfg, "history", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(after[0], before[0]);
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        ["succeeded", "interrupted"].contains(&after[1]["status"].as_str().unwrap()),
        "{after:?}"
    );
    let conn = rusqlite::Connection::open(data.join("history.sqlite")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert_eq!(std::fs::read(data.join("logs/1.log")).unwrap(), first_log);
    let cut = std::fs::read_to_string(&log2).unwrap();
    // `seq` lines, BuildKit's `#N ` prefix removed; the last may be torn by the full disk.
    let numbers: Vec<u64> = cut
        .lines()
        .filter_map(|l| match l.split_once(' ') {
            Some((step, n)) if step.starts_with('#') => n.parse().ok(),
            _ => l.parse().ok(),
        })
        .collect();
    assert!(numbers.len() > 100, "some of the log was kept: {cut:.300}");
    let whole = &numbers[..numbers.len() - 1];
    assert!(
        whole.iter().zip(1..).all(|(n, want)| *n == want),
        "the kept log is the start of the output, in order: {:?}",
        &whole[..whole.len().min(20)]
    );
}
