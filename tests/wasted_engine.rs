//! `sizes --wasted` on layers a real engine wrote (both builders): each kind of change the OCI
//! layer rules cover is made by a build step, and the analysis of the exported image must
//! count exactly the bytes no path of the final filesystem shows.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Steps and the bytes they waste: 5000 (a file replaced by a symlink), 6000 (a file replaced
/// by a directory), 7000 + 8000 (a directory tree replaced by a file), 9000 (a directory removed
/// and made again, its old contents gone), 10000 (a plain delete). Not waste: a deleted name
/// whose data a hard link still shows (20000), a directory whose mode changed (30000), a file
/// deleted in the layer that made it (40000, never in any layer).
const RECIPE: &str = r#"# {{ cell.id }}: waste of every kind.
FROM {{ distro.base }}:{{ arch.name }}
RUN head -c 5000 /dev/zero > /to-symlink && head -c 6000 /dev/zero > /to-dir && \
    mkdir -p /tree/sub && head -c 7000 /dev/zero > /tree/a && head -c 8000 /dev/zero > /tree/sub/b && \
    mkdir -p /again && head -c 9000 /dev/zero > /again/old && head -c 10000 /dev/zero > /deleted && \
    head -c 20000 /dev/zero > /linked && ln /linked /link2 && \
    mkdir -p /kept && head -c 30000 /dev/zero > /kept/data && \
    head -c 40000 /dev/zero > /gone-at-once && rm /gone-at-once
RUN rm /to-symlink && ln -s /bin/busybox /to-symlink && \
    rm /to-dir && mkdir /to-dir && echo x > /to-dir/note && \
    rm -rf /tree && echo y > /tree && \
    rm -rf /again && mkdir /again && echo z > /again/new && \
    rm /deleted && rm /linked && chmod 700 /kept
"#;

#[test]
fn wasted_bytes_of_layers_an_engine_wrote() {
    for builder in ["on", "off"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fixture_config(
            d,
            &format!("test-wasted-{builder}-{}", std::process::id()),
            &unix_engine_toml("unix", &["amd64"]),
            &fixture_distro("fixture-waste", &[]),
            "distros = [\"fixture-waste\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
        );
        let templates = d.join("templates");
        std::fs::create_dir_all(templates.join("apk")).unwrap();
        std::fs::write(templates.join("apk/base.Dockerfile.j2"), RECIPE).unwrap();
        let cfg = d.join("config.toml");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(
                &fixtures.display().to_string(),
                &templates.display().to_string(),
            )
            .replace("[build]\n", &format!("[build]\nbuildkit = \"{builder}\"\n"));
        std::fs::write(&cfg, text).unwrap();
        let run = |args: &[&str]| {
            let o = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
                .arg("--config")
                .arg(&cfg)
                .args(args)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "buildkit={builder} {args:?}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            o.stdout
        };
        run(&["build", "--no-cache", "fixture-waste/opam/amd64"]);
        let out = run(&[
            "sizes",
            "--wasted",
            "fixture-waste/opam/amd64",
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let w = &v["waste"];
        assert_eq!(
            w["wasted"],
            5000 + 6000 + 7000 + 8000 + 9000 + 10000,
            "buildkit={builder}: {v}"
        );
        let mut files: Vec<(String, u64)> = w["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["wasted"].as_u64().unwrap(),
                )
            })
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                ("again/old".to_string(), 9000),
                ("deleted".to_string(), 10000),
                ("to-dir".to_string(), 6000),
                ("to-symlink".to_string(), 5000),
                ("tree/a".to_string(), 7000),
                ("tree/sub/b".to_string(), 8000),
            ],
            "buildkit={builder}: {v}"
        );
    }
}
