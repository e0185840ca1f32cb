//! The numbers the scheduling policy goes by, learnt from history and from the run so far:
//!
//! - [`Speeds`]: each engine's observed speed relative to the fastest (1.0 when unknown);
//! - [`Model`]: each cell's expected duration on an engine of speed 1.0 (its own past builds,
//!   else similar cells, else [`DEFAULT_SECS`]), the size of its image and the transfer rate
//!   (so what moving a base image costs), and the engine its last success ran on (affinity);
//! - [`priority_order`]: ready cells by longest remaining path first;
//! - [`ready_at`], [`finish_on`], [`take`]: when a place frees on an engine and when a build
//!   would end there, which [`super::route::route`] compares to pick an engine.
//!
//! Pure: numbers in, numbers out. The actor and the estimate ([`super::estimate`]) both build
//! their routing snapshots with these, so the estimate follows the real schedule.

use std::collections::HashMap;

use super::durations::{group_of, median, Durations, EngineKind, Expectations};
use super::route::{Cost, SlotSnapshot};

/// Expected seconds of a cell nothing is known of (nor of similar cells): a guess of the
/// same size for every cell, so that priorities still follow the shape of the plan (a base
/// with dependants before a leaf) and routing still weighs engines' speeds and queues.
pub const DEFAULT_SECS: f64 = 60.0;

/// Transfer rate assumed until one is measured: bytes per second (100 MB/s).
pub const DEFAULT_RATE: f64 = 100e6;

/// Image size assumed when the history has none: bytes (about an OCaml base image).
pub const DEFAULT_IMAGE_BYTES: u64 = 1_000_000_000;

/// Each engine's speed relative to the fastest engine it can be compared with (1.0 for that
/// one and for engines that cannot be compared with any other).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Speeds {
    by_engine: HashMap<String, f64>,
}

impl Speeds {
    /// From known factors (engine name, speed); others are 1.0.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, f64)>) -> Speeds {
        Speeds {
            by_engine: pairs
                .into_iter()
                .filter(|(_, s)| s.is_finite() && *s > 0.0)
                .map(|(e, s)| (e.to_string(), s))
                .collect(),
        }
    }

    /// Engine `engine`'s speed: 1.0 when unknown; a slower engine's is below 1.0, so a build
    /// there is expected to last `secs / speed`.
    pub fn of(&self, engine: &str) -> f64 {
        self.by_engine.get(engine).copied().unwrap_or(1.0)
    }

    /// Learn speeds from durations. Cells are compared by group (level, arch, engine kind:
    /// the groups of [`Durations::expectations`]), so that one run in which each cell built
    /// once still says how engines compare: the median duration of a group on each engine,
    /// then a least-squares fit in log space of `duration(group, engine) = work(group) /
    /// speed(engine)` (a few rounds of alternating geometric means). Engines that share no
    /// group with another engine stay at 1.0; the others are scaled so the fastest is 1.0.
    pub fn learn<'a>(d: &Durations, native_arch: impl Fn(&str) -> Option<&'a str>) -> Speeds {
        type Group = (&'static str, String, EngineKind);
        let mut by: HashMap<(Group, String), Vec<f64>> = HashMap::new();
        for (cell, engine, secs) in d.samples() {
            let (Some((level, arch)), Some(native)) = (group_of(cell), native_arch(engine)) else {
                continue;
            };
            if secs <= 0.0 {
                continue;
            }
            let kind = if native == arch {
                EngineKind::Native
            } else {
                EngineKind::Emulated
            };
            by.entry(((level, arch.to_string(), kind), engine.to_string()))
                .or_default()
                .push(secs);
        }
        // ln of each (group, engine) median, for groups built on more than one engine.
        let mut per_group: HashMap<Group, Vec<(String, f64)>> = HashMap::new();
        for ((g, e), mut v) in by {
            if let Some(m) = median(&mut v) {
                per_group.entry(g).or_default().push((e, m.ln()));
            }
        }
        per_group.retain(|_, v| v.len() > 1);
        let mut ln_speed: HashMap<String, f64> = per_group
            .values()
            .flatten()
            .map(|(e, _)| (e.clone(), 0.0))
            .collect();
        if ln_speed.is_empty() {
            return Speeds::default();
        }
        for _ in 0..30 {
            // work(g) = mean over engines of ln duration + ln speed
            let work: HashMap<&Group, f64> = per_group
                .iter()
                .map(|(g, v)| {
                    let w = v.iter().map(|(e, m)| m + ln_speed[e]).sum::<f64>() / v.len() as f64;
                    (g, w)
                })
                .collect();
            let mut sums: HashMap<&str, (f64, usize)> = HashMap::new();
            for (g, v) in &per_group {
                for (e, m) in v {
                    let s = sums.entry(e.as_str()).or_default();
                    s.0 += work[g] - m;
                    s.1 += 1;
                }
            }
            for (e, (sum, n)) in sums {
                ln_speed.insert(e.to_string(), sum / n as f64);
            }
        }
        let top = ln_speed.values().copied().fold(f64::MIN, f64::max);
        Speeds {
            by_engine: ln_speed
                .into_iter()
                .map(|(e, l)| (e, (l - top).exp()))
                .collect(),
        }
    }
}

