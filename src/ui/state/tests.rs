//! Tests of the state transitions.

use super::*;
use crate::publish::TagLine;
use crate::scheduler::CellResult;
use crate::store::BuildStatus;

/// The built-in catalog with the five switches these tests were written for (its plain
/// 4.14 ... 5.5 columns; no variants, 4.11, betas, trunk or archive).
fn five_versions() -> Matrix {
    let cfg = crate::config::parse(
        "test.toml",
        "[matrix]\nversions = [\"4.14\", \"5.2\", \"5.3\", \"5.4\", \"5.5\"]\nexclude = [\"*/archive/*\"]\n",
    )
    .unwrap();
    Matrix::from_config(&cfg).unwrap()
}

fn app() -> App {
    App::new(
        five_versions(),
        &HashMap::new(),
        &BTreeSet::new(),
        (10_000_000, 5.0),
    )
}

/// A key press as the terminal sends it (upper case with Shift).
pub(super) fn key(c: char) -> KeyEvent {
    let m = if c.is_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    KeyEvent::new(KeyCode::Char(c), m)
}

fn finished(cell: &str, status: BuildStatus, size: Option<i64>, prev: Option<i64>) -> BuildEvent {
    BuildEvent::Finished(CellResult {
        cell: cell.into(),
        status,
        build_id: Some(1.into()),
        engine: Some("e".into()),
        image_id: None,
        size,
        previous_size: prev,
        failure: None,
        failure_record: None,
        cause: None,
        duration_secs: None,
        log_path: None,
    })
}

#[test]
fn focus_moves_and_clamps() {
    let mut a = app();
    assert_eq!(a.focused().as_deref(), Some("alpine-3.23/opam/amd64"));
    a.on_key(key('l'));
    assert_eq!(a.focused().as_deref(), Some("alpine-3.23/4.14/amd64"));
    a.on_key(key('k'));
    assert_eq!(a.row, 0);
    a.on_key(key('G'));
    assert_eq!(a.row, a.visible_rows().len() - 1);
    a.on_key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE));
    assert_eq!(a.col, a.columns.len() - 1);
    a.on_key(key(']'));
    assert_eq!(a.current_arch(), "arm64");
}

#[test]
fn context_follows_the_view() {
    let mut a = app();
    assert_eq!(a.context(), Context::Grid);
    a.on_key(key('o'));
    assert_eq!(a.list, None, "o sorts only the list");
    a.on_key(key('L'));
    assert_eq!(a.context(), Context::List);
    a.on_key(key('o'));
    assert_eq!(a.list, Some(SortKey::Growth));
    a.on_key(key('L'));
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(a.context(), Context::Log);
    a.on_key(key('i'));
    assert_eq!(a.context(), Context::Inspector);
    a.on_key(key('/'));
    assert_eq!(a.context(), Context::Prompt, "/ searches the inspector");
    a.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(a.context(), Context::Inspector);
    a.on_key(key('?'));
    assert_eq!(a.context(), Context::Help);
    assert_eq!(a.view_context(), Context::Inspector);
    a.on_key(key('x'));
    assert_eq!(
        a.context(),
        Context::Help,
        "the help closes only on its keys"
    );
    a.on_key(key('j'));
    assert_eq!(a.context(), Context::Help, "j scrolls the help");
    a.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(a.context(), Context::Inspector, "Esc closes the help");
    a.on_key(key('d'));
    assert_eq!(a.context(), Context::Dockerfile);
    a.on_key(key('M'));
    assert_eq!(a.context(), Context::Merged);
    a.on_key(key('/'));
    assert_eq!(a.context(), Context::Prompt);
}

#[test]
fn selection_row_column_range_and_selector() {
    let mut a = app();
    a.on_key(key(' '));
    assert_eq!(a.selection.len(), 1);
    a.on_key(key(' '));
    assert!(a.selection.is_empty());
    a.on_key(key('r'));
    assert_eq!(a.selection.len(), 6, "alpine amd64: opam + 5 versions");
    a.on_key(key('x'));
    a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)); // every arch
    a.on_key(key('r'));
    assert_eq!(a.selection.len(), 12);
    a.on_key(key('x'));
    a.on_key(key('v'));
    a.on_key(key('j'));
    a.on_key(key('l'));
    a.on_key(key('v'));
    // alpine (2 arches) + archlinux (1 arch), two columns each.
    assert_eq!(a.selection.len(), 6);
    a.on_key(key('x'));
    a.on_key(key(':'));
    for c in "debian-13/5.*/arm64".chars() {
        a.on_key(key(c));
    }
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(a.selection.len(), 4);
    a.on_key(key(':'));
    for c in "nope-1".chars() {
        a.on_key(key(c));
    }
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(a
        .message
        .as_deref()
        .unwrap()
        .contains("unknown distro `nope-1`"));
}

