//! The actor: one task owns the queue and the slots. It takes commands (build, cancel,
//! shut down), the ends of connections, pings and builds, and a tick for the health loop;
//! after each it starts what can start, and says `Done` when every queued cell has ended.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::durations::EngineKind;
use super::job::pinned_base_ref;
use super::job::{build_task, TaskOutcome};
use super::moves::{Move, MoveFailed, Moved};
use super::policy::{finish_on, priority_order, take, Model};
use super::route::{
    at_cap, builder_fit, route, BaseAt, JobSnapshot, Routed, Rules, SlotSnapshot, SlotState,
    WaitFor,
};
use super::slots::Slot;
use super::{record, BuildEvent, CellResult, Command, PlannedCell, Scheduler, Summary};
use crate::engine::{Engine, EngineError};
use crate::matrix::Cell;
use crate::store::BuildStatus;

/// Where one queued cell is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum JobState {
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

/// One queued cell.
pub(super) struct Job {
    pub plan: PlannedCell,
    pub state: JobState,
    /// Attempts that ended in a transient engine error.
    pub attempts: u32,
    /// Set while a retry waits for its engine: since when, and why the last attempt ended.
    pub retry: Option<(Instant, String)>,
    /// When its current (or last) attempt started (its build, after any move of its base).
    pub started: Option<Instant>,
    /// A move of its base failed: it waits for an engine holding the base.
    pub no_transfer: bool,
}

impl Job {
    fn new(plan: PlannedCell) -> Job {
        Job {
            plan,
            state: JobState::Pending,
            attempts: 0,
            retry: None,
            started: None,
            no_transfer: false,
        }
    }
}

/// What the actor's own tasks report back.
pub(super) enum Internal {
    Connected(usize, Box<Result<Engine, EngineError>>),
    Pinged(usize, Result<(), EngineError>),
    Ended(usize, TaskOutcome),
    /// Job `j`'s base image is on its engine now; its build starts.
    Moved(usize, Moved),
    /// Job `j`'s base image could not be moved (its place is free again).
    MoveFailed(usize, MoveFailed),
}

impl Scheduler {
    pub(super) async fn run_actor(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> Summary {
        let exit_when_idle = self.ctx.opts.mode.exits_when_idle();
        self.load_durations().await;
        for i in 0..self.slots.len() {
            // Shown as connecting at once: an engine that never answers is listed too.
            self.emit_health(i);
            self.connect(i);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut commands_open = true;
        loop {
            self.dispatch().await;
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
                summary.eta_secs = self.take_first_estimate();
                self.emit(BuildEvent::Done(summary.clone()));
                if exit_when_idle {
                    return summary;
                }
            }
            self.maybe_estimate();
            tokio::select! {
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(Command::Build(plan)) => self.enqueue(plan),
                    Some(Command::Cancel(cell)) => self.cancel(&cell).await,
                    Some(Command::CancelAll) => self.cancel_all().await,
                    Some(Command::SetMatrix(m)) => self.ctx.matrix = m,
                    Some(Command::Shutdown) => {
                        self.cancel_all().await;
                        commands_open = false;
                    }
                    None => commands_open = false,
                },
                Some(msg) = self.internal_rx.recv() => self.internal(msg).await,
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
        self.eta.dirty = true;
        for p in plan {
            if let Some(&i) = self.by_cell.get(&p.cell.id) {
                if !matches!(self.jobs[i].state, JobState::Ended { .. }) {
                    continue; // already queued or running
                }
                self.jobs[i] = Job::new(p.clone());
            } else {
                self.by_cell.insert(p.cell.id.clone(), self.jobs.len());
                self.jobs.push(Job::new(p.clone()));
            }
            self.emit(BuildEvent::Queued {
                cell: p.cell.id.clone().into(),
            });
        }
        // The engines' queued counts changed: say so now, not at their next event.
        for i in 0..self.slots.len() {
            self.emit_health(i);
        }
    }

    /// End a queued job that never started (skipped, cancelled, or given up on).
    pub(super) async fn end_unbuilt(&mut self, j: usize, status: BuildStatus, reason: String) {
        let plan = &self.jobs[j].plan;
        let cause =
            record::unbuilt(&self.ctx, plan, status, &reason, &format!("was {status}")).await;
        self.summary.add(status);
        if let Some(c) = &cause {
            self.summary.add_cause(&plan.cell.id, c);
        }
        self.emit(BuildEvent::Finished(CellResult {
            cause,
            ..CellResult::unbuilt(plan.cell.id.clone().into(), status, None, reason)
        }));
        self.jobs[j].state = JobState::Ended {
            status,
            slot: None,
            image_id: None,
        };
        self.eta.dirty = true;
        // It no longer counts as queued on the engines that could have taken it (a skipped
        // child left `◌2` on the engines line for good).
        let arch = self.jobs[j].plan.cell.arch.clone();
        for i in 0..self.slots.len() {
            if self.slots[i].spec.arches.contains(&arch) {
                self.emit_health(i);
            }
        }
    }

    async fn cancel(&mut self, cell: &str) {
        let Some(&j) = self.by_cell.get(cell) else {
            return;
        };
        match &self.jobs[j].state {
            JobState::Pending => {
                self.end_unbuilt(j, BuildStatus::Cancelled, "cancelled while queued".into())
                    .await
            }
            JobState::Running { cancel, .. } => cancel.cancel(),
            JobState::Ended { .. } => {}
        }
    }

    async fn cancel_all(&mut self) {
        let cells: Vec<String> = self
            .jobs
            .iter()
            .filter(|j| !matches!(j.state, JobState::Ended { .. }))
            .map(|j| j.plan.cell.id.clone())
            .collect();
        // Queued dependants first, so that a cancelled base does not make them "skipped".
        for c in cells.iter().rev() {
            self.cancel(c).await;
        }
    }

    async fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Moved(j, m) => self.moved(j, m),
            Internal::MoveFailed(j, f) => self.move_failed(j, f).await,
            Internal::Connected(i, r) => {
                self.connected(i, *r);
                self.learn_arches();
            }
            Internal::Pinged(i, r) => {
                self.pinged(i, r);
                self.eta.dirty = true;
            }
            Internal::Ended(j, outcome) => self.ended(j, outcome),
        }
    }