/// What the policy knows: see the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub speeds: Speeds,
    /// Expected durations at speed 1.0 (the history's durations times their engine's speed).
    pub expect: Expectations,
    /// Cell -> the engine its last successful build ran on (its layers may be cached there).
    pub last_engine: HashMap<String, String>,
    /// Cell -> its image's size, bytes (the last success's, or this run's).
    pub sizes: HashMap<String, u64>,
    /// Bytes per second an image moves from engine to engine (measured, else [`DEFAULT_RATE`]).
    pub transfer_rate: f64,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            speeds: Speeds::default(),
            expect: Expectations::default(),
            last_engine: HashMap::new(),
            sizes: HashMap::new(),
            transfer_rate: DEFAULT_RATE,
        }
    }
}

impl Model {
    /// Speeds and speed-1.0 expectations from `d` (`native_arch`: engine -> its arch).
    pub fn learn<'a>(d: &Durations, native_arch: impl Fn(&str) -> Option<&'a str> + Copy) -> Model {
        let speeds = Speeds::learn(d, native_arch);
        let expect = d.scaled(|e| speeds.of(e)).expectations(native_arch);
        Model {
            speeds,
            expect,
            ..Model::default()
        }
    }

    /// Expected seconds of `cell` on an engine of `kind` and speed 1.0, if anything is known
    /// (its own builds or similar cells').
    pub fn known(&self, cell: &str, kind: EngineKind) -> Option<f64> {
        self.expect.expected(cell, kind).map(|e| e.secs)
    }

    /// Expected seconds of `cell` on an engine of `kind` and speed 1.0: what is known, else
    /// the other kind's (emulated is not shorter than native), else [`DEFAULT_SECS`].
    pub fn secs(&self, cell: &str, kind: EngineKind) -> f64 {
        let other = match kind {
            EngineKind::Native => EngineKind::Emulated,
            EngineKind::Emulated => EngineKind::Native,
        };
        self.known(cell, kind)
            .or_else(|| match kind {
                EngineKind::Emulated => self.known(cell, other),
                EngineKind::Native => None,
            })
            .unwrap_or(DEFAULT_SECS)
    }

    /// Seconds to move `cell`'s image to another engine: its size over the transfer rate.
    pub fn transfer_secs(&self, cell: &str) -> f64 {
        let bytes = self.sizes.get(cell).copied().unwrap_or(DEFAULT_IMAGE_BYTES);
        bytes as f64 / self.transfer_rate.max(1.0)
    }

    /// What routing weighs for `cell`, whose base (if any) is `base`.
    pub fn cost<'a>(&'a self, cell: &str, base: Option<&str>) -> Cost<'a> {
        Cost {
            native: self.secs(cell, EngineKind::Native),
            emulated: self.secs(cell, EngineKind::Emulated),
            transfer: base.map_or(0.0, |b| self.transfer_secs(b)),
            affinity: self.last_engine.get(cell).map(String::as_str),
        }
    }
}

