//! Time left in a run: a simulation of the queue over expected durations. The cells still to
//! end go through the scheduler's own policy: taken in its priority order
//! ([`super::policy::priority_order`]) and routed by its own [`route`] over the engines as
//! they are, as the actor's dispatch does: a compiler waits for its base and goes where it is
//! (or, with transfer on, where moving it pays), native engines before emulating ones, the
//! earliest expected finish first (engine speeds, queues), no engine over its `max_parallel`
//! nor the run over `--jobs`. Each start lasts the cell's expected duration on that kind of
//! engine at that engine's speed ([`super::policy::Model`]), plus a move of its base; a
//! running build lasts what is left of it.
//!
//! Pure and deterministic: no clock (the caller passes how long each running build has run),
//! no engine. A cell with no expected duration counts as instant, so the figure is then a
//! lower bound, and [`Estimate::unknown`] says how many such cells there are (routing still
//! weighs it at [`super::policy::DEFAULT_SECS`]).

use super::durations::EngineKind;
use super::policy::{finish_on, priority_order, take, Model};
use super::route::{
    at_cap, route, BaseAt, JobSnapshot, Routed, Rules, SlotSnapshot, SlotState, WaitFor,
};

/// A cell still to end, as the simulation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimJob<'a> {
    pub cell: &'a str,
    pub arch: &'a str,
    pub base: Option<SimBase<'a>>,
    pub state: SimState,
}

/// Where a compiler's base comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimBase<'a> {
    /// An earlier job of the same simulation (its index): the cell waits for it, goes where
    /// it went, and does not build if it does not.
    Job(usize),
    /// Built before (this run or an earlier one), on this engine.
    Built(BaseAt<'a>),
}

/// Where a cell is now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimState {
    /// Queued.
    Pending,
    /// Building on slot `slot` for `elapsed` seconds.
    Running { slot: usize, elapsed: f64 },
}

/// What the simulation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    /// Seconds until the last cell ends (0 with nothing to do).
    pub secs: f64,
    /// Cells (of those the simulation started) with no expected duration: counted as instant.
    pub unknown: usize,
    /// Cells that would not build: no engine would take them (skipped), or their base does
    /// not build, or (with a mode that waits for engines) none will ever answer.
    pub blocked: usize,
    /// Per job: the slot it runs on and its start and end, seconds from now (None: blocked).
    pub schedule: Vec<Option<Slotted>>,
}

/// One job's place in the simulated schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slotted {
    pub slot: usize,
    pub start: f64,
    pub end: f64,
}

/// The kind of engine slot `s` is for `arch`.
fn kind_on(s: &SlotSnapshot, arch: &str) -> EngineKind {
    if s.native.iter().any(|a| a == arch) {
        EngineKind::Native
    } else {
        EngineKind::Emulated
    }
}

/// How long a build of `cell` (of `arch`) on slot `s` takes: its expected duration at speed
/// 1.0 over the slot's speed; None when nothing is known of it.
fn duration(model: &Model, cell: &str, arch: &str, s: &SlotSnapshot) -> Option<f64> {
    model
        .known(cell, kind_on(s, arch))
        .map(|secs| secs / s.speed.max(1e-3))
}

/// The priority order of `jobs` ([`priority_order`]): each job's expected seconds on the
/// kind of engine its arch will likely get (native when a slot builds it natively).
pub fn job_order(slots: &[SlotSnapshot], jobs: &[SimJob], model: &Model) -> Vec<usize> {
    let secs: Vec<f64> = jobs
        .iter()
        .map(|j| {
            let native = slots.iter().any(|s| s.native.iter().any(|a| a == j.arch));
            let kind = if native {
                EngineKind::Native
            } else {
                EngineKind::Emulated
            };
            model.secs(j.cell, kind)
        })
        .collect();
    let parent: Vec<Option<usize>> = jobs
        .iter()
        .map(|j| match j.base {
            Some(SimBase::Job(b)) => Some(b),
            _ => None,
        })
        .collect();
    priority_order(&secs, &parent)
}

