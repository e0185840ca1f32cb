//! A build is judged by the image it made (field case F4, docker/buildx#1389): an arm64 cell
//! whose recipe pins its final stage to amd64 makes an amd64 image; that cell fails, naming
//! both platforms, and nothing records it as built. Real engine, classic builder (whose image
//! config then says amd64).

mod common;

use common::*;
use imagegrid::scheduler::BuildEvent;
use imagegrid::store::BuildStatus;

#[tokio::test]
async fn an_image_of_another_platform_fails_its_cell() {
    let data = tempfile::tempdir().unwrap();
    let distros = fixture_distro("fixture-pinned", &["pin-amd64"]);
    let cfg = fixture_config(
        data.path(),
        "test-judged",
        &unix_engine_toml("unix", &["amd64", "arm64"]),
        &distros,
        "distros = [\"fixture-pinned\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
    );
    let cfg = with_build_options(&cfg, "buildkit = \"off\"");
    let run = start(&cfg, &["fixture-pinned/opam/*"]);
    let (_, events, _) = run.finish(300).await;
    let amd = result(&events, "fixture-pinned/opam/amd64");
    assert_eq!(amd.status, BuildStatus::Succeeded, "{amd:?}");
    let arm = result(&events, "fixture-pinned/opam/arm64");
    assert_eq!(arm.status, BuildStatus::Failed, "{arm:?}");
    let why = arm.failure.clone().unwrap_or_default();
    assert!(
        why.contains("platform: built a linux/amd64 image for linux/arm64"),
        "the failure says what was judged: {why}"
    );
    // Judged after the build stream ended: no step failed, least of all imagegrid's own
    // closing `LABEL imagegrid.build=...`.
    assert!(!why.contains("LABEL") && !why.contains("step"), "{why}");
    let record = arm.failure_record.clone().expect("a failure record");
    assert_eq!(record.step, None, "{record:?}");
    assert_eq!(record.command, None, "{record:?}");
    assert!(arm.image_id.is_none(), "not recorded as an image: {arm:?}");
    assert!(
        !events.iter().any(|e| matches!(e, BuildEvent::Finished(r)
            if r.cell == "fixture-pinned/opam/arm64" && r.status == BuildStatus::Succeeded)),
        "never reported as built"
    );
}
