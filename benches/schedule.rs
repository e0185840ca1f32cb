//! How close the schedule comes to the best possible finish (issue 19), against the real
//! test engines (`bash scripts/bench.sh --bench schedule` starts them): the matrix,
//! 8 distros whose base sleeps 3 s (fixture quirk `sleep-3`) with 3 compiler cells that
//! sleep 2 s each (`csleep-2`), on engines a (Docker 20.10) and m (Docker 26.1), 2 builds at
//! a time each, `build '*' --no-cache --json`; runs with base transfers on and off
//! (`--no-transfer`) interleaved, after one warm-up run (so both sides have a history).
//! Then a mixed matrix: 2 of the distros on arm64 too, emulated (QEMU) on engine a.
//!
//! Per run: makespan (the summary's `duration_secs`) over the lower bound, with speeds
//! measured from the run's own build durations as the issue defines them: per engine, the
//! median base and compiler durations (`Finished` events); the fastest engine's are the
//! work units; another engine's speed is the mean of its two ratios to the fastest (an
//! engine that built only one level: that ratio; none: the ratio pooled over all runs);
//! lower bound = max(critical path, total work / (sum of slots x speed)). The mixed run's
//! bound also counts the emulated work, which only engine a takes.
//!
//! `IMAGEGRID_BENCH_BASELINE` names an older binary to run as a third side, interleaved
//! (the schedule before this policy: least loaded first, compilers pinned to their base).
//! `IMAGEGRID_BENCH_BIN` names the binary (default: the release binary beside this bench);
//! `IMAGEGRID_BENCH_ROUNDS` (default 5) runs per side, `IMAGEGRID_BENCH_MIXED` (default 2)
//! mixed runs per side. Under `cargo test --all-targets` (no `--bench`) it only checks that
//! it was built.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/bench.sh --bench schedule`, which starts the test engines")
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

const DISTROS: usize = 8;
const SLOTS: f64 = 2.0;

/// The config: `mixed` adds arm64 to engine a and to the first two distros.
fn write_config(dir: &Path, mixed: bool) -> PathBuf {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let image = env("IMAGEGRID_TEST_FIXTURE_IMAGE");
    let tag = if mixed { "mix" } else { "amd" };
    let names: Vec<String> = (1..=DISTROS).map(|i| format!("sched-{tag}{i}")).collect();
    let a_arches = if mixed {
        "[\"amd64\", \"arm64\"]"
    } else {
        "[\"amd64\"]"
    };
    let mut t = format!(
        "[[engine]]\nname = \"a\"\nendpoint = \"{}\"\narches = {a_arches}\nmax_parallel = 2\n\
         [[engine]]\nname = \"m\"\nendpoint = \"{}\"\narches = [\"amd64\"]\nmax_parallel = 2\n\
         [matrix]\ndistros = {names:?}\nversions = [\"5.2\", \"5.3\", \"5.4\"]\narches = [\"amd64\", \"arm64\"]\n",
        env("IMAGEGRID_TEST_UNIX_HOST"),
        env("IMAGEGRID_TEST_MODERN_HOST"),
    );
    for (i, name) in names.iter().enumerate() {
        let arches = if mixed && i < 2 {
            "[\"amd64\", \"arm64\"]"
        } else {
            "[\"amd64\"]"
        };
        t.push_str(&format!(
            "[[distro]]\nname = \"{name}\"\nbase = \"{image}\"\nfamily = \"apk\"\ntier = 3\narches = {arches}\nquirks = [\"sleep-3\", \"csleep-2\"]\n"
        ));
    }
    let data = dir.join(format!("data-{tag}"));
    t.push_str(&format!(
        "[build]\nnetwork = \"none\"\n[tags]\nstaging = \"bench/schedule-{tag}\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        data.display(),
        templates.display()
    ));
    let p = dir.join(format!("config-{tag}.toml"));
    std::fs::write(&p, t).unwrap();
    p
}

/// One build ended: its cell, engine and duration.
struct Ended {
    cell: String,
    engine: String,
    secs: f64,
}

