//! Build benchmarks against the real test engines, like for like (`bash scripts/bench.sh`
//! starts them). Every row runs imagegrid and its peers on the same engine, with the same
//! builder, over the same Dockerfiles (the test fixture's: real `RUN` steps), without the
//! build cache, interleaved (round r runs the sides in an order rotated by r, so that no side
//! always goes first), and reports min, median and max of each side and the ratio of the
//! medians (imagegrid / peer).
//!
//! Rows (`IMAGEGRID_BENCH_ROWS=one-buildkit,grid-classic,...` runs some; all by default):
//! - `one-buildkit`: one cell on engine m (Docker 26.1, its built-in BuildKit) against
//!   `docker buildx build` (trixie's buildx, the engine's own `docker` driver). Goal <= 1.10.
//! - `one-classic`: one cell on engine a (Docker 20.10), imagegrid with `buildkit = "off"`,
//!   against `DOCKER_BUILDKIT=0 docker build`. Goal <= 1.10.
//! - `grid-buildkit`: 24 cells (12 bases, 12 compilers FROM them) on engine m, imagegrid
//!   (`max_parallel` 4) against `docker buildx bake` (bases, then compilers), a sequential
//!   `docker buildx build` loop and a naive parallel loop (`xargs -P4`, bases then compilers).
//!   Goal <= 0.50 against the sequential loop.
//! - `grid-classic`: the same 24 cells on engine a with the classic builder (imagegrid
//!   `buildkit = "off"`, `max_parallel` 4) against a sequential and an `xargs -P4` loop of
//!   `DOCKER_BUILDKIT=0 docker build`. Goal <= 0.50 against the sequential loop.
//!
//! `IMAGEGRID_BENCH_RUNS` sets the samples per side (default and minimum 5).
//! Under `cargo test --all-targets` (no `--bench` argument) it only checks that it was built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Parallel builds imagegrid and the naive loop are allowed on the engine.
const PARALLEL: usize = 4;
/// Distros of the grid rows: each gives a base cell and one compiler cell.
const GRID_DISTROS: usize = 12;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/bench.sh`, which starts the test engines")
    })
}

/// The imagegrid binary: `IMAGEGRID_BENCH_BIN`, else the release binary next to this bench
/// executable's profile dir. (This harness only starts processes and times them, so it may
/// itself be built in any profile; the binary it times must be a release build.)
fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("IMAGEGRID_BENCH_BIN") {
        return PathBuf::from(p);
    }
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

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The builder both sides of a row use.
#[derive(Clone, Copy, PartialEq)]
enum Builder {
    /// Engine m's built-in BuildKit (imagegrid `buildkit = "on"`, the docker CLI through buildx).
    BuildKit,
    /// Engine a's classic builder (imagegrid `buildkit = "off"`, `DOCKER_BUILDKIT=0`).
    Classic,
}

impl Builder {
    fn host(self) -> String {
        match self {
            Builder::BuildKit => env("IMAGEGRID_TEST_MODERN_HOST"),
            Builder::Classic => env("IMAGEGRID_TEST_UNIX_HOST"),
        }
    }
    fn config_value(self) -> &'static str {
        match self {
            Builder::BuildKit => "on",
            Builder::Classic => "off",
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Builder::BuildKit => "engine m (Docker 26.1), BuildKit on both sides",
            Builder::Classic => "engine a (Docker 20.10), classic builder on both sides",
        }
    }
}

/// A private docker CLI config (`DOCKER_CONFIG`) holding trixie's buildx plugin, so that
/// `docker build` and `docker buildx` use BuildKit through the engine's `docker` driver.
fn docker_config(dir: &Path) -> PathBuf {
    let d = dir.join("docker-config");
    let plugins = d.join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let link = plugins.join("docker-buildx");
    if !link.exists() {
        std::os::unix::fs::symlink(env("IMAGEGRID_TEST_BUILDX"), &link).unwrap();
    }
    d
}

/// The docker CLI on `builder`'s engine (the environment the loops' shell inherits too).
fn docker_env(cmd: &mut Command, dir: &Path, builder: Builder) {
    cmd.env("DOCKER_CONFIG", docker_config(dir))
        .env("DOCKER_HOST", builder.host())
        .env(
            "DOCKER_BUILDKIT",
            if builder == Builder::BuildKit {
                "1"
            } else {
                "0"
            },
        );
}

/// The docker CLI's build command of one context, as a maintainer types it.
fn docker_build_line(builder: Builder) -> &'static str {
    match builder {
        Builder::BuildKit => "docker buildx build -q --no-cache --network none",
        Builder::Classic => "docker build -q --no-cache --network none",
    }
}

fn write_config(dir: &Path, distros: &[String], builder: Builder) -> PathBuf {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut t = format!(
        "[[engine]]\nname = \"bench\"\nendpoint = \"{}\"\narches = [\"amd64\"]\nmax_parallel = {PARALLEL}\n",
        builder.host()
    );
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
        "[build]\nnetwork = \"none\"\nbuildkit = \"{}\"\n[tags]\nstaging = \"bench/staging\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        builder.config_value(),
        dir.join("data").display(),
        templates.display()
    ));
    let p = dir.join("config.toml");
    std::fs::write(&p, t).unwrap();
    p
}

/// The Dockerfile imagegrid renders for `cell`; `from` replaces its first FROM (a compiler's
/// base, tagged by the peer that built it).
fn context(dir: &Path, cfg: &Path, cell: &str, from: Option<&str>) -> PathBuf {
    let out = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(["dockerfile", cell])
        .output()
        .unwrap();
    assert!(out.status.success(), "imagegrid dockerfile {cell} failed");
    let mut text = String::from_utf8(out.stdout).unwrap();
    if let Some(f) = from {
        let first = text
            .lines()
            .find(|l| l.starts_with("FROM "))
            .unwrap()
            .to_string();
        text = text.replacen(&first, &format!("FROM {f}"), 1);
    }
    let ctx = dir.join("ctx").join(cell.replace('/', "_"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), text).unwrap();
    ctx
}

/// One side of a comparison: a name and how to run it once.
struct Side<'a> {
    name: String,
    run: Box<dyn Fn() -> Duration + 'a>,
}

struct Stats {
    min: Duration,
    median: Duration,
    max: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let n = v.len();
    // The median of an even count is the mean of the middle two.
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    };
    Stats {
        min: v[0],
        median,
        max: v[n - 1],
    }
}

/// Run every side `rounds` times, interleaved: round r runs them starting from side r mod n.
/// Prints each side's min/median/max and imagegrid's (side 0) ratio to each peer, with the
/// goal against `goal_peer` (its index) marked met or missed.
fn compare(row: &str, what: &str, sides: &[Side], rounds: usize, goal: (usize, f64)) {
    let load_before = loadavg();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); sides.len()];
    for r in 0..rounds {
        for k in 0..sides.len() {
            let i = (r + k) % sides.len();
            samples[i].push((sides[i].run)());
        }
    }
    let stats: Vec<Stats> = samples.into_iter().map(stats).collect();
    println!(
        "{row}: {what}; {rounds} interleaved runs per side; load average {load_before} before, {} after",
        loadavg()
    );
    for (s, st) in sides.iter().zip(&stats) {
        println!(
            "{row}:   {:<44} min {:>7.3} s  median {:>7.3} s  max {:>7.3} s",
            s.name,
            st.min.as_secs_f64(),
            st.median.as_secs_f64(),
            st.max.as_secs_f64()
        );
    }
    let ours = stats[0].median.as_secs_f64();
    for (i, (s, st)) in sides.iter().zip(&stats).enumerate().skip(1) {
        let ratio = ours / st.median.as_secs_f64();
        let verdict = if i == goal.0 {
            if ratio <= goal.1 {
                format!(" (goal <= {:.2}: met)", goal.1)
            } else {
                format!(" (goal <= {:.2}: MISSED)", goal.1)
            }
        } else {
            String::new()
        };
        println!("{row}:   ratio imagegrid / {}: {ratio:.2}{verdict}", s.name);
    }
}

/// One cell: `imagegrid build` against the docker CLI's build of the same Dockerfile.
fn one(builder: Builder, rounds: usize, row: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &["bench-one".into()], builder);
    let ctx = context(dir.path(), &cfg, "bench-one/opam/amd64", None);
    let sides = [
        Side {
            name: format!(
                "imagegrid build (buildkit = \"{}\")",
                builder.config_value()
            ),
            run: Box::new(|| {
                run(Command::new(bin()).arg("--config").arg(&cfg).args([
                    "build",
                    "bench-one/opam/amd64",
                    "--no-cache",
                    "--json",
                ]))
            }),
        },
        Side {
            name: docker_build_line(builder)
                .trim_end_matches(" -q --no-cache --network none")
                .to_string(),
            run: Box::new(|| {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "{} -t bench/peer:one \"$1\" >/dev/null",
                        docker_build_line(builder)
                    ))
                    .arg("sh")
                    .arg(&ctx);
                docker_env(&mut c, dir.path(), builder);
                run(&mut c)
            }),
        },
    ];
    compare(
        row,
        &format!(
            "one cell (bench-one/opam/amd64), no cache, {}",
            builder.describe()
        ),
        &sides,
        rounds,
        (1, 1.10),
    );
}

/// The 24 Dockerfiles of the grid rows, for the peers: (context, tag) of each base and each
/// compiler, the compilers FROM the base the same peer tagged (`bench/PEER:DISTRO-opam`).
struct Grid {
    bases: Vec<(PathBuf, String)>,
    compilers: Vec<(PathBuf, String)>,
}

fn grid_contexts(dir: &Path, cfg: &Path, distros: &[String], peer: &str) -> Grid {
    let mut g = Grid {
        bases: Vec::new(),
        compilers: Vec::new(),
    };
    let root = dir.join(peer);
    for d in distros {
        let base_tag = format!("bench/{peer}:{d}-opam");
        let b = context(&root, cfg, &format!("{d}/opam/amd64"), None);
        g.bases.push((b, base_tag.clone()));
        let c = context(&root, cfg, &format!("{d}/5.4/amd64"), Some(&base_tag));
        g.compilers.push((c, format!("bench/{peer}:{d}-5.4")));
    }
    g
}

/// A shell loop over `list` (lines `CONTEXT TAG`): one after the other, or `xargs -P`.
fn loop_script(builder: Builder, list: &Path, parallel: bool) -> String {
    let build = docker_build_line(builder);
    if parallel {
        format!(
            "xargs -P{PARALLEL} -n2 sh -c '{build} -t \"$1\" \"$0\" >/dev/null' < {}",
            list.display()
        )
    } else {
        format!(
            "while read -r ctx tag; do {build} -t \"$tag\" \"$ctx\" >/dev/null || exit 1; done < {}",
            list.display()
        )
    }
}

fn write_list(path: &Path, items: &[(PathBuf, String)]) {
    let text: String = items
        .iter()
        .map(|(c, t)| format!("{} {t}\n", c.display()))
        .collect();
    std::fs::write(path, text).unwrap();
}

/// A loop as a side: bases, then compilers (each phase a loop of its own).
fn loop_side<'a>(dir: &'a Path, builder: Builder, grid: &Grid, parallel: bool) -> Side<'a> {
    let name = if parallel { "par" } else { "seq" };
    let bases = dir.join(format!("{name}-bases.list"));
    let compilers = dir.join(format!("{name}-compilers.list"));
    write_list(&bases, &grid.bases);
    write_list(&compilers, &grid.compilers);
    let script = format!(
        "set -e; {}; {}",
        loop_script(builder, &bases, parallel),
        loop_script(builder, &compilers, parallel)
    );
    let build = docker_build_line(builder).trim_end_matches(" -q --no-cache --network none");
    Side {
        name: if parallel {
            format!("xargs -P{PARALLEL} loop of `{build}`")
        } else {
            format!("sequential loop of `{build}`")
        },
        run: Box::new(move || {
            let mut c = Command::new("sh");
            c.arg("-c").arg(&script);
            docker_env(&mut c, dir, builder);
            run(&mut c)
        }),
    }
}

/// `docker buildx bake` as a side: one bake file per phase (bases, then the compilers FROM
/// the bases the first bake put in the engine's image store). Bake files of buildx 0.13 have
/// no `network` key, and the test engines have no bridge: the bake's Dockerfiles say
/// `RUN --network=none` instead (the same steps, the same network as the other sides).
fn bake_side<'a>(dir: &'a Path, grid: &Grid) -> Side<'a> {
    for (ctx, _) in grid.bases.iter().chain(&grid.compilers) {
        let path = ctx.join("Dockerfile");
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("RUN ") {
                Some(rest) => format!("RUN --network=none {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&path, text).unwrap();
    }
    let file = |name: &str, items: &[(PathBuf, String)]| -> PathBuf {
        let targets: serde_json::Map<String, serde_json::Value> = items
            .iter()
            .enumerate()
            .map(|(i, (ctx, tag))| {
                (
                    format!("t{i}"),
                    serde_json::json!({
                        "context": ctx.display().to_string(),
                        "dockerfile": "Dockerfile",
                        "tags": [tag],
                        "no-cache": true,
                    }),
                )
            })
            .collect();
        let names: Vec<String> = targets.keys().cloned().collect();
        let doc = serde_json::json!({
            "group": { "default": { "targets": names } },
            "target": targets,
        });
        let p = dir.join(format!("{name}.bake.json"));
        std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        p
    };
    let bases = file("bases", &grid.bases);
    let compilers = file("compilers", &grid.compilers);
    let script = format!(
        "set -e; docker buildx bake --progress quiet -f {} >/dev/null; docker buildx bake --progress quiet -f {} >/dev/null",
        bases.display(),
        compilers.display()
    );
    Side {
        name: "docker buildx bake (bases, then compilers)".into(),
        run: Box::new(move || {
            let mut c = Command::new("sh");
            c.arg("-c").arg(&script);
            docker_env(&mut c, dir, Builder::BuildKit);
            run(&mut c)
        }),
    }
}

/// 24 cells: `imagegrid build '*'` against the peers of `builder`.
fn grid(builder: Builder, rounds: usize, row: &str) {
    let dir = tempfile::tempdir().unwrap();
    let distros: Vec<String> = (1..=GRID_DISTROS).map(|i| format!("bench-t{i}")).collect();
    let cfg = write_config(dir.path(), &distros, builder);
    let mut sides = vec![Side {
        name: format!(
            "imagegrid build '*' (buildkit = \"{}\", max_parallel {PARALLEL})",
            builder.config_value()
        ),
        run: Box::new(|| {
            run(Command::new(bin()).arg("--config").arg(&cfg).args([
                "build",
                "*",
                "--no-cache",
                "--json",
            ]))
        }),
    }];
    let seq = grid_contexts(dir.path(), &cfg, &distros, "seq");
    sides.push(loop_side(dir.path(), builder, &seq, false));
    let par = grid_contexts(dir.path(), &cfg, &distros, "par");
    sides.push(loop_side(dir.path(), builder, &par, true));
    if builder == Builder::BuildKit {
        let bake = grid_contexts(dir.path(), &cfg, &distros, "bake");
        sides.push(bake_side(dir.path(), &bake));
    }
    compare(
        row,
        &format!(
            "{} cells ({GRID_DISTROS} bases, {GRID_DISTROS} compilers FROM them), no cache, {}",
            2 * GRID_DISTROS,
            builder.describe()
        ),
        &sides,
        rounds,
        (1, 0.50),
    );
}

const ROWS: [&str; 4] = [
    "one-buildkit",
    "one-classic",
    "grid-buildkit",
    "grid-classic",
];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("builds bench: built; run it with `bash scripts/bench.sh`");
        return;
    }
    let rounds: usize = std::env::var("IMAGEGRID_BENCH_RUNS")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("IMAGEGRID_BENCH_RUNS={v:?}: not a number"))
        })
        .unwrap_or(5);
    assert!(
        rounds >= 5,
        "IMAGEGRID_BENCH_RUNS={rounds}: a median needs at least 5 runs per side"
    );
    let wanted: Vec<String> = match std::env::var("IMAGEGRID_BENCH_ROWS") {
        Ok(v) if !v.is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
        _ => ROWS.iter().map(|s| s.to_string()).collect(),
    };
    for w in &wanted {
        assert!(
            ROWS.contains(&w.as_str()),
            "IMAGEGRID_BENCH_ROWS: unknown row {w:?} (rows: {})",
            ROWS.join(", ")
        );
    }
    for row in ROWS.iter().filter(|r| wanted.iter().any(|w| w == *r)) {
        match *row {
            "one-buildkit" => one(Builder::BuildKit, rounds, row),
            "one-classic" => one(Builder::Classic, rounds, row),
            "grid-buildkit" => grid(Builder::BuildKit, rounds, row),
            "grid-classic" => grid(Builder::Classic, rounds, row),
            _ => unreachable!(),
        }
    }
}
