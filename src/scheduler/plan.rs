//! Planning: a selection of cells becomes the builds it needs, bases first. Given the
//! history's last successes (to reuse a base built earlier from the same inputs); renders
//! templates (for the inputs hashes), so callers run it off any event loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{RunOptions, Scheduler};
use crate::dockerfile::features::{self, Features};
use crate::dockerfile::{RenderError, Renderer};
use crate::matrix::{Cell, Level, Matrix};
use crate::model::inputs::{Needs, Pins};
use crate::store::BuildRecord;

/// Why a selection cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A Windows cell: it builds only on an engine that reports OSType windows, and imagegrid
    /// routes builds to Linux engines only.
    #[error("{cell} is a Windows cell: it builds only on an engine that reports OSType windows, and imagegrid routes builds to Linux engines only; nothing is queued")]
    Windows { cell: String },
    /// A compiler cell's base cell is not in the matrix.
    #[error("cell {cell} has no base cell {base} in the matrix")]
    NoBase { cell: String, base: String },
    /// A cell's templates did not render (the error names the template and line).
    #[error("{cell}: {source}")]
    Render {
        cell: String,
        #[source]
        source: RenderError,
    },
}

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
    /// Ask the engine to pull its upstream image: `[build] pull`, or its upstream moved
    /// since its last success (set by the session).
    pub pull: bool,
    /// A base cell's upstream image (its first FROM), whose registry digest is recorded
    /// with its build (set by the session with `[build] check_upstream`).
    pub upstream: Option<String>,
    /// `build --same-inputs`: the recorded text to build (its base named as recorded,
    /// swapped for the base image at build time) instead of today's, and the build whose
    /// inputs it repeats.
    pub same_inputs: Option<SameInputs>,
    /// The pinned inputs it is built with (the renderer's at planning time; recorded with
    /// the build, and its text rendered with them).
    pub pins: Arc<Pins>,
    /// The pinned inputs its text uses.
    pub needs: Needs,
    /// What its text (as sent: see [`RunOptions::frontend`]) asks of the builder.
    pub features: Features,
    /// Why it must not start (an input it needs could not be resolved): it is ended as
    /// failed with this reason instead of being built.
    pub blocked: Option<String>,
}

/// What a same-inputs rebuild repeats ([`PlannedCell::same_inputs`]).
#[derive(Debug, Clone)]
pub struct SameInputs {
    /// The build whose inputs are used again.
    pub of_build: i64,
    /// Its recorded Dockerfile text.
    pub text: String,
    /// The reference its text names its base by (swapped for the base image), if any.
    pub base_ref: Option<String>,
    /// A base cell's upstream image and the digest the repeated build was made from: the
    /// text sent starts FROM `image@digest`, so the same upstream is used whatever the
    /// engine holds under the tag.
    pub upstream: Option<(String, String)>,
}

