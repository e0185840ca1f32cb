//! The one fold of [`BuildEvent`]s: per-cell state and run counters. The TUI embeds a
//! [`RunProgress`] in its model and draws from it; the headless `build` prints from it. Both
//! call [`RunProgress::apply`] and nothing else changes it, so "what counts as failed",
//! "is this a size regression" and "how many are still queued" have one answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::logs::strip_sgr;
use crate::matrix::{Cell, Level, Matrix};
use crate::publish::Built;
use crate::scheduler::{route, BuildEvent, EngineHealth, Eta, Summary};
use crate::sizes::{Delta, Thresholds};
use crate::store::{BuildRecord, BuildStatus};
use crate::util::units::human_secs;
use crate::why::{Reason, Reasons};

/// What a cell shows: a build status, or one of the states before there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Never,
    Queued,
    Building,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
    Skipped,
}

impl Status {
    /// From a stored or finished build.
    pub fn from_build(s: BuildStatus) -> Status {
        match s {
            BuildStatus::Running => Status::Building,
            BuildStatus::Succeeded => Status::Succeeded,
            BuildStatus::Failed => Status::Failed,
            BuildStatus::Cancelled => Status::Cancelled,
            BuildStatus::Interrupted => Status::Interrupted,
            BuildStatus::Skipped => Status::Skipped,
        }
    }
    /// Word for filters and the detail pane.
    pub fn word(self) -> &'static str {
        match self {
            Status::Never => "never built",
            Status::Queued => "queued",
            Status::Building => "building",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Interrupted => "interrupted",
            Status::Skipped => "skipped",
        }
    }
    /// Queued or building: work is pending for the cell.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Queued | Status::Building)
    }
    /// The cell's last build failed: the rule of [`BuildStatus::is_failed`].
    pub fn is_failed(self) -> bool {
        matches!(self, Status::Failed | Status::Interrupted)
    }
}

/// Everything known about one cell, from history and the events of this run.
#[derive(Debug, Clone, PartialEq)]
pub struct CellProgress {
    pub status: Status,
    /// The builder's step: (current, total).
    pub step: Option<(u32, u32)>,
    /// The step's instruction, SGR removed.
    pub step_name: Option<String>,
    /// Inputs changed since the last success.
    pub stale: bool,
    /// Why it needs a rebuild, most specific first (empty: no reason known).
    pub why: Vec<Reason>,
    /// Uncompressed bytes of the last success.
    pub size: Option<i64>,
    /// Bytes of the success before it.
    pub prev_size: Option<i64>,
    pub failure: Option<String>,
    /// The failure field by field (the shown build's, when it failed in a build step).
    pub failure_record: Option<crate::model::failure::Failure>,
    /// Why the shown build failed, in a word (failed builds only).
    pub cause: Option<crate::model::cause::Cause>,
    pub engine: Option<String>,
    pub emulated: bool,
    pub build_id: Option<i64>,
    /// The log on disk of the shown build.
    pub log_path: Option<String>,
}

impl Default for CellProgress {
    fn default() -> Self {
        CellProgress {
            status: Status::Never,
            step: None,
            step_name: None,
            stale: false,
            why: Vec::new(),
            size: None,
            prev_size: None,
            failure: None,
            failure_record: None,
            cause: None,
            engine: None,
            emulated: false,
            build_id: None,
            log_path: None,
        }
    }
}

/// Counts of the run in progress. `queued` goes back down when a queued cell ends without
/// starting (skipped, cancelled), so a drained run shows 0 queued and 0 running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounters {
    pub queued: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    /// Base images moved between engines ([`BuildEvent::Transfer`]), and their bytes.
    pub transfers: usize,
    pub transfer_bytes: u64,
}

impl RunCounters {
    /// Cells that ended in this run.
    pub fn done(&self) -> usize {
        self.succeeded + self.failed + self.skipped + self.cancelled
    }
    /// Cells that ended otherwise than succeeded.
    pub fn not_ok(&self) -> usize {
        self.failed + self.skipped + self.cancelled
    }
}

