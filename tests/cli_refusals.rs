//! Arguments that do not fit together are refused before any work, with the reason and exit
//! status 2 (issue 18, kind 8): one sizes report at a time, and a one-cell report takes no
//! selection, period, plot or check; `--build` ids only go with `--diff`.

use std::process::Command;

fn refused(args: &[&str], why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args([
            "--config",
            &dir.path().join("none.toml").display().to_string(),
        ])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?} was not refused: {err}");
    assert!(err.contains(why), "{args:?}: {err}");
}

#[test]
fn sizes_reports_that_do_not_fit_together_are_refused() {
    let cannot = "cannot be used with";
    refused(
        &[
            "sizes",
            "--diff",
            "a/opam/amd64",
            "--wasted",
            "a/opam/amd64",
        ],
        cannot,
    );
    refused(&["sizes", "--wasted", "a/opam/amd64", "--check"], cannot);
    refused(
        &["sizes", "--diff", "a/opam/amd64", "--plot", "x.svg"],
        cannot,
    );
    refused(
        &["sizes", "--diff", "a/opam/amd64", "debian-13/*/*"],
        cannot,
    );
    refused(
        &[
            "sizes",
            "--compare-single-stage",
            "a/opam/amd64",
            "--since",
            "2026-01-01",
        ],
        cannot,
    );
    refused(
        &["sizes", "--wasted", "a/opam/amd64", "--build", "3"],
        cannot,
    );
    refused(&["sizes", "--build", "3"], "--diff");
    // The diff and the single-stage comparison print one format only: --format is refused.
    refused(
        &["sizes", "--diff", "a/opam/amd64", "--format", "csv"],
        cannot,
    );
    refused(
        &[
            "sizes",
            "--compare-single-stage",
            "a/opam/amd64",
            "--format",
            "json",
        ],
        cannot,
    );
}

#[test]
fn why_without_a_selector_says_what_to_name() {
    // Like `build`: the way to every cell and to the stale ones, not a bare usage error.
    refused(&["why"], "`imagegrid why '*'` explains every cell");
    refused(&["why", "--json"], "--stale");
}
