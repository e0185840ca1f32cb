//! Pinned inputs and modern builders, end to end through the binary on real engines and real
//! git repositories (local stand-ins for opam and opam-repository, no network):
//! tests/fixtures/plan/inputs.dump (heredocs, `COPY --link`, `--from=0`, a `RUN
//! --mount=type=bind` archive job, the staging FROM, push lines with aliases; FROM the
//! fixture busybox of each arch) builds on engine m (Docker 26.1) with `frontend =
//! "builtin"`, its compilers FROM the bases just built, publishes the dump's manifest lists
//! to the loopback registry, and follows its moving refs: a branch moved between two rounds
//! makes the affected cells stale and the rebuild checks out the new commits. Engine a
//! (Docker 20.10) refuses what it cannot build, saying why; an unreachable input blocks
//! only what needs it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{env, file_in_image, git, registry_get, ACCEPT_ANY_MANIFEST};
use imagegrid::dockerfile::features::strip_syntax;
use imagegrid::engine::Engine;

const DUMP: &str = "tests/fixtures/plan/inputs.dump";
const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Local stand-ins for opam (branches 2.1 ... 2.5, release tags; the newest release is a
/// pre-release, older than master's tip) and opam-repository (master with one package).
struct StandIns {
    dir: tempfile::TempDir,
}

impl StandIns {
    fn new() -> StandIns {
        let dir = tempfile::tempdir().unwrap();
        let opam = dir.path().join("opam");
        std::fs::create_dir(&opam).unwrap();
        git(&opam, &["init", "-q", "-b", "master"]);
        git(&opam, &["commit", "-q", "--allow-empty", "-m", "one"]);
        git(&opam, &["tag", "2.4.1"]);
        for b in ["2.1", "2.2", "2.3", "2.4", "2.5"] {
            git(&opam, &["branch", b]);
        }
        git(&opam, &["commit", "-q", "--allow-empty", "-m", "two"]);
        git(&opam, &["tag", "-a", "-m", "beta", "2.5.0-beta1"]);
        git(
            &opam,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "three (not released)",
            ],
        );
        let repo = dir.path().join("opam-repository");
        std::fs::create_dir_all(repo.join("packages")).unwrap();
        git(&repo, &["init", "-q", "-b", "master"]);
        std::fs::write(repo.join("packages/a.opam"), "opam-version: \"2.0\"\n").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "a"]);
        StandIns { dir }
    }

    fn opam(&self) -> PathBuf {
        self.dir.path().join("opam")
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("opam-repository")
    }

    fn head(&self, repo: &Path, r: &str) -> String {
        git(repo, &["rev-parse", &format!("{r}^{{commit}}")])
    }
}

/// A config over the fixture dump: `engine` (name, host), builtin frontend, network none, a
/// private data dir and repositories, the stand-ins as inputs (`repository`: its URL).
struct Setup {
    data: tempfile::TempDir,
    config: PathBuf,
    staging: String,
    public: String,
}

fn setup(engine: (&str, &str), repository: &str, inputs: &StandIns) -> Setup {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let staging = format!("in-{}/staging", &id[..12]);
    let public = format!("in-{}/opam", &id[..12]);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("config.toml");
    let dump = Path::new(env!("CARGO_MANIFEST_DIR")).join(DUMP);
    std::fs::write(
        &config,
        format!(
            "[[engine]]\nname = \"{}\"\nendpoint = \"{}\"\narches = [\"amd64\", \"arm64\"]\nmax_parallel = 2\n\
             [matrix]\nplan = \"{}\"\n\
             [build]\nnetwork = \"none\"\nfrontend = \"builtin\"\nidle_timeout_secs = 60\nretries = 1\n\
             [tags]\nregistry = \"{}\"\nstaging = \"{staging}\"\npublic = \"{public}\"\n\
             [paths]\ndata_dir = \"{}\"\n\
             [inputs]\nopam = \"file://{}\"\nopam_repository = \"{repository}\"\n",
            engine.0,
            engine.1,
            dump.display(),
            env("IMAGEGRID_TEST_REGISTRY"),
            data.path().display(),
            inputs.opam().display(),
        ),
    )
    .unwrap();
    Setup {
        data,
        config,
        staging,
        public,
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        let docker_config = self.data.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_imagegrid"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("IMAGEGRID_CONFIG")
            .env("DOCKER_CONFIG", docker_config)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// A build's exit status and its progress (stderr) and output.
    fn build(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        let o = self.run(&all);
        (o.status.code(), text(&o.stderr) + &text(&o.stdout))
    }

    /// [`Setup::build`] that must succeed.
    fn build_ok(&self, args: &[&str]) -> String {
        let (code, out) = self.build(args);
        assert_eq!(code, Some(0), "{args:?}\n{out}");
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// The last successful build of each cell.
    fn last_success(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        for b in self.json(&["history", "--json"]).as_array().unwrap() {
            if b["status"] == "succeeded" && !out.contains_key(b["cell"].as_str().unwrap()) {
                out.insert(b["cell"].as_str().unwrap().to_string(), b.clone());
            }
        }
        out
    }
}

/// The fixture's push lines: public tag -> the arches of its sources.
fn fixture_pushes() -> BTreeMap<String, BTreeSet<String>> {
    let dump = std::fs::read_to_string(DUMP).unwrap();
    let mut out = BTreeMap::new();
    for (sources, target) in dump.lines().filter_map(|l| l.split_once(" -> ")) {
        let arches = sources
            .split(", ")
            .map(|s| {
                let tag = s.rsplit_once(':').unwrap().1;
                if tag == "archive" {
                    "amd64".to_string()
                } else {
                    tag.rsplit_once('-').unwrap().1.to_string()
                }
            })
            .collect();
        out.insert(target.rsplit_once(':').unwrap().1.to_string(), arches);
    }
    out
}

/// A build's `[..] cell: STATUS: reason` line.
fn outcome<'a>(stdout: &'a str, cell: &str) -> &'a str {
    let needle = format!(" {cell}: ");
    stdout
        .lines()
        .filter_map(|l| l.split_once(&needle).map(|(_, rest)| rest))
        .find(|rest| !rest.starts_with("started"))
        .unwrap_or_else(|| panic!("no outcome for {cell} in:\n{stdout}"))
}

