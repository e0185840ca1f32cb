//! Routing: which engine a queued cell goes to. A pure function over a snapshot of the
//! engine slots, so that the rules can be read in one place and tested without an engine:
//!
//! - a cell goes to an engine configured for its arch; a compiler cell only to the engine
//!   that holds its base image;
//! - native before emulated: while a native engine for the arch is reachable, emulating
//!   engines are not used (emulation is many times slower), even when the native ones are full;
//! - least loaded first (running / `max_parallel`), the earlier configured engine on a tie;
//! - never more than an engine's `max_parallel`, nor the run's `--jobs` in all;
//! - with no reachable engine for the arch, a headless run skips the cell once every such
//!   engine has had its first connection attempt, and fails a retry that waited
//!   `reconnect_wait` in vain; the TUI keeps such cells queued.
//!
//! - a cell goes only to an engine whose builder can build its text (see [`builder_fit`]):
//!   heredocs, `COPY --link`, `RUN --mount`, a `# syntax=` frontend image; when every
//!   engine of its arch is known to refuse it, it is skipped with each engine's reason.
//!
//! With a cell's expected [`Cost`] (the actor's and the estimate's routing; the preview has
//! none and keeps the least loaded rule above), engines are compared by expected finish time
//! (see [`super::policy`]): when a place frees on the engine, plus moving the base image there
//! if it lacks it, plus the cell's expected duration at the engine's observed speed. The
//! earliest finish wins, even when that engine is full now: the cell then waits for it
//! ([`WaitFor::Slot`]) and a free place elsewhere stays idle on purpose; that engine has
//! builds running, so a place frees and nothing deadlocks. Within 2 % of the earliest
//! finish (expectations are not more precise than that), the engine of the cell's last
//! success (its layers may be cached there) is preferred, then one that holds its base, then
//! one with a place now, then the least loaded, then the earlier configured.
//!
//! With [`Rules::transfer`] on, a compiler cell is no longer pinned to the engine holding its
//! base: it may go to another engine when moving the image there and building finishes
//! earlier ([`Routed::Transfer`]).
//!
//! The actor calls [`route`] for each queued cell; the TUI's build confirm calls [`preview`]
//! over the engines as their last health events describe them.

use std::time::Duration;

use super::policy::{finish_on, ready_at};
use super::{EngineHealth, RunMode, RunOptions};
use crate::config::{BuildkitMode, FrontendMode};
use crate::dockerfile::features::Features;
use crate::engine::builder::Builder;
use crate::engine::EngineInfo;

/// Whether a slot's engine answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// The first connection attempt has not ended yet.
    Connecting,
    /// Connected and answering (as far as the last ping or build knows).
    Up,
    /// Tried and not answering; the health loop keeps trying.
    Down,
}

/// What routing knows of one engine slot at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotSnapshot {
    /// The configured engine name.
    pub name: String,
    /// Arch names the engine is configured to build.
    pub arches: Vec<String>,
    /// Those of `arches` it builds without emulation (empty while it is not connected: the
    /// native arch is learnt on connecting).
    pub native: Vec<String>,
    pub state: SlotState,
    /// Builds running on it now.
    pub running: usize,
    /// Builds it may run at once.
    pub max_parallel: usize,
    /// Why it does not answer, for a skip reason.
    pub last_error: Option<String>,
    /// Its observed speed relative to the fastest engine (1.0 when unknown; see
    /// [`super::policy::Speeds`]).
    pub speed: f64,
    /// Expected seconds left of each build running on it (and of each place reserved in the
    /// current pass); builds without an entry count as ending now.
    pub busy: Vec<f64>,
}

/// `arches` that an engine described by `info` builds natively.
pub(super) fn native_arches(arches: &[String], info: Option<&EngineInfo>) -> Vec<String> {
    match info {
        Some(i) => arches.iter().filter(|a| **a == i.arch).cloned().collect(),
        None => Vec::new(),
    }
}

impl SlotSnapshot {
    /// The slot an engine health event describes (what a face knows of an engine).
    pub fn from_health(h: &EngineHealth) -> SlotSnapshot {
        SlotSnapshot {
            name: h.engine.clone(),
            arches: h.arches.clone(),
            native: if h.reachable {
                native_arches(&h.arches, h.info.as_ref())
            } else {
                Vec::new()
            },
            state: if h.reachable {
                SlotState::Up
            } else if h.tried {
                SlotState::Down
            } else {
                SlotState::Connecting
            },
            running: h.running,
            max_parallel: h.max_parallel,
            last_error: h.last_error.clone(),
            speed: 1.0,
            busy: Vec::new(),
        }
    }