/// Simulate `jobs` (bases before their compilers) over `slots` under `rules`, taken in
/// priority order and routed by expected finish time as the actor does. Slots still
/// connecting are taken to answer soon (with the native arches the caller knows of them);
/// slots down stay down. The slots' `running` counts, speeds and `busy` times are recomputed
/// from `jobs` and `model`.
pub fn simulate(slots: &[SlotSnapshot], jobs: &[SimJob], rules: &Rules, model: &Model) -> Estimate {
    let mut sim: Vec<SlotSnapshot> = slots
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if s.state == SlotState::Connecting {
                s.state = SlotState::Up;
            }
            s.running = 0;
            s.busy.clear();
            s.speed = model.speeds.of(&s.name);
            s
        })
        .collect();
    let mut est = Estimate {
        schedule: vec![None; jobs.len()],
        ..Estimate::default()
    };
    let mut st = SimRun {
        fate: vec![None; jobs.len()],
        ends: Vec::new(),
        copies: vec![Vec::new(); jobs.len()],
        order: job_order(&sim, jobs, model),
    };
    for (j, job) in jobs.iter().enumerate() {
        if let SimState::Running { slot, elapsed } = job.state {
            let Some(s) = sim.get_mut(slot) else { continue };
            s.running += 1;
            let left = match duration(model, job.cell, job.arch, s) {
                Some(d) => (d - elapsed).max(0.0),
                None => {
                    est.unknown += 1;
                    0.0
                }
            };
            st.fate[j] = Some(true);
            est.schedule[j] = Some(Slotted {
                slot,
                start: -elapsed,
                end: left,
            });
            st.ends.push((left, j));
        }
    }
    let mut now = 0.0_f64;
    loop {
        dispatch(&mut sim, jobs, rules, model, now, &mut st, &mut est);
        // The next build to end, and every other ending then.
        let Some(next) = st.ends.iter().map(|(t, _)| *t).min_by(f64::total_cmp) else {
            break;
        };
        now = next;
        st.ends.retain(|&(t, j)| {
            if t <= next {
                if let Some(sl) = est.schedule[j] {
                    sim[sl.slot].running -= 1;
                }
                false
            } else {
                true
            }
        });
    }
    est.secs = now;
    est.blocked += st.fate.iter().filter(|f| f.is_none()).count();
    est
}

/// The simulation's state between passes.
struct SimRun {
    /// Per job: None pending, Some(true) started (or done), Some(false) will not build.
    fate: Vec<Option<bool>>,
    /// (end, job) of the running ones.
    ends: Vec<(f64, usize)>,
    /// Per base job: engines its image was moved to, and from when it is there.
    copies: Vec<Vec<(String, f64)>>,
    /// The jobs in priority order.
    order: Vec<usize>,
}

/// Is there a slot that could take a build of `arch` now (configured for it, not down, not
/// full)? Checked before routing, which is costlier, for each queued cell.
fn room_for(slots: &[SlotSnapshot], arch: &str) -> bool {
    slots.iter().any(|s| {
        s.state != SlotState::Down
            && s.running < s.max_parallel
            && s.arches.iter().any(|a| a == arch)
    })
}

