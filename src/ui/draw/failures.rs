//! The failures view (in the grid's place): each cause with its glyph, count and hint, the
//! cursor's cells below; the grid's cause glyphs; the failed cell's cause lines in the detail
//! pane.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::ui::state::{App, CauseRow, CellProgress, Pane, OTHER_GLYPH};
use crate::ui::theme::{self, pane_block};
use crate::util::text::truncate;

/// The style of a cause's glyph, by its rank (unclassified is muted); the glyph carries
/// the meaning without colour.
pub(super) fn cause_style(glyph: char, rank: usize) -> Style {
    if glyph == OTHER_GLYPH {
        theme::MUTED.add_modifier(ratatui::style::Modifier::BOLD)
    } else {
        theme::BOLD.fg(theme::cause(rank))
    }
}

/// A failed cell's cause glyph for the grid's colour-by-cause mode.
pub(super) fn cause_span(app: &App, rows: &[CauseRow], id: &str) -> Option<Span<'static>> {
    let (glyph, rank) = app.cause_glyph(rows, id)?;
    Some(Span::styled(glyph.to_string(), cause_style(glyph, rank)))
}

/// The grid title's legend in colour-by-cause mode: `A gcc-15 · B no-manifest`.
pub(super) fn legend(rows: &[CauseRow]) -> String {
    if rows.is_empty() {
        return "no failed cell".into();
    }
    rows.iter()
        .map(|r| format!("{} {}", r.glyph, r.name))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The detail pane's first lines for a failed cell with a cause: the cause and its hint,
/// then the failure record's reason and step. None when the cell has no cause.
pub(super) fn failure_lines(v: &CellProgress) -> Option<Vec<Line<'static>>> {
    let cause = v.cause.as_ref()?;
    let mut lines = vec![Line::styled(
        format!("✗ cause: {}", cause.name),
        theme::ALARM,
    )];
    if !cause.hint.is_empty() {
        lines.push(Line::from(vec![
            Span::styled("  hint:   ", theme::DIM),
            Span::styled(cause.hint.clone(), theme::NOTICE),
        ]));
    }
    let rec = v.failure_record.clone().unwrap_or_default();
    let reason = rec.reason.or_else(|| v.failure.clone());
    if let Some(r) = reason {
        let code = rec
            .exit_code
            .map(|c| format!(" (exit {c})"))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled("  reason: ", theme::DIM),
            Span::raw(format!("{r}{code}")),
        ]));
    }
    if let Some(s) = rec.step {
        lines.push(Line::from(vec![
            Span::styled("  step:   ", theme::DIM),
            Span::raw(s),
        ]));
    }
    Some(lines)
}

