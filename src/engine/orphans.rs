//! Builds that outlived the imagegrid that started them, found again by their labels.
//!
//! What can be found, and what cannot:
//! - The classic builder runs each RUN step in a container. imagegrid labels every stage with
//!   its cell and inputs right after its FROM (see `build`), so a step still running carries
//!   them and [`Engine::running_build_steps`] lists it.
//! - BuildKit runs steps without containers: nothing to list. The engine stops such a build
//!   when the connection that asked for it closes, which happens when its process dies; only
//!   a connection left hanging (a remote engine across a dead network) keeps one running.
//! - A build that finished after its imagegrid stopped left an image labelled with its build
//!   id: [`Engine::images_of_builds`] finds it, for builds the history marks interrupted.

use std::collections::{BTreeSet, HashMap};

use bollard::query_parameters::{ListContainersOptionsBuilder, ListImagesOptionsBuilder};
use serde::Serialize;

use super::build::{LABEL_BUILD, LABEL_CELL, LABEL_INPUTS};
use super::{Engine, EngineError};
use crate::logs::sanitise_line;

/// A RUN step of an imagegrid build running in a container on an engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningStep {
    /// Short container id.
    pub container: String,
    pub cell: String,
    /// The cell's inputs hash, to tell which build of the cell it belongs to.
    pub inputs: String,
    /// The engine's words, e.g. `Up 3 minutes`.
    pub status: String,
    pub command: String,
}

/// An image made by a build that history knows only as interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanImage {
    pub build: i64,
    pub cell: String,
    pub image_id: String,
}

impl Engine {
    /// Running containers of imagegrid builds (classic builder steps), oldest first.
    pub async fn running_build_steps(&self) -> Result<Vec<RunningStep>, EngineError> {
        let filters: HashMap<&str, Vec<&str>> =
            HashMap::from([("label", vec![LABEL_CELL]), ("status", vec!["running"])]);
        let opts = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut list = self
            .docker()
            .list_containers(Some(opts))
            .await
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        list.sort_by_key(|c| c.created);
        // Engine strings are untrusted: they reach the terminal.
        let clean = |s: Option<&String>| sanitise_line(s.map(String::as_bytes).unwrap_or(b""));
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                RunningStep {
                    container: c.id.unwrap_or_default().chars().take(12).collect(),
                    cell: clean(labels.get(LABEL_CELL)),
                    inputs: clean(labels.get(LABEL_INPUTS)),
                    status: clean(c.status.as_ref()),
                    command: clean(c.command.as_ref()),
                }
            })
            .collect())
    }

    /// Images of these builds: (build id, cell, inputs). All three must match the image's
    /// labels, since build ids are only unique within one history and engines are shared.
    pub async fn images_of_builds(
        &self,
        builds: &BTreeSet<(i64, String, String)>,
    ) -> Result<Vec<OrphanImage>, EngineError> {
        if builds.is_empty() {
            return Ok(vec![]);
        }
        let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![LABEL_BUILD])]);
        let opts = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker()
            .list_images(Some(opts))
            .await
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        let mut found: Vec<OrphanImage> = list
            .into_iter()
            .filter_map(|i| {
                let key = (
                    i.labels.get(LABEL_BUILD)?.parse().ok()?,
                    i.labels.get(LABEL_CELL)?.clone(),
                    i.labels.get(LABEL_INPUTS)?.clone(),
                );
                builds.contains(&key).then(|| OrphanImage {
                    build: key.0,
                    cell: key.1,
                    image_id: sanitise_line(i.id.as_bytes()),
                })
            })
            .collect();
        found.sort_by_key(|o| o.build);
        Ok(found)
    }
}
