//! `Esc` and `z`: going back one level, and zooming the focused pane.

use super::*;

impl App {
    /// Back one level: the last thing set goes first. A visual range is cancelled; in the
    /// detail pane the search is cleared, then the zoom, then the keyboard goes back to the
    /// grid; in the grid the zoom, then the failures view, then the filter, then the list view. What is left clears the
    /// status line.
    pub fn back(&mut self) {
        if self.visual_anchor.take().is_some() {
            self.message = Some("visual range cancelled".into());
            return;
        }
        if self.pane == Pane::Detail {
            if self.clear_inspector_search() {
                self.message = Some("search cleared".into());
            } else if self.log_view.search.is_some() {
                self.log_view.search = None;
                self.log_view.matches.clear();
                self.log_view.current_match = 0;
            } else if self.zoom {
                self.zoom = false;
            } else {
                self.pane = Pane::Grid;
            }
            return;
        }
        if self.zoom {
            self.zoom = false;
        } else if self.failures.is_some() {
            self.failures = None;
        } else if !self.filter.is_empty() {
            self.set_filter(String::new());
            self.message = Some("filter cleared".into());
        } else if self.list.is_some() {
            self.list = None;
            self.list_cursor = 0;
        } else {
            self.message = None;
        }
    }

    /// `z`: the focused pane takes the screen between the header and the status line, or
    /// gives it back.
    pub fn toggle_zoom(&mut self) {
        self.zoom = !self.zoom;
        self.message = Some(
            if self.zoom {
                "zoomed: z or Esc gives the screen back"
            } else {
                "zoom off"
            }
            .into(),
        );
    }

    /// Set the row filter. Tokens naming a version keep only those columns; a token naming
    /// an arch shows that arch's tab.
    pub fn set_filter(&mut self, text: String) {
        let tokens: Vec<String> = text.split_whitespace().map(|t| t.to_lowercase()).collect();
        let all = self.matrix.columns();
        let wanted: Vec<String> = all
            .iter()
            .filter(|c| tokens.iter().any(|t| t == *c))
            .cloned()
            .collect();
        let focused = self.columns.get(self.col).cloned();
        self.columns = if wanted.is_empty() { all } else { wanted };
        self.col = focused
            .and_then(|f| self.columns.iter().position(|c| *c == f))
            .unwrap_or(0);
        if let Some(i) = self
            .matrix
            .arches
            .iter()
            .position(|a| tokens.contains(&a.name))
        {
            self.arch = i;
        }
        self.filter = text;
        self.row = 0;
    }
}
