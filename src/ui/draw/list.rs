//! The list view, in the grid's place: cells sorted by size or growth.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::ui::state::{App, ListGeometry, Pane, SortKey};
use crate::ui::theme::{self, glyph, pane_block};
use crate::util::units::human_size;

/// The list view: cells sorted by size or growth, under a header line; returns where its
/// rows are, for clicks.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) -> ListGeometry {
    let key = if app.list == Some(SortKey::Growth) {
        "growth"
    } else {
        "size"
    };
    let block = pane_block(app.pane == Pane::Grid).title(format!(
        " cells by {key} (o: sort by the other, L: back to the grid) "
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let ids = app.list_cells();
    let h = inner.height.saturating_sub(1) as usize;
    let first = if app.list_cursor >= h {
        app.list_cursor + 1 - h
    } else {
        0
    };
    let w = ids.iter().map(|i| i.len()).max().unwrap_or(10) + 2;
    let mark = |k: SortKey| if app.list == Some(k) { "▼" } else { " " };
    let mut lines = vec![Line::styled(
        format!(
            "  {:w$}{:>10} {:>12}",
            "CELL",
            format!("SIZE{}", mark(SortKey::Size)),
            format!("GROWTH{}", mark(SortKey::Growth)),
        ),
        theme::BOLD,
    )];
    for (i, id) in ids.iter().enumerate().skip(first).take(h) {
        let v = &app.progress.cells[id];
        let delta = app
            .delta(id)
            .map(|d| {
                format!(
                    "{}{}",
                    if d > 0 {
                        "+"
                    } else if d < 0 {
                        "-"
                    } else {
                        "±"
                    },
                    human_size(d.abs())
                )
            })
            .unwrap_or_default();
        let st = if app.regressed(id) {
            theme::ALARM
        } else {
            theme::PLAIN
        };
        let mut line = Line::from(vec![
            Span::styled(
                format!("{} ", glyph(v.status, app.tick)),
                Style::new().fg(theme::status(v.status)),
            ),
            Span::raw(format!("{id:w$}")),
            Span::raw(format!(
                "{:>10} ",
                v.size.map(human_size).unwrap_or_default()
            )),
            Span::styled(format!("{delta:>12}"), st),
        ]);
        if i == app.list_cursor {
            line = line.patch_style(theme::CURSOR);
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
    ListGeometry {
        y: inner.y + 1,
        first,
        rows: ids.len().saturating_sub(first).min(h) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;

    #[test]
    fn by_size_then_growth() {
        let mut app = busy_app();
        app.on_key(key('L'));
        let shot = |app: &_, w, h| {
            region(
                app,
                w,
                h,
                |a| a.grid,
                |f, app, r| {
                    draw(f, app, r);
                },
            )
            .0
        };
        insta::assert_snapshot!("list_by_size_80x24", shot(&app, 80, 24));
        app.on_key(key('j'));
        insta::assert_snapshot!("list_by_size_160x48", shot(&app, 160, 48));
        app.on_key(key('o'));
        assert_eq!(
            app.list_cells()[0],
            "debian-13/opam/amd64",
            "the biggest growth first"
        );
        insta::assert_snapshot!("list_by_growth_80x24", shot(&app, 80, 24));
    }
}