    /// A move of job `j`'s base failed or was cancelled: free its place; queue it again to
    /// wait for an engine holding its base, or end it as cancelled.
    async fn move_failed(&mut self, j: usize, f: MoveFailed) {
        let JobState::Running { slot, .. } = self.jobs[j].state.clone() else {
            return;
        };
        self.slots[slot].running -= 1;
        self.jobs[j].state = JobState::Pending;
        self.jobs[j].no_transfer = true;
        self.eta.dirty = true;
        self.emit_health(slot);
        if let MoveFailed::Cancelled = f {
            let why = "cancelled while its base image was moved".to_string();
            self.end_unbuilt(j, BuildStatus::Cancelled, why).await;
        }
    }

    /// A build task ended: count it, queue it again, or mark its engine lost.
    fn ended(&mut self, j: usize, outcome: TaskOutcome) {
        let JobState::Running { slot, .. } = self.jobs[j].state.clone() else {
            return;
        };
        self.slots[slot].running -= 1;
        match outcome {
            TaskOutcome::Done {
                status,
                image_id,
                cause,
                size,
                cached,
            } => {
                self.summary.add(status);
                self.summary.cache_hits += cached;
                if let Some(c) = &cause {
                    self.summary.add_cause(&self.jobs[j].plan.cell.id, c);
                }
                self.learn_duration(j, slot, status, size);
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
                    self.slots[slot].lost(why);
                }
                self.emit(BuildEvent::Retrying {
                    cell: self.jobs[j].plan.cell.id.clone().into(),
                    engine: self.slots[slot].spec.name.clone().into(),
                    attempt: self.jobs[j].attempts,
                    reason,
                });
            }
            TaskOutcome::EngineLost { reason, cause } => {
                self.summary.add(BuildStatus::Failed);
                if let Some(c) = &cause {
                    self.summary.add_cause(&self.jobs[j].plan.cell.id, c);
                }
                self.jobs[j].state = JobState::Ended {
                    status: BuildStatus::Failed,
                    slot: Some(slot),
                    image_id: None,
                };
                self.slots[slot].lost(reason);
            }
        }
        self.eta.dirty = true;
        self.emit_health(slot);
    }

    /// Start what can start: each queued cell in priority order (longest remaining path
    /// first), routed by [`route`] over the slots as they are now (speeds, the expected time
    /// left of their builds, places reserved by cells before it in this pass); cells whose
    /// base ended badly, or that no engine can take, end here.
    pub(super) async fn dispatch(&mut self) {
        // Put back below; nothing in between learns.
        let model = std::mem::take(&mut self.eta.model);
        self.dispatch_with(&model).await;
        self.eta.model = model;
    }

    /// The slots as routing sees them now: with their engines' speeds and the expected
    /// seconds left of each running build.
    fn timed_slots(&self, model: &Model) -> Vec<SlotSnapshot> {
        let mut slots: Vec<SlotSnapshot> = self.slots.iter().map(Slot::snapshot).collect();
        for s in &mut slots {
            s.speed = model.speeds.of(&s.name);
        }
        for job in &self.jobs {
            if let (JobState::Running { slot, .. }, Some(t)) = (&job.state, job.started) {
                let s = &mut slots[*slot];
                let kind = kind_of(s, &job.plan.cell.arch);
                let left = model.secs(&job.plan.cell.id, kind) / s.speed.max(1e-3)
                    - t.elapsed().as_secs_f64();
                s.busy.push(left.max(0.0));
            }
        }
        slots
    }

    /// The jobs in priority order ([`priority_order`]): expected seconds on the kind of
    /// engine each will likely get, dependants through their base cell.
    fn job_order(&self, slots: &[SlotSnapshot], model: &Model) -> Vec<usize> {
        let secs: Vec<f64> = self
            .jobs
            .iter()
            .map(|j| {
                let arch = &j.plan.cell.arch;
                let native = slots.iter().any(|s| s.native.iter().any(|a| a == arch));
                let kind = if native {
                    EngineKind::Native
                } else {
                    EngineKind::Emulated
                };
                model.secs(&j.plan.cell.id, kind)
            })
            .collect();
        let parent: Vec<Option<usize>> = self
            .jobs
            .iter()
            .map(|j| {
                j.plan
                    .cell
                    .base_id()
                    .and_then(|b| self.by_cell.get(&b).copied())
            })
            .collect();
        priority_order(&secs, &parent)
    }

    async fn dispatch_with(&mut self, model: &Model) {
        let rules = Rules::from_options(&self.ctx.opts);
        let mut slots = self.timed_slots(model);
        for j in self.job_order(&slots, model) {
            if self.jobs[j].state != JobState::Pending {
                continue;
            }
            // At the --jobs cap nothing starts; the cells after keep their turn.
            if at_cap(&slots, rules.max_total) {
                return;
            }
            let base_id = self.jobs[j].plan.cell.base_id();
            // The base: in this run (must have ended well), or from history (on its engine).
            let mut base: Option<(String, Option<String>)> = None; // (engine, image id)
            if let Some(base_id) = &base_id {
                if let Some(&b) = self.by_cell.get(base_id) {
                    match &self.jobs[b].state {
                        JobState::Pending | JobState::Running { .. } => continue,
                        JobState::Ended {
                            status: BuildStatus::Succeeded,
                            slot,
                            image_id,
                        } => {
                            base =
                                slot.map(|s| (self.slots[s].spec.name.clone(), image_id.clone()));
                        }
                        JobState::Ended { status, .. } => {
                            let reason = format!("base {base_id} {status}");
                            self.end_unbuilt(j, BuildStatus::Skipped, reason).await;
                            continue;
                        }
                    }
                } else if let Some((engine, image)) = &self.jobs[j].plan.prebuilt_base {
                    base = Some((engine.clone(), Some(image.clone())));
                }
            }
            let base_image = base.as_ref().and_then(|(_, image)| image.clone());
            let copies = match &base_id {
                Some(b) => self.copies_of(b, base_image.as_deref()),
                None => Vec::new(),
            };
            let mut cost = model.cost(&self.jobs[j].plan.cell.id, base_id.as_deref());
            if self.jobs[j].no_transfer || base_image.is_none() {
                cost.transfer = f64::INFINITY; // not moved: waits where its base is
            }
            let job = JobSnapshot {
                arch: &self.jobs[j].plan.cell.arch,
                base: base
                    .as_ref()
                    .zip(base_id.as_deref())
                    .map(|((engine, _), cell)| BaseAt { cell, engine }),
                base_copies: &copies,
                retry: self.jobs[j]
                    .retry
                    .as_ref()
                    .map(|(since, lost)| (since.elapsed(), lost.as_str())),
                cost: Some(cost),
            };
            if let Some(reason) = self.jobs[j].plan.blocked.clone() {
                // Ended once every engine has had its first connection attempt, so that a
                // run whose engines are all unreachable says so whatever else went wrong.
                if slots.iter().any(|s| s.state == SlotState::Connecting) {
                    continue;
                }
                self.end_unbuilt(j, BuildStatus::Failed, reason).await;
                continue;
            }
            // Only engines whose builder reads the cell's text take it.
            let builders: Vec<Option<&crate::engine::builder::Builder>> = self
                .slots
                .iter()
                .map(|s| s.engine.as_ref().map(|e| &e.info.builder))
                .collect();
            let fit = builder_fit(
                &slots,
                &builders,
                job.arch,
                &self.jobs[j].plan.features,
                self.ctx.opts.frontend,
                self.ctx.opts.buildkit,
            );
            let fitting: Vec<SlotSnapshot> = match &fit {
                Ok(mask) => slots
                    .iter()
                    .zip(mask)
                    .map(|(s, &ok)| {
                        let mut s = s.clone();
                        if !ok {
                            s.arches.clear();
                        }
                        s
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let routed = match fit {
                Err(reason) => Routed::Skip(reason),
                Ok(_) => route(&fitting, &job, &rules),
            };
            let cost = job.cost.expect("routed with a cost");
            let arch = job.arch.to_string();
            match routed {
                Routed::Start(i) => {
                    let finish = finish_on(&slots[i], &arch, &cost, false);
                    take(&mut slots[i], finish);
                    self.start(j, i, base_image, None);
                }
                Routed::Transfer { from, to } => {
                    let finish = finish_on(&slots[to], &arch, &cost, true);
                    take(&mut slots[to], finish);
                    let src = self.slots[from].engine.clone();
                    let plan = &self.jobs[j].plan;
                    let moving = src.zip(base_image.clone()).map(|(src, image_id)| {
                        let base_cell = Cell::new(&plan.cell.distro, None, &plan.cell.arch);
                        Move {
                            src,
                            base: base_cell.id.clone(),
                            reference: pinned_base_ref(&base_cell, &self.ctx.opts.tags, &image_id),
                            image_id,
                        }
                    });
                    // Always there (a source that answers, a known image): else it waits.
                    if moving.is_some() {
                        self.start(j, to, base_image, moving);
                    }
                }
                Routed::Wait(WaitFor::Slot(i)) => {
                    // Its place on that engine is taken: cells after it see so.
                    let finish = finish_on(&slots[i], &arch, &cost, false);
                    take(&mut slots[i], finish);
                }
                Routed::Wait(_) => {}
                Routed::Skip(reason) => self.end_unbuilt(j, BuildStatus::Skipped, reason).await,
                Routed::Fail(reason) => self.end_unbuilt(j, BuildStatus::Failed, reason).await,
            }
        }
    }

    /// Start job `j` on slot `slot` (connected), building FROM `base_image` if it has one,
    /// after `moving` that image there when it is not there yet.
    pub(super) fn start(
        &mut self,
        j: usize,
        slot: usize,
        base_image: Option<String>,
        moving: Option<Move>,
    ) {
        let engine = self.slots[slot]
            .engine
            .clone()
            .expect("dispatch picks connected engines");
        self.slots[slot].running += 1;
        self.jobs[j].retry = None;
        self.jobs[j].started = Some(Instant::now());
        self.eta.dirty = true;
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
            if let Some(m) = moving {
                match super::moves::run(&ctx, &plan.cell.id, &m, &engine, &cancel).await {
                    Ok(moved) => {
                        let _ = tx.send(Internal::Moved(j, moved));
                    }
                    Err(f) => {
                        let _ = tx.send(Internal::MoveFailed(j, f));
                        return;
                    }
                }
            }
            let outcome = build_task(&ctx, &engine, &plan, base_image, attempts, &cancel).await;
            let _ = tx.send(Internal::Ended(j, outcome));
        });
    }
}

/// The kind of engine slot `s` is for `arch`.
fn kind_of(s: &SlotSnapshot, arch: &str) -> EngineKind {
    if s.native.iter().any(|a| a == arch) {
        EngineKind::Native
    } else {
        EngineKind::Emulated
    }
}
