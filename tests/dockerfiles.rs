//! Dockerfile generation: snapshots per package-manager family, structure checks over
//! every cell of the default matrix, determinism, cache keys and user template overrides.

use imagegrid::config::{NetworkMode, TagConfig};
use imagegrid::dockerfile::{KeyOptions, Renderer};
use imagegrid::matrix::{Level, Matrix};

fn render(m: &Matrix, id: &str) -> String {
    let r = Renderer::new(None);
    r.render(
        m,
        m.cell(id).unwrap_or_else(|| panic!("no cell {id}")),
        None,
        &TagConfig::default(),
    )
    .unwrap()
}

#[test]
fn snapshot_one_cell_per_family() {
    let m = Matrix::builtin();
    for id in [
        "debian-13/opam/amd64",
        "alpine-3.24/opam/arm64",
        "fedora-44/opam/amd64",
        "opensuse-16.0/opam/amd64",
        "archlinux/opam/amd64",
        "ubuntu-26.04/opam/amd64",
        "centos-10/opam/amd64",
        "debian-13/5.4/amd64",
        "debian-13/4.14/arm64",
        "debian-13/5.5/amd64",
        "alpine-3.24/5.4/amd64",
        "fedora-44/5.3/arm64",
        "opensuse-tumbleweed/5.4/amd64",
        "archlinux/5.2/amd64",
    ] {
        insta::assert_snapshot!(id.replace(['/', '.'], "_"), render(&m, id));
    }
}

#[test]
fn every_cell_renders_with_the_right_shape() {
    let m = Matrix::builtin();
    let r = Renderer::new(None);
    for c in &m.cells {
        let text = r
            .render(&m, c, None, &TagConfig::default())
            .unwrap_or_else(|e| panic!("{}: {e}", c.id));
        assert!(
            text.starts_with(&format!("# {}", c.id)),
            "{}: header names the cell",
            c.id
        );
        let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
        // Engine 20.10's built-in frontend rejects these without a syntax directive (which would need a registry).
        for banned in ["<<EOF", "<<'", "--link", "# syntax", "--mount"] {
            assert!(!text.contains(banned), "{}: uses {banned}", c.id);
        }
        assert!(!text.contains(" \n"), "{}: trailing whitespace", c.id);
        assert!(!text.contains("\n\n\n"), "{}: runs of blank lines", c.id);
        assert!(
            !text.contains("\\\n\n"),
            "{}: continuation into a blank line",
            c.id
        );
        match c.level {
            Level::Base => {
                assert!(froms >= 2, "{}: base images are multi-stage", c.id);
                assert!(
                    text.contains("COPY --from=opam-builder"),
                    "{}: final stage copies from the builder",
                    c.id
                );
                let final_stage = text.rsplit("\nFROM ").next().unwrap();
                assert!(
                    !final_stage.contains("bootstrap-ocaml"),
                    "{}: the bootstrap compiler stays behind",
                    c.id
                );
                assert!(text.contains("/Dockerfile.opam"), "{}", c.id);
            }
            Level::Archive => unreachable!("the built-in catalog has no archive cell"),
            Level::Compiler => {
                assert_eq!(froms, 1, "{}", c.id);
                let base = m
                    .cell(&c.base_id().unwrap())
                    .expect("compiler cells have their base");
                assert!(
                    text.contains(&format!("FROM {}", base.staging_tag(&TagConfig::default()))),
                    "{}",
                    c.id
                );
                assert!(text.contains("/Dockerfile.ocaml"), "{}", c.id);
            }
        }
    }
}

#[test]
fn matrix_rules_hold() {
    let m = Matrix::builtin();
    assert!(
        m.cells.len() > 200,
        "the default matrix is the real one ({} cells)",
        m.cells.len()
    );
    for c in &m.cells {
        if let Some(b) = c.base_id() {
            assert!(m.cell(&b).is_some(), "{} has no base", c.id);
        }
        assert!(
            !(c.distro.starts_with("alpine") && c.arch == "riscv64"),
            "{}",
            c.id
        );
        assert!(
            !c.distro.starts_with("fedora") || ["amd64", "arm64"].contains(&c.arch.as_str()),
            "{}",
            c.id
        );
        assert!(
            !(c.distro == "ubuntu-26.04" && c.arch == "riscv64"),
            "{}",
            c.id
        );
        assert!(
            !["i386", "arm32v7"].contains(&c.arch.as_str()),
            "{}: off by default",
            c.id
        );
    }
    // Tier 3 distros are amd64 only; Debian 13 has all five default arches.
    for d in ["archlinux", "centos-10", "oraclelinux-10", "debian-testing"] {
        assert!(
            m.cells
                .iter()
                .filter(|c| c.distro == d)
                .all(|c| c.arch == "amd64"),
            "{d}"
        );
    }
    for a in ["amd64", "arm64", "ppc64le", "s390x", "riscv64"] {
        assert!(m.cell(&format!("debian-13/5.4/{a}")).is_some(), "{a}");
    }
    assert!(
        m.cell("debian-12/5.4/s390x").is_none(),
        "debian:12 lost s390x"
    );
}