/// What one event changed that a face may want to say (beyond redrawing).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    None,
    /// A cell goes back to the queue after a transient engine error.
    Retrying {
        cell: String,
        engine: String,
        attempt: u32,
        reason: String,
    },
    /// A history or log write failed.
    Storage(String),
    /// A base image moved between engines for a waiting cell; `line` says what moved where
    /// ([`transfer_line`]).
    Transfer {
        cell: String,
        line: String,
    },
    /// An engine was found unreachable, with its error (each health report that says so).
    EngineDown {
        engine: String,
        error: String,
    },
    /// The run ended.
    Done(Summary),
}

/// The one wording of a transfer, for both faces:
/// `transfer base debian-13/opam/amd64 from a to m: 412.3MB in 9.1 s (export/load)`; a target
/// that held the image already says `already there`.
pub fn transfer_line(
    base: &str,
    from: &str,
    to: &str,
    bytes: u64,
    secs: f64,
    via: crate::engine::transfer::Via,
) -> String {
    if bytes == 0 {
        format!("transfer base {base} from {from} to {to}: already there ({via})")
    } else {
        format!(
            "transfer base {base} from {from} to {to}: {} in {secs:.1} s ({via})",
            crate::util::units::human_size(bytes.min(i64::MAX as u64) as i64)
        )
    }
}

/// The state both faces read. See the module doc.
#[derive(Debug, Clone, Default)]
pub struct RunProgress {
    pub cells: HashMap<String, CellProgress>,
    pub engines: BTreeMap<String, EngineHealth>,
    /// Each engine's last measured disk use (images and build cache), by engine name.
    pub engine_disk: BTreeMap<String, crate::engine::cleanup::DiskUse>,
    pub counters: RunCounters,
    /// Each cell's last successful build (what a publish would push).
    pub built: HashMap<String, Built>,
    /// Summary of the last run that ended.
    pub last_summary: Option<Summary>,
    /// The run's last estimate of its time left (None between runs).
    pub eta: Option<Eta>,
}

impl RunProgress {
    /// Every cell of the matrix, as its latest build left it; `stale` ids are marked.
    pub fn new(
        matrix: &Matrix,
        latest: &HashMap<String, BuildRecord>,
        stale: &BTreeSet<String>,
    ) -> RunProgress {
        let mut cells = HashMap::new();
        for c in &matrix.cells {
            let mut v = CellProgress::default();
            if let Some(r) = latest.get(&c.id) {
                v.status = Status::from_build(r.status);
                v.size = r.size;
                v.failure = r.failure.clone();
                v.failure_record = r.failure_record.clone();
                v.cause = r.cause.clone();
                v.engine = Some(r.engine.clone()).filter(|e| !e.is_empty());
                v.build_id = Some(r.id);
                v.log_path = r.log_path.clone();
            }
            v.stale = stale.contains(&c.id);
            cells.insert(c.id.clone(), v);
        }
        RunProgress {
            cells,
            ..RunProgress::default()
        }
    }

    /// Mark cells with why they need a rebuild (from the history, or a plan change): each
    /// becomes stale with these reasons, until it next builds well.
    pub fn set_reasons(&mut self, reasons: &Reasons) {
        for (id, why) in reasons {
            if let Some(c) = self.cells.get_mut(id) {
                c.stale = true;
                c.why = why.clone();
            }
        }
    }

    /// Sizes of the success before each cell's last one (bytes), for deltas.
    pub fn set_previous_sizes(&mut self, prev: &HashMap<String, i64>) {
        for (id, size) in prev {
            if let Some(c) = self.cells.get_mut(id) {
                c.prev_size = Some(*size);
            }
        }
    }

