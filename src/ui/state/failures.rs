//! The failures view: the grid's failed cells grouped by cause, largest group first, with a
//! cursor; choosing a cause selects its cells (ready to build again), and `b` builds them.
//! The same grouping gives each cause its glyph for the grid's colour-by-cause mode.

use super::*;
use crate::model::cause::UNCLASSIFIED;

/// Glyphs of causes, by rank (the largest group gets the first); `?` is unclassified.
pub const CAUSE_GLYPHS: &[char] = &[
    'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L', 'M', 'N', 'P', 'Q', 'R', 'S', 'T', 'U',
    'V', 'W', 'X', 'Y', 'Z',
];
/// Glyph of failures no rule names, and of causes past the last glyph.
pub const OTHER_GLYPH: char = '?';

/// The failures view's state: which cause the cursor is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailuresView {
    pub cursor: usize,
}

/// One cause and the cells that failed of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseRow {
    pub name: String,
    pub hint: String,
    /// Cell ids, sorted.
    pub cells: Vec<String>,
    pub glyph: char,
}

impl App {
    /// Failed cells of the matrix grouped by cause: largest first (ties by name),
    /// unclassified last. A failed cell without a cause (recorded before causes were, or
    /// interrupted) counts as unclassified.
    pub fn cause_rows(&self) -> Vec<CauseRow> {
        let mut groups: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for c in &self.matrix.cells {
            let v = &self.progress.cells[&c.id];
            if !v.status.is_failed() {
                continue;
            }
            let (name, hint) = match &v.cause {
                Some(cause) => (cause.name.clone(), cause.hint.clone()),
                None => (UNCLASSIFIED.to_string(), String::new()),
            };
            groups
                .entry(name)
                .or_insert_with(|| (hint, vec![]))
                .1
                .push(c.id.clone());
        }
        let mut rows: Vec<CauseRow> = groups
            .into_iter()
            .map(|(name, (hint, mut cells))| {
                cells.sort();
                CauseRow {
                    name,
                    hint,
                    cells,
                    glyph: OTHER_GLYPH,
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.name == UNCLASSIFIED, std::cmp::Reverse(r.cells.len())));
        let mut next = CAUSE_GLYPHS.iter();
        for r in &mut rows {
            if r.name != UNCLASSIFIED {
                r.glyph = next.next().copied().unwrap_or(OTHER_GLYPH);
            }
        }
        rows
    }

    /// The glyph of a failed cell's cause (None for a cell that did not fail).
    pub fn cause_glyph(&self, rows: &[CauseRow], id: &str) -> Option<(char, usize)> {
        rows.iter()
            .enumerate()
            .find(|(_, r)| r.cells.binary_search_by(|c| c.as_str().cmp(id)).is_ok())
            .map(|(i, r)| (r.glyph, i))
    }

    /// The cells of the cause under the failures view's cursor.
    pub fn cause_cells(&self) -> Vec<String> {
        let Some(view) = self.failures else {
            return vec![];
        };
        self.cause_rows()
            .into_iter()
            .nth(view.cursor)
            .map(|r| r.cells)
            .unwrap_or_default()
    }

    /// Open or close the failures view.
    pub(super) fn toggle_failures(&mut self) {
        if self.failures.is_some() {
            self.failures = None;
            return;
        }
        let n = self.cause_rows().len();
        if n == 0 {
            self.message = Some("no failed cell".into());
            return;
        }
        self.failures = Some(FailuresView::default());
        self.pane = Pane::Grid;
    }

    /// An action in the failures view; None when the action is not the view's own (it then
    /// acts as anywhere else).
    pub(super) fn failures_act(&mut self, a: Action) -> Option<Vec<Effect>> {
        let cursor = self.failures?.cursor;
        let rows = self.cause_rows();
        let last = rows.len().saturating_sub(1);
        let mut move_to = |c: usize| {
            self.failures = Some(FailuresView {
                cursor: c.min(last),
            });
        };
        match a {
            Action::Up => move_to(cursor.saturating_sub(1)),
            Action::Down => move_to(cursor + 1),
            Action::Top => move_to(0),
            Action::Bottom => move_to(last),
            Action::SelectCause => {
                if let Some(r) = rows.get(cursor) {
                    self.selection = r.cells.iter().cloned().collect();
                    self.message = Some(format!(
                        "{} cells of {} selected: b builds them again",
                        r.cells.len(),
                        r.name
                    ));
                }
                self.failures = None;
            }
            Action::CloseFailures => self.failures = None,
            _ => return None,
        }
        Some(vec![])
    }
}
