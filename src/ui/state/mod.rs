//! The TUI's state and the plain `update` functions that change it. No terminal here:
//! every transition is testable with `assert_eq!`. The state ([`App`]) and its queries are
//! here; the views' types in `view`, key, mouse and engine updates in `update` and `act`,
//! selection in `selection`, log scrolling and search in `log_view`.

mod act;
mod failures;
mod back;
pub mod help;
pub mod inspect;
#[cfg(test)]
mod frictions_tests;
mod log_view;
pub mod mouse;
mod prompt;
pub mod search;
mod selection;
#[cfg(test)]
mod tests;
mod update;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::keymap::{action_for, Action, Context};
use crate::config::TagConfig;
use crate::logs::{strip_sgr, LogBuffer};
use crate::matrix::{Cell, Matrix};
pub use crate::progress::CellProgress;
pub use crate::progress::Status;
use crate::progress::{summary_line, Notice, RunProgress};
use crate::publish::{Built, PublishEvent, TagPlan};
use crate::scheduler::summary::is_error_line;
use crate::scheduler::BuildEvent;
use crate::store::BuildRecord;

pub use failures::{CauseRow, FailuresView, CAUSE_GLYPHS, OTHER_GLYPH};
pub use log_view::LogView;
pub use prompt::Prompt;
pub use search::Search;
pub use view::{Comparison, Confirm, Detail, Heat, Inspector, Loadable, Mode, Pane, SortKey};

/// Lines of one cell's log kept in memory (the full log is on disk).
pub const LOG_MAX_LINES: usize = 10_000;
/// Bytes of one cell's log kept in memory.
pub const LOG_MAX_BYTES: usize = 4 * 1024 * 1024;

/// An empty in-memory log of one cell.
fn new_log() -> LogBuffer {
    LogBuffer::new(LOG_MAX_LINES, LOG_MAX_BYTES)
}

/// What the runtime must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Build {
        cells: Vec<String>,
        no_cache: bool,
    },
    Cancel(Vec<String>),
    /// Run this publish plan (push, manifest lists, aliases): the one the confirm showed.
    Publish {
        plan: Box<TagPlan>,
    },
    LoadDockerfile(String),
    /// Read a cell's successful builds for the inspector.
    LoadHistory(String),
    /// Read the tail of a stored log into the cell's buffer (the last build's log).
    LoadLog {
        cell: String,
        path: String,
    },
    SaveLog {
        cell: String,
    },
    SetMouse(bool),
    /// Read the plan file again, and send back the new matrix with what it changed.
    ReloadPlan,
    /// Quit; cancel what still runs first.
    Quit,
}

/// The whole UI state.
#[derive(Debug)]
pub struct App {
    pub matrix: Matrix,
    /// `opam` then every version.
    pub columns: Vec<String>,
    /// Per-cell state and run counters: the reducer both faces share.
    pub progress: RunProgress,
    /// Build logs held in memory (the running ones, and the shown one read from disk).
    pub logs: HashMap<String, LogBuffer>,
    pub row: usize,
    pub col: usize,
    pub arch: usize,
    /// Show every arch of a cell as a strip instead of one arch at a time.
    pub all_arches: bool,
    pub selection: BTreeSet<String>,
    pub visual_anchor: Option<(usize, usize)>,
    pub filter: String,
    pub mode: Mode,
    pub pane: Pane,
    pub detail: Detail,
    pub log_view: LogView,
    pub message: Option<String>,
    pub mouse_capture: bool,
    /// The focused pane takes the screen between the header and the status line (`z`).
    pub zoom: bool,
    /// The help popup's first line shown (it scrolls like a pane).
    pub help_top: usize,
    /// The help's search (`/` in the help), kept while the help is open.
    pub help_search: Option<Search>,
    /// The view the search prompt was opened in: what its text is applied to (the help,
    /// the inspector or the text of the detail pane).
    pub search_in: Context,
    /// Draw without colour (NO_COLOR, a monochrome terminal): every meaning is carried by
    /// reverse, underline, bold and glyphs.
    pub mono: bool,
    pub merged: LogBuffer,
    /// Regression thresholds: bytes and percent.
    pub max_growth: (u64, f64),
    /// Where the last frame drew the grid and the log, for mouse hits and paging. Set by the
    /// runtime from what `draw` returns; draw code itself never writes into the state.
    pub geometry: Geometry,
    pub tick: u64,
    pub quit: bool,
    /// Ended cells whose log is held in memory to be shown (read from disk, or kept when the
    /// build ended in focus). Released when focus leaves them: the file has it all, and holding
    /// every ended build's log would grow with the matrix (up to LOG_MAX_BYTES a cell).
    log_requested: BTreeSet<String>,
    pub heat: Heat,
    /// The sorted list replaces the grid.
    pub list: Option<SortKey>,
    pub list_cursor: usize,
    /// The tag scheme publishing uses.
    pub tags: TagConfig,
    /// A publish in progress.
    pub publishing: Option<PublishProgress>,
    /// The failures view (causes and their cells) replaces the grid.
    pub failures: Option<FailuresView>,
}

