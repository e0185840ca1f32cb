//! The header line: the app name, the arches (the shown one highlighted) or the strip view's
//! focus, cell and selection counts, and the row filter.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::ui::state::mouse::tab_label;
use crate::ui::state::App;
use crate::ui::theme;

/// Draw the header line.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(" imagegrid ", theme::BRAND), Span::raw(" ")];
    if app.all_arches {
        spans.push(Span::styled("all arches", theme::BOLD));
        spans.push(Span::raw(format!(" (focus {})", app.current_arch())));
    } else {
        // Tabs at the places `App::arch_tab_at` reads clicks from; the shown one bracketed.
        for (i, a) in app.arch_names().iter().enumerate() {
            let st = if i == app.arch {
                theme::ARCH_SHOWN
            } else {
                theme::MUTED
            };
            spans.push(Span::styled(tab_label(a, i == app.arch), st));
        }
    }
    spans.push(Span::raw(format!(
        "  {} · {} selected",
        crate::util::words::count(app.matrix.cells.len(), "cell", "cells"),
        app.selection.len()
    )));
    if !app.filter.is_empty() {
        spans.push(Span::styled(
            format!(" · filter: {}", app.filter),
            theme::NOTICE,
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;

    #[test]
    fn arches_counts_and_filter() {
        let mut app = busy_app();
        app.on_key(key(' '));
        let shot = |app: &_, w, h| region(app, w, h, |a| a.header, draw).0;
        insta::assert_snapshot!("header_80x24", shot(&app, 80, 24));
        app.on_key(key('/'));
        for c in "debian".chars() {
            app.on_key(key(c));
        }
        app.on_key(enter());
        app.on_key(tab());
        insta::assert_snapshot!("header_160x48", shot(&app, 160, 48));
    }
}
