//! Estimate error of the time left (`scheduler::estimate`), against the real test engines
//! (`bash scripts/bench.sh --bench eta` starts them): the same fixture matrix built again and
//! again with `--no-cache` into one history, each run's first estimate of its duration (the
//! summary's `eta_secs`) against its actual duration (`duration_secs`).
//!
//! The matrix: 6 distros whose base sleeps 1-4 s (fixture quirk `sleep-N`) with two compiler
//! cells each on amd64, and 2 of them on arm64 too, emulated (QEMU) on engine a; engines a
//! (Docker 20.10, amd64 and arm64, 2 at a time) and m (Docker 26.1, amd64, 2 at a time). Run 1
//! has no history (nothing to estimate by); every later run has the runs before it.
//!
//! `IMAGEGRID_BENCH_BIN` names the binary to run (default: the release binary beside this
//! bench). Under `cargo test --all-targets` (no `--bench` argument) it only checks that it
//! was built.

use std::path::{Path, PathBuf};
use std::process::Command;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/bench.sh --bench eta`, which starts the test engines")
    })
}

fn bin() -> PathBuf {
    if let Ok(p) = std::env::var("IMAGEGRID_BENCH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("imagegrid");
    assert!(
        p.exists(),
        "build the binary first: cargo build --release ({})",
        p.display()
    );
    p
}

const SLEEPS: [u32; 6] = [1, 2, 3, 4, 2, 1];

fn write_config(dir: &Path) -> PathBuf {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let image = env("IMAGEGRID_TEST_FIXTURE_IMAGE");
    let names: Vec<String> = (1..=SLEEPS.len()).map(|i| format!("eta-d{i}")).collect();
    let mut t = format!(
        "[[engine]]\nname = \"a\"\nendpoint = \"{}\"\narches = [\"amd64\", \"arm64\"]\nmax_parallel = 2\n\
         [[engine]]\nname = \"m\"\nendpoint = \"{}\"\narches = [\"amd64\"]\nmax_parallel = 2\n\
         [matrix]\ndistros = {names:?}\nversions = [\"5.3\", \"5.4\"]\narches = [\"amd64\", \"arm64\"]\n",
        env("IMAGEGRID_TEST_UNIX_HOST"),
        env("IMAGEGRID_TEST_MODERN_HOST"),
    );
    for (i, (name, sleep)) in names.iter().zip(SLEEPS).enumerate() {
        let arches = if i < 2 {
            "[\"amd64\", \"arm64\"]"
        } else {
            "[\"amd64\"]"
        };
        t.push_str(&format!(
            "[[distro]]\nname = \"{name}\"\nbase = \"{image}\"\nfamily = \"apk\"\ntier = 3\narches = {arches}\nquirks = [\"sleep-{sleep}\"]\n"
        ));
    }
    t.push_str(&format!(
        "[build]\nnetwork = \"none\"\n[tags]\nstaging = \"bench/eta\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        dir.join("data").display(),
        templates.display()
    ));
    let p = dir.join("config.toml");
    std::fs::write(&p, t).unwrap();
    p
}

/// One `build '*' --no-cache --json`: (first estimate, actual duration) from its summary.
fn run(cfg: &Path) -> (Option<f64>, f64) {
    let o = Command::new(bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "build",
            "*",
            "--no-cache",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let done = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "done")
        .expect("a done event");
    (
        done["eta_secs"].as_f64(),
        done["duration_secs"].as_f64().unwrap(),
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("eta bench: built; run it with `bash scripts/bench.sh --bench eta`");
        return;
    }
    let rounds: usize = std::env::var("IMAGEGRID_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "eta: {} cells, {rounds} runs, machine load average at start: {}",
        SLEEPS.len() * 3 + 2 * 3,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut errors = Vec::new();
    for r in 1..=rounds {
        let (est, actual) = run(&cfg);
        match est {
            Some(e) => {
                let err = (e - actual) / actual * 100.0;
                errors.push(err.abs());
                println!("run {r}: estimated {e:.1}s, actual {actual:.1}s, error {err:+.1}%");
            }
            None => println!("run {r}: no estimate (no history yet), actual {actual:.1}s"),
        }
    }
    errors.sort_by(f64::total_cmp);
    if !errors.is_empty() {
        println!(
            "eta: |error| median {:.1}%, max {:.1}% over {} estimated runs (goal: within 25%)",
            errors[errors.len() / 2],
            errors[errors.len() - 1],
            errors.len()
        );
    }
}
