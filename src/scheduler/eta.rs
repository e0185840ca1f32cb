//! The actor's side of the time estimate: what it learns (durations from history and from
//! this process's builds, each engine's native arch once it has answered), when it
//! re-estimates (after a change, at most once per [`EVERY`]), and the `Progress` events it
//! sends. The estimate itself is [`super::estimate::simulate`], a pure function.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::actor::JobState;
use super::durations::{Durations, Sample, RECENT};
use super::estimate::{simulate, SimBase, SimJob, SimState};
use super::policy::Model;
use super::route::{BaseAt, Rules, SlotSnapshot, SlotState};
use super::slots::Slot;
use super::{BuildEvent, Eta, Scheduler};
use crate::store::BuildStatus;

/// Least time between two estimates (each simulates the whole queue).
pub(super) const EVERY: Duration = Duration::from_secs(1);

/// What the estimate needs to remember between events.
#[derive(Default)]
pub(super) struct EtaState {
    pub durations: Durations,
    /// What the policy goes by, learnt again from `durations` after each change
    /// ([`Scheduler::relearn`]).
    pub model: Model,
    /// Engine name -> native arch, as learnt when it connected (kept when it goes down).
    pub arch_of: HashMap<String, String>,
    /// Something changed since the last estimate.
    pub dirty: bool,
    pub last: Option<Instant>,
    /// The run's estimate of its whole duration (seconds from its start): the first one made
    /// once every engine had its first connection attempt (None inside: nothing to go by).
    pub first_total: Option<Option<f64>>,
}

impl Scheduler {
    /// Read the history's recent success durations (once, when the actor starts). A failed
    /// read leaves the estimate without history: it is reported as unknown, not as an error.
    pub(super) async fn load_durations(&mut self) {
        let samples = self
            .ctx
            .store
            .try_call(|s| s.recent_success_durations(RECENT))
            .await
            .unwrap_or_default();
        self.eta.durations = Durations::from_samples(samples.into_iter().map(|d| Sample {
            cell: d.cell,
            engine: d.engine,
            secs: d.secs,
        }));
        // Each cell's last success: its engine (cache affinity) and its image's size (what
        // moving it costs).
        let last = self
            .ctx
            .store
            .try_call(|s| s.last_success_per_cell())
            .await
            .unwrap_or_default();
        for (cell, r) in last {
            if let Some(size) = r.size.filter(|s| *s > 0) {
                self.eta.model.sizes.insert(cell.clone(), size as u64);
            }
            self.eta.model.last_engine.insert(cell, r.engine);
        }
        self.relearn();
    }

    /// Learn the policy's speeds and expectations again from the durations known now.
    pub(super) fn relearn(&mut self) {
        let arch_of = &self.eta.arch_of;
        let learnt = Model::learn(&self.eta.durations, |e: &str| {
            arch_of.get(e).map(String::as_str)
        });
        self.eta.model.speeds = learnt.speeds;
        self.eta.model.expect = learnt.expect;
    }

    /// A job ended: a success becomes one more sample (its build's duration, from when the
    /// build started, after any move of its base), its engine the cell's last, its size
    /// known.
    pub(super) fn learn_duration(
        &mut self,
        j: usize,
        slot: usize,
        status: BuildStatus,
        size: Option<u64>,
    ) {
        if let (BuildStatus::Succeeded, Some(t)) = (status, self.jobs[j].started) {
            let cell = self.jobs[j].plan.cell.id.clone();
            let engine = self.slots[slot].spec.name.clone();
            self.eta.durations.add(Sample {
                cell: cell.clone(),
                engine: engine.clone(),
                secs: t.elapsed().as_secs_f64(),
            });
            if let Some(size) = size {
                self.eta.model.sizes.insert(cell.clone(), size);
            }
            self.eta.model.last_engine.insert(cell, engine);
            self.relearn();
        }
        self.eta.dirty = true;
    }

    /// Remember the native arch of every connected engine.
    pub(super) fn learn_arches(&mut self) {
        for s in &self.slots {
            if let Some(e) = &s.engine {
                self.eta
                    .arch_of
                    .insert(s.spec.name.clone(), e.info.arch.clone());
            }
        }
        self.relearn();
        self.eta.dirty = true;
    }