    /// Slots from health events, in the scheduler's order (which breaks ties).
    pub fn from_healths<'a>(
        healths: impl IntoIterator<Item = &'a EngineHealth>,
    ) -> Vec<SlotSnapshot> {
        let mut hs: Vec<&EngineHealth> = healths.into_iter().collect();
        hs.sort_by_key(|h| h.slot);
        hs.into_iter().map(SlotSnapshot::from_health).collect()
    }
}

/// A base image a cell builds FROM: its cell and the engine that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseAt<'a> {
    pub cell: &'a str,
    pub engine: &'a str,
}

/// What routing needs of one queued cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSnapshot<'a> {
    /// The cell's arch.
    pub arch: &'a str,
    /// For a compiler cell whose base is built: where. The cell goes there (or, with
    /// [`Rules::transfer`], to an engine the base image is moved to).
    pub base: Option<BaseAt<'a>>,
    /// Other engines that hold the base image too (it was moved there): no move needed.
    pub base_copies: &'a [String],
    /// A retry waiting for an engine: how long it has waited, and why the last attempt ended.
    pub retry: Option<(Duration, &'a str)>,
    /// What it is expected to cost; None: route by load alone (the preview).
    pub cost: Option<Cost<'a>>,
}

/// What a queued cell is expected to cost, for routing by expected finish time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost<'a> {
    /// Expected seconds on an engine of speed 1.0 that builds its arch natively.
    pub native: f64,
    /// Expected seconds on an engine of speed 1.0 that emulates its arch.
    pub emulated: f64,
    /// Expected seconds to move its base image to an engine that lacks it (0 without base).
    pub transfer: f64,
    /// The engine its previous successful build ran on (its layers may be cached there).
    pub affinity: Option<&'a str>,
}

/// The run's rules that routing follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub mode: RunMode,
    /// Builds at once over all engines (`--jobs`); None: no cap but the engines' own.
    pub max_total: Option<usize>,
    /// How long a retry waits for an engine of its arch in a headless run.
    pub reconnect_wait: Duration,
    /// A compiler cell may go to an engine that lacks its base, which is moved there first
    /// (`[build] transfer`); off: it goes only where its base is.
    pub transfer: bool,
}

impl Rules {
    /// The TUI's rules: cells for an engine that does not answer stay queued; no `--jobs`.
    pub fn interactive() -> Rules {
        Rules {
            mode: RunMode::Interactive,
            max_total: None,
            reconnect_wait: Duration::ZERO,
            transfer: false,
        }
    }

    /// The rules of a run with these options.
    pub fn from_options(o: &RunOptions) -> Rules {
        Rules {
            mode: o.mode,
            max_total: o.max_total,
            reconnect_wait: o.reconnect_wait,
            transfer: o.transfer,
        }
    }
}

/// What to do with a queued cell now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Start it on this slot (an index into the snapshot).
    Start(usize),
    /// Move its base image from slot `from` to slot `to` (which has a free place, taken for
    /// the move), then start it on `to`.
    Transfer { from: usize, to: usize },
    /// Leave it queued.
    Wait(WaitFor),
    /// It cannot be built by any configured engine: end it as skipped, for this reason.
    Skip(String),
    /// A retry waited too long for its engine: end it as failed, for this reason.
    Fail(String),
}

/// Why a cell stays queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// Every engine it may use is full (`max_parallel`, `--jobs`), or a native one is.
    Room,
    /// No engine it may use answers yet.
    Engine,
    /// This slot is full, but a place frees there soon enough that the cell ends earlier
    /// than it would on any engine free now.
    Slot(usize),
}

/// Are `max_total` builds running over all slots? Then nothing starts.
pub fn at_cap(slots: &[SlotSnapshot], max_total: Option<usize>) -> bool {
    max_total.is_some_and(|max| slots.iter().map(|s| s.running).sum::<usize>() >= max)
}

