//! The pipeline plan as the matrix source, through the binary and offline (no engine, no
//! network): `--plan` and `[matrix] plan` over tests/fixtures/plan/small.dump (two distros,
//! two arches, plain, variant and beta switches, the staging FROM, heredocs, `COPY --link`,
//! `--from=0`, an archive job with `RUN --mount=type=bind`, pushes with aliases, a Windows
//! group): the cells, each Dockerfile byte for byte, the tags, filters and selectors, the
//! archive and Windows rules, and each refusal with its exact message and exit status 2.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

const FIXTURE: &str = "tests/fixtures/plan/small.dump";

/// The binary with a private HOME (history and default config) and no config variable.
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

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

/// The fixture's jobs as (job line, Dockerfile text), read the way the dump is written: the
/// TAB-indented lines below a job line without their TAB, and empty lines, up to the next
/// line of another kind.
fn fixture_jobs() -> Vec<(String, String)> {
    let dump = std::fs::read_to_string(FIXTURE).unwrap();
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    let mut open = false;
    for line in dump.lines() {
        if let Some(body) = line.strip_prefix('\t') {
            out.last_mut().unwrap().1.push(body);
        } else if line.is_empty() {
            if open {
                out.last_mut().unwrap().1.push("");
            }
        } else if line.contains('/') && !line.contains("->") || line == "archive" {
            out.push((line.to_string(), Vec::new()));
            open = true;
        } else {
            open = false;
        }
    }
    out.into_iter().map(|(l, t)| (l, t.join("\n"))).collect()
}