/// One run: its makespan, builds, transfers, and when each build started and ended.
struct Run {
    makespan: f64,
    builds: Vec<Ended>,
    transfers: u64,
    /// (cell, engine, started, ended), seconds since the command started: when its
    /// `started` and `finished` events were read (the events carry no clock of their own).
    spans: Vec<(String, String, f64, f64)>,
}

fn run(cfg: &Path, transfer: bool) -> Run {
    run_bin(&bin(), cfg, transfer)
}

/// One run of binary `bin` (a baseline binary predates `--no-transfer`: `transfer` true).
fn run_bin(bin: &Path, cfg: &Path, transfer: bool) -> Run {
    let mut args = vec![
        "--config",
        cfg.to_str().unwrap(),
        "build",
        "*",
        "--no-cache",
        "--json",
    ];
    if !transfer {
        args.push("--no-transfer");
    }
    // Read the events as they come, each stamped with when it was read: the timeline.
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stderr drained on a thread, so that a full pipe never stalls the build.
    let mut stderr = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut events: Vec<(f64, serde_json::Value)> = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Ok(v) = serde_json::from_str(&line) {
            events.push((t0.elapsed().as_secs_f64(), v));
        }
    }
    let status = child.wait().unwrap();
    let errs = errs.join().unwrap_or_default();
    assert!(status.success(), "build failed: {errs}");
    let mut started: HashMap<String, (String, f64)> = HashMap::new();
    let mut spans = Vec::new();
    for (t, v) in &events {
        let cell = v["cell"].as_str().unwrap_or_default().to_string();
        if v["event"] == "started" {
            let engine = v["engine"].as_str().unwrap_or_default().to_string();
            started.insert(cell, (engine, *t));
        } else if v["event"] == "finished" {
            if let Some((engine, s)) = started.remove(&cell) {
                spans.push((cell, engine, s, *t));
            }
        }
    }
    let events: Vec<serde_json::Value> = events.into_iter().map(|(_, v)| v).collect();
    let done = events
        .iter()
        .find(|v| v["event"] == "done")
        .expect("a done event");
    let builds = events
        .iter()
        .filter(|v| v["event"] == "finished" && v["status"] == "succeeded")
        .map(|v| Ended {
            cell: v["cell"].as_str().unwrap().to_string(),
            engine: v["engine"].as_str().unwrap().to_string(),
            secs: v["duration_secs"].as_f64().unwrap(),
        })
        .collect();
    Run {
        makespan: done["duration_secs"].as_f64().unwrap(),
        builds,
        transfers: done["transfers"].as_u64().unwrap_or(0),
        spans,
    }
}

/// The run as a chart: one row per build place of each engine, one column per half second;
/// `B` a base, `c` a compiler, `.` a free place. Builds go to the first free row of their
/// engine in start order (the engine's own places are not visible from outside).
fn timeline(r: &Run) -> String {
    const STEP: f64 = 0.5;
    let mut spans = r.spans.clone();
    spans.sort_by(|x, y| x.2.total_cmp(&y.2));
    let end = spans.iter().map(|s| s.3).fold(0.0, f64::max);
    let cols = (end / STEP).ceil() as usize + 1;
    let mut engines: Vec<String> = spans.iter().map(|s| s.1.clone()).collect();
    engines.sort();
    engines.dedup();
    let mut out = String::new();
    for e in &engines {
        let mut rows: Vec<(f64, Vec<u8>)> = Vec::new();
        for (cell, _, s, t) in spans.iter().filter(|x| &x.1 == e) {
            let i = match rows.iter().position(|(free_at, _)| *free_at <= *s + 1e-6) {
                Some(i) => i,
                None => {
                    rows.push((0.0, vec![b'.'; cols]));
                    rows.len() - 1
                }
            };
            rows[i].0 = *t;
            let glyph = if is_base(cell) { b'B' } else { b'c' };
            let (a, b) = ((s / STEP).round() as usize, (t / STEP).round() as usize);
            for c in &mut rows[i].1[a.min(cols)..b.min(cols)] {
                *c = glyph;
            }
        }
        for (k, (_, row)) in rows.iter().enumerate() {
            out.push_str(&format!("  {e}{k} |{}|\n", String::from_utf8_lossy(row)));
        }
    }
    out.push_str(&format!(
        "       0 s{:>w$}\n",
        format!("{end:.1} s"),
        w = cols - 2
    ));
    out
}

