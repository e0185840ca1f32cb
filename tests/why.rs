//! Why a cell is stale, end to end through the binary on a real engine (m, Docker 26.1) and
//! real git repositories (a local opam-repository stand-in, file://): two rounds over the
//! fixture plan (tests/fixtures/plan/inputs.dump, amd64 cells). Between the rounds the
//! opam-repository branch moves and one line of one cell's Dockerfile changes, then the
//! base is rebuilt; `why` names exactly those reasons for exactly the affected cells and
//! nothing for the others, `build --stale --dry-run` lists them in build order, and the
//! stale rebuild clears them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::env;
use serde_json::Value;

const DUMP: &str = "tests/fixtures/plan/inputs.dump";
const BASE: &str = "debian-13/opam/amd64";
const C54: &str = "debian-13/5.4/amd64";
const OTHERS: [&str; 2] = ["debian-13/4.14-flambda/amd64", "debian-13/5.5-beta1/amd64"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@example.org", "-c", "user.name=t"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// One cell's answer from `why --json`: its id, stale, and its reasons as (kind, detail).
type Answer = (String, bool, Vec<(String, String)>);

/// A private data dir, a copy of the fixture plan, opam and opam-repository stand-ins.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let opam = dir.path().join("opam");
        std::fs::create_dir(&opam).unwrap();
        git(&opam, &["init", "-q", "-b", "master"]);
        git(&opam, &["commit", "-q", "--allow-empty", "-m", "one"]);
        git(&opam, &["tag", "2.4.1"]);
        for b in ["2.1", "2.2", "2.3", "2.4", "2.5"] {
            git(&opam, &["branch", b]);
        }
        let repo = dir.path().join("opam-repository");
        std::fs::create_dir_all(repo.join("packages")).unwrap();
        git(&repo, &["init", "-q", "-b", "master"]);
        std::fs::write(repo.join("packages/a.opam"), "opam-version: \"2.0\"\n").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "a"]);
        let plan = dir.path().join("plan.dump");
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join(DUMP), &plan).unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[[engine]]\nname = \"m\"\nendpoint = \"{}\"\narches = [\"amd64\"]\nmax_parallel = 2\n\
                 [matrix]\nplan = \"{}\"\n\
                 [build]\nnetwork = \"none\"\nfrontend = \"builtin\"\nidle_timeout_secs = 60\nretries = 1\n\
                 [tags]\nregistry = \"{}\"\nstaging = \"why-{}/staging\"\npublic = \"why-{}/opam\"\n\
                 [paths]\ndata_dir = \"{}\"\n\
                 [inputs]\nopam = \"file://{}\"\nopam_repository = \"file://{}\"\n",
                env("IMAGEGRID_TEST_MODERN_HOST"),
                plan.display(),
                env("IMAGEGRID_TEST_REGISTRY"),
                &id[..12],
                &id[..12],
                dir.path().join("data").display(),
                opam.display(),
                repo.display(),
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        let docker_config = self.path("docker-config");
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

    /// Run, expecting exit `code`; stdout.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{args:?}\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// `why CELLS --json` (exit 0 when none is stale, 1 when some is): cell -> reasons
    /// as (kind, detail).
    fn why(&self, cells: &[&str]) -> Vec<Answer> {
        let mut args = vec!["why", "--json"];
        args.extend_from_slice(cells);
        let o = self.run(&args);
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", text(&o.stdout), text(&o.stderr)));
        let rows: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["cell"].as_str().unwrap().to_string(),
                    c["stale"].as_bool().unwrap(),
                    c["reasons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| {
                            (
                                r["kind"].as_str().unwrap().to_string(),
                                r["detail"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let any = rows.iter().any(|r| r.1);
        assert_eq!(o.status.code(), Some(i32::from(any)), "{rows:?}");
        rows
    }

    /// The image id of a cell's last success.
    fn image(&self, cell: &str) -> String {
        let v: Value = serde_json::from_str(&self.expect(0, &["history", "--json", cell])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|b| b["status"] == "succeeded")
            .unwrap()["image_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn reasons<'a>(rows: &'a [Answer], cell: &str) -> &'a [(String, String)] {
    &rows.iter().find(|r| r.0 == cell).unwrap().2
}

fn one(kind: &str, detail: &str) -> Vec<(String, String)> {
    vec![(kind.to_string(), detail.to_string())]
}

#[test]
fn why_names_what_moved_for_exactly_the_cells_it_touches() {
    let s = Setup::new();
    let mut cells = vec![BASE, C54];
    cells.extend(OTHERS);

    // Round 1: the base and three compilers on it, all built from today's inputs.
    let mut build = vec!["build", "--no-cache"];
    build.extend(&cells);
    s.expect(0, &build);
    let why = s.why(&cells);
    assert!(why.iter().all(|r| !r.1 && r.2.is_empty()), "{why:?}");
    // Never built: says so.
    assert_eq!(
        reasons(&s.why(&["debian-13/5.4/arm64"]), "debian-13/5.4/arm64"),
        one("never_built", "never built")
    );

    // Between the rounds: opam-repository's master moves (resolved again at once), and one
    // line of the 5.4 cell's Dockerfile changes in the plan.
    let repo = s.path("opam-repository");
    let before = git(&repo, &["rev-parse", "master"]);
    std::fs::write(repo.join("packages/b.opam"), "opam-version: \"2.0\"\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "b"]);
    let after = git(&repo, &["rev-parse", "master"]);
    s.expect(0, &["inputs", "--refresh"]);
    let plan = std::fs::read_to_string(s.path("plan.dump")).unwrap();
    let line = "\t\techo 5.4 >> /home/opam/switch\n";
    assert!(plan.contains(line));
    std::fs::write(
        s.path("plan.dump"),
        plan.replacen(line, "\t\techo 5.4 edited >> /home/opam/switch\n", 1),
    )
    .unwrap();

    let why = s.why(&cells);
    let moved = format!("opam-repository master {} -> {}", &before[..7], &after[..7]);
    assert_eq!(reasons(&why, BASE), one("input", &moved));
    assert_eq!(
        reasons(&why, C54),
        [
            (
                "dockerfile".to_string(),
                "Dockerfile: 1 line changed (+1 -1)".to_string()
            ),
            ("base_stale".to_string(), format!("base {BASE} is stale")),
        ]
    );
    for c in OTHERS {
        assert_eq!(
            reasons(&why, c),
            one("base_stale", &format!("base {BASE} is stale"))
        );
    }
    // The diff is there, and shows the line.
    let out = s.expect(1, &["why", "--diff", C54]);
    assert!(
        out.contains("-\techo 5.4 >> /home/opam/switch")
            && out.contains("+\techo 5.4 edited >> /home/opam/switch"),
        "{out}"
    );

    // The base rebuilt alone: it is up to date, each cell on it says its base was
    // rebuilt, with the new image.
    let old_image = s.image(BASE);
    s.expect(0, &["build", BASE]);
    let new_image = s.image(BASE);
    assert_ne!(old_image, new_image);
    let rebuilt = format!(
        "base {BASE} rebuilt (image sha256:{})",
        &new_image.trim_start_matches("sha256:")[..12]
    );
    let why = s.why(&cells);
    assert_eq!(reasons(&why, BASE), []);
    assert_eq!(
        reasons(&why, C54),
        [
            (
                "dockerfile".to_string(),
                "Dockerfile: 1 line changed (+1 -1)".to_string()
            ),
            ("base_rebuilt".to_string(), rebuilt.clone()),
        ]
    );
    for c in OTHERS {
        assert_eq!(reasons(&why, c), one("base_rebuilt", &rebuilt));
    }

    // Round 2: a stale rebuild would start exactly those three; it clears every reason.
    let dry: Value =
        serde_json::from_str(&s.expect(0, &["build", "--stale", "--dry-run", "--json"])).unwrap();
    let mut listed: Vec<&str> = dry
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cell"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut want = vec![C54];
    want.extend(OTHERS);
    want.sort();
    assert_eq!(listed, want, "{dry}");
    for c in dry.as_array().unwrap() {
        let kinds: Vec<&str> = c["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"base_rebuilt"), "{c}");
    }
    s.expect(0, &["build", "--stale"]);
    let why = s.why(&cells);
    assert!(why.iter().all(|r| !r.1 && r.2.is_empty()), "{why:?}");
}