/// Two distros x (opam, 4.14, 5.4) x (amd64, arm64), two cells marked stale.
fn small_app() -> App {
    let cfg = crate::config::parse(
        "test.toml",
        "[matrix]\ndistros = [\"debian-13\", \"alpine-3.24\"]\nversions = [\"4.14\", \"5.4\"]\narches = [\"amd64\", \"arm64\"]\nexclude = [\"*/archive/*\"]\n",
    )
    .unwrap();
    let stale: BTreeSet<String> = ["debian-13/opam/arm64", "alpine-3.24/4.14/amd64"]
        .into_iter()
        .map(str::to_string)
        .collect();
    App::new(
        Matrix::from_config(&cfg).unwrap(),
        &HashMap::new(),
        &stale,
        (10_000_000, 5.0),
    )
}

fn selected(a: &App) -> BTreeSet<&str> {
    a.selection.iter().map(String::as_str).collect()
}

fn set<'a>(ids: &[&'a str]) -> BTreeSet<&'a str> {
    ids.iter().copied().collect()
}

#[test]
fn selection_by_column_stale_and_arch() {
    let mut a = small_app();
    assert_eq!(a.columns, ["opam", "4.14", "5.4"]);
    // c: the focused column of every row, in the arch shown.
    a.on_key(key('l'));
    a.on_key(key('l'));
    a.on_key(key('c'));
    assert_eq!(
        selected(&a),
        set(&["debian-13/5.4/amd64", "alpine-3.24/5.4/amd64"])
    );
    // ... of every arch in the strip view.
    a.on_key(key('x'));
    a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    a.on_key(key('c'));
    assert_eq!(
        selected(&a),
        set(&[
            "debian-13/5.4/amd64",
            "alpine-3.24/5.4/amd64",
            "debian-13/5.4/arm64",
            "alpine-3.24/5.4/arm64",
        ])
    );
    a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    // S: every stale cell, whatever arch is shown.
    a.on_key(key('x'));
    a.on_key(key('S'));
    assert_eq!(
        selected(&a),
        set(&["debian-13/opam/arm64", "alpine-3.24/4.14/amd64"])
    );
    assert_eq!(a.message.as_deref(), Some("2 stale cells selected"));
    // A: every cell of the arch shown, then of the next arch.
    a.on_key(key('x'));
    a.on_key(key('A'));
    let amd64 = [
        "debian-13/opam/amd64",
        "debian-13/4.14/amd64",
        "debian-13/5.4/amd64",
        "alpine-3.24/opam/amd64",
        "alpine-3.24/4.14/amd64",
        "alpine-3.24/5.4/amd64",
    ];
    assert_eq!(selected(&a), set(&amd64));
    a.on_key(key('x'));
    a.on_key(key(']'));
    assert_eq!(a.current_arch(), "arm64");
    a.on_key(key('A'));
    let arm64: Vec<String> = amd64.iter().map(|c| c.replace("amd64", "arm64")).collect();
    let arm64: Vec<&str> = arm64.iter().map(String::as_str).collect();
    assert_eq!(selected(&a), set(&arm64));
}

#[test]
fn build_and_cancel_go_through_confirm() {
    let mut a = app();
    a.on_key(key('r'));
    assert!(a.on_key(key('b')).is_empty());
    assert!(
        matches!(&a.mode, Mode::Confirm(Confirm::Build { cells, no_cache: false }) if cells.len() == 6)
    );
    let fx = a.on_key(key('y'));
    assert!(matches!(&fx[..], [Effect::Build { cells, .. }] if cells.len() == 6));
    assert!(a.selection.is_empty());
    // Nothing is running: cancel has nothing to do.
    a.on_key(key('X'));
    assert_eq!(a.mode, Mode::Normal);
    a.on_event(BuildEvent::Queued {
        cell: "alpine-3.23/opam/amd64".into(),
    });
    a.on_key(key('X'));
    assert!(
        matches!(&a.mode, Mode::Confirm(Confirm::Cancel { cells }) if cells == &["alpine-3.23/opam/amd64".to_string()])
    );
    assert!(a.on_key(key('n')).is_empty());
    // Quit asks while something is active.
    a.on_key(key('q'));
    assert!(matches!(a.mode, Mode::Confirm(Confirm::Quit { active: 1 })));
    assert_eq!(a.on_key(key('y')), vec![Effect::Quit]);
    assert!(a.quit);
}

