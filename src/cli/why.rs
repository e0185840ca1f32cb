//! `imagegrid why CELL... [--json]`: is each cell stale, and why, most specific first
//! ([`crate::why::recorded::explain`]). The moving refs are resolved as a build would
//! (again when older than `[inputs] refresh`), so a ref that moved upstream is named; so
//! are the upstream images' registry digests (`[build] check_upstream`).

use std::sync::Arc;

use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::inputs::InputSources;
use crate::matrix::Matrix;
use crate::model::inputs::{Needs, OPAM_REFS};
use crate::scheduler::RunOptions;
use crate::why::recorded::{explain, load_history};

use super::report::open_store;
use super::{Exit, EXIT_FAILED};

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
        eprintln!("imagegrid: {e} (its last resolution is used)");
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