    /// Fold one event. Returns what a face may want to announce.
    pub fn apply(&mut self, ev: &BuildEvent) -> Notice {
        match ev {
            BuildEvent::Queued { cell } => {
                self.counters.queued += 1;
                if let Some(c) = self.cells.get_mut(cell.as_str()) {
                    c.status = Status::Queued;
                    c.step = None;
                    c.step_name = None;
                }
            }
            BuildEvent::Started {
                cell,
                engine,
                build_id,
                emulated,
                ..
            } => {
                self.counters.queued = self.counters.queued.saturating_sub(1);
                self.counters.running += 1;
                if let Some(c) = self.cells.get_mut(cell.as_str()) {
                    c.status = Status::Building;
                    c.engine = Some(engine.to_string());
                    c.emulated = *emulated;
                    c.build_id = Some(build_id.0);
                    c.failure = None;
                    c.failure_record = None;
                    c.cause = None;
                    c.log_path = None;
                }
            }
            BuildEvent::Step {
                cell,
                current,
                total,
                name,
            } => {
                if let Some(c) = self.cells.get_mut(cell.as_str()) {
                    c.step = Some((*current, *total));
                    c.step_name = Some(strip_sgr(name));
                }
            }
            BuildEvent::Log { .. } => {}
            BuildEvent::Retrying {
                cell,
                engine,
                attempt,
                reason,
            } => {
                self.counters.running = self.counters.running.saturating_sub(1);
                self.counters.queued += 1;
                if let Some(c) = self.cells.get_mut(cell.as_str()) {
                    c.status = Status::Queued;
                    c.step = None;
                    c.step_name = None;
                }
                return Notice::Retrying {
                    cell: cell.to_string(),
                    engine: engine.to_string(),
                    attempt: *attempt,
                    reason: reason.clone(),
                };
            }
            BuildEvent::Finished(r) => {
                let was_running = self
                    .cells
                    .get(r.cell.as_str())
                    .is_some_and(|c| c.status == Status::Building);
                if was_running {
                    self.counters.running = self.counters.running.saturating_sub(1);
                } else {
                    self.counters.queued = self.counters.queued.saturating_sub(1);
                }
                match r.status {
                    BuildStatus::Succeeded => self.counters.succeeded += 1,
                    BuildStatus::Skipped => self.counters.skipped += 1,
                    BuildStatus::Cancelled => self.counters.cancelled += 1,
                    _ => self.counters.failed += 1,
                }
                if let Some(c) = self.cells.get_mut(r.cell.as_str()) {
                    if r.log_path.is_some() {
                        c.log_path = r.log_path.clone();
                    }
                    c.status = Status::from_build(r.status);
                    c.step = None;
                    c.step_name = None;
                    c.failure = r.failure.clone();
                    c.failure_record = r.failure_record.clone();
                    c.cause = r.cause.clone();
                    if r.status == BuildStatus::Succeeded {
                        c.size = r.size;
                        c.prev_size = r.previous_size;
                        c.stale = false;
                        c.why.clear();
                        if let (Some(build_id), Some(engine), Some(image_id)) =
                            (r.build_id, r.engine.clone(), r.image_id.clone())
                        {
                            self.built.insert(
                                r.cell.to_string(),
                                Built {
                                    build_id: build_id.0,
                                    engine: engine.into_string(),
                                    image_id,
                                    size: r.size,
                                },
                            );
                        }
                    }
                    if r.build_id.is_some() {
                        c.build_id = r.build_id.map(|b| b.0);
                    }
                }
            }
            BuildEvent::Transfer {
                cell,
                base,
                from,
                to,
                bytes,
                secs,
                via,
            } => {
                self.counters.transfers += 1;
                self.counters.transfer_bytes += bytes;
                return Notice::Transfer {
                    cell: cell.to_string(),
                    line: transfer_line(base, from, to, *bytes, *secs, *via),
                };
            }
            BuildEvent::Engine(h) => {
                self.engines.insert(h.engine.clone(), h.clone());
                if !h.reachable {
                    if let Some(e) = &h.last_error {
                        return Notice::EngineDown {
                            engine: h.engine.clone(),
                            error: e.clone(),
                        };
                    }
                }
            }
            BuildEvent::EngineDisk { engine, disk } => {
                self.engine_disk.insert(engine.to_string(), disk.clone());
            }
            BuildEvent::StoreError { message, .. } => return Notice::Storage(message.clone()),
            BuildEvent::Progress(eta) => self.eta = Some(eta.clone()),
            BuildEvent::Done(s) => {
                self.eta = None;
                // The run is over: whatever was still counted as pending never ran.
                self.counters.queued = 0;
                self.counters.running = 0;
                self.last_summary = Some(s.clone());
                return Notice::Done(s.clone());
            }
        }
        Notice::None
    }

