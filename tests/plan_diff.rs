//! `imagegrid plan diff` through the binary, offline, over two hand-written plans
//! (tests/fixtures/plan/diff-old.dump and diff-new.dump): between them a compiler cell is added
//! (debian-13/5.5/amd64) and one removed (debian-13/5.3/arm64), one base line is added
//! (debian-13/opam/amd64, so the archive built FROM it is rebuilt too), one line is added to
//! four compiler cells of two distros, two switches and two arches (one edit, shown once), a
//! tag is added, one removed and the `debian` alias moves from 5.4 to 5.5. The JSON is checked
//! field by field; the exit statuses are 0 equal, 1 different, 2 not a plan.

use std::path::Path;
use std::process::{Command, Output};

const OLD: &str = "tests/fixtures/plan/diff-old.dump";
const NEW: &str = "tests/fixtures/plan/diff-new.dump";

fn imagegrid(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args(args)
        .env_remove("IMAGEGRID_CONFIG")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

const EDITED: [&str; 4] = [
    "debian-13/5.4/arm64",
    "debian-13/5.4/amd64",
    "debian-13/5.3/amd64",
    "alpine-3.23/5.4/amd64",
];

#[test]
fn json_names_each_change_once() {
    let home = tempfile::tempdir().unwrap();
    let o = imagegrid(home.path(), &["plan", "diff", OLD, NEW, "--json"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "added",
            "base_changed",
            "changed",
            "groups",
            "removed",
            "tags_added",
            "tags_removed",
            "tags_retargeted"
        ]
    );
    assert_eq!(strings(&v["added"]), ["debian-13/5.5/amd64"]);
    assert_eq!(strings(&v["removed"]), ["debian-13/5.3/arm64"]);
    let changed = v["changed"].as_array().unwrap();
    let cells: Vec<&str> = changed
        .iter()
        .map(|c| c["cell"].as_str().unwrap())
        .collect();
    let mut want = vec!["debian-13/opam/amd64"];
    want.extend(EDITED);
    assert_eq!(cells, want);
    for c in changed {
        assert_eq!(c.as_object().unwrap().len(), 2, "cell and diff: {c}");
        let diff = c["diff"].as_str().unwrap();
        assert!(diff.starts_with("@@ -"), "{diff}");
        let added: Vec<&str> = diff.lines().filter(|l| l.starts_with('+')).collect();
        let removed = diff.lines().filter(|l| l.starts_with('-')).count();
        let line = if c["cell"] == "debian-13/opam/amd64" {
            "+RUN apt-get update"
        } else {
            "+ENV OPAMPRECISETRACKING=\"1\""
        };
        assert_eq!((added, removed), (vec![line], 0), "{}", c["cell"]);
    }
    // The arm64 cell's diff shows its own FROM as context.
    assert!(changed[1]["diff"]
        .as_str()
        .unwrap()
        .contains(" FROM ocurrent/opam-staging:debian-13-opam-arm64\n"));
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(strings(&groups[0]["cells"]), ["debian-13/opam/amd64"]);
    assert_eq!(groups[0]["diff"], changed[0]["diff"]);
    assert_eq!(strings(&groups[1]["cells"]), EDITED);
    assert_eq!(groups[1]["diff"], changed[1]["diff"]);
    assert_eq!(strings(&v["base_changed"]), ["debian-13/archive/amd64"]);
    assert_eq!(
        strings(&v["tags_added"]),
        ["ocaml/opam:debian-13-ocaml-5.5"]
    );
    assert_eq!(
        strings(&v["tags_removed"]),
        ["ocaml/opam:debian-13-ocaml-5.3"]
    );
    let moved = v["tags_retargeted"].as_array().unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0]["tag"], "ocaml/opam:debian");
    assert_eq!(
        strings(&moved[0]["from"]),
        [
            "ocurrent/opam-staging:debian-13-ocaml-5.4-amd64",
            "ocurrent/opam-staging:debian-13-ocaml-5.4-arm64"
        ]
    );
    assert_eq!(
        strings(&moved[0]["to"]),
        ["ocurrent/opam-staging:debian-13-ocaml-5.5-amd64"]
    );
}

#[test]
fn text_shows_a_repeated_edit_once() {
    let home = tempfile::tempdir().unwrap();
    let o = imagegrid(home.path(), &["plan", "diff", OLD, NEW]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(
        out.matches("+ENV OPAMPRECISETRACKING=\"1\"").count(),
        1,
        "{out}"
    );
    assert!(
        out.contains(&format!("edit 2 of 2, in 4 cells: {}\n", EDITED.join(", "))),
        "{out}"
    );
    assert!(out.contains(
        "  ocaml/opam:debian: ocurrent/opam-staging:debian-13-ocaml-5.4-amd64, ocurrent/opam-staging:debian-13-ocaml-5.4-arm64 -> ocurrent/opam-staging:debian-13-ocaml-5.5-amd64\n"
    ), "{out}");
}

#[test]
fn equal_plans_exit_0_and_bad_input_exits_2_with_file_line() {
    let home = tempfile::tempdir().unwrap();
    let o = imagegrid(home.path(), &["plan", "diff", OLD, OLD, "--json"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["added", "removed", "changed", "groups", "tags_added"] {
        assert_eq!(v[k], serde_json::json!([]), "{k}");
    }
    // Either side not a plan: file:line: message, exit 2, nothing on stdout.
    let bad = home.path().join("bad.dump");
    std::fs::write(&bad, "debian-13\ndebian-13/amd64\n\tFROM x\nnot a line!\n").unwrap();
    let bad = bad.display().to_string();
    for args in [[OLD, bad.as_str()], [bad.as_str(), NEW]] {
        let o = imagegrid(home.path(), &["plan", "diff", args[0], args[1]]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            text(&o.stderr),
            format!("imagegrid: {bad}:4: `not a line!` is not a dump line: expected a header (`debian-13`), a job `NAME/ARCH`, a push `SOURCES -> TARGET` or a TAB-indented Dockerfile line\n")
        );
        assert!(o.stdout.is_empty());
    }
    let o = imagegrid(home.path(), &["plan", "diff", "Cargo.toml", NEW]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).starts_with("imagegrid: Cargo.toml:1: not a dump"),
        "{}",
        text(&o.stderr)
    );
}