/// The median of `v`: the scheduler's own (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> Option<f64> {
    imagegrid::scheduler::durations::median(&mut v)
}

fn is_base(cell: &str) -> bool {
    cell.contains("/opam/")
}

/// Median (base, compiler) durations of the native amd64 builds of each engine.
fn medians(r: &Run) -> HashMap<String, (Option<f64>, Option<f64>)> {
    let mut by: HashMap<String, (Vec<f64>, Vec<f64>)> = HashMap::new();
    for b in r.builds.iter().filter(|b| b.cell.ends_with("/amd64")) {
        let e = by.entry(b.engine.clone()).or_default();
        if is_base(&b.cell) {
            e.0.push(b.secs)
        } else {
            e.1.push(b.secs)
        }
    }
    by.into_iter()
        .map(|(e, (b, c))| (e, (median(b), median(c))))
        .collect()
}

/// The lower bound of a run, and engine a's speed relative to m (the faster; `pooled`: a's
/// speed over all runs, for a run where it cannot be measured).
fn bound(r: &Run, pooled: f64) -> (f64, f64) {
    let m = medians(r);
    let get = |e: &str| m.get(e).copied().unwrap_or((None, None));
    let (ab, ac) = get("a");
    let (mb, mc) = get("m");
    let ratios: Vec<f64> = [(mb, ab), (mc, ac)]
        .into_iter()
        .filter_map(|(f, s)| Some(f? / s?))
        .collect();
    let speed_a = if ratios.is_empty() {
        pooled
    } else {
        ratios.iter().sum::<f64>() / ratios.len() as f64
    };
    // The fastest engine's durations are the work units (a's scaled when it is faster).
    let (fast, slow_speed) = if speed_a > 1.0 {
        ((ab, ac), 1.0 / speed_a)
    } else {
        ((mb, mc), speed_a)
    };
    let unit_b = fast
        .0
        .or(ab.zip(Some(speed_a)).map(|(x, s)| x * s))
        .unwrap();
    let unit_c = fast
        .1
        .or(ac.zip(Some(speed_a)).map(|(x, s)| x * s))
        .unwrap();
    let amd: Vec<&Ended> = r
        .builds
        .iter()
        .filter(|b| b.cell.ends_with("/amd64"))
        .collect();
    let bases = amd.iter().filter(|b| is_base(&b.cell)).count() as f64;
    let comps = amd.len() as f64 - bases;
    let work = bases * unit_b + comps * unit_c;
    let capacity = SLOTS + SLOTS * slow_speed;
    let mut lb = (unit_b + unit_c).max(work / capacity);
    // Emulated (arm64) builds: only a takes them; their wall time on a uses a's places.
    let emu: Vec<&Ended> = r
        .builds
        .iter()
        .filter(|b| b.cell.ends_with("/arm64"))
        .collect();
    if !emu.is_empty() {
        let emu_work: f64 = emu.iter().map(|b| b.secs).sum();
        let eb = median(
            emu.iter()
                .filter(|b| is_base(&b.cell))
                .map(|b| b.secs)
                .collect(),
        );
        let ec = median(
            emu.iter()
                .filter(|b| !is_base(&b.cell))
                .map(|b| b.secs)
                .collect(),
        );
        let a_units = if speed_a > 1.0 { 1.0 } else { speed_a };
        lb = lb
            .max(eb.unwrap_or(0.0) + ec.unwrap_or(0.0))
            .max(emu_work / SLOTS)
            .max((work + emu_work * a_units) / capacity);
    }
    (lb, speed_a)
}

