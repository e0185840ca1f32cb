//! UI benchmarks, no engine needed (`cargo bench --bench ui`, or `bash scripts/bench.sh`):
//!
//! - render: one frame of the whole screen (src/ui/draw.rs over ratatui's TestBackend) with a
//!   2,000-cell matrix in a mix of states and a long colourful log shown (goal: a frame well
//!   inside the runtime's 16 ms frame budget);
//! - ingest: build output bytes -> sanitised lines (logs::LineSplitter) -> the UI's bounded
//!   buffers (LogBuffer, and the whole `App::on_event` path), in lines per second;
//! - memory: 10 million log lines streamed into the UI state, RSS from /proc/self/status
//!   along the way, in a process of its own (goal: flat once the buffers are full).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only checks that it was built.

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

use imagegrid::config;
use imagegrid::logs::{LineSplitter, LogBuffer, DEFAULT_MAX_LINE_BYTES};
use imagegrid::matrix::Matrix;
use imagegrid::scheduler::{BuildEvent, CellResult};
use imagegrid::store::BuildStatus;
use imagegrid::ui::state::{App, LOG_MAX_BYTES, LOG_MAX_LINES};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// 100 distros x (opam + 4 versions) x 4 arches.
fn matrix_2000() -> Matrix {
    let names: Vec<String> = (0..100).map(|i| format!("bench-{i:03}")).collect();
    let arches = r#"["amd64", "arm64", "ppc64le", "s390x"]"#;
    let mut t = format!(
        "[matrix]\ndistros = {names:?}\nversions = [\"4.14\", \"5.2\", \"5.3\", \"5.4\"]\narches = {arches}\n"
    );
    for n in &names {
        t.push_str(&format!(
            "[[distro]]\nname = \"{n}\"\nbase = \"debian:13\"\nfamily = \"apt\"\ntier = 2\narches = {arches}\n"
        ));
    }
    let loaded = config::parse("bench.toml", &t).expect("bench config");
    let m = Matrix::from_config(&loaded).expect("bench matrix");
    assert_eq!(
        m.cells.len(),
        2000,
        "the render benchmark is about 2,000 cells"
    );
    m
}

fn finished(cell: &str, status: BuildStatus, size: Option<i64>) -> BuildEvent {
    BuildEvent::Finished(CellResult {
        cell: cell.into(),
        status,
        build_id: Some(1.into()),
        engine: Some("a".into()),
        image_id: None,
        size,
        previous_size: size.map(|s| s - 1_000_000),
        failure: (status == BuildStatus::Failed)
            .then(|| "step `RUN make`, exit code 2: gcc: fatal error: killed".into()),
        failure_record: None,
        cause: None,
        duration_secs: Some(10.0),
        log_path: None,
    })
}

/// Realistic build output: compiler lines, coloured diagnostics, progress bars redrawn with
/// `\r`, BuildKit step lines, an occasional very long line.
fn build_output(lines: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines * 80);
    for i in 0..lines {
        match i % 10 {
            0 => out.extend_from_slice(format!("#{} [builder 4/9] RUN make -j4 world.opt\n", i % 40).as_bytes()),
            1..=5 => out.extend_from_slice(format!("ocamlfind ocamlopt -package unix -c src/module_{i}.ml -o _build/module_{i}.cmx\n").as_bytes()),
            6 => out.extend_from_slice(format!("\x1b[1msrc/x_{i}.ml:12:4:\x1b[0m \x1b[1;35mWarning 32\x1b[0m: unused value y.\n").as_bytes()),
            7 => {
                for p in (0..=100).step_by(20) {
                    out.extend_from_slice(format!("\rDownloading opam-repository {p:3}% [{:<20}]", "=".repeat(p / 5)).as_bytes());
                }
                out.push(b'\n');
            }
            8 => out.extend_from_slice(format!("[{i}/{lines}] \x1b[32mOK\x1b[0m\tcompiling\tstdlib/camlinternal{i}.ml\n").as_bytes()),
            _ => {
                if i % 1000 == 9 {
                    out.extend(std::iter::repeat_n(b'x', 20_000));
                    out.push(b'\n');
                } else {
                    out.extend_from_slice(b"make[2]: Leaving directory '/home/opam/ocaml/runtime'\n");
                }
            }
        }
    }
    out
}