/// One pass of the actor's dispatch at time `now`: start what can start, in priority order.
fn dispatch(
    sim: &mut [SlotSnapshot],
    jobs: &[SimJob],
    rules: &Rules,
    model: &Model,
    now: f64,
    st: &mut SimRun,
    est: &mut Estimate,
) {
    // What routing sees in this pass: the builds' expected time left, and places reserved.
    let mut pass: Vec<SlotSnapshot> = sim.to_vec();
    for &(end, j) in &st.ends {
        if let Some(sl) = est.schedule[j] {
            pass[sl.slot].busy.push(end - now);
        }
    }
    for k in 0..st.order.len() {
        let j = st.order[k];
        if st.fate[j].is_some() {
            continue;
        }
        if at_cap(sim, rules.max_total) {
            return;
        }
        let job = &jobs[j];
        let (base, copies) = match job.base {
            None => (None, Vec::new()),
            Some(SimBase::Built(b)) => (Some(b), Vec::new()),
            Some(SimBase::Job(b)) => match (st.fate.get(b).copied().flatten(), est.schedule.get(b))
            {
                (None, _) => continue,
                (Some(false), _) => {
                    st.fate[j] = Some(false);
                    est.blocked += 1;
                    continue;
                }
                (Some(true), Some(Some(sl))) if sl.end <= now => (
                    Some(BaseAt {
                        cell: jobs[b].cell,
                        engine: &sim[sl.slot].name,
                    }),
                    st.copies[b]
                        .iter()
                        .filter(|(_, at)| *at <= now)
                        .map(|(e, _)| e.clone())
                        .collect(),
                ),
                (Some(true), _) => continue, // still building
            },
        };
        let capable = sim.iter().any(|s| s.arches.iter().any(|a| a == job.arch));
        if capable && base.is_none() && !room_for(sim, job.arch) {
            continue;
        }
        let snapshot = JobSnapshot {
            arch: job.arch,
            base,
            base_copies: &copies,
            retry: None,
            cost: Some(model.cost(job.cell, base.map(|b| b.cell))),
        };
        let routed = route(&pass, &snapshot, rules);
        let (i, moved) = match routed {
            Routed::Start(i) => (i, None),
            Routed::Transfer { to, .. } => (to, Some(snapshot.cost.map_or(0.0, |c| c.transfer))),
            Routed::Wait(WaitFor::Slot(i)) => {
                let cost = snapshot.cost.expect("routed with a cost");
                let finish = finish_on(&pass[i], job.arch, &cost, false);
                take(&mut pass[i], finish);
                continue;
            }
            Routed::Wait(_) => continue,
            Routed::Skip(_) | Routed::Fail(_) => {
                st.fate[j] = Some(false);
                est.blocked += 1;
                continue;
            }
        };
        let d = match duration(model, job.cell, job.arch, &sim[i]) {
            Some(d) => d,
            None => {
                est.unknown += 1;
                0.0
            }
        } + moved.unwrap_or(0.0);
        if let (Some(secs), Some(SimBase::Job(b))) = (moved, job.base) {
            let to = sim[i].name.clone();
            st.copies[b].push((to, now + secs));
        }
        sim[i].running += 1;
        take(&mut pass[i], d);
        st.fate[j] = Some(true);
        est.schedule[j] = Some(Slotted {
            slot: i,
            start: now,
            end: now + d,
        });
        st.ends.push((now + d, j));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::durations::{Durations, Sample};
    use super::super::RunMode;
    use super::*;

    fn slot(name: &str, arches: &[&str], native: &[&str], max_parallel: usize) -> SlotSnapshot {
        SlotSnapshot {
            name: name.into(),
            arches: arches.iter().map(|a| a.to_string()).collect(),
            native: native.iter().map(|a| a.to_string()).collect(),
            state: SlotState::Up,
            running: 0,
            max_parallel,
            last_error: None,
            speed: 1.0,
            busy: Vec::new(),
        }
    }

    const BATCH: Rules = Rules {
        mode: RunMode::Batch,
        max_total: None,
        reconnect_wait: Duration::from_secs(30),
        transfer: false,
    };

    /// A model from (cell, engine, secs); engines `a`, `b` amd64, `q` arm64.
    fn expect(samples: &[(&str, &str, f64)]) -> Model {
        let d = Durations::from_samples(samples.iter().map(|(c, e, s)| Sample {
            cell: c.to_string(),
            engine: e.to_string(),
            secs: *s,
        }));
        Model::learn(&d, |e| match e {
            "a" | "b" | "m" => Some("amd64"),
            "q" => Some("arm64"),
            _ => None,
        })
    }

    fn pending<'a>(cell: &'a str, arch: &'a str, base: Option<usize>) -> SimJob<'a> {
        SimJob {
            cell,
            arch,
            base: base.map(SimBase::Job),
            state: SimState::Pending,
        }
    }

    #[test]
    fn bases_first_then_compilers_on_the_base_engine_two_at_a_time() {
        let e = expect(&[
            ("d/opam/amd64", "a", 10.0),
            ("d/5.4/amd64", "a", 5.0),
            ("d/5.3/amd64", "a", 5.0),
            ("d/5.2/amd64", "a", 5.0),
        ]);
        let jobs = [
            pending("d/opam/amd64", "amd64", None),
            pending("d/5.4/amd64", "amd64", Some(0)),
            pending("d/5.3/amd64", "amd64", Some(0)),
            pending("d/5.2/amd64", "amd64", Some(0)),
        ];
        // Engine b is free all along, but the compilers must go where their base is.
        let slots = [
            slot("a", &["amd64"], &["amd64"], 2),
            slot("b", &["amd64"], &["amd64"], 2),
        ];
        let est = simulate(&slots, &jobs, &BATCH, &e);
        assert_eq!(est.secs, 20.0);
        assert_eq!((est.unknown, est.blocked), (0, 0));
        let s: Vec<(usize, f64, f64)> = est
            .schedule
            .iter()
            .map(|x| x.map(|x| (x.slot, x.start, x.end)).unwrap())
            .collect();
        assert_eq!(
            s,
            [
                (0, 0.0, 10.0),
                (0, 10.0, 15.0),
                (0, 10.0, 15.0),
                (0, 15.0, 20.0)
            ]
        );
    }

    #[test]
    fn parallel_bases_spread_over_engines_and_jobs_caps_them() {
        let e = expect(&[("x/opam/amd64", "a", 30.0)]);
        // Four bases never built: each expected as long as similar cells (30 s).
        let jobs = [
            pending("d1/opam/amd64", "amd64", None),
            pending("d2/opam/amd64", "amd64", None),
            pending("d3/opam/amd64", "amd64", None),
            pending("d4/opam/amd64", "amd64", None),
        ];
        let slots = [
            slot("a", &["amd64"], &["amd64"], 1),
            slot("b", &["amd64"], &["amd64"], 1),
        ];
        assert_eq!(simulate(&slots, &jobs, &BATCH, &e).secs, 60.0);
        let capped = Rules {
            max_total: Some(1),
            ..BATCH
        };
        assert_eq!(simulate(&slots, &jobs, &capped, &e).secs, 120.0);
    }

    #[test]
    fn running_builds_count_what_is_left_and_emulation_is_slower() {
        let e = expect(&[
            ("d/opam/arm64", "q", 20.0),
            ("d/opam/arm64", "a", 200.0),
            ("d/5.4/arm64", "q", 10.0),
        ]);
        let jobs = [
            SimJob {
                cell: "d/opam/arm64",
                arch: "arm64",
                base: None,
                state: SimState::Running {
                    slot: 0,
                    elapsed: 50.0,
                },
            },
            pending("d/5.4/arm64", "arm64", Some(0)),
        ];
        // Running emulated on a (amd64) for 50 s of an expected 200: 150 left; then the
        // compiler on a as well (its base is there), emulated, with no emulated history of
        // its own nor of similar cells: unknown, counted as instant.
        let slots = [
            slot("a", &["amd64", "arm64"], &["amd64"], 1),
            slot("q", &["arm64"], &["arm64"], 1),
        ];
        let est = simulate(&slots, &jobs, &BATCH, &e);
        assert_eq!((est.secs, est.unknown), (150.0, 1));
        // A build past its expected duration is expected to end now.
        let mut late = jobs.clone();
        late[0].state = SimState::Running {
            slot: 1,
            elapsed: 25.0,
        };
        let est = simulate(&slots, &late, &BATCH, &e);
        assert_eq!((est.secs, est.unknown), (10.0, 0));
        assert_eq!(est.schedule[1].unwrap().slot, 1);
    }

    #[test]
    fn no_engine_for_an_arch_blocks_the_cell_and_its_dependants() {
        let e = expect(&[("d/opam/amd64", "a", 10.0)]);
        let jobs = [
            pending("d/opam/s390x", "s390x", None),
            pending("d/5.4/s390x", "s390x", Some(0)),
            pending("d/opam/amd64", "amd64", None),
        ];
        let slots = [slot("a", &["amd64"], &["amd64"], 1)];
        let est = simulate(&slots, &jobs, &BATCH, &e);
        assert_eq!((est.secs, est.blocked, est.unknown), (10.0, 2, 0));
        // An interactive run waits for such an engine: still blocked, never started.
        let tui = Rules {
            mode: RunMode::Interactive,
            ..BATCH
        };
        let mut down = slots.to_vec();
        down.push(SlotSnapshot {
            state: SlotState::Down,
            ..slot("z", &["s390x"], &[], 1)
        });
        let est = simulate(&down, &jobs, &tui, &e);
        assert_eq!((est.secs, est.blocked), (10.0, 2));
        assert_eq!(simulate(&slots, &[], &BATCH, &e), Estimate::default());
    }

    #[test]
    fn a_base_built_earlier_pins_its_compilers() {
        let e = expect(&[("d/5.4/amd64", "b", 7.0), ("d/5.3/amd64", "b", 7.0)]);
        let base = BaseAt {
            cell: "d/opam/amd64",
            engine: "b",
        };
        let jobs = [
            SimJob {
                base: Some(SimBase::Built(base)),
                ..pending("d/5.4/amd64", "amd64", None)
            },
            SimJob {
                base: Some(SimBase::Built(base)),
                ..pending("d/5.3/amd64", "amd64", None)
            },
        ];
        let slots = [
            slot("a", &["amd64"], &["amd64"], 4),
            slot("b", &["amd64"], &["amd64"], 1),
        ];
        let est = simulate(&slots, &jobs, &BATCH, &e);
        assert_eq!(est.secs, 14.0, "one at a time on b, a stays idle");
    }
}
