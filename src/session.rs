//! What both faces open: the history store, the Dockerfile renderer, the engine specs and a
//! scheduler, over one config and matrix. The TUI and the headless commands start builds and
//! publishes through these calls only, so a rule (what is stale, how a publish is planned,
//! how a scheduler is started) exists once.

pub mod prune;
pub mod same_inputs;
pub mod upstream;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::LoadedConfig;
use crate::dockerfile::{RenderError, Renderer};
use crate::engine::EngineSpec;
use crate::inputs::InputSources;
use crate::matrix::{Cell, Matrix};
use crate::model::inputs::Needs;
use crate::publish::{self, PublishContext, PublishEvent, PublishSummary, RetryPolicy, TagPlan};
use crate::scheduler::{
    BuildEvent, Command, PlanError, PlannedCell, RunMode, RunOptions, Scheduler, SchedulerHandle,
    Summary,
};
use crate::store::{BuildRecord, StoreError, StoreHandle};

/// Why a session call failed. Each variant keeps the lower layer's own error.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The history database or a log file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template did not render (names the template and line).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The selection cannot be planned (a base missing from the matrix, a template error).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The tag scheme or selection cannot be published.
    #[error(transparent)]
    PublishPlan(#[from] publish::PlanError),
    /// A publish stopped part way (credentials, registry).
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
    /// A planning or history task stopped (it panicked).
    #[error("a background task failed: {0}")]
    Task(String),
    /// A cell cannot be built with the same inputs again (`build --same-inputs`): no
    /// recorded run, its text pruned, its base image gone; names the cell.
    #[error("{0}")]
    SameInputs(String),
}

/// A scheduler started for one face: its command handle, its event stream and the task
/// that ends with the run's [`Summary`].
pub struct Scheduling {
    pub handle: SchedulerHandle,
    pub events: mpsc::UnboundedReceiver<BuildEvent>,
    pub task: tokio::task::JoinHandle<Summary>,
}

/// The core both faces share.
#[derive(Clone)]
pub struct Session {
    pub loaded: LoadedConfig,
    pub matrix: Arc<Matrix>,
    pub renderer: Arc<Renderer>,
    /// The history, through its one owner.
    pub store: StoreHandle,
}

impl Session {
    /// Open the history of `loaded`'s data directory and the renderer of its templates.
    /// Errors: the store cannot be opened (damaged, newer schema, unwritable).
    pub fn open(loaded: LoadedConfig, matrix: Matrix) -> Result<Session, SessionError> {
        let store = StoreHandle::open(&loaded.data_dir())?;
        let renderer = Renderer::for_config(&loaded);
        Ok(Session {
            loaded,
            matrix: Arc::new(matrix),
            renderer: Arc::new(renderer),
            store,
        })
    }

    /// The config's build options for a run driven by `mode`.
    pub fn run_options(&self, mode: RunMode) -> RunOptions {
        let mut opts = RunOptions::from_config(&self.loaded);
        opts.mode = mode;
        opts
    }

    /// Every configured engine (or the default one).
    pub fn engine_specs(&self) -> Vec<EngineSpec> {
        EngineSpec::all(&self.loaded, &self.matrix)
    }

    /// Start a scheduler over every engine. It connects at once; builds start with
    /// [`Command::Build`] of a [`Session::plan`].
    pub fn start(&self, opts: RunOptions) -> Scheduling {
        let (scheduler, handle, commands, events) = Scheduler::new(
            self.engine_specs(),
            self.store.clone(),
            self.renderer.clone(),
            self.matrix.clone(),
            opts,
        );
        let task = tokio::spawn(scheduler.run(commands));
        Scheduling {
            handle,
            events,
            task,
        }
    }