    /// The cell's last build failed (failed or interrupted).
    pub fn is_failed(&self, cell: &str) -> bool {
        self.cells.get(cell).is_some_and(|c| c.status.is_failed())
    }

    /// Did the cell's last success grow past either threshold over the one before it? The
    /// rule of [`Delta::regresses`], as `sizes --check` applies it.
    pub fn regressed(&self, cell: &str, thresholds: &Thresholds) -> bool {
        match self.cells.get(cell) {
            Some(CellProgress {
                size: Some(s),
                prev_size: Some(p),
                ..
            }) => Delta::between(*p, *s).regresses(thresholds),
            _ => false,
        }
    }

    /// Fresh counters for a new run (the cells keep their state).
    pub fn start_run(&mut self) {
        self.counters = RunCounters::default();
    }

    /// Where a build of `cells` (ids) would go if it started now: the scheduler's own routing
    /// ([`route::preview`]) over the engines as their last health events describe them, with
    /// the cells in the order a plan puts them (bases first). A compiler cell follows its
    /// base: the selected one, else the last success of it if that is not stale (the rule by
    /// which a plan reuses a base), else the base that comes along, which is routed but not
    /// counted. Counts only `cells`.
    pub fn routing_preview(
        &self,
        matrix: &Matrix,
        cells: &[String],
        rules: &route::Rules,
    ) -> route::PreviewSummary {
        let slots = route::SlotSnapshot::from_healths(self.engines.values());
        let selected: Vec<&Cell> = cells.iter().filter_map(|id| matrix.cell(id)).collect();
        let mut wanted: Vec<(&Cell, bool)> = selected.iter().map(|c| (*c, true)).collect();
        for c in &selected {
            let Some(base_id) = c.base_id() else { continue };
            let reused = self.built.contains_key(&base_id)
                && !self.cells.get(&base_id).is_some_and(|b| b.stale);
            if !reused && !wanted.iter().any(|(w, _)| w.id == base_id) {
                if let Some(b) = matrix.cell(&base_id) {
                    wanted.push((b, false));
                }
            }
        }
        let position = |c: &Cell| matrix.cells.iter().position(|x| x.id == c.id);
        wanted.sort_by_key(|(c, _)| (c.level == Level::Compiler, position(c)));
        let ids: Vec<Option<String>> = wanted.iter().map(|(c, _)| c.base_id()).collect();
        let jobs: Vec<route::PreviewJob> = wanted
            .iter()
            .zip(&ids)
            .map(|((c, _), base_id)| route::PreviewJob {
                arch: &c.arch,
                base: base_id.as_deref().and_then(|b| {
                    match wanted.iter().position(|(w, _)| w.id == b) {
                        Some(index) => Some(route::PreviewBase::Job { index, cell: b }),
                        None => self.built.get(b).map(|built| {
                            route::PreviewBase::Built(route::BaseAt {
                                cell: b,
                                engine: &built.engine,
                            })
                        }),
                    }
                }),
            })
            .collect();
        let routed = route::preview(&slots, &jobs, rules);
        route::PreviewSummary::of(&slots, &jobs, &routed, |k| wanted[k].1)
    }
}

