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
use crate::store::{BuildRecord, BuildStatus};

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

impl Executor {
    /// Run one effect; true means quit.
    pub fn apply(&self, effect: Effect, app: &App) -> bool {
        match effect {
            Effect::LoadLog { cell, path } => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let (lines, skipped) = read_log_tail(
                        std::path::Path::new(&path),
                        super::state::LOG_MAX_BYTES as u64,
                    );
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
                        .try_call(move |s| s.for_cell(&id))
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|b| b.status == BuildStatus::Succeeded)
                        .collect();
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

/// Copy a cell's build log to the working directory; the status line says what happened.
fn save_log(session: &Session, cell: &str, build: Option<i64>) -> String {
    let Some(b) = build else {
        return format!("{cell} has no build log yet");
    };
    let src = session.store.log_path(b);
    let dest = std::env::current_dir()
        .unwrap_or_default()
        .join(format!("imagegrid-{}-build{b}.log", cell.replace('/', "_")));
    match std::fs::copy(&src, &dest) {
        Ok(_) => format!("saved {}", dest.display()),
        Err(e) => format!("cannot save {} to {}: {e}", src.display(), dest.display()),
    }
}

/// The last `max_bytes` of a stored log as lines, and how many lines came before them.
/// Stored logs are already sanitised; a missing file reads as one line saying so.
pub fn read_log_tail(path: &std::path::Path, max_bytes: u64) -> (Vec<String>, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return (vec![format!("cannot read {}: {e}", path.display())], 0),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    let mut skipped = 0;
    if start > 0 {
        // Count the lines before the tail without holding them.
        let Ok(clone) = f.try_clone() else {
            return (vec![format!("cannot read {}", path.display())], 0);
        };
        let mut head = std::io::BufReader::new(clone).take(start);
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = head.read(&mut buf) {
            if n == 0 {
                break;
            }
            skipped += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
    }
    let _ = f.seek(SeekFrom::Start(start));
    let mut text = Vec::new();
    let _ = f.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // a partial first line
        skipped += 1;
    }
    (lines, skipped)
}
