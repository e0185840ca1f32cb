//! The one effect executor of the TUI. The rule: state transitions (`App::on_key`, `on_event`)
//! are pure and return [`Effect`]s; this file runs them, and nothing here waits on the disk,
//! the history store, a template or an engine on the event loop. Such work goes to
//! `spawn_blocking` (or a task) and comes back as a [`Loaded`] message that the loop folds in.

use std::sync::Arc;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use tokio::sync::mpsc::UnboundedSender;

use super::state::{App, Effect};
use crate::matrix::Cell;
use crate::publish::{PublishEvent, TagPlan};
use crate::scheduler::{Command, RunOptions, SchedulerHandle};
use crate::session::Session;
use crate::store::BuildRecord;

/// Results of background work, folded into the state by the event loop.
pub enum Loaded {
    /// The tail of a stored log.
    Log {
        cell: String,
        lines: Vec<String>,
        skipped: u64,
    },
    /// A cell's successful builds, oldest first.
    History {
        cell: String,
        builds: Vec<BuildRecord>,
    },
    /// A rendered Dockerfile (or the error text).
    Dockerfile {
        cell: String,
        text: String,
    },
    /// A line for the status bar (a saved log, a plan that failed).
    Message(String),
    /// A publish event, or the reason a publish stopped.
    Publish(PublishEvent),
    PublishFailed(String),
    /// The plan file read again: the session over its matrix, the history seen through it,
    /// and the cells the new plan changed from the old one, with why.
    PlanReloaded(Box<PlanReload>),
}

/// What reading the plan again brings back: see [`Loaded::PlanReloaded`].
pub struct PlanReload {
    pub session: Session,
    pub history: crate::session::HistoryView,
    pub changed: crate::why::Reasons,
}

impl Loaded {
    /// Fold the result into the state (what the event loop does with each message).
    pub fn fold_into(self, app: &mut App) {
        match self {
            Loaded::Log {
                cell,
                lines,
                skipped,
            } => app.on_log_loaded(&cell, lines, skipped),
            Loaded::History { cell, builds } => app.on_history_loaded(&cell, builds),
            Loaded::Dockerfile { cell, text } => app.on_dockerfile_loaded(cell, text),
            Loaded::Message(m) => app.message = Some(m),
            Loaded::Publish(ev) => app.on_publish_event(ev),
            Loaded::PublishFailed(e) => app.on_publish_failed(&e),
            // Swaps the session and the scheduler's matrix too: the runtime's to handle.
            Loaded::PlanReloaded(r) => {
                app.on_plan_reloaded((*r.session.matrix).clone(), &r.history, &r.changed)
            }
        }
    }
}

/// Everything effects need: the shared session and the running scheduler.
pub struct Executor {
    pub session: Session,
    pub opts: RunOptions,
    pub handle: SchedulerHandle,
    pub tx: UnboundedSender<Loaded>,
}

/// The status line after the prune that follows a run: what it removed, or None when it
/// removed nothing (the message would only hide the run's own `run done: …`). Compressing
/// finished logs happens after every run and is not news.
fn prune_message(r: &crate::session::prune::PruneReport) -> Option<String> {
    use crate::util::words::count;
    let removed: usize = r.engines.iter().map(|e| e.removed).sum();
    let pruned = r.logs.pruned.len();
    if removed == 0 && pruned == 0 {
        return None;
    }
    Some(format!(
        "after the run: pruned {}, removed {}",
        count(pruned, "log", "logs"),
        count(removed, "superseded image", "superseded images")
    ))
}

impl Executor {
    /// After a run ended: the prune of `[history] prune_after_run` (logs and engines), in a
    /// task; its one-line outcome goes to the status bar.
    pub fn prune_after_run(&self) {
        if !self.session.loaded.config.history.prune_after_run {
            return;
        }
        let (session, tx) = (self.session.clone(), self.tx.clone());
        tokio::spawn(async move {
            let opts = crate::session::prune::PruneOptions {
                engines: true,
                dry_run: false,
            };
            let msg = match session.prune(opts).await {
                Ok(r) => prune_message(&r),
                Err(e) => Some(format!("prune after the run failed: {e}")),
            };
            if let Some(msg) = msg {
                let _ = tx.send(Loaded::Message(msg));
            }
        });
    }