const BASES: [&str; 2] = ["debian-13/opam/amd64", "debian-13/opam/arm64"];
const COMPILERS: [&str; 4] = [
    "debian-13/5.4/amd64",
    "debian-13/5.4/arm64",
    "debian-13/4.14-flambda/amd64",
    "debian-13/5.5-beta1/amd64",
];
const ARCHIVE: &str = "debian-13/archive/amd64";

#[tokio::test]
async fn the_plan_builds_on_engine_26_publishes_and_follows_its_moving_inputs() {
    let inputs = StandIns::new();
    let repo_url = format!("file://{}", inputs.repo().display());
    let s = setup(
        ("m", &env("IMAGEGRID_TEST_MODERN_HOST")),
        &repo_url,
        &inputs,
    );
    let engine = Engine::connect(&common::modern_spec("m", &["amd64", "arm64"]))
        .await
        .unwrap();

    // Round 1: every cell, the archive by its id.
    let out = s.build_ok(&["--no-cache", "*", ARCHIVE]);
    assert!(out.contains("7 succeeded, 0 failed, 0 skipped"), "{out}");
    let built = s.last_success();
    let c25 = inputs.head(&inputs.opam(), "2.5");
    let c21 = inputs.head(&inputs.opam(), "2.1");
    let release = inputs.head(&inputs.opam(), "2.5.0-beta1");
    let repo1 = inputs.head(&inputs.repo(), "master");
    assert_ne!(
        release,
        inputs.head(&inputs.opam(), "master"),
        "master's tip is not released"
    );

    // The pins: each branch head, master at the newest release (a pre-release).
    let pins = s.json(&["inputs", "--json"]);
    let commit_of = |input: &str, r: &str| -> String {
        pins["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["input"] == input && i["ref"] == r)
            .unwrap_or_else(|| panic!("{input} {r} in {pins}"))["commit"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(commit_of("opam", "2.5"), c25);
    assert_eq!(commit_of("opam", "master"), release);
    assert_eq!(commit_of("opam-repository", "master"), repo1);

    // The base: the text sent is the one in the image, with the pinned commits; its
    // build ran those checkouts; the repository is in it at its commit, with its .git.
    let base_tag = built[BASES[0]]["tag"].as_str().unwrap().to_string();
    assert!(
        base_tag.ends_with(&format!("{}:debian-13-opam-amd64", s.staging)),
        "{base_tag}"
    );
    let base_text = s.ok(&["dockerfile", BASES[0]]);
    assert!(
        base_text.starts_with("# syntax=docker/dockerfile:1\n"),
        "{base_text}"
    );
    assert!(
        base_text.contains(&format!("git checkout {c25} && ")),
        "{base_text}"
    );
    assert!(
        base_text.contains(&format!("git checkout {release} && ")),
        "{base_text}"
    );
    assert!(!base_text.contains("git checkout 2.5 "), "{base_text}");
    assert_eq!(
        file_in_image(&engine, &base_tag, "/Dockerfile.opam").await,
        strip_syntax(&base_text),
        "/Dockerfile.opam holds exactly the text sent (`builtin`: no # syntax line)"
    );
    let log = file_in_image(&engine, &base_tag, "/opam-git.log").await;
    assert_eq!(
        log,
        format!(
            "git clone https://github.com/ocaml/opam /tmp/opam\ngit checkout {release}\n\
             git fetch -q\ngit checkout {c21}\ngit fetch -q\ngit checkout {c25}\n"
        )
    );
    let head = file_in_image(&engine, &base_tag, "/home/opam/opam-repository/.git/HEAD").await;
    assert_eq!(head.trim(), repo1);
    assert_eq!(
        file_in_image(
            &engine,
            &base_tag,
            "/home/opam/opam-repository/packages/a.opam"
        )
        .await,
        "opam-version: \"2.0\"\n"
    );

    // The compiler: FROM the base image just built, its text as sent.
    let base_id = built[BASES[0]]["image_id"].as_str().unwrap();
    assert_eq!(built[COMPILERS[0]]["base_image"], base_id);
    let ocaml = file_in_image(
        &engine,
        built[COMPILERS[0]]["tag"].as_str().unwrap(),
        "/Dockerfile.ocaml",
    )
    .await;
    let short = &base_id.trim_start_matches("sha256:")[..12];
    let want_from = format!("FROM {base_tag}-{short}\n");
    assert!(ocaml.contains(&want_from), "{ocaml}");
    let printed = s.ok(&["dockerfile", COMPILERS[0]]);
    assert_eq!(
        ocaml.replace(
            &want_from,
            "FROM ocurrent/opam-staging:debian-13-opam-amd64\n"
        ),
        strip_syntax(&printed)
    );

    // Each build records the pins it used (schema 6).
    let store = imagegrid::store::Store::open(s.data.path()).unwrap();
    let rec = store
        .inputs_record(built[BASES[1]]["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.opam.keys().map(String::as_str).collect::<Vec<_>>(),
        ["2.1", "2.5", "master"],
        "the refs its text checks out"
    );
    assert_eq!(rec.opam["2.5"].commit, c25);
    assert_eq!(rec.opam["master"].tag.as_deref(), Some("2.5.0-beta1"));
    assert_eq!(rec.opam_repository.as_ref().unwrap().commit, repo1);
    let rec = store
        .inputs_record(built[COMPILERS[0]]["id"].as_i64().unwrap())
        .unwrap()
        .unwrap();
    assert!(
        rec.is_empty(),
        "a compiler's own text uses no moving ref: {rec:?}"
    );
    drop(store);

    // Tags and publish: exactly the dump's manifest lists, in the configured repository.
    let want = fixture_pushes();
    let tags = s.json(&["tags", "--json"]);
    let listed: BTreeSet<String> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .chain(tags["aliases"].as_array().unwrap())
        .map(|t| {
            t["plan_reference"]
                .as_str()
                .unwrap()
                .rsplit_once(':')
                .unwrap()
                .1
                .to_string()
        })
        .collect();
    assert_eq!(listed, want.keys().cloned().collect());
    s.ok(&["publish", "*", ARCHIVE, "--json"]);
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    for (tag, arches) in &want {
        let r = registry_get(
            &reg,
            &format!("/v2/{}/manifests/{tag}", s.public),
            ACCEPT_ANY_MANIFEST,
        );
        assert_eq!(r.status, 200, "{tag}: {}", text(&r.body));
        if r.header("content-type") == Some(LIST) {
            let got: BTreeSet<String> = r.json()["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(&got, arches, "{tag}");
        } else {
            assert_eq!(arches.len(), 1, "{tag}: one arch, one image manifest");
        }
    }

    // Round 2: opam's 2.5 and opam-repository's master move. Once resolved again, the bases
    // and every compiler on them are stale; the archive is stale only by its id.
    git(&inputs.opam(), &["checkout", "-q", "2.5"]);
    git(
        &inputs.opam(),
        &["commit", "-q", "--allow-empty", "-m", "2.5 fix"],
    );
    std::fs::write(
        inputs.repo().join("packages/b.opam"),
        "opam-version: \"2.0\"\n",
    )
    .unwrap();
    git(&inputs.repo(), &["add", "."]);
    git(&inputs.repo(), &["commit", "-q", "-m", "b"]);
    let (c25b, repo2) = (
        inputs.head(&inputs.opam(), "2.5"),
        inputs.head(&inputs.repo(), "master"),
    );
    let out = s.build_ok(&["--stale"]);
    assert!(
        out.contains("nothing to build"),
        "not stale before a resolution (7d): {out}"
    );
    s.ok(&["inputs", "--refresh"]);
    let out = s.build_ok(&["--stale", "--no-cache"]);
    for cell in BASES.iter().chain(&COMPILERS) {
        assert!(
            outcome(&out, cell).starts_with("succeeded"),
            "{cell}: {out}"
        );
    }
    assert!(out.contains("6 succeeded, 0 failed, 0 skipped"), "{out}");
    let log = file_in_image(&engine, &base_tag, "/opam-git.log").await;
    assert!(log.contains(&format!("git checkout {c25b}\n")), "{log}");
    assert!(
        log.contains(&format!("git checkout {c21}\n")),
        "2.1 did not move: {log}"
    );
    let head = file_in_image(&engine, &base_tag, "/home/opam/opam-repository/.git/HEAD").await;
    assert_eq!(head.trim(), repo2);
    file_in_image(
        &engine,
        &base_tag,
        "/home/opam/opam-repository/packages/b.opam",
    )
    .await;
    let again = s.last_success();
    assert_eq!(
        again[COMPILERS[0]]["base_image"], again[BASES[0]]["image_id"],
        "the compiler was rebuilt FROM the new base"
    );
}

#[test]
fn engine_20_10_refuses_the_recipes_it_cannot_read_and_says_what_helps() {
    let inputs = StandIns::new();
    let repo_url = format!("file://{}", inputs.repo().display());
    let s = setup(("a", &env("IMAGEGRID_TEST_UNIX_HOST")), &repo_url, &inputs);
    let (code, out) = s.build(&["*", ARCHIVE]);
    assert_eq!(code, Some(1), "{out}");
    for cell in BASES {
        let why = outcome(&out, cell);
        assert!(
            why.starts_with("skipped: engine a (Docker 20.10.")
                && why.contains("cannot build heredocs, COPY --link")
                && why.contains("[build] frontend = \"builtin\"")
                && why.contains("Docker 23 or later")
                && why.contains("`[build] frontend = \"directive\"`"),
            "{cell}: {why}"
        );
    }
    for cell in COMPILERS.iter().chain(&[ARCHIVE]) {
        assert!(
            outcome(&out, cell).starts_with("skipped: base "),
            "{cell}: {out}"
        );
    }
    // `check` says what its builder reads.
    let check = s.ok(&["check"]);
    assert!(
        check.contains("builder: Docker 20.10.")
            && check.contains("built-in frontend: RUN --mount;"),
        "{check}"
    );
}

#[test]
fn an_unreachable_input_is_named_and_blocks_only_the_builds_that_need_it() {
    let inputs = StandIns::new();
    let missing = format!("file://{}/gone", inputs.dir.path().display());
    let s = setup(("m", &env("IMAGEGRID_TEST_MODERN_HOST")), &missing, &inputs);
    let (code, out) = s.build(&["*"]);
    assert_eq!(code, Some(1), "{out}");
    for cell in BASES {
        let why = outcome(&out, cell);
        assert!(
            why.starts_with(&format!(
                "failed: not started: input opam-repository ({missing}): cannot fetch master:"
            )),
            "{cell}: {why}"
        );
    }
    for cell in COMPILERS {
        assert!(
            outcome(&out, cell).starts_with("skipped: base "),
            "{cell}: {out}"
        );
    }
    assert!(s.last_success().is_empty(), "nothing was built");
    // Offline commands still work: opam resolved (its commits shown), opam-repository did
    // not (a note says so).
    let o = s.run(&["dockerfile", BASES[0]]);
    assert_eq!(o.status.code(), Some(0));
    let c25 = inputs.head(&inputs.opam(), "2.5");
    assert!(text(&o.stdout).contains(&format!("git checkout {c25} && ")));
    assert!(
        text(&o.stderr).contains("note: opam-repository master not resolved yet"),
        "{}",
        text(&o.stderr)
    );
    // `inputs` resolves what it can, and names what it cannot.
    let o = s.run(&["inputs"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains(&inputs.head(&inputs.opam(), "2.5")));
    assert!(
        text(&o.stderr).contains(&format!(
            "input opam-repository ({missing}): cannot fetch master"
        )),
        "{}",
        text(&o.stderr)
    );
    // No checkout was ever made: `inputs` says so, not where it would be as if it were.
    assert!(
        text(&o.stdout).contains("opam-repository checkout: none yet (the first resolution"),
        "{}",
        text(&o.stdout)
    );
    let o = s.run(&["inputs", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checkout"], serde_json::Value::Null, "{v}");
    // `why` goes on with what it has: opam's resolution, and opam-repository's moving ref
    // (there is no last resolution of it to use).
    let o = s.run(&["why", BASES[0]]);
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "input opam-repository ({missing}): cannot fetch master"
        )) && err.contains("(never resolved yet: the recipes name its moving refs, unpinned)"),
        "{err}"
    );
    assert!(!err.contains("its last resolution is used"), "{err}");
    // The grid still opens (as text, not on a terminal).
    let grid = s.ok(&[]);
    assert!(grid.contains("debian-13"), "{grid}");
}
