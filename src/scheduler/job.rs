//! One build on one engine: render the Dockerfile, record the start, stream the build,
//! classify how it ended (built, failed, cancelled, a transient engine error to retry, a
//! lost engine), tag a base image for its dependants, and record the end.

use std::collections::BTreeMap;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::record::{self, JobLog};
use super::{summary, BuildEvent, CellResult, Ctx, PlannedCell};
use crate::config::{BuildkitMode, FrontendMode, TagConfig};
use crate::dockerfile::features;
use crate::engine::build::{
    BuildError, BuildProgress, BuildRequest, LABEL_BUILD, LABEL_CELL, LABEL_INPUTS,
};
use crate::engine::Engine;
use crate::matrix::{Cell, Level};
use crate::model::cause::Cause;
use crate::store::{BuildStatus, Finish};

/// A tag that names exactly one build of a base cell: its staging tag plus the image id.
/// Compiler cells build FROM it (BuildKit cannot take a bare image id in FROM), so the
/// Dockerfile names the exact base image, as upstream does with digests.
pub fn pinned_base_ref(base: &Cell, tags: &TagConfig, image_id: &str) -> String {
    let short = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    format!(
        "{}-{}",
        base.staging_tag(tags),
        &short[..short.len().min(12)]
    )
}

/// How a build task ended, for the actor.
pub(super) enum TaskOutcome {
    Done {
        status: BuildStatus,
        image_id: Option<String>,
        /// A failed build's cause.
        cause: Option<Cause>,
        /// The image's size, bytes (a success).
        size: Option<u64>,
        /// Steps the engine took from its cache ([`is_cached_step`]).
        cached: usize,
    },
    /// Transient engine error with retries left: queue again. `down` says why the engine
    /// does not answer right now (restarting, say): the cell waits for it or another engine.
    Retry {
        reason: String,
        lost: String,
        down: Option<String>,
    },
    /// The engine is gone; the cell failed with that reason (and its cause).
    EngineLost {
        reason: String,
        cause: Option<Cause>,
    },
}

/// A build that failed, with its cause.
fn failed(cause: Option<Cause>) -> TaskOutcome {
    TaskOutcome::Done {
        status: BuildStatus::Failed,
        image_id: None,
        cause,
        size: None,
        cached: 0,
    }
}

