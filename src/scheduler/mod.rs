//! The build queue: routes each cell to an engine that builds its arch (native before
//! emulated, least loaded first), honours per-engine limits, builds bases before their
//! compiler cells, cancels on request, and retries only transient engine errors.
//!
//! It runs as one actor task: commands come in over a channel, [`BuildEvent`]s go out over
//! another. The TUI and the headless CLI are two consumers of the same events.

pub mod events;
pub mod summary;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{BuildkitMode, LoadedConfig, NetworkMode, TagConfig};
use crate::dockerfile::{KeyOptions, Renderer};
use crate::engine::build::{
    BuildError, BuildProgress, BuildRequest, LABEL_BUILD, LABEL_CELL, LABEL_INPUTS,
};
use crate::engine::{Engine, EngineError, EngineSpec};
use crate::matrix::{Cell, Matrix};
use crate::store::{BuildStatus, Finish, NewBuild, Store};
pub use events::{BuildEvent, CellResult, EngineHealth, Summary};

/// How often a down engine is retried and an idle one pinged.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// Options for every build of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub network: NetworkMode,
    pub buildkit: BuildkitMode,
    pub pull: bool,
    pub no_cache: bool,
    pub idle_timeout: Duration,
    pub retries: u32,
    /// How long a cell to retry waits for an engine of its arch (when not `wait_for_engines`).
    pub reconnect_wait: Duration,
    /// Cap on builds running at once over all engines (`--jobs`).
    pub max_total: Option<usize>,
    pub tags: TagConfig,
    /// Who is driving the run: the TUI or a headless command.
    pub mode: RunMode,
}

/// The two ways a run is driven. The one place the faces differ inside the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// The TUI: the scheduler lives until shut down, and a cell whose arch has no reachable
    /// engine stays queued until one answers.
    Interactive,
    /// A headless command: the scheduler ends when its queue drains, and a cell whose arch has
    /// no engine back within `reconnect_wait` is failed.
    #[default]
    Batch,
}

impl RunMode {
    /// Keep cells queued while no engine for their arch is reachable.
    pub fn waits_for_engines(self) -> bool {
        self == RunMode::Interactive
    }
    /// End the scheduler once the queue has drained.
    pub fn exits_when_idle(self) -> bool {
        self == RunMode::Batch
    }
}

impl RunOptions {
    /// The config's build options.
    pub fn from_config(loaded: &LoadedConfig) -> RunOptions {
        let b = &loaded.config.build;
        RunOptions {
            network: b.network,
            buildkit: b.buildkit,
            pull: b.pull,
            no_cache: false,
            idle_timeout: Duration::from_secs(b.idle_timeout_secs.max(1)),
            retries: b.retries,
            reconnect_wait: Duration::from_secs(b.reconnect_wait_secs),
            max_total: None,
            tags: loaded.config.tags.clone(),
            mode: RunMode::Batch,
        }
    }

    pub fn key_options(&self) -> KeyOptions {
        KeyOptions {
            network: self.network,
        }
    }
}

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

/// One cell to build, with what it needs.
#[derive(Debug, Clone)]
pub struct PlannedCell {
    pub cell: Cell,
    pub inputs: String,
    pub platform: String,
    pub tag: String,
    /// A base image from an earlier run: (engine name, image id).
    pub prebuilt_base: Option<(String, String)>,
    /// Build without the engine's layer cache.
    pub no_cache: bool,
}

/// Commands to the scheduler.
#[derive(Debug)]
pub enum Command {
    /// Queue these cells (bases are added by [`Scheduler::plan`]).
    Build(Vec<PlannedCell>),
    /// Cancel one cell, queued or running.
    Cancel(String),
    /// Cancel everything.
    CancelAll,
    /// Stop after cancelling everything.
    Shutdown,
}

/// A handle to send commands.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl SchedulerHandle {
    pub fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }
}

/// Shared, cheap-to-clone context for build tasks.
#[derive(Clone)]
struct Ctx {
    store: Arc<Mutex<Store>>,
    renderer: Arc<Renderer>,
    matrix: Arc<Matrix>,
    opts: RunOptions,
    events: mpsc::UnboundedSender<BuildEvent>,
    /// Failed history and log writes since the last `Done` (build tasks count them too).
    store_errors: Arc<AtomicUsize>,
}

