//! The module layers of `src/`, enforced: every `crate::` path in a module's sources must
//! name a module of a lower layer (or its own). The order is the one `src/lib.rs` declares
//! and docs/architecture.md draws; a new top-level module must be placed in it here.

use std::path::{Path, PathBuf};

/// Bottom to top. A module may import from any module before it in this list, and from
/// none after it. Modules on one line of docs/architecture.md are still ordered here, so
/// that siblings cannot form a cycle either.
const LAYERS: &[&str] = &[
    "util",
    "logs",
    "model",
    "config",
    "causes",
    "inputs",
    "plan",
    "matrix",
    "dockerfile",
    "engine",
    "store",
    "sizes",
    "scheduler",
    "publish",
    "why",
    "session",
    "progress",
    "ui",
    "cli",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/ui/draw/grid.rs` -> `ui`), None for the
/// crate root files.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    if rel.components().count() == 1 {
        let stem = first.trim_end_matches(".rs");
        return (stem != "lib" && stem != "main").then(|| stem.to_string());
    }
    Some(first)
}

/// Every `crate::NAME` in a line, outside `//` comments (doc links included: a doc link
/// upward is a dependency a reader follows too).
fn crate_refs(line: &str) -> Vec<String> {
    let code = match line.find("//") {
        Some(i)
            if !line.trim_start().starts_with("///") && !line.trim_start().starts_with("//!") =>
        {
            &line[..i]
        }
        _ => line,
    };
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `$crate::` and `imagegrid_crate::` are not ours.
        if !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && !name.is_empty()
        {
            out.push(name);
        }
        rest = after;
    }
    out
}

/// `use super::super::x` cannot climb out of a top-level module without naming `crate`,
/// so `crate::` paths are the only cross-module edges.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in &files {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let Some(mine) = rank(&module) else {
            bad.push(format!(
                "{}: module `{module}` is not in the layer list of tests/layering.rs",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in crate_refs(line) {
                match rank(&target) {
                    Some(r) if r > mine => bad.push(format!(
                        "{}:{}: `{module}` imports `crate::{target}`, a higher layer",
                        file.display(),
                        n + 1
                    )),
                    Some(_) => {}
                    None => bad.push(format!(
                        "{}:{}: `crate::{target}` is not a module in the layer list",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    bad
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn lib_rs_declares_the_layers_in_order() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert_eq!(
        declared, LAYERS,
        "src/lib.rs must declare the modules in layer order"
    );
}

#[test]
fn the_check_catches_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "//! see [`crate::ui`] for who reads this\nuse crate::model::x;\nfn f() { crate::cli::human_size(1); } // crate::ui in a comment\n",
    )
    .unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod store;\n").unwrap();
    let bad = violations(&src);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].ends_with("store/mod.rs:1: `store` imports `crate::ui`, a higher layer"));
    assert!(bad[1].ends_with("store/mod.rs:3: `store` imports `crate::cli`, a higher layer"));
}