/// Build one planned cell on one engine, recording everything.
pub(super) async fn build_task(
    ctx: &Ctx,
    engine: &Engine,
    plan: &PlannedCell,
    base_image: Option<String>,
    attempts: u32,
    cancel: &CancellationToken,
) -> TaskOutcome {
    let cell_id = plan.cell.id.clone();
    let base_cell = Cell::new(&plan.cell.distro, None, &plan.cell.arch);
    let from = base_image
        .as_ref()
        .filter(|_| plan.cell.base_id().is_some())
        .map(|id| pinned_base_ref(&base_cell, &ctx.opts.tags, id));
    let rendered = match &plan.same_inputs {
        // `--same-inputs`: the recorded text, FROM the recorded base image.
        Some(same) => Ok(match (&same.base_ref, &from, &same.upstream) {
            (Some(r), Some(f), _) => crate::dockerfile::same::swap_from(&same.text, r, f),
            (_, _, Some((image, digest))) => {
                crate::dockerfile::same::swap_from(&same.text, image, &format!("{image}@{digest}"))
            }
            _ => same.text.clone(),
        }),
        None => ctx.renderer.render_pinned(
            &ctx.matrix,
            &plan.cell,
            from.as_deref(),
            &ctx.opts.tags,
            &plan.pins,
        ),
    };
    let dockerfile = match rendered {
        // `builtin`: the engine's own frontend builds it; the text sent is the text kept
        // in the image (/Dockerfile.opam, /Dockerfile.ocaml).
        Ok(d) => match ctx.opts.frontend {
            FrontendMode::Builtin => features::strip_syntax(&d),
            FrontendMode::Directive => d,
        },
        Err(e) => {
            let reason = format!("cannot render the Dockerfile: {e}");
            return failed(record::finish_unstarted(ctx, plan, engine, reason).await);
        }
    };
    let context_dir = if plan.needs.opam_repository {
        match checkout_at(&ctx.opts.repository_checkout, plan.pins.repository_commit()) {
            Ok(dir) => Some(dir),
            Err(reason) => {
                return failed(record::finish_unstarted(ctx, plan, engine, reason).await);
            }
        }
    } else {
        None
    };
    let started = Instant::now();
    let (build_id, writer) = match record::start(ctx, plan, engine, base_image.as_deref()).await {
        Ok(started) => started,
        Err(message) => {
            return failed(record::finish_unstarted(ctx, plan, engine, message).await);
        }
    };
    let mut log = JobLog::new(ctx, &cell_id, writer);
    let emulated = !engine.is_native(&plan.cell.arch);
    ctx.send(BuildEvent::Started {
        cell: cell_id.clone().into(),
        engine: engine.name().to_string().into(),
        build_id: build_id.into(),
        emulated,
    });
    let buildkit = match ctx.opts.buildkit {
        BuildkitMode::On => true,
        BuildkitMode::Off => false,
        BuildkitMode::Auto => engine.info.buildkit,
    };
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_CELL.to_string(), cell_id.clone());
    labels.insert(LABEL_INPUTS.to_string(), plan.inputs.clone());
    labels.insert(LABEL_BUILD.to_string(), build_id.to_string());
    labels.insert(
        crate::engine::cleanup::LABEL_HISTORY.to_string(),
        ctx.store.history_id().to_string(),
    );
    let req = BuildRequest {
        cell_id: cell_id.clone(),
        dockerfile,
        context_files: vec![],
        context_dir,
        platform: plan.platform.clone(),
        tag: plan.tag.clone(),
        labels,
        network: ctx.opts.network,
        buildkit,
        no_cache: plan.no_cache,
        pull: plan.pull,
        idle_timeout: ctx.opts.idle_timeout,
    };
    log.line(format!(
        "imagegrid: building {cell_id} on engine {} ({}{}), {} builder, attempt {}",
        engine.name(),
        plan.platform,
        if emulated { ", emulated" } else { "" },
        if buildkit { "BuildKit" } else { "classic" },
        attempts + 1
    ));
    let mut step: Option<String> = None;
    let mut cached = 0usize;
    let result = engine
        .build(&req, cancel, |p| match p {
            BuildProgress::Line(l) => {
                cached += usize::from(is_cached_step(&l));
                log.line(l)
            }
            BuildProgress::Step {
                current,
                total,
                name,
            } => {
                step = Some(name.clone());
                ctx.send(BuildEvent::Step {
                    cell: cell_id.clone().into(),
                    current,
                    total,
                    name,
                });
            }
        })
        .await;
    // A step the container runtime could not start, on an engine that stops answering right
    // after: the engine was going down (a graceful restart stops containers and may report
    // the step before it closes the stream). That is the engine's failure, retried as one,
    // not the recipe's.
    let result = match result {
        Err(BuildError::Failed(message))
            if message.contains("unable to start container process")
                && engine_going_away(engine).await =>
        {
            Err(BuildError::Engine(crate::engine::EngineError::new(
                engine.name(),
                crate::engine::EngineErrorKind::Lost,
                format!("the engine stopped while the step started: {message}"),
            )))
        }
        other => other,
    };
    // How a build that produced no image ended: its status, record and outcome.
    let ended = |status: BuildStatus, failure: String| {
        let f = Finish {
            failure: Some(failure),
            ..Default::default()
        };
        (
            status,
            f,
            TaskOutcome::Done {
                status,
                image_id: None,
                cause: None,
                size: None,
                cached,
            },
        )
    };
    let (status, finish, outcome) = match result {
        Ok(img) => {
            if plan.cell.level == Level::Base {
                let pin = pinned_base_ref(&plan.cell, &ctx.opts.tags, &img.image_id);
                if let Err(e) = engine.tag(&img.image_id, &pin).await {
                    log.line(format!(
                        "imagegrid: warning: cannot tag {pin}: {}",
                        e.message
                    ));
                }
            }
            if let Some(line) = super::upstream::record(ctx, engine, plan, build_id).await {
                log.line(line);
            }
            let f = Finish {
                image_id: Some(img.image_id.clone()),
                size: Some(img.size),
                layers: img.layers,
                failure: None,
                failure_record: None,
                cause: None,
            };
            (
                BuildStatus::Succeeded,
                f,
                TaskOutcome::Done {
                    status: BuildStatus::Succeeded,
                    image_id: Some(img.image_id),
                    cause: None,
                    size: u64::try_from(img.size).ok(),
                    cached,
                },
            )
        }
        Err(BuildError::Cancelled) => {
            log.line(
                "imagegrid: cancelled; the engine stops the build when the stream closes".into(),
            );
            ended(BuildStatus::Cancelled, "cancelled".into())
        }
        Err(e @ (BuildError::Failed(_) | BuildError::Judged(_))) => {
            // A failure judged after the stream ended (the image it made) is no step's, and
            // the log of a build that ran to its end does not explain it.
            let (message, step, tail) = match e {
                BuildError::Judged(m) => {
                    log.line(format!("imagegrid: {m}"));
                    (m, None, Vec::new())
                }
                e => (e.to_string(), step.as_deref(), log.tail()),
            };
            let record = summary::failure_record(step, &tail, &message);
            let cause = log.cause(&message, Some(&record));
            // The failure line leads with the cause when a rule matched.
            let line = crate::model::failure_line::failure_line(cause.lead().as_deref(), &record);
            let (status, mut f, _) = ended(BuildStatus::Failed, line);
            f.failure_record = Some(record);
            f.cause = Some(cause.clone());
            (status, f, failed(Some(cause)))
        }
        Err(BuildError::Engine(e)) => {
            let ping = if e.is_transient() {
                engine.ping().await
            } else {
                Err(e.clone())
            };
            let back = ping.is_ok();
            if e.is_transient() && attempts < ctx.opts.retries {
                // Retry even when the engine does not answer yet: a restarted engine is back
                // in seconds, and the scheduler waits `reconnect_wait` for it (or another).
                let reason = format!("transient engine error, retrying: {}", e.message);
                log.line(format!("imagegrid: {reason}"));
                let f = Finish {
                    failure: Some(reason.clone()),
                    ..Default::default()
                };
                let lost = format!("engine {} lost during build: {}", engine.name(), e.message);
                let down = ping.err().map(|p| p.message);
                (
                    BuildStatus::Interrupted,
                    f,
                    TaskOutcome::Retry { reason, lost, down },
                )
            } else {
                let reason = format!("engine {} lost during build: {}", engine.name(), e.message);
                log.line(format!("imagegrid: {reason}"));
                let cause = log.cause(&reason, None);
                let f = Finish {
                    failure: Some(reason.clone()),
                    cause: Some(cause.clone()),
                    ..Default::default()
                };
                let outcome = if back {
                    failed(Some(cause))
                } else {
                    TaskOutcome::EngineLost {
                        reason,
                        cause: Some(cause),
                    }
                };
                (BuildStatus::Failed, f, outcome)
            }
        }
    };
    if cached > 0 {
        log.line(format!("imagegrid: {cached} steps from the engine's cache"));
    }
    let (previous_size, log_path) = record::finish(ctx, &cell_id, build_id, status, &finish).await;
    if !matches!(outcome, TaskOutcome::Retry { .. }) {
        ctx.send(BuildEvent::Finished(CellResult {
            cell: cell_id.into(),
            status,
            build_id: Some(build_id.into()),
            engine: Some(engine.name().to_string().into()),
            image_id: finish.image_id,
            size: finish.size,
            previous_size,
            failure: finish.failure,
            failure_record: finish.failure_record,
            cause: finish.cause,
            duration_secs: Some(started.elapsed().as_secs_f64()),
            log_path: Some(log_path.display().to_string()),
        }));
    }
    outcome
}