impl Ctx {
    /// Report a failed history or log write: counted for the summary and sent as an event.
    fn store_error(&self, cell: Option<&str>, message: String) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        let _ = self.events.send(BuildEvent::StoreError {
            cell: cell.map(str::to_string),
            message,
        });
    }
}

#[derive(Debug, Clone, PartialEq)]
enum JobState {
    Pending,
    Running {
        slot: usize,
        cancel: CancellationToken,
    },
    Ended {
        status: BuildStatus,
        slot: Option<usize>,
        image_id: Option<String>,
    },
}

struct Job {
    plan: PlannedCell,
    state: JobState,
    attempts: u32,
    /// Set while a retry waits for its engine: since when, and why the last attempt ended.
    retry: Option<(Instant, String)>,
}

struct Slot {
    spec: EngineSpec,
    engine: Option<Engine>,
    connecting: bool,
    /// The first connection attempt has finished (either way).
    tried: bool,
    running: usize,
    last_error: Option<String>,
    last_check: Instant,
}

enum Internal {
    Connected(usize, Box<Result<Engine, EngineError>>),
    Pinged(usize, Result<(), EngineError>),
    Ended(usize, TaskOutcome),
}

enum TaskOutcome {
    Done {
        status: BuildStatus,
        image_id: Option<String>,
    },
    /// Transient engine error with retries left: queue again. `down` says why the engine
    /// does not answer right now (restarting, say): the cell waits for it or another engine.
    Retry {
        reason: String,
        lost: String,
        down: Option<String>,
    },
    /// The engine is gone; the cell failed with that reason.
    EngineLost { reason: String },
}

/// The scheduler actor.
pub struct Scheduler {
    ctx: Ctx,
    slots: Vec<Slot>,
    jobs: Vec<Job>,
    by_cell: HashMap<String, usize>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    batch_start: Option<Instant>,
    summary: Summary,
}

