//! The build queue: starts ready cells longest remaining path first, routes each to an
//! engine that builds its arch (native before emulated, the earliest expected finish by the
//! engines' observed speeds and queues, moving a base image when that pays), honours
//! per-engine limits, builds bases before their compiler cells, cancels on request, and
//! retries only transient engine errors.
//!
//! It runs as one actor task: commands come in over a channel, [`BuildEvent`]s go out over
//! another. The TUI and the headless CLI are two consumers of the same events.
//!
//! Files, one concern each:
//! - `plan.rs`: a selection becomes [`PlannedCell`]s, bases first, earlier bases reused.
//! - `route.rs`: which engine a queued cell goes to: a pure function over a snapshot of
//!   the slots, which the TUI's build confirm also previews with.
//! - `slots.rs`: engine slots: connecting, pinging, health events.
//! - `actor.rs`: the loop: queue, cancel, retries, the end of a run.
//! - `job.rs`: one build on one engine, and how it ended.
//! - `record.rs`: a job's history and log writes, through the store's handle.
//! - `durations.rs`: expected build durations from history (per cell, native or emulated).
//! - `estimate.rs`: time left, by simulating the queue over those durations with `route`.
//! - `eta.rs`: the actor's side of it: what it learns, when it estimates, `Progress` events.
//! - `policy.rs`: what the policy goes by: engine speeds, expected durations at speed 1.0,
//!   priorities (longest remaining path first), when a place frees and a build would end.
//! - `moves.rs`: moving a base image to the engine a compiler cell was routed to.

mod actor;
pub mod durations;
pub mod estimate;
mod eta;
pub mod events;
mod job;
mod moves;
mod plan;
pub mod policy;
mod record;
pub mod route;
#[cfg(test)]
mod schedule_tests;
mod slots;
pub mod summary;
mod upstream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::{BuildkitMode, FrontendMode, LoadedConfig, NetworkMode, TagConfig};
use crate::dockerfile::{KeyOptions, Renderer};
use crate::engine::EngineSpec;
use crate::matrix::Matrix;
use crate::store::StoreHandle;
pub use events::{BuildEvent, CauseGroup, CellResult, EngineHealth, Eta, Summary};
pub use job::pinned_base_ref;
pub use plan::{PlanError, PlannedCell, SameInputs};

/// Options for every build of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub network: NetworkMode,
    pub buildkit: BuildkitMode,
    /// Send a text's `# syntax=` line or strip it (`[build] frontend`).
    pub frontend: FrontendMode,
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
    /// Failure rules: each failed build's cause (built-in rules and the config's).
    pub rules: Arc<crate::causes::RuleSet>,
    /// The opam-repository checkout: the build context of texts that copy the context's
    /// root (`DATA_DIR/inputs/opam-repository`).
    pub repository_checkout: std::path::PathBuf,
    /// Move a base image to another engine when that ends its compiler sooner
    /// (`[build] transfer`, `build --no-transfer`).
    pub transfer: bool,
    /// How a base image moves to another engine (`[build] transfer_registry`).
    pub transfer_way: crate::engine::transfer::TransferWay,
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
            frontend: b.frontend,
            pull: b.pull,
            no_cache: false,
            idle_timeout: Duration::from_secs(b.idle_timeout_secs.max(1)),
            retries: b.retries,
            reconnect_wait: Duration::from_secs(b.reconnect_wait_secs),
            max_total: None,
            tags: loaded.config.tags.clone(),
            mode: RunMode::Batch,
            // `config::parse` compiled every user rule already; a config built by hand with
            // a bad one falls back to the built-in rules.
            rules: Arc::new(
                crate::causes::RuleSet::from_config(loaded)
                    .unwrap_or_else(|_| crate::causes::RuleSet::builtin()),
            ),
            repository_checkout: crate::inputs::InputSources::from_config(loaded).checkout_dir(),
            transfer: b.transfer,
            transfer_way: crate::engine::transfer::TransferWay::from_setting(
                b.transfer_registry.as_ref().map(|r| r.get_ref().as_str()),
            ),
        }
    }

    pub fn key_options(&self) -> KeyOptions {
        KeyOptions {
            network: self.network,
        }
    }
}

/// Commands to the scheduler.
#[derive(Debug)]
pub enum Command {
    /// Queue these cells (bases are added by [`Scheduler::plan`]).
    Build(Vec<PlannedCell>),
    /// Cancel one cell, queued or running.
    Cancel(crate::model::ids::CellId),
    /// Cancel everything.
    CancelAll,
    /// Stop after cancelling everything.
    Shutdown,
    /// Build from this matrix from now on (a plan read again); builds already queued keep
    /// the inputs they were planned with.
    SetMatrix(Arc<Matrix>),
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
    store: StoreHandle,
    renderer: Arc<Renderer>,
    matrix: Arc<Matrix>,
    opts: RunOptions,
    events: mpsc::UnboundedSender<BuildEvent>,
    /// Failed history and log writes since the last `Done` (build tasks count them too).
    store_errors: Arc<AtomicUsize>,
}

impl Ctx {
    fn send(&self, e: BuildEvent) {
        let _ = self.events.send(e);
    }

    /// Report a failed history or log write: counted for the summary and sent as an event.
    fn store_error(&self, cell: Option<&str>, message: String) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        self.send(BuildEvent::StoreError {
            cell: cell.map(Into::into),
            message,
        });
    }
}

/// The scheduler actor.
pub struct Scheduler {
    ctx: Ctx,
    slots: Vec<slots::Slot>,
    jobs: Vec<actor::Job>,
    by_cell: HashMap<String, usize>,
    internal_tx: mpsc::UnboundedSender<actor::Internal>,
    internal_rx: mpsc::UnboundedReceiver<actor::Internal>,
    batch_start: Option<Instant>,
    summary: Summary,
    eta: eta::EtaState,
    /// Base cell -> (its image id, engines it was moved to in this process).
    copies: HashMap<String, (String, Vec<String>)>,
}

impl Scheduler {
    /// A scheduler over these engines; returns it, a command handle, and the event stream.
    pub fn new(
        specs: Vec<EngineSpec>,
        store: StoreHandle,
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
        let s = Scheduler {
            ctx: Ctx {
                store,
                renderer,
                matrix,
                opts,
                events,
                store_errors: Arc::new(AtomicUsize::new(0)),
            },
            slots: specs.into_iter().map(slots::Slot::new).collect(),
            jobs: Vec::new(),
            by_cell: HashMap::new(),
            internal_tx,
            internal_rx,
            batch_start: None,
            summary: Summary::default(),
            eta: eta::EtaState::default(),
            copies: HashMap::new(),
        };
        (s, SchedulerHandle { tx: cmd_tx }, cmd_rx, events_rx)
    }

    /// Run until shut down ([`RunMode::Interactive`]) or until the queue drains
    /// ([`RunMode::Batch`]), as the run options say. Returns the counts of the last run.
    pub async fn run(self, commands: mpsc::UnboundedReceiver<Command>) -> Summary {
        self.run_actor(commands).await
    }

    fn emit(&self, e: BuildEvent) {
        self.ctx.send(e);
    }
}