#[test]
fn output_and_keys_are_deterministic() {
    let m = Matrix::builtin();
    let r = Renderer::new(None);
    let opts = KeyOptions {
        network: NetworkMode::Default,
    };
    let c = m.cell("debian-13/5.4/arm64").unwrap();
    let a = r.inputs(&m, c, opts, &TagConfig::default()).unwrap();
    let b = r.inputs(&m, c, opts, &TagConfig::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.hash.len(), 64);
    // Build options are part of the key.
    let host = r
        .inputs(
            &m,
            c,
            KeyOptions {
                network: NetworkMode::Host,
            },
            &TagConfig::default(),
        )
        .unwrap();
    assert_ne!(a.hash, host.hash);
    // Each arch has its own key.
    let amd = r
        .inputs(
            &m,
            m.cell("debian-13/5.4/amd64").unwrap(),
            opts,
            &TagConfig::default(),
        )
        .unwrap();
    assert_ne!(a.hash, amd.hash);
}

#[test]
fn user_templates_override_and_change_keys() {
    let m = Matrix::builtin();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("apt")).unwrap();
    let opts = KeyOptions {
        network: NetworkMode::Default,
    };
    let builtin = Renderer::new(None);
    let base = m.cell("debian-13/opam/amd64").unwrap();
    let compiler = m.cell("debian-13/5.4/amd64").unwrap();
    let before_base = builtin
        .inputs(&m, base, opts, &TagConfig::default())
        .unwrap()
        .hash;
    let before_compiler = builtin
        .inputs(&m, compiler, opts, &TagConfig::default())
        .unwrap()
        .hash;

    std::fs::write(dir.path().join("apt/base.Dockerfile.j2"), "# {{ cell.id }}\nFROM {{ distro.base }} AS opam-builder\nFROM {{ distro.base }}\nCOPY --from=opam-builder /x /x\n").unwrap();
    let custom = Renderer::new(Some(dir.path()));
    assert!(custom
        .render(&m, base, None, &TagConfig::default())
        .unwrap()
        .starts_with("# debian-13/opam/amd64\nFROM debian:13 AS opam-builder"));
    assert!(custom
        .origin("apt/base.Dockerfile.j2")
        .ends_with("apt/base.Dockerfile.j2"));
    assert_eq!(
        custom.origin("apk/base.Dockerfile.j2"),
        "<built-in>/apk/base.Dockerfile.j2"
    );
    let after_base = custom
        .inputs(&m, base, opts, &TagConfig::default())
        .unwrap()
        .hash;
    let after_compiler = custom
        .inputs(&m, compiler, opts, &TagConfig::default())
        .unwrap()
        .hash;
    assert_ne!(before_base, after_base);
    // The compiler template did not change, but its base did: it is stale too.
    assert_ne!(before_compiler, after_compiler);
}

#[test]
fn template_errors_name_template_line_and_variable() {
    let m = Matrix::builtin();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("apt")).unwrap();
    std::fs::write(
        dir.path().join("apt/base.Dockerfile.j2"),
        "# ok\nFROM {{ distro.base }}\nRUN echo {{ distro.nonexistent }}\n",
    )
    .unwrap();
    let r = Renderer::new(Some(dir.path()));
    let e = r
        .render(
            &m,
            m.cell("debian-13/opam/amd64").unwrap(),
            None,
            &TagConfig::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("apt/base.Dockerfile.j2:3"), "{e}");
    assert!(e.contains("undefined"), "{e}");
    std::fs::write(
        dir.path().join("apt/base.Dockerfile.j2"),
        "FROM x\n{% if %}\n",
    )
    .unwrap();
    let r = Renderer::new(Some(dir.path()));
    let e = r
        .render(
            &m,
            m.cell("debian-13/opam/amd64").unwrap(),
            None,
            &TagConfig::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("apt/base.Dockerfile.j2:2"), "{e}");
}
