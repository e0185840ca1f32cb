//! `build CELL... --same-inputs` (issue 13): build each named cell again with exactly the
//! inputs its last run used, to tell a flaky failure from an input that broke it: the
//! Dockerfile text it recorded (from the store's table of texts), its pinned refs (the
//! opam-repository checkout moved to the recorded commit, as its build context), and for
//! a compiler cell the very base image it started FROM, if an engine of its arch still
//! holds it; for a base cell, the upstream image by the digest it recorded (`FROM
//! debian:13@sha256:...`). The build is recorded with `same_inputs_of` naming the build it repeats.

use std::sync::Arc;

use super::{Session, SessionError};
use crate::dockerfile::{features, same};
use crate::engine::{Engine, EngineSpec};
use crate::inputs::InputSources;
use crate::matrix::Cell;
use crate::model::recorded::Recorded;
use crate::scheduler::{pinned_base_ref, PlannedCell, RunOptions, SameInputs};
use crate::store::BuildRecord;

impl Session {
    /// The plan that rebuilds each of `cells` from its last recorded run. Errors
    /// ([`SessionError::SameInputs`], naming the cell): no recorded run, its text pruned,
    /// its base image on no engine of its arch, its opam-repository commit not checked out.
    pub async fn plan_same_inputs(
        &self,
        opts: &RunOptions,
        cells: &[&Cell],
    ) -> Result<Vec<PlannedCell>, SessionError> {
        let mut plan = Vec::new();
        let specs = self.engine_specs();
        for c in cells {
            let id = c.id.clone();
            let (run, recorded, text) = self
                .store
                .try_call(move |s| {
                    // The latest build that recorded what it was made from.
                    let mut runs = s.for_cell(&id)?;
                    runs.sort_by_key(|r| r.id);
                    for r in runs.into_iter().rev() {
                        if let Some(rec) = s.recorded(r.id)?.filter(|x| x.dockerfile.is_some()) {
                            let text = s.text(rec.dockerfile.as_deref().unwrap_or(""))?;
                            return Ok(Some((r, rec, text)));
                        }
                    }
                    Ok(None)
                })
                .await?
                .ok_or_else(|| {
                    SessionError::SameInputs(format!(
                        "{}: no recorded run to repeat (never built, or built before imagegrid recorded its inputs)",
                        c.id
                    ))
                })?;
            let text = text.ok_or_else(|| {
                SessionError::SameInputs(format!(
                    "{}: the Dockerfile text of build {} was pruned (`imagegrid prune`); it cannot be built with the same inputs",
                    c.id, run.id
                ))
            })?;
            plan.push(
                self.same_cell(opts, &specs, c, &run, recorded, text)
                    .await?,
            );
        }
        Ok(plan)
    }

