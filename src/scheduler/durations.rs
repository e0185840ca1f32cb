//! Expected build durations, learnt from history: a cell's own past successful builds (the
//! median of its last [`RECENT`] on an engine of the same kind, native or emulated), else the
//! median over similar cells (same level and arch, same kind), else unknown.
//!
//! The history does not record whether a build was emulated: a past build's kind is judged by
//! what is known now of its engine's native arch (an engine's arch does not change), so the
//! caller passes that knowledge ([`Durations::expectations`]); builds on engines whose arch is
//! unknown (never connected in this process) are left out.
//!
//! Pure: samples in, numbers out. The estimator ([`super::estimate`]) and the scheduler's
//! policy ([`super::policy`]: priorities, engine speeds, routing by expected finish) use it.

use std::collections::HashMap;

use serde::Serialize;

/// How many of a cell's most recent successes (of one engine kind) its median is taken over.
pub const RECENT: usize = 5;

/// How an engine builds an arch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// The engine's own arch.
    Native,
    /// Another arch, through QEMU user emulation (many times slower).
    Emulated,
}

/// One successful build: which cell, on which engine, how long (seconds, start to finish).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub cell: String,
    pub engine: String,
    pub secs: f64,
}

/// Where an expected duration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The cell's own recent successes.
    Own,
    /// Cells of the same level and arch.
    Similar,
}

/// An expected duration, seconds, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Expected {
    pub secs: f64,
    pub source: Source,
}

/// Every recorded success duration, by cell, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations {
    by_cell: HashMap<String, Vec<(String, f64)>>,
}

/// Level and arch of a cell id `DISTRO/VERSION/ARCH` (VERSION `opam`: a base, `archive`:
/// the archive, else a compiler): what "similar cells" share.
pub(super) fn group_of(cell: &str) -> Option<(&'static str, &str)> {
    let mut parts = cell.rsplitn(3, '/');
    let arch = parts.next()?;
    let version = parts.next()?;
    parts.next()?;
    let level = match version {
        "opam" => "base",
        "archive" => "archive",
        _ => "compiler",
    };
    Some((level, arch))
}

/// The median of `v` (the mean of the middle two for an even count); None when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Durations {
    /// From samples in the order they happened (oldest first). Negative or non-finite
    /// durations (a clock that jumped) are left out.
    pub fn from_samples(samples: impl IntoIterator<Item = Sample>) -> Durations {
        let mut d = Durations::default();
        for s in samples {
            d.add(s);
        }
        d
    }

    /// Record one more success (newest).
    pub fn add(&mut self, s: Sample) {
        if s.secs.is_finite() && s.secs >= 0.0 {
            self.by_cell
                .entry(s.cell)
                .or_default()
                .push((s.engine, s.secs));
        }
    }

    /// Every sample: (cell, engine, seconds), each cell's oldest first.
    pub fn samples(&self) -> impl Iterator<Item = (&str, &str, f64)> {
        self.by_cell
            .iter()
            .flat_map(|(c, v)| v.iter().map(move |(e, s)| (c.as_str(), e.as_str(), *s)))
    }

    /// The same samples with each one's seconds multiplied by `factor(engine)`: durations
    /// brought to a common engine speed (see [`super::policy::Speeds`]).
    pub fn scaled(&self, factor: impl Fn(&str) -> f64) -> Durations {
        Durations {
            by_cell: self
                .by_cell
                .iter()
                .map(|(c, v)| {
                    let v = v.iter().map(|(e, s)| (e.clone(), s * factor(e))).collect();
                    (c.clone(), v)
                })
                .collect(),
        }
    }

    /// No sample at all.
    pub fn is_empty(&self) -> bool {
        self.by_cell.is_empty()
    }

    /// Expected durations per cell and kind, given each engine's native arch (`native_arch`:
    /// engine name -> its arch, None when unknown).
    pub fn expectations<'a>(&self, native_arch: impl Fn(&str) -> Option<&'a str>) -> Expectations {
        let mut own: HashMap<(String, EngineKind), f64> = HashMap::new();
        let mut similar: HashMap<(&'static str, String, EngineKind), Vec<f64>> = HashMap::new();
        for (cell, samples) in &self.by_cell {
            let Some((level, arch)) = group_of(cell) else {
                continue;
            };
            for kind in [EngineKind::Native, EngineKind::Emulated] {
                let mut recent: Vec<f64> = samples
                    .iter()
                    .rev()
                    .filter(|(engine, _)| {
                        native_arch(engine).map(|a| {
                            if a == arch {
                                EngineKind::Native
                            } else {
                                EngineKind::Emulated
                            }
                        }) == Some(kind)
                    })
                    .take(RECENT)
                    .map(|(_, s)| *s)
                    .collect();
                if let Some(m) = median(&mut recent) {
                    own.insert((cell.clone(), kind), m);
                    similar
                        .entry((level, arch.to_string(), kind))
                        .or_default()
                        .push(m);
                }
            }
        }
        let similar = similar
            .into_iter()
            .filter_map(|(k, mut v)| median(&mut v).map(|m| (k, m)))
            .collect();
        Expectations { own, similar }
    }
}

