//! `imagegrid demo` runs headless against the test engines and shows what it promises:
//! two levels, two arches, a failing cell with a readable summary, a size regression.

mod common;

use std::process::Command;

use common::*;

#[test]
fn demo_shows_a_failure_and_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        unix_engine_toml("local", &["amd64"]) + &tls_engine_toml("remote", &["arm64"]),
    )
    .unwrap();
    let demo_dir = dir.path().join("demo");
    let base = format!("{}:{{arch}}", env("IMAGEGRID_TEST_FIXTURE_IMAGE"));
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_imagegrid"))
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "demo",
                "--headless",
                "--base",
                &base,
                "--data-dir",
                demo_dir.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    let o = run();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    for arch in ["amd64", "arm64"] {
        assert!(
            out.contains(&format!("failed     demo-broken/opam/{arch}: exit code")),
            "{out}"
        );
        assert!(
            out.contains(&format!("regressed  demo-debian/opam/{arch}")),
            "{out}"
        );
    }
    assert!(
        out.contains("OCaml headers not found"),
        "the summary explains the failure: {out}"
    );
    // Both levels built, on both engines (arm64 emulated on the TLS engine).
    assert!(err.contains("demo-alpine/5.4/arm64: succeeded"), "{err}");
    assert!(err.contains("demo-debian/4.14/amd64: succeeded"), "{err}");
    // Its history is its own.
    assert!(demo_dir.join("history.sqlite").exists());
    // A second run keeps the history and builds nothing new: round 1 is done, nothing is stale.
    let builds = || {
        imagegrid::store::Store::open(&demo_dir)
            .unwrap()
            .all()
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.cell))
            .collect::<Vec<_>>()
    };
    let before = builds();
    assert!(!before.is_empty());
    let o = run();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(builds(), before, "the second run recorded builds: {err}");
    assert!(
        !err.contains(": succeeded") && !err.contains(": failed"),
        "the second run built something: {err}"
    );
    assert!(
        err.contains("reusing the demo history in") && err.contains(&base),
        "a rerun says it reuses the history, and with which base: {err}"
    );
}

#[test]
fn demo_refuses_a_base_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    // An image with one file and no /bin/sh, imported on the engine (no registry, no build).
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("hello"), "no shell here\n").unwrap();
    let tar = dir.path().join("noshell.tar");
    assert!(Command::new("tar")
        .args([
            "-cf",
            tar.to_str().unwrap(),
            "-C",
            rootfs.to_str().unwrap(),
            "."
        ])
        .status()
        .unwrap()
        .success());
    let image = format!("imagegrid-test-noshell:{}", rand_suffix());
    let host = env("IMAGEGRID_TEST_UNIX_HOST");
    let import = Command::new("docker")
        .args(["-H", &host, "import", "--platform", "linux/amd64"])
        .arg(&tar)
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, unix_engine_toml("local", &["amd64"])).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "demo",
            "--headless",
            "--base",
            &image,
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["-H", &host, "rmi", &image])
        .output();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "the demo base {image} cannot run /bin/sh for linux/amd64"
        )),
        "{err}"
    );
    assert!(
        !err.contains("round 1 builds"),
        "refused before any build: {err}"
    );
}

#[test]
fn demo_explains_a_missing_base_image() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, unix_engine_toml("local", &["amd64"])).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "demo",
            "--headless",
            "--base",
            "127.0.0.1:9/imagegrid-nonexistent/base:1",
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "the demo needs the image 127.0.0.1:9/imagegrid-nonexistent/base:1 on engine local"
        ) && err.contains("--base"),
        "{err}"
    );
}

#[test]
fn demo_opens_the_grid_on_round_two_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        unix_engine_toml("local", &["amd64"]) + &tls_engine_toml("remote", &["arm64"]),
    )
    .unwrap();
    let base = format!("{}:{{arch}}", env("IMAGEGRID_TEST_FIXTURE_IMAGE"));
    // Without --headless: round 1 builds, then the TUI opens on round 2's changed matrix.
    let t = Tmux::start_sized(
        &format!(
            "{} --config {} demo --base '{base}' --data-dir {}; echo EXITED; sleep 60",
            env!("CARGO_BIN_EXE_imagegrid"),
            cfg.display(),
            dir.path().join("demo").display()
        ),
        160,
        48,
    );
    t.wait_for(300, "demo: demo-debian changed since round 1");
    // Its stale cells are demo-debian's: opam, 4.14 and 5.4 on amd64 and arm64.
    t.keys(&["S"]);
    t.wait_for(15, "6 stale cells selected");
    t.keys(&["b"]);
    t.wait_for(15, "Build 6 cells?");
    t.keys(&["y"]);
    t.wait_for(300, "run done: 6 succeeded");
    t.keys(&["q"]);
    t.wait_for(15, "EXITED");
}
