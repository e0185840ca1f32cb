//! `imagegrid build`: the headless face of the scheduler. On a terminal a live progress
//! block; otherwise one line per event; with `--json` one JSON object per event.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;

use super::{Exit, EXIT_ERROR, EXIT_FAILED};
use crate::config::LoadedConfig;
use crate::matrix::{Cell, Matrix};
use crate::progress::{eta_words, summary_line, Notice, RunProgress, Status};
use crate::scheduler::{BuildEvent, Command, RunMode, Summary};
use crate::session::Session;
use crate::store::BuildStatus;
use crate::util::units::human_size;

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
    /// Build nothing: list the cells the build would start, in build order, each with why
    /// (with --json: one array of {"cell", "reasons": [{"kind", "detail", "diff"?}]}).
    #[arg(long)]
    pub dry_run: bool,
    /// At most N builds at once over all engines (each engine's max_parallel still holds).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Build without the engine's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Rebuild each named cell with exactly the inputs its last run used (its recorded
    /// Dockerfile text, pinned commits and base image), to tell a flaky failure from an
    /// input that broke it.
    #[arg(long, conflicts_with_all = ["failed", "stale"])]
    pub same_inputs: bool,
    /// Build compiler cells only where their base image is: never move it to another
    /// engine (`[build] transfer = false` for this run).
    #[arg(long)]
    pub no_transfer: bool,
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
    let session = Session::open(loaded.clone(), matrix)?;
    if args.stale || args.dry_run {
        // The upstream images' digests, asked again when older than `[inputs] refresh`.
        let (_, unsaved) =
            crate::session::upstream::check(loaded, &session.matrix, &session.renderer, false)
                .await?;
        if let Some(e) = unsaved {
            eprintln!("imagegrid: {e}");
        }
    }
    let history = session.history_view().await?;
    for n in &history.notes {
        eprintln!("imagegrid: note: {n}");
    }
    let matrix = session.matrix.clone();
    // "All" leaves out the archive and Windows cells unless named by their ids.
    let sels = matrix.parse_selectors(&args.selectors)?;
    let mut cells: Vec<&Cell> = matrix.select_to_build(&sels);
    if args.failed || args.stale {
        let mut progress = RunProgress::new(&matrix, &history.latest, &history.stale);
        progress.cells.retain(|id, c| {
            (args.failed && c.status.is_failed()) || (args.stale && history.stale.contains(id))
        });
        cells.retain(|c| progress.cells.contains_key(&c.id));
    }
    if cells.is_empty() {
        eprintln!("imagegrid: nothing to build");
        return Ok(0);
    }
    let mut opts = session.run_options(RunMode::Batch);
    opts.no_cache = args.no_cache;
    opts.transfer &= !args.no_transfer;
    opts.max_total = args.jobs;
    let plan = if args.same_inputs {
        session.plan_same_inputs(&opts, &cells).await?
    } else {
        session.plan(&opts, &cells).await?
    };
    if args.dry_run {
        return dry_run(&plan, &history.reasons, args.json);
    }
    let scheduling = session.start(opts);
    let (handle, mut events, task) = (scheduling.handle, scheduling.events, scheduling.task);
    handle.send(Command::Build(plan));

    let mut view = View::new(
        RunProgress::new(&matrix, &history.latest, &history.stale),
        if args.json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Live
        } else {
            Mode::Lines
        },
    );
    let mut interrupts = 0;
    let mut breaches: Vec<GateBreach> = Vec::new();
    let mut first_store_error: Option<String> = None;
    let summary: Summary = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(BuildEvent::Done(s)) => { view.event(&BuildEvent::Done(s.clone())); break s; }
                Some(ev) => {
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
    if loaded.config.history.prune_after_run {
        // The policy by itself after each run (`[history] prune_after_run`): a note on stderr
        // when it removed something, never on the JSON event stream.
        let opts = crate::session::prune::PruneOptions {
            engines: true,
            dry_run: false,
        };
        match session.prune(opts).await {
            Ok(r) if super::prune::after_run_is_news(&r) => {
                let _ = super::prune::print_report(&mut std::io::stderr(), &r, false);
            }
            Ok(_) => {}
            Err(e) => eprintln!("imagegrid: prune after the run failed: {e}"),
        }
    }
    if !breaches.is_empty() {
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "event": "gate", "breaches": breaches })
            );
        } else {
            eprintln!(
                "imagegrid: {} the size gates:",
                crate::util::words::count(breaches.len(), "cell breaches", "cells breach")
            );
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
    let engines = &view.progress.engines;
    if summary.succeeded == 0
        && !engines.is_empty()
        && engines.values().all(|h| !h.reachable && h.tried)
    {
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
        cell: r.cell.to_string(),
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

/// The headless display: prints from the shared [`RunProgress`] as events fold into it.
struct View {
    mode: Mode,
    progress: RunProgress,
    drawn: usize,
    last_draw: Instant,
    start: Instant,
    /// The first estimate was printed (line mode).
    estimated: bool,
}

impl View {
    fn new(progress: RunProgress, mode: Mode) -> View {
        View {
            mode,
            progress,
            drawn: 0,
            last_draw: Instant::now(),
            start: Instant::now(),
            estimated: false,
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
        let notice = self.progress.apply(ev);
        if self.mode == Mode::Json {
            let mut out = std::io::stdout().lock();
            if let Ok(s) = serde_json::to_string(ev) {
                let _ = writeln!(out, "{s}");
            }
            return;
        }
        let t = self.start.elapsed().as_secs();
        let stamp = format!("[{:02}:{:02}]", t / 60, t % 60);
        match notice {
            Notice::Retrying {
                cell,
                engine,
                attempt,
                reason,
            } => self.permanent(&format!(
                "{stamp} {cell}: retry {attempt} after a transient error on {engine}: {reason}"
            )),
            Notice::EngineDown { engine, error } => {
                self.permanent(&format!("{stamp} engine {engine}: unreachable: {error}"))
            }
            Notice::Storage(message) => self.permanent(&format!("{stamp} imagegrid: {message}")),
            Notice::Transfer { cell, line } => self.permanent(&format!("{stamp} {cell}: {line}")),
            Notice::Done(_) | Notice::None => {}
        }
        match ev {
            BuildEvent::Started {
                cell,
                engine,
                emulated,
                ..
            } if self.mode == Mode::Lines => {
                self.permanent(&format!(
                    "{stamp} {cell}: started on {engine}{}",
                    if *emulated { " (emulated)" } else { "" }
                ));
            }
            BuildEvent::Finished(r) => {
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
                    status => format!(
                        "{stamp} {}: {status}: {}",
                        r.cell,
                        r.failure.as_deref().unwrap_or("")
                    ),
                };
                self.permanent(&line);
            }
            // Line mode says the run's estimate once, when it is first known.
            BuildEvent::Progress(eta) if self.mode == Mode::Lines && !self.estimated => {
                if let Some(words) = eta_words(eta).filter(|_| eta.eta_secs.is_some()) {
                    self.estimated = true;
                    self.permanent(&format!(
                        "{stamp} estimate: {words} for {} cells",
                        eta.cells_left
                    ));
                }
            }
            _ => {}
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
        let mut running: Vec<(&String, &crate::progress::CellProgress)> = self
            .progress
            .cells
            .iter()
            .filter(|(_, c)| c.status == Status::Building)
            .collect();
        running.sort_by(|a, b| a.0.cmp(b.0));
        for (cell, c) in running {
            let engine = c.engine.as_deref().unwrap_or("");
            let step = match (c.step, &c.step_name) {
                (Some((current, total)), Some(name)) => format!("step {current}/{total} {name}"),
                _ => "starting".into(),
            };
            let mut l = format!("  {cell} on {engine}: {step}");
            if l.chars().count() > width - 1 {
                l = l.chars().take(width - 2).collect::<String>() + "…";
            }
            lines.push(l);
        }
        let n = self.progress.counters;
        let eta = self
            .progress
            .eta
            .as_ref()
            .and_then(eta_words)
            .map(|w| format!(", {w}"))
            .unwrap_or_default();
        lines.push(format!(
            "  {} done ({} not ok), {} running, {} queued, {}s{eta}",
            n.done(),
            n.not_ok(),
            n.running,
            n.queued,
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
        let _ = writeln!(err, "imagegrid: {}", summary_line(s));
        for l in crate::progress::cause_lines(s) {
            let _ = writeln!(err, "imagegrid: {l}");
        }
    }
}

/// `build --dry-run`: the planned cells in build order, each with its reasons (a base the
/// plan brings along for a cell on it says so).
fn dry_run(
    plan: &[crate::scheduler::PlannedCell],
    reasons: &crate::why::Reasons,
    json: bool,
) -> Result<u8, Exit> {
    let rows: Vec<serde_json::Value> = plan
        .iter()
        .map(|p| {
            let why = reasons.get(&p.cell.id).cloned().unwrap_or_default();
            let why = if why.is_empty() {
                vec![serde_json::json!({
                    "kind": "selected",
                    "detail": if p.cell.base_id().is_none() {
                        "selected, or the base of a selected cell (no up-to-date image of it)"
                    } else {
                        "selected"
                    },
                })]
            } else {
                why.iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect()
            };
            serde_json::json!({"cell": p.cell.id, "reasons": why, "pull": p.pull})
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            let details: Vec<&str> = r["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["detail"].as_str())
                .collect();
            println!(
                "{}  {}",
                r["cell"].as_str().unwrap_or(""),
                details.join("; ")
            );
        }
    }
    Ok(0)
}
