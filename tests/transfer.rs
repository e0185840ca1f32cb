//! Moving a built image between real engines (issue 19 item 3): export/load between a
//! Docker 20.10 engine (a) and a Docker 26.1 engine (m) both ways, through the loopback
//! registry by digest, an engine that already holds the image, a wrong id, memory held while
//! copying ~100 MB, and each side's engine killed mid-copy.

mod common;

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;
use imagegrid::engine::build::BuildRequest;
use imagegrid::engine::transfer::{
    copy_image, copy_via_registry, move_image, TransferFailure, TransferWay, Via, CHANNEL_CHUNKS,
};
use imagegrid::engine::{Engine, EngineSpec};

use common::{env, modern_spec, rand_suffix, unix_spec, PrivateEngine};

async fn connect(spec: EngineSpec) -> Engine {
    let name = spec.name.clone();
    Engine::connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("engine {name}: {e}"))
}

/// Build on `engine`, from the amd64 busybox fixture, an image holding `/marker` = `marker`
/// and `/big` of `mib` MiB of random bytes (0 for none); returns its id.
async fn build_image(engine: &Engine, tag: &str, marker: &str, mib: u32) -> String {
    let big = if mib > 0 {
        format!("RUN dd if=/dev/urandom of=/big bs=1048576 count={mib} 2>/dev/null\n")
    } else {
        String::new()
    };
    let req = BuildRequest {
        cell_id: "transfer".into(),
        dockerfile: format!(
            "FROM {}:amd64\nRUN echo {marker} > /marker\n{big}",
            env("IMAGEGRID_TEST_FIXTURE_IMAGE")
        ),
        context_files: vec![],
        context_dir: None,
        platform: "linux/amd64".into(),
        tag: tag.into(),
        labels: Default::default(),
        network: imagegrid::config::NetworkMode::None,
        buildkit: false,
        no_cache: true,
        pull: false,
        idle_timeout: Duration::from_secs(120),
    };
    engine
        .build(&req, &Default::default(), |_| {})
        .await
        .unwrap_or_else(|e| panic!("build {tag} on {}: {e}", engine.name()))
        .image_id
}

/// The id `image` resolves to on `engine`, None when it holds no such image.
async fn id_of(engine: &Engine, image: &str) -> Option<String> {
    engine.docker().inspect_image(image).await.ok()?.id
}

/// Remove an image (every tag) from an engine; a missing image is fine.
async fn remove(engine: &Engine, image: &str) {
    let opts = RemoveImageOptionsBuilder::default().force(true).build();
    let _ = engine.docker().remove_image(image, Some(opts), None).await;
}

/// Run `/bin/sh -c 'test "$(cat /marker)" = MARKER'` in `image` on `engine` (no network):
/// the image runs there and is the one built.
async fn assert_runs(engine: &Engine, image: &str, marker: &str) {
    let docker = engine.docker();
    let body = ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("test \"$(cat /marker)\" = {marker}"),
        ]),
        network_disabled: Some(true),
        ..Default::default()
    };
    let id = docker
        .create_container(None, body)
        .await
        .unwrap_or_else(|e| panic!("create a container of {image} on {}: {e}", engine.name()))
        .id;
    docker.start_container(&id, None).await.unwrap();
    let status = docker
        .wait_container(&id, None)
        .next()
        .await
        .map(|r| r.map(|w| w.status_code));
    let rm = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(&id, Some(rm)).await;
    assert!(
        matches!(status, Some(Ok(0))),
        "{image} on engine {} did not run as built: {status:?}",
        engine.name()
    );
}

/// Copy with a progress recorder; returns the transfer and every count reported.
async fn copy_recorded(
    src: &Engine,
    dst: &Engine,
    reference: &str,
    id: &str,
) -> (
    Result<imagegrid::engine::transfer::Transfer, imagegrid::engine::transfer::TransferError>,
    Vec<u64>,
) {
    let mut seen = Vec::new();
    let r = copy_image(src, dst, reference, id, &mut |b| seen.push(b)).await;
    (r, seen)
}

fn assert_progress(seen: &[u64], bytes: u64) {
    assert!(bytes > 0);
    assert!(!seen.is_empty(), "no progress reported");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "progress not increasing: {seen:?}"
    );
    assert_eq!(*seen.last().unwrap(), bytes, "last progress != bytes moved");
}

