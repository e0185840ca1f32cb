//! BuildKit builds leave nothing open behind them. bollard 0.21.1 serves each build's
//! session from a task it spawns and never stops, holding a connection to the engine; a TUI
//! running for days would pile them up (one open file and ~50 KB a build, measured with
//! benches/load.rs). imagegrid runs each BuildKit build on a runtime of its own to end them.
//!
//! A test binary of its own: open files are counted for the whole process, so no other test
//! may run beside it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use imagegrid::engine::build::BuildRequest;
use imagegrid::engine::Engine;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test]
async fn buildkit_builds_leave_no_connection_open() {
    let engine = Engine::connect(&unix_spec("a", &["amd64"])).await.unwrap();
    assert!(engine.info.buildkit, "the test engine has BuildKit");
    let build = |i: u32| BuildRequest {
        cell_id: format!("session-{i}"),
        dockerfile: format!(
            "FROM {}:amd64\nLABEL imagegrid.test.session=\"{i}\"\n",
            env("IMAGEGRID_TEST_FIXTURE_IMAGE")
        ),
        context_files: vec![],
        context_dir: None,
        platform: "linux/amd64".into(),
        tag: format!("test-session:{i}"),
        labels: Default::default(),
        network: imagegrid::config::NetworkMode::None,
        buildkit: true,
        no_cache: true,
        pull: false,
        idle_timeout: Duration::from_secs(60),
    };
    // One build first: the runtime's own files (its reactor, the blocking pool) are opened once.
    engine
        .build(&build(0), &Default::default(), |_| {})
        .await
        .unwrap();
    let before = open_fds();
    for i in 1..=6 {
        engine
            .build(&build(i), &Default::default(), |_| {})
            .await
            .unwrap();
    }
    // Closing is asynchronous (the build's thread ends after the last item): give it time.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds() > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        open_fds() <= before,
        "{} files open after 6 builds, {before} before",
        open_fds()
    );
}
