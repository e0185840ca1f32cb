//! The TUI's state and the plain `update` functions that change it. No terminal here:
//! every transition is testable with `assert_eq!`.

use std::collections::{BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::keymap::{action_for, Action, Context};
use crate::config::TagConfig;
use crate::logs::{strip_sgr, LogBuffer};
use crate::matrix::{Cell, Matrix};
pub use crate::progress::CellProgress;
pub use crate::progress::Status;
use crate::progress::{summary_line, Notice, RunProgress};
use crate::publish::{Built, PublishEvent, TagLine, TagPlan};
use crate::scheduler::summary::is_error_line;
use crate::scheduler::BuildEvent;
use crate::store::BuildRecord;

/// Lines of one cell's log kept in memory (the full log is on disk).
pub const LOG_MAX_LINES: usize = 10_000;
/// Bytes of one cell's log kept in memory.
pub const LOG_MAX_BYTES: usize = 4 * 1024 * 1024;

/// An empty in-memory log of one cell.
fn new_log() -> LogBuffer {
    LogBuffer::new(LOG_MAX_LINES, LOG_MAX_BYTES)
}

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Grid,
    Detail,
}

/// What the detail pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailMode {
    Log,
    Dockerfile,
    /// Sizes over time, layers and a layer diff of the focused cell.
    Inspector,
    /// Every running build's lines, prefixed with the cell.
    Merged,
}

/// A question before work that costs or destroys.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    Build {
        cells: Vec<String>,
        no_cache: bool,
    },
    Cancel {
        cells: Vec<String>,
    },
    /// Publish the tags of these cells; `tags` lists every tag and alias with what it points
    /// to, and why it will not be published if it will not.
    Publish {
        cells: Vec<String>,
        registry: String,
        tags: Vec<TagLine>,
        /// The plan a yes runs, as shown.
        plan: Box<TagPlan>,
    },
    Quit {
        active: usize,
    },
}

/// One modal state at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    /// Typing a row filter.
    Filter(String),
    /// Typing a selector.
    Selector(String),
    /// Typing a log search.
    Search(String),
    Confirm(Confirm),
}

/// Scroll state of the log view.
#[derive(Debug, Clone, PartialEq)]
pub struct LogView {
    /// Stick to the end as lines arrive.
    pub follow: bool,
    /// Index of the top line shown when not following.
    pub top: usize,
    pub wrap: bool,
    pub search: Option<String>,
    /// Line indexes matching the search.
    pub matches: Vec<usize>,
    pub current_match: usize,
}

impl Default for LogView {
    fn default() -> Self {
        LogView {
            follow: true,
            top: 0,
            wrap: false,
            search: None,
            matches: vec![],
            current_match: 0,
        }
    }
}

/// How grid cells are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heat {
    Status,
    /// By size, relative to the largest shown.
    Size,
    /// By change against the previous success.
    Growth,
}

/// Sort key of the list view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Size,
    Growth,
}

/// The size inspector's data and cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspector {
    pub cell: String,
    /// Successful builds, oldest first.
    pub builds: Vec<BuildRecord>,
    /// The build shown (index into `builds`).
    pub cursor: usize,
    /// The build it is diffed against; None: the one before the cursor.
    pub base: Option<usize>,
}

impl Inspector {
    /// The (base, shown) builds of the diff.
    pub fn pair(&self) -> Option<(&BuildRecord, &BuildRecord)> {
        let shown = self.builds.get(self.cursor)?;
        let base = match self.base {
            Some(b) if b != self.cursor => self.builds.get(b)?,
            _ => self.builds.get(self.cursor.checked_sub(1)?)?,
        };
        Some((base, shown))
    }
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
    pub detail: DetailMode,
    pub log_view: LogView,
    pub message: Option<String>,
    pub mouse_capture: bool,
    pub merged: LogBuffer,
    pub dockerfile: Option<(String, String)>,
    /// Regression thresholds: bytes and percent.
    pub max_growth: (u64, f64),
    /// Height of the log view in lines, set by the last draw (for paging).
    pub log_height: usize,
    /// Grid area and column widths of the last draw, for mouse hits: (x, y, first column x, cell width).
    pub grid_geometry: Option<GridGeometry>,
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
    pub inspector: Option<Inspector>,
    /// The tag scheme publishing uses.
    pub tags: TagConfig,
    /// A publish in progress.
    pub publishing: Option<PublishProgress>,
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
            detail: DetailMode::Log,
            log_view: LogView::default(),
            message: None,
            mouse_capture: true,
            merged: LogBuffer::new(LOG_MAX_LINES, LOG_MAX_BYTES),
            dockerfile: None,
            max_growth,
            log_height: 10,
            grid_geometry: None,
            tick: 0,
            quit: false,
            log_requested: BTreeSet::new(),
            heat: Heat::Status,
            list: None,
            list_cursor: 0,
            inspector: None,
            tags: TagConfig::default(),
            publishing: None,
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

    fn row_matches(&self, distro: &str, token: &str) -> bool {
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

    /// Cells the next action applies to: the selection, else the focused cell.
    pub fn targets(&self) -> Vec<String> {
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
            DetailMode::Merged => Some(&self.merged),
            DetailMode::Log => self.focused().and_then(|id| self.logs.get(&id)),
            DetailMode::Dockerfile | DetailMode::Inspector => None,
        }
    }

    fn key_context(&self) -> Context {
        match self.pane {
            Pane::Grid => Context::Grid,
            Pane::Detail => Context::Detail,
        }
    }

    // ---- events from the core -------------------------------------------------------------