#[test]
fn events_fold_into_cells() {
    let mut a = app();
    let id = "alpine-3.23/opam/amd64";
    a.on_event(BuildEvent::Queued { cell: id.into() });
    assert_eq!(a.progress.cells[id].status, Status::Queued);
    a.on_event(BuildEvent::Started {
        cell: id.into(),
        engine: "e".into(),
        build_id: 7.into(),
        emulated: false,
    });
    a.on_event(BuildEvent::Step {
        cell: id.into(),
        current: 2,
        total: 9,
        name: "RUN x".into(),
    });
    assert_eq!(a.progress.cells[id].step, Some((2, 9)));
    a.on_event(BuildEvent::Log {
        cell: id.into(),
        line: "hello".into(),
    });
    assert_eq!(a.log_of(id).len(), 1);
    assert_eq!(a.merged.len(), 1);
    a.on_event(finished(
        id,
        BuildStatus::Succeeded,
        Some(120_000_000),
        Some(100_000_000),
    ));
    assert_eq!(a.progress.cells[id].status, Status::Succeeded);
    assert_eq!(a.delta(id), Some(20_000_000));
    assert!(a.regressed(id));
    a.on_event(finished(
        "alpine-3.23/4.14/amd64",
        BuildStatus::Failed,
        None,
        None,
    ));
    a.on_key(key('F'));
    assert_eq!(
        a.selection.iter().cloned().collect::<Vec<_>>(),
        ["alpine-3.23/4.14/amd64"]
    );
}

#[test]
fn a_transfer_shows_in_the_merged_log_and_the_status_line() {
    let mut a = app();
    a.on_event(BuildEvent::Transfer {
        cell: "alpine-3.23/5.4/amd64".into(),
        base: "alpine-3.23/opam/amd64".into(),
        from: "a".into(),
        to: "m".into(),
        bytes: 412_300_000,
        secs: 9.14,
        via: crate::engine::transfer::Via::Registry,
    });
    let line = "transfer base alpine-3.23/opam/amd64 from a to m: 412.3MB in 9.1 s (registry)";
    assert_eq!(
        a.merged.iter().collect::<Vec<_>>(),
        [format!("alpine-3.23/5.4/amd64 | {line}")]
    );
    assert_eq!(
        a.message.as_deref(),
        Some(format!("alpine-3.23/5.4/amd64: {line}").as_str())
    );
    assert_eq!(a.progress.counters.transfers, 1);
}

#[test]
fn follow_stops_on_scroll_up_and_resumes_at_end() {
    let mut a = app();
    let id = a.focused().unwrap();
    for i in 0..100 {
        a.on_event(BuildEvent::Log {
            cell: id.clone().into(),
            line: format!("line {i}{}", if i == 40 { " error: boom" } else { "" }),
        });
    }
    a.geometry.log_height = 10;
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(a.pane, Pane::Detail);
    assert!(a.log_view.follow);
    a.on_key(key('k'));
    assert!(!a.log_view.follow);
    assert_eq!(a.log_view.top, 89);
    a.on_key(key('j'));
    assert!(a.log_view.follow, "back at the end: following again");
    a.on_key(key('e'));
    assert_eq!(a.log_view.top, 38);
    a.on_key(key('/'));
    for c in "line 5".chars() {
        a.on_key(key(c));
    }
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(a.log_view.matches.len(), 11, "line 5 and line 50..59");
    a.on_key(key('n'));
    assert_eq!(a.log_view.current_match, 1);
    a.on_key(key('N'));
    a.on_key(key('N'));
    assert_eq!(a.log_view.current_match, 10);
    a.on_key(key('G'));
    assert!(a.log_view.follow);
}

