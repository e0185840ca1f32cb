//! Failure causes end to end (issue 17): real failing builds on the test engines get their
//! cause from the rules, on the way in: a tool the image lacks (`make: not found`), no
//! manifest for the platform in a manifest list of the loopback registry, an exec format
//! error (a binary of an arch no emulator is registered for), a step killed with SIGKILL
//! (exit 137, scripted: imagegrid sets no per-build memory limit the engine could enforce),
//! a gcc 15 error (scripted: the test engines have no gcc); a user rule overrides a built-in
//! one; the cause is in the events, the history, `history --json`, the run summary and
//! `imagegrid failures`; `rules test` shows what a new rule matches, classifies and steals;
//! a bad rule is refused with file:line:column; and in the TUI (tmux) a broken column is
//! one cause, selected and built again in two keys.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use imagegrid::store::BuildStatus;

/// Test templates: a base image whose quirks fail the build in the ways the field sees; a
/// compiler image that fails every 4.14 cell as GCC 15 fails old OCaml.
fn templates(dir: &Path) -> std::path::PathBuf {
    let t = dir.join("templates");
    std::fs::create_dir_all(t.join("apk")).unwrap();
    std::fs::write(
        t.join("apk/base.Dockerfile.j2"),
        r#"# {{ cell.id }}
FROM {{ distro.base }}:{{ arch.name }}
{% if "missing-make" in distro.quirks %}
RUN echo "building opam" && make -C /src
{% endif %}
{% if "gcc15" in distro.quirks %}
RUN echo "runtime/caml/misc.h:42:14: error: 'bool' cannot be defined via 'typedef'" >&2 && exit 2
{% endif %}
{% if "killed" in distro.quirks %}
RUN echo "make -j64 world" && sh -c 'kill -9 $$' && echo "not reached"
{% endif %}
{% if "alien" in distro.quirks %}
RUN printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\002\000\123\000' > /alien && chmod +x /alien
RUN ["/alien"]
{% endif %}
{% if "frob" in distro.quirks %}
RUN echo "frobnicator exploded" && exit 4
{% endif %}
RUN uname -m > /arch
"#,
    )
    .unwrap();
    std::fs::write(
        t.join("apk/compiler.Dockerfile.j2"),
        r#"# {{ cell.id }}
FROM {{ from }}
{% if "/4.14/" in cell.id %}
RUN echo "compiling ocaml {{ ocaml.full }}" && echo "io.c:317:3: error: too many arguments to function 'caml_channel_mutex_lock'" >&2 && exit 2
{% endif %}
RUN echo "ocaml {{ ocaml.full }}" > /ocaml-version
"#,
    )
    .unwrap();
    t
}

/// A `[[distro]]` table with this base image and arches.
fn distro(name: &str, base: &str, arches: &[&str], quirks: &[&str]) -> String {
    format!(
        "[[distro]]\nname = \"{name}\"\nbase = \"{base}\"\nfamily = \"apk\"\ntier = 3\narches = {arches:?}\nquirks = {quirks:?}\n"
    )
}