/// The order in which to consider jobs: longest remaining path first (a job's own expected
/// seconds `secs[j]` plus the longest such path among the jobs whose `parent` it is), then the
/// most work below it (itself and all its dependants), then the earlier job. Every job is
/// in the result once; `parent` indices out of range are ignored.
pub fn priority_order(secs: &[f64], parent: &[Option<usize>]) -> Vec<usize> {
    let n = secs.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (j, p) in parent.iter().enumerate().take(n) {
        if let Some(p) = p.filter(|&p| p < n && p != j) {
            children[p].push(j);
        }
    }
    // (path, work) per job, by a depth-first walk (trees are shallow; a cycle is cut).
    let mut memo: Vec<Option<(f64, f64)>> = vec![None; n];
    fn walk(
        j: usize,
        secs: &[f64],
        children: &[Vec<usize>],
        memo: &mut [Option<(f64, f64)>],
        depth: usize,
    ) -> (f64, f64) {
        if let Some(v) = memo[j] {
            return v;
        }
        let (mut path, mut work) = (0.0_f64, 0.0);
        if depth < 64 {
            for &c in &children[j] {
                let (p, w) = walk(c, secs, children, memo, depth + 1);
                path = path.max(p);
                work += w;
            }
        }
        let v = (secs[j] + path, secs[j] + work);
        memo[j] = Some(v);
        v
    }
    let ranks: Vec<(f64, f64)> = (0..n)
        .map(|j| walk(j, secs, &children, &mut memo, 0))
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        ranks[b]
            .0
            .total_cmp(&ranks[a].0)
            .then(ranks[b].1.total_cmp(&ranks[a].1))
            .then(a.cmp(&b))
    });
    order
}

/// Seconds until slot `s` has a free place: 0 when it has one now; else when the build
/// (or reservation) that frees one is expected to end, from `s.busy` (expected seconds left
/// of each; builds without an entry count as ending now). Infinite with `max_parallel` 0.
pub fn ready_at(s: &SlotSnapshot) -> f64 {
    if s.max_parallel == 0 {
        return f64::INFINITY;
    }
    if s.running < s.max_parallel {
        return 0.0;
    }
    let mut left: Vec<f64> = s.busy.iter().map(|x| x.max(0.0)).collect();
    left.resize(s.running.max(left.len()), 0.0);
    left.sort_by(f64::total_cmp);
    left[s.running - s.max_parallel]
}

/// When a build of `cost` (of `arch`) would end on slot `s`, seconds from now: when a place
/// frees there, plus moving its base image there first when `moves`, plus its expected
/// duration at the engine's speed (native or emulated as the slot builds `arch`).
pub fn finish_on(s: &SlotSnapshot, arch: &str, cost: &Cost, moves: bool) -> f64 {
    let native = s.native.iter().any(|a| a == arch);
    let secs = if native { cost.native } else { cost.emulated };
    let transfer = if moves { cost.transfer } else { 0.0 };
    ready_at(s) + transfer + secs / s.speed.max(1e-3)
}

/// Take a place on `s` for a build expected to end `finish` seconds from now (started now,
/// or reserved to start when a place frees): later routing in the same pass sees it.
pub fn take(s: &mut SlotSnapshot, finish: f64) {
    s.running += 1;
    s.busy.push(finish);
}

#[cfg(test)]
mod tests {
    use super::super::durations::Sample;
    use super::*;

    fn d(samples: &[(&str, &str, f64)]) -> Durations {
        Durations::from_samples(samples.iter().map(|(c, e, s)| Sample {
            cell: c.to_string(),
            engine: e.to_string(),
            secs: *s,
        }))
    }