/// Where one queued cell goes now. See the module doc for the rules.
pub fn route(slots: &[SlotSnapshot], job: &JobSnapshot, rules: &Rules) -> Routed {
    if at_cap(slots, rules.max_total) {
        return Routed::Wait(WaitFor::Room);
    }
    let arch = job.arch;
    let pinned = match job.base {
        None => None,
        Some(b) => match slots.iter().position(|s| s.name == b.engine) {
            Some(p) => Some(p),
            None => {
                return Routed::Skip(format!(
                "base {} was built on engine {}, which is no longer configured; rebuild the base",
                b.cell, b.engine
            ))
            }
        },
    };
    // Every slot holding the base image (where it was built, and where it was moved to).
    let holders: Vec<usize> = pinned
        .into_iter()
        .chain(
            job.base_copies
                .iter()
                .filter_map(|c| slots.iter().position(|s| &s.name == c)),
        )
        .collect();
    let holds = |i: usize| pinned.is_none() || holders.contains(&i);
    // The base can be moved from a holder that answers, to any engine of the arch.
    let source = holders
        .iter()
        .copied()
        .find(|&h| slots[h].state == SlotState::Up);
    let source = source.filter(|_| rules.transfer && job.cost.is_some());
    let capable: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].arches.iter().any(|a| a == arch) && (source.is_some() || holds(i)))
        .collect();
    if capable.is_empty() {
        return Routed::Skip(match pinned {
            Some(p) => format!(
                "engine {} (which holds its base image) does not build {arch}",
                slots[p].name
            ),
            None => format!("no configured engine builds arch {arch}"),
        });
    }
    let reachable: Vec<usize> = capable
        .iter()
        .copied()
        .filter(|&i| slots[i].state == SlotState::Up)
        .collect();
    if reachable.is_empty() {
        let waits = rules.mode.waits_for_engines();
        if let Some((waited, lost)) = job.retry {
            // A retry waits for an engine to come back (a restart takes seconds).
            if !waits && waited >= rules.reconnect_wait {
                return Routed::Fail(format!(
                    "{lost}; no engine for {arch} answered again within {} s (reconnect_wait_secs)",
                    rules.reconnect_wait.as_secs()
                ));
            }
            return Routed::Wait(WaitFor::Engine);
        }
        // Until every capable engine has had its first connection attempt, wait.
        let still_trying = capable
            .iter()
            .any(|&i| slots[i].state == SlotState::Connecting);
        if still_trying || waits {
            return Routed::Wait(WaitFor::Engine);
        }
        let why: Vec<String> = capable
            .iter()
            .map(|&i| {
                format!(
                    "engine {}: {}",
                    slots[i].name,
                    slots[i].last_error.as_deref().unwrap_or("unreachable")
                )
            })
            .collect();
        return Routed::Skip(format!(
            "no reachable engine builds {arch} ({})",
            why.join("; ")
        ));
    }
    let native_exists = reachable
        .iter()
        .any(|&i| slots[i].native.iter().any(|a| a == arch));
    let Some(cost) = job.cost else {
        return reachable
            .iter()
            .filter_map(|&i| score(&slots[i], arch, native_exists).map(|s| (s, i)))
            .min()
            .map_or(Routed::Wait(WaitFor::Room), |(_, i)| Routed::Start(i));
    };
    // By expected finish time, over the slots of the right kind (native while one answers).
    let finishes: Vec<(usize, f64)> = reachable
        .iter()
        .copied()
        .filter(|&i| slots[i].max_parallel > 0)
        .filter(|&i| !native_exists || slots[i].native.iter().any(|a| a == arch))
        .map(|i| (i, finish_on(&slots[i], arch, &cost, !holds(i))))
        .collect();
    let earliest = finishes.iter().map(|(_, f)| *f).min_by(f64::total_cmp);
    let Some(earliest) = earliest.filter(|f| f.is_finite()) else {
        return Routed::Wait(WaitFor::Room);
    };
    let close_enough = earliest + earliest.abs() * EFT_TOLERANCE + 1e-9;
    let best = finishes
        .iter()
        .filter(|(_, f)| *f <= close_enough)
        .min_by(|(a, fa), (b, fb)| {
            let key = |i: usize| {
                let s = &slots[i];
                (
                    cost.affinity != Some(s.name.as_str()),
                    !holds(i),
                    s.running >= s.max_parallel,
                    (s.running as u64 * 1000) / s.max_parallel as u64,
                )
            };
            key(*a).cmp(&key(*b)).then(fa.total_cmp(fb)).then(a.cmp(b))
        })
        .map(|(i, _)| *i)
        .expect("the earliest is within the tolerance");
    if slots[best].running >= slots[best].max_parallel || ready_at(&slots[best]) > 0.0 {
        return Routed::Wait(WaitFor::Slot(best));
    }
    match source.filter(|_| !holds(best)) {
        Some(from) => Routed::Transfer { from, to: best },
        None => Routed::Start(best),
    }
}