#[test]
fn filter_by_name_and_state() {
    let mut a = app();
    a.on_key(key('/'));
    for c in "debian".chars() {
        a.on_key(key(c));
    }
    a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(a.visible_rows().iter().all(|d| d.starts_with("debian")));
    a.on_event(finished(
        "ubuntu-24.04/5.4/amd64",
        BuildStatus::Failed,
        None,
        None,
    ));
    a.filter = "failed".into();
    assert_eq!(a.visible_rows(), ["ubuntu-24.04"]);
}

#[test]
fn publish_plans_asks_and_reports_progress() {
    let mut a = app();
    // Nothing built: nothing to publish, and the reason says what is missing.
    a.on_key(key('P'));
    assert_eq!(a.mode, Mode::Normal);
    let m = a.message.clone().unwrap();
    assert!(
        m.starts_with("nothing to publish: alpine-3.23-opam: not every arch is built: missing amd64 (alpine-3.23/opam/amd64), arm64"),
        "{m}"
    );
    // Both arches of the focused cell's tag built (one from history, one just now).
    a.set_publish_context(
        TagConfig {
            registry: "127.0.0.1:5000".into(),
            ..TagConfig::default()
        },
        [(
            "alpine-3.23/opam/arm64".to_string(),
            Built {
                build_id: 1,
                engine: "arm".into(),
                image_id: "sha256:1".into(),
                size: Some(5),
            },
        )]
        .into(),
    );
    a.on_event(BuildEvent::Finished(CellResult {
        image_id: Some("sha256:2".into()),
        ..match finished(
            "alpine-3.23/opam/amd64",
            BuildStatus::Succeeded,
            Some(6),
            None,
        ) {
            BuildEvent::Finished(r) => r,
            _ => unreachable!(),
        }
    }));
    assert_eq!(a.progress.built["alpine-3.23/opam/amd64"].engine, "e");
    assert!(a.on_key(key('P')).is_empty(), "asks first");
    let Mode::Confirm(Confirm::Publish {
        cells,
        registry,
        tags,
        plan,
    }) = a.mode.clone()
    else {
        panic!("{:?}", a.mode)
    };
    assert_eq!(cells, ["alpine-3.23/opam/amd64"]);
    assert_eq!(registry, "127.0.0.1:5000");
    assert_eq!(
        tags,
        [TagLine {
            tag: "alpine-3.23-opam".into(),
            alias: false,
            points_to: "amd64, arm64".into(),
            blocked: None
        }]
    );
    assert!(a.on_key(key('n')).is_empty());
    assert_eq!(a.publishing, None);
    a.on_key(key('P'));
    // What runs is the plan the confirm showed.
    assert_eq!(a.on_key(key('y')), vec![Effect::Publish { plan }]);
    assert!(a.publishing.is_some());
    a.on_key(key('P'));
    assert_eq!(a.message.as_deref(), Some("a publish is already running"));
    // Progress per push on the status line.
    a.on_publish_event(PublishEvent::Planned {
        registry: "r".into(),
        tags: 1,
        aliases: 0,
        pushes: 2,
        credentials: "anonymous".into(),
    });
    a.on_publish_event(PublishEvent::PushStarted {
        cell: "alpine-3.23/opam/arm64".into(),
        engine: "arm".into(),
        reference: "x".into(),
        index: 2,
        total: 2,
    });
    assert_eq!(
        a.message.as_deref(),
        Some("publish: pushing alpine-3.23/opam/arm64 from arm (2/2)")
    );
    a.on_publish_event(PublishEvent::Pushed {
        cell: "alpine-3.23/opam/arm64".into(),
        engine: "arm".into(),
        reference: "x".into(),
        digest: "sha256:d".into(),
        size: Some(2_000_000),
        compressed_size: 1_000_000,
        secs: 0.5,
    });
    assert_eq!(a.publishing.as_ref().unwrap().pushed, 1);
    assert!(a.message.as_deref().unwrap().ends_with("(1/2)"));
    a.on_publish_event(PublishEvent::Done(Default::default()));
    assert_eq!(a.publishing, None);
    assert!(a.message.as_deref().unwrap().starts_with("publish done:"));
    a.on_key(key('P'));
    a.on_key(key('y'));
    a.on_publish_failed("registry r: refused");
    assert_eq!(a.publishing, None);
    assert_eq!(
        a.message.as_deref(),
        Some("publish stopped: registry r: refused")
    );
}