/// How far a running publish is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProgress {
    /// Per-arch pushes done and planned.
    pub pushed: usize,
    pub pushes: usize,
    /// Tags and aliases published so far.
    pub published: usize,
    /// Tags and aliases that will not be.
    pub not_published: usize,
}

/// What input handling needs from the last frame's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Where the grid's cells were drawn; None when the list view replaces the grid (or the
    /// detail pane is zoomed).
    pub grid: Option<GridGeometry>,
    /// Where the list view's rows were drawn, when it is shown.
    pub list: Option<ListGeometry>,
    /// Height of the log view in lines (for paging).
    pub log_height: usize,
    /// The header line (its arch tabs take clicks).
    pub header: ratatui::layout::Rect,
    /// The grid's or the list view's box (empty when zoomed away).
    pub cells: ratatui::layout::Rect,
    /// The detail pane's box (empty when zoomed away).
    pub detail: ratatui::layout::Rect,
    /// The help's largest first line: its lines less those that fit.
    pub help_max_top: usize,
    /// How many of the help's lines fit in its popup.
    pub help_room: usize,
    /// The screen's width in columns (the help wraps its lines to it).
    pub screen_width: u16,
}

impl Default for Geometry {
    fn default() -> Self {
        Geometry {
            grid: None,
            list: None,
            log_height: 10,
            header: Default::default(),
            cells: Default::default(),
            detail: Default::default(),
            help_max_top: 0,
            help_room: 0,
            screen_width: 80,
        }
    }
}

/// Where the list view's rows were drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListGeometry {
    /// Screen row of the first list row shown.
    pub y: u16,
    /// Index of the first row shown.
    pub first: usize,
    /// Rows shown.
    pub rows: u16,
}

/// Where the grid was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridGeometry {
    pub x: u16,
    pub y: u16,
    pub first_cell_x: u16,
    pub cell_width: u16,
    pub rows_shown: u16,
    pub first_row: usize,
    /// The first column shown: the grid scrolls sideways when its columns do not fit.
    pub first_col: usize,
}

impl App {
    /// A fresh state over a matrix, with the history's last known state folded in.
    pub fn new(
        matrix: Matrix,
        latest: &HashMap<String, BuildRecord>,
        stale: &BTreeSet<String>,
        max_growth: (u64, f64),
    ) -> App {
        let columns = matrix.columns();
        let progress = RunProgress::new(&matrix, latest, stale);
        App {
            matrix,
            columns,
            progress,
            logs: HashMap::new(),
            row: 0,
            col: 0,
            arch: 0,
            all_arches: false,
            selection: BTreeSet::new(),
            visual_anchor: None,
            filter: String::new(),
            mode: Mode::Normal,
            pane: Pane::Grid,
            detail: Detail::Log,
            log_view: LogView::default(),
            message: None,
            mouse_capture: true,
            zoom: false,
            help_top: 0,
            help_search: None,
            search_in: Context::Log,
            mono: false,
            merged: LogBuffer::new(LOG_MAX_LINES, LOG_MAX_BYTES),
            max_growth,
            geometry: Geometry::default(),
            tick: 0,
            quit: false,
            log_requested: BTreeSet::new(),
            heat: Heat::Status,
            list: None,
            list_cursor: 0,
            tags: TagConfig::default(),
            publishing: None,
            failures: None,
        }
    }