/// How close to the earliest expected finish another engine's counts as just as early (a
/// fraction of it): expected durations are medians of noisy samples.
pub const EFT_TOLERANCE: f64 = 0.02;

/// Which slots' builders can build a text with `features` (`builders[i]`: slot i's builder
/// when it is connected, None while unknown, which counts as able until known). `Ok`: a mask
/// over `slots` of those that may take it. `Err`: every slot configured for `arch` is known
/// and refuses it; the reason names each engine, what it lacks and the setting that helps.
pub fn builder_fit(
    slots: &[SlotSnapshot],
    builders: &[Option<&Builder>],
    arch: &str,
    features: &Features,
    frontend: FrontendMode,
    buildkit: BuildkitMode,
) -> Result<Vec<bool>, String> {
    let mut refusals = Vec::new();
    let mask: Vec<bool> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if !s.arches.iter().any(|a| a == arch) {
                return false;
            }
            let Some(b) = builders.get(i).copied().flatten() else {
                return true;
            };
            match b.refusal(&s.name, features, frontend, buildkit.resolve(b.buildkit)) {
                None => true,
                Some(why) => {
                    refusals.push(why);
                    false
                }
            }
        })
        .collect();
    if mask.iter().any(|&m| m) || refusals.is_empty() {
        Ok(mask)
    } else {
        Err(refusals.join("; "))
    }
}

/// Can this reachable slot take a build of `arch` now, and how good a choice is it (lower is
/// better: native first, then the lighter load)?
fn score(s: &SlotSnapshot, arch: &str, native_exists: bool) -> Option<(bool, u64)> {
    // Checked before the division: a slot with max_parallel 0 never takes a build.
    if s.running >= s.max_parallel {
        return None;
    }
    let native = s.native.iter().any(|a| a == arch);
    if native_exists && !native {
        return None; // emulation is many times slower: wait for a native engine
    }
    Some((!native, (s.running as u64 * 1000) / s.max_parallel as u64))
}

/// One cell of a [`preview`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewJob<'a> {
    pub arch: &'a str,
    pub base: Option<PreviewBase<'a>>,
}

/// Where a previewed compiler cell's base comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewBase<'a> {
    /// An earlier job of the same preview (its index), named `cell`: the compiler cell goes
    /// where it goes, and is skipped if it is.
    Job { index: usize, cell: &'a str },
    /// Built before, on an engine: the compiler cell goes there.
    Built(BaseAt<'a>),
}

/// Where each of `jobs` (bases before their compiler cells) would go if the run started now,
/// by [`route`] itself: each start takes a place on its engine, and when every place a cell
/// may take is taken, the places are freed again (as builds ending would free them), so
/// cells spread over engines as a long run spreads them. Returns one [`Routed`] per job;
/// a `Wait(Room)` is left only where no place ever opens (`max_parallel` 0).
pub fn preview(slots: &[SlotSnapshot], jobs: &[PreviewJob], rules: &Rules) -> Vec<Routed> {
    let mut sim = slots.to_vec();
    let mut out: Vec<Routed> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let base = match job.base {
            None => None,
            Some(PreviewBase::Built(b)) => Some(b),
            Some(PreviewBase::Job { index, cell }) => match out.get(index) {
                Some(Routed::Start(i)) | Some(Routed::Transfer { to: i, .. }) => Some(BaseAt {
                    cell,
                    engine: &slots[*i].name,
                }),
                Some(Routed::Wait(w)) => {
                    out.push(Routed::Wait(*w));
                    continue;
                }
                Some(Routed::Skip(_)) => {
                    out.push(Routed::Skip(format!("base {cell} skipped")));
                    continue;
                }
                Some(Routed::Fail(_)) => {
                    out.push(Routed::Skip(format!("base {cell} failed")));
                    continue;
                }
                None => None, // not before it: routed as if it had no base
            },
        };
        let job = JobSnapshot {
            arch: job.arch,
            base,
            base_copies: &[],
            retry: None,
            cost: None,
        };
        let mut r = route(&sim, &job, rules);
        if r == Routed::Wait(WaitFor::Room) {
            for s in &mut sim {
                s.running = 0;
            }
            r = route(&sim, &job, rules);
        }
        if let Routed::Start(i) | Routed::Transfer { to: i, .. } = r {
            sim[i].running += 1;
        }
        out.push(r);
    }
    out
}