/// A config file in `dir`: engine a (amd64, arm64 under emulation), these distros, the
/// test templates, and `extra` (rules) at the end.
fn config(dir: &Path, staging: &str, distros: &[String], matrix: &str, extra: &str) -> String {
    let text = format!(
        "{}\n[matrix]\n{matrix}\n{}\n[build]\nnetwork = \"none\"\nbuildkit = \"off\"\nidle_timeout_secs = 120\nretries = 1\n\
         [tags]\nstaging = \"{staging}\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n{extra}",
        unix_engine_toml("a", &["amd64", "arm64"]),
        distros.join("\n"),
        dir.join("data").display(),
        templates(dir).display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `docker` on engine a with a private client config (manifest lists are kept there).
fn docker(dir: &Path, args: &[&str]) {
    let o = Command::new("docker")
        .arg("-H")
        .arg(env("IMAGEGRID_TEST_UNIX_HOST"))
        .args(args)
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("DOCKER_HOST")
        .output()
        .expect("the docker CLI (installed by scripts/test-env.sh)");
    assert!(
        o.status.success(),
        "docker {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A manifest list in the loopback registry with an amd64 image only, named for arm64 (as
/// `debian:12` kept its name and lost its s390x entry); returns the repository.
fn amd64_only_list(dir: &Path) -> String {
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    let n = rand_suffix();
    let single = format!("{reg}/causes-{n}/busybox:amd64-only");
    let list = format!("{reg}/causes-{n}/list");
    let fixture = format!("{}:amd64", env("IMAGEGRID_TEST_FIXTURE_IMAGE"));
    docker(dir, &["tag", &fixture, &single]);
    docker(dir, &["push", &single]);
    docker(dir, &["rmi", &single]);
    let tagged = format!("{list}:arm64");
    docker(dir, &["manifest", "create", "--insecure", &tagged, &single]);
    docker(dir, &["manifest", "push", "--insecure", &tagged]);
    list
}

fn imagegrid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .args(args)
        .env_remove("IMAGEGRID_CONFIG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A user rule at the priority of the built-in gcc-15 (55): it goes first.
const USER_RULE: &str = "[[failure_rule]]\nname = \"old-ocaml-gcc\"\npattern = \"'bool' cannot be defined via 'typedef'\"\nhint = \"patch OCaml for C23\"\npriority = 55\n";

#[tokio::test]
async fn real_failures_get_their_cause_and_rules_test_shows_what_a_rule_changes() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = env("IMAGEGRID_TEST_FIXTURE_IMAGE");
    let list = amd64_only_list(dir.path());
    let distros = vec![
        distro("causes-make", &fixture, &["amd64"], &["missing-make"]),
        distro("causes-gcc", &fixture, &["amd64"], &["gcc15"]),
        distro("causes-kill", &fixture, &["amd64"], &["killed"]),
        distro("causes-alien", &fixture, &["amd64"], &["alien"]),
        distro("causes-frob", &fixture, &["amd64"], &["frob"]),
        distro("causes-nm", &list, &["arm64"], &[]),
    ];
    let cfg = config(
        dir.path(),
        "test-causes",
        &distros,
        "distros = [\"causes-make\", \"causes-gcc\", \"causes-kill\", \"causes-alien\", \"causes-frob\", \"causes-nm\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
        USER_RULE,
    );
    let loaded = imagegrid::config::load_file(Path::new(&cfg)).unwrap();
    let cells = [
        ("causes-make/opam/amd64", "missing-tool"),
        ("causes-gcc/opam/amd64", "old-ocaml-gcc"),
        ("causes-kill/opam/amd64", "oom-killed"),
        ("causes-alien/opam/amd64", "exec-format"),
        ("causes-frob/opam/amd64", "unclassified"),
        ("causes-nm/opam/arm64", "no-manifest"),
    ];
    let run = start(&loaded, &cells.map(|(c, _)| c));
    let (summary, events, store) = run.finish(600).await;
    for (cell, cause) in cells {
        let r = result(&events, cell);
        assert_eq!(r.status, BuildStatus::Failed, "{cell}: {r:?}");
        let c = r
            .cause
            .clone()
            .unwrap_or_else(|| panic!("{cell}: no cause: {r:?}"));
        assert_eq!(c.name, cause, "{cell}: {r:?}");
        // The same cause in the history.
        let id = r.build_id.unwrap().0;
        let rec = store.try_call(move |s| s.build(id)).await.unwrap().unwrap();
        assert_eq!(rec.cause, Some(c), "{cell}");
    }
    let gcc = result(&events, "causes-gcc/opam/amd64")
        .cause
        .clone()
        .unwrap();
    assert_eq!(
        gcc.hint, "patch OCaml for C23",
        "the user rule, not the built-in gcc-15"
    );
    // The run's summary groups its failures by cause.
    assert_eq!(summary.failed, 6, "{summary:?}");
    assert_eq!(summary.causes.len(), 6, "{summary:?}");
    assert!(summary
        .causes
        .iter()
        .any(|g| g.cause == "exec-format" && g.cells == ["causes-alien/opam/amd64"]));

    // `history --json` and `failures` carry it.
    let o = imagegrid(&["--config", &cfg, "history", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let make = h
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cell"] == "causes-make/opam/amd64")
        .unwrap();
    assert_eq!(make["cause"]["name"], "missing-tool", "{make}");
    assert!(
        make["cause"]["hint"].as_str().unwrap().contains("missing"),
        "{make}"
    );
    let o = imagegrid(&["--config", &cfg, "failures", "causes-*/*/*"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.starts_with("6 failed cells, 6 causes\n"), "{out}");
    assert!(
        out.contains("\nno-manifest  1 cell: upstream publishes no image"),
        "{out}"
    );
    assert!(out.contains("  causes-nm/opam/arm64"), "{out}");
    assert!(
        out.trim_end()
            .lines()
            .rev()
            .nth(1)
            .unwrap()
            .starts_with("unclassified  1 cell"),
        "unclassified comes last:\n{out}"
    );

    // A rule to try: one newly classifies the unclassified build, one takes the make build
    // from missing-tool, one (at the user rule's priority) takes nothing.
    let rules = dir.path().join("try.toml");
    std::fs::write(
        &rules,
        "[[failure_rule]]\nname = \"frob\"\npattern = \"frobnicator exploded\"\nhint = \"replace the frobnicator\"\n\n\
         [[failure_rule]]\nname = \"no-make\"\npattern = \"make: not found\"\n\n\
         [[failure_rule]]\nname = \"bool\"\npattern = \"'bool'\"\npriority = 1\n",
    )
    .unwrap();
    let o = imagegrid(&[
        "--config",
        &cfg,
        "rules",
        "test",
        "--rules",
        &rules.display().to_string(),
        "causes-*/*/*",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    eprintln!("rules test:\n{out}");
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let tail = |r: Vec<String>| r[r.len() - 4..].to_vec();
    // MATCHES CLASSIFIES NEW STOLEN
    assert_eq!(tail(row("frob")), ["1", "1", "1", "0"], "{out}");
    assert_eq!(tail(row("no-make")), ["1", "1", "0", "1"], "{out}");
    assert_eq!(tail(row("bool")), ["1", "0", "0", "0"], "{out}");
    assert_eq!(tail(row("old-ocaml-gcc")), ["1", "1", "0", "0"], "{out}");
    let make_id = result(&events, "causes-make/opam/amd64")
        .build_id
        .unwrap()
        .0;
    assert!(
        out.contains(&format!(
            "  no-make: stolen from missing-tool: causes-make/opam/amd64 (build {make_id})"
        )),
        "{out}"
    );
    assert!(out.contains("  frob: new: causes-frob/opam/amd64"), "{out}");
    assert!(!out.contains("unclassified:"), "{out}");
    // Without a file: the config's rules against the causes stored, which agree.
    let o = imagegrid(&["--config", &cfg, "rules", "test", "--json", "causes-*/*/*"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["builds"], 6, "{j}");
    assert_eq!(j["before"], "stored", "{j}");
    for r in j["rules"].as_array().unwrap() {
        assert_eq!(r["new"].as_array().unwrap().len(), 0, "{r}");
        assert_eq!(r["stolen"].as_array().unwrap().len(), 0, "{r}");
    }
    assert_eq!(j["unclassified"].as_array().unwrap().len(), 1, "{j}");
}

#[test]
fn a_bad_rule_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[matrix]\ndistros = [\"debian-13\"]\n\n[[failure_rule]]\nname = \"gcc\"\npattern = \"error: (unclosed\"\n",
    )
    .unwrap();
    let p = path.display().to_string();
    for args in [
        vec!["--config", &p, "matrix"],
        vec!["--config", &p, "failures"],
    ] {
        let o = imagegrid(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert!(
            err.starts_with(&format!(
                "imagegrid: {p}:6:11: failure_rule[0].pattern: pattern does not compile"
            )),
            "{err}"
        );
    }
    // The same check for a rules file being tried.
    let rules = dir.path().join("r.toml");
    std::fs::write(
        &rules,
        "[[failure_rule]]\nname = \"x y\"\npattern = \"a\"\n",
    )
    .unwrap();
    std::fs::write(&path, "[matrix]\ndistros = [\"debian-13\"]\n").unwrap();
    let r = rules.display().to_string();
    let o = imagegrid(&["--config", &p, "rules", "test", "--rules", &r]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "imagegrid: {r}:2:8: failure_rule[0].name: rule name \"x y\""
        )),
        "{err}"
    );
}

/// Breaking one column on purpose: every 4.14 cell fails the same way. The headless run's
/// summary groups them under one cause; in the TUI the failures view shows that cause with
/// the whole column under it, Enter selects it and `b`, `y` builds it again; the grid
/// coloured by cause shows the column as one letter.
#[test]
fn a_broken_column_is_one_cause_selected_and_rebuilt_from_the_tui() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = env("IMAGEGRID_TEST_FIXTURE_IMAGE");
    let distros = vec![
        distro("column-a", &fixture, &["amd64"], &[]),
        distro("column-b", &fixture, &["amd64"], &[]),
    ];
    let cfg = config(
        dir.path(),
        "test-causes-column",
        &distros,
        "distros = [\"column-a\", \"column-b\"]\nversions = [\"4.14\", \"5.4\"]\narches = [\"amd64\"]",
        "",
    );
    let o = imagegrid(&["--config", &cfg, "build", "*"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    eprintln!("headless run:\n{err}");
    assert!(err.contains("imagegrid: failures by cause:\n"), "{err}");
    assert!(
        err.contains("imagegrid:   gcc-15 (2): OCaml < 4.14 does not build with GCC 15"),
        "{err}"
    );
    assert!(
        err.contains("imagegrid:     column-a/4.14/amd64 column-b/4.14/amd64\n"),
        "{err}"
    );

    let bin = env!("CARGO_BIN_EXE_imagegrid");
    let t = Tmux::start(&format!("{bin} --config {cfg}; sleep 60"));
    t.wait_for(20, "● a");
    t.keys(&["C"]);
    let s = t.wait_for(10, "failures: 2 cells, 1 cause (");
    eprintln!("failures view:\n{s}");
    assert!(
        s.lines()
            .any(|l| l.contains("▸ A gcc-15") && l.contains(" 2 OCaml < 4.14 does not build")),
        "{s}"
    );
    assert!(
        s.contains("✗ cause: gcc-15"),
        "the detail pane shows the cause's first cell:\n{s}"
    );
    assert!(
        s.contains("gcc-15: column-a/4.14/amd64  column-b/4.14/amd64"),
        "{s}"
    );
    t.keys(&["Enter"]);
    let s = t.wait_for(10, "2 cells of gcc-15 selected");
    eprintln!("selected:\n{s}");
    t.keys(&["b"]);
    t.wait_for(10, "Build 2 cells?");
    t.keys(&["y"]);
    let s = t.wait_for(180, "run done: 0 succeeded, 2 failed");
    eprintln!("rebuilt:\n{s}");
    t.keys(&["H", "H", "H"]);
    let s = t.wait_for(10, "by cause: A gcc-15");
    eprintln!("grid by cause:\n{s}");
    let a_rows = s
        .lines()
        .filter(|l| l.contains("column-") && l.contains(" A "))
        .count();
    assert_eq!(a_rows, 2, "both rows show the cause's letter:\n{s}");
    // The focused failed cell's detail leads with the cause and hint, then reason and step.
    t.keys(&["l"]);
    let s = t.wait_for(10, "✗ cause: gcc-15");
    eprintln!("detail:\n{s}");
    assert!(
        s.contains("reason: io.c:317:3: error: too many arguments"),
        "{s}"
    );
    assert!(s.contains("step:"), "{s}");
    t.keys(&["q"]);
}