fn cells_json(home: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["--plan", FIXTURE, "matrix", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str::<serde_json::Value>(&ok(&imagegrid(home, &all)))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn ids(cells: &[serde_json::Value]) -> Vec<String> {
    cells
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

const ALL_CELLS: [&str; 14] = [
    "debian-13/opam/arm64",
    "debian-13/opam/amd64",
    "debian-13/5.4/arm64",
    "debian-13/5.4/amd64",
    "debian-13/4.14-flambda/amd64",
    "debian-13/5.5-beta1/arm64",
    "debian-13/5.5-beta1/amd64",
    "debian-13/archive/amd64",
    "alpine-3.23/opam/arm64",
    "alpine-3.23/opam/amd64",
    "alpine-3.23/5.4/arm64",
    "alpine-3.23/5.4/amd64",
    "windows-server-mingw-ltsc2025/opam/amd64",
    "windows-server-mingw-ltsc2025/5.4/amd64",
];

#[test]
fn matrix_lists_the_plans_cells() {
    let home = tempfile::tempdir().unwrap();
    let cells = cells_json(home.path(), &[]);
    assert_eq!(ids(&cells), ALL_CELLS);
    let by_id = |id: &str| cells.iter().find(|c| c["id"] == id).unwrap().clone();
    let c = by_id("debian-13/4.14-flambda/amd64");
    assert_eq!(c["level"], "compiler");
    assert_eq!(c["version"], "4.14-flambda");
    assert_eq!(c["depends_on"], "debian-13/opam/amd64");
    assert_eq!(c["os"], "linux");
    let a = by_id("debian-13/archive/amd64");
    assert_eq!(a["level"], "archive");
    assert_eq!(a["depends_on"], "debian-13/opam/amd64");
    let b = by_id("debian-13/opam/arm64");
    assert_eq!(b["base_image"], "imagegrid-fixture/busybox:latest");
    assert_eq!(b["depends_on"], serde_json::Value::Null);
    let w = by_id("windows-server-mingw-ltsc2025/5.4/amd64");
    assert_eq!(w["os"], "windows");
    assert_eq!(w["platform"], "windows/amd64");
    assert_eq!(w["depends_on"], "windows-server-mingw-ltsc2025/opam/amd64");

    // --plan after the subcommand too, and selectors reach variants and betas.
    let o = imagegrid(
        home.path(),
        &[
            "matrix",
            "--json",
            "debian-13/4.14-*/amd64",
            "--plan",
            FIXTURE,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(ids(v.as_array().unwrap()), ["debian-13/4.14-flambda/amd64"]);
    assert_eq!(
        ids(&cells_json(home.path(), &["*/5.5-beta1/*", "*/archive"])),
        [
            "debian-13/5.5-beta1/arm64",
            "debian-13/5.5-beta1/amd64",
            "debian-13/archive/amd64"
        ]
    );
    // The text listing and the grid show every cell, Windows included.
    let listing = ok(&imagegrid(home.path(), &["--plan", FIXTURE, "matrix"]));
    assert!(listing.ends_with("14 cells\n"), "{listing}");
    let grid = ok(&imagegrid(home.path(), &["--plan", FIXTURE]));
    assert!(grid.contains("windows-server-mingw-ltsc2025"), "{grid}");
    assert!(grid.contains("archive"), "{grid}");
}

#[test]
fn dockerfile_prints_each_jobs_text_byte_for_byte() {
    let home = tempfile::tempdir().unwrap();
    let jobs = fixture_jobs();
    assert_eq!(jobs.len(), ALL_CELLS.len());
    for ((line, want), id) in jobs.iter().zip(ALL_CELLS) {
        let o = imagegrid(home.path(), &["--plan", FIXTURE, "dockerfile", id]);
        assert_eq!(ok(&o), *want, "{id} (job {line})");
    }
    // A compiler's FROM keeps the plan's staging-tag form.
    let o = imagegrid(
        home.path(),
        &["dockerfile", "debian-13/5.5-beta1/arm64", "--plan", FIXTURE],
    );
    assert!(ok(&o).contains("\nFROM ocurrent/opam-staging:debian-13-opam-arm64\n"));
}

#[test]
fn tags_are_the_plans_pushes() {
    let home = tempfile::tempdir().unwrap();
    let dump = std::fs::read_to_string(FIXTURE).unwrap();
    let want: BTreeSet<String> = dump
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(_, target)| target.to_string())
        .collect();
    assert_eq!(want.len(), 19);
    let out = ok(&imagegrid(
        home.path(),
        &["--plan", FIXTURE, "tags", "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut got = BTreeSet::new();
    let mut pushed_to = BTreeSet::new();
    for t in v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["aliases"].as_array().unwrap())
    {
        got.insert(t["plan_reference"].as_str().unwrap().to_string());
        pushed_to.insert(t["reference"].as_str().unwrap().to_string());
    }
    assert_eq!(
        got, want,
        "every public tag of the plan, the archive's included"
    );
    // A publish goes to the configured repositories (default imagegrid/opam), not ocaml/opam.
    assert!(
        pushed_to.iter().all(|r| r.starts_with("imagegrid/opam:")),
        "{pushed_to:?}"
    );
    assert!(pushed_to.contains("imagegrid/opam:archive"));
    let archive = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == "archive")
        .unwrap();
    assert_eq!(archive["arches"][0]["cell"], "debian-13/archive/amd64");

    let listing = ok(&imagegrid(
        home.path(),
        &["--plan", FIXTURE, "tags", "debian-13/5.4/amd64"],
    ));
    assert!(
        listing.contains("ocaml/opam:debian-13-ocaml-5.4  (NOT PUBLISHABLE"),
        "{listing}"
    );
    assert!(
        listing.contains("  alias ocaml/opam:latest = debian-13-ocaml-5.4"),
        "{listing}"
    );
    assert!(
        listing.contains("a publish pushes them to imagegrid/opam"),
        "{listing}"
    );
}

#[test]
fn config_plan_is_relative_to_the_config_and_its_lists_filter_it() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(FIXTURE, dir.join("builds.expected")).unwrap();
    let config = dir.join("imagegrid.toml");
    std::fs::write(
        &config,
        "[matrix]\nplan = \"builds.expected\"\nversions = [\"5.4*\", \"4.14-flambda\"]\narches = [\"amd64\"]\nexclude = [\"alpine-3.23\"]\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let o = imagegrid(home.path(), &["--config", cfg, "matrix", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(
        ids(v.as_array().unwrap()),
        [
            "debian-13/opam/amd64",
            "debian-13/5.4/amd64",
            "debian-13/4.14-flambda/amd64",
            "debian-13/archive/amd64",
            "windows-server-mingw-ltsc2025/opam/amd64",
            "windows-server-mingw-ltsc2025/5.4/amd64",
        ]
    );
    std::fs::write(
        &config,
        "[matrix]\nplan = \"builds.expected\"\nversions = [\"5.6\"]\n",
    )
    .unwrap();
    let o = imagegrid(home.path(), &["--config", cfg, "matrix"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        format!("imagegrid: {cfg}:3:13: matrix.versions: unknown OCaml version `5.6` (known: 4.14-flambda, 5.4, 5.5-beta1)\n")
    );
}

#[test]
fn archive_and_windows_are_not_part_of_all() {
    let home = tempfile::tempdir().unwrap();
    // An engine that cannot answer: nothing here may reach a real one.
    let config = home.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[engine]]\nname = \"none\"\nendpoint = \"unix://{}\"\n[build]\nreconnect_wait_secs = 0\n",
            home.path().join("no.sock").display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    // Naming a Windows cell says why nothing is queued.
    let o = imagegrid(
        home.path(),
        &[
            "--config",
            cfg,
            "--plan",
            FIXTURE,
            "build",
            "windows-server-mingw-ltsc2025/5.4/amd64",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        text(&o.stderr),
        "imagegrid: windows-server-mingw-ltsc2025/5.4/amd64 is a Windows cell: it builds only on an engine that reports OSType windows, and imagegrid routes builds to Linux engines only; nothing is queued\n"
    );
    // `build '*'` plans every Linux cell but the archive, and does not fail on Windows.
    let o = imagegrid(
        home.path(),
        &["--config", cfg, "--plan", FIXTURE, "build", "*", "--json"],
    );
    let out = text(&o.stdout);
    let queued: BTreeSet<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["cell"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = ALL_CELLS
        .iter()
        .filter(|c| !c.contains("archive") && !c.starts_with("windows"))
        .map(|c| c.to_string())
        .collect();
    assert_eq!(queued, want, "{out}\n{}", text(&o.stderr));
    assert!(
        !text(&o.stderr).contains("Windows cell"),
        "{}",
        text(&o.stderr)
    );
}

/// Every command that reads the matrix refuses a bad plan with the parser's message and exit 2.
#[test]
fn bad_plans_are_refused_with_file_line_message() {
    let home = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = home.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let not_a_dump = write("config.toml", "[matrix]\ndistros = []\n");
    let no_text = write(
        "empty-job.dump",
        "debian-13\ndebian-13/amd64\n5.4.1/amd64\n\tFROM x\n",
    );
    let no_base = write(
        "no-base.dump",
        "debian-13\ndebian-13/amd64\n\tFROM debian:13\n5.4.1/arm64\n\tFROM ocurrent/opam-staging:debian-13-opam-arm64\n",
    );
    let bad_arch = write("arch.dump", "debian-13\ndebian-13/mips\n\tFROM debian:13\n");
    let missing = home
        .path()
        .join("missing.dump")
        .to_str()
        .unwrap()
        .to_string();
    let cases = [
        (not_a_dump.clone(), format!("{not_a_dump}:1: not a dump (base-images --dump output): the first line should be a header such as `debian-13`, found `[matrix]`")),
        (no_text.clone(), format!("{no_text}:2: job `debian-13/amd64` has no Dockerfile lines (TAB-indented, right below it)")),
        (no_base.clone(), format!("{no_base}:5: compiler job `5.4.1/arm64` starts FROM ocurrent/opam-staging:debian-13-opam-arm64, but the file has no base job `debian-13/arm64`")),
        (bad_arch.clone(), format!("{bad_arch}:2: unknown arch `mips` in job `debian-13/mips`: expected one of amd64, arm64, ppc64le, s390x, riscv64, i386, arm32v7")),
        (missing.clone(), format!("cannot read plan {missing}: No such file or directory (os error 2)")),
    ];
    let commands: [&[&str]; 8] = [
        &["matrix"],
        &["dockerfile", "debian-13/opam/amd64"],
        &["tags", "--json"],
        &["build", "*"],
        &["publish", "*", "--dry-run"],
        &["history"],
        &["sizes"],
        &[],
    ];
    for (plan, message) in &cases {
        for cmd in commands {
            let mut args = vec!["--plan", plan.as_str()];
            args.extend_from_slice(cmd);
            let o = imagegrid(home.path(), &args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
            assert_eq!(
                text(&o.stderr),
                format!("imagegrid: {message}\n"),
                "{args:?}"
            );
            assert!(o.stdout.is_empty(), "{args:?}");
        }
    }
}