/// A preview summed up for a dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviewSummary {
    /// Per engine, in slot order: its name, the cells that start there, and how many of those
    /// are emulated. Engines that get none are left out.
    pub engines: Vec<(String, usize, usize)>,
    /// Cells that wait for an engine (or room) to start.
    pub waiting: usize,
    /// Why cells would be skipped (or failed), with how many, in order of first appearance.
    pub skipped: Vec<(String, usize)>,
}

impl PreviewSummary {
    /// Sum up `routed` (from [`preview`] over `slots`) for the jobs `counted` says to count
    /// (a face counts the cells asked for, not the bases that come along).
    pub fn of(
        slots: &[SlotSnapshot],
        jobs: &[PreviewJob],
        routed: &[Routed],
        counted: impl Fn(usize) -> bool,
    ) -> PreviewSummary {
        let mut per_slot = vec![(0usize, 0usize); slots.len()];
        let mut s = PreviewSummary::default();
        for (k, r) in routed.iter().enumerate().filter(|(k, _)| counted(*k)) {
            match r {
                Routed::Start(i) | Routed::Transfer { to: i, .. } => {
                    per_slot[*i].0 += 1;
                    if !slots[*i].native.iter().any(|a| a == jobs[k].arch) {
                        per_slot[*i].1 += 1;
                    }
                }
                Routed::Wait(_) => s.waiting += 1,
                Routed::Skip(why) | Routed::Fail(why) => {
                    match s.skipped.iter_mut().find(|(w, _)| w == why) {
                        Some((_, n)) => *n += 1,
                        None => s.skipped.push((why.clone(), 1)),
                    }
                }
            }
        }
        s.engines = slots
            .iter()
            .zip(per_slot)
            .filter(|(_, (n, _))| *n > 0)
            .map(|(slot, (n, emulated))| (slot.name.clone(), n, emulated))
            .collect();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_go_only_to_builders_that_read_their_text() {
        let slots = vec![
            slot("a", &["amd64"], &["amd64"], 2),
            slot("m", &["amd64"], &["amd64"], 2),
            slot("x", &["arm64"], &["arm64"], 2),
        ];
        let old = Builder::of_version("20.10.24", true);
        let new = Builder::of_version("26.1.5", true);
        let modern = crate::dockerfile::features::features(
            "# syntax=docker/dockerfile:1\nFROM a\nCOPY --link a b\n",
        );
        let fit = |b: &[Option<&Builder>]| {
            builder_fit(
                &slots,
                b,
                "amd64",
                &modern,
                FrontendMode::Builtin,
                BuildkitMode::Auto,
            )
        };
        assert_eq!(
            fit(&[Some(&old), Some(&new), None]),
            Ok(vec![false, true, false])
        );
        // Not connected yet: maybe able, so not refused.
        assert_eq!(fit(&[Some(&old), None, None]), Ok(vec![false, true, false]));
        let why = fit(&[Some(&old), Some(&old), None]).unwrap_err();
        assert!(
            why.contains("engine a (Docker 20.10.24) cannot build COPY --link"),
            "{why}"
        );
        assert!(why.contains("engine m (Docker 20.10.24)"), "{why}");
        // A classic text goes anywhere.
        let classic = crate::dockerfile::features::features("FROM a\nRUN true\n");
        assert_eq!(
            builder_fit(
                &slots,
                &[Some(&old), Some(&new), None],
                "amd64",
                &classic,
                FrontendMode::Builtin,
                BuildkitMode::Off
            ),
            Ok(vec![true, true, false])
        );
    }

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

    fn down(mut s: SlotSnapshot, error: Option<&str>) -> SlotSnapshot {
        s.state = SlotState::Down;
        s.native.clear();
        s.last_error = error.map(str::to_string);
        s
    }

    fn job(arch: &str) -> JobSnapshot<'_> {
        JobSnapshot {
            arch,
            base: None,
            base_copies: &[],
            retry: None,
            cost: None,
        }
    }

    const BATCH: Rules = Rules {
        mode: RunMode::Batch,
        max_total: None,
        reconnect_wait: Duration::from_secs(30),
        transfer: false,
    };
    const INTERACTIVE: Rules = Rules {
        mode: RunMode::Interactive,
        ..BATCH
    };

    #[test]
    fn native_before_emulated() {
        // x86 builds arm64 by emulation; arm builds it natively.
        let mut slots = vec![
            slot("x86", &["amd64", "arm64"], &["amd64"], 4),
            slot("arm", &["arm64"], &["arm64"], 1),
        ];
        assert_eq!(route(&slots, &job("arm64"), &BATCH), Routed::Start(1));
        // A full native engine is waited for, not bypassed by emulation.
        slots[1].running = 1;
        assert_eq!(
            route(&slots, &job("arm64"), &BATCH),
            Routed::Wait(WaitFor::Room)
        );
        // With no native engine reachable, emulation it is.
        slots[1] = down(slots[1].clone(), Some("refused"));
        assert_eq!(route(&slots, &job("arm64"), &BATCH), Routed::Start(0));
    }

