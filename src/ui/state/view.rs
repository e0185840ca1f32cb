//! The view's types: which pane and detail view are shown, each with its own data, the
//! modal state, and what the list and heat map sort and colour by.

use crate::publish::{TagLine, TagPlan};
use crate::store::BuildRecord;

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Grid,
    Detail,
}

/// What the detail pane shows, each view with its own data: nothing to keep in step by hand,
/// and data of a view not shown cannot linger.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// The focused cell's log.
    Log,
    /// Every running build's lines, prefixed with the cell.
    Merged,
    /// The focused cell's rendered Dockerfile.
    Dockerfile(Loadable<String>),
    /// Sizes over time, layers and a layer diff of the focused cell.
    Inspector(Loadable<Inspector>),
}

/// Data of one cell read off the event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Loadable<T> {
    /// Nothing asked for yet.
    Wanted,
    /// Asked for this cell.
    Loading(String),
    /// This cell's data.
    Ready(String, T),
}

impl<T> Loadable<T> {
    /// The cell asked for or held.
    pub fn cell(&self) -> Option<&str> {
        match self {
            Loadable::Wanted => None,
            Loadable::Loading(c) | Loadable::Ready(c, _) => Some(c),
        }
    }

    /// The data, when it is the given cell's.
    pub fn ready_for(&self, cell: &str) -> Option<&T> {
        match self {
            Loadable::Ready(c, t) if c == cell => Some(t),
            _ => None,
        }
    }

    /// Fill in what was asked for; data for another cell is dropped (focus moved on).
    pub(super) fn arrive(&mut self, cell: &str, value: T) {
        if matches!(self, Loadable::Loading(c) if c == cell) {
            *self = Loadable::Ready(cell.to_string(), value);
        }
    }
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
    Filter(super::Prompt),
    /// Typing a selector.
    Selector(super::Prompt),
    /// Typing a search of the text shown.
    Search(super::Prompt),
    Confirm(Confirm),
}

/// How grid cells are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heat {
    Status,
    /// By size, relative to the largest shown.
    Size,
    /// By change against the previous success.
    Growth,
    /// Failed cells by cause: a letter and a colour per cause (see the failures view).
    Cause,
}

/// Sort key of the list view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Size,
    Growth,
}

/// The size inspector's data and cursor (its cell is the [`Loadable`]'s).
#[derive(Debug, Clone, PartialEq)]
pub struct Inspector {
    /// Successful builds, oldest first.
    pub builds: Vec<BuildRecord>,
    /// The build shown (index into `builds`).
    pub cursor: usize,
    /// The build it is diffed against; None: the one before the cursor.
    pub base: Option<usize>,
    /// The first layer row shown on the right (it scrolls to a search's match).
    pub layers_top: usize,
    /// A search of the build rows then the layer rows (see [`Inspector::search_lines`]).
    pub search: Option<super::Search>,
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

    /// What the inspector's right side shows for the build under the cursor: its layer diff
    /// against the base, or its own layers when there is nothing to diff against.
    pub fn comparison(&self) -> Option<Comparison<'_>> {
        if let Some((base, shown)) = self.pair() {
            return Some(Comparison::Diff {
                base,
                shown,
                total: shown.size.unwrap_or(0) - base.size.unwrap_or(0),
                changes: crate::sizes::layer_diff(&base.layers, &shown.layers),
            });
        }
        let shown = self.builds.get(self.cursor)?;
        Some(Comparison::Layers {
            shown,
            layers: shown
                .layers
                .iter()
                .rev()
                .map(|l| (l.size, crate::sizes::instruction(&l.created_by)))
                .collect(),
        })
    }
}

/// The inspector's comparison of the build under the cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison<'a> {
    /// `shown` against `base`: the total change and the layers' changes, oldest first.
    Diff {
        base: &'a BuildRecord,
        shown: &'a BuildRecord,
        total: i64,
        changes: Vec<crate::sizes::LayerChange>,
    },
    /// The first success: its layers (size, instruction), newest first.
    Layers {
        shown: &'a BuildRecord,
        layers: Vec<(i64, String)>,
    },
}
