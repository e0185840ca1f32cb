//! The scheduler against real engines: routing, failures and skips, base image ids,
//! cancel, a killed engine, hostile output, refusals, ssh, and restart after a kill.

mod common;

use std::time::Duration;

use common::*;
use imagegrid::engine::{Endpoint, Engine, EngineErrorKind, EngineSpec, TlsFiles};
use imagegrid::scheduler::{BuildEvent, Command};
use imagegrid::store::BuildStatus;

#[tokio::test]
async fn routes_arches_fails_skips_and_chains_base_ids() {
    let data = tempfile::tempdir().unwrap();
    let engines = unix_engine_toml("unix", &["amd64"]) + &tls_engine_toml("tls", &["arm64"]);
    let distros = fixture_distro("fixture", &[]) + &fixture_distro("fixture-broken", &["fail"]);
    let cfg = fixture_config(data.path(), "test-route", &engines, &distros, "distros = [\"fixture\", \"fixture-broken\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]");
    let run = start(&cfg, &["*"]);
    let (summary, events, store) = run.finish(300).await;

    let started: Vec<(String, String, bool)> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Started {
                cell,
                engine,
                emulated,
                ..
            } => Some((cell.to_string(), engine.to_string(), *emulated)),
            _ => None,
        })
        .collect();
    assert!(
        started.contains(&("fixture/opam/amd64".into(), "unix".into(), false)),
        "{started:?}"
    );
    assert!(
        started.contains(&("fixture/opam/arm64".into(), "tls".into(), true)),
        "{started:?}"
    );
    assert!(
        started
            .iter()
            .all(|(c, e, _)| c.ends_with("amd64") == (e == "unix")),
        "{started:?}"
    );

    for arch in ["amd64", "arm64"] {
        let base = result(&events, &format!("fixture/opam/{arch}"));
        assert_eq!(base.status, BuildStatus::Succeeded, "{base:?}");
        let comp = result(&events, &format!("fixture/5.4/{arch}"));
        assert_eq!(comp.status, BuildStatus::Succeeded, "{comp:?}");
        // The compiler cell was built FROM the exact image its base produced.
        let id = comp.build_id.unwrap();
        let rec = store
            .try_call(move |s| s.build(id.0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.base_image, base.image_id, "{arch}");
        assert!(rec.layers.len() >= 2 && rec.size.unwrap() > 0);

        let broken = result(&events, &format!("fixture-broken/opam/{arch}"));
        assert_eq!(broken.status, BuildStatus::Failed);
        let why = broken.failure.as_deref().unwrap();
        assert!(why.contains("exit code 3"), "{why}");
        assert!(
            why.contains("caml/mlvalues.h: No such file"),
            "summary explains: {why}"
        );
        let skipped = result(&events, &format!("fixture-broken/5.4/{arch}"));
        assert_eq!(skipped.status, BuildStatus::Skipped);
        assert_eq!(
            skipped.failure.as_deref(),
            Some(format!("base fixture-broken/opam/{arch} failed").as_str())
        );
    }
    assert_eq!(
        (summary.succeeded, summary.failed, summary.skipped),
        (4, 2, 2),
        "{summary:?}"
    );
    // Step progress and logs arrived as they happened.
    assert!(events
        .iter()
        .any(|e| matches!(e, BuildEvent::Step { total, .. } if *total > 0)));
    // The full log is on disk.
    let s = store;
    let id = result(&events, "fixture-broken/opam/amd64")
        .build_id
        .unwrap();
    let log = std::fs::read_to_string(s.log_path(id.0)).unwrap();
    assert!(log.contains("compiling opam"), "{log}");
}

