//! The binary end to end: exit codes, JSON output, history and logs; a run of ten builds
//! killed with SIGKILL (nothing lost, builds marked interrupted, found again on the engines);
//! a full disk; a damaged history.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The binary, hermetic: no `IMAGEGRID_CONFIG`, and an empty home of its own, so that a
/// developer's `~/.config/imagegrid/config.toml` (or `XDG_CONFIG_HOME`) cannot change a result.
fn imagegrid(args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args(args)
        .env_remove("IMAGEGRID_CONFIG")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
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

    // A glob over the version part reaches the variants of tier-1 distros.
    let o = imagegrid(&["matrix", "--json", "debian-13/5.4*/amd64"]);
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
            "debian-13/5.4-afl/amd64",
            "debian-13/5.4-flambda/amd64",
            "debian-13/5.4-no-flat-float-array/amd64"
        ]
    );

    let o = imagegrid(&["dockerfile", "debian-13/opam/amd64"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.starts_with("# syntax=docker/dockerfile:1\n"), "{out}");
    assert!(
        out.contains("\nFROM debian:13\nLABEL distro_style=\"apt\"\n"),
        "{out}"
    );

    for absent in ["alpine-3.23/5.4/riscv64", "debian-13/5.4-flambda/ppc64le"] {
        let o = imagegrid(&["dockerfile", absent]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr).contains(&format!("no cell `{absent}`")),
            "{}",
            text(&o.stderr)
        );
    }

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
        err.contains(
            "fixture-broken/opam/amd64: failed: exit code 3: error: caml/mlvalues.h: No such file"
        ),
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
        "[[engine]]\nname = \"gone\"\nendpoint = \"unix://{}/nope.sock\"\n[paths]\ndata_dir = \"{}\"\n\
         [inputs]\nopam = \"no-opam\"\nopam_repository = \"no-opam-repository\"\n",
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
    // README's exit-status paragraph says so, and that a bad config is still 2.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        readme.contains(
            "`imagegrid check` is the exception: it exits 1 when some engine is unreachable"
        ),
        "README.md does not say what `check` exits with"
    );
    std::fs::write(&cfg, "[[engine]]\nname = 3\n").unwrap();
    let o = imagegrid(&["--config", cfg.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// A child's output lines, read on a thread of their own.
struct Lines {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Lines {
    /// The lines read so far.
    fn now(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
    /// Every line, once the reader has seen the end of the pipe (call it after the child
    /// exited: its end of the pipe is then closed).
    fn all(self) -> Vec<String> {
        self.reader.join().expect("the reader thread");
        std::sync::Arc::try_unwrap(self.lines)
            .expect("no other owner")
            .into_inner()
            .unwrap()
    }
}

/// Read a child's JSON lines on a thread, keeping them all.
fn collect_lines(out: std::process::ChildStdout) -> Lines {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = lines.clone();
    let reader = std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            match l {
                Ok(l) => keep.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
    Lines { lines, reader }
}

fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A child killed when dropped: a failing test must not leave a frozen imagegrid holding
/// never-ending builds open on the shared engines.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `imagegrid check --json`: each engine's running imagegrid build steps, as (cell, build, status).
fn running_steps(cfg: &str) -> Vec<(String, Option<i64>, String)> {
    let o = imagegrid(&["--config", cfg, "check", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut steps = Vec::new();
    for e in v["engines"].as_array().unwrap() {
        assert_eq!(e["error"], serde_json::Value::Null, "{e}");
        for s in e["running_build_steps"].as_array().unwrap() {
            steps.push((
                s["cell"].as_str().unwrap().to_string(),
                s["build"].as_i64(),
                s["build_status"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    steps.sort();
    steps
}

#[test]
fn killed_run_of_ten_builds_loses_nothing_and_its_builds_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let cells: Vec<String> = (0..10).map(|i| format!("fixture-k{i}")).collect();
    let mut distros = fixture_distro("fixture-before", &[]);
    for c in &cells {
        distros.push_str(&fixture_distro(c, &["ticks"]));
    }
    let names: Vec<String> = std::iter::once("fixture-before".to_string())
        .chain(cells.iter().cloned())
        .collect();
    // Five builds at once on each engine, classic builder: its steps run in containers.
    let engines = format!(
        "[[engine]]\nname = \"unix\"\nendpoint = \"{}\"\narches = [\"amd64\"]\nmax_parallel = 5\n\
         [[engine]]\nname = \"tls\"\nendpoint = \"{}\"\narches = [\"amd64\"]\nmax_parallel = 5\ntls = {{ dir = \"{}\" }}\n",
        env("IMAGEGRID_TEST_UNIX_HOST"),
        env("IMAGEGRID_TEST_TLS_HOST"),
        env("IMAGEGRID_TEST_TLS_DIR")
    );
    let loaded = fixture_config(
        dir.path(),
        "test-cli-killed-ten",
        &engines,
        &distros,
        &format!("distros = {names:?}\nversions = [\"5.4\"]\narches = [\"amd64\"]"),
    );
    with_build_options(&loaded, "buildkit = \"off\"");
    let cfg = dir.path().join("config.toml").display().to_string();

    // Recorded before the kill: must come through it unchanged.
    let o = imagegrid(&["--config", &cfg, "build", "fixture-before/opam/amd64"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let kept = imagegrid(&["--config", &cfg, "history", "--json"]);
    let kept: Vec<serde_json::Value> = serde_json::from_slice(&kept.stdout).unwrap();

    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_imagegrid"))
            .args([
                "--config",
                &cfg,
                "build",
                "fixture-k*/opam/amd64",
                "--json",
                "--no-cache",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = collect_lines(child.0.stdout.take().unwrap());
    // All ten stream their output.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let streaming: std::collections::BTreeSet<String> = json_lines(&lines.now())
            .iter()
            .filter(|e| e["event"] == "log" && e["line"].as_str().unwrap().ends_with("tick 3"))
            .map(|e| e["cell"].as_str().unwrap().to_string())
            .collect();
        if streaming.len() == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {streaming:?} reached their streaming step"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Frozen, its connections open: the engines go on building, and `check` finds every
    // build by its labels, tied to its history row.
    let pid = child.0.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let steps = running_steps(&cfg);
    let found: Vec<&str> = steps.iter().map(|(c, _, _)| c.as_str()).collect();
    let want: Vec<String> = cells.iter().map(|c| format!("{c}/opam/amd64")).collect();
    assert_eq!(found, want, "{steps:?}");
    assert!(
        steps.iter().all(|(_, b, s)| b.is_some() && s == "running"),
        "{steps:?}"
    );

    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    let events = json_lines(&lines.all());

    let o = imagegrid(&["--config", &cfg, "history", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hist: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(hist.len(), 11, "{hist:?}");
    assert_eq!(hist[0], kept[0], "the earlier build is untouched");
    for h in &hist[1..] {
        assert_eq!(h["status"], "interrupted", "{h}");
        // Every line shown before the kill is in the stored log, in order.
        let cell = h["cell"].as_str().unwrap();
        let shown: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "log" && e["cell"] == cell)
            .map(|e| e["line"].as_str().unwrap())
            .collect();
        let stored = std::fs::read_to_string(h["log_path"].as_str().unwrap()).unwrap();
        let stored: Vec<&str> = stored.lines().collect();
        assert!(shown.len() > 3, "{cell}: {shown:?}");
        assert!(
            stored.len() >= shown.len() && stored[..shown.len()] == shown[..],
            "{cell}: shown {} lines, stored {}",
            shown.len(),
            stored.len()
        );
    }

    // The engines stop the orphaned builds once the connections are gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = running_steps(&cfg);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "builds kept running after their client died: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn image_of_an_interrupted_build_is_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &fixture_distro("fixture-late", &[]),
        "\"fixture-late\"",
    );
    let o = imagegrid(&[
        "--config",
        &cfg,
        "build",
        "fixture-late/opam/amd64",
        "--no-cache",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // As if imagegrid had been killed between the image and its record.
    let db = rusqlite::Connection::open(dir.path().join("history.sqlite")).unwrap();
    let image: String = db
        .query_row("SELECT image_id FROM builds WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "UPDATE builds SET status = 'interrupted', image_id = NULL WHERE id = 1",
        [],
    )
    .unwrap();
    drop(db);
    let o = imagegrid(&["--config", &cfg, "check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found = &v["engines"][0]["images_of_interrupted_builds"];
    assert_eq!(
        found,
        &serde_json::json!([{ "build": 1, "cell": "fixture-late/opam/amd64", "image_id": image }]),
        "{v}"
    );
    let o = imagegrid(&["--config", &cfg, "check"]);
    assert!(
        text(&o.stdout).contains(&format!(
            "build 1 of fixture-late/opam/amd64 is marked interrupted, but this engine holds its image {image}"
        )),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn damaged_history_is_refused_with_a_copy_never_reset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[paths]\ndata_dir = \"{}\"\n", dir.path().display()),
    )
    .unwrap();
    let db = dir.path().join("history.sqlite");
    let garbage = b"not a database, but someone's history all the same\n".repeat(200);
    std::fs::write(&db, &garbage).unwrap();
    for args in [&["history"][..], &["build", "debian-13/opam/amd64"][..]] {
        let mut all = vec!["--config", cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = imagegrid(&all);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("history database {} is damaged", db.display())),
            "{err}"
        );
        assert!(err.contains("a copy is kept at"), "{err}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "never reset");
}

#[test]
fn headless_run_answers_an_interrupt_while_an_engine_is_frozen() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let frozen = rt.block_on(PrivateEngine::start());
    let dir = tempfile::tempdir().unwrap();
    let engines = frozen.engine_toml("frozen", &["amd64"]);
    let cfg = fixture_config(
        dir.path(),
        "test-cli-frozen",
        &engines,
        &fixture_distro("fixture-cli-frozen", &["sleep-3122"]),
        "distros = [\"fixture-cli-frozen\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    // Long enough that only the interrupt can end this run.
    with_build_options(&cfg, "idle_timeout_secs = 600");
    let cfg = dir.path().join("config.toml").display().to_string();
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_imagegrid"))
            .args([
                "--config",
                &cfg,
                "build",
                "fixture-cli-frozen/opam/amd64",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = collect_lines(child.0.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    while !json_lines(&lines.now())
        .iter()
        .any(|e| e["event"] == "log" && e["line"].as_str().unwrap().contains("slow step starting"))
    {
        assert!(
            Instant::now() < deadline,
            "the build never reached its slow step"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    frozen.signal("STOP");
    assert!(
        !frozen.answers_ping(Duration::from_secs(1)),
        "the engine still answers after SIGSTOP"
    );
    let pid = child.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    // A generous bound: this is a liveness check (nothing may wait on the frozen engine).
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end after an interrupt"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "cancelled cells are not a success");
    let done = json_lines(&lines.all())
        .into_iter()
        .find(|e| e["event"] == "done")
        .expect("a summary");
    assert_eq!(done["cancelled"], 1, "{done}");
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

#[test]
fn every_subcommand_help_has_an_example() {
    let o = imagegrid(&["--help"]);
    let help = text(&o.stdout);
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    for c in commands {
        let o = imagegrid(&[&c, "--help"]);
        let h = text(&o.stdout);
        assert!(
            h.contains("Example"),
            "`imagegrid {c} --help` has no example:\n{h}"
        );
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
    // The log files are read here as the builds left them: no prune (and compression) after
    // the runs (tests/retention.rs covers that).
    let mut text_cfg = std::fs::read_to_string(&cfg).unwrap();
    text_cfg.push_str("[history]\nprune_after_run = false\n");
    std::fs::write(&cfg, text_cfg).unwrap();
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
