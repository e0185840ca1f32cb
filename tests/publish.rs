//! Publishing against real engines and a real registry on loopback: amd64 and arm64 images
//! built on the two test engines are pushed from the engine that built each, joined into
//! manifest lists with aliases; the registry's own API is read back (by hand-written HTTP, not
//! by the code under test). Dry runs change nothing, tags with arches missing are not
//! published, and a wrong password fails before anything is written, without the secret
//! appearing anywhere.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One test's config, data directory and repositories (unique per run: the registry outlives
/// test runs).
struct Setup {
    data: tempfile::TempDir,
    config: PathBuf,
    staging: String,
    public: String,
}

fn setup(registry: &str, matrix: &str) -> Setup {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let staging = format!("it-{}/staging", &id[..12]);
    let public = format!("it-{}/opam", &id[..12]);
    let data = tempfile::tempdir().unwrap();
    let engines = unix_engine_toml("unix", &["amd64"]) + &tls_engine_toml("tls", &["arm64"]);
    // The fixture distro is the newest of family `fixfam`, an LTS, and the master distro.
    let distro = fixture_distro("fixture", &[]) + "alias = \"fixfam\"\nmaster = true\nlts = true\n";
    fixture_config(data.path(), &staging, &engines, &distro, matrix);
    let config = data.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[tags]\n",
        &format!("[tags]\nregistry = \"{registry}\"\npublic = \"{public}\"\n"),
    );
    std::fs::write(&config, text).unwrap();
    Setup {
        data,
        config,
        staging,
        public,
    }
}

impl Setup {
    /// Run the binary with this config and a private docker config directory.
    fn run(&self, args: &[&str], docker_config: &Path, env: &[(&str, String)]) -> Output {
        self.run_with(&self.config, args, docker_config, env)
    }

