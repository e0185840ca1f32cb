//! Why a cell is stale, end to end through the binary on a real engine (m, Docker 26.1) and
//! real git repositories (a local opam-repository stand-in, file://): two rounds over the
//! fixture plan (tests/fixtures/plan/inputs.dump, amd64 cells). Between the rounds the
//! opam-repository branch moves and one line of one cell's Dockerfile changes, then the
//! base is rebuilt; `why` names exactly those reasons for exactly the affected cells and
//! nothing for the others, `build --stale --dry-run` lists them in build order, and the
//! stale rebuild clears them.
//!
//! The base starts FROM an "upstream" image in a registry of the test's own (Debian's
//! docker-registry, stopped and started again by the test): a new image pushed under the
//! same tag (from engine a, so that m's copy stays the old one) gives the base the
//! `upstream` reason and nothing else; its rebuild pulls (the new marker is in the image)
//! and clears it; a stopped registry is a note, never stale. Last, `build --same-inputs`
//! after opam-repository moved builds the recorded commit, and `why` still says stale.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{env, git};
use serde_json::Value;

const DUMP: &str = "tests/fixtures/plan/inputs.dump";
const BASE: &str = "debian-13/opam/amd64";
const C54: &str = "debian-13/5.4/amd64";
const OTHERS: [&str; 2] = ["debian-13/4.14-flambda/amd64", "debian-13/5.5-beta1/amd64"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One cell's answer from `why --json`: its id, stale, its reasons as (kind, detail), and
/// its notes.
type Answer = (String, bool, Vec<(String, String)>, Vec<String>);

/// A private data dir, a copy of the fixture plan, opam and opam-repository stand-ins.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A registry of the test's own on loopback (plain HTTP: engines treat 127.0.0.0/8 as
/// insecure), with the upstream image `HOST/why/up:1`; stopped by its pid when dropped.
struct Upstream {
    dir: tempfile::TempDir,
    host: String,
    child: Option<std::process::Child>,
}

impl Upstream {
    fn start() -> Upstream {
        // The test environment installs Debian's docker-registry.
        let _ = env("IMAGEGRID_TEST_REGISTRY");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut u = Upstream {
            dir,
            host,
            child: None,
        };
        u.resume();
        u
    }

    /// Start (again, on the same port and storage).
    fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).unwrap();
        self.child = Some(
            Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(self.dir.path().join("config.yml"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start /usr/bin/docker-registry (installed by scripts/test-env.sh)"),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.host).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn image(&self) -> String {
        format!("{}/why/up:1", self.host)
    }

    /// Build, on engine a, the fixture image with `/upstream-marker` holding `marker`, and
    /// push it as the upstream image; its registry digest.
    fn push(&self, marker: &str) -> String {
        let a = env("IMAGEGRID_TEST_UNIX_HOST");
        let dockerfile =
            format!("FROM imagegrid-fixture/busybox:amd64\nRUN echo {marker} > /upstream-marker\n");
        docker(
            &a,
            &["build", "-q", "--network", "none", "-t", &self.image(), "-"],
            Some(&dockerfile),
        );
        docker(&a, &["push", "-q", &self.image()], None);
        let d = docker(
            &a,
            &[
                "image",
                "inspect",
                "-f",
                "{{index .RepoDigests 0}}",
                &self.image(),
            ],
            None,
        );
        d.split_once('@').unwrap().1.trim().to_string()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The docker CLI on engine `host`, with a private client config; stdout.
fn docker(host: &str, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let config = tempfile::tempdir().unwrap();
    let mut child = Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .env("DOCKER_CONFIG", config.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(t) = stdin {
        input.write_all(t.as_bytes()).unwrap();
    }
    drop(input);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "docker {args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

impl Setup {
    fn new(upstream: &str) -> Setup {
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
        // The amd64 base starts FROM the upstream image (both its stages).
        let dump = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DUMP))
            .unwrap()
            .replace(
                "\tFROM imagegrid-fixture/busybox:amd64\n",
                &format!("\tFROM {upstream}\n"),
            );
        std::fs::write(&plan, dump).unwrap();
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
                    c["notes"]
                        .as_array()
                        .map(|n| n.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let any = rows.iter().any(|r| r.1);
        assert_eq!(o.status.code(), Some(i32::from(any)), "{rows:?}");
        rows
    }

    /// The image id of a cell's last success.
    fn image(&self, cell: &str) -> String {
        self.last_success(cell)["image_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A cell's last success, as `history --json` gives it.
    fn last_success(&self, cell: &str) -> Value {
        let v: Value = serde_json::from_str(&self.expect(0, &["history", "--json", cell])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|b| b["status"] == "succeeded")
            .unwrap()
            .clone()
    }

    /// What a cell's last success recorded it was made from.
    fn recorded(&self, cell: &str) -> imagegrid::model::recorded::Recorded {
        let id = self.last_success(cell)["id"].as_i64().unwrap();
        imagegrid::store::Store::open(&self.path("data"))
            .unwrap()
            .recorded(id)
            .unwrap()
            .unwrap()
    }

    /// A file in an image on engine m.
    fn file_in(&self, image: &str, path: &str) -> String {
        docker(
            &env("IMAGEGRID_TEST_MODERN_HOST"),
            &["run", "--rm", "--network", "none", image, "cat", path],
            None,
        )
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
    let mut up = Upstream::start();
    let d1 = up.push("1");
    let image = up.image();
    // Engine m holds it, as an engine that pulled `debian:13` once does: a build without
    // a pull would start FROM that copy.
    docker(
        &env("IMAGEGRID_TEST_MODERN_HOST"),
        &["pull", "-q", &image],
        None,
    );
    let s = Setup::new(&image);
    let mut cells = vec![BASE, C54];
    cells.extend(OTHERS);

    // Round 1: the base and three compilers on it, all built from today's inputs.
    let mut build = vec!["build", "--no-cache"];
    build.extend(&cells);
    s.expect(0, &build);
    let why = s.why(&cells);
    assert!(
        why.iter().all(|r| !r.1 && r.2.is_empty() && r.3.is_empty()),
        "{why:?}"
    );
    // The base recorded the upstream digest it was built from.
    let rec = s.recorded(BASE).upstream.unwrap();
    assert_eq!(
        (rec.image.as_str(), rec.digest.as_deref()),
        (image.as_str(), Some(d1.as_str()))
    );
    assert_eq!(s.file_in(&s.image(BASE), "/upstream-marker"), "1\n");
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
    // ... and a new upstream image is pushed under the same tag (engine m keeps the old).
    let d2 = up.push("2");
    assert_ne!(d1, d2);
    let listed = s.expect(0, &["inputs", "--refresh"]);
    assert!(
        listed.contains(&format!("upstream {image}: {d2} (asked ")),
        "{listed}"
    );
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
    let short = |d: &str| format!("sha256:{}…", &d.trim_start_matches("sha256:")[..12]);
    let upstream_moved = format!(
        "upstream {image} has a new digest ({} -> {})",
        short(&d1),
        short(&d2)
    );
    assert_eq!(
        reasons(&why, BASE),
        [
            ("input".to_string(), moved.clone()),
            ("upstream".to_string(), upstream_moved.clone())
        ]
    );
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

    // A dry run says the base's rebuild pulls (its upstream moved), the others' do not.
    let dry: Value =
        serde_json::from_str(&s.expect(0, &["build", "--stale", "--dry-run", "--json"])).unwrap();
    for c in dry.as_array().unwrap() {
        assert_eq!(c["pull"], c["cell"] == BASE, "{c}");
    }

    // The base rebuilt alone (with a pull, `[build] pull` being false): it is up to date,
    // built from the new upstream image; each cell on it says its base was rebuilt, with
    // the new image.
    let old_image = s.image(BASE);
    s.expect(0, &["build", BASE]);
    let new_image = s.image(BASE);
    assert_ne!(old_image, new_image);
    assert_eq!(s.file_in(&new_image, "/upstream-marker"), "2\n");
    assert_eq!(s.recorded(BASE).upstream.unwrap().digest, Some(d2.clone()));
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

    // The registry stopped: the digest is unknown, a note; nothing is stale.
    up.stop();
    s.expect(0, &["inputs", "--refresh"]);
    let why = s.why(&cells);
    assert!(why.iter().all(|r| !r.1 && r.2.is_empty()), "{why:?}");
    let notes = &why.iter().find(|r| r.0 == BASE).unwrap().3;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!("upstream digest of {image} unknown: engine m: ")),
        "{notes:?}"
    );
    assert!(
        why.iter().filter(|r| r.0 != BASE).all(|r| r.3.is_empty()),
        "{why:?}"
    );
    up.resume();

    // opam-repository moves again; the base rebuilt with the same inputs as its last run
    // builds the recorded commit, says so in its record, and stays stale.
    std::fs::write(repo.join("packages/c.opam"), "opam-version: \"2.0\"\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "c"]);
    let third = git(&repo, &["rev-parse", "master"]);
    s.expect(0, &["inputs", "--refresh"]);
    let repeated = s.last_success(BASE)["id"].as_i64().unwrap();
    s.expect(0, &["build", "--same-inputs", BASE]);
    let again = s.image(BASE);
    // FROM the upstream digest it recorded, not m's older copy under the tag.
    assert_eq!(s.file_in(&again, "/upstream-marker"), "2\n");
    assert_eq!(
        s.file_in(&again, "/home/opam/opam-repository/.git/HEAD")
            .trim(),
        after
    );
    assert_eq!(s.recorded(BASE).same_inputs_of, Some(repeated));
    assert_eq!(
        reasons(&s.why(&[BASE]), BASE),
        one(
            "input",
            &format!("opam-repository master {} -> {}", &after[..7], &third[..7])
        )
    );
    // A cell with no recorded run is refused.
    let o = s.run(&["build", "--same-inputs", "debian-13/5.4/arm64"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("debian-13/5.4/arm64: no recorded run to repeat"),
        "{}",
        text(&o.stderr)
    );
}
