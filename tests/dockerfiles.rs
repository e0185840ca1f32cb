//! Dockerfile generation: snapshots per package-manager family, structure checks over
//! every cell of the default matrix, determinism, cache keys and user template overrides.

use imagegrid::config::{NetworkMode, TagConfig};
use imagegrid::dockerfile::{KeyOptions, Renderer};
use imagegrid::matrix::{version_key, Level, Matrix};

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

/// One base and some compiler cells of each package-manager family, and every kind of
/// compiler cell: plain, variant (option package and, before 4.12, a package of its own),
/// dev (trunk) and its variants, beta, and the GCC >= 15 overlay. Each snapshot was checked
/// against the pipeline's dump of 2026-05-22, instruction for instruction.
#[test]
fn snapshot_one_cell_per_family_and_kind() {
    let m = Matrix::builtin();
    for id in [
        // Bases, one per family, and the distro quirks.
        "debian-13/opam/amd64",
        "alpine-3.23/opam/arm64",
        "fedora-44/opam/amd64",
        "opensuse-16.0/opam/amd64",
        "archlinux/opam/amd64",
        "ubuntu-26.04/opam/amd64",
        "centos-10/opam/amd64",
        "oraclelinux-10/opam/amd64",
        // Plain switches, with and without the zstd step.
        "debian-13/5.4/amd64",
        "debian-13/4.14/arm64",
        "alpine-3.23/5.4/amd64",
        "fedora-44/5.3/arm64",
        "opensuse-tumbleweed/5.4/amd64",
        "archlinux/5.2/amd64",
        // Dev (trunk) and beta switches: the beta repository first.
        "debian-13/5.5/amd64",
        "debian-13/5.6/riscv64",
        "debian-13/5.5-beta1/arm64",
        // Variants: an option package, trunk's, a beta's, and a package of its own (4.11).
        "debian-13/5.4-flambda/amd64",
        "debian-13/5.6-afl/arm64",
        "alpine-3.23/5.5-beta1-no-flat-float-array/amd64",
        "debian-13/4.11-fp/amd64",
        // The GCC >= 15 overlay: old compilers on distros whose gcc is 15 or newer.
        "fedora-44/4.14/amd64",
        "ubuntu-26.04/4.11/s390x",
        "alpine-3.23/4.14-flambda-fp/amd64",
        // The opam source-archive image.
        "debian-13/archive/amd64",
    ] {
        insta::assert_snapshot!(id.replace(['/', '.'], "_"), render(&m, id));
    }
}

/// The instructions of a Dockerfile (comments and blank lines left out, heredoc bodies part
/// of their instruction).
fn instructions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut heredoc: Option<String> = None;
    for line in text.lines() {
        if let Some(end) = &heredoc {
            let last = out.last_mut().unwrap();
            last.push('\n');
            last.push_str(line);
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((_, rest)) = line.split_once("<<-") {
            heredoc = Some(rest.split_whitespace().next().unwrap().to_string());
        }
        out.push(line.to_string());
    }
    assert!(heredoc.is_none(), "unterminated heredoc:\n{text}");
    out
}