fn app_2000() -> App {
    let mut app = App::new(
        matrix_2000(),
        &HashMap::new(),
        &BTreeSet::new(),
        (10_000_000, 5.0),
    );
    let ids: Vec<String> = app.matrix.cells.iter().map(|c| c.id.clone()).collect();
    for (i, id) in ids.iter().enumerate() {
        match i % 7 {
            0..=2 => app.on_event(finished(
                id,
                BuildStatus::Succeeded,
                Some(400_000_000 + i as i64),
            )),
            3 => app.on_event(finished(id, BuildStatus::Failed, None)),
            4 => {
                app.on_event(BuildEvent::Started {
                    cell: id.clone().into(),
                    engine: "a".into(),
                    build_id: (i as i64).into(),
                    emulated: false,
                });
                app.on_event(BuildEvent::Step {
                    cell: id.clone().into(),
                    current: 3,
                    total: 9,
                    name: "RUN make".into(),
                });
            }
            5 => app.on_event(BuildEvent::Queued {
                cell: id.clone().into(),
            }),
            _ => {}
        }
    }
    // The focused cell shows a long coloured log.
    let focused = app.focused().expect("a focused cell");
    let mut split = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
    for line in split.push(&build_output(5_000)) {
        app.on_event(BuildEvent::Log {
            cell: focused.clone().into(),
            line,
        });
    }
    app
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn render() {
    let mut app = app_2000();
    for (w, h, strip) in [
        (80, 24, false),
        (160, 48, false),
        (240, 70, false),
        (240, 70, true),
    ] {
        app.all_arches = strip;
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut times = Vec::new();
        for i in 0..300 {
            // Something changes every frame, as while builds run (the spinner ticks).
            app.tick = i;
            let t = Instant::now();
            term.draw(|f| {
                imagegrid::ui::draw::draw(f, &app);
            })
            .unwrap();
            times.push(t.elapsed());
        }
        let median = percentile(&mut times, 0.5);
        let p99 = percentile(&mut times, 0.99);
        println!(
            "render: 2,000 cells, {w}x{h}{}: median {:.2} ms, p99 {:.2} ms per frame (goal <= 16 ms)",
            if strip { ", all arches" } else { "" },
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}

fn ingest() {
    let lines = 500_000;
    let bytes = build_output(lines);
    let mb = bytes.len() as f64 / 1e6;
    // Engines deliver output in chunks of a few KB.
    let chunks: Vec<&[u8]> = bytes.chunks(4096).collect();
    let best = |f: &mut dyn FnMut() -> usize| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let n = f();
                (t.elapsed(), n)
            })
            .min()
            .unwrap()
    };
    let (t, n) = best(&mut || {
        let mut s = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
        let mut n = 0;
        for c in &chunks {
            n += black_box(s.push(c)).len();
        }
        n + s.finish().is_some() as usize
    });
    println!(
        "ingest: LineSplitter {:.0} lines/s ({:.0} MB/s of raw output, {n} lines)",
        n as f64 / t.as_secs_f64(),
        mb / t.as_secs_f64()
    );
    let (t, n) = best(&mut || {
        let mut s = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
        let mut buf = LogBuffer::new(LOG_MAX_LINES, LOG_MAX_BYTES);
        for c in &chunks {
            for l in s.push(c) {
                buf.push(l);
            }
        }
        buf.total_lines() as usize
    });
    println!(
        "ingest: LineSplitter + LogBuffer {:.0} lines/s (goal >= 200,000)",
        n as f64 / t.as_secs_f64()
    );
    let mut app = app_2000();
    let cells: Vec<String> = app
        .matrix
        .cells
        .iter()
        .take(16)
        .map(|c| c.id.clone())
        .collect();
    let (t, n) = best(&mut || {
        let mut s = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
        let mut n = 0;
        for (i, c) in chunks.iter().enumerate() {
            for line in s.push(c) {
                n += 1;
                app.on_event(BuildEvent::Log {
                    cell: cells[i % cells.len()].clone().into(),
                    line,
                });
            }
        }
        n
    });
    println!(
        "ingest: LineSplitter + App::on_event (16 builds, merged view) {:.0} lines/s",
        n as f64 / t.as_secs_f64()
    );
    // Failure rules on the way in: every sanitised line of a build goes through the rule
    // set (the built-in rules, plus a pattern that backtracking engines take exponential
    // time on), as the build task does.
    let lines: Vec<String> = {
        let mut s = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
        let mut v: Vec<String> = chunks.iter().flat_map(|c| s.push(c)).collect();
        v.extend(s.finish());
        v
    };
    let evil = imagegrid::config::parse(
        "bench.toml",
        "[[failure_rule]]\nname = \"evil\"\npattern = \"(a+)+$\"\n",
    )
    .expect("bench rule");
    for (what, loaded) in [
        ("built-in rules", config::LoadedConfig::defaults()),
        ("built-in rules + (a+)+$", evil),
    ] {
        let rules = imagegrid::causes::RuleSet::from_config(&loaded).expect("rules");
        let (t, n) = best(&mut || {
            let mut m = rules.matcher();
            for l in &lines {
                m.line(&rules, l);
            }
            black_box(m.cause(&rules));
            lines.len()
        });
        println!(
            "ingest: failure rules ({what}, {} rules) {:.0} lines/s (goal >= 200,000)",
            rules.rules().len(),
            n as f64 / t.as_secs_f64()
        );
    }
}

