//! A job's history and log writes. A failed write never stops a build: it becomes a
//! [`BuildEvent::StoreError`] naming the file (counted for the run's summary), and the
//! build's result still reaches the faces as events.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::{summary, BuildEvent, CellResult, Ctx, PlannedCell};
use crate::causes::Matcher;
use crate::engine::Engine;
use crate::model::cause::Cause;
use crate::model::failure::Failure;
use crate::model::recorded::Recorded;
use crate::store::{BuildStatus, Finish, LogWriter, NewBuild, StoreError};

/// Record a cell that ended without being built. `what` completes "cannot record that
/// <cell> ..." if the write fails. Returns the cause of a failed one (from its reason).
pub(super) async fn unbuilt(
    ctx: &Ctx,
    plan: &PlannedCell,
    status: BuildStatus,
    reason: &str,
    what: &str,
) -> Option<Cause> {
    let cause =
        (status == BuildStatus::Failed).then(|| ctx.opts.rules.classify([], Some(reason), None));
    let (cell, inputs, why, c) = (
        plan.cell.id.clone(),
        plan.inputs.clone(),
        reason.to_string(),
        cause.clone(),
    );
    let recorded = ctx
        .store
        .try_call(move |s| s.record_unbuilt(&cell, &inputs, status, &why, c.as_ref()))
        .await;
    if let Err(e) = recorded {
        ctx.store_error(
            Some(&plan.cell.id),
            format!("cannot record that {} {what}: {e}", plan.cell.id),
        );
    }
    cause
}

/// Record the start of a build on `engine`: its build id, and the writer of its log (None
/// if the log file cannot be made, which is reported). Errors: the message of a failed
/// history write (already reported).
pub(super) async fn start(
    ctx: &Ctx,
    plan: &PlannedCell,
    engine: &Engine,
    base_image: Option<&str>,
) -> Result<(i64, Option<LogWriter>), String> {
    let cell_id = plan.cell.id.clone();
    let (cell, engine_name, inputs, tag, base) = (
        cell_id.clone(),
        engine.name().to_string(),
        plan.inputs.clone(),
        plan.tag.clone(),
        base_image.map(str::to_string),
    );
    // What this build is made from, recorded with it: the pinned inputs it uses, its
    // Dockerfile (as its cache key has it: pins applied, base by tag), the base image it
    // starts FROM, the platform and the network mode.
    let recorded = Recorded {
        pins: plan.pins.record(&plan.needs),
        base_image: base_image.map(str::to_string),
        platform: Some(plan.platform.clone()),
        network: Some(ctx.opts.network.as_api().to_string()),
        same_inputs_of: plan.same_inputs.as_ref().map(|s| s.of_build),
        ..Recorded::default()
    };
    let text = match &plan.same_inputs {
        Some(same) => Some(same.text.clone()),
        None => ctx
            .renderer
            .render_pinned(&ctx.matrix, &plan.cell, None, &ctx.opts.tags, &plan.pins)
            .ok(),
    };
    // One call: the row and its log file, so that a log never lacks its row.
    let started = ctx
        .store
        .call(move |s| {
            let id = s.start(&NewBuild {
                cell: &cell,
                engine: &engine_name,
                inputs: &inputs,
                tag: &tag,
                base_image: base.as_deref(),
            })?;
            s.set_recorded(id, text.as_deref(), &recorded)?;
            Ok::<_, StoreError>((id, s.log_writer(id)))
        })
        .await
        .and_then(|r| r);
    let (id, log) = match started {
        Ok(started) => started,
        Err(e) => {
            let message = format!("cannot record the start of {cell_id}: {e}");
            ctx.store_error(Some(&cell_id), message.clone());
            return Err(message);
        }
    };
    let log = match log {
        Ok(w) => Some(w),
        Err(e) => {
            ctx.store_error(
                Some(&cell_id),
                format!("cannot store the log of build {id} of {cell_id}: {e}"),
            );
            None
        }
    };
    Ok((id, log))
}

/// Record how build `build_id` ended; returns the size of the cell's success before it
/// (bytes, for the delta) and the build's log file.
pub(super) async fn finish(
    ctx: &Ctx,
    cell_id: &str,
    build_id: i64,
    status: BuildStatus,
    finish: &Finish,
) -> (Option<i64>, PathBuf) {
    let (cell, f) = (cell_id.to_string(), finish.clone());
    let done = ctx
        .store
        .call(move |s| {
            let recorded = s.finish(build_id, status, &f);
            let previous = s
                .previous_success(&cell, build_id)
                .ok()
                .flatten()
                .and_then(|r| r.size);
            (recorded, previous)
        })
        .await;
    let (recorded, previous_size) = match done {
        Ok((recorded, previous)) => (recorded, previous),
        Err(e) => (Err(e), None),
    };
    if let Err(e) = recorded {
        ctx.store_error(
            Some(cell_id),
            format!("cannot record that build {build_id} of {cell_id} {status}: {e}"),
        );
    }
    (previous_size, ctx.store.log_path(build_id))
}

/// A build that failed before it started (its Dockerfile did not render, its start could
/// not be recorded): record it, and say so. Returns its cause.
pub(super) async fn finish_unstarted(
    ctx: &Ctx,
    plan: &PlannedCell,
    engine: &Engine,
    reason: String,
) -> Option<Cause> {
    let cause = unbuilt(ctx, plan, BuildStatus::Failed, &reason, "failed").await;
    ctx.send(BuildEvent::Finished(CellResult {
        cause: cause.clone(),
        ..CellResult::unbuilt(
            plan.cell.id.clone().into(),
            BuildStatus::Failed,
            Some(engine.name().into()),
            reason,
        )
    }));
    cause
}

/// Where a build's lines go: its log file (until a write fails), the tail kept for the
/// failure summary, the failure rules (which remember only which rules matched), and the
/// event stream.
pub(super) struct JobLog<'a> {
    ctx: &'a Ctx,
    cell: String,
    writer: Option<LogWriter>,
    tail: VecDeque<String>,
    matcher: Matcher,
}

impl<'a> JobLog<'a> {
    pub fn new(ctx: &'a Ctx, cell: &str, writer: Option<LogWriter>) -> JobLog<'a> {
        JobLog {
            ctx,
            cell: cell.to_string(),
            writer,
            tail: VecDeque::with_capacity(summary::TAIL_LINES),
            matcher: ctx.opts.rules.matcher(),
        }
    }

    /// The build's cause, from the lines seen and its failure (`error` is the engine's
    /// message, `record` the failure record).
    pub fn cause(&mut self, error: &str, record: Option<&Failure>) -> Cause {
        self.matcher
            .record(&self.ctx.opts.rules, Some(error), record);
        self.matcher.cause(&self.ctx.opts.rules)
    }

    /// One sanitised line of the build.
    pub fn line(&mut self, line: String) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.line(&line) {
                // Stop writing: later lines would land after a torn one, or fail the same way.
                // The build goes on; its lines still reach the screen and the events.
                self.writer = None;
                let message = format!(
                    "cannot write the log of {}: {e}; the rest of this build's log is not stored",
                    self.cell
                );
                self.ctx.store_error(Some(&self.cell), message.clone());
                self.ctx.send(BuildEvent::Log {
                    cell: self.cell.clone().into(),
                    line: format!("imagegrid: {message}"),
                });
            }
        }
        self.matcher.line(&self.ctx.opts.rules, &line);
        if self.tail.len() == summary::TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.clone());
        self.ctx.send(BuildEvent::Log {
            cell: self.cell.clone().into(),
            line,
        });
    }

    /// The last lines seen, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}
