//! Build benchmarks against the real test engines (`bash scripts/bench.sh` starts them):
//!
//! - overhead: `imagegrid build` of one tiny cell vs `DOCKER_BUILDKIT=0 docker build` of the
//!   same Dockerfile on the same engine, no cache, median of N runs each, as a ratio (goal <= 1.1);
//! - throughput: 24 tiny cells over two engines vs a sequential shell loop of `docker build`
//!   over the same Dockerfiles, as a ratio (goal <= 0.5).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only checks that it was built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/bench.sh`, which starts the test engines")
    })
}

fn bin() -> PathBuf {
    // The release binary next to this bench executable's profile dir.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("imagegrid");
    assert!(
        p.exists(),
        "build the binary first: cargo build --release ({})",
        p.display()
    );
    p
}

fn run(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn write_config(dir: &Path, distros: &[String], engines: &str, buildkit: &str) -> PathBuf {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut t = engines.to_string();
    t.push_str(&format!(
        "[matrix]\ndistros = {distros:?}\nversions = [\"5.4\"]\narches = [\"amd64\"]\n"
    ));
    for d in distros {
        t.push_str(&format!(
            "[[distro]]\nname = \"{d}\"\nbase = \"{}\"\nfamily = \"apk\"\ntier = 3\narches = [\"amd64\"]\n",
            env("IMAGEGRID_TEST_FIXTURE_IMAGE")
        ));
    }
    t.push_str(&format!(
        "[build]\nnetwork = \"none\"\nbuildkit = \"{buildkit}\"\n[tags]\nstaging = \"bench/staging\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        dir.join("data").display(),
        templates.display()
    ));
    let p = dir.join("config.toml");
    std::fs::write(&p, t).unwrap();
    p
}

fn engine_toml(name: &str, host: &str, tls: bool, parallel: usize) -> String {
    let mut s = format!("[[engine]]\nname = \"{name}\"\nendpoint = \"{host}\"\narches = [\"amd64\"]\nmax_parallel = {parallel}\n");
    if tls {
        s.push_str(&format!(
            "tls = {{ dir = \"{}\" }}\n",
            env("IMAGEGRID_TEST_TLS_DIR")
        ));
    }
    s
}

/// `docker` CLI args for the unix engine.
fn docker(dir: &Path) -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", dir)
        .args(["-H", &env("IMAGEGRID_TEST_UNIX_HOST")]);
    c
}

/// `buildkit`: how imagegrid builds (`off`: the same classic builder as the docker CLI;
/// `auto`: as a user runs it, BuildKit where the engine has it).
fn overhead(rounds: usize, buildkit: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &["bench-one".into()],
        &engine_toml("unix", &env("IMAGEGRID_TEST_UNIX_HOST"), false, 2),
        buildkit,
    );
    let cfg = cfg.to_str().unwrap();
    let df = Command::new(bin())
        .args(["--config", cfg, "dockerfile", "bench-one/opam/amd64"])
        .output()
        .unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), &df.stdout).unwrap();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(run(Command::new(bin()).args([
            "--config",
            cfg,
            "build",
            "bench-one/opam/amd64",
            "--no-cache",
            "--json",
        ])));
        theirs.push(run(docker(dir.path())
            .args([
                "build",
                "-q",
                "--no-cache",
                "--network",
                "none",
                "--platform",
                "linux/amd64",
                "-t",
                "bench/loop:one",
            ])
            .arg(&ctx)));
    }
    let (o, t) = (median(ours), median(theirs));
    println!("overhead (imagegrid buildkit={buildkit}): imagegrid build {:.3}s vs docker build {:.3}s (median of {rounds}): ratio {:.2} (goal <= 1.10)", o.as_secs_f64(), t.as_secs_f64(), o.as_secs_f64() / t.as_secs_f64());
}

fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let distros: Vec<String> = (1..=12).map(|i| format!("bench-t{i}")).collect();
    let engines = engine_toml("unix", &env("IMAGEGRID_TEST_UNIX_HOST"), false, 3)
        + &engine_toml("tls", &env("IMAGEGRID_TEST_TLS_HOST"), true, 3);
    // imagegrid as a user runs it: BuildKit where the engine has it.
    let cfg = write_config(dir.path(), &distros, &engines, "auto");
    let cfg = cfg.to_str().unwrap();
    // The same 24 Dockerfiles for the loop: bases, then compilers FROM the loop's own bases.
    let mut loop_time = Duration::ZERO;
    for d in &distros {
        for (cell, from) in [
            (format!("{d}/opam/amd64"), None),
            (
                format!("{d}/5.4/amd64"),
                Some(format!("bench/loop:{d}-opam")),
            ),
        ] {
            let out = Command::new(bin())
                .args(["--config", cfg, "dockerfile", &cell])
                .output()
                .unwrap();
            let mut text = String::from_utf8(out.stdout).unwrap();
            if let Some(f) = &from {
                let first_from = text
                    .lines()
                    .find(|l| l.starts_with("FROM "))
                    .unwrap()
                    .to_string();
                text = text.replace(&first_from, &format!("FROM {f}"));
            }
            let ctx = dir.path().join(cell.replace('/', "_"));
            std::fs::create_dir_all(&ctx).unwrap();
            std::fs::write(ctx.join("Dockerfile"), text).unwrap();
            let tag = if from.is_none() {
                format!("bench/loop:{d}-opam")
            } else {
                format!("bench/loop:{d}-5.4")
            };
            loop_time += run(docker(dir.path())
                .args(["build", "-q", "--no-cache", "--network", "none", "-t", &tag])
                .arg(&ctx));
        }
    }
    let ours =
        run(Command::new(bin()).args(["--config", cfg, "build", "*", "--no-cache", "--json"]));
    println!(
        "throughput: 24 cells on 2 engines {:.2}s vs sequential docker build loop {:.2}s: ratio {:.2} (goal <= 0.50)",
        ours.as_secs_f64(),
        loop_time.as_secs_f64(),
        ours.as_secs_f64() / loop_time.as_secs_f64()
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("builds bench: built; run it with `bash scripts/bench.sh`");
        return;
    }
    overhead(5, "off");
    overhead(5, "auto");
    throughput();
}
