//! The size inspector, inside the detail pane.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::ui::state::{Comparison, Inspector, Loadable};
use crate::ui::theme;
use crate::util::units::human_size;

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
    let mut lines = Vec::new();
    for (i, b) in insp.builds.iter().enumerate().skip(first).take(h) {
        let marker = if Some(i) == insp.base {
            theme::DIFF_BASE
        } else {
            " "
        };
        let mut line = Line::raw(format!(
            "{marker}#{:<5} {} {:>9}",
            b.id,
            b.started_at
                .get(5..16)
                .unwrap_or(&b.started_at)
                .replace('T', " "),
            b.size.map(human_size).unwrap_or_default()
        ));
        if i == insp.cursor {
            line = line.patch_style(theme::CURSOR);
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), list);

    let mut rows = Vec::new();
    match insp.comparison() {
        Some(Comparison::Diff {
            base,
            shown,
            total,
            changes,
        }) => {
            rows.push(Line::styled(
                format!(
                    "build #{} vs #{}: {}{}",
                    shown.id,
                    base.id,
                    if total >= 0 { "+" } else { "-" },
                    human_size(total.abs())
                ),
                theme::BOLD,
            ));
            for c in changes {
                let (sym, st) = theme::change(c.change);
                let d = c.delta();
                let delta = if d == 0 {
                    String::new()
                } else {
                    format!("{}{}", if d > 0 { "+" } else { "-" }, human_size(d.abs()))
                };
                rows.push(Line::from(vec![
                    Span::styled(
                        format!(
                            "{sym} {:>9} {:>9} ",
                            c.after.or(c.before).map(human_size).unwrap_or_default(),
                            delta
                        ),
                        st,
                    ),
                    Span::raw(c.instruction),
                ]));
            }
        }
        Some(Comparison::Layers { shown, layers }) => {
            rows.push(Line::styled(
                format!(
                    "layers of build #{} (the first success: nothing to diff)",
                    shown.id
                ),
                theme::BOLD,
            ));
            for (size, instruction) in layers {
                rows.push(Line::raw(format!(
                    "  {:>9}  {instruction}",
                    human_size(size)
                )));
            }
        }
        None => {}
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