/// a (20.10) -> m (26.1) and back: same id on both, it runs on each target, progress counts
/// end at the bytes moved; a second copy to an engine that holds it moves nothing.
#[tokio::test]
async fn a_base_moves_from_2010_to_261_and_back() {
    let a = connect(unix_spec("a", &["amd64"])).await;
    let m = connect(modern_spec("m", &["amd64"])).await;
    let n = rand_suffix();
    let marker = format!("there-and-back-{n}");
    let built = format!("imagegrid-xfer/built:{n}");
    let reference = format!("imagegrid-xfer/base:{n}");
    let id = build_image(&a, &built, &marker, 0).await;
    assert_eq!(id_of(&m, &id).await, None, "m holds a fresh image already");

    let (r, seen) = copy_recorded(&a, &m, &reference, &id).await;
    let t = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.via, Via::ExportLoad);
    assert_progress(&seen, t.bytes);
    assert_eq!(id_of(&m, &reference).await.as_deref(), Some(id.as_str()));
    assert_runs(&m, &reference, &marker).await;

    // Again: m holds it, nothing moves, and no progress is reported.
    let (r, seen) = copy_recorded(&a, &m, &reference, &id).await;
    let again = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((again.bytes, seen.len()), (0, 0));

    // Back: a no longer holds it; m -> a restores the same id, under the reference.
    remove(&a, &id).await;
    assert_eq!(id_of(&a, &id).await, None, "the image is still on a");
    let (r, seen) = copy_recorded(&m, &a, &reference, &id).await;
    let back = r.unwrap_or_else(|e| panic!("{e}"));
    assert_progress(&seen, back.bytes);
    assert_eq!(id_of(&a, &reference).await.as_deref(), Some(id.as_str()));
    assert_runs(&a, &reference, &marker).await;
    remove(&a, &id).await;
    remove(&m, &id).await;
}

/// An id the source does not hold fails before anything moves, naming both engines and the
/// reference; the target gets no tag.
#[tokio::test]
async fn a_wrong_expected_id_fails_naming_both_engines() {
    let a = connect(unix_spec("a", &["amd64"])).await;
    let m = connect(modern_spec("m", &["amd64"])).await;
    let n = rand_suffix();
    let reference = format!("imagegrid-xfer/wrong:{n}");
    let wrong = format!("sha256:{:064x}", n);
    let (r, seen) = copy_recorded(&a, &m, &reference, &wrong).await;
    let e = r.expect_err("a wrong id copied");
    let text = e.to_string();
    for needle in ["engine a", "engine m", reference.as_str(), wrong.as_str()] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    assert!(matches!(e.failure, TransferFailure::Source(_)), "{e:?}");
    assert!(seen.is_empty());
    assert_eq!(id_of(&m, &reference).await, None);
}

/// VmHWM (peak resident set) of this process, in KiB, from /proc/self/status.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// ~100 MB a -> m: the process's peak resident memory grows by less than 64 MB (the tar is
/// streamed through a bounded channel, never held whole). Prints the throughput.
#[tokio::test]
async fn a_100_mb_image_copies_in_bounded_memory() {
    let a = connect(unix_spec("a", &["amd64"])).await;
    let m = connect(modern_spec("m", &["amd64"])).await;
    let n = rand_suffix();
    let marker = format!("big-{n}");
    let reference = format!("imagegrid-xfer/big:{n}");
    let id = build_image(&a, &reference, &marker, 100).await;
    let before = peak_rss_kib();
    let (r, seen) = copy_recorded(&a, &m, &reference, &id).await;
    let after = peak_rss_kib();
    let t = r.unwrap_or_else(|e| panic!("{e}"));
    assert_progress(&seen, t.bytes);
    assert!(t.bytes > 100 * 1024 * 1024, "only {} bytes moved", t.bytes);
    let growth_mib = (after.saturating_sub(before)) / 1024;
    assert!(
        growth_mib < 64,
        "peak RSS grew by {growth_mib} MiB copying {} bytes ({CHANNEL_CHUNKS} chunks in flight)",
        t.bytes
    );
    assert_eq!(id_of(&m, &reference).await.as_deref(), Some(id.as_str()));
    assert_runs(&m, &reference, &marker).await;
    eprintln!(
        "transfer a->m: {} bytes in {:.2} s = {:.1} MB/s; peak RSS {} -> {} KiB",
        t.bytes,
        t.secs,
        t.bytes as f64 / t.secs / 1e6,
        before,
        after
    );
    remove(&a, &id).await;
    remove(&m, &id).await;
}

