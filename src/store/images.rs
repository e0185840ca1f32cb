//! Which of the images imagegrid made on an engine the history still needs. Kept: each
//! cell's newest success, pinned baselines, each cell's newest published build, the base
//! image each of those was built FROM, the base of a build running now, and any image a
//! container uses. Removed: other images of builds in this history (superseded), and
//! comparison images (`sizes --compare-single-stage`, measurements). An image whose build
//! this history does not know (another imagegrid's, on a shared engine) is kept: it is not
//! this history's to judge. Images without imagegrid's labels are never even listed.

use std::collections::HashMap;

use serde::Serialize;

use super::{process_alive, Store, StoreError};
use crate::engine::cleanup::OwnedImage;

/// The reason given for an image another history made (engines are shared: the demo's own
/// history, another data directory's); never removed, and `prune` counts them on one line.
pub const OTHER_HISTORY: &str = "made by another history";

/// One image and what the policy says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDecision {
    #[serde(flatten)]
    pub image: OwnedImage,
    pub remove: bool,
    /// Why, in a few words (`newest success`, `superseded by build 42`, …).
    pub reason: String,
}

/// Image ids the history needs, with why.
pub type KeepSet = HashMap<String, String>;

/// (image id, base image id) of a build row.
type ImageAndBase = (Option<String>, Option<String>);

impl Store {
    /// The image ids the history needs on engines (see the module doc), with a reason each.
    pub fn images_to_keep(&self) -> Result<KeepSet, StoreError> {
        let mut keep = KeepSet::new();
        let mut add = |id: Option<String>, why: &str| {
            if let Some(id) = id.filter(|i| !i.is_empty()) {
                keep.entry(id).or_insert_with(|| why.to_string());
            }
        };
        let q = |sql: &str| -> Result<Vec<ImageAndBase>, StoreError> {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
        };
        for (sql, why) in [
            (
                "SELECT image_id, base_image FROM builds WHERE id IN
                 (SELECT MAX(id) FROM builds WHERE status = 'succeeded' GROUP BY cell)",
                "newest success",
            ),
            (
                "SELECT image_id, base_image FROM builds WHERE id IN (SELECT build_id FROM baselines)",
                "pinned baseline",
            ),
            (
                "SELECT image_id, base_image FROM builds WHERE id IN
                 (SELECT MAX(id) FROM builds WHERE compressed_size IS NOT NULL GROUP BY cell)",
                "published",
            ),
        ] {
            for (image, base) in q(sql)? {
                add(image, why);
                add(base, &format!("base of a kept image ({why})"));
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT base_image, pid FROM builds WHERE status = 'running'")
            .map_err(|e| self.err(e))?;
        let running = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        for (base, pid) in running {
            if process_alive(pid) {
                add(base, "used by a running build");
            }
        }
        Ok(keep)
    }

    /// Decide about the images imagegrid made on one engine (see the module doc).
    pub fn decide_images(
        &self,
        images: Vec<OwnedImage>,
        keep: &KeepSet,
    ) -> Result<Vec<ImageDecision>, StoreError> {
        let newest = self.latest_success_ids()?;
        let mut out = Vec::with_capacity(images.len());
        for image in images {
            let (remove, reason) = if let Some(why) = keep.get(&image.id) {
                (false, why.clone())
            } else if image.in_use {
                (false, "used by a container".to_string())
            } else if image
                .history
                .as_ref()
                .is_some_and(|h| *h != self.history_id)
            {
                (false, OTHER_HISTORY.to_string())
            } else if image.compare {
                (
                    true,
                    "comparison image (sizes --compare-single-stage)".to_string(),
                )
            } else {
                match image.build {
                    None => (false, "no build label: not this history's".to_string()),
                    Some(b) => match self.build(b)? {
                        Some(r)
                            if r.cell == image.cell && Some(&r.inputs) == image.inputs.as_ref() =>
                        {
                            match newest.get(&image.cell) {
                                Some(n) if *n != b => (true, format!("superseded by build {n}")),
                                Some(_) => (false, "newest success".to_string()),
                                None => (true, format!("build {b} did not succeed")),
                            }
                        }
                        _ => (false, format!("build {b} is not in this history")),
                    },
                }
            };
            out.push(ImageDecision {
                image,
                remove,
                reason,
            });
        }
        Ok(out)
    }

    /// The newest successful build id of each cell.
    fn latest_success_ids(&self) -> Result<HashMap<String, i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT cell, MAX(id) FROM builds WHERE status = 'succeeded' GROUP BY cell")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<HashMap<_, _>, _>>()
            .map_err(|e| self.err(e))
    }
}