    /// Run one effect; true means quit.
    pub fn apply(&self, effect: Effect, app: &App) -> bool {
        match effect {
            Effect::LoadLog { cell, path } => {
                let tx = self.tx.clone();
                let store = self.session.store.clone();
                tokio::spawn(async move {
                    // A log the retention policy removed says so (its history row stays).
                    let id = crate::store::logfile::id_of(std::path::Path::new(&path));
                    let pruned = match id {
                        Some(id) => store
                            .try_call(move |s| s.build(id))
                            .await
                            .ok()
                            .flatten()
                            .and_then(|r| r.log_pruned_at.map(|at| (r.id, at))),
                        None => None,
                    };
                    if let Some((id, at)) = pruned {
                        let _ = tx.send(Loaded::Log {
                            cell,
                            lines: vec![format!(
                                "log of build {id} pruned at {at} by the retention policy ([history] keep_logs_per_cell, keep_logs_days)"
                            )],
                            skipped: 0,
                        });
                        return;
                    }
                    let Ok((lines, skipped)) = tokio::task::spawn_blocking(move || {
                        read_log_tail(
                            std::path::Path::new(&path),
                            super::state::LOG_MAX_BYTES as u64,
                        )
                    })
                    .await
                    else {
                        return;
                    };
                    let _ = tx.send(Loaded::Log {
                        cell,
                        lines,
                        skipped,
                    });
                });
            }
            Effect::LoadHistory(cell) => {
                let tx = self.tx.clone();
                let store = self.session.store.clone();
                tokio::spawn(async move {
                    let id = cell.clone();
                    let builds = store
                        .try_call(move |s| s.successes_of(&id))
                        .await
                        .unwrap_or_default();
                    let _ = tx.send(Loaded::History { cell, builds });
                });
            }
            Effect::Build { cells, no_cache } => {
                // Planning reads the history and renders up to three templates per cell:
                // in a task (the session reads through the store's thread and renders on a
                // blocking one).
                let session = self.session.clone();
                let handle = self.handle.clone();
                let tx = self.tx.clone();
                let mut opts = self.opts.clone();
                opts.no_cache = no_cache;
                tokio::spawn(async move {
                    let refs: Vec<&Cell> = cells
                        .iter()
                        .filter_map(|id| session.matrix.cell(id))
                        .collect();
                    match session.plan(&opts, &refs).await {
                        Ok(plan) => handle.send(Command::Build(plan)),
                        Err(e) => {
                            let _ = tx.send(Loaded::Message(format!("cannot plan: {e}")));
                        }
                    }
                });
            }
            Effect::Publish { plan } => self.start_publish(*plan),
            Effect::Cancel(cells) => {
                for c in cells {
                    self.handle.send(Command::Cancel(c.into()));
                }
            }
            Effect::LoadDockerfile(id) => {
                let session = self.session.clone();
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let text = match session.matrix.cell(&id) {
                        Some(c) => session
                            .renderer
                            .render(&session.matrix, c, None, &session.loaded.config.tags)
                            .unwrap_or_else(|e| format!("cannot render: {e}")),
                        None => "no such cell".into(),
                    };
                    let _ = tx.send(Loaded::Dockerfile { cell: id, text });
                });
            }
            Effect::SaveLog { cell } => {
                let build = app.progress.cells.get(&cell).and_then(|c| c.build_id);
                let session = self.session.clone();
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Loaded::Message(save_log(&session, &cell, build)));
                });
            }
            Effect::ReloadPlan => {
                let session = self.session.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let message = |m: String| {
                        let _ = tx.send(Loaded::Message(m));
                    };
                    let loaded = session.loaded.clone();
                    let matrix = match tokio::task::spawn_blocking(move || {
                        crate::matrix::Matrix::load(&loaded)
                    })
                    .await
                    {
                        Ok(Ok(m)) => m,
                        Ok(Err(e)) => return message(format!("cannot read the plan again: {e}")),
                        Err(e) => return message(format!("cannot read the plan again: {e}")),
                    };
                    let changed = match (&session.matrix.plan, &matrix.plan) {
                        (Some(old), Some(new)) => crate::why::plan_reasons(old, new),
                        _ => return message("the config no longer names a plan".into()),
                    };
                    let session = Session {
                        matrix: Arc::new(matrix),
                        ..session
                    };
                    match session.history_view().await {
                        Ok(history) => {
                            let _ = tx.send(Loaded::PlanReloaded(Box::new(PlanReload {
                                session,
                                history,
                                changed,
                            })));
                        }
                        Err(e) => message(format!("cannot read the history: {e}")),
                    }
                });
            }
            Effect::SetMouse(on) => {
                let _ = if on {
                    execute!(std::io::stdout(), EnableMouseCapture)
                } else {
                    execute!(std::io::stdout(), DisableMouseCapture)
                };
            }
            Effect::Quit => {
                self.handle.send(Command::CancelAll);
                return true;
            }
        }
        false
    }

    /// Run exactly the plan the confirm showed, in the background.
    fn start_publish(&self, plan: TagPlan) {
        let session = self.session.clone();
        let tx = self.tx.clone();
        let plan = Arc::new(plan);
        tokio::spawn(async move {
            let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
            let forward = {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(ev) = erx.recv().await {
                        let _ = tx.send(Loaded::Publish(ev));
                    }
                })
            };
            let result = session.publish(&plan, &etx).await;
            drop(etx);
            let _ = forward.await;
            if let Err(e) = result {
                let _ = tx.send(Loaded::PublishFailed(e.to_string()));
            }
        });
    }
}