    /// What publishing needs: the tag scheme and each cell's last successful build.
    pub fn set_publish_context(&mut self, tags: TagConfig, built: HashMap<String, Built>) {
        self.tags = tags;
        self.progress.built = built;
    }

    /// Record the previous successful size of cells, for deltas.
    pub fn set_previous_sizes(&mut self, prev: &HashMap<String, i64>) {
        self.progress.set_previous_sizes(prev);
    }

    /// Arch names of the matrix.
    pub fn arch_names(&self) -> Vec<&str> {
        self.matrix.arches.iter().map(|a| a.name.as_str()).collect()
    }

    /// The arch shown (single-arch view) or focused (strip view).
    pub fn current_arch(&self) -> &str {
        self.matrix
            .arches
            .get(self.arch)
            .map(|a| a.name.as_str())
            .unwrap_or("")
    }

    /// Distros shown, after the filter.
    pub fn visible_rows(&self) -> Vec<&str> {
        let tokens: Vec<String> = self
            .filter
            .split_whitespace()
            .map(|t| t.to_lowercase())
            .collect();
        self.matrix
            .distros
            .iter()
            .map(|d| d.name.as_str())
            .filter(|d| tokens.iter().all(|t| self.row_matches(d, t)))
            .collect()
    }

    pub(super) fn row_matches(&self, distro: &str, token: &str) -> bool {
        if distro.contains(token) {
            return true;
        }
        self.matrix
            .cells
            .iter()
            .filter(|c| c.distro == distro)
            .any(|c| {
                let v = &self.progress.cells[&c.id];
                c.version_part() == token
                    || c.arch == token
                    || v.status.word().starts_with(token)
                    || (token == "stale" && v.stale)
                    || (token == "regressed" && self.regressed(&c.id))
            })
    }

    /// The cells at a grid position: one (single-arch view) or every arch (strip view).
    pub fn cells_at(&self, distro: &str, col: usize) -> Vec<&Cell> {
        let Some(column) = self.columns.get(col) else {
            return vec![];
        };
        self.matrix
            .cells
            .iter()
            .filter(|c| {
                c.distro == distro
                    && c.version_part() == column
                    && (self.all_arches || c.arch == self.current_arch())
            })
            .collect()
    }

    /// The focused cell id, if the focused position holds a cell of the focused arch.
    pub fn focused(&self) -> Option<String> {
        if self.failures.is_some() {
            // The failures view: the first cell of the cause under the cursor.
            return self.cause_cells().into_iter().next();
        }
        if self.list.is_some() {
            return self.list_cells().get(self.list_cursor).cloned();
        }
        let rows = self.visible_rows();
        let distro = rows.get(self.row)?;
        let column = self.columns.get(self.col)?;
        let id = format!("{distro}/{column}/{}", self.current_arch());
        self.matrix.cell(&id).map(|c| c.id.clone())
    }

