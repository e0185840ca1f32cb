//! Routing: which engine a queued cell goes to. Native before emulated, least loaded
//! first, within each engine's `max_parallel` and the run's `--jobs`; a compiler cell goes to
//! the engine that holds its base image.

use super::actor::{Job, JobState};
use super::Scheduler;
use crate::matrix::Cell;
use crate::store::BuildStatus;

impl Scheduler {
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

    pub(super) fn dispatch(&mut self) {
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
}
