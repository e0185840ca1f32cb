//! A failure is one record (field case F5's kind): a build whose step exits 3 after printing
//! the reason on stderr ends with `exit_code`, `reason`, `step` and `command` as fields, in the
//! `finished` event and in the history, on the classic builder and on BuildKit (where the
//! step named is the builder's, not a step cancelled because of it).

mod common;

use common::*;
use imagegrid::store::BuildStatus;

#[tokio::test]
async fn a_failed_build_carries_its_failure_as_fields() {
    for buildkit in ["on", "off"] {
        let data = tempfile::tempdir().unwrap();
        let cfg = fixture_config(
            data.path(),
            &format!("test-failure-record-{buildkit}"),
            &unix_engine_toml("unix", &["amd64"]),
            &fixture_distro("fixture-failing", &["fail"]),
            "distros = [\"fixture-failing\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
        );
        let cfg = with_build_options(&cfg, &format!("buildkit = \"{buildkit}\""));
        let run = start(&cfg, &["fixture-failing/opam/amd64"]);
        let (_, events, store) = run.finish(300).await;
        let r = result(&events, "fixture-failing/opam/amd64");
        assert_eq!(r.status, BuildStatus::Failed, "{r:?}");
        let f = r.failure_record.clone().expect("a failure record");
        assert_eq!(f.exit_code, Some(3), "{buildkit}: {f:?}");
        assert_eq!(
            f.reason.as_deref(),
            Some("error: caml/mlvalues.h: No such file or directory"),
            "{buildkit}: {f:?}"
        );
        let step = f.step.clone().unwrap_or_default();
        assert!(
            step.contains("RUN echo \"compiling opam\""),
            "{buildkit}: {step}"
        );
        assert!(!step.contains("FROM"), "{buildkit}: {step}");
        assert!(
            f.command
                .as_deref()
                .is_some_and(|c| c.starts_with("echo \"compiling opam\"")),
            "{buildkit}: {f:?}"
        );
        // The same record in the history.
        let id = r.build_id.unwrap().0;
        let rec = store.try_call(move |s| s.build(id)).await.unwrap().unwrap();
        assert_eq!(rec.failure_record, Some(f), "{buildkit}");
    }
}
