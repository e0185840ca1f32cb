//! The engines line's counters go back when the work is done (issue 18, NEWCOMER row 3): a
//! base that fails makes its children skipped without ever starting, and the engine's last
//! health event of the run must count them out (`◌0`), on a real engine.

mod common;

use common::*;
use imagegrid::scheduler::BuildEvent;
use imagegrid::store::BuildStatus;

#[tokio::test]
async fn skipped_children_leave_no_queued_count_behind() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = fixture_config(
        dir.path(),
        "test-engine-counts",
        &unix_engine_toml("unix", &["amd64"]),
        &fixture_distro("fixture-broken", &["fail"]),
        "distros = [\"fixture-broken\"]\nversions = [\"5.4\", \"4.14\"]\narches = [\"amd64\"]",
    );
    let run = start(&loaded, &["fixture-broken/*/amd64"]);
    let (summary, events, _) = run.finish(300).await;
    assert_eq!((summary.failed, summary.skipped), (1, 2), "{summary:?}");
    assert_eq!(
        result(&events, "fixture-broken/5.4/amd64").status,
        BuildStatus::Skipped
    );
    let healths: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Engine(h) if h.engine == "unix" => Some(h),
            _ => None,
        })
        .collect();
    assert!(
        healths.iter().any(|h| h.queued >= 2),
        "the queued cells were counted: {healths:?}"
    );
    let last = healths.last().expect("health events");
    assert_eq!(
        (last.queued, last.running),
        (0, 0),
        "nothing is left queued or running once the run is done: {healths:?}"
    );
}