    /// The builds a selection needs, bases first (see [`Scheduler::plan`]). Reads the
    /// history through the store's thread and renders on a blocking thread.
    pub async fn plan(
        &self,
        opts: &RunOptions,
        cells: &[&Cell],
    ) -> Result<Vec<PlannedCell>, SessionError> {
        let last_ok = self.store.try_call(|s| s.last_success_per_cell()).await?;
        let (matrix, renderer, opts) = (self.matrix.clone(), self.renderer.clone(), opts.clone());
        let loaded = self.loaded.clone();
        let ids: Vec<String> = cells.iter().map(|c| c.id.clone()).collect();
        let mut plan = blocking(move || {
            let cells: Vec<&Cell> = ids.iter().filter_map(|id| matrix.cell(id)).collect();
            let first = Scheduler::plan(&matrix, &renderer, &last_ok, &opts, &cells)?;
            // The moving refs these builds use, pinned (resolved again when older than
            // `[inputs] refresh`), then planned again with them: the pins are in the keys.
            let mut needs = Needs::default();
            for p in &first {
                for r in &p.needs.opam_refs {
                    if !needs.opam_refs.contains(r) {
                        needs.opam_refs.push(r.clone());
                    }
                }
                needs.opam_repository |= p.needs.opam_repository;
            }
            if needs.is_empty() {
                return Ok(first);
            }
            let (pins, errors) = InputSources::from_config(&loaded).resolve(&needs, false);
            let renderer = Renderer::for_config(&loaded).with_pins(Arc::new(pins));
            let mut plan = Scheduler::plan(&matrix, &renderer, &last_ok, &opts, &cells)?;
            for p in &mut plan {
                let failed: Vec<String> = errors
                    .iter()
                    .filter(|e| match e.input.as_str() {
                        crate::inputs::OPAM => !p.needs.opam_refs.is_empty(),
                        crate::inputs::OPAM_REPOSITORY => p.needs.opam_repository,
                        _ => false,
                    })
                    .map(|e| e.to_string())
                    .collect();
                if !failed.is_empty() {
                    p.blocked = Some(format!("not started: {}", failed.join("; ")));
                }
            }
            Ok(plan)
        })
        .await?;
        // A cell whose upstream moved is built with a pull (the cached answers: the check
        // ran when its staleness was shown).
        if self.loaded.config.build.check_upstream {
            for p in plan.iter_mut().filter(|p| p.cell.base_id().is_none()) {
                p.upstream = self
                    .renderer
                    .render(&self.matrix, &p.cell, None, &self.loaded.config.tags)
                    .ok()
                    .and_then(|t| crate::inputs::upstream::upstream_image(&t));
            }
        }
        let up = upstream::cached(&self.loaded);
        if !up.is_empty() {
            let history = self
                .store
                .try_call(|s| crate::why::recorded::load_history(s))
                .await?;
            upstream::pull_moved(&mut plan, &history, &up);
        }
        Ok(plan)
    }

    /// Plan a build and send it to a running scheduler.
    pub async fn build(
        &self,
        scheduling: &Scheduling,
        opts: &RunOptions,
        cells: &[&Cell],
    ) -> Result<usize, SessionError> {
        let plan = self.plan(opts, cells).await?;
        let n = plan.len();
        scheduling.handle.send(Command::Build(plan));
        Ok(n)
    }

    /// The latest build of every cell, the last success of every cell, and the size of the
    /// success before it (for size deltas): what a face shows before any event arrives.
    pub async fn history_view(&self) -> Result<HistoryView, SessionError> {
        let (latest, last_success, previous_size, history) = self
            .store
            .try_call(|store| {
                // One read of each cell's latest build and last success serves both the
                // view and the stale reasons.
                let history = crate::why::recorded::load_history(store)?;
                let mut latest = HashMap::new();
                let mut last_success = HashMap::new();
                let mut previous_size = HashMap::new();
                for (cell, h) in &history {
                    if let Some(rec) = &h.latest {
                        latest.insert(cell.clone(), rec.clone());
                    }
                    if let Some(rec) = &h.last_ok {
                        if let Some(p) = store.previous_success(cell, rec.id)?.and_then(|r| r.size)
                        {
                            previous_size.insert(cell.clone(), p);
                        }
                        last_success.insert(cell.clone(), rec.clone());
                    }
                }
                Ok((latest, last_success, previous_size, history))
            })
            .await?;
        // Staleness renders every built cell's templates: on a blocking thread.
        let (matrix, renderer) = (self.matrix.clone(), self.renderer.clone());
        let opts = RunOptions::from_config(&self.loaded);
        // The upstream answers as last asked (`why`, `build --stale`, `inputs` ask again
        // when older than `[inputs] refresh`): no engine is contacted here.
        let up = upstream::cached(&self.loaded);
        let (_, notes) = crate::why::recorded::upstream_moved(&history, &up);
        let mut notes: Vec<String> = notes.into_values().collect();
        notes.sort();
        notes.dedup();
        let reasons = blocking(move || {
            Ok(crate::why::recorded::explain_all(
                &matrix, &renderer, &opts, &history, &up,
            )?)
        })
        .await?;
        Ok(HistoryView {
            latest,
            last_success,
            previous_size,
            stale: reasons.keys().cloned().collect(),
            reasons,
            notes,
        })
    }

