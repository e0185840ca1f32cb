//! The terminal runtime: owns the terminal, feeds input and engine events into [`App`],
//! runs effects, and redraws at most every 16 ms and only when something changed.
//! The terminal is restored on quit, panic (ratatui's hook), Ctrl-C and SIGTERM.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind};
use crossterm::execute;
use futures_util::StreamExt;

use super::app::{App, Effect};
use crate::cli::Exit;
use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::engine::EngineSpec;
use crate::matrix::Matrix;
use crate::publish::{self, PublishContext, PublishEvent, RetryPolicy};
use crate::scheduler::{Command, RunOptions, Scheduler, SchedulerHandle};
use crate::store::Store;

/// Smallest time between two frames (about 60 per second).
const FRAME: Duration = Duration::from_millis(16);

/// Results of background reads.
enum Loaded {
    Log {
        cell: String,
        lines: Vec<String>,
        skipped: u64,
    },
    History {
        cell: String,
        builds: Vec<crate::store::BuildRecord>,
    },
}

/// Everything effects need.
struct Core {
    loaded: LoadedConfig,
    matrix: Matrix,
    renderer: Arc<Renderer>,
    store: Arc<Mutex<Store>>,
    opts: RunOptions,
    handle: SchedulerHandle,
    /// Where a running publish reports.
    publish_tx: tokio::sync::mpsc::UnboundedSender<PublishMsg>,
}

/// What a publish task reports to the event loop.
enum PublishMsg {
    Event(PublishEvent),
    /// It stopped (credentials, registry, plan).
    Failed(String),
}

/// Open the TUI over a config and matrix.
pub async fn run(loaded: LoadedConfig, matrix: Matrix, intro: Option<String>) -> Result<u8, Exit> {
    let store = Store::open(&loaded.data_dir())?;
    let latest = store.latest_per_cell()?;
    let stale: BTreeSet<String> = crate::cli::stale_ids(&loaded, &matrix, &store)?;
    let mut prev = HashMap::new();
    for (cell, rec) in store.last_success_per_cell()? {
        if let Some(p) = store.previous_success(&cell, rec.id)?.and_then(|r| r.size) {
            prev.insert(cell, p);
        }
    }
    let sizes = &loaded.config.sizes;
    let mut app = App::new(
        matrix.clone(),
        &latest,
        &stale,
        (sizes.max_growth_bytes, sizes.max_growth_percent),
    );
    app.set_previous_sizes(&prev);
    app.message = intro;
    app.set_publish_context(
        loaded.config.tags.clone(),
        publish::plan::built_from_history(&store.last_success_per_cell()?),
    );

    let mut opts = RunOptions::from_config(&loaded);
    opts.wait_for_engines = true;
    let renderer = Arc::new(Renderer::new(loaded.templates_dir().as_deref()));
    let store = Arc::new(Mutex::new(store));
    let specs = EngineSpec::all(&loaded, &matrix);
    let (scheduler, handle, commands, mut events) = Scheduler::new(
        specs,
        store.clone(),
        renderer.clone(),
        Arc::new(matrix.clone()),
        opts.clone(),
    );
    let scheduler_task = tokio::spawn(scheduler.run(commands, false));
    let (publish_tx, mut publish_rx) = tokio::sync::mpsc::unbounded_channel();
    let core = Core {
        loaded,
        matrix,
        renderer,
        store,
        opts,
        handle: handle.clone(),
        publish_tx,
    };

    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let result = event_loop(&mut terminal, &mut app, &core, &mut events, &mut publish_rx).await;
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();

    handle.send(Command::Shutdown);
    let _ = tokio::time::timeout(Duration::from_secs(5), scheduler_task).await;
    result.map(|_| 0)
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    core: &Core,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::scheduler::BuildEvent>,
    publishes: &mut tokio::sync::mpsc::UnboundedReceiver<PublishMsg>,
) -> Result<(), Exit> {
    let mut input = EventStream::new();
    // Results of background reads (stored logs), so the loop never waits on the disk.
    let (loaded_tx, mut loaded_rx) = tokio::sync::mpsc::unbounded_channel::<Loaded>();
    for e in app.focus_effects() {
        apply(e, app, core, &loaded_tx);
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Exit::error(format!("cannot watch SIGTERM: {e}")))?;
    let mut spinner = tokio::time::interval(Duration::from_millis(120));
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            terminal
                .draw(|f| super::draw::draw(f, app))
                .map_err(|e| Exit::error(format!("terminal: {e}")))?;
            last_draw = Instant::now();
            dirty = false;
        }
        let wait = if dirty {
            FRAME.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let mut effects = Vec::new();
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => { effects = app.on_key(k); dirty = true; }
                Some(Ok(Event::Mouse(m))) => { effects = app.on_mouse(m); dirty = true; }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Exit::error(format!("terminal input: {e}"))),
                None => return Ok(()),
            },
            ev = events.recv() => {
                if let Some(ev) = ev {
                    app.on_event(ev);
                    // Drain the burst before drawing once.
                    while let Ok(ev) = events.try_recv() {
                        app.on_event(ev);
                    }
                    dirty = true;
                }
            }
            _ = spinner.tick() => {
                if app.active_count() > 0 {
                    app.tick += 1;
                    dirty = true;
                }
            }
            Some(loaded) = loaded_rx.recv() => {
                match loaded {
                    Loaded::Log { cell, lines, skipped } => app.on_log_loaded(&cell, lines, skipped),
                    Loaded::History { cell, builds } => app.on_history_loaded(&cell, builds),
                }
                dirty = true;
            }
            Some(msg) = publishes.recv() => {
                match msg {
                    PublishMsg::Event(ev) => app.on_publish_event(ev),
                    PublishMsg::Failed(e) => app.on_publish_failed(&e),
                }
                dirty = true;
            }
            _ = sigterm.recv() => { core.handle.send(Command::CancelAll); return Ok(()); }
            _ = tokio::signal::ctrl_c() => { core.handle.send(Command::CancelAll); return Ok(()); }
            _ = tokio::time::sleep(wait) => {}
        }
        for e in effects {
            if apply(e, app, core, &loaded_tx) {
                return Ok(());
            }
        }
    }
}