    fn amd64(_: &str) -> Option<&'static str> {
        Some("amd64")
    }

    #[test]
    fn speeds_from_groups_built_on_both_engines() {
        // Bases take 4 s on a and 3 s on m; compilers 2.67 s and 2 s: a runs at 0.75.
        let h = d(&[
            ("d1/opam/amd64", "a", 4.0),
            ("d2/opam/amd64", "m", 3.0),
            ("d1/5.4/amd64", "a", 8.0 / 3.0),
            ("d2/5.4/amd64", "m", 2.0),
            ("d3/5.3/amd64", "m", 2.0),
            // Only on z, and its group on no other engine: z stays unknown.
            ("d1/5.4/riscv64", "z", 50.0),
        ]);
        let s = Speeds::learn(&h, |e| {
            if e == "z" {
                Some("riscv64")
            } else {
                Some("amd64")
            }
        });
        assert!((s.of("a") - 0.75).abs() < 1e-9, "{s:?}");
        assert!((s.of("m") - 1.0).abs() < 1e-9);
        assert_eq!(s.of("z"), 1.0);
        assert_eq!(s.of("never-seen"), 1.0);
        // Expectations at speed 1.0: a's 4 s base is a 3 s base.
        let m = Model::learn(&h, amd64);
        assert!((m.secs("d1/opam/amd64", EngineKind::Native) - 3.0).abs() < 1e-9);
        assert_eq!(
            Speeds::learn(&Durations::default(), amd64),
            Speeds::default()
        );
    }

    #[test]
    fn unknown_durations_fall_back_to_similar_cells_then_a_default() {
        let m = Model::learn(&d(&[("x/opam/amd64", "a", 30.0)]), amd64);
        assert_eq!(m.secs("y/opam/amd64", EngineKind::Native), 30.0);
        assert_eq!(m.secs("y/opam/amd64", EngineKind::Emulated), 30.0);
        assert_eq!(m.secs("y/5.4/amd64", EngineKind::Native), DEFAULT_SECS);
        // 1 GB at 100 MB/s until a size or a rate is known.
        assert_eq!(m.transfer_secs("y/opam/amd64"), 10.0);
    }

    #[test]
    fn longest_path_first_then_most_work() {
        // 0: a leaf of 10 s; 1: a base of 3 s with 3 compilers of 2 s (path 5, work 9);
        // 5: a base of 3 s with one compiler of 2 s (path 5, work 5).
        let secs = [10.0, 3.0, 2.0, 2.0, 2.0, 3.0, 2.0];
        let parent = [None, None, Some(1), Some(1), Some(1), None, Some(5)];
        assert_eq!(priority_order(&secs, &parent), [0, 1, 5, 2, 3, 4, 6]);
        // All unknown (the same default): bases with dependants before leaves, the base with
        // more dependants first.
        let same = [1.0; 7];
        assert_eq!(priority_order(&same, &parent), [1, 5, 0, 2, 3, 4, 6]);
        assert!(priority_order(&[], &[]).is_empty());
    }

    #[test]
    fn a_place_frees_when_the_build_that_ends_first_ends() {
        let mut s = SlotSnapshot {
            name: "a".into(),
            arches: vec!["amd64".into()],
            native: vec!["amd64".into()],
            state: super::super::route::SlotState::Up,
            running: 1,
            max_parallel: 2,
            last_error: None,
            speed: 0.5,
            busy: vec![4.0],
        };
        assert_eq!(ready_at(&s), 0.0);
        let cost = Cost {
            native: 2.0,
            emulated: 20.0,
            transfer: 1.0,
            affinity: None,
        };
        assert_eq!(finish_on(&s, "amd64", &cost, false), 4.0);
        assert_eq!(finish_on(&s, "amd64", &cost, true), 5.0);
        take(&mut s, 4.0);
        assert_eq!(ready_at(&s), 4.0);
        // A reservation behind both: the next place frees when the second ends.
        take(&mut s, 8.0);
        assert_eq!(ready_at(&s), 4.0);
        take(&mut s, 9.0);
        assert_eq!(ready_at(&s), 8.0);
        s.max_parallel = 0;
        assert_eq!(ready_at(&s), f64::INFINITY);
    }
}
