//! Moving a base image. On a [`super::route::Routed::Transfer`] the compiler cell takes its
//! place on the target engine at once; its task moves the base image there first
//! ([`crate::engine::transfer::move_image`], the way `[build] transfer_registry` says: export
//! from the engine holding it streamed into load on the target, or push and pull by digest;
//! verified by image id, tagged with the same pinned reference) and then builds the cell FROM
//! that reference as it would have on the holding engine.
//!
//! The move shows as a log event of the cell (`imagegrid: moving base …`, and why when it
//! fails), a [`BuildEvent::Transfer`] when it is done, and in the run summary's `transfers`
//! count. A move that fails
//! puts the cell back in the queue, to wait for an engine holding its base (it is not moved
//! again in this run). What a move took (bytes over seconds) becomes the transfer rate the
//! policy expects of the next ones.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::actor::JobState;
use super::{BuildEvent, Ctx, Scheduler};
use crate::engine::transfer::move_image;
use crate::engine::Engine;

/// A base image to move before a build: from which engine, under which pinned reference.
pub(super) struct Move {
    pub src: Engine,
    /// The base cell's id.
    pub base: String,
    /// The pinned reference the compiler builds FROM (see [`super::pinned_base_ref`]).
    pub reference: String,
    pub image_id: String,
}

/// What a move did, for the actor.
pub(super) struct Moved {
    pub base: String,
    pub image_id: String,
    pub bytes: u64,
    pub secs: f64,
}

/// Why a move did not happen.
pub(super) enum MoveFailed {
    Cancelled,
    /// It failed (the cell's log events say why).
    Failed,
}

/// Copy `m`'s image to `dst`, saying so in the cell's log events. Ends early when cancelled.
pub(super) async fn run(
    ctx: &Ctx,
    cell: &str,
    m: &Move,
    dst: &Engine,
    cancel: &CancellationToken,
) -> Result<Moved, MoveFailed> {
    let log = |line: String| {
        ctx.send(BuildEvent::Log {
            cell: cell.to_string().into(),
            line,
        })
    };
    log(format!(
        "imagegrid: moving base {} ({}) from engine {} to engine {}: it ends sooner there",
        m.base,
        m.reference,
        m.src.name(),
        dst.name()
    ));
    let arch = cell.rsplit('/').next().unwrap_or_default();
    let mut on_bytes = |_: u64| {};
    let r = tokio::select! {
        r = move_image(&m.src, dst, &m.reference, &m.image_id, arch, &ctx.opts.transfer_way, &mut on_bytes) => r,
        _ = cancel.cancelled() => return Err(MoveFailed::Cancelled),
    };
    match r {
        Ok(t) => {
            ctx.send(BuildEvent::Transfer {
                cell: cell.to_string().into(),
                base: m.base.clone().into(),
                from: m.src.name().to_string().into(),
                to: dst.name().to_string().into(),
                bytes: t.bytes,
                secs: t.secs,
                via: t.via,
            });
            Ok(Moved {
                base: m.base.clone(),
                image_id: m.image_id.clone(),
                bytes: t.bytes,
                secs: t.secs,
            })
        }
        Err(e) => {
            log(format!(
                "imagegrid: {e}; waiting for an engine that holds base {} instead",
                m.base
            ));
            Err(MoveFailed::Failed)
        }
    }
}

impl Scheduler {
    /// Job `j`'s base was moved to its slot: remember the copy (later compilers of that base
    /// need no move there), learn the rate, and count the build's time from now.
    pub(super) fn moved(&mut self, j: usize, m: Moved) {
        let JobState::Running { slot, .. } = self.jobs[j].state else {
            return;
        };
        let engine = self.slots[slot].spec.name.clone();
        let entry = self
            .copies
            .entry(m.base)
            .or_insert_with(|| (m.image_id.clone(), Vec::new()));
        if entry.0 != m.image_id {
            *entry = (m.image_id, Vec::new());
        }
        if !entry.1.contains(&engine) {
            entry.1.push(engine);
        }
        // A copy of a few megabytes is mostly round trips: only larger ones say the rate.
        if m.bytes >= 10_000_000 && m.secs > 0.0 {
            self.eta.model.transfer_rate = m.bytes as f64 / m.secs;
        }
        self.summary.transfers += 1;
        self.jobs[j].started = Some(Instant::now());
        self.eta.dirty = true;
    }

    /// Engines, besides the one that built it, that hold base `base` with image `image_id`.
    pub(super) fn copies_of(&self, base: &str, image_id: Option<&str>) -> Vec<String> {
        match (self.copies.get(base), image_id) {
            (Some((id, engines)), Some(want)) if id == want => engines.clone(),
            _ => Vec::new(),
        }
    }
}