impl Scheduler {
    /// Turn selected cells into a plan: compute inputs, add each compiler cell's base unless a
    /// successful earlier build of it can be reused (same inputs), and order bases first.
    /// `last_ok` is the history's last success of each cell ([`crate::store::Store::last_success_per_cell`]).
    pub fn plan(
        matrix: &Matrix,
        renderer: &Renderer,
        last_ok: &HashMap<String, BuildRecord>,
        opts: &RunOptions,
        cells: &[&Cell],
    ) -> Result<Vec<PlannedCell>, PlanError> {
        // No engine here runs Windows containers: a Windows cell is never queued.
        if let Some(c) = cells.iter().find(|c| c.is_windows()) {
            return Err(PlanError::Windows { cell: c.id.clone() });
        }
        let mut wanted: Vec<Cell> = Vec::new();
        let mut seen = HashSet::new();
        let mut prebuilt: HashMap<String, (String, String)> = HashMap::new();
        for c in cells {
            if let Some(base_id) = c.base_id() {
                if !cells.iter().any(|x| x.id == base_id)
                    && !prebuilt.contains_key(&base_id)
                    && !seen.contains(&base_id)
                {
                    let base = matrix.cell(&base_id).ok_or_else(|| PlanError::NoBase {
                        cell: c.id.clone(),
                        base: base_id.clone(),
                    })?;
                    let inputs = renderer
                        .inputs(matrix, base, opts.key_options(), &opts.tags)
                        .map_err(|source| PlanError::Render {
                            cell: base_id.clone(),
                            source,
                        })?;
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
                c.level != Level::Base,
                matrix.cells.iter().position(|x| x.id == c.id),
            )
        });
        wanted
            .into_iter()
            .map(|cell| {
                let inputs = renderer
                    .inputs(matrix, &cell, opts.key_options(), &opts.tags)
                    .map_err(|source| PlanError::Render {
                        cell: cell.id.clone(),
                        source,
                    })?;
                let platform = matrix
                    .arch(&cell.arch)
                    .map(|a| a.platform.clone())
                    .unwrap_or_default();
                let tag = cell.staging_tag(&opts.tags);
                let prebuilt_base = cell.base_id().and_then(|b| prebuilt.get(&b).cloned());
                let sent = match opts.frontend {
                    crate::config::FrontendMode::Builtin => {
                        features::strip_syntax(&inputs.dockerfile)
                    }
                    crate::config::FrontendMode::Directive => inputs.dockerfile.clone(),
                };
                Ok(PlannedCell {
                    cell,
                    inputs: inputs.hash,
                    platform,
                    tag,
                    prebuilt_base,
                    no_cache: opts.no_cache,
                    pull: opts.pull,
                    upstream: None,
                    same_inputs: None,
                    pins: renderer.pins().clone(),
                    needs: inputs.needs,
                    features: features::features(&sent),
                    blocked: None,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BuildStatus;

    fn setup() -> (Matrix, Renderer, RunOptions) {
        let loaded = crate::config::parse(
            "t.toml",
            "[matrix]\ndistros = [\"debian-13\"]\nversions = [\"5.4\", \"5.5\"]\narches = [\"amd64\"]\n",
        )
        .unwrap();
        let opts = RunOptions::from_config(&loaded);
        (
            Matrix::from_config(&loaded).unwrap(),
            Renderer::new(None),
            opts,
        )
    }

    fn success(cell: &str, inputs: &str) -> BuildRecord {
        BuildRecord {
            id: 1,
            cell: cell.into(),
            engine: "b".into(),
            inputs: inputs.into(),
            status: BuildStatus::Succeeded,
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            image_id: Some("sha256:base".into()),
            size: None,
            compressed_size: None,
            layers: vec![],
            failure: None,
            failure_record: None,
            cause: None,
            log_path: None,
            tag: None,
            base_image: None,
            log_pruned_at: None,
        }
    }

    fn ids(plan: &[PlannedCell]) -> Vec<&str> {
        plan.iter().map(|p| p.cell.id.as_str()).collect()
    }

    #[test]
    fn bases_come_first_and_along_unless_reusable() {
        let (m, r, opts) = setup();
        let cells: Vec<&Cell> = ["debian-13/5.5/amd64", "debian-13/5.4/amd64"]
            .iter()
            .map(|id| m.cell(id).unwrap())
            .collect();
        let none = HashMap::new();
        let plan = Scheduler::plan(&m, &r, &none, &opts, &cells).unwrap();
        assert_eq!(
            ids(&plan),
            [
                "debian-13/opam/amd64",
                "debian-13/5.4/amd64",
                "debian-13/5.5/amd64"
            ],
            "the base once, first; then matrix order"
        );
        assert!(plan.iter().all(|p| p.prebuilt_base.is_none()));

        // A success of the base from today's inputs is reused, on its engine.
        let base = m.cell("debian-13/opam/amd64").unwrap();
        let hash = r
            .inputs(&m, base, opts.key_options(), &opts.tags)
            .unwrap()
            .hash;
        let mut last = HashMap::new();
        last.insert(base.id.clone(), success(&base.id, &hash));
        let plan = Scheduler::plan(&m, &r, &last, &opts, &cells).unwrap();
        assert_eq!(ids(&plan), ["debian-13/5.4/amd64", "debian-13/5.5/amd64"]);
        assert_eq!(
            plan[0].prebuilt_base,
            Some(("b".to_string(), "sha256:base".to_string()))
        );

        // From other inputs: stale, so it is rebuilt.
        last.insert(base.id.clone(), success(&base.id, "other"));
        let plan = Scheduler::plan(&m, &r, &last, &opts, &cells).unwrap();
        assert_eq!(ids(&plan)[0], "debian-13/opam/amd64");
    }
}
