//! The mouse: the wheel scrolls the pane under the pointer; a click on an arch tab shows that
//! arch, on a grid column header focuses that column, on the list view's header sorts by the
//! other key, on a grid cell or a list row focuses it, on the detail pane gives it the
//! keyboard.

use ratatui::layout::{Position, Rect};

use super::*;

/// Lines the wheel scrolls a text pane by, per notch.
pub const WHEEL_LINES: isize = 3;

/// Where the header's arch tabs start (after ` imagegrid ` and a space).
pub const TABS_X: u16 = 12;

/// An arch tab's label: the shown arch in brackets, so that it reads without colour.
pub fn tab_label(name: &str, shown: bool) -> String {
    if shown {
        format!("[{name}]")
    } else {
        format!(" {name} ")
    }
}

impl App {
    /// The arch whose header tab is at column `x` (single-arch view only).
    pub fn arch_tab_at(&self, x: u16) -> Option<usize> {
        if self.all_arches {
            return None;
        }
        let mut start = TABS_X;
        for (i, a) in self.matrix.arches.iter().enumerate() {
            let w = tab_label(&a.name, i == self.arch).chars().count() as u16;
            if x >= start && x < start + w {
                return Some(i);
            }
            start += w;
        }
        None
    }

    pub(super) fn on_mouse_inner(&mut self, m: MouseEvent) -> Vec<Effect> {
        let at = Position::new(m.column, m.row);
        let g = self.geometry;
        let inside = |r: Rect| r.contains(at);
        match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let up = m.kind == MouseEventKind::ScrollUp;
                if self.help_shown() {
                    let top = self.help_top as isize + if up { -WHEEL_LINES } else { WHEEL_LINES };
                    self.help_top = top.clamp(0, g.help_max_top as isize) as usize;
                } else if inside(g.detail) {
                    if matches!(self.detail, Detail::Inspector(_)) {
                        let pane = self.pane;
                        self.pane = Pane::Detail;
                        self.act(if up { Action::Up } else { Action::Down });
                        self.pane = pane;
                    } else {
                        self.scroll_log(if up { -WHEEL_LINES } else { WHEEL_LINES });
                    }
                } else if inside(g.cells) {
                    let pane = self.pane;
                    self.pane = Pane::Grid;
                    self.act(if up { Action::Up } else { Action::Down });
                    self.pane = pane;
                }
                vec![]
            }
            MouseEventKind::Down(MouseButton::Left) if self.mode == Mode::Normal => {
                if m.row == g.header.y && inside(g.header) {
                    if let Some(i) = self.arch_tab_at(m.column) {
                        self.arch = i;
                        self.move_focus(0, 0);
                    }
                } else if inside(g.detail) {
                    self.pane = Pane::Detail;
                } else if let Some(l) = g.list.filter(|_| inside(g.cells)) {
                    if m.row + 1 == l.y {
                        // The header line (CELL SIZE GROWTH): sort by the other key.
                        self.pane = Pane::Grid;
                        self.act(Action::SortBy);
                    } else if m.row >= l.y && m.row < l.y + l.rows {
                        let i = l.first + (m.row - l.y) as usize;
                        if i < self.list_cells().len() {
                            self.list_cursor = i;
                            self.pane = Pane::Grid;
                        }
                    }
                } else if let Some(gg) = g.grid {
                    self.click_grid(gg, m.column, m.row);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    /// A click in the grid: a cell focuses it, a column header focuses its column, a row
    /// name focuses its row.
    fn click_grid(&mut self, g: GridGeometry, x: u16, y: u16) {
        if g.cell_width == 0 || y < g.y || y > g.y + g.rows_shown {
            return;
        }
        let col = (x >= g.first_cell_x)
            .then(|| g.first_col + ((x - g.first_cell_x) / g.cell_width) as usize)
            .filter(|c| *c < self.columns.len());
        if y == g.y {
            if let Some(c) = col {
                self.col = c;
                self.pane = Pane::Grid;
                self.move_focus(0, 0);
            }
            return;
        }
        let row = g.first_row + (y - g.y - 1) as usize;
        if row >= self.visible_rows().len() {
            return;
        }
        self.row = row;
        if let Some(c) = col {
            self.col = c;
        }
        self.pane = Pane::Grid;
        self.move_focus(0, 0);
    }
}