impl Scheduler {
    /// A scheduler over these engines; returns it, a command handle, and the event stream.
    pub fn new(
        specs: Vec<EngineSpec>,
        store: Arc<Mutex<Store>>,
        renderer: Arc<Renderer>,
        matrix: Arc<Matrix>,
        opts: RunOptions,
    ) -> (
        Scheduler,
        SchedulerHandle,
        mpsc::UnboundedReceiver<Command>,
        mpsc::UnboundedReceiver<BuildEvent>,
    ) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let slots = specs
            .into_iter()
            .map(|spec| Slot {
                spec,
                engine: None,
                connecting: false,
                tried: false,
                running: 0,
                last_error: None,
                last_check: Instant::now(),
            })
            .collect();
        let s = Scheduler {
            ctx: Ctx {
                store,
                renderer,
                matrix,
                opts,
                events,
                store_errors: Arc::new(AtomicUsize::new(0)),
            },
            slots,
            jobs: Vec::new(),
            by_cell: HashMap::new(),
            internal_tx,
            internal_rx,
            batch_start: None,
            summary: Summary::default(),
        };
        (s, SchedulerHandle { tx: cmd_tx }, cmd_rx, events_rx)
    }

    /// Turn selected cells into a plan: compute inputs, add each compiler cell's base unless a
    /// successful earlier build of it can be reused (same inputs), and order bases first.
    pub fn plan(
        matrix: &Matrix,
        renderer: &Renderer,
        store: &Store,
        opts: &RunOptions,
        cells: &[&Cell],
    ) -> Result<Vec<PlannedCell>, String> {
        // No engine here runs Windows containers: a Windows cell is never queued.
        if let Some(c) = cells.iter().find(|c| c.is_windows()) {
            return Err(format!(
                "{} is a Windows cell: it builds only on an engine that reports OSType windows, \
                 and imagegrid routes builds to Linux engines only; nothing is queued",
                c.id
            ));
        }
        let last_ok = store.last_success_per_cell().map_err(|e| e.to_string())?;
        let mut wanted: Vec<Cell> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut prebuilt: HashMap<String, (String, String)> = HashMap::new();
        for c in cells {
            if let Some(base_id) = c.base_id() {
                if !cells.iter().any(|x| x.id == base_id)
                    && !prebuilt.contains_key(&base_id)
                    && !seen.contains(&base_id)
                {
                    let base = matrix.cell(&base_id).ok_or_else(|| {
                        format!("cell {} has no base cell {base_id} in the matrix", c.id)
                    })?;
                    let inputs = renderer
                        .inputs(matrix, base, opts.key_options(), &opts.tags)
                        .map_err(|e| e.to_string())?;
                    match last_ok.get(&base_id) {
                        Some(r) if r.inputs == inputs.hash && r.image_id.is_some() => {
                            prebuilt.insert(
                                base_id.clone(),
                                (r.engine.clone(), r.image_id.clone().unwrap_or_default()),
                            );
                        }
                        _ => {
                            seen.insert(base_id.clone());
                            wanted.push(base.clone());
                        }
                    }
                }
            }
            if seen.insert(c.id.clone()) {
                wanted.push((*c).clone());
            }
        }
        // Bases first, in matrix order, so that dependants find them done or running.
        wanted.sort_by_key(|c| {
            (
                c.level != crate::matrix::Level::Base,
                matrix.cells.iter().position(|x| x.id == c.id),
            )
        });
        wanted
            .into_iter()
            .map(|cell| {
                let inputs = renderer
                    .inputs(matrix, &cell, opts.key_options(), &opts.tags)
                    .map_err(|e| format!("{}: {e}", cell.id))?;
                let platform = matrix
                    .arch(&cell.arch)
                    .map(|a| a.platform.clone())
                    .unwrap_or_default();
                let tag = cell.staging_tag(&opts.tags);
                let prebuilt_base = cell.base_id().and_then(|b| prebuilt.get(&b).cloned());
                Ok(PlannedCell {
                    cell,
                    inputs: inputs.hash,
                    platform,
                    tag,
                    prebuilt_base,
                    no_cache: opts.no_cache,
                })
            })
            .collect()
    }

    fn emit(&self, e: BuildEvent) {
        let _ = self.ctx.events.send(e);
    }

    fn health(&self, i: usize) -> EngineHealth {
        let s = &self.slots[i];
        let queued = self
            .jobs
            .iter()
            .filter(|j| j.state == JobState::Pending && s.spec.arches.contains(&j.plan.cell.arch))
            .count();
        EngineHealth {
            engine: s.spec.name.clone(),
            endpoint: s
                .engine
                .as_ref()
                .map(|e| e.endpoint.to_string())
                .unwrap_or_else(|| s.spec.endpoint.to_string()),
            reachable: s.engine.is_some(),
            info: s.engine.as_ref().map(|e| e.info.clone()),
            arches: s.spec.arches.clone(),
            running: s.running,
            queued,
            last_error: s.last_error.clone(),
        }
    }

    fn emit_health(&self, i: usize) {
        self.emit(BuildEvent::Engine(self.health(i)));
    }

    fn connect(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.connecting {
            return;
        }
        slot.connecting = true;
        slot.last_check = Instant::now();
        let spec = slot.spec.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let r = Engine::connect(&spec).await;
            let _ = tx.send(Internal::Connected(i, Box::new(r)));
        });
    }

    /// Run until shut down ([`RunMode::Interactive`]) or until the queue drains
    /// ([`RunMode::Batch`]), as the run options say.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) -> Summary {
        let exit_when_idle = self.ctx.opts.mode.exits_when_idle();
        for i in 0..self.slots.len() {
            // Shown as connecting at once: an engine that never answers is listed too.
            self.emit_health(i);
            self.connect(i);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut commands_open = true;
        loop {
            self.dispatch();
            if self.batch_start.is_some()
                && self
                    .jobs
                    .iter()
                    .all(|j| matches!(j.state, JobState::Ended { .. }))
            {
                let mut summary = std::mem::take(&mut self.summary);
                summary.store_errors = self.ctx.store_errors.swap(0, Ordering::Relaxed);
                summary.duration_secs = self
                    .batch_start
                    .take()
                    .map(|t| t.elapsed().as_secs_f64())
                    .unwrap_or(0.0);
                self.emit(BuildEvent::Done(summary.clone()));
                if exit_when_idle {
                    return summary;
                }
            }
            tokio::select! {
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(Command::Build(plan)) => self.enqueue(plan),
                    Some(Command::Cancel(cell)) => self.cancel(&cell),
                    Some(Command::CancelAll) => self.cancel_all(),
                    Some(Command::Shutdown) => {
                        self.cancel_all();
                        commands_open = false;
                    }
                    None => commands_open = false,
                },
                Some(msg) = self.internal_rx.recv() => self.internal(msg),
                _ = tick.tick() => self.check_engines(),
            }
            let running = self
                .jobs
                .iter()
                .any(|j| matches!(j.state, JobState::Running { .. }));
            if !commands_open && !running && (!exit_when_idle || self.batch_start.is_none()) {
                return std::mem::take(&mut self.summary);
            }
        }
    }

    fn enqueue(&mut self, plan: Vec<PlannedCell>) {
        if self.batch_start.is_none() {
            self.batch_start = Some(Instant::now());
        }
        for p in plan {
            if let Some(&i) = self.by_cell.get(&p.cell.id) {
                if !matches!(self.jobs[i].state, JobState::Ended { .. }) {
                    continue; // already queued or running
                }
                self.jobs[i] = Job {
                    plan: p.clone(),
                    state: JobState::Pending,
                    attempts: 0,
                    retry: None,
                };
            } else {
                self.by_cell.insert(p.cell.id.clone(), self.jobs.len());
                self.jobs.push(Job {
                    plan: p.clone(),
                    state: JobState::Pending,
                    attempts: 0,
                    retry: None,
                });
            }
            self.emit(BuildEvent::Queued {
                cell: p.cell.id.clone(),
            });
        }
    }

    fn end_unbuilt(&mut self, j: usize, status: BuildStatus, reason: String) {
        let plan = &self.jobs[j].plan;
        let recorded = match self.ctx.store.lock() {
            Ok(store) => store
                .record_unbuilt(&plan.cell.id, &plan.inputs, status, &reason)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(_) => Err("the history store is unusable (a thread panicked)".into()),
        };
        if let Err(e) = recorded {
            self.ctx.store_error(
                Some(&plan.cell.id),
                format!("cannot record that {} was {status}: {e}", plan.cell.id),
            );
        }
        self.summary.add(status);
        self.emit(BuildEvent::Finished(CellResult {
            cell: plan.cell.id.clone(),
            status,
            build_id: None,
            engine: None,
            image_id: None,
            size: None,
            previous_size: None,
            failure: Some(reason),
            duration_secs: None,
            log_path: None,
        }));
        self.jobs[j].state = JobState::Ended {
            status,
            slot: None,
            image_id: None,
        };
    }

    fn cancel(&mut self, cell: &str) {
        let Some(&j) = self.by_cell.get(cell) else {
            return;
        };
        match &self.jobs[j].state {
            JobState::Pending => {
                self.end_unbuilt(j, BuildStatus::Cancelled, "cancelled while queued".into())
            }
            JobState::Running { cancel, .. } => cancel.cancel(),
            JobState::Ended { .. } => {}
        }
    }

    fn cancel_all(&mut self) {
        let cells: Vec<String> = self
            .jobs
            .iter()
            .filter(|j| !matches!(j.state, JobState::Ended { .. }))
            .map(|j| j.plan.cell.id.clone())
            .collect();
        // Queued dependants first, so that a cancelled base does not make them "skipped".
        for c in cells.iter().rev() {
            self.cancel(c);
        }
    }

    fn check_engines(&mut self) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.connecting || s.last_check.elapsed() < HEALTH_EVERY {
                continue;
            }
            match &s.engine {
                None => self.connect(i),
                Some(e) => {
                    let e = e.clone();
                    let tx = self.internal_tx.clone();
                    self.slots[i].last_check = Instant::now();
                    tokio::spawn(async move {
                        let r = e.ping().await;
                        let _ = tx.send(Internal::Pinged(i, r));
                    });
                }
            }
        }
    }

    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Connected(i, r) => {
                let s = &mut self.slots[i];
                s.connecting = false;
                s.tried = true;
                s.last_check = Instant::now();
                match *r {
                    Ok(e) => {
                        s.engine = Some(e);
                        s.last_error = None;
                    }
                    Err(e) => {
                        s.engine = None;
                        s.last_error = Some(e.message);
                    }
                }
                self.emit_health(i);
            }
            Internal::Pinged(i, r) => {
                if let Err(e) = r {
                    let s = &mut self.slots[i];
                    s.engine = None;
                    s.last_error = Some(e.message);
                    self.emit_health(i);
                }
            }
            Internal::Ended(j, outcome) => {
                let JobState::Running { slot, .. } = self.jobs[j].state.clone() else {
                    return;
                };
                self.slots[slot].running -= 1;
                match outcome {
                    TaskOutcome::Done { status, image_id } => {
                        self.summary.add(status);
                        self.jobs[j].state = JobState::Ended {
                            status,
                            slot: Some(slot),
                            image_id,
                        };
                    }
                    TaskOutcome::Retry { reason, lost, down } => {
                        self.jobs[j].attempts += 1;
                        self.jobs[j].state = JobState::Pending;
                        self.jobs[j].retry = Some((Instant::now(), lost));
                        if let Some(why) = down {
                            // Do not send the retry straight back to an engine that is not
                            // there; the health loop reconnects it.
                            let s = &mut self.slots[slot];
                            s.engine = None;
                            s.last_error = Some(why);
                            s.last_check = Instant::now();
                        }
                        self.emit(BuildEvent::Retrying {
                            cell: self.jobs[j].plan.cell.id.clone(),
                            engine: self.slots[slot].spec.name.clone(),
                            attempt: self.jobs[j].attempts,
                            reason,
                        });
                    }
                    TaskOutcome::EngineLost { reason } => {
                        self.summary.add(BuildStatus::Failed);
                        self.jobs[j].state = JobState::Ended {
                            status: BuildStatus::Failed,
                            slot: Some(slot),
                            image_id: None,
                        };
                        let s = &mut self.slots[slot];
                        s.engine = None;
                        s.last_error = Some(reason);
                        s.last_check = Instant::now();
                    }
                }
                self.emit_health(slot);
            }
        }
    }

    /// Can slot `i` build this job now, and how good a choice is it (lower is better)?
    fn score(&self, i: usize, cell: &Cell, native_exists: bool) -> Option<(bool, u64)> {
        let s = &self.slots[i];
        let e = s.engine.as_ref()?;
        if !s.spec.arches.contains(&cell.arch) || s.running >= s.spec.max_parallel {
            return None;
        }
        let native = e.is_native(&cell.arch);
        if native_exists && !native {
            return None; // emulation is many times slower: wait for a native engine
        }
        Some((
            !native,
            (s.running as u64 * 1000) / s.spec.max_parallel as u64,
        ))
    }

    fn dispatch(&mut self) {
        let running_total = |jobs: &Vec<Job>| {
            jobs.iter()
                .filter(|j| matches!(j.state, JobState::Running { .. }))
                .count()
        };
        for j in 0..self.jobs.len() {
            if self.jobs[j].state != JobState::Pending {
                continue;
            }
            if let Some(max) = self.ctx.opts.max_total {
                if running_total(&self.jobs) >= max {
                    return;
                }
            }
            let cell = self.jobs[j].plan.cell.clone();
            // The base: in this run (must have ended well), or from history (pinned to its engine).
            let mut pinned: Option<usize> = None;
            let mut base_image: Option<String> = None;
            if let Some(base_id) = cell.base_id() {
                if let Some(&b) = self.by_cell.get(&base_id) {
                    match &self.jobs[b].state {
                        JobState::Pending | JobState::Running { .. } => continue,
                        JobState::Ended {
                            status: BuildStatus::Succeeded,
                            slot,
                            image_id,
                        } => {
                            pinned = *slot;
                            base_image = image_id.clone();
                        }
                        JobState::Ended { status, .. } => {
                            let reason = format!("base {base_id} {status}");
                            self.end_unbuilt(j, BuildStatus::Skipped, reason);
                            continue;
                        }
                    }
                } else if let Some((engine, image)) = &self.jobs[j].plan.prebuilt_base {
                    pinned = self.slots.iter().position(|s| &s.spec.name == engine);
                    base_image = Some(image.clone());
                    if pinned.is_none() {
                        self.end_unbuilt(j, BuildStatus::Skipped, format!("base {base_id} was built on engine {engine}, which is no longer configured; rebuild the base"));
                        continue;
                    }
                }
            }
            let capable: Vec<usize> = (0..self.slots.len())
                .filter(|&i| {
                    self.slots[i].spec.arches.contains(&cell.arch) && pinned.is_none_or(|p| p == i)
                })
                .collect();
            if capable.is_empty() {
                let reason = match pinned {
                    Some(p) => format!(
                        "engine {} (which holds its base image) does not build {}",
                        self.slots[p].spec.name, cell.arch
                    ),
                    None => format!("no configured engine builds arch {}", cell.arch),
                };
                self.end_unbuilt(j, BuildStatus::Skipped, reason);
                continue;
            }
            let reachable: Vec<usize> = capable
                .iter()
                .copied()
                .filter(|&i| self.slots[i].engine.is_some())
                .collect();
            if reachable.is_empty() {
                // Until every capable engine has had its first connection attempt, wait.
                let still_trying = capable.iter().any(|&i| !self.slots[i].tried);
                if let Some((since, lost)) = &self.jobs[j].retry {
                    // A retry waits for an engine to come back (a restart takes seconds).
                    let waited = since.elapsed();
                    if !self.ctx.opts.mode.waits_for_engines()
                        && waited >= self.ctx.opts.reconnect_wait
                    {
                        let reason = format!(
                            "{lost}; no engine for {} answered again within {} s (reconnect_wait_secs)",
                            cell.arch,
                            self.ctx.opts.reconnect_wait.as_secs()
                        );
                        self.end_unbuilt(j, BuildStatus::Failed, reason);
                    }
                    continue;
                }
                if !still_trying && !self.ctx.opts.mode.waits_for_engines() {
                    let why: Vec<String> = capable
                        .iter()
                        .map(|&i| {
                            format!(
                                "engine {}: {}",
                                self.slots[i].spec.name,
                                self.slots[i]
                                    .last_error
                                    .clone()
                                    .unwrap_or_else(|| "unreachable".into())
                            )
                        })
                        .collect();
                    self.end_unbuilt(
                        j,
                        BuildStatus::Skipped,
                        format!(
                            "no reachable engine builds {} ({})",
                            cell.arch,
                            why.join("; ")
                        ),
                    );
                }
                continue;
            }
            let native_exists = reachable.iter().any(|&i| {
                self.slots[i]
                    .engine
                    .as_ref()
                    .is_some_and(|e| e.is_native(&cell.arch))
            });
            let best = reachable
                .iter()
                .filter_map(|&i| self.score(i, &cell, native_exists).map(|s| (s, i)))
                .min()
                .map(|(_, i)| i);
            if let Some(i) = best {
                self.start(j, i, base_image);
            }
        }
    }

    fn start(&mut self, j: usize, slot: usize, base_image: Option<String>) {
        let engine = self.slots[slot]
            .engine
            .clone()
            .expect("dispatch picks connected engines");
        self.slots[slot].running += 1;
        self.jobs[j].retry = None;
        let cancel = CancellationToken::new();
        self.jobs[j].state = JobState::Running {
            slot,
            cancel: cancel.clone(),
        };
        let plan = self.jobs[j].plan.clone();
        let attempts = self.jobs[j].attempts;
        let ctx = self.ctx.clone();
        let tx = self.internal_tx.clone();
        self.emit_health(slot);
        tokio::spawn(async move {
            let outcome = build_task(&ctx, &engine, &plan, base_image, attempts, &cancel).await;
            let _ = tx.send(Internal::Ended(j, outcome));
        });
    }
}