#[test]
fn every_cell_renders_with_the_right_shape() {
    let m = Matrix::builtin();
    let r = Renderer::new(None);
    let branches = &m.catalog.opam.branches;
    for c in &m.cells {
        let text = r
            .render(&m, c, None, &TagConfig::default())
            .unwrap_or_else(|e| panic!("{}: {e}", c.id));
        assert!(
            text.starts_with(&format!("# syntax=docker/dockerfile:1\n# {}", c.id)),
            "{}: the frontend directive first, then a header naming the cell",
            c.id
        );
        assert!(!text.contains(" \n"), "{}: trailing whitespace", c.id);
        assert!(!text.contains("\n\n\n"), "{}: runs of blank lines", c.id);
        let ins = instructions(&text);
        let froms: Vec<&String> = ins.iter().filter(|l| l.starts_with("FROM ")).collect();
        let distro = m.distro(&c.distro).unwrap();
        match c.level {
            Level::Base => {
                // Stage 0 is unnamed; the final stage starts from the same image.
                let from = format!("FROM {}", distro.base);
                assert_eq!(froms, [&from, &from], "{}", c.id);
                assert!(ins[1].starts_with("LABEL distro_style="), "{}", c.id);
                let copies: Vec<&String> = ins
                    .iter()
                    .filter(|l| l.starts_with("COPY --from=0 "))
                    .collect();
                assert_eq!(copies.len(), branches.len(), "{}: one COPY per opam", c.id);
                for b in branches {
                    assert!(
                        copies
                            .iter()
                            .any(|l| l.ends_with(&format!("\"/usr/bin/opam-{}\" ]", b.name))),
                        "{}: opam-{}",
                        c.id,
                        b.name
                    );
                }
                let final_stage = text.rsplit("\nFROM ").next().unwrap();
                assert!(
                    !final_stage.contains("bootstrap-ocaml"),
                    "{}: the bootstrap compiler stays behind",
                    c.id
                );
                assert!(
                    ins.contains(&"RUN ln /usr/bin/opam-2.1 /usr/bin/opam".to_string()),
                    "{}",
                    c.id
                );
                // opam-repository comes from the build context, not from the network.
                assert!(
                    ins.contains(
                        &"COPY --link --chown=opam:opam [ \".\", \"/home/opam/opam-repository\" ]"
                            .to_string()
                    ),
                    "{}",
                    c.id
                );
                assert!(!text.contains("opam-repository /home"), "{}", c.id);
                assert_eq!(
                    ins.last().unwrap(),
                    "COPY --link [ \"Dockerfile\", \"/Dockerfile.opam\" ]",
                    "{}",
                    c.id
                );
            }
            Level::Archive => {
                let base = m.cell(&c.base_id().unwrap()).unwrap();
                assert!(
                    ins.contains(&format!(
                        "FROM {} AS archive",
                        base.staging_tag(&TagConfig::default())
                    )),
                    "{}",
                    c.id
                );
                assert_eq!(froms.len(), 4, "{}", c.id);
            }
            Level::Compiler => {
                let base = m
                    .cell(&c.base_id().unwrap())
                    .expect("compiler cells have their base");
                assert_eq!(
                    froms,
                    [&format!("FROM {}", base.staging_tag(&TagConfig::default()))],
                    "{}",
                    c.id
                );
                let o = m.ocaml(c.version.as_deref().unwrap()).unwrap();
                let (packages, pin, pin_version) = o.packages();
                let switch = format!(
                    "RUN opam switch create {} --packages={packages}",
                    o.switch_name()
                );
                let at = ins
                    .iter()
                    .position(|l| *l == switch)
                    .unwrap_or_else(|| panic!("{}: no `{switch}`:\n{text}", c.id));
                assert_eq!(
                    ins[at + 1],
                    format!("RUN opam pin add -k version {pin} {pin_version}"),
                    "{}",
                    c.id
                );
                // Extra repositories come straight after FROM, before the environment.
                let repos: Vec<&String> = ins
                    .iter()
                    .take_while(|l| !l.starts_with("ENV "))
                    .filter(|l| l.starts_with("RUN opam repo add "))
                    .collect();
                let want = usize::from(o.dev || o.beta)
                    + usize::from(distro.gcc.unwrap() >= 15 && version_key(&o.version) < (5, 1, 0));
                assert_eq!(repos.len(), want, "{}: {repos:?}", c.id);
                assert!(
                    ins.iter().any(|l| l.contains("zstd"))
                        == (version_key(&o.version) >= (5, 1, 0)),
                    "{}: zstd from 5.1",
                    c.id
                );
                assert_eq!(
                    &ins[ins.len() - 3..],
                    [
                        "ENTRYPOINT [ \"opam\", \"exec\", \"--\" ]",
                        "CMD bash",
                        "COPY --link [ \"Dockerfile\", \"/Dockerfile.ocaml\" ]"
                    ],
                    "{}",
                    c.id
                );
            }
        }
    }
}

/// The rules of the dump (DOMAIN.md 1.2, 1.4, 1.5), written out here rather than read from
/// the catalog, so a wrong catalog fact fails.
#[test]
fn matrix_rules_hold() {
    let m = Matrix::builtin();
    assert_eq!(
        m.cells.len(),
        49 + 532 + 1,
        "the dump's Linux base and compiler jobs, and the archive"
    );
    let archives: Vec<&str> = m
        .cells
        .iter()
        .filter(|c| c.level == Level::Archive)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        archives,
        ["debian-13/archive/amd64"],
        "on the master distro"
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
        if c.level != Level::Compiler {
            continue;
        }
        let v = c.version.as_deref().unwrap();
        let o = m.ocaml(v).unwrap();
        let Some(variant) = o.variant.as_deref() else {
            continue;
        };
        // Variants: tier-1 distros only (debian-13 and alpine).
        assert!(
            ["debian-13", "alpine-3.23"].contains(&c.distro.as_str()),
            "{}: variants are for tier 1",
            c.id
        );
        let five = version_key(v) >= (5, 0, 0);
        let arch = c.arch.as_str();
        match variant {
            "flambda" | "afl" => assert!(
                !five || ["amd64", "arm64"].contains(&arch),
                "{}: 5.x {variant} is amd64 and arm64 only",
                c.id
            ),
            "fp" => assert!(!five && arch == "amd64", "{}", c.id),
            "flambda-fp" | "nnpchecker" => assert!(
                !five && arch == "amd64" && version_key(v) >= (4, 12, 0),
                "{}",
                c.id
            ),
            "nnp" => assert!(!five && version_key(v) >= (4, 12, 0), "{}", c.id),
            "no-flat-float-array" => assert!(version_key(v) >= (4, 12, 0), "{}", c.id),
            other => panic!("{}: unknown variant {other}", c.id),
        }
    }
    // No flambda for 5.x on ppc64le; fp only on amd64; no-flat-float-array everywhere.
    assert!(m.cell("debian-13/5.4-flambda/ppc64le").is_none());
    assert!(m.cell("debian-13/4.14-flambda/ppc64le").is_some());
    assert!(m.cell("debian-13/4.14-fp/arm64").is_none());
    assert!(m
        .cell("debian-13/5.4-no-flat-float-array/riscv64")
        .is_some());
    assert!(m.cell("debian-13/4.11-no-flat-float-array/amd64").is_none());
    assert!(m.cell("ubuntu-26.04/5.4-flambda/amd64").is_none(), "tier 2");
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
        m.cell("debian-12/5.4/s390x").is_some(),
        "debian:12 still had s390x on 2026-05-22"
    );
    assert!(m.cell("ubuntu-22.04/4.11/riscv64").is_some());
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
