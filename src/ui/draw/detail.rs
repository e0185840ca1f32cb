//! The detail pane: the focused cell's log (with its failure and where the rest is), the
//! merged log of running builds, the Dockerfile, or the size inspector.

use ansi_to_tui::IntoText;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use crate::ui::state::{App, Detail, Pane, Status};
use crate::ui::theme::{self, pane_block};
use crate::util::units::human_size;

/// Draw the detail pane; returns the height of its log view in lines (for paging).
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) -> usize {
    let focused_pane = app.pane == Pane::Detail;
    let id = app.focused();
    let title = match (&app.detail, &id) {
        (Detail::Merged, _) => " merged log of running builds ".to_string(),
        (_, None) => " no cell here for this arch ".to_string(),
        (mode, Some(id)) => {
            let v = &app.progress.cells[id];
            let mut t = format!(" {id} · {}", v.status.word());
            if let Some(e) = &v.engine {
                t.push_str(&format!(" · {e}"));
            }
            if let Some(b) = v.build_id {
                t.push_str(&format!(" · build {b}"));
            }
            if let Some(s) = v.size {
                t.push_str(&format!(" · {}", human_size(s)));
            }
            match v.why.first() {
                Some(r) if v.stale => t.push_str(&format!(" · stale: {}", r.kind.words())),
                _ if v.stale => t.push_str(" · stale"),
                _ => {}
            }
            if matches!(mode, Detail::Dockerfile(_)) {
                t.push_str(" · Dockerfile");
            }
            t.push(' ');
            t
        }
    };
    let mut flags = vec![];
    if matches!(app.detail, Detail::Log | Detail::Merged) {
        flags.push(if app.log_view.follow {
            "follow"
        } else {
            "paused"
        });
    }
    if !matches!(app.detail, Detail::Inspector(_)) && app.log_view.wrap {
        flags.push("wrap");
    }
    if app.zoom && focused_pane {
        flags.push("zoom");
    }
    let block = pane_block(focused_pane).title(title);
    let block = if flags.is_empty() {
        block
    } else {
        block.title_bottom(Line::from(format!(" {} ", flags.join(" · "))).right_aligned())
    };
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    let mut height = inner.height as usize;

    if let Detail::Inspector(l) = &app.detail {
        super::inspector::draw(f, l, inner);
        return height;
    }
    if matches!(app.detail, Detail::Dockerfile(_)) && app.shown_dockerfile().is_none() {
        f.render_widget(Paragraph::new("rendering…"), inner);
        return height;
    }
    if app.detail == Detail::Log {
        if let Some((id_str, v)) = id
            .as_deref()
            .and_then(|i| app.progress.cells.get(i).map(|v| (i, v)))
        {
            let ended_badly = matches!(
                v.status,
                Status::Failed | Status::Skipped | Status::Interrupted | Status::Cancelled
            );
            match (super::failures::failure_lines(v), &v.failure) {
                // Cause and hint first, then the record's reason and step.
                (Some(cause), _) if ended_badly => lines.extend(cause),
                (_, Some(fail)) if ended_badly => {
                    // The whole failure line, wrapped: its reason leads and is never cut off.
                    let w = (inner.width as usize).max(10);
                    let text: Vec<char> = format!("✗ {fail}").chars().collect();
                    for (i, chunk) in text.chunks(w).enumerate().take(4) {
                        let mut t: String = chunk.iter().collect();
                        if i == 3 && text.len() > 4 * w {
                            t.pop();
                            t.push('…');
                        }
                        lines.push(Line::styled(t, theme::ALARM));
                    }
                }
                _ => {}
            }
            if v.status == Status::Queued && app.log_of(id_str).is_empty() {
                lines.push(Line::styled(queued_hint(app, id_str), theme::NOTICE));
            }
            if app.log_of(id_str).evicted_lines() > 0 {
                let path = v
                    .log_path
                    .clone()
                    .unwrap_or_else(|| "the history's log file".into());
                lines.push(Line::styled(
                    format!(
                        "… {} older lines only on disk ({path})",
                        app.log_of(id_str).evicted_lines()
                    ),
                    theme::DIM,
                ));
            }
            if app.log_of(id_str).is_empty()
                && !matches!(v.status, Status::Building | Status::Queued)
            {
                let hint = match &v.log_path {
                    Some(p) => format!(
                        "log of build {} is on disk: {p}  (imagegrid log {})",
                        v.build_id.unwrap_or(0),
                        id.clone().unwrap_or_default()
                    ),
                    // Failed, skipped or cancelled before it started: nothing ran.
                    None if ended_badly => {
                        "no log: the build never started (b builds it again)".into()
                    }
                    None => "no log yet: b builds this cell".into(),
                };
                lines.push(Line::styled(hint, theme::DIM));
            }
        }
    }
    if app.detail == Detail::Merged && app.shown_lines().is_empty() {
        lines.push(Line::styled(
            "no build running: a run's lines stream here (M: back to the cell's log)",
            theme::DIM,
        ));
    }
    height = height.saturating_sub(lines.len());
    let text = app.shown_lines();
    if !text.is_empty() {
        let len = text.len();
        let top = if app.log_view.follow {
            len.saturating_sub(height)
        } else {
            app.log_view.top.min(len)
        };
        let current = app
            .log_view
            .matches
            .get(app.log_view.current_match)
            .copied();
        for (i, line) in text.iter().enumerate().skip(top).take(height) {
            let mut l = line
                .into_text()
                .map(|t| t.lines.into_iter().next().unwrap_or_default())
                .unwrap_or_else(|_| Line::raw(line.to_string()));
            if current == Some(i) {
                l = l.patch_style(theme::MATCH_CURRENT);
            } else if app.log_view.matches.binary_search(&i).is_ok() {
                l = l.patch_style(Style::new().add_modifier(Modifier::UNDERLINED));
            }
            lines.push(l);
        }
    }
    let mut p = Paragraph::new(Text::from(lines));
    if app.log_view.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, inner);
    height.max(1)
}