#[tokio::test]
async fn cancel_stops_the_build_on_the_engine() {
    let data = tempfile::tempdir().unwrap();
    let marker = "3117"; // sleep 3117: unique to this test
    let distros = fixture_distro("fixture-slow", &[&format!("sleep-{marker}")]);
    let cfg = fixture_config(
        data.path(),
        "test-cancel",
        &unix_engine_toml("unix", &["amd64"]),
        &distros,
        "distros = [\"fixture-slow\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    // Classic builder: the step runs in a container we can look for.
    let text = std::fs::read_to_string(data.path().join("config.toml"))
        .unwrap()
        .replace("[build]", "[build]\nbuildkit = \"off\"");
    std::fs::write(data.path().join("config.toml"), text).unwrap();
    let cfg = imagegrid::config::load_file(&data.path().join("config.toml"))
        .unwrap_or_else(|e| panic!("{e} {cfg:?}"));
    let mut run = start(&cfg, &["fixture-slow/5.4/amd64"]);
    run.wait_for(
        120,
        "the slow step",
        |e| matches!(e, BuildEvent::Log { line, .. } if line.contains("slow step starting")),
    )
    .await;
    let needle = format!("sleep {marker}");
    // Polled up to a generous deadline: on a loaded machine the engine takes seconds to start
    // the step's container.
    for _ in 0..300 {
        if process_running(&needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(process_running(&needle), "the step runs");
    run.handle
        .send(Command::Cancel("fixture-slow/opam/amd64".into()));
    let (summary, events, _) = run.finish(60).await;
    assert_eq!(
        result(&events, "fixture-slow/opam/amd64").status,
        BuildStatus::Cancelled
    );
    assert_eq!(
        result(&events, "fixture-slow/5.4/amd64").status,
        BuildStatus::Skipped,
        "dependant of a cancelled base"
    );
    assert_eq!(summary.cancelled, 1);
    // Nothing keeps running on the engine.
    let mut gone = false;
    for _ in 0..300 {
        if !process_running(&needle) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the build step still runs after cancel");
    let engine = Engine::connect(&unix_spec("unix", &["amd64"]))
        .await
        .unwrap();
    // The engine notices the step's end a moment after its process is gone (it may still
    // list the container as up): polled like the process.
    let mut containers = Vec::new();
    for _ in 0..300 {
        containers = engine
            .docker()
            .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
            .await
            .unwrap();
        if containers
            .iter()
            .all(|c| !c.command.clone().unwrap_or_default().contains(&needle))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        containers
            .iter()
            .all(|c| !c.command.clone().unwrap_or_default().contains(&needle)),
        "{containers:?}"
    );
}

#[tokio::test]
async fn killed_engine_fails_its_cells_and_others_finish() {
    let doomed = PrivateEngine::start().await;
    let data = tempfile::tempdir().unwrap();
    let engines = doomed.engine_toml("doomed", &["amd64"]) + &tls_engine_toml("tls", &["arm64"]);
    let distros =
        fixture_distro("fixture-doom", &["sleep-3118"]) + &fixture_distro("fixture-ok", &[]);
    let cfg = fixture_config(data.path(), "test-kill", &engines, &distros, "distros = [\"fixture-doom\", \"fixture-ok\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]");
    // One retry allowed: the cell waits for its engine to come back, which it never does.
    let cfg = with_build_options(&cfg, "retries = 1\nreconnect_wait_secs = 3");
    let mut run = start(&cfg, &["fixture-doom/opam/amd64", "fixture-ok/*/arm64"]);
    run.wait_for(120, "the doomed build's slow step", |e| matches!(e, BuildEvent::Log { cell, line } if cell == "fixture-doom/opam/amd64" && line.contains("slow step starting"))).await;
    doomed.signal("KILL");
    let (summary, events, _) = run.finish(300).await;
    let r = result(&events, "fixture-doom/opam/amd64");
    assert_eq!(r.status, BuildStatus::Failed);
    let why = r.failure.as_deref().unwrap();
    assert!(why.contains("engine doomed lost during build"), "{r:?}");
    assert!(
        why.contains("no engine for amd64 answered again within 3 s"),
        "{r:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, BuildEvent::Retrying { cell, .. } if cell == "fixture-doom/opam/amd64")
        ),
        "the retry was queued"
    );
    assert_eq!(
        result(&events, "fixture-ok/opam/arm64").status,
        BuildStatus::Succeeded
    );
    assert_eq!(
        result(&events, "fixture-ok/5.4/arm64").status,
        BuildStatus::Succeeded
    );
    assert_eq!(summary.succeeded, 2);
    assert!(events
        .iter()
        .any(|e| matches!(e, BuildEvent::Engine(h) if h.engine == "doomed" && !h.reachable && h.last_error.is_some())));
}

#[tokio::test]
async fn restarted_engine_gets_its_build_retried() {
    let mut engine = PrivateEngine::start().await;
    let data = tempfile::tempdir().unwrap();
    let cfg = fixture_config(
        data.path(),
        "test-restart",
        &engine.engine_toml("restarted", &["amd64"]),
        &fixture_distro("fixture-restart", &["sleep-5"]),
        "distros = [\"fixture-restart\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let cfg = with_build_options(&cfg, "retries = 1\nreconnect_wait_secs = 60");
    let cell = "fixture-restart/opam/amd64";
    let mut run = start(&cfg, &[cell]);
    // The step's own output, not its header line (`#7 [opam-builder 3/3] RUN echo "slow step
    // starting" ...`): restarting while the container starts is another race (see job.rs).
    run.wait_for(120, "the slow step", |e| matches!(e, BuildEvent::Log { cell: c, line } if c == cell && line.contains("slow step starting") && !line.contains("RUN "))).await;
    engine.restart().await;
    let (summary, events, store) = run.finish(180).await;
    let r = result(&events, cell);
    assert_eq!(r.status, BuildStatus::Succeeded, "{r:?}");
    assert_eq!(r.engine.as_deref(), Some("restarted"));
    assert_eq!(summary.succeeded, 1, "{summary:?}");
    let retry = events
        .iter()
        .find_map(|e| match e {
            BuildEvent::Retrying {
                cell: c, reason, ..
            } if c == cell => Some(reason.clone()),
            _ => None,
        })
        .expect("a Retrying event");
    assert!(retry.contains("transient engine error"), "{retry}");
    // History keeps both attempts: the cut one, with its reason, and the one that made it.
    let rows = store.try_call(move |s| s.for_cell(cell)).await.unwrap();
    let statuses: Vec<BuildStatus> = rows.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [BuildStatus::Interrupted, BuildStatus::Succeeded],
        "{rows:?}"
    );
    assert!(rows[0]
        .failure
        .as_deref()
        .unwrap()
        .contains("transient engine error, retrying"));
}

#[tokio::test]
async fn stalled_engine_is_caught_by_the_watchdog_and_others_go_on() {
    let frozen = PrivateEngine::start().await;
    let data = tempfile::tempdir().unwrap();
    let engines = frozen.engine_toml("frozen", &["amd64"]) + &tls_engine_toml("tls", &["arm64"]);
    let distros =
        fixture_distro("fixture-frozen", &["sleep-3121"]) + &fixture_distro("fixture-alive", &[]);
    let cfg = fixture_config(data.path(), "test-stall", &engines, &distros, "distros = [\"fixture-frozen\", \"fixture-alive\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]");
    // 6 s of silence: short for the test, long enough that the steps before the slow one are
    // not taken for a stall on a machine at load 15 to 20 (2 s was, on 2026-11-30).
    let cfg = with_build_options(
        &cfg,
        "idle_timeout_secs = 6\nretries = 1\nreconnect_wait_secs = 2",
    );
    let stuck = "fixture-frozen/opam/amd64";
    let mut run = start(&cfg, &[stuck]);
    run.wait_for(120, "the slow step", |e| matches!(e, BuildEvent::Log { cell, line } if cell == stuck && line.contains("slow step starting"))).await;
    // SIGSTOP: the socket still accepts connections, nothing answers. No error ever comes
    // from the stream itself; only the watchdog can notice.
    frozen.signal("STOP");
    run.queue(&cfg, &["fixture-alive/*/arm64"]);
    let (summary, events, _) = run.finish(300).await;
    let r = result(&events, stuck);
    assert_eq!(r.status, BuildStatus::Failed, "{r:?}");
    let why = r.failure.as_deref().unwrap();
    assert!(why.contains("engine frozen lost during build"), "{why}");
    assert!(
        why.contains("ping got no answer"),
        "the reason is the silent engine: {why}"
    );
    for c in ["fixture-alive/opam/arm64", "fixture-alive/5.4/arm64"] {
        let r = result(&events, c);
        assert_eq!(r.status, BuildStatus::Succeeded, "{c}: {r:?}");
    }
    assert_eq!(summary.succeeded, 2, "{summary:?}");
    // The other engine was not held up: work queued after the freeze started on it while
    // the frozen build still hung.
    let pos = |pred: &dyn Fn(&BuildEvent) -> bool| events.iter().position(pred).unwrap();
    let alive_started = pos(
        &|e| matches!(e, BuildEvent::Started { cell, engine, .. } if cell == "fixture-alive/opam/arm64" && engine == "tls"),
    );
    let stuck_ended = pos(&|e| matches!(e, BuildEvent::Finished(r) if r.cell == stuck));
    assert!(alive_started < stuck_ended, "{alive_started} {stuck_ended}");
    assert!(events
        .iter()
        .any(|e| matches!(e, BuildEvent::Engine(h) if h.engine == "frozen" && !h.reachable && h.last_error.is_some())));
}

#[tokio::test]
async fn hostile_output_is_sanitised_everywhere() {
    let data = tempfile::tempdir().unwrap();
    let distros = fixture_distro("fixture-hostile", &["hostile"]);
    let cfg = fixture_config(
        data.path(),
        "test-hostile",
        &unix_engine_toml("unix", &["amd64"]),
        &distros,
        "distros = [\"fixture-hostile\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let run = start(&cfg, &["fixture-hostile/opam/amd64"]);
    let (summary, events, store) = run.finish(300).await;
    assert_eq!(summary.succeeded, 1, "{summary:?}");
    let lines: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Log { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    let id = result(&events, "fixture-hostile/opam/amd64")
        .build_id
        .unwrap();
    let stored = std::fs::read(store.log_path(id.0)).unwrap();
    let stored = String::from_utf8(stored).expect("stored logs are UTF-8");
    for text in lines
        .iter()
        .map(|s| s.as_str())
        .chain(std::iter::once(stored.as_str()))
    {
        assert_only_sgr(text);
    }
    let red_line = stored
        .lines()
        .find(|l| l.contains("red") && !l.contains("printf"))
        .unwrap_or_default();
    assert!(
        red_line.contains("\x1b[1;31mred\x1b[0m"),
        "colour kept: {red_line:?}"
    );
    assert!(stored.contains('\u{FFFD}'), "invalid UTF-8 decoded lossily");
    assert!(
        stored.contains("line truncated"),
        "the 10 MB line is cut with a marker"
    );
    assert!(
        stored.contains("after-the-long-line"),
        "nothing after it is lost"
    );
    // The RUN line itself quotes the payloads as text; the output must not carry them.
    let output: Vec<&str> = stored.lines().filter(|l| !l.contains("printf")).collect();
    assert!(
        output
            .iter()
            .all(|l| !l.contains("pwned-title") && !l.contains("aGVsbG8=")),
        "OSC payloads dropped"
    );
    assert!(
        output
            .iter()
            .any(|l| l.contains("clip") && l.contains("end")),
        "the visible text around the escapes stays"
    );
    assert!(
        stored.len() < 1_000_000,
        "stored log is bounded: {}",
        stored.len()
    );
}

/// Every ESC in `text` starts an SGR sequence.
fn assert_only_sgr(text: &str) {
    for (i, _) in text.match_indices('\x1b') {
        let rest = &text[i + 1..];
        let ok = rest.starts_with('[') && {
            let body: String = rest[1..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';' || *c == ':')
                .collect();
            rest[1 + body.len()..].starts_with('m')
        };
        assert!(
            ok,
            "non-SGR escape: {:?}",
            &text[i..(i + 20).min(text.len())]
        );
    }
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\x1b')
                || ('\u{80}'..='\u{9f}').contains(&c)),
        "control characters left"
    );
}

#[tokio::test]
async fn unsafe_endpoints_are_refused() {
    // Plain TCP to a non-loopback address: refused before any packet is sent.
    let spec = EngineSpec {
        endpoint: Endpoint::parse("tcp://192.0.2.7:2375").unwrap(),
        ..unix_spec("far", &["amd64"])
    };
    let e = Engine::connect(&spec).await.unwrap_err();
    assert_eq!(e.kind, EngineErrorKind::Refused);
    assert!(
        e.to_string()
            .contains("plain TCP to tcp://192.0.2.7:2375 refused"),
        "{e}"
    );
    // A certificate that does not verify against the configured CA.
    let mut spec = tls_spec("wrong-ca", &["amd64"]);
    spec.tls = Some(TlsFiles {
        ca: env("IMAGEGRID_TEST_WRONG_CA").into(),
        ..TlsFiles::in_dir(std::path::Path::new(&env("IMAGEGRID_TEST_TLS_DIR")))
    });
    let e = Engine::connect(&spec).await.unwrap_err();
    assert_eq!(e.kind, EngineErrorKind::Tls, "{e}");
    assert!(
        e.to_string()
            .contains("engine wrong-ca: TLS handshake failed"),
        "{e}"
    );
    // Missing client key: said plainly, not an opaque EOF.
    let mut spec = tls_spec("no-key", &["amd64"]);
    spec.tls.as_mut().unwrap().key = "/nonexistent/key.pem".into();
    let e = Engine::connect(&spec).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("TLS client key file /nonexistent/key.pem does not exist"),
        "{e}"
    );
    // The right CA works.
    Engine::connect(&tls_spec("ok", &["amd64"])).await.unwrap();
}

#[tokio::test]
async fn ssh_engine_through_a_forwarded_socket() {
    let spec = EngineSpec {
        endpoint: Endpoint::parse(&format!(
            "ssh://root@127.0.0.1:{}",
            env("IMAGEGRID_TEST_SSH_PORT")
        ))
        .unwrap(),
        ssh_key: Some(env("IMAGEGRID_TEST_SSH_KEY").into()),
        ssh_known_hosts: Some(env("IMAGEGRID_TEST_SSH_KNOWN_HOSTS").into()),
        remote_socket: env("IMAGEGRID_TEST_SSH_REMOTE_SOCK"),
        ..unix_spec("over-ssh", &["amd64"])
    };
    let engine = Engine::connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(engine.info.api_version, "1.41");
    engine.ping().await.unwrap();
    // A wrong port fails with ssh's reason.
    let bad = EngineSpec {
        endpoint: Endpoint::parse("ssh://root@127.0.0.1:1").unwrap(),
        ..spec.clone()
    };
    let e = Engine::connect(&bad).await.unwrap_err();
    assert_eq!(e.kind, EngineErrorKind::Unreachable, "{e}");
    assert!(
        e.to_string()
            .contains("ssh to ssh://root@127.0.0.1:1 exited"),
        "{e}"
    );
}