fn report(label: &str, runs: &[Run], pooled: f64) {
    if runs.is_empty() {
        return; // IMAGEGRID_BENCH_ROUNDS=0: only the mixed matrix runs
    }
    let mut ratios = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        let (lb, speed) = bound(r, pooled);
        let ratio = r.makespan / lb;
        ratios.push(ratio);
        println!(
            "{label} run {}: makespan {:.1}s, lower bound {:.1}s, ratio {:.2}, a at {:.2} of m, {} transfers",
            k + 1,
            r.makespan,
            lb,
            ratio,
            speed,
            r.transfers
        );
    }
    // The timeline of the run whose ratio is the median's (the lower one of an even count).
    if !runs.is_empty() {
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&x, &y| ratios[x].total_cmp(&ratios[y]));
        let k = order[(runs.len() - 1) / 2];
        println!(
            "{label} run {} (the median), timeline (B base, c compiler, . free place):\n{}",
            k + 1,
            timeline(&runs[k])
        );
    }
    let makespans: Vec<f64> = runs.iter().map(|r| r.makespan).collect();
    println!(
        "{label}: median makespan {:.1}s, median ratio {:.2} (min {:.2}, max {:.2}) over {} runs (goal <= 1.10)",
        median(makespans).unwrap_or(0.0),
        median(ratios.clone()).unwrap_or(0.0),
        ratios.iter().copied().fold(f64::MAX, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
        runs.len()
    );
}

/// a's speed relative to m pooled over runs (median of the per-run ratios that exist).
fn pooled_speed(runs: &[&Run]) -> f64 {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            let m = medians(r);
            let (ab, ac) = m.get("a").copied()?;
            let (mb, mc) = m.get("m").copied()?;
            let ratios: Vec<f64> = [(mb, ab), (mc, ac)]
                .into_iter()
                .filter_map(|(f, s)| Some(f? / s?))
                .collect();
            (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64)
        })
        .collect();
    median(v).unwrap_or(1.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("schedule bench: built; run it with `bash scripts/bench.sh --bench schedule`");
        return;
    }
    let count = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(default)
    };
    let rounds = count("IMAGEGRID_BENCH_ROUNDS", 5);
    let mixed_rounds = count("IMAGEGRID_BENCH_MIXED", 2);
    let dir = tempfile::tempdir().unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "schedule: {DISTROS} distros x (base 3 s + 3 compilers 2 s), engines a (20.10) and m (26.1), 2 slots each; {rounds} runs per side; load average at start: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let cfg = write_config(dir.path(), false);
    let warm = run(&cfg, true);
    println!("warm-up run: {:.1}s", warm.makespan);
    let baseline = std::env::var("IMAGEGRID_BENCH_BASELINE")
        .ok()
        .map(PathBuf::from);
    let (mut on, mut off, mut base) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..rounds {
        // Rotate which side goes first, so that none always follows another.
        for side in 0..3 {
            match (side + k) % 3 {
                0 => on.push(run(&cfg, true)),
                1 => off.push(run(&cfg, false)),
                _ => {
                    if let Some(b) = &baseline {
                        base.push(run_bin(b, &cfg, true));
                    }
                }
            }
        }
    }
    let all: Vec<&Run> = on.iter().chain(&off).chain(&base).collect();
    let pooled = pooled_speed(&all);
    report("transfer on", &on, pooled);
    report("transfer off", &off, pooled);
    if !base.is_empty() {
        report("baseline", &base, pooled);
    }
    if mixed_rounds > 0 {
        let cfg = write_config(dir.path(), true);
        let warm = run(&cfg, true);
        println!("mixed warm-up run: {:.1}s", warm.makespan);
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for _ in 0..mixed_rounds {
            on.push(run(&cfg, true));
            off.push(run(&cfg, false));
        }
        report("mixed, transfer on", &on, pooled);
        report("mixed, transfer off", &off, pooled);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "schedule: load average at the end: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
