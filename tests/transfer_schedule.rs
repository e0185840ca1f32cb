//! The scheduler moving a base image (`[build] transfer`, issue 19 item 3) against real
//! engines: a (Docker 20.10) and m (Docker 26.1), one build at a time each. With nothing
//! known of durations every cell is expected to take the same long time, so the second
//! compiler cell ends sooner on the engine without the base (a move of a few megabytes)
//! than after the first compiler on the engine that holds it.

mod common;

use common::*;
use imagegrid::scheduler::BuildEvent;
use imagegrid::store::BuildStatus;

fn config(
    data: &std::path::Path,
    staging: &str,
    transfer: bool,
) -> imagegrid::config::LoadedConfig {
    let one = |t: String| t.replace("max_parallel = 2", "max_parallel = 1");
    let engines =
        one(unix_engine_toml("a", &["amd64"])) + &one(modern_engine_toml("m", &["amd64"]));
    let cfg = fixture_config(
        data,
        staging,
        &engines,
        &fixture_distro("fixture", &[]),
        "distros = [\"fixture\"]\nversions = [\"5.3\", \"5.4\"]\narches = [\"amd64\"]",
    );
    with_build_options(&cfg, &format!("transfer = {transfer}"))
}

/// (cell, engine) of each build start.
fn starts(events: &[BuildEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Started { cell, engine, .. } => {
                Some((cell.to_string(), engine.to_string()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_compiler_moves_its_base_to_a_free_engine() {
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), "test-move", true);
    let (summary, events, store) = start(&cfg, &["*"]).finish(300).await;
    assert_eq!((summary.succeeded, summary.failed), (3, 0), "{summary:?}");
    let starts = starts(&events);
    let base = result(&events, "fixture/opam/amd64");
    let holder = base.engine.clone().unwrap().to_string();
    let moved: Vec<&(String, String)> = starts.iter().filter(|(_, e)| *e != holder).collect();
    assert_eq!(
        moved.len(),
        1,
        "one compiler on the other engine: {starts:?}"
    );
    assert_eq!(summary.transfers, 1, "{summary:?}");
    let cell = &moved[0].0;
    // The move is in the cell's log events, before its build.
    let lines: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Log { cell: c, line } if c.as_str() == cell => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        lines[0].starts_with("imagegrid: moving base fixture/opam/amd64"),
        "{lines:?}"
    );
    // And a transfer event names both engines.
    let t = events
        .iter()
        .find_map(|e| match e {
            BuildEvent::Transfer {
                cell: c,
                base,
                from,
                to,
                bytes,
                ..
            } if c.as_str() == cell => {
                Some((base.to_string(), from.to_string(), to.to_string(), *bytes))
            }
            _ => None,
        })
        .expect("a transfer event");
    assert_eq!(
        (t.0.as_str(), t.1.as_str(), t.2.as_str()),
        ("fixture/opam/amd64", holder.as_str(), moved[0].1.as_str())
    );
    assert!(t.3 > 0, "{t:?}");
    // Built FROM the very image the base produced on the other engine.
    let comp = result(&events, cell);
    assert_eq!(comp.status, BuildStatus::Succeeded);
    let id = comp.build_id.unwrap();
    let rec = store
        .try_call(move |s| s.build(id.0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.base_image, base.image_id);
}

#[tokio::test]
async fn without_transfer_compilers_stay_with_their_base() {
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), "test-nomove", false);
    let (summary, events, _) = start(&cfg, &["*"]).finish(300).await;
    assert_eq!(
        (summary.succeeded, summary.transfers),
        (3, 0),
        "{summary:?}"
    );
    let holder = result(&events, "fixture/opam/amd64")
        .engine
        .clone()
        .unwrap()
        .to_string();
    let starts = starts(&events);
    assert!(starts.iter().all(|(_, e)| *e == holder), "{starts:?}");
}