/// Expected durations of every cell the history knows, and of every (level, arch) group:
/// see [`Durations::expectations`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations {
    own: HashMap<(String, EngineKind), f64>,
    similar: HashMap<(&'static str, String, EngineKind), f64>,
}

impl Expectations {
    /// How long a build of `cell` on an engine of `kind` is expected to take: its own median,
    /// else its group's (the median of the medians of cells of its level and arch), else None.
    pub fn expected(&self, cell: &str, kind: EngineKind) -> Option<Expected> {
        if let Some(&secs) = self.own.get(&(cell.to_string(), kind)) {
            return Some(Expected {
                secs,
                source: Source::Own,
            });
        }
        let (level, arch) = group_of(cell)?;
        self.similar
            .get(&(level, arch.to_string(), kind))
            .map(|&secs| Expected {
                secs,
                source: Source::Similar,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(cell: &str, engine: &str, secs: f64) -> Sample {
        Sample {
            cell: cell.into(),
            engine: engine.into(),
            secs,
        }
    }

    /// Engines `a` and `b` are amd64 machines; `r` is a riscv64 one; `gone` is unknown.
    fn arch_of(engine: &str) -> Option<&'static str> {
        match engine {
            "a" | "b" => Some("amd64"),
            "r" => Some("riscv64"),
            _ => None,
        }
    }

    #[test]
    fn own_median_of_the_last_few_of_the_same_kind() {
        let cell = "debian-13/5.4/amd64";
        // Seven native builds: the last five are 10, 12, 11, 100 (an outlier), 13.
        let mut samples: Vec<Sample> = [50.0, 60.0, 10.0, 12.0, 11.0, 100.0, 13.0]
            .into_iter()
            .map(|x| s(cell, "a", x))
            .collect();
        // Emulated on r (riscv64 building amd64), and one on an engine no longer known.
        samples.push(s(cell, "r", 400.0));
        samples.push(s(cell, "r", 500.0));
        samples.push(s(cell, "gone", 1.0));
        let e = Durations::from_samples(samples).expectations(arch_of);
        assert_eq!(
            e.expected(cell, EngineKind::Native),
            Some(Expected {
                secs: 12.0,
                source: Source::Own
            })
        );
        assert_eq!(
            e.expected(cell, EngineKind::Emulated),
            Some(Expected {
                secs: 450.0,
                source: Source::Own
            })
        );
    }

    #[test]
    fn similar_cells_then_unknown() {
        let d = Durations::from_samples([
            s("debian-13/5.4/amd64", "a", 100.0),
            s("debian-13/5.3/amd64", "b", 200.0),
            s("alpine-3.23/5.4/amd64", "a", 300.0),
            s("debian-13/opam/amd64", "a", 50.0),
            s("debian-13/5.4/riscv64", "a", 900.0),
        ]);
        let e = d.expectations(arch_of);
        // A compiler never built: the median of the amd64 compilers' medians.
        assert_eq!(
            e.expected("fedora-43/5.4/amd64", EngineKind::Native),
            Some(Expected {
                secs: 200.0,
                source: Source::Similar
            })
        );
        // A base: only bases count.
        assert_eq!(
            e.expected("fedora-43/opam/amd64", EngineKind::Native)
                .map(|x| x.secs),
            Some(50.0)
        );
        // riscv64 built on amd64 engine a is emulated; nothing native is known of it.
        assert_eq!(
            e.expected("fedora-43/5.4/riscv64", EngineKind::Emulated)
                .map(|x| x.secs),
            Some(900.0)
        );
        assert_eq!(
            e.expected("fedora-43/5.4/riscv64", EngineKind::Native),
            None
        );
        assert_eq!(
            e.expected("fedora-43/archive/amd64", EngineKind::Native),
            None
        );
        assert_eq!(e.expected("not-a-cell", EngineKind::Native), None);
    }

    #[test]
    fn medians_and_bad_samples() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let d = Durations::from_samples([
            s("debian-13/opam/amd64", "a", -1.0),
            s("debian-13/opam/amd64", "a", f64::NAN),
        ]);
        assert!(d.is_empty());
    }
}