/// Run one effect; true means quit.
fn apply(
    effect: Effect,
    app: &mut App,
    core: &Core,
    loaded: &tokio::sync::mpsc::UnboundedSender<Loaded>,
) -> bool {
    match effect {
        Effect::LoadLog { cell, path } => {
            let tx = loaded.clone();
            tokio::task::spawn_blocking(move || {
                let (lines, skipped) = read_log_tail(
                    std::path::Path::new(&path),
                    super::app::LOG_MAX_BYTES as u64,
                );
                let _ = tx.send(Loaded::Log {
                    cell,
                    lines,
                    skipped,
                });
            });
        }
        Effect::LoadHistory(cell) => {
            let tx = loaded.clone();
            let store = core.store.clone();
            tokio::task::spawn_blocking(move || {
                let builds = store
                    .lock()
                    .ok()
                    .and_then(|s| s.for_cell(&cell).ok())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|b| b.status == crate::store::BuildStatus::Succeeded)
                    .collect();
                let _ = tx.send(Loaded::History { cell, builds });
            });
        }
        Effect::Build { cells, no_cache } => {
            let cells: Vec<&crate::matrix::Cell> =
                cells.iter().filter_map(|id| core.matrix.cell(id)).collect();
            let mut opts = core.opts.clone();
            opts.no_cache = no_cache;
            let plan = match core.store.lock() {
                Ok(store) => Scheduler::plan(&core.matrix, &core.renderer, &store, &opts, &cells),
                Err(_) => Err("history store unavailable".into()),
            };
            match plan {
                Ok(p) => core.handle.send(Command::Build(p)),
                Err(e) => app.message = Some(format!("cannot plan: {e}")),
            }
        }
        Effect::Publish { cells } => start_publish(core, &cells),
        Effect::Cancel(cells) => {
            for c in cells {
                core.handle.send(Command::Cancel(c));
            }
        }
        Effect::LoadDockerfile(id) => {
            let text = match core.matrix.cell(&id) {
                Some(c) => core
                    .renderer
                    .render(&core.matrix, c, None, &core.loaded.config.tags)
                    .unwrap_or_else(|e| format!("cannot render: {e}")),
                None => "no such cell".into(),
            };
            app.dockerfile = Some((id, text));
        }
        Effect::SaveLog { cell } => {
            let build = app.cells.get(&cell).and_then(|c| c.build_id);
            app.message = Some(match (build, core.store.lock()) {
                (Some(b), Ok(store)) => {
                    let src = store.log_path(b);
                    let dest = std::env::current_dir()
                        .unwrap_or_default()
                        .join(format!("imagegrid-{}-build{b}.log", cell.replace('/', "_")));
                    match std::fs::copy(&src, &dest) {
                        Ok(_) => format!("saved {}", dest.display()),
                        Err(e) => {
                            format!("cannot save {} to {}: {e}", src.display(), dest.display())
                        }
                    }
                }
                _ => format!("{cell} has no build log yet"),
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
            core.handle.send(Command::CancelAll);
            return true;
        }
    }
    false
}

/// Plan a publish of `cells` from the history as it is now and run it in the background;
/// its events come back through `core.publish_tx`.
fn start_publish(core: &Core, cells: &[String]) {
    let tx = core.publish_tx.clone();
    let refs: Vec<&crate::matrix::Cell> =
        cells.iter().filter_map(|id| core.matrix.cell(id)).collect();
    let plan = match core.store.lock() {
        Ok(store) => store
            .last_success_per_cell()
            .map_err(|e| e.to_string())
            .map(|h| publish::plan::built_from_history(&h))
            .and_then(|built| {
                publish::plan(&core.matrix, &core.loaded.config.tags, &refs, &built)
                    .map_err(|e| e.to_string())
            }),
        Err(_) => Err("history store unavailable".into()),
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(PublishMsg::Failed(e));
            return;
        }
    };
    let loaded = core.loaded.clone();
    let engines = EngineSpec::all(&core.loaded, &core.matrix);
    let store = core.store.clone();
    tokio::spawn(async move {
        let registry = loaded.config.tags.registry.clone();
        let credentials =
            match publish::auth::resolve(&loaded, &registry, &publish::auth::docker_config_dir())
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(PublishMsg::Failed(e.to_string()));
                    return;
                }
            };
        let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
        let forward = {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(ev) = erx.recv().await {
                    let _ = tx.send(PublishMsg::Event(ev));
                }
            })
        };
        let ctx = PublishContext {
            engines,
            credentials,
            retry: RetryPolicy::from_config(&loaded.config.publish),
            store: &store,
        };
        let result = publish::publish(&plan, ctx, &etx).await;
        drop(etx);
        let _ = forward.await;
        if let Err(e) = result {
            let _ = tx.send(PublishMsg::Failed(e.to_string()));
        }
    });
}

/// The last `max_bytes` of a stored log as lines, and how many lines came before them.
/// Stored logs are already sanitised; a missing file reads as one line saying so.
fn read_log_tail(path: &std::path::Path, max_bytes: u64) -> (Vec<String>, u64) {
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
        let mut head = std::io::BufReader::new(f.try_clone().expect("file handle")).take(start);
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
