//! The size inspector's rows as text, and its search: `/` looks in the build rows (id, date,
//! size) then in the layer rows of the build shown; `n`/`N` move the cursor to a matching
//! build or scroll the layers to a matching layer.

use super::search::{top_showing, Search};
use super::*;
use crate::sizes::Change;
use crate::util::units::human_size;

/// One row of the inspector's right side: a layer, its size and its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRow {
    /// How the layer changed against the base (None: the first success, nothing to diff).
    pub change: Option<Change>,
    /// The size columns: `size delta` for a diff, `size` for the first success.
    pub sizes: String,
    /// The Dockerfile instruction that made it.
    pub instruction: String,
}

impl Inspector {
    /// The build list's rows, oldest first, without the diff-base marker:
    /// `#12    11-29 14:03     1.2 GB`.
    pub fn build_rows(&self) -> Vec<String> {
        self.builds
            .iter()
            .map(|b| {
                format!(
                    "#{:<5} {} {:>9}",
                    b.id,
                    b.started_at
                        .get(5..16)
                        .unwrap_or(&b.started_at)
                        .replace('T', " "),
                    b.size.map(human_size).unwrap_or_default()
                )
            })
            .collect()
    }

    /// The right side's heading: what is compared.
    pub fn layers_title(&self) -> Option<String> {
        Some(match self.comparison()? {
            Comparison::Diff {
                base, shown, total, ..
            } => format!(
                "build #{} vs #{}: {}{}",
                shown.id,
                base.id,
                if total >= 0 { "+" } else { "-" },
                human_size(total.abs())
            ),
            Comparison::Layers { shown, .. } => format!(
                "layers of build #{} (the first success: nothing to diff)",
                shown.id
            ),
        })
    }

    /// The right side's rows: the layer diff of the build shown, or its own layers.
    pub fn layer_rows(&self) -> Vec<LayerRow> {
        match self.comparison() {
            Some(Comparison::Diff { changes, .. }) => changes
                .into_iter()
                .map(|c| {
                    let d = c.delta();
                    let delta = if d == 0 {
                        String::new()
                    } else {
                        format!("{}{}", if d > 0 { "+" } else { "-" }, human_size(d.abs()))
                    };
                    LayerRow {
                        change: Some(c.change),
                        sizes: format!(
                            "{:>9} {:>9}",
                            c.after.or(c.before).map(human_size).unwrap_or_default(),
                            delta
                        ),
                        instruction: c.instruction,
                    }
                })
                .collect(),
            Some(Comparison::Layers { layers, .. }) => layers
                .into_iter()
                .map(|(size, instruction)| LayerRow {
                    change: None,
                    sizes: format!("{:>9}", human_size(size)),
                    instruction,
                })
                .collect(),
            None => vec![],
        }
    }

    /// What the search looks in: the build rows, then the layer rows (sizes and
    /// instruction). A match at `i < builds.len()` is a build, else layer `i - builds.len()`.
    pub fn search_lines(&self) -> Vec<String> {
        let mut lines = self.build_rows();
        lines.extend(
            self.layer_rows()
                .into_iter()
                .map(|r| format!("{} {}", r.sizes, r.instruction)),
        );
        lines
    }

    /// Put the cursor on build `i`: its layers are shown from the top and the search looks
    /// in them.
    pub fn set_cursor(&mut self, i: usize) {
        if i != self.cursor {
            self.cursor = i;
            self.layers_top = 0;
        }
        if let Some(mut s) = self.search.take() {
            s.recompute(&self.search_lines());
            self.search = Some(s);
        }
    }

    /// Show the search's current match: a build gets the cursor, a layer is scrolled to in a
    /// right side of `room` rows.
    fn show_match(&mut self, room: usize) {
        let Some(line) = self.search.as_ref().and_then(Search::current_line) else {
            return;
        };
        let n = self.builds.len();
        if line < n {
            self.set_cursor(line);
        } else {
            let len = self.layer_rows().len();
            self.layers_top = top_showing(line - n, room.max(1), len);
        }
    }
}

impl App {
    /// Rows of layers the inspector's right side shows (its heading takes one).
    fn layer_room(&self) -> usize {
        self.geometry.log_height.saturating_sub(1)
    }

    /// Search the inspector for `query` (empty: clear the search) and show the first match.
    pub fn search_inspector(&mut self, query: &str) {
        let room = self.layer_room();
        let Detail::Inspector(Loadable::Ready(_, i)) = &mut self.detail else {
            self.message = Some("the inspector has no builds to search yet".into());
            return;
        };
        i.search = Search::new(query, &i.search_lines());
        i.show_match(room);
        self.message = Some(
            i.search
                .as_ref()
                .map_or("search cleared".into(), Search::describe),
        );
    }

    /// `n`/`N` in the inspector: the next or previous match.
    pub fn step_inspector_match(&mut self, forward: bool) {
        let room = self.layer_room();
        let Detail::Inspector(Loadable::Ready(_, i)) = &mut self.detail else {
            return;
        };
        let Some(s) = &mut i.search else {
            self.message = Some("no search: / searches the builds and layers".into());
            return;
        };
        s.step(forward);
        let msg = s.describe();
        i.show_match(room);
        self.message = Some(msg);
    }

    /// The inspector's search, when it has one (Esc clears it first).
    pub fn inspector_search(&self) -> Option<&Search> {
        match &self.detail {
            Detail::Inspector(Loadable::Ready(_, i)) => i.search.as_ref(),
            _ => None,
        }
    }

    /// Clear the inspector's search; whether there was one.
    pub fn clear_inspector_search(&mut self) -> bool {
        match &mut self.detail {
            Detail::Inspector(Loadable::Ready(_, i)) => i.search.take().is_some(),
            _ => false,
        }
    }
}