/// Draw the failures view.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let rows = app.cause_rows();
    let total: usize = rows.iter().map(|r| r.cells.len()).sum();
    let block = pane_block(app.pane == Pane::Grid).title(format!(
        " failures: {}, {} (Enter: select its cells, b: build them, Esc: grid) ",
        crate::util::words::count(total, "cell", "cells"),
        crate::util::words::count(rows.len(), "cause", "causes")
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let cursor = app.failures.map(|v| v.cursor).unwrap_or(0);
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(8).min(24);
    let mut lines: Vec<Line> = Vec::new();
    let h = inner.height as usize;
    // The causes, then the cursor's cells in the room left.
    let first = if cursor >= h.saturating_sub(1).max(1) {
        cursor + 1 - h.saturating_sub(1).max(1)
    } else {
        0
    };
    // One line per cause (the hint cut to the width; the detail pane has it whole).
    let hint_w = (inner.width as usize).saturating_sub(name_w + 10);
    for (i, r) in rows.iter().enumerate().skip(first) {
        let mark = if i == cursor { "▸ " } else { "  " };
        let mut l = Line::from(vec![
            Span::raw(mark),
            Span::styled(r.glyph.to_string(), cause_style(r.glyph, i)),
            Span::raw(" "),
            Span::styled(
                format!("{:name_w$}", truncate(&r.name, name_w)),
                theme::BOLD,
            ),
            Span::raw(format!(" {:>4} ", r.cells.len())),
            Span::styled(truncate(&r.hint, hint_w), theme::MUTED),
        ]);
        if i == cursor {
            l = l.patch_style(theme::CURSOR);
        }
        lines.push(l);
    }
    if let Some(r) = rows.get(cursor) {
        lines.push(Line::styled(
            format!("  {}: {}", r.name, r.cells.join("  ")),
            theme::DIM,
        ));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use crate::model::cause::Cause;
    use crate::ui::state::{App, Effect, Status};

    fn failed_column_app() -> App {
        let mut app = failed_focus_app();
        // Every 4.14 cell fails of one cause, one 5.4 cell of another.
        let ids: Vec<String> = app.matrix.cells.iter().map(|c| c.id.clone()).collect();
        for id in ids {
            let v = app.progress.cells.get_mut(&id).unwrap();
            if id.contains("/4.14/") {
                v.status = Status::Failed;
                v.cause = Some(Cause {
                    name: "gcc-15".into(),
                    hint: "add the patches overlay".into(),
                });
            } else if v.status.is_failed() {
                v.cause = Some(Cause {
                    name: "no-manifest".into(),
                    hint: "exclude the cell".into(),
                });
            }
        }
        app
    }

    #[test]
    fn failures_view_selects_a_column_and_builds_it_in_two_keys() {
        let mut app = failed_column_app();
        let column: Vec<String> = app
            .matrix
            .cells
            .iter()
            .filter(|c| c.id.contains("/4.14/"))
            .map(|c| c.id.clone())
            .collect();
        let mut column = column;
        column.sort();
        assert!(column.len() > 1, "{column:?}");
        app.on_key(key('C'));
        let screen = text(&render(&mut app, 100, 30));
        insta::assert_snapshot!("failures_view_100x30", screen);
        let rows = app.cause_rows();
        assert_eq!(rows[0].name, "gcc-15");
        assert_eq!(rows[0].cells, column);
        // From the view: b, y builds the cause under the cursor.
        app.on_key(key('b'));
        let fx = app.on_key(key('y'));
        assert!(
            fx.contains(&Effect::Build {
                cells: column.clone(),
                no_cache: false
            }),
            "{fx:?}"
        );
        // Or Enter selects its cells, back on the grid (the view stays open after a build:
        // the cells leave it as they are queued).
        assert!(app.failures.is_some());
        app.on_key(enter());
        assert_eq!(app.failures, None);
        assert_eq!(app.selection.iter().cloned().collect::<Vec<_>>(), column);
        let fx = {
            app.on_key(key('b'));
            app.on_key(key('y'))
        };
        assert!(
            fx.contains(&Effect::Build {
                cells: column,
                no_cache: false
            }),
            "{fx:?}"
        );
    }

    #[test]
    fn title_counts_one_cell_and_one_cause_in_the_singular() {
        // The demo's first failures view read "2 cells, 1 causes".
        let mut app = failed_focus_app();
        app.on_key(key('C'));
        let screen = text(&render(&mut app, 100, 30));
        let rows = app.cause_rows();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let cells: usize = rows.iter().map(|r| r.cells.len()).sum();
        let want = format!(
            " failures: {}, 1 cause ",
            crate::util::words::count(cells, "cell", "cells")
        );
        assert!(screen.contains(&want), "{want:?} in\n{screen}");
    }

    #[test]
    fn grid_by_cause_reads_without_colour() {
        let mut app = failed_column_app();
        for _ in 0..3 {
            app.on_key(key('H'));
        }
        assert_eq!(app.heat, crate::ui::state::Heat::Cause);
        let screen = text(&render(&mut app, 100, 30));
        insta::assert_snapshot!("grid_by_cause_100x30", screen);
        assert!(screen.contains("A gcc-15"), "{screen}");
    }
}