/// The time left as both faces say it: `about 3m 10s left`, `at least 3m 10s left (2 cells
/// never built)` when some cells have no expected duration, `time left unknown (…)` when
/// none has; None when nothing is left.
pub fn eta_words(e: &Eta) -> Option<String> {
    if e.cells_left == 0 {
        return None;
    }
    let unknown = match e.unknown {
        0 => String::new(),
        1 => " (1 cell without a past build to go by)".to_string(),
        n => format!(" ({n} cells without a past build to go by)"),
    };
    Some(match e.eta_secs {
        Some(s) if e.unknown == 0 => format!("about {} left", human_secs(s)),
        Some(s) => format!("at least {} left{unknown}", human_secs(s)),
        None => format!("time left unknown{unknown}"),
    })
}

/// The line a run's end reads as, in both faces.
pub fn summary_line(s: &Summary) -> String {
    let mut m = format!(
        "{} succeeded, {} failed, {} skipped, {} cancelled in {:.1}s",
        s.succeeded, s.failed, s.skipped, s.cancelled, s.duration_secs
    );
    if let Some(e) = s.eta_secs {
        m.push_str(&format!(" (estimated {e:.1}s)"));
    }
    if s.cache_hits > 0 {
        m.push_str(&format!(
            "; {} steps from the engines' caches",
            s.cache_hits
        ));
    }
    if s.store_errors > 0 {
        m.push_str(&format!(
            "; {} history/log writes FAILED (disk full?), results may be missing from history",
            s.store_errors
        ));
    }
    m
}