#[test]
fn ended_logs_are_released_out_of_view_and_read_again_on_focus() {
    let mut a = app();
    let here = a.focused().unwrap();
    a.col = 1;
    let there = a.focused().unwrap();
    a.col = 0;
    for (n, id) in [&here, &there].into_iter().enumerate() {
        a.on_event(BuildEvent::Started {
            cell: id.clone().into(),
            engine: "e".into(),
            build_id: (n as i64).into(),
            emulated: false,
        });
        a.on_event(BuildEvent::Log {
            cell: id.clone().into(),
            line: "a line".into(),
        });
        let BuildEvent::Finished(mut r) = finished(id, BuildStatus::Failed, None, None) else {
            unreachable!()
        };
        r.log_path = Some(format!("/data/logs/{n}.log"));
        a.on_event(BuildEvent::Finished(r));
    }
    assert_eq!(a.log_of(&here).len(), 1, "in view: kept");
    assert!(a.log_of(&there).is_empty(), "out of view: released");
    a.on_key(key('l'));
    assert!(a.log_of(&here).is_empty(), "focus left it: released");
    a.on_log_loaded(&here, vec!["late".into()], 0);
    assert!(
        a.log_of(&here).is_empty(),
        "a read that arrives late is dropped"
    );
    a.on_log_loaded(&there, vec!["a line".into()], 0);
    assert_eq!(a.log_of(&there).len(), 1, "read again from disk");
    let fx = a.on_key(key('h'));
    assert_eq!(
        fx,
        vec![Effect::LoadLog {
            cell: here.clone(),
            path: "/data/logs/0.log".into()
        }]
    );
}

#[test]
fn stored_log_is_loaded_once_on_focus() {
    let mut latest = HashMap::new();
    let rec = crate::store::BuildRecord {
        id: 4,
        cell: "alpine-3.23/opam/amd64".into(),
        engine: "e".into(),
        inputs: "h".into(),
        status: BuildStatus::Failed,
        started_at: "2026-11-24T10:00:00Z".into(),
        finished_at: None,
        image_id: None,
        size: None,
        compressed_size: None,
        layers: vec![],
        failure: Some("boom".into()),
        failure_record: None,
        cause: None,
        log_path: Some("/data/logs/4.log".into()),
        tag: None,
        base_image: None,
        log_pruned_at: None,
    };
    latest.insert(rec.cell.clone(), rec);
    let mut a = App::new(five_versions(), &latest, &BTreeSet::new(), (1, 1.0));
    let fx = a.focus_effects();
    assert_eq!(
        fx,
        vec![Effect::LoadLog {
            cell: "alpine-3.23/opam/amd64".into(),
            path: "/data/logs/4.log".into()
        }]
    );
    assert!(a.focus_effects().is_empty(), "asked once");
    a.on_log_loaded("alpine-3.23/opam/amd64", vec!["a".into(), "b".into()], 3);
    assert_eq!(a.log_of("alpine-3.23/opam/amd64").len(), 3);
    // The Dockerfile view asks for the focused cell's Dockerfile as focus moves.
    let fx = a.on_key(key('d'));
    assert_eq!(
        fx,
        vec![Effect::LoadDockerfile("alpine-3.23/opam/amd64".into())]
    );
    a.on_dockerfile_loaded("alpine-3.23/opam/amd64".into(), "FROM x".into());
    assert_eq!(
        a.detail,
        Detail::Dockerfile(Loadable::Ready(
            "alpine-3.23/opam/amd64".into(),
            "FROM x".into()
        ))
    );
    // A stale cell: its reasons and the diff against its last success come first.
    let mut reasons = crate::why::Reasons::new();
    reasons.insert(
        "alpine-3.23/opam/amd64".into(),
        crate::why::recorded::dockerfile_reason("FROM w\n", "FROM x\n")
            .into_iter()
            .collect(),
    );
    a.progress.set_reasons(&reasons);
    a.detail = Detail::Dockerfile(Loadable::Loading("alpine-3.23/opam/amd64".into()));
    a.on_dockerfile_loaded("alpine-3.23/opam/amd64".into(), "FROM x".into());
    assert_eq!(
        a.shown_lines(),
        [
            "# stale: Dockerfile: 1 line changed (+1 -1)",
            "--- last success",
            "+++ now",
            "@@ -1 +1 @@",
            "-FROM w",
            "+FROM x",
            "# the Dockerfile now:",
            "FROM x"
        ]
    );
    // The Dockerfile has the keyboard; Esc gives it back to the grid.
    assert_eq!(a.context(), Context::Dockerfile);
    assert!(
        a.on_key(key('l')).is_empty(),
        "l does not move the grid from the Dockerfile"
    );
    a.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    // Moving to another cell shows its log (the Dockerfile view is one cell's): `d` there
    // shows its Dockerfile, as on the first cell, never its log.
    a.on_key(key('l'));
    assert_eq!(a.focused().as_deref(), Some("alpine-3.23/4.14/amd64"));
    assert_eq!(a.detail, Detail::Log);
    assert_eq!(a.context(), Context::Grid);
    let fx = a.on_key(key('d'));
    assert_eq!(
        fx,
        vec![Effect::LoadDockerfile("alpine-3.23/4.14/amd64".into())]
    );
    assert!(matches!(a.detail, Detail::Dockerfile(_)));
    // A second `d` on the same cell goes back to its log.
    a.on_key(key('d'));
    assert_eq!(a.detail, Detail::Log);
}

