//! The terminal runtime: owns the terminal, feeds input and engine events into [`App`],
//! hands effects to the [`Executor`], and redraws at most every 16 ms and only when something
//! changed. The terminal (raw mode, alternate screen, mouse capture) is restored on quit, on
//! a panic (a hook installed before the first frame), on Ctrl-C and on SIGTERM.

use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind};
use crossterm::execute;
use futures_util::StreamExt;

use super::effects::{Executor, Loaded};
use super::state::App;
use super::UiError;
use crate::config::LoadedConfig;
use crate::matrix::Matrix;
use crate::scheduler::{Command, RunMode};
use crate::session::Session;

/// Smallest time between two frames (about 60 per second).
const FRAME: Duration = Duration::from_millis(16);

/// Test only: when set to `1`, the first key panics inside the event loop, so that
/// tests/tui.rs can check the terminal is restored after a panic. Read once at startup; no
/// normal use sets it.
const TEST_PANIC_ENV: &str = "IMAGEGRID_TEST_PANIC";

/// Open the TUI over a config and matrix; `intro` is a first status line about stale cells,
/// shown only when some cell is stale. Returns the exit status of the session (0).
/// Errors: the history cannot be opened, or the terminal fails.
pub async fn run(
    loaded: LoadedConfig,
    matrix: Matrix,
    intro: Option<String>,
) -> Result<u8, UiError> {
    let session = Session::open(loaded, matrix)?;
    let mut app = initial_app(&session, intro).await?;
    app.mono = super::theme::monochrome(
        std::env::var("NO_COLOR").ok().as_deref(),
        std::env::var("TERM").ok().as_deref(),
    );

    let opts = session.run_options(RunMode::Interactive);
    let mut scheduling = session.start(opts.clone());
    let (tx, mut loaded_rx) = tokio::sync::mpsc::unbounded_channel::<Loaded>();
    let mut exec = Executor {
        session,
        opts,
        handle: scheduling.handle.clone(),
        tx,
    };

    let panic_on_key = std::env::var(TEST_PANIC_ENV).is_ok_and(|v| v == "1");
    let mut terminal = init_terminal();
    let result = event_loop(
        &mut terminal,
        &mut app,
        &mut exec,
        &mut scheduling.events,
        &mut loaded_rx,
        panic_on_key,
    )
    .await;
    restore_terminal();

    scheduling.handle.send(Command::Shutdown);
    let _ = tokio::time::timeout(Duration::from_secs(5), scheduling.task).await;
    result.map(|_| 0)
}

/// The state the TUI opens with: the matrix, each cell's latest build and staleness, size
/// deltas and the publish context, all read from `session`'s history.
/// Errors: the history cannot be read.
pub async fn initial_app(session: &Session, intro: Option<String>) -> Result<App, UiError> {
    let history = session.history_view().await?;
    let sizes = &session.loaded.config.sizes;
    let mut app = App::new(
        (*session.matrix).clone(),
        &history.latest,
        &history.stale,
        (sizes.max_growth_bytes, sizes.max_growth_percent),
    );
    app.set_previous_sizes(&history.previous_size);
    app.progress.set_reasons(&history.reasons);
    // The intro names what changed: shown only while something is stale. Else what could
    // not be checked (an upstream digest unknown), if anything.
    app.message = intro
        .filter(|_| !history.stale.is_empty())
        .or_else(|| (!history.notes.is_empty()).then(|| history.notes.join("; ")));
    app.set_publish_context(
        session.loaded.config.tags.clone(),
        crate::publish::plan::built_from_history(&history.last_success),
    );
    Ok(app)
}

/// Raw mode, alternate screen and mouse capture, with a panic hook that undoes all three
/// (ratatui's own hook restores the first two only) before the panic message prints.
fn init_terminal() -> ratatui::DefaultTerminal {
    let terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
        previous(info);
    }));
    terminal
}

