//! `sizes --compare-single-stage` builds whatever the multi-stage recipe builds: the rewrite
//! of every recipe shape in the built-in templates and the test fixtures is checked (one stage,
//! no COPY from a stage left, shell that parses), and a multi-stage recipe with every shape of
//! `COPY --from` (same path, directories, several sources, globs, --chown, --chmod,
//! stage names and indexes, a USER in the final stage) is built both ways on the test engine.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use imagegrid::config::TagConfig;
use imagegrid::dockerfile::Renderer;
use imagegrid::matrix::{Level, Matrix};
use imagegrid::sizes::single_stage;

/// The shell of each rewritten copy parses; nothing copies from a stage any more.
fn check_rewrite(id: &str, multi: &str) {
    let single = single_stage(multi).unwrap_or_else(|e| panic!("{id}: {e}"));
    let froms = single
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("from "))
        .count();
    assert_eq!(froms, 1, "{id}:\n{single}");
    assert!(
        !single
            .lines()
            .any(|l| l.starts_with("COPY --from=opam-builder")
                || l.starts_with("COPY --from=builder")),
        "{id}:\n{single}"
    );
    let mut runs = 0;
    for line in single.lines() {
        if let Some(json) = line.strip_prefix("RUN [") {
            let argv: Vec<String> = serde_json::from_str(&format!("[{json}")).unwrap();
            assert_eq!(argv[..2], ["/bin/sh", "-c"]);
            let o = Command::new("sh")
                .args(["-n", "-c", &argv[2]])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{id}: {}\n{}",
                argv[2],
                String::from_utf8_lossy(&o.stderr)
            );
            runs += 1;
        }
    }
    let copies = multi
        .lines()
        .filter(|l| {
            l.trim_start()
                .to_ascii_uppercase()
                .starts_with("COPY --FROM=")
        })
        .count();
    assert_eq!(runs, copies, "{id}: one copy per COPY --from:\n{single}");
}

#[test]
fn every_template_shape_rewrites_to_one_stage_that_parses() {
    let m = Matrix::builtin();
    let r = Renderer::new(None);
    let mut n = 0;
    for c in m.cells.iter().filter(|c| c.level == Level::Base) {
        let text = r.render(&m, c, None, &TagConfig::default()).unwrap();
        check_rewrite(&c.id, &text);
        n += 1;
    }
    assert!(n > 10, "{n} base cells");
    // The test fixtures' recipe, with every quirk that changes its shape.
    let dir = tempfile::tempdir().unwrap();
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let config = format!(
        "[[engine]]\nname = \"e\"\nendpoint = \"unix:///nonexistent.sock\"\narches = [\"amd64\"]\n\
         [matrix]\ndistros = [\"fixture\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]\n\
         [[distro]]\nname = \"fixture\"\nbase = \"busybox\"\nfamily = \"apk\"\ntier = 3\narches = [\"amd64\"]\n\
         quirks = [\"fail\", \"sleep-1\", \"ticks\", \"lines-3\", \"grow-10\", \"toolchain-10\", \"extra-10\", \"waste-10\", \"note-x\"]\n\
         [paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        dir.path().display(),
        templates.display()
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let loaded = imagegrid::config::load_file(&path).unwrap();
    let m = Matrix::from_config(&loaded).unwrap();
    let r = Renderer::new(loaded.templates_dir().as_deref());
    let cell = m.cell("fixture/opam/amd64").unwrap();
    let text = r.render(&m, cell, None, &loaded.config.tags).unwrap();
    check_rewrite(&cell.id, &text);
}

/// The recipe of field case F10 and every other shape, built as one stage and as many.
const RECIPE: &str = r#"# {{ cell.id }}: every shape of COPY --from.
FROM {{ distro.base }}:{{ arch.name }} AS builder
RUN mkdir -p /opt/tool/bin /out/sub /lib/extra && \
    head -c 3000 /dev/zero > /opt/tool/bin/tool && \
    head -c 1000000 /dev/zero > /opt/tool/junk && \
    echo a > /out/a && echo b > /out/b && echo c > /out/sub/c && echo h > /out/.hidden && \
    echo x > /lib/extra/x.so && echo y > /lib/extra/y.so
FROM {{ distro.base }}:{{ arch.name }} AS second
RUN echo second > /second
FROM {{ distro.base }}:{{ arch.name }}
WORKDIR /work
USER 65534:65534
COPY --from=builder /opt/tool/bin/tool /opt/tool/bin/tool
COPY --from=0 /opt/tool/bin/tool /opt/tool/bin/
COPY --from=builder /out/ /copy1/
COPY --from=builder /out /copy2
COPY --from=builder /out/a /out/b /several/
COPY --from=builder \
    /out/a \
    relative-a
COPY --from=1 ["/second", "/json/"]
COPY --from=builder /lib/extra/*.so /libs/
COPY --chown=65534:65534 --chmod=600 --from=builder /out/b /private-b
COPY --from=builder /opt/tool/bin /opt/tool/bin
RUN test -s /opt/tool/bin/tool && test -f /copy1/sub/c && test -f /copy2/.hidden && \
    test -f /several/b && test -f /work/relative-a && test -f /json/second && \
    test -f /libs/y.so && test "$(stat -c %u /private-b)" = 65534 && test ! -e /copy1/out
"#;

#[test]
fn the_single_stage_rewrite_builds_on_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let staging = format!(
        "test-single-{}",
        d.file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase()
            .replace(['.', '_'], "-")
    );
    fixture_config(
        d,
        &staging,
        &unix_engine_toml("unix", &["amd64"]),
        &fixture_distro("fixture-single", &[]),
        "distros = [\"fixture-single\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let templates = d.join("templates");
    std::fs::create_dir_all(templates.join("apk")).unwrap();
    std::fs::write(templates.join("apk/base.Dockerfile.j2"), RECIPE).unwrap();
    let cfg = d.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    std::fs::write(
        &cfg,
        text.replace(
            &fixtures.display().to_string(),
            &templates.display().to_string(),
        ),
    )
    .unwrap();
    for builder in ["on", "off"] {
        // The classic builder knows no --chmod (--link, which the test engines' built-in
        // frontend does not know either, is covered by the unit tests).
        let recipe = if builder == "on" {
            RECIPE.to_string()
        } else {
            RECIPE.replace("--chmod=600 ", "")
        };
        std::fs::write(templates.join("apk/base.Dockerfile.j2"), recipe).unwrap();
        let t = std::fs::read_to_string(&cfg).unwrap();
        let t = match t.find("buildkit = ") {
            Some(_) => t
                .replace("buildkit = \"on\"", &format!("buildkit = \"{builder}\""))
                .replace("buildkit = \"off\"", &format!("buildkit = \"{builder}\"")),
            None => t.replace("[build]\n", &format!("[build]\nbuildkit = \"{builder}\"\n")),
        };
        std::fs::write(&cfg, t).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
            .arg("--config")
            .arg(&cfg)
            .args([
                "sizes",
                "--compare-single-stage",
                "fixture-single/opam/amd64",
            ])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "buildkit={builder}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let size = |label: &str| -> u64 {
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("{out}"));
            imagegrid::sizes::parse_size(line.split_whitespace().nth(1).unwrap()).unwrap()
        };
        // The builder's junk stays in the single-stage image only (sizes are rounded to 0.1 kB+).
        assert!(
            size("single-stage") >= size("multi-stage") + 990_000,
            "buildkit={builder}: {out}"
        );
    }
}