    async fn same_cell(
        &self,
        opts: &RunOptions,
        specs: &[EngineSpec],
        c: &Cell,
        run: &BuildRecord,
        recorded: Recorded,
        text: String,
    ) -> Result<PlannedCell, SessionError> {
        let err = |m: String| SessionError::SameInputs(format!("{}: {m}", c.id));
        let pins = recorded.pins.clone();
        // The pins it used (the record holds only those) are the ones it needs again.
        let mut needs = crate::dockerfile::pins::needs(&text);
        needs.opam_refs = pins.opam.keys().cloned().collect();
        needs.opam_repository |= pins.opam_repository.is_some();
        // The build context: the checkout at the recorded commit.
        if let Some(commit) = pins.repository_commit().filter(|_| needs.opam_repository) {
            let sources = InputSources::from_config(&self.loaded);
            let commit = commit.to_string();
            tokio::task::spawn_blocking(move || sources.check_out(&commit))
                .await
                .map_err(|e| SessionError::Task(e.to_string()))?
                .map_err(|e| {
                    err(format!(
                        "cannot check out the recorded opam-repository commit: {e}"
                    ))
                })?;
        }
        // The base image it started FROM, on an engine of its arch (tagged as the build
        // names it).
        let mut prebuilt_base = None;
        if let Some(base_id) = c.base_id() {
            let image = recorded
                .base_image
                .clone()
                .or(run.base_image.clone())
                .ok_or_else(|| err(format!("build {} recorded no base image", run.id)))?;
            let base = Cell::new(&c.distro, None, &c.arch);
            let mut tried = Vec::new();
            for spec in specs.iter().filter(|s| s.arches.contains(&c.arch)) {
                match Engine::connect(spec).await {
                    Ok(e) => {
                        if e.docker().inspect_image(&image).await.is_ok() {
                            let pin = pinned_base_ref(&base, &opts.tags, &image);
                            e.tag(&image, &pin).await.map_err(|x| err(x.to_string()))?;
                            prebuilt_base = Some((spec.name.clone(), image.clone()));
                            break;
                        }
                        tried.push(format!("not on engine {}", spec.name));
                    }
                    Err(e) => tried.push(e.to_string()),
                }
            }
            if prebuilt_base.is_none() {
                return Err(err(format!(
                    "its base image {image} (base {base_id}, as build {} used it) is gone: {}",
                    run.id,
                    if tried.is_empty() {
                        format!("no engine builds {}", c.arch)
                    } else {
                        tried.join("; ")
                    }
                )));
            }
        }
        let base_ref = same::base_reference(&self.renderer, &self.matrix, c, &opts.tags, &pins)?;
        // A base's upstream: FROM the digest it was built from.
        let upstream = recorded
            .upstream
            .as_ref()
            .filter(|_| c.base_id().is_none())
            .and_then(|u| Some((u.image.clone(), u.digest.clone()?)));
        let sent = match opts.frontend {
            crate::config::FrontendMode::Builtin => features::strip_syntax(&text),
            crate::config::FrontendMode::Directive => text.clone(),
        };
        let platform = recorded.platform.clone().unwrap_or_else(|| {
            self.matrix
                .arch(&c.arch)
                .map(|a| a.platform.clone())
                .unwrap_or_default()
        });
        Ok(PlannedCell {
            cell: c.clone(),
            inputs: run.inputs.clone(),
            platform,
            tag: c.staging_tag(&opts.tags),
            prebuilt_base,
            no_cache: opts.no_cache,
            pull: false,
            upstream: recorded.upstream.as_ref().map(|u| u.image.clone()),
            pins: Arc::new(pins),
            needs,
            features: features::features(&sent),
            blocked: None,
            same_inputs: Some(SameInputs {
                of_build: run.id,
                text,
                base_ref,
                upstream,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::RunMode;
    use crate::store::NewBuild;

    #[tokio::test]
    async fn a_cell_without_a_recorded_run_or_whose_text_was_pruned_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = crate::config::parse(
            "t.toml",
            &format!("[paths]\ndata_dir = \"{}\"\n", dir.path().display()),
        )
        .unwrap();
        let m = crate::matrix::Matrix::load(&loaded).unwrap();
        let session = Session::open(loaded, m).unwrap();
        let opts = session.run_options(RunMode::Batch);
        let (built, never) = (
            session.matrix.cells[0].clone(),
            session.matrix.cells[1].clone(),
        );
        let err = |r: Result<Vec<PlannedCell>, SessionError>| match r {
            Err(SessionError::SameInputs(m)) => m,
            other => panic!("{:?}", other.map(|p| p.len())),
        };
        let m = err(session.plan_same_inputs(&opts, &[&never]).await);
        assert_eq!(
            m,
            format!("{}: no recorded run to repeat (never built, or built before imagegrid recorded its inputs)", never.id)
        );
        // A run recorded with its text, then the text pruned.
        let cell = built.id.clone();
        let id = session
            .store
            .try_call(move |s| {
                let id = s.start(&NewBuild {
                    cell: &cell,
                    engine: "a",
                    inputs: "h",
                    tag: "t",
                    base_image: None,
                })?;
                s.set_recorded(id, Some("FROM x\n"), &Recorded::default())?;
                s.mark_logs_pruned(&[id])?;
                s.prune_texts(&[], false)?;
                Ok(id)
            })
            .await
            .unwrap();
        let m = err(session.plan_same_inputs(&opts, &[&built]).await);
        assert_eq!(
            m,
            format!("{}: the Dockerfile text of build {id} was pruned (`imagegrid prune`); it cannot be built with the same inputs", built.id)
        );
    }
}
