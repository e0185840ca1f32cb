//! Load and fault benchmarks against the real test engines (`bash scripts/bench.sh` starts them):
//!
//! - load: 2,000 tiny cells (FROM the fixture image, a 2 s `RUN sleep`, a LABEL) queued
//!   across three engines (the unix engine, the TLS engine and a private one), through the
//!   TUI's own code path: `Session::open`, the state from `ui::initial_app`, an interactive
//!   scheduler, every effect run by the TUI's `Executor` (a focus change reads the stored log
//!   on the blocking pool and folds it back in), frames drawn by `ui::draw` on a TestBackend;
//!   a key pressed every 50 ms. A thread of its own samples /proc every 50 ms: which engine
//!   runs how many cell steps (the `sleep` processes, by the engine directory on their
//!   ancestors' command lines), and this process's open files and RSS, from before the run
//!   starts. Reports the sampled concurrency against each engine's limit next to what the
//!   scheduler's own health events say, throughput, key-to-frame latency, open files and RSS.
//! - frozen engine: the real binary in tmux, a build hung on a SIGSTOPped engine; time from a
//!   key to the screen showing its effect (tmux's own round trip included), before and after
//!   the freeze; and time from SIGINT to exit of a headless run whose engine is frozen.
//! - keys: the real binary in tmux on 288 fixture cells that really build (48 distros x
//!   (base + 5 versions) x amd64, engines a and b); time from an arrow key to the screen naming
//!   the newly focused cell, on the idle grid (tmux's own round trip), then with every cell
//!   selected, `b` `y`, while the run starts and streams.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only checks that it was built.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env, PrivateEngine};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use imagegrid::config;
use imagegrid::engine::Engine;
use imagegrid::matrix::Matrix;
use imagegrid::scheduler::{BuildEvent, Command as SchedulerCommand, RunMode};
use imagegrid::session::Session;
use imagegrid::ui::effects::{Executor, Loaded};
use imagegrid::ui::state::Effect;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const PARALLEL: usize = 4;
const STAGING: &str = "bench-load/staging";

fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The engines of the load run, as config tables.
fn engines_toml(private: &PrivateEngine) -> String {
    let mut t = String::new();
    for (name, host, tls) in [
        ("a", env("IMAGEGRID_TEST_UNIX_HOST"), false),
        ("b", env("IMAGEGRID_TEST_TLS_HOST"), true),
        ("c", format!("unix://{}", private.socket.display()), false),
    ] {
        t.push_str(&format!(
            "[[engine]]\nname = \"{name}\"\nendpoint = \"{host}\"\narches = [\"amd64\"]\nmax_parallel = {PARALLEL}\n"
        ));
        if tls {
            t.push_str(&format!(
                "tls = {{ dir = \"{}\" }}\n",
                env("IMAGEGRID_TEST_TLS_DIR")
            ));
        }
    }
    t
}

/// 400 distros x (opam + 4 versions) x amd64 = 2,000 cells (`IMAGEGRID_BENCH_DISTROS`
/// changes the 400, `IMAGEGRID_BENCH_BUILDKIT` the builder, for shorter or narrower runs).
fn load_config(dir: &Path, engines: &str) -> config::LoadedConfig {
    let n: usize = std::env::var("IMAGEGRID_BENCH_DISTROS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let buildkit = std::env::var("IMAGEGRID_BENCH_BUILDKIT").unwrap_or_else(|_| "auto".into());
    let names: Vec<String> = (0..n).map(|i| format!("load-{i:03}")).collect();
    let mut t = engines.to_string();
    t.push_str(&format!(
        "[matrix]\ndistros = {names:?}\nversions = [\"4.14\", \"5.2\", \"5.3\", \"5.4\"]\narches = [\"amd64\"]\n"
    ));
    for n in &names {
        t.push_str(&format!(
            "[[distro]]\nname = \"{n}\"\nbase = \"{}\"\nfamily = \"apk\"\ntier = 3\narches = [\"amd64\"]\n",
            env("IMAGEGRID_TEST_FIXTURE_IMAGE")
        ));
    }
    t.push_str(&format!(
        "[build]\nnetwork = \"none\"\nbuildkit = \"{buildkit}\"\n[tags]\nstaging = \"{STAGING}\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        dir.join("data").display(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/templates").display()
    ));
    let p = dir.join("config.toml");
    std::fs::write(&p, t).unwrap();
    config::load_file(&p).unwrap()
}