/// A run's failures grouped by cause, for the end of a headless run: per cause a line with
/// its count and hint, then its cells. Empty when nothing failed.
pub fn cause_lines(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if s.causes.is_empty() {
        return out;
    }
    out.push("failures by cause:".to_string());
    for g in &s.causes {
        let hint = if g.hint.is_empty() {
            String::new()
        } else {
            format!(": {}", g.hint)
        };
        out.push(format!("  {} ({}){hint}", g.cause, g.cells.len()));
        out.push(format!("    {}", g.cells.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::CellResult;

    fn matrix() -> Matrix {
        let loaded = crate::config::parse(
            "t.toml",
            "[matrix]\ndistros = [\"debian-13\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]\n",
        )
        .unwrap();
        Matrix::from_config(&loaded).unwrap()
    }

    #[test]
    fn a_transfer_is_counted_and_said_once_for_both_faces() {
        let m = matrix();
        let mut p = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        let ev = |bytes| BuildEvent::Transfer {
            cell: "debian-13/5.4/amd64".into(),
            base: "debian-13/opam/amd64".into(),
            from: "a".into(),
            to: "m".into(),
            bytes,
            secs: 2.41,
            via: crate::engine::transfer::Via::ExportLoad,
        };
        assert_eq!(
            p.apply(&ev(107_002_368)),
            Notice::Transfer {
                cell: "debian-13/5.4/amd64".into(),
                line:
                    "transfer base debian-13/opam/amd64 from a to m: 107.0MB in 2.4 s (export/load)"
                        .into(),
            }
        );
        let Notice::Transfer { line, .. } = p.apply(&ev(0)) else {
            panic!("no notice")
        };
        assert_eq!(
            line,
            "transfer base debian-13/opam/amd64 from a to m: already there (export/load)"
        );
        assert_eq!(
            (p.counters.transfers, p.counters.transfer_bytes),
            (2, 107_002_368)
        );
        // Nothing else moves: the waiting cell is still whatever it was.
        assert_eq!((p.counters.queued, p.counters.running), (0, 0));
        assert_eq!(
            serde_json::to_value(ev(5)).unwrap(),
            serde_json::json!({"event": "transfer", "cell": "debian-13/5.4/amd64",
                "base": "debian-13/opam/amd64", "from": "a", "to": "m", "bytes": 5,
                "secs": 2.41, "via": "export_load"})
        );
    }

    fn finished(cell: &str, status: BuildStatus) -> BuildEvent {
        BuildEvent::Finished(CellResult {
            cell: cell.into(),
            status,
            build_id: Some(1.into()),
            engine: Some("e".into()),
            image_id: Some("sha256:x".into()),
            size: Some(100),
            previous_size: Some(50),
            failure: None,
            failure_record: None,
            cause: None,
            duration_secs: Some(1.0),
            log_path: None,
        })
    }

    fn health(reachable: bool, last_error: Option<&str>) -> BuildEvent {
        BuildEvent::Engine(EngineHealth {
            engine: "e".into(),
            endpoint: "unix:///e.sock".into(),
            reachable,
            info: None,
            arches: vec!["amd64".into()],
            running: 0,
            queued: 0,
            last_error: last_error.map(str::to_string),
            max_parallel: 1,
            tried: reachable || last_error.is_some(),
            slot: 0,
        })
    }

    #[test]
    fn routing_preview_follows_the_base_a_plan_would_use() {
        let m = matrix();
        let mut p = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        for (slot, name) in ["a", "b"].into_iter().enumerate() {
            p.apply(&BuildEvent::Engine(EngineHealth {
                engine: name.into(),
                reachable: true,
                info: Some(crate::engine::EngineInfo {
                    version: "27".into(),
                    api_version: "1.47".into(),
                    os: "linux".into(),
                    arch: "amd64".into(),
                    buildkit: true,
                    builder: Default::default(),
                }),
                slot,
                ..match health(true, None) {
                    BuildEvent::Engine(h) => h,
                    _ => unreachable!(),
                }
            }));
        }
        let rules = route::Rules::interactive();
        let comp = vec!["debian-13/5.4/amd64".to_string()];
        let on = |p: &RunProgress| p.routing_preview(&m, &comp, &rules).engines;
        // Never built: the base comes along, goes to a, and the cell follows it (one counted).
        assert_eq!(on(&p), vec![("a".to_string(), 1, 0)]);
        // Built on b: reused there.
        p.apply(&BuildEvent::Finished(CellResult {
            engine: Some("b".into()),
            ..match finished("debian-13/opam/amd64", BuildStatus::Succeeded) {
                BuildEvent::Finished(r) => r,
                _ => unreachable!(),
            }
        }));
        assert_eq!(on(&p), vec![("b".to_string(), 1, 0)]);
        // Stale: rebuilt, on a.
        p.cells.get_mut("debian-13/opam/amd64").unwrap().stale = true;
        assert_eq!(on(&p), vec![("a".to_string(), 1, 0)]);
        // No engine known: the base that comes along is skipped, and so the cell, as a run
        // would say.
        let empty = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        let s = empty.routing_preview(&m, &comp, &rules);
        assert_eq!(
            s.skipped,
            vec![("base debian-13/opam/amd64 skipped".to_string(), 1)]
        );
    }

    #[test]
    fn an_engine_down_is_announced_when_its_health_says_why() {
        let mut p = RunProgress::default();
        // Listed before its first connection attempt ends: nothing to say yet.
        assert_eq!(p.apply(&health(false, None)), Notice::None);
        let down = Notice::EngineDown {
            engine: "e".into(),
            error: "refused".into(),
        };
        assert_eq!(p.apply(&health(false, Some("refused"))), down);
        assert_eq!(p.apply(&health(true, None)), Notice::None);
        assert_eq!(p.apply(&health(false, Some("refused"))), down);
    }

    #[test]
    fn counters_go_back_when_queued_cells_end_without_starting() {
        let m = matrix();
        let mut p = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        let base = "debian-13/opam/amd64";
        let comp = "debian-13/5.4/amd64";
        p.apply(&BuildEvent::Queued { cell: base.into() });
        p.apply(&BuildEvent::Queued { cell: comp.into() });
        assert_eq!((p.counters.queued, p.counters.running), (2, 0));
        p.apply(&BuildEvent::Started {
            cell: base.into(),
            engine: "e".into(),
            build_id: 1.into(),
            emulated: false,
        });
        assert_eq!((p.counters.queued, p.counters.running), (1, 1));
        p.apply(&finished(base, BuildStatus::Failed));
        p.apply(&finished(comp, BuildStatus::Skipped));
        assert_eq!(
            p.counters,
            RunCounters {
                failed: 1,
                skipped: 1,
                ..RunCounters::default()
            }
        );
        assert!(p.is_failed(base));
        assert!(!p.is_failed(comp));
    }

    #[test]
    fn success_records_size_and_what_a_publish_pushes() {
        let m = matrix();
        let mut stale = BTreeSet::new();
        stale.insert("debian-13/opam/amd64".to_string());
        let mut p = RunProgress::new(&m, &HashMap::new(), &stale);
        assert!(p.cells["debian-13/opam/amd64"].stale);
        p.apply(&finished("debian-13/opam/amd64", BuildStatus::Succeeded));
        let c = &p.cells["debian-13/opam/amd64"];
        assert_eq!((c.size, c.prev_size, c.stale), (Some(100), Some(50), false));
        assert_eq!(p.built["debian-13/opam/amd64"].engine, "e");
        let t = |bytes, percent| Thresholds { bytes, percent };
        assert!(p.regressed("debian-13/opam/amd64", &t(1000, 10.0)));
        assert!(p.regressed("debian-13/opam/amd64", &t(10, 1000.0)));
        assert!(!p.regressed("debian-13/opam/amd64", &t(1000, 150.0)));
    }

    #[test]
    fn done_clears_pending_counts_and_keeps_the_summary() {
        let m = matrix();
        let mut p = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        p.apply(&BuildEvent::Queued {
            cell: "debian-13/opam/amd64".into(),
        });
        let s = Summary {
            cancelled: 1,
            ..Summary::default()
        };
        assert_eq!(p.apply(&BuildEvent::Done(s.clone())), Notice::Done(s));
        assert_eq!(p.counters.queued, 0);
    }

    #[test]
    fn reasons_mark_cells_stale_until_they_build_well() {
        use crate::why::ReasonKind;
        let m = matrix();
        let mut p = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        let why = vec![Reason {
            kind: ReasonKind::ChangedByPlan,
            detail: "its base debian-13/opam/amd64 changed in new.dump".into(),
            diff: None,
        }];
        let mut reasons = Reasons::new();
        reasons.insert("debian-13/5.4/amd64".to_string(), why.clone());
        reasons.insert("not/in/matrix".to_string(), why.clone());
        p.set_reasons(&reasons);
        let c = &p.cells["debian-13/5.4/amd64"];
        assert!(c.stale);
        assert_eq!(c.why, why);
        p.apply(&finished("debian-13/5.4/amd64", BuildStatus::Failed));
        assert_eq!(
            p.cells["debian-13/5.4/amd64"].why, why,
            "a failure clears nothing"
        );
        p.apply(&finished("debian-13/5.4/amd64", BuildStatus::Succeeded));
        let c = &p.cells["debian-13/5.4/amd64"];
        assert!(!c.stale && c.why.is_empty());
    }

    #[test]
    fn progress_events_carry_the_estimate_until_the_run_ends() {
        let m = matrix();
        let mut p = RunProgress::new(&m, &HashMap::new(), &BTreeSet::new());
        let eta = Eta {
            eta_secs: Some(190.0),
            cells_left: 3,
            unknown: 0,
            blocked: 0,
        };
        p.apply(&BuildEvent::Progress(eta.clone()));
        assert_eq!(
            eta_words(p.eta.as_ref().unwrap()).unwrap(),
            "about 3m 10s left"
        );
        let partly = Eta {
            unknown: 2,
            ..eta.clone()
        };
        assert_eq!(
            eta_words(&partly).unwrap(),
            "at least 3m 10s left (2 cells without a past build to go by)"
        );
        let none = Eta {
            eta_secs: None,
            unknown: 1,
            ..eta
        };
        assert_eq!(
            eta_words(&none).unwrap(),
            "time left unknown (1 cell without a past build to go by)"
        );
        p.apply(&BuildEvent::Done(Summary {
            eta_secs: Some(200.0),
            duration_secs: 210.0,
            ..Summary::default()
        }));
        assert_eq!(p.eta, None);
        assert!(summary_line(p.last_summary.as_ref().unwrap())
            .ends_with("in 210.0s (estimated 200.0s)"));
    }
}