    fn run_with(
        &self,
        config: &Path,
        args: &[&str],
        docker_config: &Path,
        env: &[(&str, String)],
    ) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_imagegrid"));
        c.arg("--config")
            .arg(config)
            .args(args)
            .env_remove("IMAGEGRID_CONFIG")
            .env("DOCKER_CONFIG", docker_config);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn build(&self, selectors: &[&str]) {
        let empty = tempfile::tempdir().unwrap();
        let mut args = vec!["build", "--no-cache"];
        args.extend_from_slice(selectors);
        let o = self.run(&args, empty.path(), &[]);
        assert!(
            o.status.success(),
            "build failed: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }

    /// The history's builds, newest first per cell.
    fn history(&self) -> Vec<serde_json::Value> {
        let empty = tempfile::tempdir().unwrap();
        let o = self.run(&["history", "--json"], empty.path(), &[]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array().unwrap().clone()
    }

    /// The last successful build of each cell.
    fn last_success(&self) -> HashMap<String, serde_json::Value> {
        self.history()
            .into_iter()
            .filter(|b| b["status"] == "succeeded")
            .map(|b| (b["cell"].as_str().unwrap().to_string(), b))
            .collect()
    }
}

/// The JSON events of a `publish --json` run.
fn events(o: &Output) -> Vec<serde_json::Value> {
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_kind<'a>(evs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    evs.iter().filter(|e| e["event"] == kind).collect()
}

/// The tags of a repository, or None when the registry has no such repository.
fn tags_of(host: &str, repo: &str, basic: Option<(&str, &str)>) -> Option<Vec<String>> {
    let r = registry_request("GET", host, &format!("/v2/{repo}/tags/list"), "*/*", basic);
    match r.status {
        404 => None,
        200 => {
            let mut t: Vec<String> = r.json()["tags"]
                .as_array()
                .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            t.sort();
            Some(t)
        }
        s => panic!("tags of {repo}: HTTP {s}: {}", text(&r.body)),
    }
}

#[test]
fn publishes_manifest_lists_and_aliases_from_both_engines() {
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    let s = setup(
        &reg,
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
    );
    s.build(&["*"]);
    let before = s.last_success();
    assert_eq!(before.len(), 4, "{before:?}");
    let docker_config = tempfile::tempdir().unwrap(); // empty: anonymous, as the registry is open

    let o = s.run(&["publish", "*", "--json"], docker_config.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let evs = events(&o);
    let done = evs.last().unwrap();
    assert_eq!(done["event"], "done", "{done}");
    assert_eq!(
        done["tags"],
        serde_json::json!(["fixture-opam", "fixture-ocaml-5.4"])
    );
    assert_eq!(done["pushes"], 4);
    assert_eq!(done["not_published"], serde_json::json!([]));

    // Each arch was pushed by the engine that built it.
    let pushed: BTreeMap<String, &serde_json::Value> = of_kind(&evs, "pushed")
        .into_iter()
        .map(|e| (e["cell"].as_str().unwrap().to_string(), e))
        .collect();
    assert_eq!(pushed.len(), 4);
    for (cell, e) in &pushed {
        assert_eq!(e["engine"], before[cell]["engine"], "{cell}");
        assert_eq!(
            e["engine"],
            if cell.ends_with("amd64") {
                "unix"
            } else {
                "tls"
            }
        );
    }

    let lists: HashMap<String, String> = of_kind(&evs, "manifest_pushed")
        .into_iter()
        .map(|e| {
            (
                e["tag"].as_str().unwrap().to_string(),
                e["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let history = s.last_success();
    let mut measured = vec![];
    for (tag, version) in [("fixture-opam", "opam"), ("fixture-ocaml-5.4", "5.4")] {
        // The registry's own answer: a Docker manifest list with one entry per arch.
        let r = registry_get(&reg, &format!("/v2/{}/manifests/{tag}", s.public), LIST);
        assert_eq!(r.status, 200, "{tag}: {}", text(&r.body));
        assert_eq!(r.header("content-type"), Some(LIST));
        assert_eq!(
            r.header("docker-content-digest"),
            Some(lists[tag].as_str()),
            "{tag}"
        );
        let list = r.json();
        assert_eq!(list["mediaType"], LIST);
        let entries = list["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{list}");
        for (entry, arch) in entries.iter().zip(["amd64", "arm64"]) {
            assert_eq!(entry["platform"]["os"], "linux", "{entry}");
            assert_eq!(entry["platform"]["architecture"], arch, "{entry}");
            assert_eq!(entry["mediaType"], MANIFEST);
            // The entry is the staging image of that arch, by digest.
            let staged = registry_get(
                &reg,
                &format!("/v2/{}/manifests/{tag}-{arch}", s.staging),
                MANIFEST,
            );
            assert_eq!(staged.status, 200);
            let digest = staged.header("docker-content-digest").unwrap();
            assert_eq!(entry["digest"], digest, "{tag} {arch}");
            assert_eq!(entry["size"], staged.body.len());
            let cell = format!("fixture/{version}/{arch}");
            assert_eq!(pushed[&cell]["digest"], digest);
            // The image under that platform really is that arch (its config says so).
            let manifest = staged.json();
            let config = registry_get(
                &reg,
                &format!(
                    "/v2/{}/blobs/{}",
                    s.staging,
                    manifest["config"]["digest"].as_str().unwrap()
                ),
                "*/*",
            );
            assert_eq!(config.json()["architecture"], arch);
            // The public repository holds the entry itself (a list names manifests of its own repository).
            let own = registry_get(
                &reg,
                &format!("/v2/{}/manifests/{digest}", s.public),
                MANIFEST,
            );
            assert_eq!(own.status, 200, "{tag} {arch} in {}", s.public);
            // Compressed size: the sum of the manifest's layers, beside the uncompressed one.
            let layers: i64 = manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["size"].as_i64().unwrap())
                .sum();
            let b = &history[&cell];
            assert_eq!(b["compressed_size"], layers, "{cell}");
            let size = b["size"].as_i64().unwrap();
            assert!(layers > 0 && layers < size, "{cell}: {layers} vs {size}");
            measured.push(format!(
                "{cell}: uncompressed {size} B, compressed {layers} B ({:.0}%), push {:.2}s",
                layers as f64 * 100.0 / size as f64,
                pushed[&cell]["secs"].as_f64().unwrap()
            ));
        }
    }
    for e in of_kind(&evs, "manifest_pushed") {
        measured.push(format!(
            "list {}: {:.2}s",
            e["tag"],
            e["secs"].as_f64().unwrap()
        ));
    }
    eprintln!("measured:\n  {}", measured.join("\n  "));

    // Every alias names the same list as its target.
    let aliases: Vec<&str> = of_kind(&evs, "alias_pushed")
        .iter()
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    let want = [
        "fixfam-ocaml-5.4",
        "fixfam-lts-ocaml-5.4",
        "fixture",
        "fixfam",
        "fixfam-lts",
        "latest",
    ];
    assert_eq!(aliases, want);
    for alias in want {
        let r = registry_get(&reg, &format!("/v2/{}/manifests/{alias}", s.public), LIST);
        assert_eq!(r.status, 200, "{alias}");
        assert_eq!(
            r.header("docker-content-digest"),
            Some(lists["fixture-ocaml-5.4"].as_str()),
            "{alias}"
        );
    }
    let mut all = want.to_vec();
    all.extend(["fixture-opam", "fixture-ocaml-5.4"]);
    all.sort();
    assert_eq!(tags_of(&reg, &s.public, None).unwrap(), all);

    // An engine pulling `latest` for arm64 gets the arm64 image.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use futures_util::StreamExt;
        let e = imagegrid::engine::Engine::connect(&unix_spec("a", &["amd64"]))
            .await
            .unwrap();
        let from = format!("{reg}/{}", s.public);
        let opts = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(&from)
            .tag("latest")
            .platform("linux/arm64")
            .build();
        let mut st = e.docker().create_image(Some(opts), None, None);
        while let Some(item) = st.next().await {
            item.unwrap();
        }
        let img = e
            .docker()
            .inspect_image(&format!("{from}:latest"))
            .await
            .unwrap();
        assert_eq!(img.architecture.as_deref(), Some("arm64"));
        let _ = e
            .docker()
            .remove_image(
                &format!("{from}:latest"),
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    });

    // Publishing again changes no digest (same bytes, same lists).
    let o = s.run(
        &["publish", "fixture/5.4/arm64", "--json"],
        docker_config.path(),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let again = events(&o);
    let e = of_kind(&again, "manifest_pushed");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["digest"], lists["fixture-ocaml-5.4"].as_str());
}

#[test]
fn dry_run_changes_nothing_and_tags_missing_an_arch_are_not_published() {
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    let s = setup(
        &reg,
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
    );
    // Both base images, but the compiler image for amd64 only.
    s.build(&["fixture/opam/*", "fixture/5.4/amd64"]);
    let docker_config = tempfile::tempdir().unwrap();

    let o = s.run(&["tags", "fixture/5.4/amd64"], docker_config.path(), &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!(
            "{reg}/{}:fixture-ocaml-5.4  (NOT PUBLISHABLE: not every arch is built: missing arm64 (fixture/5.4/arm64))",
            s.public
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "alias {reg}/{}:latest = fixture-ocaml-5.4",
            s.public
        )),
        "{out}"
    );
    assert!(!out.contains("fixture-opam"), "one tag selected: {out}");

    let o = s.run(&["publish", "*", "--dry-run"], docker_config.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a tag would not be published: {}",
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("dry run: would push 2 images, then put 1 manifest lists"),
        "{out}"
    );
    assert!(out.contains("credentials: none (anonymous)"), "{out}");
    // Nothing reached the registry, nothing was recorded.
    assert_eq!(tags_of(&reg, &s.staging, None), None);
    assert_eq!(tags_of(&reg, &s.public, None), None);
    assert!(s.history().iter().all(|b| b["compressed_size"].is_null()));

    let o = s.run(&["publish", "*"], docker_config.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("fixture-ocaml-5.4: not published: not every arch is built: missing arm64 (fixture/5.4/arm64)"),
        "{err}"
    );
    assert!(
        err.contains("latest: not published: its target fixture-ocaml-5.4 is not published"),
        "{err}"
    );
    assert!(
        err.contains("done: 1 tag and 0 aliases published, 7 not published"),
        "{err}"
    );
    // The complete tag is published; of the incomplete one not even its built arch was pushed.
    assert_eq!(tags_of(&reg, &s.public, None).unwrap(), ["fixture-opam"]);
    assert_eq!(
        tags_of(&reg, &s.staging, None).unwrap(),
        ["fixture-opam-amd64", "fixture-opam-arm64"]
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn wrong_password_fails_before_anything_is_written_and_secrets_never_show() {
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let reg = AuthRegistry::start("publisher", &password);
    let s = setup(
        &reg.host,
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]\nexclude = [\"*/5.4/*\"]",
    );
    s.build(&["*"]);
    let mut outputs: Vec<String> = vec![];
    let mut keep = |o: &Output| {
        outputs.push(text(&o.stdout));
        outputs.push(text(&o.stderr));
    };
    let creds = |p: &str| (reg.user.clone(), p.to_string());

    // 1. The docker config has the wrong password.
    let docker_config = tempfile::tempdir().unwrap();
    let auth = |(u, p): (String, String)| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    };
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{}\"}}}}}}",
            reg.host,
            auth(creds(&wrong))
        ),
    )
    .unwrap();
    let o = s.run(&["publish", "*"], docker_config.path(), &[]);
    keep(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "registry {}, repository {}: HTTP 401 Unauthorized: the registry refused the credentials",
            reg.host, s.staging
        )),
        "{err}"
    );
    assert!(
        err.contains("credentials: user publisher from docker config"),
        "{err}"
    );
    // Nothing at all in the registry: not a blob, not a repository.
    let catalog = reg.get("/v2/_catalog", "*/*");
    assert_eq!(catalog.status, 200);
    assert_eq!(catalog.json()["repositories"], serde_json::json!([]));
    assert!(s.history().iter().all(|b| b["compressed_size"].is_null()));

    // 2. No credentials at all.
    let empty = tempfile::tempdir().unwrap();
    let o = s.run(&["publish", "*", "--json"], empty.path(), &[]);
    keep(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no credentials were found for it"),
        "{}",
        text(&o.stderr)
    );

    // 3. The right password, from a file named in the imagegrid config.
    let secrets = tempfile::tempdir().unwrap();
    let pw_file = secrets.path().join("registry-password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let with_creds = s.data.path().join("config-with-credentials.toml");
    std::fs::write(
        &with_creds,
        std::fs::read_to_string(&s.config).unwrap()
            + &format!(
                "[publish]\nusername = \"publisher\"\npassword_file = \"{}\"\nbackoff_ms = 100\n",
                pw_file.display()
            ),
    )
    .unwrap();
    let o = s.run_with(
        &with_creds,
        &["publish", "*", "--json"],
        docker_config.path(),
        &[],
    );
    keep(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let list = reg.get(&format!("/v2/{}/manifests/fixture-opam", s.public), LIST);
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["manifests"].as_array().unwrap().len(), 2);
    // Without credentials the registry shows nothing.
    assert_eq!(
        registry_get(
            &reg.host,
            &format!("/v2/{}/manifests/fixture-opam", s.public),
            LIST
        )
        .status,
        401
    );

    // 4. The right password from a credential helper named in the docker config.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-imagegrid-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"publisher\",\"Secret\":\"{password}\"}}' \"$server\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(
            "{{\"credHelpers\": {{\"{}\": \"imagegrid-test\"}}}}",
            reg.host
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = s.run(&["publish", "*"], docker_config.path(), &[("PATH", path)]);
    keep(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("docker credential helper docker-credential-imagegrid-test"),
        "{}",
        text(&o.stderr)
    );
    let o = s.run(&["history"], empty.path(), &[]);
    keep(&o);

    // Neither password shows in any output, the history, the build logs or the publish logs.
    for (i, out) in outputs.iter().enumerate() {
        assert!(
            !out.contains(&password),
            "output {i} shows the password: {out}"
        );
        assert!(
            !out.contains(&wrong),
            "output {i} shows the wrong password: {out}"
        );
    }
    let files = files_under(s.data.path());
    assert!(
        files.iter().any(|f| f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("publish-")),
        "publish logs are written: {files:?}"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let t = String::from_utf8_lossy(&bytes);
        assert!(!t.contains(&password), "{} holds the password", f.display());
        assert!(
            !t.contains(&wrong),
            "{} holds the wrong password",
            f.display()
        );
    }
    // The compressed sizes were recorded by the successful publishes.
    assert!(s
        .last_success()
        .values()
        .all(|b| b["compressed_size"].as_i64().unwrap_or(0) > 0));
}

#[test]
fn retries_429_and_5xx_with_backoff_and_names_what_failed_for_good() {
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(&reg));
    // Engines and imagegrid reach the registry only through the proxy.
    let s = setup(
        &proxy.host,
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]\nexclude = [\"*/5.4/*\"]",
    );
    std::fs::write(
        &s.config,
        std::fs::read_to_string(&s.config).unwrap() + "[publish]\nretries = 3\nbackoff_ms = 50\n",
    )
    .unwrap();
    s.build(&["*"]);
    let empty = tempfile::tempdir().unwrap();

    // The engine's push of one arch, the read-back of a manifest, and the list each fail first.
    proxy.inject(Fault {
        method: "PUT",
        path: format!("/v2/{}/manifests/fixture-opam-amd64", s.staging),
        status: 503,
        times: 1,
        ..Fault::default()
    });
    proxy.inject(Fault {
        method: "GET",
        path: format!("/v2/{}/manifests/sha256:", s.staging),
        status: 429,
        times: 1,
        ..Fault::default()
    });
    proxy.inject(Fault {
        method: "PUT",
        path: format!("/v2/{}/manifests/fixture-opam", s.public),
        status: 502,
        times: 2,
        ..Fault::default()
    });
    let o = s.run(&["publish", "*", "--json"], empty.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        proxy.pending().is_empty(),
        "faults not hit: {:?}",
        proxy.pending()
    );
    assert_eq!(proxy.injected.lock().unwrap().len(), 4);
    let evs = events(&o);
    let retries: Vec<String> = of_kind(&evs, "retrying")
        .iter()
        .map(|e| {
            format!(
                "{} #{} after {}s: {}",
                e["what"], e["attempt"], e["wait_secs"], e["reason"]
            )
        })
        .collect();
    assert_eq!(retries.len(), 4, "{retries:#?}");
    assert!(
        retries[0].contains(&format!(
            "push of {}/{}:fixture-opam-amd64",
            proxy.host, s.staging
        )),
        "{retries:#?}"
    );
    assert!(retries[0].contains("503"), "{retries:#?}");
    assert!(
        retries[1].contains("reading back")
            && retries[1].contains("TOOMANYREQUESTS: injected: slow down"),
        "{retries:#?}"
    );
    // Doubling waits for the list: 50 ms, then 100 ms.
    assert!(
        retries[2].contains("manifest list") && retries[2].contains("#1 after 0.05s"),
        "{retries:#?}"
    );
    assert!(
        retries[3].contains("#2 after 0.1s") && retries[3].contains("HTTP 502"),
        "{retries:#?}"
    );
    // The registry itself (not the proxy) has the list.
    let r = registry_get(
        &reg,
        &format!("/v2/{}/manifests/fixture-opam", s.public),
        LIST,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 2);
    let first = r.header("docker-content-digest").unwrap().to_string();

    // A failure that does not pass: retried, then reported with registry, repository and tag.
    proxy.inject(Fault {
        method: "PUT",
        path: format!("/v2/{}/manifests/fixture-opam", s.public),
        status: 500,
        times: 100,
        ..Fault::default()
    });
    let o = s.run(&["publish", "*"], empty.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "fixture-opam: not published: registry {}, repository {}, tag fixture-opam: HTTP 500: injected failure",
            proxy.host, s.public
        )),
        "{err}"
    );
    assert_eq!(
        err.matches("manifest list").count(),
        3,
        "three retries: {err}"
    );
    // What was published before stays.
    let r = registry_get(
        &reg,
        &format!("/v2/{}/manifests/fixture-opam", s.public),
        LIST,
    );
    assert_eq!(r.header("docker-content-digest"), Some(first.as_str()));
    drop(proxy);
    drop(rt);
}

