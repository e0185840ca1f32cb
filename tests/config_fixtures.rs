//! Config fixtures: every file in tests/configs/valid loads; every file in
//! tests/configs/invalid fails with exactly the error pinned in its `.err` file
//! (file:line:column: key: message). Set UPDATE_CONFIG_FIXTURES=1 to rewrite the pins.

use std::path::{Path, PathBuf};

use imagegrid::config;
use imagegrid::matrix::Matrix;

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new("tests/configs").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {dir}");
    v
}

fn load(path: &Path) -> Result<Matrix, String> {
    let loaded = config::load_file(path).map_err(|e| e.to_string())?;
    Matrix::from_config(&loaded).map_err(|e| e.to_string())
}

#[test]
fn valid_configs_load() {
    for p in files("valid") {
        let m = load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!m.cells.is_empty(), "{} has no cells", p.display());
    }
}

#[test]
fn example_config_is_valid() {
    let m = load(Path::new("config.example.toml")).unwrap();
    assert!(m.cell("debian-13/5.4/arm64").is_some());
    assert!(
        m.cell("alpine-3.24/4.14/amd64").is_none(),
        "excluded by the example"
    );
}

#[test]
fn invalid_configs_fail_with_pinned_errors() {
    let update = std::env::var_os("UPDATE_CONFIG_FIXTURES").is_some();
    for p in files("invalid") {
        let err = match load(&p) {
            Ok(_) => panic!("{} loaded but should fail", p.display()),
            Err(e) => e,
        };
        let pin = p.with_extension("err");
        if update {
            std::fs::write(&pin, format!("{err}\n")).unwrap();
            continue;
        }
        let want =
            std::fs::read_to_string(&pin).unwrap_or_else(|_| panic!("missing {}", pin.display()));
        assert_eq!(err, want.trim_end(), "{}", p.display());
        // Every error names the file and a position.
        assert!(err.starts_with(&format!("{}:", p.display())), "{err}");
    }
}

#[test]
fn secrets_never_echoed() {
    let err = load(Path::new("tests/configs/invalid/password_endpoint.toml")).unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = config::load_file(Path::new("tests/configs/nope.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tests/configs/nope.toml") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn keybindings_doc_matches_the_keymap() {
    let doc = std::fs::read_to_string("docs/keybindings.md").unwrap();
    assert_eq!(
        doc,
        imagegrid::ui::keymap::markdown(),
        "docs/keybindings.md drifted: run `imagegrid keys > docs/keybindings.md`"
    );
}

#[test]
fn config_reference_matches_the_example() {
    let example = std::fs::read_to_string("config.example.toml").unwrap();
    let doc = std::fs::read_to_string("docs/config.md").unwrap();
    assert_eq!(
        doc,
        imagegrid::config::reference::markdown(&example),
        "docs/config.md drifted: run `imagegrid config-reference > docs/config.md`"
    );
}

/// The field names a table accepts, read from the loader's own "unknown field" message.
fn accepted_fields(table_prefix: &str) -> Vec<String> {
    let text = format!("{table_prefix}\nzz_not_a_key = 1\n");
    let err = config::parse("probe.toml", &text).unwrap_err().message;
    let list = err
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| err.split("expected ").nth(1).unwrap_or(""));
    list.split([','])
        .flat_map(|p| p.split(" or "))
        .map(|f| f.trim_matches(|c| c == '`' || c == ' ').to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

#[test]
fn every_config_key_is_documented_in_the_example() {
    let example = std::fs::read_to_string("config.example.toml").unwrap();
    let documented = imagegrid::config::reference::keys(&example);
    for (prefix, table) in [
        ("[[engine]]\nname = \"x\"", "[[engine]]"),
        ("[matrix]", "[matrix]"),
        ("[[distro]]\nname = \"debian-13\"", "[[distro]]"),
        ("[build]", "[build]"),
        ("[tags]", "[tags]"),
        ("[paths]", "[paths]"),
        ("[sizes]", "[sizes]"),
        ("[inputs]", "[inputs]"),
        ("[publish]", "[publish]"),
    ] {
        let fields = accepted_fields(prefix);
        assert!(!fields.is_empty(), "no fields read for {table}");
        for f in fields {
            let d = documented.iter().find(|d| d.table == table && d.key == f);
            let d = d.unwrap_or_else(|| panic!("{table} {f} is not in config.example.toml"));
            assert!(
                !d.doc.is_empty(),
                "{table} {f} has no comment in config.example.toml"
            );
        }
    }
    // The keys of an engine's `tls = { ... }`, each named in the comment above `tls`.
    let err = config::parse(
        "probe.toml",
        "[[engine]]\nname = \"x\"\ntls = { zz_not_a_key = 1 }\n",
    )
    .unwrap_err()
    .message;
    let tls_keys: Vec<&str> = err
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("no field list in {err:?}"))
        .split(',')
        .map(|f| f.trim_matches(|c| c == '`' || c == ' '))
        .filter(|f| !f.is_empty())
        .collect();
    assert!(tls_keys.len() >= 4, "{err}");
    let tls = documented
        .iter()
        .find(|d| d.table == "[[engine]]" && d.key == "tls")
        .expect("[[engine]] tls is in config.example.toml");
    for k in tls_keys {
        assert!(
            tls.doc.contains(&format!("`{k}`")),
            "[[engine]] tls.{k} is not named in the comment above `tls`: {:?}",
            tls.doc
        );
    }
}
