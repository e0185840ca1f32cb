//! Moving a base image between engines (`engine::transfer`, issue 19 item 3), against the real
//! test engines (`bash scripts/bench.sh --bench transfer` starts them): a ~100 MB image
//! (the busybox fixture plus 100 MiB of random bytes) built once on engine a (Docker 20.10),
//! then moved, in interleaved rounds (round r starts with side r), by
//! - `export/load a->m`: `copy_image` from a to m (Docker 26.1);
//! - `export/load m->a`: `copy_image` back, after removing it from a;
//! - `docker save | docker load`: the docker CLI's own pipe, a to m, the peer;
//! - `registry a->m`: `copy_via_registry` through the loopback registry (push from a, pull
//!   by digest on m). The registry keeps the layers after round 1, so later rounds' pushes
//!   find them there ("Layer already exists"): round 1 is the cold figure.
//!
//! The target's copy is removed before each move (not timed). Reports MB/s (decimal) min /
//! median / max per side and the bench process's peak RSS (VmHWM) before and after, with the
//! load average. `IMAGEGRID_BENCH_RUNS` sets the rounds (default 5). Under
//! `cargo test --all-targets` (no `--bench` argument) it only checks that it was built.

use std::time::Instant;

use bollard::query_parameters::RemoveImageOptionsBuilder;
use imagegrid::engine::build::BuildRequest;
use imagegrid::engine::transfer::{copy_image, copy_via_registry};
use imagegrid::engine::{Endpoint, Engine, EngineSpec};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `bash scripts/bench.sh --bench transfer`, which starts the test engines")
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn connect(name: &str, var: &str) -> Engine {
    let spec = EngineSpec::new(
        name,
        Endpoint::parse(&env(var)).unwrap(),
        vec!["amd64".into()],
    );
    Engine::connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn remove(engine: &Engine, image: &str) {
    let opts = RemoveImageOptionsBuilder::default().force(true).build();
    let _ = engine.docker().remove_image(image, Some(opts), None).await;
}

const SIDES: [&str; 4] = [
    "export/load a->m",
    "export/load m->a",
    "docker save | docker load a->m",
    "registry a->m",
];

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("transfer bench: built; run it with `bash scripts/bench.sh --bench transfer`");
        return;
    }
    let runs: usize = std::env::var("IMAGEGRID_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(runs));
}

async fn run(runs: usize) {
    let a = connect("a", "IMAGEGRID_TEST_UNIX_HOST").await;
    let m = connect("m", "IMAGEGRID_TEST_MODERN_HOST").await;
    let reference = "imagegrid-bench/transfer:100m";
    let req = BuildRequest {
        cell_id: "bench".into(),
        dockerfile: format!(
            "FROM {}:amd64\nRUN dd if=/dev/urandom of=/big bs=1048576 count=100 2>/dev/null\n",
            env("IMAGEGRID_TEST_FIXTURE_IMAGE")
        ),
        context_files: vec![],
        context_dir: None,
        platform: "linux/amd64".into(),
        tag: reference.into(),
        labels: Default::default(),
        network: imagegrid::config::NetworkMode::None,
        buildkit: false,
        no_cache: true,
        pull: false,
        idle_timeout: std::time::Duration::from_secs(300),
    };
    let id = a
        .build(&req, &Default::default(), |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .image_id;
    let repo = format!(
        "{}/imagegrid-bench/transfer-{}",
        env("IMAGEGRID_TEST_REGISTRY"),
        std::process::id()
    );
    println!(
        "transfer: image {id}, {runs} interleaved rounds per side; load average {} before",
        loadavg()
    );
    // What `docker save` writes, counted once (streamed, not kept), for the CLI pipe's rate.
    let save_bytes = save_bytes(&a, &id).await;
    let rss_before = peak_rss_kib();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); SIDES.len()];
    for r in 0..runs {
        for k in 0..SIDES.len() {
            let side = (r + k) % SIDES.len();
            let (bytes, secs) = match side {
                0 => {
                    remove(&m, &id).await;
                    let t = copy_image(&a, &m, reference, &id, &mut |_| {})
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    (t.bytes, t.secs)
                }
                1 => {
                    // m holds it (side 0 ran, or this one after it); make sure, then move back.
                    copy_image(&a, &m, reference, &id, &mut |_| {})
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    remove(&a, &id).await;
                    let t = copy_image(&m, &a, reference, &id, &mut |_| {})
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    (t.bytes, t.secs)
                }
                2 => {
                    remove(&m, &id).await;
                    let cmd = format!(
                        "docker -H {} save {id} | docker -H {} load -q >/dev/null",
                        env("IMAGEGRID_TEST_UNIX_HOST"),
                        env("IMAGEGRID_TEST_MODERN_HOST")
                    );
                    let started = Instant::now();
                    let ok = std::process::Command::new("bash")
                        .args(["-o", "pipefail", "-c", &cmd])
                        .status()
                        .unwrap()
                        .success();
                    let secs = started.elapsed().as_secs_f64();
                    assert!(ok, "{cmd} failed");
                    (save_bytes, secs)
                }
                _ => {
                    remove(&m, &id).await;
                    let t = copy_via_registry(
                        &a,
                        &m,
                        reference,
                        &id,
                        "amd64",
                        &repo,
                        None,
                        &mut |_| {},
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                    (t.bytes, t.secs)
                }
            };
            let rate = bytes as f64 / secs / 1e6;
            println!(
                "  round {} {}: {bytes} bytes in {secs:.2} s = {rate:.1} MB/s",
                r + 1,
                SIDES[side]
            );
            rates[side].push(rate);
        }
    }
    let rss_after = peak_rss_kib();
    for (side, v) in SIDES.iter().zip(rates.iter_mut()) {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        println!(
            "{side}: min {:.1} / median {:.1} / max {:.1} MB/s",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
    println!(
        "peak RSS of this process: {:.1} MB before the moves, {:.1} MB after; load average {} after",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        loadavg()
    );
    remove(&a, &id).await;
    remove(&m, &id).await;
}

/// Bytes of the image's save tar on `engine` (counted by streaming it, not kept).
async fn save_bytes(engine: &Engine, id: &str) -> u64 {
    use futures_util::StreamExt;
    let s = engine.docker().export_images(&[id]);
    futures_util::pin_mut!(s);
    let mut n = 0u64;
    while let Some(c) = s.next().await {
        n += c.unwrap().len() as u64;
    }
    n
}