/// Is this build output line an engine saying a step came from its cache? BuildKit's
/// `#5 CACHED` (a vertex with `cached: true`, as [`crate::engine::build`] writes it) or the
/// classic builder's ` ---> Using cache`.
pub(super) fn is_cached_step(line: &str) -> bool {
    let l = line.trim();
    l == "---> Using cache"
        || l.strip_prefix('#').is_some_and(|rest| {
            rest.split_once(' ').is_some_and(|(n, text)| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && text == "CACHED"
            })
        })
}

/// The opam-repository checkout, if it holds `commit` (its detached `HEAD`): the context
/// a text that copies the context's root is built from. Else why not.
fn checkout_at(dir: &std::path::Path, commit: Option<&str>) -> Result<std::path::PathBuf, String> {
    let Some(commit) = commit else {
        return Err(format!(
            "the recipe copies the opam-repository checkout, which is not resolved yet (`imagegrid inputs --refresh`); {} is not built from a moving ref",
            dir.display()
        ));
    };
    let head = std::fs::read_to_string(dir.join(".git/HEAD")).unwrap_or_default();
    if head.trim() != commit {
        return Err(format!(
            "the opam-repository checkout {} is not at the pinned commit {commit} (HEAD {}); another resolution moved it: plan the build again",
            dir.display(),
            head.trim()
        ));
    }
    Ok(dir.to_path_buf())
}

/// Does the engine stop answering within three seconds? Polled, since a daemon that is
/// shutting down still answers for a moment after it has stopped the build's container.
async fn engine_going_away(engine: &Engine) -> bool {
    for _ in 0..15 {
        if engine.ping().await.is_err() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_cached_step;

    #[test]
    fn cached_steps_of_both_builders() {
        assert!(is_cached_step("#7 CACHED"));
        assert!(is_cached_step(" ---> Using cache"));
        assert!(!is_cached_step("#7 DONE 0.1s"));
        assert!(!is_cached_step("# CACHED"));
        assert!(!is_cached_step("echo CACHED"));
        assert!(!is_cached_step(" ---> Running in 3f2a"));
    }
}
