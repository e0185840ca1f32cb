//! Size tracking end to end: a fixture cell whose recipe changes between real builds (a layer
//! grows by a known amount, a layer is added, then removed); deltas, layer diffs, report
//! formats, baselines, gates and the multi-stage saving are checked against those amounts.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn imagegrid(cfg: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write the config with the fixture cell's quirks for this build.
fn config(dir: &Path, quirks: &[&str]) -> String {
    // Tests run in parallel on one engine: each its own staging repository.
    let staging = format!(
        "test-sizes-{}",
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase()
            .replace(['.', '_'], "-")
    );
    fixture_config(
        dir,
        &staging,
        &unix_engine_toml("unix", &["amd64"]),
        &fixture_distro("fixture-size", quirks),
        "distros = [\"fixture-size\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let path = dir.join("config.toml");
    let t = std::fs::read_to_string(&path).unwrap()
        + "[sizes]\nmax_growth_bytes = 1000000\nmax_growth_percent = 50.0\n";
    std::fs::write(&path, t).unwrap();
    path.display().to_string()
}

fn build(cfg: &str, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let mut args = vec!["build", "fixture-size/opam/amd64", "--json"];
    args.extend_from_slice(extra);
    let o = imagegrid(cfg, &args);
    let events = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (o.status.code().unwrap(), events)
}

/// The Dockerfile is copied into the image (/Dockerfile.opam): its own growth counts too.
fn dockerfile_len(cfg: &str) -> i64 {
    imagegrid(cfg, &["dockerfile", "fixture-size/opam/amd64"])
        .stdout
        .len() as i64
}

fn sizes_json(cfg: &str) -> serde_json::Value {
    let o = imagegrid(cfg, &["sizes", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0].clone()
}

#[test]
fn deltas_layer_diffs_reports_and_gates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let cfg = config(d, &[]);
    let df1 = dockerfile_len(&cfg);
    assert_eq!(build(&cfg, &[]).0, 0);
    let first = sizes_json(&cfg);
    assert!(first["delta"].is_null(), "first build has no previous");
    let o = imagegrid(&cfg, &["baseline", "fixture-size/opam/amd64"]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    // A layer grows by exactly 3,000,000 bytes.
    let cfg = config(d, &["grow-3000000"]);
    let df2 = dockerfile_len(&cfg);
    let (code, events) = build(&cfg, &["--max-growth", "2MB"]);
    assert_eq!(code, 1, "the growth gate is breached");
    let gate = events
        .iter()
        .find(|e| e["event"] == "gate")
        .expect("gate event");
    assert!(
        gate["breaches"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("past --max-growth"),
        "{gate}"
    );
    let second = sizes_json(&cfg);
    assert_eq!(second["delta"]["bytes"], 3_000_000 + df2 - df1, "{second}");
    assert_eq!(second["vs_baseline"]["bytes"], 3_000_000 + df2 - df1);
    assert_eq!(second["regressed"], true);
    let o = imagegrid(&cfg, &["sizes", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "sizes --check fails on a regression"
    );
    assert!(
        text(&o.stderr).contains("fixture-size/opam/amd64")
            && text(&o.stderr).contains("REGRESSED"),
        "{}",
        text(&o.stderr)
    );
    let o = imagegrid(&cfg, &["sizes", "--diff", "fixture-size/opam/amd64"]);
    let diff = text(&o.stdout);
    let grown = diff
        .lines()
        .find(|l| l.trim_start().starts_with("grown"))
        .unwrap_or_else(|| panic!("{diff}"));
    assert!(
        grown.contains("+3.0MB") && grown.contains("COPY"),
        "{grown}"
    );

    // A layer is added (500,000 bytes), then removed.
    let cfg = config(d, &["grow-3000000", "extra-500000"]);
    let df3 = dockerfile_len(&cfg);
    assert_eq!(build(&cfg, &[]).0, 0);
    let third = sizes_json(&cfg);
    assert_eq!(third["delta"]["bytes"], 500_000 + df3 - df2);
    let diff = text(&imagegrid(&cfg, &["sizes", "--diff", "fixture-size/opam/amd64"]).stdout);
    assert!(
        diff.lines().any(|l| l.trim_start().starts_with("added")
            && l.contains("extra-layer")
            && l.contains("500.0kB")),
        "{diff}"
    );

    let cfg = config(d, &["grow-3000000"]);
    assert_eq!(
        build(&cfg, &["--max-size", "1MB"]).0,
        1,
        "the size gate is breached"
    );
    let fourth = sizes_json(&cfg);
    assert_eq!(fourth["delta"]["bytes"], -500_000 - (df3 - df2));
    let diff = text(&imagegrid(&cfg, &["sizes", "--diff", "fixture-size/opam/amd64"]).stdout);
    assert!(
        diff.lines()
            .any(|l| l.trim_start().starts_with("removed") && l.contains("extra-layer")),
        "{diff}"
    );

    // Still 3 MB over the pinned baseline; pinning the newest build clears the check.
    assert_eq!(
        imagegrid(&cfg, &["sizes", "--check"]).status.code(),
        Some(1)
    );
    assert!(imagegrid(&cfg, &["baseline", "fixture-size/opam/amd64"])
        .status
        .success());
    assert_eq!(
        imagegrid(&cfg, &["sizes", "--check"]).status.code(),
        Some(0)
    );

    // Report formats.
    let md = text(&imagegrid(&cfg, &["sizes", "--format", "markdown"]).stdout);
    assert!(
        md.starts_with("| cell | build | size |") && md.contains("| `fixture-size/opam/amd64` |"),
        "{md}"
    );
    let csv = text(&imagegrid(&cfg, &["sizes", "--format", "csv"]).stdout);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("cell,build,started_at,size"));
    assert!(
        lines
            .next()
            .unwrap()
            .contains(&format!(",{},", -500_000 - (df3 - df2))),
        "{csv}"
    );
    let svg = d.join("sizes.svg");
    let o = imagegrid(&cfg, &["sizes", "--plot", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(
        svg.contains("<svg")
            && svg.contains("fixture-size/opam/amd64")
            && svg.matches("<circle").count() >= 4,
        "four builds plotted"
    );
    // --since in the future selects nothing.
    let o = imagegrid(
        &cfg,
        &["sizes", "--since", "2999-01-01", "--format", "json"],
    );
    assert_eq!(text(&o.stdout).trim(), "[]");
}

#[test]
fn multi_stage_saving_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &["toolchain-4000000"]);
    let o = imagegrid(
        &cfg,
        &["sizes", "--compare-single-stage", "fixture-size/opam/amd64"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let size = |label: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("{out}"));
        let v = line.split_whitespace().nth(1).unwrap();
        imagegrid::sizes::parse_size(v).unwrap() as f64
    };
    let (multi, single) = (size("multi-stage"), size("single-stage"));
    // The 4 MB toolchain blob stays behind in the builder of the multi-stage image only.
    assert!(single - multi >= 3_900_000.0, "{out}");
    assert!(out.contains("saving"), "{out}");
}

#[test]
fn wasted_bytes_are_found_in_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &["waste-1234567"]);
    assert_eq!(build(&cfg, &[]).0, 0);
    let o = imagegrid(
        &cfg,
        &[
            "sizes",
            "--wasted",
            "fixture-size/opam/amd64",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The file a later layer deleted: exactly its size, nothing else.
    assert_eq!(v["waste"]["wasted"], 1_234_567, "{v}");
    assert_eq!(v["waste"]["files"][0]["path"], "waste-junk");
}

/// Field case F3 on both builders: only the Dockerfile the recipe copies into the image
/// changes between two builds. The diff must show exactly that COPY as grown, by exactly the
/// bytes added, and every other layer the same: no removed/added pairs for the classic
/// builder's `COPY file:<hash> in ...` or for imagegrid's own per-build LABEL steps, and no
/// "changed" verdict for steps that were merely rebuilt (new time stamps, same files).
#[test]
fn a_changed_copy_is_grown_with_both_builders() {
    for builder in ["off", "on"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let with_builder = |cfg: &str| {
            let t = std::fs::read_to_string(cfg)
                .unwrap()
                .replace("[build]\n", &format!("[build]\nbuildkit = \"{builder}\"\n"));
            std::fs::write(cfg, t).unwrap();
        };
        let cfg = config(d, &[]);
        with_builder(&cfg);
        let len1 = dockerfile_len(&cfg);
        let (code, events) = build(&cfg, &[]);
        assert_eq!(code, 0, "{events:?}");
        let cfg = config(
            d,
            &["note-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
        );
        with_builder(&cfg);
        let len2 = dockerfile_len(&cfg);
        assert!(len2 > len1);
        let (code, events) = build(&cfg, &[]);
        assert_eq!(code, 0, "{events:?}");
        let o = imagegrid(&cfg, &["sizes", "--diff", "fixture-size/opam/amd64"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let diff = text(&o.stdout);
        let rows: Vec<&str> = diff.lines().skip(1).collect();
        let grown: Vec<&&str> = rows
            .iter()
            .filter(|l| l.trim_start().starts_with("grown"))
            .collect();
        assert_eq!(grown.len(), 1, "buildkit={builder}:\n{diff}");
        assert!(grown[0].ends_with("/Dockerfile.opam"), "{diff}");
        assert!(
            grown[0].contains(&format!("+{}B", len2 - len1)),
            "grown by exactly the new line: {diff}"
        );
        assert!(
            rows.iter()
                .filter(|l| !l.trim_start().starts_with("grown"))
                .all(|l| l.trim_start().starts_with("same")),
            "buildkit={builder}: every other layer is the same:\n{diff}\n{}",
            text(&o.stderr)
        );
    }
}
