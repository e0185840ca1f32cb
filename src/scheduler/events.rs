//! The event stream both faces (TUI and headless CLI) consume.

use serde::Serialize;

use crate::engine::EngineInfo;
use crate::model::ids::{BuildId, CellId, EngineName};
use crate::store::BuildStatus;

/// One thing that happened. Serialised as one JSON object per line by `build --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A cell joined the queue.
    Queued { cell: CellId },
    /// A cell started building.
    Started {
        cell: CellId,
        engine: EngineName,
        build_id: BuildId,
        emulated: bool,
    },
    /// Step n of m.
    Step {
        cell: CellId,
        current: u32,
        total: u32,
        name: String,
    },
    /// One sanitised log line.
    Log { cell: CellId, line: String },
    /// A transient engine error; the cell goes back to the queue.
    Retrying {
        cell: CellId,
        engine: EngineName,
        attempt: u32,
        reason: String,
    },
    /// A cell ended (any status, including skipped and cancelled).
    Finished(CellResult),
    /// An engine's health changed.
    Engine(EngineHealth),
    /// An engine's disk use (Engine API system df), measured when it connects and about
    /// once a minute after.
    EngineDisk {
        engine: EngineName,
        disk: crate::engine::cleanup::DiskUse,
    },
    /// History or a log could not be written (a full disk, say); `message` names the file.
    /// Builds go on: their results still arrive as events, only the record is missing.
    StoreError {
        cell: Option<CellId>,
        message: String,
    },
    /// A base image moved to the engine a compiler cell will build on (issue 19: bases are
    /// not pinned to the engine that built them). In JSON: `{"event": "transfer", "cell",
    /// "base", "from", "to", "bytes", "secs", "via"}`, `via` being `export_load` or `registry`.
    Transfer {
        /// The compiler cell that waited for the base.
        cell: CellId,
        /// The base cell whose image moved.
        base: CellId,
        /// The engine that held it.
        from: EngineName,
        /// The engine it moved to.
        to: EngineName,
        /// Bytes streamed (the export tar, or the layers pulled); 0 when `to` held it already.
        bytes: u64,
        /// Wall-clock seconds the move took, verification included.
        secs: f64,
        via: crate::engine::transfer::Via,
    },
    /// The run's estimated time left, after what changed it (a cell queued, started or
    /// ended, an engine up or down), at most about once a second.
    Progress(Eta),
    /// Every cell has ended.
    Done(Summary),
}

/// A run's estimated time left: the queue simulated over expected durations
/// (`scheduler::estimate`). In JSON: `{"event": "progress", "eta_secs", "cells_left",
/// "unknown", "blocked"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Eta {
    /// Seconds until the last cell ends; null when no cell left has an expected duration.
    /// With `unknown` > 0 it is a lower bound (those cells count as instant).
    pub eta_secs: Option<f64>,
    /// Cells queued or building.
    pub cells_left: usize,
    /// Of those, cells with no expected duration (never built, nor any similar cell).
    pub unknown: usize,
    /// Of those, cells no engine would take now (or whose base would not build).
    pub blocked: usize,
}

impl BuildEvent {
    /// The cell an event is about, if any.
    pub fn cell(&self) -> Option<&str> {
        match self {
            BuildEvent::Queued { cell }
            | BuildEvent::Started { cell, .. }
            | BuildEvent::Step { cell, .. }
            | BuildEvent::Log { cell, .. }
            | BuildEvent::Retrying { cell, .. }
            | BuildEvent::Transfer { cell, .. } => Some(cell.as_str()),
            BuildEvent::Finished(r) => Some(r.cell.as_str()),
            BuildEvent::StoreError { cell, .. } => cell.as_ref().map(|c| c.as_str()),
            _ => None,
        }
    }
}

/// How one cell ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellResult {
    pub cell: CellId,
    pub status: BuildStatus,
    pub build_id: Option<BuildId>,
    pub engine: Option<EngineName>,
    pub image_id: Option<String>,
    /// Uncompressed bytes.
    pub size: Option<i64>,
    /// Size of the previous successful build of the cell, for the delta.
    pub previous_size: Option<i64>,
    /// Why it failed, was skipped or cancelled.
    pub failure: Option<String>,
    /// The failure field by field (exit code, the line that explains it, step, command);
    /// None unless the build itself failed.
    #[serde(default)]
    pub failure_record: Option<crate::model::failure::Failure>,
    /// Why it failed, in a word: the first failure rule that matched its log and record
    /// (`unclassified` if none did). None unless the cell failed.
    #[serde(default)]
    pub cause: Option<crate::model::cause::Cause>,
    pub duration_secs: Option<f64>,
    /// The build's full log on disk (None when nothing was built).
    pub log_path: Option<String>,
}

impl CellResult {
    /// A cell that ended without an image (skipped, cancelled, failed before its build
    /// started), with why.
    pub fn unbuilt(
        cell: CellId,
        status: BuildStatus,
        engine: Option<EngineName>,
        reason: String,
    ) -> CellResult {
        CellResult {
            cell,
            status,
            build_id: None,
            engine,
            image_id: None,
            size: None,
            previous_size: None,
            failure: Some(reason),
            failure_record: None,
            cause: None,
            duration_secs: None,
            log_path: None,
        }
    }
}

