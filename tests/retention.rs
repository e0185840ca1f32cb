//! Retention end to end: several rounds of real builds over the fixture matrix leave each
//! engine holding only the images the policy keeps (counted by label), an image without
//! imagegrid's labels survives every prune, logs are compressed (read the same) and pruned
//! (read "pruned", rows kept); a prune killed with SIGKILL leaves every log whole or gone.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use common::*;
use imagegrid::store::{BuildStatus, Finish, NewBuild, Store};

fn imagegrid(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("IMAGEGRID_CONFIG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn docker(host: &str, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI")
}

/// Image ids on the engine carrying `label=value`, with their cell label.
fn images_with(host: &str, label: &str, value: &str) -> Vec<(String, String)> {
    let o = docker(
        host,
        &[
            "images",
            "--no-trunc",
            "--filter",
            &format!("label={label}={value}"),
            "--format",
            "{{.ID}}",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut v: Vec<(String, String)> = text(&o.stdout)
        .lines()
        .map(|id| {
            let o = docker(
                host,
                &[
                    "image",
                    "inspect",
                    "--format",
                    "{{index .Config.Labels \"imagegrid.cell\"}}",
                    id,
                ],
            );
            assert!(o.status.success(), "{}", text(&o.stderr));
            (id.to_string(), text(&o.stdout).trim().to_string())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn rounds_of_builds_leave_only_what_the_policy_keeps() {
    let host = env("IMAGEGRID_TEST_UNIX_HOST");
    let tmp = tempfile::tempdir().unwrap();
    let n = rand_suffix();
    let distro = format!("ret{n}");
    let loaded = fixture_config(
        tmp.path(),
        &format!("retention-{n}/staging"),
        &unix_engine_toml("a", &["amd64"]),
        &fixture_distro(&distro, &[]),
        &format!("distros = [\"{distro}\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]"),
    );
    let config = loaded.path.clone().unwrap();
    // Keep one log per cell: older ones go unless they are a last success or failure.
    let mut cfg = std::fs::read_to_string(&config).unwrap();
    cfg.push_str(
        "[history]\nkeep_logs_per_cell = 1\nkeep_logs_days = 0\nprune_after_run = false\n",
    );
    std::fs::write(&config, &cfg).unwrap();

    // An image imagegrid did not make, on the same engine, FROM the same base.
    let unlabelled = format!("retention-unlabelled-{n}:x");
    let mut child = Command::new("docker")
        .args(["-H", &host, "build", "-q", "-t", &unlabelled, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        write!(
            stdin,
            "FROM {}\nRUN echo {n} > /unlabelled\n",
            env("IMAGEGRID_TEST_FIXTURE_IMAGE")
        )
        .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));

    // Round 1, without the prune: its logs stay plain.
    let cells = [
        format!("{distro}/opam/amd64"),
        format!("{distro}/5.4/amd64"),
    ];
    let o = imagegrid(&config, &["build", "--no-cache", &format!("{distro}/*/*")]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let store = Store::open(tmp.path()).unwrap();
    let first = store.latest_id(&cells[1]).unwrap().unwrap();
    drop(store);
    let plain = tmp.path().join("logs").join(format!("{first}.log"));
    assert!(plain.exists(), "a finished log stays plain until a prune");
    let before = imagegrid(&config, &["log", &cells[1], "--build", &first.to_string()]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    assert!(!before.stdout.is_empty());

    // A dry run changes nothing.
    let o = imagegrid(&config, &["prune", "--engines", "--dry-run", "--json"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["logs"]["compressed"], 2, "{r}");
    assert!(plain.exists());

    // Rounds 2 and 3 prune by themselves after the run.
    cfg = cfg.replace("prune_after_run = false", "prune_after_run = true");
    std::fs::write(&config, &cfg).unwrap();
    for _ in 0..2 {
        let o = imagegrid(&config, &["build", "--no-cache", &format!("{distro}/*/*")]);
        assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            text(&o.stderr).contains("logs: prune"),
            "{}",
            text(&o.stderr)
        );
    }

    let store = Store::open(tmp.path()).unwrap();
    let history_id = store.history_id().to_string();
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for c in &cells {
        let h = store.for_cell(c).unwrap();
        assert_eq!(h.len(), 3, "rows are kept: {h:?}");
        assert!(h.iter().all(|r| r.status == BuildStatus::Succeeded));
        // The newest log is kept (and compressed), the older ones pruned, rows all there.
        assert!(h[2].log_pruned_at.is_none());
        assert!(h[..2].iter().all(|r| r.log_pruned_at.is_some()), "{h:?}");
        let newest = tmp.path().join("logs").join(format!("{}.log", h[2].id));
        assert!(!newest.exists() && imagegrid::store::logfile::compressed(&newest).exists());
        kept.insert(c.clone(), h[2].image_id.clone().unwrap());
    }
    drop(store);

    // The first round's log: pruned, and says so; its row still in `history`.
    let o = imagegrid(&config, &["log", &cells[1], "--build", &first.to_string()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("pruned"), "{}", text(&o.stdout));
    assert!(!plain.exists() && !imagegrid::store::logfile::compressed(&plain).exists());
    let o = imagegrid(&config, &["history", &cells[1]]);
    assert!(
        text(&o.stdout).contains("(log pruned)"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(text(&o.stdout).lines().count(), 4, "{}", text(&o.stdout));

    // On the engine: exactly the newest success of each cell, by this history's label.
    let ours = images_with(&host, "imagegrid.history", &history_id);
    let want: Vec<(String, String)> = {
        let mut v: Vec<_> = kept.iter().map(|(c, i)| (i.clone(), c.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(ours, want, "images of this history on the engine");
    let o = docker(&host, &["image", "inspect", &unlabelled]);
    assert!(
        o.status.success(),
        "the unlabelled image survives: {}",
        text(&o.stderr)
    );
    docker(&host, &["rmi", &unlabelled]);
    for (id, _) in &ours {
        docker(&host, &["rmi", "-f", id]);
    }
}

#[test]
fn a_kept_log_reads_the_same_after_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\ndata_dir = \"{}\"\n[history]\nkeep_logs_per_cell = 0\nkeep_logs_days = 0\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let cell = "debian-13/5.4/amd64";
    let id = store
        .start(&NewBuild {
            cell,
            engine: "a",
            inputs: "h",
            tag: "t",
            base_image: None,
        })
        .unwrap();
    let mut w = store.log_writer(id).unwrap();
    for i in 0..20_000 {
        w.line(&format!(
            "#{i} ocamlfind ocamlopt -c src/m{}.ml \x1b[32mok\x1b[0m",
            i % 97
        ))
        .unwrap();
    }
    store
        .finish(id, BuildStatus::Failed, &Finish::default())
        .unwrap();
    drop(store);
    let before = imagegrid(&config, &["log", cell]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    let o = imagegrid(&config, &["prune"]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let plain = tmp.path().join("logs").join(format!("{id}.log"));
    let zst = imagegrid::store::logfile::compressed(&plain);
    assert!(!plain.exists() && zst.exists());
    assert!(std::fs::metadata(&zst).unwrap().len() * 5 < before.stdout.len() as u64);
    let after = imagegrid(&config, &["log", cell]);
    assert_eq!(after.stdout, before.stdout);
    let o = imagegrid(&config, &["paths"]);
    assert!(
        text(&o.stdout).contains("in 1 files"),
        "{}",
        text(&o.stdout)
    );
}

/// The text of build `id`'s log in the crash test: distinct per build, long enough that
/// compressing and removing hundreds of them takes a while.
fn crash_log(id: i64) -> String {
    (0..400)
        .map(|i| format!("build {id} line {i}: ocamlfind ocamlopt -c src/module_{i}.ml\n"))
        .collect()
}

#[test]
fn a_prune_killed_mid_way_leaves_every_log_whole_or_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\ndata_dir = \"{}\"\n[history]\nkeep_logs_per_cell = 2\nkeep_logs_days = 0\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let mut ids = Vec::new();
    for round in 0..25 {
        for c in 0..24 {
            let cell = format!("crash-{c}/5.4/amd64");
            let id = store
                .start(&NewBuild {
                    cell: &cell,
                    engine: "a",
                    inputs: "h",
                    tag: "t",
                    base_image: None,
                })
                .unwrap();
            std::fs::write(store.log_path(id), crash_log(id)).unwrap();
            let status = if round % 7 == 3 {
                BuildStatus::Failed
            } else {
                BuildStatus::Succeeded
            };
            store.finish(id, status, &Finish::default()).unwrap();
            ids.push(id);
        }
    }
    drop(store);
    // Kill prunes at different points of their work, until one finishes.
    let mut killed = 0;
    for delay_ms in [5u64, 20, 40, 80, 120, 200, 300, 500, 800, 1200, 2000, 5000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
            .arg("--config")
            .arg(&config)
            .arg("prune")
            .env_remove("IMAGEGRID_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let done = child.try_wait().unwrap().is_some();
        if !done {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        // Whatever the moment: history readable, each log whole or gone, and gone only
        // when its row says pruned.
        let store = Store::open(tmp.path()).expect("history reopens");
        let rows: HashMap<i64, _> = store
            .all()
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        assert_eq!(rows.len(), ids.len());
        for id in &ids {
            let plain = store.log_path(*id);
            let mut out = Vec::new();
            match imagegrid::store::logfile::copy_to(&plain, &mut out) {
                Ok(_) => assert_eq!(
                    String::from_utf8(out).unwrap(),
                    crash_log(*id),
                    "log {id} after a kill at {delay_ms} ms"
                ),
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
                    assert!(
                        rows[id].log_pruned_at.is_some(),
                        "log {id} gone but its row does not say pruned"
                    );
                }
            }
        }
        drop(store);
        if done {
            break;
        }
    }
    assert!(killed > 0, "no prune was killed mid-way");
    // A last prune completes: nothing but whole compressed logs remain, 2+ per cell.
    let o = imagegrid(&config, &["prune"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".log.zst")), "{names:?}");
    assert!(
        names.len() >= 24 * 2 && names.len() <= 24 * 3,
        "{}",
        names.len()
    );
}
