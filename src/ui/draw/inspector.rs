//! The size inspector, inside the detail pane.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::ui::state::{Inspector, Loadable};
use crate::ui::theme;

/// The size inspector: the cell's successful builds over time (a sparkline and a list), and
/// the layers of the build under the cursor diffed against the one before it (or `D`'s base).
pub(super) fn draw(f: &mut Frame, inspector: &Loadable<Inspector>, area: Rect) {
    use ratatui::widgets::Sparkline;
    let insp = match inspector {
        Loadable::Wanted => return,
        // Asked for, not read yet: not the same as a cell without any success.
        Loadable::Loading(_) => {
            f.render_widget(Paragraph::new("loading the cell's builds…"), area);
            return;
        }
        Loadable::Ready(_, insp) => insp,
    };
    if insp.builds.is_empty() {
        f.render_widget(Paragraph::new("no successful build of this cell yet"), area);
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(38), Constraint::Fill(1)]).areas(area);
    let [spark, list] = Layout::vertical([Constraint::Length(3), Constraint::Fill(1)]).areas(left);
    let sizes: Vec<u64> = insp
        .builds
        .iter()
        .map(|b| b.size.unwrap_or(0).max(0) as u64)
        .collect();
    let min = sizes.iter().copied().min().unwrap_or(0);
    // Offset by the smallest so that small changes on big images are visible.
    let data: Vec<u64> = sizes.iter().map(|s| s - min + 1).collect();
    f.render_widget(
        Sparkline::default()
            .block(Block::default().title(format!(
                "size over {}",
                crate::util::words::count(sizes.len(), "build", "builds")
            )))
            .data(&data)
            .style(theme::SPARKLINE),
        spark,
    );
    let h = list.height as usize;
    let first = if insp.cursor >= h {
        insp.cursor + 1 - h
    } else {
        0
    };
    // Search matches: underlined; the current one reversed (readable without colour).
    let search = insp.search.as_ref();
    let current = search.and_then(|s| s.current_line());
    let mark = |line: Line<'static>, i: usize| {
        if current == Some(i) {
            line.patch_style(theme::SEARCH_CURRENT)
        } else if search.is_some_and(|s| s.is_match(i)) {
            line.patch_style(theme::SEARCH_MATCH)
        } else {
            line
        }
    };
    let mut lines = Vec::new();
    for (i, row) in insp
        .build_rows()
        .into_iter()
        .enumerate()
        .skip(first)
        .take(h)
    {
        let marker = if Some(i) == insp.base {
            theme::DIFF_BASE
        } else {
            " "
        };
        let mut line = mark(Line::raw(format!("{marker}{row}")), i);
        if i == insp.cursor {
            line = line.patch_style(theme::CURSOR);
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), list);

    let mut rows = Vec::new();
    if let Some(title) = insp.layers_title() {
        rows.push(Line::styled(title, theme::BOLD));
    }
    let layers = insp.layer_rows();
    let room = (right.height as usize).saturating_sub(1);
    let top = insp.layers_top.min(layers.len().saturating_sub(room));
    let n = insp.builds.len();
    for (j, r) in layers.into_iter().enumerate().skip(top).take(room) {
        let line = match r.change {
            Some(c) => {
                let (sym, st) = theme::change(c);
                Line::from(vec![
                    Span::styled(format!("{sym} {} ", r.sizes), st),
                    Span::raw(r.instruction),
                ])
            }
            None => Line::raw(format!("  {}  {}", r.sizes, r.instruction)),
        };
        rows.push(mark(line, n + j));
    }
    f.render_widget(Paragraph::new(rows), right);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;

    fn shot(app: &crate::ui::state::App, w: u16, h: u16) -> String {
        // Inside the detail pane, as the screen shows it.
        region(
            app,
            w,
            h,
            |a| a.detail,
            |f, app, r| {
                super::super::detail::draw(f, app, r);
            },
        )
        .0
    }

    #[test]
    fn diff_against_the_build_before() {
        let app = inspector_app();
        insta::assert_snapshot!("inspector_80x24", shot(&app, 80, 24));
        insta::assert_snapshot!("inspector_160x48", shot(&app, 160, 48));
    }

    /// The list view moves the focus with the inspector open: the new cell's builds are asked
    /// for, and until they come the pane says so (not "no successful build").
    #[test]
    fn loading_then_loaded_on_a_focus_change() {
        let mut app = inspector_app();
        // The keyboard back to the grid (the inspector stays open), then the list view.
        app.on_key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Enter,
        ));
        app.on_key(key('L'));
        let fx = app.on_key(key('j'));
        let cell = app.focused().unwrap();
        assert_ne!(cell, "debian-13/opam/amd64");
        assert!(
            fx.contains(&crate::ui::state::Effect::LoadHistory(cell.clone())),
            "{fx:?}"
        );
        let s = shot(&app, 80, 24);
        assert!(s.contains("loading the cell's builds…"), "{s}");
        assert!(!s.contains("no successful build"), "{s}");
        let mut r = record(3, 801_000_000, vec![(801_000_000, "ADD rootfs")]);
        r.cell = cell.clone();
        app.on_history_loaded(&cell, vec![r]);
        let s = shot(&app, 80, 24);
        assert!(!s.contains("loading") && s.contains("801"), "{s}");
    }

    #[test]
    fn first_success_lists_its_layers() {
        let mut app = inspector_app();
        app.on_key(enter());
        app.on_key(key('k'));
        insta::assert_snapshot!("inspector_first_160x48", shot(&app, 160, 48));
    }
}