/// Build one planned cell on one engine, recording everything.
async fn build_task(
    ctx: &Ctx,
    engine: &Engine,
    plan: &PlannedCell,
    base_image: Option<String>,
    attempts: u32,
    cancel: &CancellationToken,
) -> TaskOutcome {
    let cell_id = plan.cell.id.clone();
    let send = |e: BuildEvent| {
        let _ = ctx.events.send(e);
    };
    let base_cell = Cell::new(&plan.cell.distro, None, &plan.cell.arch);
    let from = base_image
        .as_ref()
        .filter(|_| plan.cell.base_id().is_some())
        .map(|id| pinned_base_ref(&base_cell, &ctx.opts.tags, id));
    let dockerfile =
        match ctx
            .renderer
            .render(&ctx.matrix, &plan.cell, from.as_deref(), &ctx.opts.tags)
        {
            Ok(d) => d,
            Err(e) => {
                return finish_unstarted(
                    ctx,
                    plan,
                    engine,
                    format!("cannot render the Dockerfile: {e}"),
                )
            }
        };
    let started = Instant::now();
    let (build_id, mut log) = {
        let store = ctx.store.lock().expect("store lock");
        let id = match store.start(&NewBuild {
            cell: &cell_id,
            engine: engine.name(),
            inputs: &plan.inputs,
            tag: &plan.tag,
            base_image: base_image.as_deref(),
        }) {
            Ok(id) => id,
            Err(e) => {
                drop(store);
                let message = format!("cannot record the start of {cell_id}: {e}");
                ctx.store_error(Some(&cell_id), message.clone());
                return finish_unstarted(ctx, plan, engine, message);
            }
        };
        let log = match store.log_writer(id) {
            Ok(w) => Some(w),
            Err(e) => {
                ctx.store_error(
                    Some(&cell_id),
                    format!("cannot store the log of build {id} of {cell_id}: {e}"),
                );
                None
            }
        };
        (id, log)
    };
    let emulated = !engine.is_native(&plan.cell.arch);
    send(BuildEvent::Started {
        cell: cell_id.clone(),
        engine: engine.name().to_string(),
        build_id,
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
    let req = BuildRequest {
        cell_id: cell_id.clone(),
        dockerfile,
        context_files: vec![],
        platform: plan.platform.clone(),
        tag: plan.tag.clone(),
        labels,
        network: ctx.opts.network,
        buildkit,
        no_cache: plan.no_cache,
        pull: ctx.opts.pull,
        idle_timeout: ctx.opts.idle_timeout,
    };
    let header = format!(
        "imagegrid: building {cell_id} on engine {} ({}{}), {} builder, attempt {}",
        engine.name(),
        plan.platform,
        if emulated { ", emulated" } else { "" },
        if buildkit { "BuildKit" } else { "classic" },
        attempts + 1
    );
    let mut tail: VecDeque<String> = VecDeque::with_capacity(summary::TAIL_LINES);
    let mut step: Option<String> = None;
    let mut on_line = |line: String, log: &mut Option<crate::store::LogWriter>| {
        if let Some(w) = log.as_mut() {
            if let Err(e) = w.line(&line) {
                // Stop writing: later lines would land after a torn one, or fail the same way.
                // The build goes on; its lines still reach the screen and the events.
                *log = None;
                let message = format!(
                    "cannot write the log of {cell_id}: {e}; the rest of this build's log is not stored"
                );
                ctx.store_error(Some(&cell_id), message.clone());
                send(BuildEvent::Log {
                    cell: cell_id.clone(),
                    line: format!("imagegrid: {message}"),
                });
            }
        }
        if tail.len() == summary::TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        send(BuildEvent::Log {
            cell: cell_id.clone(),
            line,
        });
    };
    on_line(header, &mut log);
    let result = engine
        .build(&req, cancel, |p| match p {
            BuildProgress::Line(l) => on_line(l, &mut log),
            BuildProgress::Step {
                current,
                total,
                name,
            } => {
                step = Some(name.clone());
                send(BuildEvent::Step {
                    cell: cell_id.clone(),
                    current,
                    total,
                    name,
                });
            }
        })
        .await;
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
            },
        )
    };
    let (status, finish, outcome) = match result {
        Ok(img) => {
            if plan.cell.level == crate::matrix::Level::Base {
                let pin = pinned_base_ref(&plan.cell, &ctx.opts.tags, &img.image_id);
                if let Err(e) = engine.tag(&img.image_id, &pin).await {
                    on_line(
                        format!("imagegrid: warning: cannot tag {pin}: {}", e.message),
                        &mut log,
                    );
                }
            }
            let f = Finish {
                image_id: Some(img.image_id.clone()),
                size: Some(img.size),
                layers: img.layers,
                failure: None,
            };
            (
                BuildStatus::Succeeded,
                f,
                TaskOutcome::Done {
                    status: BuildStatus::Succeeded,
                    image_id: Some(img.image_id),
                },
            )
        }
        Err(BuildError::Cancelled) => {
            on_line(
                "imagegrid: cancelled; the engine stops the build when the stream closes".into(),
                &mut log,
            );
            ended(BuildStatus::Cancelled, "cancelled".into())
        }
        Err(BuildError::Failed(message)) => {
            let tail: Vec<String> = tail.iter().cloned().collect();
            ended(
                BuildStatus::Failed,
                summary::failure_summary(step.as_deref(), &tail, &message),
            )
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
                on_line(format!("imagegrid: {reason}"), &mut log);
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
                on_line(format!("imagegrid: {reason}"), &mut log);
                let f = Finish {
                    failure: Some(reason.clone()),
                    ..Default::default()
                };
                let outcome = if back {
                    TaskOutcome::Done {
                        status: BuildStatus::Failed,
                        image_id: None,
                    }
                } else {
                    TaskOutcome::EngineLost { reason }
                };
                (BuildStatus::Failed, f, outcome)
            }
        }
    };
    let (recorded, previous_size, log_path) = {
        let store = ctx.store.lock().expect("store lock");
        let recorded = store.finish(build_id, status, &finish);
        let previous = store
            .previous_success(&cell_id, build_id)
            .ok()
            .flatten()
            .and_then(|r| r.size);
        (recorded, previous, store.log_path(build_id))
    };
    if let Err(e) = recorded {
        ctx.store_error(
            Some(&cell_id),
            format!("cannot record that build {build_id} of {cell_id} {status}: {e}"),
        );
    }
    if !matches!(outcome, TaskOutcome::Retry { .. }) {
        send(BuildEvent::Finished(CellResult {
            cell: cell_id,
            status,
            build_id: Some(build_id),
            engine: Some(engine.name().to_string()),
            image_id: finish.image_id,
            size: finish.size,
            previous_size,
            failure: finish.failure,
            duration_secs: Some(started.elapsed().as_secs_f64()),
            log_path: Some(log_path.display().to_string()),
        }));
    }
    outcome
}

fn finish_unstarted(ctx: &Ctx, plan: &PlannedCell, engine: &Engine, reason: String) -> TaskOutcome {
    let recorded = match ctx.store.lock() {
        Ok(store) => store
            .record_unbuilt(&plan.cell.id, &plan.inputs, BuildStatus::Failed, &reason)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(_) => Err("the history store is unusable (a thread panicked)".into()),
    };
    if let Err(e) = recorded {
        ctx.store_error(
            Some(&plan.cell.id),
            format!("cannot record that {} failed: {e}", plan.cell.id),
        );
    }
    let _ = ctx.events.send(BuildEvent::Finished(CellResult {
        cell: plan.cell.id.clone(),
        status: BuildStatus::Failed,
        build_id: None,
        engine: Some(engine.name().to_string()),
        image_id: None,
        size: None,
        previous_size: None,
        failure: Some(reason),
        duration_secs: None,
        log_path: None,
    }));
    TaskOutcome::Done {
        status: BuildStatus::Failed,
        image_id: None,
    }
}