    /// The publish plan of `cells` from the history as it is now: what the confirm shows
    /// and exactly what [`Session::publish`] then runs.
    pub async fn publish_plan(&self, cells: &[&Cell]) -> Result<TagPlan, SessionError> {
        let history = self.store.try_call(|s| s.last_success_per_cell()).await?;
        let built = publish::plan::built_from_history(&history);
        Ok(publish::plan(
            &self.matrix,
            &self.loaded.config.tags,
            cells,
            &built,
        )?)
    }

    /// Resolve credentials and run a publish plan; events go to `events` as they happen.
    pub async fn publish(
        &self,
        plan: &TagPlan,
        events: &mpsc::UnboundedSender<PublishEvent>,
    ) -> Result<PublishSummary, SessionError> {
        let registry = self.loaded.config.tags.registry.clone();
        let credentials =
            publish::auth::resolve(&self.loaded, &registry, &publish::auth::docker_config_dir())
                .await
                .map_err(publish::PublishError::from)?;
        self.publish_with(plan, credentials, events).await
    }

    /// [`Session::publish`] with credentials already resolved (the CLI shows them first).
    pub async fn publish_with(
        &self,
        plan: &TagPlan,
        credentials: Option<publish::Credentials>,
        events: &mpsc::UnboundedSender<PublishEvent>,
    ) -> Result<PublishSummary, SessionError> {
        let ctx = PublishContext {
            engines: self.engine_specs(),
            credentials,
            retry: RetryPolicy::from_config(&self.loaded.config.publish),
            store: &self.store,
        };
        Ok(publish::publish(plan, ctx, events).await?)
    }
}

/// What the history says before a run: see [`Session::history_view`].
#[derive(Debug, Default, Clone)]
pub struct HistoryView {
    pub latest: HashMap<String, BuildRecord>,
    pub last_success: HashMap<String, BuildRecord>,
    /// Size in bytes of the success before each cell's last one.
    pub previous_size: HashMap<String, i64>,
    /// Ids of stale cells.
    pub stale: BTreeSet<String>,
    /// Why each stale cell is stale ([`crate::why::recorded::explain_all`]).
    pub reasons: crate::why::Reasons,
    /// What could not be checked (`upstream digest of debian:13 unknown: ...`), once each.
    pub notes: Vec<String>,
}

/// Cells whose last success (`last`: the history's last success of each cell) was built
/// from other inputs than today's: the inputs hash of the Dockerfile rendered now differs
/// from the one recorded with that success. A cell never built is not stale (it is "never
/// built"). The rule is [`crate::why::stale_reasons`]'s. Renders templates: call it off any
/// event loop.
pub fn stale_cells<'a>(
    loaded: &LoadedConfig,
    m: &'a Matrix,
    last: &HashMap<String, BuildRecord>,
) -> Result<Vec<&'a Cell>, SessionError> {
    let opts = RunOptions::from_config(loaded);
    let r = Renderer::for_config(loaded);
    let reasons = crate::why::stale_reasons(m, &r, &opts, last)?;
    Ok(m.cells
        .iter()
        .filter(|c| reasons.contains_key(&c.id))
        .collect())
}

/// Run sync work (template rendering) on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SessionError> + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SessionError::Task(e.to_string()))?
}
