//! `imagegrid build`: the headless face of the scheduler. On a terminal a live progress
//! block; otherwise one line per event; with `--json` one JSON object per event.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

use super::report::{human_size, open_store, selected, stale_cells};
use super::{Exit, EXIT_ERROR, EXIT_FAILED};
use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::engine::EngineSpec;
use crate::matrix::{Cell, Matrix};
use crate::scheduler::{BuildEvent, Command, RunOptions, Scheduler, Summary};
use crate::store::BuildStatus;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Cells to build: ids or globs (distro/version/arch). A compiler cell brings its base
    /// along unless an up-to-date base image exists.
    pub selectors: Vec<String>,
    /// Only cells whose last build failed or was interrupted.
    #[arg(long)]
    pub failed: bool,
    /// Only cells whose inputs changed since their last successful build.
    #[arg(long)]
    pub stale: bool,
    /// One JSON object per event on stdout (logs included), the last one the summary.
    #[arg(long)]
    pub json: bool,
    /// At most N builds at once over all engines (each engine's max_parallel still holds).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Build without the engine's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Gate: exit 1 when a built image is larger than SIZE (e.g. 900MB, 1.2GiB).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Gate: exit 1 when a built image grew more than SIZE or PCT% over its previous success.
    #[arg(long, value_name = "SIZE|PCT")]
    pub max_growth: Option<String>,
}

/// A cell that breached a size gate.
#[derive(Debug, serde::Serialize)]
struct GateBreach {
    cell: String,
    size: i64,
    previous_size: Option<i64>,
    reason: String,
}

pub async fn run(loaded: &LoadedConfig, matrix: Matrix, args: BuildArgs) -> Result<u8, Exit> {
    if args.selectors.is_empty() && !args.failed && !args.stale {
        return Err(Exit::error("name the cells to build (e.g. `imagegrid build 'debian-13/*/amd64'`), or use --failed / --stale; `imagegrid build '*'` builds everything"));
    }
    if args.jobs == Some(0) {
        return Err(Exit::error("--jobs must be at least 1"));
    }
    let max_size = args
        .max_size
        .as_deref()
        .map(crate::sizes::parse_size)
        .transpose()
        .map_err(|e| Exit::error(format!("--max-size {e}")))?;
    let max_growth = args
        .max_growth
        .as_deref()
        .map(|g| crate::sizes::parse_limit(g, true))
        .transpose()
        .map_err(|e| Exit::error(format!("--max-growth {e}")))?;
    let store = open_store(loaded)?;
    let mut cells: Vec<&Cell> = selected(&matrix, &args.selectors)?;
    if args.failed || args.stale {
        let latest = store.latest_per_cell()?;
        let stale: Vec<String> = if args.stale {
            stale_cells(loaded, &matrix, &store)?
                .into_iter()
                .map(|c| c.id.clone())
                .collect()
        } else {
            vec![]
        };
        cells.retain(|c| {
            let failed = args.failed
                && latest.get(&c.id).is_some_and(|r| {
                    matches!(r.status, BuildStatus::Failed | BuildStatus::Interrupted)
                });
            failed || stale.contains(&c.id)
        });
    }
    if cells.is_empty() {
        eprintln!("imagegrid: nothing to build");
        return Ok(0);
    }
    let mut opts = RunOptions::from_config(loaded);
    opts.no_cache = args.no_cache;
    opts.max_total = args.jobs;
    let renderer = Renderer::new(loaded.templates_dir().as_deref());
    let plan = Scheduler::plan(&matrix, &renderer, &store, &opts, &cells).map_err(Exit::error)?;
    let specs = EngineSpec::all(loaded, &matrix);
    let (scheduler, handle, commands, mut events) = Scheduler::new(
        specs,
        Arc::new(Mutex::new(store)),
        Arc::new(renderer),
        Arc::new(matrix),
        opts,
    );
    let task = tokio::spawn(scheduler.run(commands, true));
    handle.send(Command::Build(plan));

    let mut view = View::new(if args.json {
        Mode::Json
    } else if std::io::stderr().is_terminal() {
        Mode::Live
    } else {
        Mode::Lines
    });
    let mut interrupts = 0;
    let mut engines_seen: BTreeMap<String, bool> = BTreeMap::new();
    let mut breaches: Vec<GateBreach> = Vec::new();
    let mut first_store_error: Option<String> = None;
    let summary: Summary = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(BuildEvent::Done(s)) => { view.event(&BuildEvent::Done(s.clone())); break s; }
                Some(ev) => {
                    if let BuildEvent::Engine(h) = &ev { engines_seen.insert(h.engine.clone(), h.reachable); }
                    if let BuildEvent::Finished(r) = &ev { breaches.extend(gate(r, max_size, max_growth)); }
                    if let BuildEvent::StoreError { message, .. } = &ev { first_store_error.get_or_insert_with(|| message.clone()); }
                    view.event(&ev);
                }
                None => break Summary::default(),
            },
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts > 1 { return Err(Exit { code: EXIT_ERROR, message: "interrupted twice: exiting without waiting; running builds stop when their streams close".into() }); }
                view.note("interrupt: cancelling every build (Ctrl-C again to quit at once)");
                handle.send(Command::CancelAll);
            }
        }
    };
    drop(handle);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    view.finish(&summary);
    if !breaches.is_empty() {
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "event": "gate", "breaches": breaches })
            );
        } else {
            eprintln!("imagegrid: {} cells breach the size gates:", breaches.len());
            for b in &breaches {
                eprintln!("  {:40} {:>10}  {}", b.cell, human_size(b.size), b.reason);
            }
        }
    }
    if summary.store_errors > 0 {
        // The builds' results were shown but not (all) kept: that is not a success.
        return Err(Exit {
            code: EXIT_ERROR,
            message: format!(
                "{} history or log write(s) failed, the first: {}; results shown here may be missing from `imagegrid history`",
                summary.store_errors,
                first_store_error.unwrap_or_default()
            ),
        });
    }
    if summary.succeeded == 0 && !engines_seen.is_empty() && engines_seen.values().all(|r| !r) {
        return Err(Exit {
            code: EXIT_ERROR,
            message: "no engine was reachable".into(),
        });
    }
    Ok(if summary.all_succeeded() && breaches.is_empty() {
        0
    } else {
        EXIT_FAILED
    })
}