/// Field case F8 and the "try later" answers: the registry declines every cross-repository
/// mount (202 Accepted with an upload session, as the distribution spec lets it), answers the
/// first mount with 503 and `Retry-After: 1` and the list's PUT with 429 and a Retry-After
/// date. Publishing finishes each declined mount by uploading the blob into the session, waits
/// as long as the registry asked, and the public repository ends up with the list, its
/// manifest and every blob.
#[test]
fn declined_mounts_are_uploaded_and_retry_after_is_honoured() {
    let reg = env("IMAGEGRID_TEST_REGISTRY");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(FaultProxy::start(&reg));
    let s = setup(
        &proxy.host,
        "distros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]\nexclude = [\"*/5.4/*\"]",
    );
    std::fs::write(
        &s.config,
        std::fs::read_to_string(&s.config).unwrap() + "[publish]\nretries = 3\nbackoff_ms = 50\n",
    )
    .unwrap();
    s.build(&["*"]);
    proxy.decline_mounts();
    proxy.inject(Fault {
        method: "POST",
        path: format!("/v2/{}/blobs/uploads/?mount=", s.public),
        status: 503,
        times: 1,
        retry_after: Some("1".into()),
    });
    // The list's PUT is told to come back at a date (an HTTP-date, 8 s ahead: the builds'
    // pushes and the mounts come first).
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(8);
    let date = at
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap();
    proxy.inject(Fault {
        method: "PUT",
        path: format!("/v2/{}/manifests/fixture-opam", s.public),
        status: 429,
        times: 1,
        retry_after: Some(date),
    });
    let empty = tempfile::tempdir().unwrap();
    let o = s.run(&["publish", "*", "--json"], empty.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(proxy.pending().is_empty(), "{:?}", proxy.pending());
    let evs = events(&o);
    let done = of_kind(&evs, "done");
    assert_eq!(
        done[0]["tags"],
        serde_json::json!(["fixture-opam"]),
        "{evs:#?}"
    );
    assert_eq!(done[0]["not_published"], serde_json::json!([]));
    // The registry's Retry-After, not the 50 ms backoff.
    let retries = of_kind(&evs, "retrying");
    assert_eq!(retries.len(), 2, "{evs:#?}");
    assert_eq!(retries[0]["wait_secs"], 1.0, "{}", retries[0]);
    assert!(
        retries[0]["reason"].as_str().unwrap().contains("HTTP 503"),
        "{}",
        retries[0]
    );
    let wait = retries[1]["wait_secs"].as_f64().unwrap();
    assert!(
        retries[1]["what"]
            .as_str()
            .unwrap()
            .contains("manifest list")
            && (0.2..=8.0).contains(&wait),
        "{}",
        retries[1]
    );
    let injected = proxy.injected.lock().unwrap().clone();
    assert!(
        injected.iter().any(|l| l.ends_with("-> mount declined")),
        "{injected:#?}"
    );
    // What the registry itself (not the proxy) holds.
    let r = registry_get(
        &reg,
        &format!("/v2/{}/manifests/fixture-opam", s.public),
        LIST,
    );
    assert_eq!(r.status, 200, "{}", text(&r.body));
    let list = r.json();
    assert_eq!(list["mediaType"], LIST);
    let entries = list["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(
        entries[0]["platform"],
        serde_json::json!({"architecture": "amd64", "os": "linux"})
    );
    let digest = entries[0]["digest"].as_str().unwrap();
    let manifest = registry_get(
        &reg,
        &format!("/v2/{}/manifests/{digest}", s.public),
        MANIFEST,
    );
    assert_eq!(manifest.status, 200);
    let m = manifest.json();
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    blobs.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    for b in blobs {
        let r = registry_request(
            "HEAD",
            &reg,
            &format!("/v2/{}/blobs/{b}", s.public),
            "*/*",
            None,
        );
        assert_eq!(r.status, 200, "{b} in {}", s.public);
    }
    drop(proxy);
    drop(rt);
}