    #[test]
    fn least_loaded_first_and_the_earlier_on_a_tie() {
        let mut slots = vec![
            slot("a", &["amd64"], &["amd64"], 2),
            slot("b", &["amd64"], &["amd64"], 4),
        ];
        assert_eq!(route(&slots, &job("amd64"), &BATCH), Routed::Start(0));
        slots[0].running = 1; // a half full, b empty
        assert_eq!(route(&slots, &job("amd64"), &BATCH), Routed::Start(1));
        slots[1].running = 2; // both half full
        assert_eq!(route(&slots, &job("amd64"), &BATCH), Routed::Start(0));
    }

    #[test]
    fn a_compiler_cell_goes_to_the_engine_holding_its_base() {
        let mut slots = vec![
            slot("a", &["amd64"], &["amd64"], 2),
            slot("b", &["amd64"], &["amd64"], 2),
            slot("arm", &["arm64"], &["arm64"], 2),
        ];
        slots[1].running = 1;
        let on = |engine| JobSnapshot {
            base: Some(BaseAt {
                cell: "d/opam/amd64",
                engine,
            }),
            ..job("amd64")
        };
        // b is busier than a, but holds the base.
        assert_eq!(route(&slots, &on("b"), &BATCH), Routed::Start(1));
        slots[1].running = 2;
        assert_eq!(route(&slots, &on("b"), &BATCH), Routed::Wait(WaitFor::Room));
        assert_eq!(
            route(&slots, &on("arm"), &BATCH),
            Routed::Skip("engine arm (which holds its base image) does not build amd64".into())
        );
        assert_eq!(
            route(&slots, &on("gone"), &BATCH),
            Routed::Skip(
                "base d/opam/amd64 was built on engine gone, which is no longer configured; rebuild the base"
                    .into()
            )
        );
        // The engine holding the base is down: wait for it (batch: skip once it was tried).
        slots[1] = down(slots[1].clone(), Some("refused"));
        assert_eq!(
            route(&slots, &on("b"), &INTERACTIVE),
            Routed::Wait(WaitFor::Engine)
        );
        assert_eq!(
            route(&slots, &on("b"), &BATCH),
            Routed::Skip("no reachable engine builds amd64 (engine b: refused)".into())
        );
    }

    #[test]
    fn by_expected_finish_with_moves_of_the_base() {
        // a holds the base and is full for 5 more seconds; b is free, at half a's speed.
        let mut slots = vec![
            slot("a", &["amd64"], &["amd64"], 1),
            slot("b", &["amd64"], &["amd64"], 1),
        ];
        slots[0].running = 1;
        slots[0].busy = vec![5.0];
        slots[1].speed = 0.5;
        let moves = Rules {
            transfer: true,
            ..BATCH
        };
        let job = |transfer: f64| JobSnapshot {
            base: Some(BaseAt {
                cell: "d/opam/amd64",
                engine: "a",
            }),
            cost: Some(Cost {
                native: 2.0,
                emulated: 20.0,
                transfer,
                affinity: None,
            }),
            ..job("amd64")
        };
        // On a: 5 + 2 = 7 s. On b: 1 + 4 = 5 s: move the base there.
        assert_eq!(
            route(&slots, &job(1.0), &moves),
            Routed::Transfer { from: 0, to: 1 }
        );
        // A move of 4 s: 8 s on b; waiting for a is sooner.
        assert_eq!(
            route(&slots, &job(4.0), &moves),
            Routed::Wait(WaitFor::Slot(0))
        );
        // Without moves, or after a move failed (an infinite cost): where the base is.
        assert_eq!(
            route(&slots, &job(1.0), &BATCH),
            Routed::Wait(WaitFor::Slot(0))
        );
        assert_eq!(
            route(&slots, &job(f64::INFINITY), &moves),
            Routed::Wait(WaitFor::Slot(0))
        );
        // b already holds a copy: no move needed.
        let copies = ["b".to_string()];
        let copied = JobSnapshot {
            base_copies: &copies,
            ..job(1.0)
        };
        assert_eq!(route(&slots, &copied, &moves), Routed::Start(1));
        // The holder down: nothing to move from; its cells wait for it (or are skipped).
        slots[0] = down(slots[0].clone(), Some("refused"));
        let tui_moves = Rules {
            mode: RunMode::Interactive,
            ..moves
        };
        assert_eq!(
            route(&slots, &job(1.0), &tui_moves),
            Routed::Wait(WaitFor::Engine)
        );
    }