/// Clear the screen and make the next draw paint every cell: what `Terminal::clear` does,
/// without its cursor-position query (ESC[6n), which waits up to 2 s for the terminal's answer
/// while this loop's `EventStream` reads the same input, and then fails the whole TUI ("the
/// cursor position could not be read", seen under load in tmux).
fn full_repaint(terminal: &mut ratatui::DefaultTerminal) -> Result<(), UiError> {
    use ratatui::backend::{Backend, ClearType};
    terminal
        .backend_mut()
        .clear_region(ClearType::All)
        .map_err(UiError::Terminal)?;
    // The frame last drawn is reset and becomes the one drawn next; the other one, already
    // reset, is what the next draw is compared with: every non-blank cell is written.
    terminal.swap_buffers();
    Ok(())
}

/// Undo [`init_terminal`].
fn restore_terminal() {
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    exec: &mut Executor,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<crate::scheduler::BuildEvent>,
    loaded_rx: &mut tokio::sync::mpsc::UnboundedReceiver<Loaded>,
    panic_on_key: bool,
) -> Result<(), UiError> {
    let mut input = EventStream::new();
    for e in app.focus_effects() {
        exec.apply(e, app);
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(UiError::Terminal)?;
    let mut spinner = tokio::time::interval(Duration::from_millis(120));
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    // What the detail pane shows, and the scroll position the user set: when either changes,
    // or the terminal is resized, the next frame is painted in full (ratatui otherwise paints
    // only the cells it believes changed, and a character the terminal draws narrower than
    // ratatui measures, such as an emoji newer than the terminal's tables, leaves the previous
    // frame's characters where ratatui thinks it drew; ratatui#2431, unicode-width#22).
    let mut shown = shown_source(app);
    let mut repaint = false;
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            let now = shown_source(app);
            if repaint || now != shown {
                full_repaint(terminal)?;
                shown = now;
                repaint = false;
            }
            let mut geometry = app.geometry;
            terminal
                .draw(|f| geometry = super::draw::draw(f, app))
                .map_err(UiError::Terminal)?;
            // Stored here, not by draw: drawing only reads the state.
            app.geometry = geometry;
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
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    assert!(!panic_on_key, "{TEST_PANIC_ENV}=1: a panic inside the TUI, as asked");
                    let top = app.log_view.top;
                    effects = app.on_key(k);
                    repaint |= app.log_view.top != top;
                    dirty = true;
                }
                Some(Ok(Event::Mouse(m))) => { effects = app.on_mouse(m); dirty = true; }
                Some(Ok(Event::Resize(..))) => { repaint = true; dirty = true; }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(UiError::Terminal(e)),
                None => return Ok(()),
            },
            ev = events.recv() => {
                if let Some(ev) = ev {
                    let mut done = matches!(ev, crate::scheduler::BuildEvent::Done(_));
                    app.on_event(ev);
                    // Drain the burst before drawing once.
                    while let Ok(ev) = events.try_recv() {
                        done |= matches!(ev, crate::scheduler::BuildEvent::Done(_));
                        app.on_event(ev);
                    }
                    if done {
                        exec.prune_after_run();
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
                    Loaded::PlanReloaded(r) => {
                        // From now on the session and the scheduler build the new plan.
                        exec.handle.send(Command::SetMatrix(r.session.matrix.clone()));
                        app.on_plan_reloaded((*r.session.matrix).clone(), &r.history, &r.changed);
                        exec.session = r.session;
                    }
                    other => other.fold_into(app),
                }
                dirty = true;
            }
            _ = sigterm.recv() => { exec.handle.send(Command::CancelAll); return Ok(()); }
            _ = tokio::signal::ctrl_c() => { exec.handle.send(Command::CancelAll); return Ok(()); }
            _ = tokio::time::sleep(wait) => {}
        }
        for e in effects {
            if exec.apply(e, app) {
                return Ok(());
            }
        }
    }
}

/// Which content the detail pane shows: the focused cell and the kind of view.
fn shown_source(app: &App) -> (Option<String>, std::mem::Discriminant<super::state::Detail>) {
    (app.focused(), std::mem::discriminant(&app.detail))
}