/// The gates a finished cell breaches.
fn gate(
    r: &crate::scheduler::CellResult,
    max_size: Option<u64>,
    max_growth: Option<crate::sizes::Limit>,
) -> Vec<GateBreach> {
    let Some(size) = r.size.filter(|_| r.status == BuildStatus::Succeeded) else {
        return vec![];
    };
    let mut out = Vec::new();
    let breach = |reason: String| GateBreach {
        cell: r.cell.clone(),
        size,
        previous_size: r.previous_size,
        reason,
    };
    if let Some(max) = max_size {
        if size as u64 > max {
            out.push(breach(format!(
                "larger than --max-size {}",
                human_size(max as i64)
            )));
        }
    }
    if let (Some(limit), Some(prev)) = (max_growth, r.previous_size) {
        let d = crate::sizes::Delta::between(prev, size);
        if d.exceeds(limit) {
            let pct = d
                .percent
                .map(|p| format!(" ({p:+.1}%)"))
                .unwrap_or_default();
            out.push(breach(format!(
                "grew {}{pct} since {}, past --max-growth",
                human_size(d.bytes),
                human_size(prev)
            )));
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    Live,
    Lines,
}

/// The headless display.
struct View {
    mode: Mode,
    running: BTreeMap<String, (String, String)>,
    drawn: usize,
    last_draw: Instant,
    start: Instant,
    done: usize,
    failed: usize,
    queued: usize,
}

impl View {
    fn new(mode: Mode) -> View {
        View {
            mode,
            running: BTreeMap::new(),
            drawn: 0,
            last_draw: Instant::now(),
            start: Instant::now(),
            done: 0,
            failed: 0,
            queued: 0,
        }
    }

    fn note(&mut self, s: &str) {
        self.permanent(&format!("imagegrid: {s}"));
    }

    /// Print a line that stays (above the live block).
    fn permanent(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.mode == Mode::Live {
            self.clear(&mut err);
        }
        let _ = writeln!(err, "{line}");
    }

    fn clear(&mut self, err: &mut impl Write) {
        if self.drawn > 0 {
            let _ = write!(err, "\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn event(&mut self, ev: &BuildEvent) {
        if self.mode == Mode::Json {
            let mut out = std::io::stdout().lock();
            if let Ok(s) = serde_json::to_string(ev) {
                let _ = writeln!(out, "{s}");
            }
            return;
        }
        let t = self.start.elapsed().as_secs();
        let stamp = format!("[{:02}:{:02}]", t / 60, t % 60);
        match ev {
            BuildEvent::Queued { .. } => self.queued += 1,
            BuildEvent::Started {
                cell,
                engine,
                emulated,
                ..
            } => {
                self.queued = self.queued.saturating_sub(1);
                self.running
                    .insert(cell.clone(), (engine.clone(), "starting".into()));
                if self.mode == Mode::Lines {
                    self.permanent(&format!(
                        "{stamp} {cell}: started on {engine}{}",
                        if *emulated { " (emulated)" } else { "" }
                    ));
                }
            }
            BuildEvent::Step {
                cell,
                current,
                total,
                name,
            } => {
                if let Some(r) = self.running.get_mut(cell) {
                    r.1 = format!("step {current}/{total} {}", crate::logs::strip_sgr(name));
                }
            }
            BuildEvent::Retrying {
                cell,
                engine,
                attempt,
                reason,
            } => {
                self.running.remove(cell);
                self.queued += 1;
                self.permanent(&format!(
                    "{stamp} {cell}: retry {attempt} after a transient error on {engine}: {reason}"
                ));
            }
            BuildEvent::Finished(r) => {
                if self.running.remove(&r.cell).is_none() {
                    self.queued = self.queued.saturating_sub(1);
                }
                self.done += 1;
                let line = match r.status {
                    BuildStatus::Succeeded => {
                        let size = r.size.map(human_size).unwrap_or_default();
                        let delta = match (r.size, r.previous_size) {
                            (Some(s), Some(p)) if s != p => {
                                format!(" ({}{})", if s > p { "+" } else { "" }, human_size(s - p))
                            }
                            _ => String::new(),
                        };
                        format!(
                            "{stamp} {}: succeeded {size}{delta} in {:.1}s",
                            r.cell,
                            r.duration_secs.unwrap_or(0.0)
                        )
                    }
                    status => {
                        self.failed += 1;
                        format!(
                            "{stamp} {}: {status}: {}",
                            r.cell,
                            r.failure.as_deref().unwrap_or("")
                        )
                    }
                };
                self.permanent(&line);
            }
            BuildEvent::Engine(h) => {
                if !h.reachable {
                    if let Some(e) = &h.last_error {
                        self.permanent(&format!("{stamp} engine {}: unreachable: {e}", h.engine));
                    }
                }
            }
            BuildEvent::StoreError { message, .. } => {
                self.permanent(&format!("{stamp} imagegrid: {message}"));
            }
            BuildEvent::Log { .. } | BuildEvent::Done(_) => {}
        }
        if self.mode == Mode::Live && self.last_draw.elapsed() > Duration::from_millis(100) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        let mut err = std::io::stderr().lock();
        self.clear(&mut err);
        let width = crossterm::terminal::size()
            .map(|(w, _)| w as usize)
            .unwrap_or(100)
            .max(20);
        let mut lines = Vec::new();
        for (cell, (engine, step)) in &self.running {
            let mut l = format!("  {cell} on {engine}: {step}");
            if l.chars().count() > width - 1 {
                l = l.chars().take(width - 2).collect::<String>() + "…";
            }
            lines.push(l);
        }
        lines.push(format!(
            "  {} done ({} not ok), {} running, {} queued, {}s",
            self.done,
            self.failed,
            self.running.len(),
            self.queued,
            self.start.elapsed().as_secs()
        ));
        for l in &lines {
            let _ = writeln!(err, "{l}");
        }
        self.drawn = lines.len();
        self.last_draw = Instant::now();
    }

    fn finish(&mut self, s: &Summary) {
        if self.mode == Mode::Json {
            return;
        }
        let mut err = std::io::stderr().lock();
        self.clear(&mut err);
        let _ = writeln!(
            err,
            "imagegrid: {} succeeded, {} failed, {} skipped, {} cancelled in {:.1}s",
            s.succeeded, s.failed, s.skipped, s.cancelled, s.duration_secs
        );
    }
}