    #[test]
    fn max_parallel_and_jobs_caps() {
        let mut slots = vec![
            slot("a", &["amd64"], &["amd64"], 1),
            slot("b", &["amd64"], &["amd64"], 2),
            slot("z", &["amd64"], &["amd64"], 0),
        ];
        slots[0].running = 1;
        assert_eq!(route(&slots, &job("amd64"), &BATCH), Routed::Start(1));
        slots[1].running = 2;
        assert_eq!(
            route(&slots, &job("amd64"), &BATCH),
            Routed::Wait(WaitFor::Room),
            "every engine full; max_parallel 0 never takes one"
        );
        slots[1].running = 1;
        let jobs2 = Rules {
            max_total: Some(2),
            ..BATCH
        };
        assert!(at_cap(&slots, Some(2)));
        assert_eq!(
            route(&slots, &job("amd64"), &jobs2),
            Routed::Wait(WaitFor::Room),
            "--jobs 2 with 2 running"
        );
        let jobs3 = Rules {
            max_total: Some(3),
            ..BATCH
        };
        assert_eq!(route(&slots, &job("amd64"), &jobs3), Routed::Start(1));
    }

    #[test]
    fn unreachable_engines() {
        let slots = vec![
            down(
                slot("a", &["amd64"], &["amd64"], 2),
                Some("connection refused"),
            ),
            down(slot("b", &["amd64"], &["amd64"], 2), None),
            slot("arm", &["arm64"], &["arm64"], 2),
        ];
        assert_eq!(
            route(&slots, &job("amd64"), &BATCH),
            Routed::Skip(
                "no reachable engine builds amd64 (engine a: connection refused; engine b: unreachable)"
                    .into()
            )
        );
        assert_eq!(
            route(&slots, &job("amd64"), &INTERACTIVE),
            Routed::Wait(WaitFor::Engine)
        );
        assert_eq!(route(&slots, &job("arm64"), &BATCH), Routed::Start(2));
    }

    #[test]
    fn no_engine_for_the_arch_is_a_skip() {
        let slots = vec![slot("a", &["amd64"], &["amd64"], 2)];
        let want = Routed::Skip("no configured engine builds arch riscv64".into());
        assert_eq!(route(&slots, &job("riscv64"), &BATCH), want);
        assert_eq!(route(&slots, &job("riscv64"), &INTERACTIVE), want);
        assert_eq!(route(&[], &job("riscv64"), &INTERACTIVE), want);
    }

    #[test]
    fn connecting_engines_are_waited_for_in_both_modes() {
        let mut connecting = down(slot("a", &["amd64"], &["amd64"], 2), None);
        connecting.state = SlotState::Connecting;
        let slots = vec![
            connecting,
            down(slot("b", &["amd64"], &[], 2), Some("refused")),
        ];
        for rules in [BATCH, INTERACTIVE] {
            assert_eq!(
                route(&slots, &job("amd64"), &rules),
                Routed::Wait(WaitFor::Engine),
                "{:?}",
                rules.mode
            );
        }
    }

    #[test]
    fn a_retry_waits_reconnect_wait_for_its_engine_in_batch() {
        let slots = vec![down(slot("a", &["amd64"], &["amd64"], 2), Some("refused"))];
        let retry = |secs| JobSnapshot {
            retry: Some((Duration::from_secs(secs), "engine a lost during build: EOF")),
            ..job("amd64")
        };
        assert_eq!(
            route(&slots, &retry(29), &BATCH),
            Routed::Wait(WaitFor::Engine)
        );
        assert_eq!(
            route(&slots, &retry(30), &BATCH),
            Routed::Fail(
                "engine a lost during build: EOF; no engine for amd64 answered again within 30 s (reconnect_wait_secs)"
                    .into()
            )
        );
        assert_eq!(
            route(&slots, &retry(3000), &INTERACTIVE),
            Routed::Wait(WaitFor::Engine)
        );
    }

