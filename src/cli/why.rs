//! `imagegrid why CELL... [--json]`: is each cell stale, and why, most specific first
//! ([`crate::why::recorded::explain`]). The moving refs are resolved as a build would
//! (again when older than `[inputs] refresh`), so a ref that moved upstream is named; so
//! are the upstream images' registry digests (`[build] check_upstream`).

use std::sync::Arc;

use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::inputs::{InputError, InputSources, OPAM, OPAM_REPOSITORY};
use crate::matrix::Matrix;
use crate::model::inputs::{Needs, Pins, OPAM_REFS};
use crate::scheduler::RunOptions;
use crate::why::recorded::{explain, load_history};

use super::report::open_store;
use super::{Exit, EXIT_FAILED};

/// The refusal of `why` without a selector: what to name instead (as `build` says it).
pub const NO_SELECTOR: &str = "name the cells to explain (e.g. `imagegrid why debian-13/5.4/amd64`); `imagegrid why '*'` explains every cell, and `imagegrid build --stale --dry-run` lists the stale ones in build order";

/// Refuse an empty selection (exit 2) before any config is read.
pub fn require_selectors(selectors: &[String]) -> Result<(), Exit> {
    if selectors.is_empty() {
        return Err(Exit::error(NO_SELECTOR));
    }
    Ok(())
}

/// What `why` goes on with after `e`, given the pins it has: the last resolution of that
/// input when there is one, else the moving refs themselves (a fresh data dir offline).
/// Empty for the cache file, which holds no input of its own.
fn after_input_error(e: &InputError, pins: &Pins) -> &'static str {
    let resolved = match e.input.as_str() {
        OPAM => OPAM_REFS.iter().all(|r| pins.opam.contains_key(*r)),
        OPAM_REPOSITORY => pins.opam_repository.is_some(),
        _ => return "",
    };
    if resolved {
        " (its last resolution is used)"
    } else {
        " (never resolved yet: the recipes name its moving refs, unpinned)"
    }
}

/// Print why each selected cell is stale. Exit 0 when none is, 1 when some is; 2 when a
/// selector is bad or selects nothing.
pub fn run(
    loaded: &LoadedConfig,
    m: &Matrix,
    selectors: &[String],
    json: bool,
    diff: bool,
) -> Result<u8, Exit> {
    let sels = m.parse_selectors(selectors)?;
    let cells = m.select(&sels);
    if cells.is_empty() {
        return Err(Exit::error(format!(
            "no cell matches {} (see `imagegrid matrix`)",
            selectors.join(" ")
        )));
    }
    let needs = Needs {
        opam_refs: OPAM_REFS.iter().map(|r| r.to_string()).collect(),
        opam_repository: true,
    };
    let (pins, errors) = InputSources::from_config(loaded).resolve(&needs, false);
    for e in &errors {
        eprintln!("imagegrid: {e}{}", after_input_error(e, &pins));
    }
    let renderer = Renderer::for_config(loaded).with_pins(Arc::new(pins));
    let history = load_history(&open_store(loaded)?)?;
    let opts = RunOptions::from_config(loaded);
    // The upstream images' registry digests (asked again when older than `[inputs]
    // refresh`): a moved one is a reason, an unknown one a note.
    let (up, unsaved) =
        super::runtime()?.block_on(crate::session::upstream::check(loaded, m, &renderer, false))?;
    if let Some(e) = unsaved {
        eprintln!("imagegrid: {e}");
    }
    let answers = explain(m, &renderer, &opts, &history, &up, &cells)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answers)?);
    } else {
        for a in &answers {
            if a.reasons.is_empty() {
                println!("{}: up to date", a.cell);
            }
            for (i, r) in a.reasons.iter().enumerate() {
                let head = if i == 0 { a.cell.as_str() } else { "" };
                println!("{head:<w$}  {}", r.detail, w = a.cell.len());
                if let Some(d) = r.diff.as_deref().filter(|_| diff) {
                    for line in d.lines() {
                        println!("    {line}");
                    }
                }
            }
            for n in &a.notes {
                println!("{:<w$}  note: {n}", a.cell, w = a.cell.len());
            }
        }
    }
    Ok(if answers.iter().any(|a| a.stale) {
        EXIT_FAILED
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inputs::ResolvedRef;

    fn error(input: &str) -> InputError {
        InputError {
            input: input.into(),
            url: "https://example.invalid/x".into(),
            message: "Could not resolve host".into(),
        }
    }

    fn resolved(r: &str) -> ResolvedRef {
        ResolvedRef {
            url: "https://example.invalid/x".into(),
            git_ref: r.into(),
            commit: "0".repeat(40),
            tag: None,
            resolved_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_fresh_data_dir_has_no_last_resolution_to_use() {
        let none = Pins::default();
        for input in [OPAM, OPAM_REPOSITORY] {
            let note = after_input_error(&error(input), &none);
            assert!(note.contains("never resolved yet"), "{input}: {note}");
        }
        let mut all = Pins::default();
        for r in OPAM_REFS {
            all.opam.insert(r.to_string(), resolved(r));
        }
        all.opam_repository = Some(resolved("master"));
        for input in [OPAM, OPAM_REPOSITORY] {
            let note = after_input_error(&error(input), &all);
            assert_eq!(note, " (its last resolution is used)", "{input}");
        }
        // One opam branch never resolved: the recipes naming it are not pinned.
        all.opam.remove(OPAM_REFS[0]);
        assert!(after_input_error(&error(OPAM), &all).contains("never resolved"));
        assert_eq!(after_input_error(&error("cache"), &Pins::default()), "");
    }

    #[test]
    fn no_selector_is_explained_like_build() {
        let e = require_selectors(&[]).unwrap_err();
        assert_eq!(e.code, crate::cli::EXIT_ERROR);
        assert!(e.message.contains("'*'") && e.message.contains("--stale"));
        assert!(require_selectors(&["*".into()]).is_ok());
    }
}