/// Remove the tags of `staging` (one benchmark's repository) from the shared engines (the
/// private one dies with its data).
async fn clean_shared_engines(staging: &str) {
    for spec in [
        common::unix_spec("a", &["amd64"]),
        common::tls_spec("b", &["amd64"]),
    ] {
        let e = Engine::connect(&spec).await.unwrap();
        let filters: HashMap<&str, Vec<&str>> = HashMap::from([("reference", vec![staging])]);
        let opts = bollard::query_parameters::ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        for img in e.docker().list_images(Some(opts)).await.unwrap_or_default() {
            for tag in img.repo_tags {
                let _ = e
                    .docker()
                    .remove_image(
                        &tag,
                        None::<bollard::query_parameters::RemoveImageOptions>,
                        None,
                    )
                    .await;
            }
        }
    }
}

/// Per engine: time spent at each concurrency while cells were still queued, as the
/// scheduler's own health events report it.
#[derive(Default)]
struct Concurrency {
    running: usize,
    max: usize,
    since: Option<Instant>,
    /// Time at `PARALLEL` running, and time with work waiting but fewer running.
    at_limit: Duration,
    below_limit: Duration,
}

/// The command line of each cell's step (benches/templates): the process /proc shows while
/// a build runs it.
const STEP_CMDLINE: &str = "/bin/busybox\x00sleep\x002\x00";

/// One look at /proc: per engine (by the directory its dockerd, containerd and shims name on
/// their command lines), how many cell steps are running on it.
fn running_steps(engines: &[(String, String)]) -> Vec<usize> {
    let mut counts = vec![0; engines.len()];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return counts;
    };
    let cmdline = |pid: &str| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let parent = |pid: &str| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid ...: comm may hold spaces, so split after its last ')'.
        let after = &stat[stat.rfind(')')? + 2..];
        after.split_whitespace().nth(1).map(str::to_string)
    };
    for entry in dir.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || cmdline(&pid) != STEP_CMDLINE.as_bytes() {
            continue;
        }
        // Up the tree to the first process that names one of the engines' directories.
        let mut p = pid;
        for _ in 0..8 {
            let Some(pp) = parent(&p) else { break };
            let text = String::from_utf8_lossy(&cmdline(&pp)).replace('\0', " ");
            if let Some(i) = engines.iter().position(|(_, d)| text.contains(d.as_str())) {
                counts[i] += 1;
                break;
            }
            if pp == "1" || pp == "0" {
                break;
            }
            p = pp;
        }
    }
    counts
}

/// What a thread outside the code under test saw every `SAMPLE` in /proc.
#[derive(Default)]
struct Sampled {
    /// Per engine: samples taken while cells waited, samples with `PARALLEL` steps running,
    /// the sum and the max of the running steps.
    waiting: Vec<usize>,
    at_limit: Vec<usize>,
    sum: Vec<usize>,
    max: Vec<usize>,
    /// Open files and RSS (MB) of this process: min, max, last.
    fds: (usize, usize, usize),
    rss: (f64, f64, f64),
}

const SAMPLE: Duration = Duration::from_millis(50);

fn fold_min_max<T: PartialOrd + Copy>(acc: &mut (T, T, T), v: T, first: bool) {
    if first || v < acc.0 {
        acc.0 = v;
    }
    if first || v > acc.1 {
        acc.1 = v;
    }
    acc.2 = v;
}

