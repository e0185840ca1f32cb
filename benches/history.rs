//! History at scale (`cargo build --release && cargo bench --bench history`; no engine):
//! a generated history of 100,000 builds (`IMAGEGRID_BENCH_BUILDS` to change it) over the
//! default matrix's cells, with layer lists made from each cell's real rendered Dockerfile,
//! about a year of weekly rounds of the whole matrix and more, one cell with 500 builds.
//! Measured (median of runs, and the worst peak RSS):
//!
//! - the release binary: `history <cell>` (goal < 50 ms, < 40 MB peak RSS), `history`
//!   (all, to /dev/null), `sizes` and `sizes --check` (goal < 300 ms), wall time and peak
//!   RSS from `/usr/bin/time`;
//! - in process: the TUI's first frame (session open, history view, state, one full draw on
//!   ratatui's TestBackend at 160x48; goal < 300 ms), and opening the inspector of the
//!   500-build cell (its successes through the store's thread, folded, drawn; goal < 50 ms).
//!
//! The load average of the machine is printed with the figures: compare like with like.
//! Under `cargo test --all-targets` (no `--bench` argument) it only checks that it was built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use imagegrid::config;
use imagegrid::dockerfile::Renderer;
use imagegrid::matrix::Matrix;
use imagegrid::session::Session;
use imagegrid::store::Store;
use imagegrid::ui::state::{App, Detail, Loadable};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A small deterministic generator (xorshift), so every run builds the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Layers (created_by, size) of a cell's build: one per instruction of its rendered
/// Dockerfile, in the classic builder's words, with sizes that drift from round to round.
fn layers_of(dockerfile: &str, rng: &mut Rng) -> Vec<serde_json::Value> {
    let mut out = vec![
        serde_json::json!({"size": 74_000_000 + rng.below(2_000_000) as i64, "created_by": "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / "}),
    ];
    let mut joined = String::new();
    for line in dockerfile.lines() {
        let l = line.trim_end();
        if let Some(head) = l.strip_suffix('\\') {
            joined.push_str(head);
            continue;
        }
        joined.push_str(l);
        let ins = std::mem::take(&mut joined);
        let ins = ins.trim();
        if ins.is_empty() || ins.starts_with('#') || ins.to_uppercase().starts_with("FROM") {
            continue;
        }
        let (created_by, size) = match ins.split_whitespace().next().unwrap_or("") {
            "RUN" => (
                format!("/bin/sh -c {}", &ins[4..]),
                1_000_000 + rng.below(180_000_000) as i64,
            ),
            "COPY" | "ADD" => (
                format!("/bin/sh -c #(nop) {ins}"),
                rng.below(5_000_000) as i64,
            ),
            _ => (format!("/bin/sh -c #(nop)  {ins}"), 0),
        };
        out.push(serde_json::json!({"size": size, "created_by": created_by}));
    }
    out
}

/// Write a history of `n` builds into `dir` (a fresh data directory). Returns the cell with
/// 500 builds.
fn generate(dir: &Path, n: usize) -> String {
    let loaded = config::parse("bench.toml", "").expect("built-in config");
    let m = Matrix::from_config(&loaded).expect("built-in matrix");
    let r = Renderer::new(None);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cells: Vec<(String, String)> = m
        .cells
        .iter()
        .filter(|c| c.os() == "linux")
        .map(|c| {
            let text = r
                .render(&m, c, None, &loaded.config.tags)
                .unwrap_or_default();
            (c.id.clone(), text)
        })
        .collect();
    let big = cells
        .iter()
        .find(|(c, _)| c == "debian-13/5.4/amd64")
        .map(|(c, _)| c.clone())
        .unwrap_or_else(|| cells[0].0.clone());
    drop(Store::open(dir).expect("create the history"));
    let mut conn = rusqlite::Connection::open(dir.join(imagegrid::store::DB_FILE)).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO builds (cell, engine, inputs, status, started_at, finished_at,
                 image_id, size, compressed_size, layers, failure, log_path, tag, base_image, pid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 1)",
            )
            .unwrap();
        // The 500 builds of the big cell are spread over the rounds; the other cells share
        // the rest, a round of the whole matrix a week, oldest first.
        let others = n.saturating_sub(500);
        let per_round = cells.len().max(1);
        let rounds = others.div_ceil(per_round).max(1);
        let big_every = (others / 500).max(1);
        let t_end = time::OffsetDateTime::now_utc();
        let mut written = 0usize;
        let mut big_written = 0usize;
        let mut i = 0usize;
        while written < n {
            let round = i / per_round;
            let (cell, text) = if big_written < 500 && i.is_multiple_of(big_every) {
                big_written += 1;
                cells.iter().find(|(c, _)| *c == big).unwrap()
            } else {
                &cells[i % per_round]
            };
            i += 1;
            let started = t_end - time::Duration::weeks((rounds - round.min(rounds)) as i64)
                + time::Duration::seconds((i % per_round) as i64 * 30);
            let finished = started + time::Duration::seconds(600 + rng.below(3000) as i64);
            let fmt = |t: time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            };
            let roll = rng.below(100);
            let status = match roll {
                0..=91 => "succeeded",
                92..=97 => "failed",
                98 => "cancelled",
                _ => "interrupted",
            };
            let ok = status == "succeeded";
            let layers = if ok {
                serde_json::to_string(&layers_of(text, &mut rng)).unwrap()
            } else {
                "[]".to_string()
            };
            let size: Option<i64> = ok.then(|| 300_000_000 + rng.below(900_000_000) as i64);
            let id = written as i64 + 1;
            ins.execute(rusqlite::params![
                cell,
                ["a", "b", "arm-box"][(rng.below(3)) as usize],
                format!("{:016x}", rng.next()),
                status,
                fmt(started),
                fmt(finished),
                ok.then(|| format!("sha256:{:064x}", rng.next())),
                size,
                (ok && rng.below(4) == 0).then(|| size.unwrap_or(0) / 3),
                layers,
                (status == "failed").then_some("step `RUN opam install`, exit code 2"),
                dir.join("logs")
                    .join(format!("{id}.log"))
                    .display()
                    .to_string(),
                format!("ocaml/opam-staging:{}", cell.replace('/', "-")),
                None::<String>,
            ])
            .unwrap();
            written += 1;
        }
        // A pinned baseline for a cell in ten.
        tx.execute(
            "INSERT OR IGNORE INTO baselines (cell, build_id, pinned_at)
             SELECT cell, MIN(id), '2026-01-01T00:00:00Z' FROM builds
             WHERE status = 'succeeded' AND (id % 10) = 0 GROUP BY cell",
            [],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    big
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("imagegrid");
    assert!(
        p.exists(),
        "build the binary first: cargo build --release ({})",
        p.display()
    );
    p
}

