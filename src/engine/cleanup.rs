//! What imagegrid leaves on an engine, and its removal: the images it made (known by its
//! labels, never any other), the build cache past a limit, and the engine's disk use.
//!
//! Which images go is not decided here (see `store::images`): this file lists, measures and
//! removes.

use std::collections::{HashMap, HashSet};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, PruneBuildOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use serde::Serialize;

use super::build::{LABEL_BUILD, LABEL_CELL, LABEL_INPUTS};
use super::{Engine, EngineError};
use crate::logs::sanitise_line;

/// Label on the images `imagegrid sizes --compare-single-stage` builds (value: `multi-stage`
/// or `single-stage`): measurements, not builds of the history.
pub const LABEL_COMPARE: &str = "imagegrid.compare";

/// Label carrying the id of the history whose build made the image (`Store::history_id`):
/// engines are shared, and build ids are only unique within one history.
pub const LABEL_HISTORY: &str = "imagegrid.history";

/// An image imagegrid made (it carries [`LABEL_CELL`]), as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedImage {
    /// `sha256:…`.
    pub id: String,
    pub cell: String,
    /// The history build that made it ([`LABEL_BUILD`]); None for comparison images.
    pub build: Option<i64>,
    /// Its cell's inputs hash ([`LABEL_INPUTS`]).
    pub inputs: Option<String>,
    /// The history that made it ([`LABEL_HISTORY`]); None for images from before it existed.
    pub history: Option<String>,
    /// Made by `sizes --compare-single-stage` ([`LABEL_COMPARE`]).
    pub compare: bool,
    /// Every tag on it (the staging tag, a pinned base tag, a comparison tag).
    pub tags: Vec<String>,
    /// Bytes, as the engine reports it (shared layers included).
    pub size: i64,
    /// A container (running or stopped) uses it.
    pub in_use: bool,
}

/// An engine's disk use, from the Engine API. Engines before API 1.52 answer `system df`
/// in a shape the client does not read: then images are the sum of the image sizes the
/// engine lists (layers shared between images counted once per image: an upper bound) and
/// the build cache is unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskUse {
    pub images_bytes: i64,
    /// True when `images_bytes` is the engine's own (system df), false for the upper bound.
    pub images_exact: bool,
    pub images: i64,
    pub build_cache_bytes: Option<i64>,
}

impl DiskUse {
    /// Images and build cache together (what the engines bar shows).
    pub fn total(&self) -> i64 {
        self.images_bytes + self.build_cache_bytes.unwrap_or(0)
    }
}

impl Engine {
    /// Every image on this engine that carries imagegrid's cell label, with whether a
    /// container uses it. Unlabelled images are never listed, so never removed.
    pub async fn owned_images(&self) -> Result<Vec<OwnedImage>, EngineError> {
        let err = |e: bollard::errors::Error| {
            EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e)
        };
        let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![LABEL_CELL])]);
        let opts = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self.docker().list_images(Some(opts)).await.map_err(err)?;
        let copts = ListContainersOptionsBuilder::default().all(true).build();
        let used: HashSet<String> = self
            .docker()
            .list_containers(Some(copts))
            .await
            .map_err(err)?
            .into_iter()
            .filter_map(|c| c.image_id)
            .collect();
        let clean = |s: &str| sanitise_line(s.as_bytes());
        let mut out: Vec<OwnedImage> = list
            .into_iter()
            .filter_map(|i| {
                let cell = clean(i.labels.get(LABEL_CELL)?);
                Some(OwnedImage {
                    in_use: used.contains(&i.id) || i.containers > 0,
                    id: clean(&i.id),
                    cell,
                    build: i.labels.get(LABEL_BUILD).and_then(|b| b.parse().ok()),
                    inputs: i.labels.get(LABEL_INPUTS).map(|s| clean(s)),
                    history: i.labels.get(LABEL_HISTORY).map(|s| clean(s)),
                    compare: i.labels.contains_key(LABEL_COMPARE),
                    tags: i
                        .repo_tags
                        .iter()
                        .filter(|t| *t != "<none>:<none>")
                        .map(|t| clean(t))
                        .collect(),
                    size: i.size,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.cell, a.build, &a.id).cmp(&(&b.cell, b.build, &b.id)));
        Ok(out)
    }

    /// Remove an image imagegrid made: its tags one by one, then the image, never forced
    /// (an image a container uses, or with child images, stays and is an error).
    /// Errors: the engine's; an image already gone is not one.
    pub async fn remove_owned(&self, img: &OwnedImage) -> Result<(), EngineError> {
        let opts = || RemoveImageOptionsBuilder::default().force(false).build();
        let gone = |e: &bollard::errors::Error| {
            matches!(
                e,
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                }
            )
        };
        for t in &img.tags {
            match self.docker().remove_image(t, Some(opts()), None).await {
                Ok(_) => {}
                Err(e) if gone(&e) => {}
                Err(e) => {
                    return Err(EngineError::from_bollard_at(
                        self.name(),
                        Some(&self.endpoint),
                        &e,
                    ))
                }
            }
        }
        match self
            .docker()
            .remove_image(&img.id, Some(opts()), None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if gone(&e) => Ok(()),
            Err(e) => Err(EngineError::from_bollard_at(
                self.name(),
                Some(&self.endpoint),
                &e,
            )),
        }
    }

    /// Prune the build cache down to `keep_bytes` (the engine keeps the most recently used
    /// entries up to that much); returns the bytes the engine says it reclaimed. Sent as
    /// `keep-storage` (API 1.39 to 1.47) and as `reserved-space`/`max-used-space` (1.48+):
    /// each engine reads the one its API has.
    pub async fn prune_build_cache(&self, keep_bytes: u64) -> Result<i64, EngineError> {
        let keep = keep_bytes as i64;
        let opts = PruneBuildOptionsBuilder::default()
            .reserved_space(keep)
            .max_used_space(keep)
            .build();
        // The client only knows the newer names: add the older one to the query.
        let docker = self.docker().clone().with_request_modifier(move |mut req| {
            let uri = req.uri().to_string();
            if uri.contains("/build/prune") {
                let sep = if uri.contains('?') { '&' } else { '?' };
                if let Ok(u) = format!("{uri}{sep}keep-storage={keep}").parse() {
                    *req.uri_mut() = u;
                }
            }
            req
        });
        let r = docker
            .prune_build(Some(opts))
            .await
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        Ok(r.space_reclaimed.unwrap_or(0))
    }

    /// Disk use of images and build cache (see [`DiskUse`] for older engines).
    pub async fn disk_use(&self) -> Result<DiskUse, EngineError> {
        let err = |e: bollard::errors::Error| {
            EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e)
        };
        let df = self.docker().df(None).await.map_err(err)?;
        if let Some(i) = df.image_usage.as_ref().and_then(|i| i.total_size) {
            return Ok(DiskUse {
                images_bytes: i,
                images_exact: true,
                images: df
                    .image_usage
                    .as_ref()
                    .and_then(|i| i.total_count)
                    .unwrap_or(0),
                build_cache_bytes: df.build_cache_usage.and_then(|b| b.total_size),
            });
        }
        let list = self
            .docker()
            .list_images(Some(ListImagesOptionsBuilder::default().build()))
            .await
            .map_err(err)?;
        Ok(DiskUse {
            images_bytes: list.iter().map(|i| i.size.max(0)).sum(),
            images_exact: false,
            images: list.len() as i64,
            build_cache_bytes: None,
        })
    }
}