/// What a queued cell waits for: a free slot, or an engine that does not answer.
fn queued_hint(app: &App, id: &str) -> String {
    let arch = app.matrix.cell(id).map(|c| c.arch.as_str()).unwrap_or("");
    let engines: Vec<_> = app
        .progress
        .engines
        .values()
        .filter(|h| h.arches.iter().any(|a| a == arch))
        .collect();
    if engines.is_empty() {
        return format!("queued: no engine is configured for {arch}");
    }
    if engines.iter().any(|h| h.reachable) {
        return "queued: waiting for a free slot on an engine".into();
    }
    let down: Vec<String> = engines
        .iter()
        .map(|h| match (&h.last_error, h.tried) {
            (Some(e), _) => format!("{} ({e})", h.engine),
            (None, false) => format!("{} (connecting)", h.engine),
            (None, true) => h.engine.clone(),
        })
        .collect();
    format!("queued: waiting for engine {} to answer", down.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;

    fn shot(app: &crate::ui::state::App, w: u16, h: u16) -> String {
        region(
            app,
            w,
            h,
            |a| a.detail,
            |f, app, r| {
                draw(f, app, r);
            },
        )
        .0
    }

    #[test]
    fn failed_log_with_its_failure() {
        let mut app = failed_focus_app();
        insta::assert_snapshot!("log_80x24", shot(&app, 80, 24));
        app.on_key(enter());
        app.on_key(key('w'));
        app.on_key(key('/'));
        for c in "module 2".chars() {
            app.on_key(key(c));
        }
        app.on_key(enter());
        insta::assert_snapshot!("log_search_160x48", shot(&app, 160, 48));
    }

    #[test]
    fn an_empty_merged_log_says_what_it_is_for() {
        // M with nothing running drew an empty pane (newcomer walk, 2026-11-30).
        let mut app = crate::ui::state::App::new(
            small_matrix(),
            &Default::default(),
            &Default::default(),
            (1, 1.0),
        );
        app.on_key(key('M'));
        let s = shot(&app, 80, 24);
        assert!(s.contains("no build running"), "{s}");
    }

    #[test]
    fn a_failed_cell_without_a_log_never_started() {
        // Offline, a cell not started (an input not pinned) said "no log yet: b builds this
        // cell" under its failure, as if b had not been pressed.
        let mut app = failed_focus_app();
        app.on_key(key('l'));
        app.on_key(key('l'));
        let id = app.focused().unwrap();
        // debian-13/5.5/amd64: queued, nothing logged yet; it ends failed without starting.
        assert!(app.log_of(&id).is_empty());
        let v = app.progress.cells.get_mut(&id).unwrap();
        v.status = crate::ui::state::Status::Failed;
        v.log_path = None;
        let s = shot(&app, 80, 24);
        assert!(s.contains("no log: the build never started"), "{s}");
        assert!(!s.contains("no log yet"), "{s}");
    }

    #[test]
    fn merged_dockerfile_and_no_log() {
        let mut app = failed_focus_app();
        app.on_key(key('M'));
        insta::assert_snapshot!("merged_80x24", shot(&app, 80, 24));
        app.on_key(key('M'));
        app.on_key(key('d'));
        insta::assert_snapshot!("dockerfile_rendering_80x24", shot(&app, 80, 24));
        let id = app.focused().unwrap();
        app.on_dockerfile_loaded(id, "FROM debian:13\nRUN make\n".into());
        insta::assert_snapshot!("dockerfile_160x48", shot(&app, 160, 48));
        app.on_key(key('d'));
        app.on_key(key('l'));
        app.on_key(key('l'));
        insta::assert_snapshot!("never_built_80x24", shot(&app, 80, 24));
    }
}