/// Save a cell's build log to the working directory as plain text (the build's colour codes
/// removed, so that any pager or editor reads it); the status line says what happened and
/// where the coloured original is.
fn save_log(session: &Session, cell: &str, build: Option<i64>) -> String {
    let Some(b) = build else {
        return format!("{cell} has no build log yet");
    };
    let src = session.store.log_path(b);
    let dest = std::env::current_dir()
        .unwrap_or_default()
        .join(format!("imagegrid-{}-build{b}.log", cell.replace('/', "_")));
    match save_plain(&src, &dest) {
        Ok(()) => {
            // The coloured original, as the store keeps it (compressed once finished).
            let stored = crate::store::logfile::existing(&src).unwrap_or(src.clone());
            let pager = if stored.extension().is_some_and(|e| e == "zst") {
                format!("zstdcat {} | less -R", stored.display())
            } else {
                format!("less -R {}", stored.display())
            };
            format!(
                "saved {} (plain text, colour codes removed; `{pager}` shows the colours)",
                dest.display()
            )
        }
        Err(e) => format!("cannot save {} to {}: {e}", src.display(), dest.display()),
    }
}

/// Copy a stored log without its SGR colour codes, line by line.
fn save_plain(src: &std::path::Path, dest: &std::path::Path) -> std::io::Result<()> {
    use std::io::{BufRead, Write};
    // Finished logs are stored compressed: read through the store's log file reader.
    let input = std::io::BufReader::new(crate::store::logfile::open(src)?);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dest)?);
    for line in input.split(b'\n') {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        writeln!(out, "{}", crate::logs::strip_sgr(&text))?;
    }
    out.flush()
}

/// The last `max_bytes` of a stored log as lines, and how many lines came before them.
/// Stored logs are already sanitised, and compressed once finished (read either form); a
/// missing file reads as one line saying so.
pub fn read_log_tail(path: &std::path::Path, max_bytes: u64) -> (Vec<String>, u64) {
    match crate::store::logfile::tail(path, max_bytes) {
        Ok(t) => t,
        Err(e) => (vec![format!("cannot read {}: {e}", path.display())], 0),
    }
}

#[cfg(test)]
mod prune_message_tests {
    use super::prune_message;
    use crate::session::prune::{EnginePrune, PruneReport};
    use crate::store::retention::{LogPruneReport, PrunedLog};

    #[test]
    fn a_prune_that_removed_nothing_leaves_the_run_summary_on_the_status_line() {
        // After an offline run the status line read "pruned 0 logs, compressed 0, removed 0
        // superseded images" in place of "run done: …".
        let quiet = PruneReport {
            logs: LogPruneReport {
                compressed: 3,
                ..Default::default()
            },
            engines: vec![EnginePrune::default()],
        };
        assert_eq!(prune_message(&quiet), None);
        let busy = PruneReport {
            logs: LogPruneReport {
                pruned: vec![PrunedLog {
                    build: 1,
                    cell: "a/opam/amd64".into(),
                    bytes: 10,
                }],
                ..Default::default()
            },
            engines: vec![EnginePrune {
                removed: 2,
                ..Default::default()
            }],
        };
        assert_eq!(
            prune_message(&busy).as_deref(),
            Some("after the run: pruned 1 log, removed 2 superseded images")
        );
    }
}