/// The registry way: a pushes to the loopback registry, m pulls by digest and tags the
/// reference; same id, it runs; a second move pulls nothing.
#[tokio::test]
async fn the_registry_way_pulls_by_digest() {
    let a = connect(unix_spec("a", &["amd64"])).await;
    let m = connect(modern_spec("m", &["amd64"])).await;
    let n = rand_suffix();
    let marker = format!("by-digest-{n}");
    let reference = format!("imagegrid-xfer/pinned:{n}");
    let id = build_image(&a, &format!("imagegrid-xfer/built:{n}"), &marker, 1).await;
    let repo = format!(
        "{}/imagegrid-xfer/transfer-{n}",
        env("IMAGEGRID_TEST_REGISTRY")
    );
    let mut seen = Vec::new();
    let t = copy_via_registry(&a, &m, &reference, &id, "amd64", &repo, None, &mut |b| {
        seen.push(b)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.via, Via::Registry);
    assert_progress(&seen, t.bytes);
    assert_eq!(id_of(&m, &reference).await.as_deref(), Some(id.as_str()));
    let digests = m
        .docker()
        .inspect_image(&reference)
        .await
        .unwrap()
        .repo_digests
        .unwrap_or_default();
    assert!(
        digests
            .iter()
            .any(|d| d.starts_with(&format!("{repo}@sha256:"))),
        "m did not pull it from {repo}: {digests:?}"
    );
    assert_runs(&m, &reference, &marker).await;
    // Again, the way a config with `transfer_registry` chooses: m holds it, nothing moves.
    let way = TransferWay::from_setting(Some(&repo));
    let again = move_image(&a, &m, &reference, &id, "amd64", &way, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.via, Via::Registry);
    assert_eq!(again.bytes, 0);
    remove(&a, &id).await;
    remove(&m, &id).await;
}

/// Kill `pid` once `bytes` have been streamed, from inside the progress callback.
fn killer(pid: i32, after: u64) -> impl FnMut(u64) + Send {
    let mut done = false;
    move |b| {
        if b >= after && !done {
            done = true;
            let ok = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill -KILL {pid} failed");
        }
    }
}

/// The source engine dies mid-export: the error is the source's, naming it.
#[tokio::test]
async fn the_source_engine_down_mid_copy_is_named() {
    let private = PrivateEngine::start().await;
    let src = connect(private.spec("dying-src", &["amd64"])).await;
    let m = connect(modern_spec("m", &["amd64"])).await;
    let n = rand_suffix();
    let reference = format!("imagegrid-xfer/src-down:{n}");
    let id = build_image(&src, &reference, "src-down", 64).await;
    let mut kill = killer(private.pid, 4 << 20);
    let e = copy_image(&src, &m, &reference, &id, &mut kill)
        .await
        .expect_err("copied from a dead engine");
    let TransferFailure::Source(engine) = &e.failure else {
        panic!("not the source's failure: {e:?}")
    };
    assert_eq!(engine.engine, "dying-src", "{e}");
    assert!(e.to_string().contains("engine dying-src"), "{e}");
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(id_of(&m, &reference).await, None);
}

/// The target engine dies mid-load: the error is the target's, naming it.
#[tokio::test]
async fn the_target_engine_down_mid_copy_is_named() {
    let private = PrivateEngine::start().await;
    let dst = connect(private.spec("dying-dst", &["amd64"])).await;
    let a = connect(unix_spec("a", &["amd64"])).await;
    let n = rand_suffix();
    let reference = format!("imagegrid-xfer/dst-down:{n}");
    let id = build_image(&a, &reference, "dst-down", 64).await;
    let mut kill = killer(private.pid, 4 << 20);
    let e = copy_image(&a, &dst, &reference, &id, &mut kill)
        .await
        .expect_err("copied to a dead engine");
    let TransferFailure::Target(engine) = &e.failure else {
        panic!("not the target's failure: {e:?}")
    };
    assert_eq!(engine.engine, "dying-dst", "{e}");
    assert!(e.to_string().contains("engine dying-dst"), "{e}");
    assert!(e.is_transient(), "{e:?}");
    remove(&a, &id).await;
}