    #[test]
    fn preview_spreads_by_capacity_and_follows_bases() {
        let slots = vec![
            slot("a", &["amd64", "arm64"], &["amd64"], 1),
            slot("b", &["amd64"], &["amd64"], 2),
            down(slot("c", &["riscv64"], &[], 1), Some("refused")),
        ];
        let jobs = [
            PreviewJob {
                arch: "amd64",
                base: None,
            },
            PreviewJob {
                arch: "arm64",
                base: None,
            },
            PreviewJob {
                arch: "riscv64",
                base: None,
            },
            PreviewJob {
                arch: "s390x",
                base: None,
            },
        ];
        let mut all = jobs.to_vec();
        // Five compiler cells of the amd64 base, one of the arm64 base, one of an
        // unbuildable base, one of a base built earlier on b.
        for _ in 0..5 {
            all.push(PreviewJob {
                arch: "amd64",
                base: Some(PreviewBase::Job {
                    index: 0,
                    cell: "d/opam/amd64",
                }),
            });
        }
        all.push(PreviewJob {
            arch: "arm64",
            base: Some(PreviewBase::Job {
                index: 1,
                cell: "d/opam/arm64",
            }),
        });
        all.push(PreviewJob {
            arch: "s390x",
            base: Some(PreviewBase::Job {
                index: 3,
                cell: "d/opam/s390x",
            }),
        });
        all.push(PreviewJob {
            arch: "amd64",
            base: Some(PreviewBase::Built(BaseAt {
                cell: "e/opam/amd64",
                engine: "b",
            })),
        });
        let r = preview(&slots, &all, &BATCH);
        assert_eq!(r[0], Routed::Start(0));
        assert_eq!(
            r[1],
            Routed::Start(0),
            "arm64 emulated on a: nothing else builds it"
        );
        assert_eq!(
            r[2],
            Routed::Skip("no reachable engine builds riscv64 (engine c: refused)".into())
        );
        assert!(r[4..9].iter().all(|x| *x == Routed::Start(0)), "{r:?}");
        assert_eq!(r[9], Routed::Start(0));
        assert_eq!(r[10], Routed::Skip("base d/opam/s390x skipped".into()));
        assert_eq!(r[11], Routed::Start(1));
        // In the TUI, the down engine's cells wait.
        assert_eq!(
            preview(&slots, &all, &INTERACTIVE)[2],
            Routed::Wait(WaitFor::Engine)
        );
        let s = PreviewSummary::of(&slots, &all, &r, |k| k != 3);
        assert_eq!(
            s,
            PreviewSummary {
                engines: vec![("a".into(), 8, 2), ("b".into(), 1, 0)],
                waiting: 0,
                skipped: vec![
                    (
                        "no reachable engine builds riscv64 (engine c: refused)".into(),
                        1
                    ),
                    ("base d/opam/s390x skipped".into(), 1),
                ]
            }
        );

        // Cells without a base spread over both engines by capacity, wave after wave.
        let flat = vec![
            PreviewJob {
                arch: "amd64",
                base: None
            };
            6
        ];
        let r = preview(&slots, &flat, &BATCH);
        let on = |i| r.iter().filter(|x| **x == Routed::Start(i)).count();
        assert_eq!((on(0), on(1)), (2, 4), "{r:?}");
    }

    #[test]
    fn a_slot_from_its_health_event() {
        let h = EngineHealth {
            engine: "a".into(),
            endpoint: "unix:///a.sock".into(),
            reachable: true,
            info: Some(EngineInfo {
                version: "27.0".into(),
                api_version: "1.47".into(),
                os: "linux".into(),
                arch: "amd64".into(),
                buildkit: true,
                builder: Default::default(),
            }),
            arches: vec!["amd64".into(), "arm64".into()],
            running: 1,
            queued: 3,
            last_error: None,
            max_parallel: 4,
            tried: true,
            slot: 0,
        };
        let s = SlotSnapshot::from_health(&h);
        assert_eq!(s.native, vec!["amd64".to_string()]);
        assert_eq!((s.state, s.running, s.max_parallel), (SlotState::Up, 1, 4));
        let first = EngineHealth {
            reachable: false,
            info: None,
            tried: false,
            ..h.clone()
        };
        assert_eq!(
            SlotSnapshot::from_health(&first).state,
            SlotState::Connecting
        );
        let gone = EngineHealth {
            reachable: false,
            last_error: Some("refused".into()),
            tried: true,
            ..first
        };
        assert_eq!(SlotSnapshot::from_health(&gone).state, SlotState::Down);
        let b = EngineHealth {
            engine: "b".into(),
            slot: 1,
            ..h.clone()
        };
        let names: Vec<String> = SlotSnapshot::from_healths([&b, &h])
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
