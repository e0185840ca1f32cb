//! Selection: by text (selectors), by predicate, by visual range; and planning a publish of
//! the selection.

use super::*;

impl App {
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
                self.message = Some(format!(
                    "{} `{text}`",
                    crate::util::words::count(ids.len(), "cell matches", "cells match")
                ));
                self.selection.extend(ids);
            }
            Ok(_) => {}
            Err(e) => self.message = Some(e.to_string()),
        }
    }

    pub(super) fn select_where(&mut self, pred: impl Fn(&Cell, &CellProgress) -> bool) -> usize {
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

    /// `r` and `c`: select the cells `pred` picks, or unselect them when all of them already
    /// are; the status line says which.
    pub(super) fn toggle_where(&mut self, what: &str, pred: impl Fn(&Cell, &CellProgress) -> bool) {
        let ids: Vec<String> = self
            .matrix
            .cells
            .iter()
            .filter(|c| pred(c, &self.progress.cells[&c.id]))
            .map(|c| c.id.clone())
            .collect();
        let words = crate::util::words::count(ids.len(), "cell", "cells");
        if !ids.is_empty() && ids.iter().all(|i| self.selection.contains(i)) {
            for i in &ids {
                self.selection.remove(i);
            }
            self.message = Some(format!("{what} unselected ({words})"));
        } else {
            self.selection.extend(ids);
            self.message = Some(format!("{what} selected ({words})"));
        }
    }

    /// Cells in the rectangle between the visual anchor and the focus.
    pub(super) fn visual_cells(&self) -> Vec<String> {
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

    /// Plan the publish of the targets and ask before doing it.
    pub(super) fn ask_publish(&mut self) {
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
}