    /// The list view's cells: the shown arch (or all), visible rows, sorted biggest first.
    pub fn list_cells(&self) -> Vec<String> {
        let rows: BTreeSet<&str> = self.visible_rows().into_iter().collect();
        let mut ids: Vec<&Cell> = self
            .matrix
            .cells
            .iter()
            .filter(|c| {
                rows.contains(c.distro.as_str())
                    && (self.all_arches || c.arch == self.current_arch())
            })
            .collect();
        let key = |c: &&Cell| -> i64 {
            match self.list {
                Some(SortKey::Growth) => self.delta(&c.id).unwrap_or(i64::MIN),
                _ => self.progress.cells[&c.id].size.unwrap_or(-1),
            }
        };
        ids.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.id.cmp(&b.id)));
        ids.into_iter().map(|c| c.id.clone()).collect()
    }

    /// The size change against the previous success, when both are known.
    pub fn delta(&self, id: &str) -> Option<i64> {
        let c = self.progress.cells.get(id)?;
        Some(c.size? - c.prev_size?)
    }

    /// Grew past either configured threshold (the rule `sizes --check` applies).
    pub fn regressed(&self, id: &str) -> bool {
        let t = crate::sizes::Thresholds {
            bytes: self.max_growth.0,
            percent: self.max_growth.1,
        };
        self.progress.regressed(id, &t)
    }

    /// Cells the next action applies to: in the failures view the cells of the cause under
    /// the cursor, else the selection, else the focused cell.
    pub fn targets(&self) -> Vec<String> {
        if self.failures.is_some() && self.pane == Pane::Grid {
            return self.cause_cells();
        }
        if self.selection.is_empty() {
            self.focused().into_iter().collect()
        } else {
            self.selection.iter().cloned().collect()
        }
    }

    /// The in-memory log of a cell (empty when none is held).
    pub fn log_of(&self, id: &str) -> &LogBuffer {
        static EMPTY: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
        self.logs
            .get(id)
            .unwrap_or_else(|| EMPTY.get_or_init(new_log))
    }

    /// Cells queued or building.
    pub fn active_count(&self) -> usize {
        self.progress
            .cells
            .values()
            .filter(|c| c.status.is_active())
            .count()
    }

    /// The log lines the detail pane shows now.
    pub fn shown_log(&self) -> Option<&LogBuffer> {
        match self.detail {
            Detail::Merged => Some(&self.merged),
            Detail::Log => self.focused().and_then(|id| self.logs.get(&id)),
            Detail::Dockerfile(_) | Detail::Inspector(_) => None,
        }
    }

    /// The focused cell's Dockerfile, when the Dockerfile view shows it.
    pub fn shown_dockerfile(&self) -> Option<&str> {
        let Detail::Dockerfile(l) = &self.detail else {
            return None;
        };
        l.ready_for(&self.focused()?).map(String::as_str)
    }

    /// The lines of text the detail pane shows (log, merged log or Dockerfile): what it
    /// scrolls and searches.
    pub fn shown_lines(&self) -> Vec<&str> {
        if let Some(log) = self.shown_log() {
            return log.iter().collect();
        }
        self.shown_dockerfile()
            .map(|t| t.lines().collect())
            .unwrap_or_default()
    }

    /// How many lines [`App::shown_lines`] has.
    pub fn shown_len(&self) -> usize {
        match self.shown_log() {
            Some(log) => log.len(),
            None => self
                .shown_dockerfile()
                .map(|t| t.lines().count())
                .unwrap_or(0),
        }
    }

    /// Where the keyboard is: the one place the keymap's context is derived from the state.
    pub fn context(&self) -> Context {
        match self.mode {
            Mode::Normal => self.view_context(),
            Mode::Help => Context::Help,
            Mode::Filter(_) | Mode::Selector(_) | Mode::Search(_) => Context::Prompt,
            Mode::Confirm(_) => Context::Confirm,
        }
    }

    /// The view under any prompt or popup (what the help describes).
    pub fn view_context(&self) -> Context {
        match (self.pane, &self.detail) {
            (Pane::Grid, _) if self.failures.is_some() => Context::Failures,
            (Pane::Grid, _) if self.list.is_some() => Context::List,
            (Pane::Grid, _) => Context::Grid,
            (Pane::Detail, Detail::Log) => Context::Log,
            (Pane::Detail, Detail::Merged) => Context::Merged,
            (Pane::Detail, Detail::Dockerfile(_)) => Context::Dockerfile,
            (Pane::Detail, Detail::Inspector(_)) => Context::Inspector,
        }
    }
}