/// Health of one engine: what the faces show, and what they route a preview over
/// (`scheduler::route::SlotSnapshot::from_health`).
///
/// In JSON it also carries `"state"`: `"connecting"` until the first connection attempt has
/// ended, then `"reachable"` or `"unreachable"`, so that no report is a verdict before imagegrid
/// has tried (`reachable` stays for readers of older events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHealth {
    pub engine: String,
    pub endpoint: String,
    pub reachable: bool,
    pub info: Option<EngineInfo>,
    pub arches: Vec<String>,
    pub running: usize,
    pub queued: usize,
    pub last_error: Option<String>,
    /// Builds it may run at once (its `max_parallel`).
    pub max_parallel: usize,
    /// Its first connection attempt has ended (either way). Until then an unreachable engine
    /// is still being tried, and cells for it wait even in a headless run.
    pub tried: bool,
    /// Its place in the configuration, from 0: routing prefers the earlier of two equally
    /// good engines.
    pub slot: usize,
}

impl EngineHealth {
    /// `connecting` until the first connection attempt has ended, then `reachable` or
    /// `unreachable`.
    pub fn state(&self) -> &'static str {
        match (self.tried, self.reachable) {
            (_, true) => "reachable",
            (false, false) => "connecting",
            (true, false) => "unreachable",
        }
    }
}

impl Serialize for EngineHealth {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EngineHealth", 12)?;
        st.serialize_field("engine", &self.engine)?;
        st.serialize_field("endpoint", &self.endpoint)?;
        st.serialize_field("state", self.state())?;
        st.serialize_field("reachable", &self.reachable)?;
        st.serialize_field("info", &self.info)?;
        st.serialize_field("arches", &self.arches)?;
        st.serialize_field("running", &self.running)?;
        st.serialize_field("queued", &self.queued)?;
        st.serialize_field("last_error", &self.last_error)?;
        st.serialize_field("max_parallel", &self.max_parallel)?;
        st.serialize_field("tried", &self.tried)?;
        st.serialize_field("slot", &self.slot)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_state_is_not_a_verdict_before_the_first_attempt() {
        let mut h = EngineHealth {
            engine: "a".into(),
            endpoint: "unix:///x".into(),
            reachable: false,
            info: None,
            arches: vec![],
            running: 0,
            queued: 0,
            last_error: None,
            max_parallel: 1,
            tried: false,
            slot: 0,
        };
        let json = |h: &EngineHealth| serde_json::to_value(h).unwrap()["state"].clone();
        assert_eq!(json(&h), "connecting");
        h.tried = true;
        assert_eq!(json(&h), "unreachable");
        h.reachable = true;
        assert_eq!(json(&h), "reachable");
        assert_eq!(serde_json::to_value(&h).unwrap()["reachable"], true);
    }
}

/// Counts at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    /// History or log writes that failed during the run (each also sent as a `StoreError`).
    pub store_errors: usize,
    pub duration_secs: f64,
    /// The run's failed cells grouped by cause, the largest group first.
    pub causes: Vec<CauseGroup>,
    /// The run's duration as first estimated, once every engine had answered or failed its
    /// first connection attempt (seconds from the start of the run, to compare with
    /// `duration_secs`); null when nothing could be estimated.
    pub eta_secs: Option<f64>,
    /// Build steps the engines took from their layer caches, summed over the run's builds
    /// (BuildKit's `CACHED` vertices, the classic builder's `Using cache`).
    pub cache_hits: usize,
    /// Base images moved to another engine for a compiler cell (`[build] transfer`).
    pub transfers: usize,
}

/// Failed cells of one cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CauseGroup {
    /// The cause's name (`unclassified` when no rule matched).
    pub cause: String,
    pub hint: String,
    /// Cell ids, sorted.
    pub cells: Vec<String>,
}

impl Summary {
    /// Did every cell build?
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0 && self.skipped == 0 && self.cancelled == 0
    }
    /// Count a failed cell under its cause (keeps the largest group first).
    pub fn add_cause(&mut self, cell: &str, cause: &crate::model::cause::Cause) {
        match self.causes.iter_mut().find(|g| g.cause == cause.name) {
            Some(g) => {
                let at = g.cells.partition_point(|c| c.as_str() < cell);
                g.cells.insert(at, cell.to_string());
            }
            None => self.causes.push(CauseGroup {
                cause: cause.name.clone(),
                hint: cause.hint.clone(),
                cells: vec![cell.to_string()],
            }),
        }
        self.causes.sort_by(|a, b| {
            b.cells
                .len()
                .cmp(&a.cells.len())
                .then(a.cause.cmp(&b.cause))
        });
    }

    pub fn add(&mut self, status: BuildStatus) {
        match status {
            BuildStatus::Succeeded => self.succeeded += 1,
            BuildStatus::Skipped => self.skipped += 1,
            BuildStatus::Cancelled => self.cancelled += 1,
            _ => self.failed += 1,
        }
    }
}
