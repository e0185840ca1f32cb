//! The upstream digest a base build was made from, recorded with it after it succeeded
//! (issue 13): the digest the engine holds the upstream image by when the build did not
//! pull and the image is on the engine, else the registry's answer now (what a pull, or a
//! build that had to fetch the image, got). A locally built or loaded upstream image has no
//! digest (recorded without one: nothing to compare). A failed question is a log line, and
//! the build is recorded without the digest.

use super::{Ctx, PlannedCell};
use crate::engine::upstream::LocalImage;
use crate::engine::Engine;
use crate::model::recorded::Upstream;

/// Record the upstream of `plan` (a base cell with [`PlannedCell::upstream`]) with build
/// `build_id`. Returns a line for the build's log when the digest could not be had.
pub(super) async fn record(
    ctx: &Ctx,
    engine: &Engine,
    plan: &PlannedCell,
    build_id: i64,
) -> Option<String> {
    let image = plan.upstream.clone()?;
    // A same-inputs build started FROM the recorded digest.
    if let Some((_, d)) = plan.same_inputs.as_ref().and_then(|s| s.upstream.as_ref()) {
        let up = Upstream {
            image,
            digest: Some(d.clone()),
        };
        store(ctx, plan, build_id, up).await;
        return None;
    }
    let local = if plan.pull {
        LocalImage::Absent
    } else {
        engine.local_image(&image).await
    };
    let (digest, note) = match local {
        LocalImage::Pulled(d) => (Some(d), None),
        LocalImage::Unregistered => (None, None),
        LocalImage::Absent => match engine.registry_digest(&image).await {
            Ok(d) => (Some(d), None),
            Err(e) => (
                None,
                Some(format!(
                    "imagegrid: warning: the digest of upstream {image} is unknown: {e}"
                )),
            ),
        },
    };
    store(ctx, plan, build_id, Upstream { image, digest }).await;
    note
}

/// Write `up` into build `build_id`'s record; a store error is reported, not fatal.
async fn store(ctx: &Ctx, plan: &PlannedCell, build_id: i64, up: Upstream) {
    if let Err(e) = ctx
        .store
        .try_call(move |s| s.set_upstream(build_id, &up))
        .await
    {
        ctx.store_error(
            Some(&plan.cell.id),
            format!("cannot record the upstream digest of build {build_id}: {e}"),
        );
    }
}