    /// Estimate and send `Progress` if something changed and [`EVERY`] has passed, while a
    /// run is under way, once every engine has had its first connection attempt (before,
    /// which past builds were emulated is not known yet).
    pub(super) fn maybe_estimate(&mut self) {
        let Some(start) = self.batch_start else {
            return;
        };
        if !self.eta.dirty
            || self.eta.last.is_some_and(|t| t.elapsed() < EVERY)
            || !self.slots.iter().all(|s| s.tried)
        {
            return;
        }
        self.eta.dirty = false;
        self.eta.last = Some(Instant::now());
        let eta = self.estimate();
        // The first estimate is the run's estimate.
        if self.eta.first_total.is_none() {
            let total = eta
                .eta_secs
                .map(|secs| start.elapsed().as_secs_f64() + secs);
            self.eta.first_total = Some(total.map(tenths));
        }
        self.emit(BuildEvent::Progress(eta));
    }

    /// The run's first estimate, for its summary; cleared for the next run.
    pub(super) fn take_first_estimate(&mut self) -> Option<f64> {
        self.eta.last = None;
        self.eta.first_total.take().flatten()
    }

    /// Simulate the jobs not ended over the slots as they are now.
    fn estimate(&self) -> Eta {
        let slots: Vec<SlotSnapshot> = self
            .slots
            .iter()
            .map(|s| {
                let mut snap = Slot::snapshot(s);
                // A connecting engine known from before keeps its native arch.
                if snap.state == SlotState::Connecting {
                    if let Some(a) = self.eta.arch_of.get(&s.spec.name) {
                        if s.spec.arches.contains(a) {
                            snap.native = vec![a.clone()];
                        }
                    }
                }
                snap
            })
            .collect();
        let open: Vec<usize> = (0..self.jobs.len())
            .filter(|&j| !matches!(self.jobs[j].state, JobState::Ended { .. }))
            .collect();
        let index: HashMap<&str, usize> = open
            .iter()
            .enumerate()
            .map(|(k, &j)| (self.jobs[j].plan.cell.id.as_str(), k))
            .collect();
        let base_ids: Vec<Option<String>> = open
            .iter()
            .map(|&j| self.jobs[j].plan.cell.base_id())
            .collect();
        let jobs: Vec<SimJob> = open
            .iter()
            .zip(&base_ids)
            .map(|(&j, base_id)| {
                let job = &self.jobs[j];
                let base = base_id.as_deref().and_then(|b| {
                    if let Some(&k) = index.get(b) {
                        return Some(SimBase::Job(k));
                    }
                    // Ended in this run (well: on its engine), or built before the run.
                    let engine = match self.by_cell.get(b).map(|&x| &self.jobs[x].state) {
                        Some(JobState::Ended { slot: Some(s), .. }) => {
                            Some(self.slots[*s].spec.name.as_str())
                        }
                        Some(_) => None,
                        None => job.plan.prebuilt_base.as_ref().map(|(e, _)| e.as_str()),
                    }?;
                    Some(SimBase::Built(BaseAt { cell: b, engine }))
                });
                let state = match &job.state {
                    JobState::Running { slot, .. } => SimState::Running {
                        slot: *slot,
                        elapsed: job.started.map_or(0.0, |t| t.elapsed().as_secs_f64()),
                    },
                    _ => SimState::Pending,
                };
                SimJob {
                    cell: &job.plan.cell.id,
                    arch: &job.plan.cell.arch,
                    base,
                    state,
                }
            })
            .collect();
        let est = simulate(
            &slots,
            &jobs,
            &Rules::from_options(&self.ctx.opts),
            &self.eta.model,
        );
        let estimated = jobs.len().saturating_sub(est.blocked + est.unknown);
        Eta {
            eta_secs: (estimated > 0 || jobs.is_empty()).then_some(tenths(est.secs)),
            cells_left: jobs.len(),
            unknown: est.unknown,
            blocked: est.blocked,
        }
    }
}

/// Seconds rounded to a tenth: estimates are not more precise than that.
fn tenths(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}
