//! Planning: a selection of cells becomes the builds it needs, bases first. Given the
//! history's last successes (to reuse a base built earlier from the same inputs); renders
//! templates (for the inputs hashes), so callers run it off any event loop.

use std::collections::{HashMap, HashSet};

use super::{RunOptions, Scheduler};
use crate::dockerfile::Renderer;
use crate::matrix::{Cell, Level, Matrix};
use crate::store::BuildRecord;

/// One cell to build, with what it needs.
#[derive(Debug, Clone)]
pub struct PlannedCell {
    pub cell: Cell,
    pub inputs: String,
    pub platform: String,
    pub tag: String,
    /// A base image from an earlier run: (engine name, image id).
    pub prebuilt_base: Option<(String, String)>,
    /// Build without the engine's layer cache.
    pub no_cache: bool,
}

impl Scheduler {
    /// Turn selected cells into a plan: compute inputs, add each compiler cell's base unless a
    /// successful earlier build of it can be reused (same inputs), and order bases first.
    /// `last_ok` is the history's last success of each cell
    /// ([`crate::store::Store::last_success_per_cell`]).
    pub fn plan(
        matrix: &Matrix,
        renderer: &Renderer,
        last_ok: &HashMap<String, BuildRecord>,
        opts: &RunOptions,
        cells: &[&Cell],
    ) -> Result<Vec<PlannedCell>, String> {
        let mut wanted: Vec<Cell> = Vec::new();
        let mut seen = HashSet::new();
        let mut prebuilt: HashMap<String, (String, String)> = HashMap::new();
        for c in cells {
            if let Some(base_id) = c.base_id() {
                if !cells.iter().any(|x| x.id == base_id)
                    && !prebuilt.contains_key(&base_id)
                    && !seen.contains(&base_id)
                {
                    let base = matrix.cell(&base_id).ok_or_else(|| {
                        format!("cell {} has no base cell {base_id} in the matrix", c.id)
                    })?;
                    let inputs = renderer
                        .inputs(matrix, base, opts.key_options(), &opts.tags)
                        .map_err(|e| e.to_string())?;
                    match last_ok.get(&base_id) {
                        Some(r) if r.inputs == inputs.hash && r.image_id.is_some() => {
                            prebuilt.insert(
                                base_id.clone(),
                                (r.engine.clone(), r.image_id.clone().unwrap_or_default()),
                            );
                        }
                        _ => {
                            seen.insert(base_id.clone());
                            wanted.push(base.clone());
                        }
                    }
                }
            }
            if seen.insert(c.id.clone()) {
                wanted.push((*c).clone());
            }
        }
        // Bases first, in matrix order, so that dependants find them done or running.
        wanted.sort_by_key(|c| {
            (
                c.level == Level::Compiler,
                matrix.cells.iter().position(|x| x.id == c.id),
            )
        });
        wanted
            .into_iter()
            .map(|cell| {
                let inputs = renderer
                    .inputs(matrix, &cell, opts.key_options(), &opts.tags)
                    .map_err(|e| format!("{}: {e}", cell.id))?;
                let platform = matrix
                    .arch(&cell.arch)
                    .map(|a| a.platform.clone())
                    .unwrap_or_default();
                let tag = cell.staging_tag(&opts.tags);
                let prebuilt_base = cell.base_id().and_then(|b| prebuilt.get(&b).cloned());
                Ok(PlannedCell {
                    cell,
                    inputs: inputs.hash,
                    platform,
                    tag,
                    prebuilt_base,
                    no_cache: opts.no_cache,
                })
            })
            .collect()
    }
}