/// Wall time and peak RSS (KB) of the release binary, from /usr/bin/time.
fn timed(config: &Path, args: &[&str]) -> (Duration, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .arg(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .expect("/usr/bin/time (GNU time) runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    let mut it = last.split_whitespace();
    let secs: f64 = it
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let kb: u64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (Duration::from_secs_f64(secs), kb)
}

/// Wall time measured here (GNU time prints 10 ms steps), peak RSS from GNU time.
fn measure(config: &Path, args: &[&str], runs: usize) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut rss = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let (_, kb) = timed(config, args);
        times.push(t.elapsed());
        rss = rss.max(kb);
    }
    (median(times), rss)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("history bench: built; run it with `cargo bench --bench history`");
        return;
    }
    let n: usize = std::env::var("IMAGEGRID_BENCH_BUILDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    let t = Instant::now();
    let big = generate(&data, n);
    let db_bytes = std::fs::metadata(data.join(imagegrid::store::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "generated {n} builds in {:.1} s ({} MB database), load average {}",
        t.elapsed().as_secs_f64(),
        db_bytes / 1_000_000,
        load_average()
    );
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[paths]\ndata_dir = \"{}\"\n", data.display()),
    )
    .unwrap();
    // Open once so that a first open's work (marking interrupted rows) is not timed.
    drop(Store::open(&data).unwrap());
    let runs = 7;
    for (what, a, goal) in [
        (
            "history <cell>",
            vec!["history", big.as_str()],
            "< 50 ms, < 40 MB",
        ),
        ("history (all)", vec!["history"], "-"),
        ("sizes", vec!["sizes"], "< 300 ms"),
        ("sizes --check", vec!["sizes", "--check"], "< 300 ms"),
    ] {
        let (t, kb) = measure(&config, &a, runs);
        println!(
            "{what:16} median {:7.1} ms, peak RSS {:6.1} MB (goal {goal}), load average {}",
            t.as_secs_f64() * 1e3,
            kb as f64 / 1024.0,
            load_average()
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let loaded = config::load_file(&config).unwrap();
    let mut first = Vec::new();
    let mut inspector = Vec::new();
    for _ in 0..runs {
        let (l, m) = (loaded.clone(), Matrix::load(&loaded).unwrap());
        let t = Instant::now();
        let (session, mut app) = rt.block_on(async {
            let session = Session::open(l, m).unwrap();
            let history = session.history_view().await.unwrap();
            let sizes = &session.loaded.config.sizes;
            let mut app = App::new(
                (*session.matrix).clone(),
                &history.latest,
                &history.stale,
                (sizes.max_growth_bytes, sizes.max_growth_percent),
            );
            app.set_previous_sizes(&history.previous_size);
            (session, app)
        });
        let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
        term.draw(|f| {
            imagegrid::ui::draw::draw(f, &app);
        })
        .unwrap();
        first.push(t.elapsed());

        let t = Instant::now();
        app.detail = Detail::Inspector(Loadable::Loading(big.clone()));
        let cell = big.clone();
        let builds = session
            .store
            .try_blocking(move |s| s.successes_of(&cell))
            .unwrap();
        let count = builds.len();
        app.on_history_loaded(&big, builds);
        term.draw(|f| {
            imagegrid::ui::draw::draw(f, &app);
        })
        .unwrap();
        inspector.push(t.elapsed());
        assert!(count > 300, "the big cell has {count} successes");
        drop(session);
    }
    println!(
        "TUI first frame  median {:7.1} ms (goal < 300 ms), load average {}",
        median(first).as_secs_f64() * 1e3,
        load_average()
    );
    println!(
        "inspector (500)  median {:7.1} ms (goal < 50 ms), load average {}",
        median(inspector).as_secs_f64() * 1e3,
        load_average()
    );
}