async fn load(private: &PrivateEngine) {
    clean_shared_engines(STAGING).await;
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_config(dir.path(), &engines_toml(private));
    let matrix = Matrix::from_config(&loaded).unwrap();
    let total = matrix.cells.len();
    let builder = format!("{:?}", loaded.config.build.buildkit).to_lowercase();
    // Before anything of the run exists: open files and RSS of this process.
    let (fds_start, rss_start) = (open_fds(), rss_mb("VmRSS:"));

    // Sampled from /proc by a thread of its own, not counted by the code under test.
    let test_dir = env("IMAGEGRID_TEST_DIR");
    let engine_dirs: Vec<(String, String)> = vec![
        ("a".into(), format!("{test_dir}/a/")),
        ("b".into(), format!("{test_dir}/b/")),
        ("c".into(), format!("{}/", private.dir.path().display())),
    ];
    let unfinished = Arc::new(std::sync::atomic::AtomicUsize::new(total));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (unfinished, stop, engine_dirs) =
            (unfinished.clone(), stop.clone(), engine_dirs.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            let n = engine_dirs.len();
            let mut s = Sampled {
                waiting: vec![0; n],
                at_limit: vec![0; n],
                sum: vec![0; n],
                max: vec![0; n],
                ..Default::default()
            };
            let mut first = true;
            while !stop.load(Relaxed) {
                let counts = running_steps(&engine_dirs);
                // More cells unfinished than all engines can run at once: some are waiting.
                let waiting = unfinished.load(Relaxed) > n * PARALLEL;
                for (i, c) in counts.into_iter().enumerate() {
                    s.max[i] = s.max[i].max(c);
                    if waiting {
                        s.waiting[i] += 1;
                        s.sum[i] += c;
                        s.at_limit[i] += usize::from(c >= PARALLEL);
                    }
                }
                fold_min_max(&mut s.fds, open_fds(), first);
                fold_min_max(&mut s.rss, rss_mb("VmRSS:"), first);
                first = false;
                std::thread::sleep(SAMPLE);
            }
            s
        })
    };

    // The TUI's own setup (src/ui/runtime.rs): the session, the state read from its history,
    // an interactive scheduler, the effect executor; only the terminal is a TestBackend.
    let session = Session::open(loaded, matrix).unwrap();
    let mut app = imagegrid::ui::initial_app(&session, None).await.unwrap();
    let opts = session.run_options(RunMode::Interactive);
    let mut scheduling = session.start(opts.clone());
    let (tx, mut loaded_rx) = tokio::sync::mpsc::unbounded_channel::<Loaded>();
    let exec = Executor {
        session: session.clone(),
        opts,
        handle: scheduling.handle.clone(),
        tx,
    };
    for e in app.focus_effects() {
        exec.apply(e, &app);
    }
    let start = Instant::now();
    // Every cell, without the cache (each LABEL step committed anew), as the TUI's `B` sends it.
    exec.apply(
        Effect::Build {
            cells: session.matrix.cells.iter().map(|c| c.id.clone()).collect(),
            no_cache: true,
        },
        &app,
    );

    // The TUI's loop (src/ui/runtime.rs), with a key every 50 ms instead of a keyboard.
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut keys = tokio::time::interval(Duration::from_millis(50));
    let mut pending_key: Option<Instant> = None;
    let mut key_latency = Vec::new();
    let mut drain_times = Vec::new();
    let mut frame_times = Vec::new();
    let mut dirty = true;
    let mut last_draw = Instant::now() - Duration::from_millis(16);
    let mut conc: BTreeMap<String, Concurrency> = BTreeMap::new();
    let mut finished = 0usize;
    let mut queued_total = 0usize;
    let mut logs_loaded = 0usize;
    let mut down = true;
    let summary = loop {
        if dirty && last_draw.elapsed() >= Duration::from_millis(16) {
            let t = Instant::now();
            let mut geometry = app.geometry;
            term.draw(|f| geometry = imagegrid::ui::draw::draw(f, &app))
                .unwrap();
            app.geometry = geometry;
            frame_times.push(t.elapsed());
            last_draw = Instant::now();
            dirty = false;
            if let Some(k) = pending_key.take() {
                key_latency.push(k.elapsed());
            }
        }
        let wait = Duration::from_millis(16).saturating_sub(last_draw.elapsed());
        let mut done = None;
        let mut effects = Vec::new();
        tokio::select! {
            tick = keys.tick() => {
                let code = if down { KeyCode::Char('j') } else { KeyCode::Char('k') };
                down = !down;
                effects = app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
                pending_key.get_or_insert(tick.into_std());
                dirty = true;
            }
            ev = scheduling.events.recv() => {
                let t = Instant::now();
                let mut batch = vec![ev.expect("events until done")];
                while let Ok(ev) = scheduling.events.try_recv() {
                    batch.push(ev);
                }
                for ev in batch {
                    match &ev {
                        BuildEvent::Queued { .. } => queued_total += 1,
                        BuildEvent::Finished(_) => {
                            finished += 1;
                            unfinished.store(total - finished, std::sync::atomic::Ordering::Relaxed);
                        }
                        BuildEvent::Engine(h) => {
                            let c = conc.entry(h.engine.to_string()).or_default();
                            let now = Instant::now();
                            if let Some(since) = c.since {
                                if finished < queued_total {
                                    if c.running >= PARALLEL {
                                        c.at_limit += now - since;
                                    } else {
                                        c.below_limit += now - since;
                                    }
                                }
                            }
                            c.running = h.running;
                            c.max = c.max.max(h.running);
                            c.since = Some(now);
                        }
                        BuildEvent::Done(s) => done = Some(s.clone()),
                        _ => {}
                    }
                    app.on_event(ev);
                }
                drain_times.push(t.elapsed());
                dirty = true;
            }
            Some(l) = loaded_rx.recv() => {
                logs_loaded += usize::from(matches!(l, Loaded::Log { .. }));
                l.fold_into(&mut app);
                dirty = true;
            }
            _ = tokio::time::sleep(wait), if dirty => {}
        }
        for e in effects {
            exec.apply(e, &app);
        }
        if let Some(s) = done {
            break s;
        }
    };
    let elapsed = start.elapsed();
    // The run is over; the TUI's scheduler stays up until quit.
    scheduling.handle.send(SchedulerCommand::Shutdown);
    let _ = tokio::time::timeout(Duration::from_secs(10), scheduling.task).await;
    // Logs asked for by the last keys, then the final frame: what the TUI would show.
    while let Ok(Some(l)) = tokio::time::timeout(Duration::from_millis(500), loaded_rx.recv()).await
    {
        logs_loaded += usize::from(matches!(l, Loaded::Log { .. }));
        l.fold_into(&mut app);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.join().unwrap();
    let peak = rss_mb("VmHWM:");
    println!(
        "load: {total} tiny cells on 3 engines (max_parallel {PARALLEL} each, {builder} builder): {} succeeded, {} failed in {:.1} s, {:.1} cells/s; load average at the end {}",
        summary.succeeded,
        summary.failed + summary.skipped,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    for (i, (name, _)) in engine_dirs.iter().enumerate() {
        let w = sampled.waiting[i].max(1) as f64;
        println!(
            "load: engine {name}, sampled in /proc every {} ms while cells waited ({} samples): {PARALLEL} cell steps running in {:.0}% of samples, {:.2} on average, {} at most",
            SAMPLE.as_millis(),
            sampled.waiting[i],
            100.0 * sampled.at_limit[i] as f64 / w,
            sampled.sum[i] as f64 / w,
            sampled.max[i]
        );
    }
    for (name, c) in &conc {
        let busy = c.at_limit + c.below_limit;
        println!(
            "load: engine {name}, as the scheduler reports it: reached {}/{PARALLEL} builds at once; at its limit {:.0}% of the time cells were waiting",
            c.max,
            100.0 * c.at_limit.as_secs_f64() / busy.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "load: UI under the event flood: key to frame median {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal <= 100 ms); event drain p99 {:.2} ms; frame p99 {:.2} ms; {logs_loaded} stored logs read back on focus",
        ms(percentile(&mut key_latency, 0.5)),
        ms(percentile(&mut key_latency, 0.99)),
        ms(percentile(&mut key_latency, 1.0)),
        ms(percentile(&mut drain_times, 0.99)),
        ms(percentile(&mut frame_times, 0.99)),
    );
    let within = key_latency
        .iter()
        .filter(|d| **d <= Duration::from_millis(100))
        .count() as f64
        / key_latency.len() as f64;
    // The same frame with the machine quiet again: what drawing costs, without the engines'
    // load competing for the two cores.
    let mut quiet = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        term.draw(|f| {
            imagegrid::ui::draw::draw(f, &app);
        })
        .unwrap();
        quiet.push(t.elapsed());
    }
    println!(
        "load: {:.1}% of keys answered within 100 ms; the final frame alone, machine quiet: median {:.2} ms",
        within * 100.0,
        ms(percentile(&mut quiet, 0.5))
    );
    println!(
        "load: sampled from /proc every {} ms: open files {fds_start} before the run, {} to {} during it, {} at the end; RSS {rss_start:.1} MB before, {:.1} to {:.1} MB during it, {:.1} MB at the end, peak (VmHWM) {peak:.1} MB (scheduler, all jobs, UI state and history in this process)",
        SAMPLE.as_millis(),
        sampled.fds.0,
        sampled.fds.1,
        sampled.fds.2,
        sampled.rss.0,
        sampled.rss.1,
        sampled.rss.2,
    );
    drop(exec);
    drop(session);
    clean_shared_engines(STAGING).await;
}

// ---- the real binary with a frozen engine ---------------------------------------------------

fn bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("imagegrid");
    assert!(
        p.exists(),
        "build the binary first: cargo build --release ({})",
        p.display()
    );
    p
}