/// A matrix over one of the plan-diff fixtures, as `--plan` makes it.
fn plan_matrix(file: &str) -> Matrix {
    let mut loaded = crate::config::parse("t.toml", "").unwrap();
    loaded.plan_override = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/plan")
            .join(file),
    );
    Matrix::load(&loaded).unwrap()
}

#[test]
fn reading_the_plan_again_marks_what_it_changed() {
    let ctrl_r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
    // The built-in catalog has no plan to read.
    let mut a = app();
    assert_eq!(a.on_key(ctrl_r), vec![]);
    assert!(a.message.as_deref().unwrap().starts_with("no plan"));

    let old = plan_matrix("diff-old.dump");
    let new = plan_matrix("diff-new.dump");
    let mut a = App::new(old.clone(), &HashMap::new(), &BTreeSet::new(), (0, 0.0));
    a.selection.insert("debian-13/5.3/arm64".into());
    a.selection.insert("debian-13/5.4/arm64".into());
    // Not while a run is under way.
    a.on_event(BuildEvent::Queued {
        cell: "debian-13/opam/amd64".into(),
    });
    assert!(!a.on_key(ctrl_r).contains(&Effect::ReloadPlan));
    assert!(a
        .message
        .as_deref()
        .unwrap()
        .starts_with("a run is under way"));
    a.on_event(finished(
        "debian-13/opam/amd64",
        BuildStatus::Succeeded,
        Some(1),
        None,
    ));
    assert!(a.on_key(ctrl_r).contains(&Effect::ReloadPlan));

    let changed = crate::why::plan_reasons(old.plan.as_ref().unwrap(), new.plan.as_ref().unwrap());
    a.on_plan_reloaded(new, &crate::session::HistoryView::default(), &changed);
    let stale: Vec<&str> = {
        let mut v: Vec<&str> = a
            .progress
            .cells
            .iter()
            .filter(|(_, c)| c.stale)
            .map(|(id, _)| id.as_str())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        stale,
        [
            "alpine-3.23/5.4/amd64",
            "debian-13/5.3/amd64",
            "debian-13/5.4/amd64",
            "debian-13/5.4/arm64",
            "debian-13/archive/amd64",
            "debian-13/opam/amd64",
        ]
    );
    let why = &a.progress.cells["debian-13/archive/amd64"].why;
    assert_eq!(why[0].kind, crate::why::ReasonKind::ChangedByPlan);
    assert!(
        a.progress.cells.contains_key("debian-13/5.5/amd64"),
        "added"
    );
    assert!(
        !a.progress.cells.contains_key("debian-13/5.3/arm64"),
        "removed"
    );
    assert_eq!(
        a.selection.iter().collect::<Vec<_>>(),
        ["debian-13/5.4/arm64"],
        "the removed cell left the selection"
    );
    assert!(a.columns.contains(&"5.5".to_string()), "{:?}", a.columns);
    assert!(a
        .message
        .as_deref()
        .unwrap()
        .starts_with("plan read again: 6 cells changed by plan"));
}