    /// Fold one engine event into the state: the shared reducer first, then what only the
    /// TUI keeps (logs in memory, the status line).
    pub fn on_event(&mut self, ev: BuildEvent) {
        match &ev {
            BuildEvent::Started { cell, .. } => {
                self.log_requested.remove(cell);
                self.logs.insert(cell.clone(), new_log());
            }
            BuildEvent::Log { cell, line } => {
                self.merged.push(format!("{cell} | {line}"));
                if self.progress.cells.contains_key(cell) {
                    self.logs
                        .entry(cell.clone())
                        .or_insert_with(new_log)
                        .push(line.clone());
                }
                self.refresh_search_if_shown(cell);
            }
            BuildEvent::Finished(r) if r.log_path.is_some() => {
                if self.focused().as_deref() == Some(r.cell.as_str()) {
                    self.log_requested.insert(r.cell.clone());
                } else {
                    // Nobody is looking: the log is on disk, read again on focus.
                    self.logs.remove(&r.cell);
                }
            }
            _ => {}
        }
        match self.progress.apply(&ev) {
            Notice::Retrying { cell, reason, .. } => {
                self.message = Some(format!("{cell}: {reason}"));
            }
            Notice::Storage(message) => self.message = Some(format!("storage: {message}")),
            Notice::Done(s) => self.message = Some(format!("run done: {}", summary_line(&s))),
            Notice::EngineDown { .. } | Notice::None => {}
        }
    }

    /// Fold one publish event into the state: progress on the status line.
    pub fn on_publish_event(&mut self, ev: PublishEvent) {
        let p = self.publishing.get_or_insert_with(PublishProgress::default);
        let text = match &ev {
            PublishEvent::Planned { pushes, .. } => {
                p.pushes = *pushes;
                ev.line()
            }
            PublishEvent::PushStarted {
                cell,
                engine,
                index,
                total,
                ..
            } => format!("publish: pushing {cell} from {engine} ({index}/{total})"),
            PublishEvent::Pushed { .. } => {
                p.pushed += 1;
                format!("publish: {} ({}/{})", ev.line(), p.pushed, p.pushes)
            }
            PublishEvent::ManifestPushed { .. } | PublishEvent::AliasPushed { .. } => {
                p.published += 1;
                format!("publish: {}", ev.line())
            }
            PublishEvent::NotPublished { .. } => {
                p.not_published += 1;
                format!("publish: {}", ev.line())
            }
            PublishEvent::PushFailed { .. } | PublishEvent::Retrying { .. } => {
                format!("publish: {}", ev.line())
            }
            PublishEvent::Done(_) => {
                self.publishing = None;
                format!("publish {}", ev.line())
            }
        };
        self.message = Some(text);
    }

    /// A rendered Dockerfile arrived; shown if the Dockerfile view still wants that cell.
    pub fn on_dockerfile_loaded(&mut self, cell: String, text: String) {
        if self.detail == DetailMode::Dockerfile && self.focused().as_deref() == Some(cell.as_str())
        {
            self.dockerfile = Some((cell, text));
        }
    }

    /// A publish stopped on an error (credentials, registry).
    pub fn on_publish_failed(&mut self, error: &str) {
        self.publishing = None;
        self.message = Some(format!("publish stopped: {error}"));
    }

    fn refresh_search_if_shown(&mut self, cell: &str) {
        let shown = match self.detail {
            DetailMode::Merged => true,
            DetailMode::Log => self.focused().as_deref() == Some(cell),
            DetailMode::Dockerfile | DetailMode::Inspector => false,
        };
        if shown && self.log_view.search.is_some() {
            self.recompute_matches();
        }
    }