fn rss_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Runs in a process of its own, so that the other benchmarks' memory does not count.
fn memory_child() {
    let total: u64 = 10_000_000;
    let builds = 16;
    let mut app = app_2000();
    let cells: Vec<String> = app
        .matrix
        .cells
        .iter()
        .take(builds)
        .map(|c| c.id.clone())
        .collect();
    let base = rss_kb("VmRSS:");
    let chunk = build_output(10_000);
    let mut split = LineSplitter::new(DEFAULT_MAX_LINE_BYTES);
    let mut n = 0u64;
    let mut at_1m = 0;
    let t = Instant::now();
    while n < total {
        for (i, c) in chunk.chunks(4096).enumerate() {
            for line in split.push(c) {
                app.on_event(BuildEvent::Log {
                    cell: cells[i % builds].clone().into(),
                    line,
                });
                n += 1;
                if n == 1_000_000 {
                    at_1m = rss_kb("VmRSS:");
                }
            }
        }
    }
    let end = rss_kb("VmRSS:");
    let peak = rss_kb("VmHWM:");
    println!(
        "memory: {n} lines into the UI state ({builds} builds + merged view) in {:.1} s: RSS {:.1} MB before, {:.1} MB after 1M lines, {:.1} MB after {}M, peak {:.1} MB; held {} lines of the focused build (goal: flat after 1M, i.e. within 10%)",
        t.elapsed().as_secs_f64(),
        base as f64 / 1024.0,
        at_1m as f64 / 1024.0,
        end as f64 / 1024.0,
        n / 1_000_000,
        peak as f64 / 1024.0,
        app.log_of(&cells[0]).len()
    );
}

fn memory() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--bench", "--memory-child"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("ui bench: built; run it with `cargo bench --bench ui`");
        return;
    }
    if args.iter().any(|a| a == "--memory-child") {
        memory_child();
        return;
    }
    render();
    ingest();
    memory();
}