struct Tmux(String);

impl Tmux {
    /// `cmd` in a 160x48 tmux session named after `name` and this process.
    fn start(name: &str, cmd: &str) -> Tmux {
        let t = Tmux(format!("imagegrid-bench-{name}-{}", std::process::id()));
        assert!(Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &t.0,
                "-x",
                "160",
                "-y",
                "48",
                cmd
            ])
            .status()
            .unwrap()
            .success());
        t
    }
    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn key(&self, k: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.0, k])
            .status()
            .unwrap();
    }
    fn wait_for(&self, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.screen().contains(what) {
            assert!(Instant::now() < deadline, "no {what:?}:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    /// Key to screen: the time from sending `k` until a capture of the screen satisfies
    /// `answered` (captured in a busy loop: tmux's own round trip is part of the figure).
    fn latency(&self, k: &str, mut answered: impl FnMut(&str) -> bool) -> Duration {
        let t = Instant::now();
        self.key(k);
        while !answered(&self.screen()) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no answer to {k}:\n{}",
                self.screen()
            );
        }
        t.elapsed()
    }
    /// Key to screen: press `?` until the help shows, then until it hides, `rounds` times.
    fn help_latency(&self, rounds: usize) -> Vec<Duration> {
        let mut v = Vec::new();
        for _ in 0..rounds {
            for shown in [true, false] {
                v.push(self.latency("?", |s| {
                    s.contains("help (from the keymap in use)") == shown
                }));
            }
        }
        v
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn frozen(private: &PrivateEngine) {
    let dir = tempfile::tempdir().unwrap();
    let engines = format!(
        "[[engine]]\nname = \"frozen\"\nendpoint = \"unix://{}\"\narches = [\"amd64\"]\n",
        private.socket.display()
    );
    common::fixture_config(
        dir.path(),
        "bench-frozen",
        &engines,
        &common::fixture_distro("bench-frozen", &["sleep-3123"]),
        "distros = [\"bench-frozen\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let cfg = dir.path().join("config.toml").display().to_string();

    let t = Tmux::start(
        "frozen",
        &format!("{} --config {cfg}; sleep 60", bin().display()),
    );
    t.wait_for(20, "● frozen");
    t.key("b");
    t.wait_for(10, "Build 1 cell");
    t.key("y");
    t.wait_for(120, "slow step starting");
    let mut live = t.help_latency(20);
    private.signal("STOP");
    std::thread::sleep(Duration::from_secs(1));
    let mut stopped = t.help_latency(20);
    println!(
        "frozen: TUI key to screen, build running: median {:.1} ms, max {:.1} ms; engine frozen mid-build: median {:.1} ms, max {:.1} ms (goal <= 100 ms; includes tmux's round trip)",
        ms(percentile(&mut live, 0.5)),
        ms(percentile(&mut live, 1.0)),
        ms(percentile(&mut stopped, 0.5)),
        ms(percentile(&mut stopped, 1.0))
    );
    drop(t);
    private.signal("CONT");

    // Headless: SIGINT with the engine frozen under a running build.
    let mut exits = Vec::new();
    for _ in 0..3 {
        let mut child = Command::new(bin())
            .args([
                "--config",
                &cfg,
                "build",
                "bench-frozen/opam/amd64",
                "--no-cache",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !common::process_running("sleep 3123") {
            assert!(Instant::now() < deadline, "the slow step never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        private.signal("STOP");
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        exits.push(t.elapsed());
        private.signal("CONT");
        // Let the engine notice the closed connection and stop the step.
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::process_running("sleep 3123") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!(
        "frozen: headless run, SIGINT to exit with its engine frozen mid-build: {} ms (3 runs)",
        exits
            .iter()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

// ---- keys while a real run starts ----------------------------------------------------------

const KEYS_STAGING: &str = "bench-keys/staging";
/// 48 distros x (base + 5 versions) x amd64 = 288 cells.
const KEYS_DISTROS: usize = 48;
const KEYS_VERSIONS: [&str; 5] = ["4.14", "5.2", "5.3", "5.4", "5.5"];
/// Arrow keys pressed on the idle grid, then again under the run.
const KEYS_PRESSES: usize = 200;
const KEYS_GAP: Duration = Duration::from_millis(30);

/// The focused cell, as the detail pane's title names it (`┌ distro/version/arch · status …`).
fn focused_cell(screen: &str) -> Option<&str> {
    screen.lines().find_map(|l| {
        let (id, _) = l.trim_start().strip_prefix("┌ ")?.split_once(" · ")?;
        id.contains('/').then_some(id)
    })
}

/// Down, Right, Up, Left (each moves the focus), `presses` keys `KEYS_GAP` apart: for each,
/// the time from the key until the screen names another focused cell.
fn arrow_latency(t: &Tmux, presses: usize) -> Vec<Duration> {
    let mut v = Vec::with_capacity(presses);
    for k in ["Down", "Right", "Up", "Left"].iter().cycle().take(presses) {
        std::thread::sleep(KEYS_GAP);
        let screen = t.screen();
        let before = focused_cell(&screen)
            .unwrap_or_else(|| panic!("no focused cell on screen:\n{screen}"))
            .to_string();
        v.push(t.latency(k, |s| focused_cell(s).is_some_and(|id| id != before)));
    }
    v
}

/// The real binary in tmux on 288 fixture cells over engines a and b: arrow keys on the idle
/// grid, then every cell selected (`A`), `b` `y`, and arrow keys again while the run starts.
fn keys(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    // Distro names new each run: every cell's steps differ from an earlier run's, so the
    // engines' build cache cannot stand in for the builds.
    let run = common::rand_suffix() % 10_000;
    let names: Vec<String> = (0..KEYS_DISTROS)
        .map(|i| format!("k{run:04}-{i:02}"))
        .collect();
    let distros: String = names
        .iter()
        .map(|n| common::fixture_distro(n, &["lines-1000"]))
        .collect();
    let engines =
        common::unix_engine_toml("a", &["amd64"]) + &common::tls_engine_toml("b", &["amd64"]);
    let loaded = common::fixture_config(
        dir.path(),
        KEYS_STAGING,
        &engines,
        &distros,
        &format!("distros = {names:?}\nversions = {KEYS_VERSIONS:?}\narches = [\"amd64\"]"),
    );
    let cells = Matrix::from_config(&loaded).unwrap().cells.len();
    assert_eq!(cells, KEYS_DISTROS * (1 + KEYS_VERSIONS.len()));
    let cfg = dir.path().join("config.toml").display().to_string();

    let t = Tmux::start(
        "keys",
        &format!(
            "{} --config {cfg}; echo imagegrid exited; sleep 60",
            bin().display()
        ),
    );
    t.wait_for(20, "● a");
    t.wait_for(20, "● b");
    let mut idle = arrow_latency(&t, KEYS_PRESSES);
    t.key("A");
    t.key("b");
    t.wait_for(10, &format!("Build {cells} cells"));
    t.key("y");
    let start = Instant::now();
    let mut busy = arrow_latency(&t, KEYS_PRESSES);
    let took = start.elapsed();
    let screen = t.screen();
    let engines_line = screen
        .lines()
        .find(|l| l.starts_with("engines "))
        .unwrap_or_default()
        .trim_end()
        .to_string();
    println!(
        "keys: TUI arrow key to the focused cell's title changing on screen, idle grid ({cells} cells): median {:.1} ms, p99 {:.1} ms, max {:.1} ms (tmux's own round trip, for reference)",
        ms(percentile(&mut idle, 0.5)),
        ms(percentile(&mut idle, 0.99)),
        ms(percentile(&mut idle, 1.0)),
    );
    println!(
        "keys: the same with all {cells} cells building (b y, then {KEYS_PRESSES} keys over {:.1} s): median {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 <= 50 ms; includes tmux's round trip); load average at the end {}",
        took.as_secs_f64(),
        ms(percentile(&mut busy, 0.5)),
        ms(percentile(&mut busy, 0.99)),
        ms(percentile(&mut busy, 1.0)),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!("keys: at the end: {engines_line}");

    // Quit (confirming: builds are running; the engines stop them when the client goes).
    t.key("q");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = t.screen();
        if s.contains("imagegrid exited") {
            break;
        }
        if s.contains("builds are queued or running") {
            t.key("y");
        }
        assert!(Instant::now() < deadline, "the TUI did not quit:\n{s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(t);
    rt.block_on(clean_shared_engines(KEYS_STAGING));
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("load bench: built; run it with `bash scripts/bench.sh`");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    // IMAGEGRID_BENCH_ONLY=load, =frozen or =keys runs one of the three.
    let only = std::env::var("IMAGEGRID_BENCH_ONLY").unwrap_or_default();
    let runs = |name: &str| only.is_empty() || only == name;
    if runs("load") || runs("frozen") {
        let private = rt.block_on(PrivateEngine::start());
        if runs("load") {
            rt.block_on(load(&private));
        }
        if runs("frozen") {
            frozen(&private);
        }
    }
    if runs("keys") {
        keys(&rt);
    }
}