    fn recompute_matches(&mut self) {
        let Some(q) = self.log_view.search.clone().filter(|q| !q.is_empty()) else {
            self.log_view.matches.clear();
            return;
        };
        let q = q.to_lowercase();
        let matches: Vec<usize> = self
            .shown_log()
            .map(|l| {
                l.iter()
                    .enumerate()
                    .filter(|(_, line)| strip_sgr(line).to_lowercase().contains(&q))
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default();
        self.log_view.matches = matches;
        if self.log_view.current_match >= self.log_view.matches.len() {
            self.log_view.current_match = 0;
        }
    }

    // ---- input -------------------------------------------------------------------------------

    /// Handle a key; returns what the runtime must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let mut fx = self.on_key_inner(key);
        fx.extend(self.focus_effects());
        fx
    }

    /// What the focused cell needs loaded: its stored log, or its Dockerfile.
    pub fn focus_effects(&mut self) -> Vec<Effect> {
        let Some(id) = self.focused() else {
            return vec![];
        };
        let unfocused: Vec<String> = self
            .log_requested
            .iter()
            .filter(|c| **c != id)
            .cloned()
            .collect();
        for cell in unfocused {
            self.log_requested.remove(&cell);
            if let Some(c) = self.progress.cells.get(&cell) {
                if !c.status.is_active() && c.log_path.is_some() {
                    self.logs.remove(&cell);
                }
            }
        }
        if self.detail == DetailMode::Inspector {
            if self.inspector.as_ref().is_none_or(|i| i.cell != id) {
                self.inspector = Some(Inspector {
                    cell: id.clone(),
                    builds: vec![],
                    cursor: 0,
                    base: None,
                });
                return vec![Effect::LoadHistory(id)];
            }
            return vec![];
        }
        if self.detail == DetailMode::Dockerfile
            && self.dockerfile.as_ref().is_none_or(|(c, _)| c != &id)
        {
            return vec![Effect::LoadDockerfile(id)];
        }
        let Some(c) = self.progress.cells.get(&id) else {
            return vec![];
        };
        match &c.log_path {
            Some(path)
                if self.logs.get(&id).is_none_or(|l| l.is_empty())
                    && !c.status.is_active()
                    && !self.log_requested.contains(&id) =>
            {
                self.log_requested.insert(id.clone());
                vec![Effect::LoadLog {
                    cell: id,
                    path: path.clone(),
                }]
            }
            _ => vec![],
        }
    }

    /// A cell's successful builds arrived for the inspector (oldest first).
    pub fn on_history_loaded(&mut self, cell: &str, builds: Vec<BuildRecord>) {
        if let Some(i) = self.inspector.as_mut().filter(|i| i.cell == cell) {
            i.cursor = builds.len().saturating_sub(1);
            i.base = None;
            i.builds = builds;
        }
    }

    /// A stored log's tail arrived: show it unless a new build has started meanwhile.
    pub fn on_log_loaded(&mut self, cell: &str, lines: Vec<String>, skipped_lines: u64) {
        if !self.log_requested.contains(cell) {
            return; // focus moved on while it was read: not wanted any more
        }
        let Some(c) = self.progress.cells.get(cell) else {
            return;
        };
        let log = self.logs.entry(cell.to_string()).or_insert_with(new_log);
        if log.is_empty() && !c.status.is_active() {
            if skipped_lines > 0 {
                log.push(format!(
                    "… {skipped_lines} earlier lines are in the log file"
                ));
            }
            for l in lines {
                log.push(l);
            }
        }
    }

    fn on_key_inner(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                vec![]
            }
            Mode::Confirm(c) => self.on_confirm_key(c, key),
            Mode::Filter(text) => self.on_prompt_key(text, key, |app, t| {
                app.filter = t;
                app.row = 0;
            }),
            Mode::Selector(text) => self.on_prompt_key(text, key, |app, t| app.select_by_text(&t)),
            Mode::Search(text) => self.on_prompt_key(text, key, |app, t| {
                app.log_view.search = Some(t).filter(|t| !t.is_empty());
                app.recompute_matches();
                app.jump_to_match(0);
            }),
            Mode::Normal => match action_for(&key, self.key_context()) {
                Some(a) => self.act(a),
                None => vec![],
            },
        }
    }

    fn on_prompt_key(
        &mut self,
        mut text: String,
        key: KeyEvent,
        apply: impl FnOnce(&mut App, String),
    ) -> Vec<Effect> {
        let set = |app: &mut App, t: String| {
            app.mode = match app.mode {
                Mode::Filter(_) => Mode::Filter(t),
                Mode::Selector(_) => Mode::Selector(t),
                Mode::Search(_) => Mode::Search(t),
                ref m => m.clone(),
            }
        };
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                apply(self, text);
            }
            KeyCode::Backspace => {
                text.pop();
                set(self, text);
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                text.push(c);
                set(self, text);
            }
            _ => {}
        }
        vec![]
    }

    fn on_confirm_key(&mut self, c: Confirm, key: KeyEvent) -> Vec<Effect> {
        let yes = matches!(key.code, KeyCode::Char('y') | KeyCode::Enter);
        let no = matches!(key.code, KeyCode::Char('n') | KeyCode::Esc);
        if !yes && !no {
            return vec![];
        }
        self.mode = Mode::Normal;
        if no {
            self.message = Some("cancelled nothing".into());
            return vec![];
        }
        match c {
            Confirm::Build { cells, no_cache } => {
                self.message = Some(format!(
                    "queued {} cells{}",
                    cells.len(),
                    if no_cache { " (no cache)" } else { "" }
                ));
                self.selection.clear();
                vec![Effect::Build { cells, no_cache }]
            }
            Confirm::Cancel { cells } => {
                self.message = Some(format!("cancelling {} builds", cells.len()));
                vec![Effect::Cancel(cells)]
            }
            Confirm::Publish { plan, tags, .. } => {
                let n = tags.iter().filter(|t| t.blocked.is_none()).count();
                self.message = Some(format!("publishing {n} tags and aliases…"));
                self.publishing = Some(PublishProgress::default());
                self.selection.clear();
                vec![Effect::Publish { plan }]
            }
            Confirm::Quit { .. } => {
                self.quit = true;
                vec![Effect::Quit]
            }
        }
    }

    /// Select by selector text (same syntax as the CLI).
    pub fn select_by_text(&mut self, text: &str) {
        let texts: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        match self.matrix.parse_selectors(&texts) {
            Ok(sels) if !sels.is_empty() => {
                let ids: Vec<String> = self
                    .matrix
                    .select_to_build(&sels)
                    .iter()
                    .map(|c| c.id.clone())
                    .collect();
                self.message = Some(format!("{} cells match `{text}`", ids.len()));
                self.selection.extend(ids);
            }
            Ok(_) => {}
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    fn select_where(&mut self, pred: impl Fn(&Cell, &CellProgress) -> bool) -> usize {
        let ids: Vec<String> = self
            .matrix
            .cells
            .iter()
            .filter(|c| pred(c, &self.progress.cells[&c.id]))
            .map(|c| c.id.clone())
            .collect();
        let n = ids.len();
        self.selection.extend(ids);
        n
    }

    /// Cells in the rectangle between the visual anchor and the focus.
    fn visual_cells(&self) -> Vec<String> {
        let Some((r0, c0)) = self.visual_anchor else {
            return vec![];
        };
        let rows = self.visible_rows();
        let (ra, rb) = (r0.min(self.row), r0.max(self.row));
        let (ca, cb) = (c0.min(self.col), c0.max(self.col));
        let mut out = vec![];
        for d in rows.iter().take(rb + 1).skip(ra) {
            for col in ca..=cb {
                out.extend(self.cells_at(d, col).iter().map(|c| c.id.clone()));
            }
        }
        out
    }

    fn move_focus(&mut self, dr: isize, dc: isize) {
        let rows = self.visible_rows().len();
        if rows == 0 {
            return;
        }
        self.row = (self.row as isize + dr).clamp(0, rows as isize - 1) as usize;
        self.col = (self.col as isize + dc).clamp(0, self.columns.len() as isize - 1) as usize;
        self.log_view = LogView {
            wrap: self.log_view.wrap,
            ..LogView::default()
        };
        if self.detail == DetailMode::Dockerfile {
            self.dockerfile = None;
        }
    }

    fn scroll_log(&mut self, delta: isize) {
        let len = self.shown_log().map(|l| l.len()).unwrap_or(0);
        let bottom = len.saturating_sub(self.log_height);
        let top = if self.log_view.follow {
            bottom
        } else {
            self.log_view.top
        };
        let new_top = (top as isize + delta).clamp(0, bottom as isize) as usize;
        self.log_view.top = new_top;
        // Scrolling up stops following; reaching the end resumes it.
        self.log_view.follow = new_top >= bottom;
    }

    fn jump_to_match(&mut self, idx: usize) {
        if self.log_view.matches.is_empty() {
            if self.log_view.search.is_some() {
                self.message = Some("no match".into());
            }
            return;
        }
        let n = self.log_view.matches.len();
        self.log_view.current_match = idx % n;
        let line = self.log_view.matches[self.log_view.current_match];
        self.log_view.follow = false;
        self.log_view.top = line.saturating_sub(self.log_height / 2);
    }

    /// Do an action.
    pub fn act(&mut self, a: Action) -> Vec<Effect> {
        let in_detail = self.pane == Pane::Detail;
        let page = self.log_height.max(1) as isize;
        match a {
            Action::Up | Action::Down if in_detail && self.detail == DetailMode::Inspector => {
                if let Some(i) = self.inspector.as_mut() {
                    let n = i.builds.len();
                    if n > 0 {
                        i.cursor = if a == Action::Up {
                            i.cursor.saturating_sub(1)
                        } else {
                            (i.cursor + 1).min(n - 1)
                        };
                    }
                }
            }
            Action::Up | Action::Down if self.list.is_some() && !in_detail => {
                let n = self.list_cells().len();
                self.list_cursor = if a == Action::Up {
                    self.list_cursor.saturating_sub(1)
                } else {
                    (self.list_cursor + 1).min(n.saturating_sub(1))
                };
            }
            Action::Up if in_detail => self.scroll_log(-1),
            Action::Down if in_detail => self.scroll_log(1),
            Action::PageUp if in_detail => self.scroll_log(-page),
            Action::PageDown if in_detail => self.scroll_log(page),
            Action::Top if in_detail => self.scroll_log(isize::MIN / 2),
            Action::Bottom if in_detail => {
                self.log_view.follow = true;
            }
            Action::Up => self.move_focus(-1, 0),
            Action::Down => self.move_focus(1, 0),
            Action::Left => self.move_focus(0, -1),
            Action::Right => self.move_focus(0, 1),
            Action::Top => self.move_focus(isize::MIN / 2, 0),
            Action::Bottom => self.move_focus(isize::MAX / 2, 0),
            Action::PageUp => self.move_focus(-10, 0),
            Action::PageDown => self.move_focus(10, 0),
            Action::RowStart => self.move_focus(0, isize::MIN / 2),
            Action::RowEnd => self.move_focus(0, isize::MAX / 2),
            Action::NextArch | Action::PrevArch => {
                let n = self.matrix.arches.len().max(1);
                self.arch = if a == Action::NextArch {
                    (self.arch + 1) % n
                } else {
                    (self.arch + n - 1) % n
                };
                self.move_focus(0, 0);
            }
            Action::ToggleArchView => self.all_arches = !self.all_arches,
            Action::ToggleSelect => {
                let rows = self.visible_rows();
                if let Some(d) = rows.get(self.row).map(|s| s.to_string()) {
                    let ids: Vec<String> = self
                        .cells_at(&d, self.col)
                        .iter()
                        .map(|c| c.id.clone())
                        .collect();
                    let all_in = ids.iter().all(|i| self.selection.contains(i));
                    for i in ids {
                        if all_in {
                            self.selection.remove(&i);
                        } else {
                            self.selection.insert(i);
                        }
                    }
                }
            }
            Action::Visual => {
                if self.visual_anchor.is_some() {
                    let ids = self.visual_cells();
                    self.message = Some(format!("selected a range of {} cells", ids.len()));
                    self.selection.extend(ids);
                    self.visual_anchor = None;
                } else {
                    self.visual_anchor = Some((self.row, self.col));
                    self.message = Some("visual: move, then v to select the range".into());
                }
            }
            Action::SelectRow => {
                if let Some(d) = self.visible_rows().get(self.row).map(|s| s.to_string()) {
                    let all = self.all_arches;
                    let arch = self.current_arch().to_string();
                    self.select_where(|c, _| c.distro == d && (all || c.arch == arch));
                }
            }
            Action::SelectColumn => {
                let column = self.columns[self.col].clone();
                let rows: BTreeSet<String> =
                    self.visible_rows().iter().map(|s| s.to_string()).collect();
                let all = self.all_arches;
                let arch = self.current_arch().to_string();
                self.select_where(|c, _| {
                    c.version_part() == column
                        && rows.contains(&c.distro)
                        && (all || c.arch == arch)
                });
            }
            Action::SelectFailed => {
                let n = self.select_where(|c, v| c.in_all() && v.status.is_failed());
                self.message = Some(format!("{n} failed cells selected"));
            }
            Action::SelectStale => {
                let n = self.select_where(|c, v| c.in_all() && v.stale);
                self.message = Some(format!("{n} stale cells selected"));
            }
            Action::SelectArch => {
                let arch = self.current_arch().to_string();
                self.select_where(|c, _| c.arch == arch);
            }
            Action::SelectBySelector => self.mode = Mode::Selector(String::new()),
            Action::ClearSelection => {
                self.selection.clear();
                self.visual_anchor = None;
            }
            Action::Build | Action::RebuildNoCache => {
                let cells = self.targets();
                if cells.is_empty() {
                    self.message = Some("nothing to build: no cell here for this arch".into());
                } else {
                    self.mode = Mode::Confirm(Confirm::Build {
                        cells,
                        no_cache: a == Action::RebuildNoCache,
                    });
                }
            }
            Action::RetryFailed => {
                let cells: Vec<String> = self
                    .matrix
                    .cells
                    .iter()
                    .filter(|c| c.in_all() && self.progress.is_failed(&c.id))
                    .map(|c| c.id.clone())
                    .collect();
                if cells.is_empty() {
                    self.message = Some("no failed cell".into());
                } else {
                    self.mode = Mode::Confirm(Confirm::Build {
                        cells,
                        no_cache: false,
                    });
                }
            }
            Action::Cancel => {
                let cells: Vec<String> = self
                    .targets()
                    .into_iter()
                    .filter(|id| self.progress.cells[id].status.is_active())
                    .collect();
                if cells.is_empty() {
                    self.message = Some(
                        "nothing to cancel: no queued or running build among the targets".into(),
                    );
                } else {
                    self.mode = Mode::Confirm(Confirm::Cancel { cells });
                }
            }
            Action::Publish => self.ask_publish(),
            Action::Filter => self.mode = Mode::Filter(self.filter.clone()),
            Action::FocusDetail => self.pane = Pane::Detail,
            Action::FocusGrid => self.pane = Pane::Grid,
            Action::ShowDockerfile => {
                if self.detail == DetailMode::Dockerfile {
                    self.detail = DetailMode::Log;
                } else {
                    // focus_effects() asks for the focused cell's Dockerfile.
                    self.detail = DetailMode::Dockerfile;
                }
            }
            Action::MergedLogs => {
                self.detail = if self.detail == DetailMode::Merged {
                    DetailMode::Log
                } else {
                    DetailMode::Merged
                };
                self.log_view = LogView {
                    wrap: self.log_view.wrap,
                    ..LogView::default()
                };
            }
            Action::Follow => self.log_view.follow = true,
            Action::Wrap => self.log_view.wrap = !self.log_view.wrap,
            Action::Search => {
                self.mode = Mode::Search(self.log_view.search.clone().unwrap_or_default())
            }
            Action::NextMatch => self.jump_to_match(self.log_view.current_match + 1),
            Action::PrevMatch => {
                let n = self.log_view.matches.len().max(1);
                self.jump_to_match(self.log_view.current_match + n - 1)
            }
            Action::FirstError => {
                let hit = self
                    .shown_log()
                    .and_then(|l| l.iter().position(|line| is_error_line(&strip_sgr(line))));
                match hit {
                    Some(i) => {
                        self.log_view.follow = false;
                        self.log_view.top = i.saturating_sub(2);
                    }
                    None => self.message = Some("no error line in the log held in memory".into()),
                }
            }
            Action::SaveLog => {
                if let Some(id) = self.focused() {
                    return vec![Effect::SaveLog { cell: id }];
                }
            }
            Action::ToggleMouse => {
                self.mouse_capture = !self.mouse_capture;
                self.message = Some(
                    if self.mouse_capture {
                        "mouse capture on"
                    } else {
                        "mouse capture off: the terminal selects text"
                    }
                    .into(),
                );
                return vec![Effect::SetMouse(self.mouse_capture)];
            }
            Action::Inspect => {
                self.detail = if self.detail == DetailMode::Inspector {
                    DetailMode::Log
                } else {
                    DetailMode::Inspector
                };
            }
            Action::HeatMap => {
                self.heat = match self.heat {
                    Heat::Status => Heat::Size,
                    Heat::Size => Heat::Growth,
                    Heat::Growth => Heat::Status,
                };
                let what = match self.heat {
                    Heat::Status => "status",
                    Heat::Size => "size",
                    Heat::Growth => "growth",
                };
                self.message = Some(format!("grid coloured by {what}"));
            }
            Action::ListView => {
                self.list = if self.list.is_some() {
                    None
                } else {
                    Some(SortKey::Size)
                };
                self.list_cursor = 0;
            }
            Action::SortBy => {
                if let Some(k) = self.list {
                    self.list = Some(if k == SortKey::Size {
                        SortKey::Growth
                    } else {
                        SortKey::Size
                    });
                    self.list_cursor = 0;
                }
            }
            Action::DiffBase => {
                if let Some(i) = self.inspector.as_mut() {
                    i.base = Some(i.cursor);
                    self.message = Some("diff base set: move to another build to compare".into());
                }
            }
            Action::Help => self.mode = Mode::Help,
            Action::Quit => {
                let active = self.active_count();
                if active > 0 {
                    self.mode = Mode::Confirm(Confirm::Quit { active });
                } else {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
            }
        }
        vec![]
    }

    /// Plan the publish of the targets and ask before doing it.
    fn ask_publish(&mut self) {
        if self.publishing.is_some() {
            self.message = Some("a publish is already running".into());
            return;
        }
        let cells = self.targets();
        let refs: Vec<&Cell> = cells.iter().filter_map(|id| self.matrix.cell(id)).collect();
        if refs.is_empty() {
            self.message = Some("nothing to publish: no cell here for this arch".into());
            return;
        }
        match crate::publish::plan(&self.matrix, &self.tags, &refs, &self.progress.built) {
            Err(e) => self.message = Some(format!("cannot publish: {e}")),
            Ok(plan) if plan.publishable().next().is_none() => {
                let why = plan
                    .tags
                    .iter()
                    .find_map(|t| t.blocked().map(|b| format!("{}: {b}", t.tag)))
                    .unwrap_or_default();
                self.message = Some(format!("nothing to publish: {why}"));
            }
            Ok(plan) => {
                self.mode = Mode::Confirm(Confirm::Publish {
                    cells,
                    registry: crate::publish::auth::display_registry(&plan.registry),
                    tags: plan.lines(),
                    plan: Box::new(plan),
                })
            }
        }
    }

    /// Mouse: click focuses a cell, the wheel moves or scrolls.
    pub fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let mut fx = self.on_mouse_inner(m);
        fx.extend(self.focus_effects());
        fx
    }

    fn on_mouse_inner(&mut self, m: MouseEvent) -> Vec<Effect> {
        match m.kind {
            MouseEventKind::ScrollUp => self.act(Action::Up),
            MouseEventKind::ScrollDown => self.act(Action::Down),
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(g) = self.grid_geometry {
                    if m.row > g.y
                        && m.row <= g.y + g.rows_shown
                        && m.column >= g.first_cell_x
                        && g.cell_width > 0
                    {
                        let row = g.first_row + (m.row - g.y - 1) as usize;
                        let col =
                            g.first_col + ((m.column - g.first_cell_x) / g.cell_width) as usize;
                        if row < self.visible_rows().len() && col < self.columns.len() {
                            self.row = row;
                            self.col = col;
                            self.pane = Pane::Grid;
                        }
                    }
                }
                vec![]
            }
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::CellResult;
    use crate::store::BuildStatus;

    fn app() -> App {
        App::new(
            Matrix::builtin(),
            &HashMap::new(),
            &BTreeSet::new(),
            (10_000_000, 5.0),
        )
    }

    fn key(c: char) -> KeyEvent {
        let m = if c.is_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        KeyEvent::new(KeyCode::Char(c), m)
    }

    fn finished(
        cell: &str,
        status: BuildStatus,
        size: Option<i64>,
        prev: Option<i64>,
    ) -> BuildEvent {
        BuildEvent::Finished(CellResult {
            cell: cell.into(),
            status,
            build_id: Some(1),
            engine: Some("e".into()),
            image_id: None,
            size,
            previous_size: prev,
            failure: None,
            duration_secs: None,
            log_path: None,
        })
    }

    #[test]
    fn focus_moves_and_clamps() {
        let mut a = app();
        assert_eq!(a.focused().as_deref(), Some("alpine-3.24/opam/amd64"));
        a.on_key(key('l'));
        assert_eq!(a.focused().as_deref(), Some("alpine-3.24/4.14/amd64"));
        a.on_key(key('k'));
        assert_eq!(a.row, 0);
        a.on_key(key('G'));
        assert_eq!(a.row, a.visible_rows().len() - 1);
        a.on_key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE));
        assert_eq!(a.col, a.columns.len() - 1);
        a.on_key(key(']'));
        assert_eq!(a.current_arch(), "arm64");
    }

    #[test]
    fn selection_row_column_range_and_selector() {
        let mut a = app();
        a.on_key(key(' '));
        assert_eq!(a.selection.len(), 1);
        a.on_key(key(' '));
        assert!(a.selection.is_empty());
        a.on_key(key('r'));
        assert_eq!(a.selection.len(), 6, "alpine amd64: opam + 5 versions");
        a.on_key(key('x'));
        a.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)); // every arch
        a.on_key(key('r'));
        assert_eq!(a.selection.len(), 12);
        a.on_key(key('x'));
        a.on_key(key('v'));
        a.on_key(key('j'));
        a.on_key(key('l'));
        a.on_key(key('v'));
        // alpine (2 arches) + archlinux (1 arch), two columns each.
        assert_eq!(a.selection.len(), 6);
        a.on_key(key('x'));
        a.on_key(key(':'));
        for c in "debian-13/5.*/arm64".chars() {
            a.on_key(key(c));
        }
        a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(a.selection.len(), 4);
        a.on_key(key(':'));
        for c in "nope-1".chars() {
            a.on_key(key(c));
        }
        a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert!(a
            .message
            .as_deref()
            .unwrap()
            .contains("unknown distro `nope-1`"));
    }

    #[test]
    fn build_and_cancel_go_through_confirm() {
        let mut a = app();
        a.on_key(key('r'));
        assert!(a.on_key(key('b')).is_empty());
        assert!(
            matches!(&a.mode, Mode::Confirm(Confirm::Build { cells, no_cache: false }) if cells.len() == 6)
        );
        let fx = a.on_key(key('y'));
        assert!(matches!(&fx[..], [Effect::Build { cells, .. }] if cells.len() == 6));
        assert!(a.selection.is_empty());
        // Nothing is running: cancel has nothing to do.
        a.on_key(key('X'));
        assert_eq!(a.mode, Mode::Normal);
        a.on_event(BuildEvent::Queued {
            cell: "alpine-3.24/opam/amd64".into(),
        });
        a.on_key(key('X'));
        assert!(
            matches!(&a.mode, Mode::Confirm(Confirm::Cancel { cells }) if cells == &["alpine-3.24/opam/amd64".to_string()])
        );
        assert!(a.on_key(key('n')).is_empty());
        // Quit asks while something is active.
        a.on_key(key('q'));
        assert!(matches!(a.mode, Mode::Confirm(Confirm::Quit { active: 1 })));
        assert_eq!(a.on_key(key('y')), vec![Effect::Quit]);
        assert!(a.quit);
    }

    #[test]
    fn events_fold_into_cells() {
        let mut a = app();
        let id = "alpine-3.24/opam/amd64";
        a.on_event(BuildEvent::Queued { cell: id.into() });
        assert_eq!(a.progress.cells[id].status, Status::Queued);
        a.on_event(BuildEvent::Started {
            cell: id.into(),
            engine: "e".into(),
            build_id: 7,
            emulated: false,
        });
        a.on_event(BuildEvent::Step {
            cell: id.into(),
            current: 2,
            total: 9,
            name: "RUN x".into(),
        });
        assert_eq!(a.progress.cells[id].step, Some((2, 9)));
        a.on_event(BuildEvent::Log {
            cell: id.into(),
            line: "hello".into(),
        });
        assert_eq!(a.log_of(id).len(), 1);
        assert_eq!(a.merged.len(), 1);
        a.on_event(finished(
            id,
            BuildStatus::Succeeded,
            Some(120_000_000),
            Some(100_000_000),
        ));
        assert_eq!(a.progress.cells[id].status, Status::Succeeded);
        assert_eq!(a.delta(id), Some(20_000_000));
        assert!(a.regressed(id));
        a.on_event(finished(
            "alpine-3.24/4.14/amd64",
            BuildStatus::Failed,
            None,
            None,
        ));
        a.on_key(key('F'));
        assert_eq!(
            a.selection.iter().cloned().collect::<Vec<_>>(),
            ["alpine-3.24/4.14/amd64"]
        );
    }

    #[test]
    fn follow_stops_on_scroll_up_and_resumes_at_end() {
        let mut a = app();
        let id = a.focused().unwrap();
        for i in 0..100 {
            a.on_event(BuildEvent::Log {
                cell: id.clone(),
                line: format!("line {i}{}", if i == 40 { " error: boom" } else { "" }),
            });
        }
        a.log_height = 10;
        a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(a.pane, Pane::Detail);
        assert!(a.log_view.follow);
        a.on_key(key('k'));
        assert!(!a.log_view.follow);
        assert_eq!(a.log_view.top, 89);
        a.on_key(key('j'));
        assert!(a.log_view.follow, "back at the end: following again");
        a.on_key(key('e'));
        assert_eq!(a.log_view.top, 38);
        a.on_key(key('/'));
        for c in "line 5".chars() {
            a.on_key(key(c));
        }
        a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(a.log_view.matches.len(), 11, "line 5 and line 50..59");
        a.on_key(key('n'));
        assert_eq!(a.log_view.current_match, 1);
        a.on_key(key('N'));
        a.on_key(key('N'));
        assert_eq!(a.log_view.current_match, 10);
        a.on_key(key('G'));
        assert!(a.log_view.follow);
    }

    #[test]
    fn filter_by_name_and_state() {
        let mut a = app();
        a.on_key(key('/'));
        for c in "debian".chars() {
            a.on_key(key(c));
        }
        a.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert!(a.visible_rows().iter().all(|d| d.starts_with("debian")));
        a.on_event(finished(
            "ubuntu-24.04/5.4/amd64",
            BuildStatus::Failed,
            None,
            None,
        ));
        a.filter = "failed".into();
        assert_eq!(a.visible_rows(), ["ubuntu-24.04"]);
    }

    #[test]
    fn publish_plans_asks_and_reports_progress() {
        let mut a = app();
        // Nothing built: nothing to publish, and the reason says what is missing.
        a.on_key(key('P'));
        assert_eq!(a.mode, Mode::Normal);
        let m = a.message.clone().unwrap();
        assert!(
            m.starts_with("nothing to publish: alpine-3.24-opam: not every arch is built: missing amd64 (alpine-3.24/opam/amd64), arm64"),
            "{m}"
        );
        // Both arches of the focused cell's tag built (one from history, one just now).
        a.set_publish_context(
            TagConfig {
                registry: "127.0.0.1:5000".into(),
                ..TagConfig::default()
            },
            [(
                "alpine-3.24/opam/arm64".to_string(),
                Built {
                    build_id: 1,
                    engine: "arm".into(),
                    image_id: "sha256:1".into(),
                    size: Some(5),
                },
            )]
            .into(),
        );
        a.on_event(BuildEvent::Finished(CellResult {
            image_id: Some("sha256:2".into()),
            ..match finished(
                "alpine-3.24/opam/amd64",
                BuildStatus::Succeeded,
                Some(6),
                None,
            ) {
                BuildEvent::Finished(r) => r,
                _ => unreachable!(),
            }
        }));
        assert_eq!(a.progress.built["alpine-3.24/opam/amd64"].engine, "e");
        assert!(a.on_key(key('P')).is_empty(), "asks first");
        let Mode::Confirm(Confirm::Publish {
            cells,
            registry,
            tags,
            plan,
        }) = a.mode.clone()
        else {
            panic!("{:?}", a.mode)
        };
        assert_eq!(cells, ["alpine-3.24/opam/amd64"]);
        assert_eq!(registry, "127.0.0.1:5000");
        assert_eq!(
            tags,
            [TagLine {
                tag: "alpine-3.24-opam".into(),
                alias: false,
                points_to: "amd64, arm64".into(),
                blocked: None
            }]
        );
        assert!(a.on_key(key('n')).is_empty());
        assert_eq!(a.publishing, None);
        a.on_key(key('P'));
        // What runs is the plan the confirm showed.
        assert_eq!(a.on_key(key('y')), vec![Effect::Publish { plan }]);
        assert!(a.publishing.is_some());
        a.on_key(key('P'));
        assert_eq!(a.message.as_deref(), Some("a publish is already running"));
        // Progress per push on the status line.
        a.on_publish_event(PublishEvent::Planned {
            registry: "r".into(),
            tags: 1,
            aliases: 0,
            pushes: 2,
            credentials: "anonymous".into(),
        });
        a.on_publish_event(PublishEvent::PushStarted {
            cell: "alpine-3.24/opam/arm64".into(),
            engine: "arm".into(),
            reference: "x".into(),
            index: 2,
            total: 2,
        });
        assert_eq!(
            a.message.as_deref(),
            Some("publish: pushing alpine-3.24/opam/arm64 from arm (2/2)")
        );
        a.on_publish_event(PublishEvent::Pushed {
            cell: "alpine-3.24/opam/arm64".into(),
            engine: "arm".into(),
            reference: "x".into(),
            digest: "sha256:d".into(),
            size: Some(2_000_000),
            compressed_size: 1_000_000,
            secs: 0.5,
        });
        assert_eq!(a.publishing.as_ref().unwrap().pushed, 1);
        assert!(a.message.as_deref().unwrap().ends_with("(1/2)"));
        a.on_publish_event(PublishEvent::Done(Default::default()));
        assert_eq!(a.publishing, None);
        assert!(a.message.as_deref().unwrap().starts_with("publish done:"));
        a.on_key(key('P'));
        a.on_key(key('y'));
        a.on_publish_failed("registry r: refused");
        assert_eq!(a.publishing, None);
        assert_eq!(
            a.message.as_deref(),
            Some("publish stopped: registry r: refused")
        );
    }

    #[test]
    fn ended_logs_are_released_out_of_view_and_read_again_on_focus() {
        let mut a = app();
        let here = a.focused().unwrap();
        a.col = 1;
        let there = a.focused().unwrap();
        a.col = 0;
        for (n, id) in [&here, &there].into_iter().enumerate() {
            a.on_event(BuildEvent::Started {
                cell: id.clone(),
                engine: "e".into(),
                build_id: n as i64,
                emulated: false,
            });
            a.on_event(BuildEvent::Log {
                cell: id.clone(),
                line: "a line".into(),
            });
            let BuildEvent::Finished(mut r) = finished(id, BuildStatus::Failed, None, None) else {
                unreachable!()
            };
            r.log_path = Some(format!("/data/logs/{n}.log"));
            a.on_event(BuildEvent::Finished(r));
        }
        assert_eq!(a.log_of(&here).len(), 1, "in view: kept");
        assert!(a.log_of(&there).is_empty(), "out of view: released");
        a.on_key(key('l'));
        assert!(a.log_of(&here).is_empty(), "focus left it: released");
        a.on_log_loaded(&here, vec!["late".into()], 0);
        assert!(
            a.log_of(&here).is_empty(),
            "a read that arrives late is dropped"
        );
        a.on_log_loaded(&there, vec!["a line".into()], 0);
        assert_eq!(a.log_of(&there).len(), 1, "read again from disk");
        let fx = a.on_key(key('h'));
        assert_eq!(
            fx,
            vec![Effect::LoadLog {
                cell: here.clone(),
                path: "/data/logs/0.log".into()
            }]
        );
    }

    #[test]
    fn stored_log_is_loaded_once_on_focus() {
        let mut latest = HashMap::new();
        let rec = crate::store::BuildRecord {
            id: 4,
            cell: "alpine-3.24/opam/amd64".into(),
            engine: "e".into(),
            inputs: "h".into(),
            status: BuildStatus::Failed,
            started_at: "2026-11-24T10:00:00Z".into(),
            finished_at: None,
            image_id: None,
            size: None,
            compressed_size: None,
            layers: vec![],
            failure: Some("boom".into()),
            log_path: Some("/data/logs/4.log".into()),
            tag: None,
            base_image: None,
        };
        latest.insert(rec.cell.clone(), rec);
        let mut a = App::new(Matrix::builtin(), &latest, &BTreeSet::new(), (1, 1.0));
        let fx = a.focus_effects();
        assert_eq!(
            fx,
            vec![Effect::LoadLog {
                cell: "alpine-3.24/opam/amd64".into(),
                path: "/data/logs/4.log".into()
            }]
        );
        assert!(a.focus_effects().is_empty(), "asked once");
        a.on_log_loaded("alpine-3.24/opam/amd64", vec!["a".into(), "b".into()], 3);
        assert_eq!(a.log_of("alpine-3.24/opam/amd64").len(), 3);
        // The Dockerfile view asks for the focused cell's Dockerfile as focus moves.
        let fx = a.on_key(key('d'));
        assert_eq!(
            fx,
            vec![Effect::LoadDockerfile("alpine-3.24/opam/amd64".into())]
        );
        a.dockerfile = Some(("alpine-3.24/opam/amd64".into(), "FROM x".into()));
        let fx = a.on_key(key('l'));
        assert_eq!(
            fx,
            vec![Effect::LoadDockerfile("alpine-3.24/4.14/amd64".into())]
        );
    }
}
