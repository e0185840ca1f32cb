//! The status bar: prompts while typing, else the selection, the search match, the last
//! message and the hints of the keys that act here.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::ui::keymap::{hints, nav_hint, Context};
use crate::ui::state::{App, Mode, Pane, Prompt};
use crate::ui::theme;

/// Draw the status bar.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let prompt = |label: &str, p: &Prompt, about: &str| {
        // Old text is shown selected (reversed): typing replaces it.
        let text = if p.selected {
            Span::styled(p.text.clone(), theme::CURSOR)
        } else {
            Span::raw(p.text.clone())
        };
        Line::from(vec![
            Span::styled(format!("{label}: "), theme::NOTICE),
            text,
            Span::raw(theme::PROMPT_CURSOR),
            Span::styled(
                format!("  {about}{}", hints(Context::Prompt).join(" · ")),
                theme::MUTED,
            ),
        ])
    };
    let line = match &app.mode {
        Mode::Filter(t) => prompt(
            "filter",
            t,
            "distro, version (hides other columns), arch, state · ",
        ),
        Mode::Selector(t) => prompt("select", t, "distro/version/arch globs · "),
        Mode::Search(t) => prompt("search", t, ""),
        _ => {
            let hints = hints(app.context());
            let mut spans = vec![Span::styled(
                format!(" {} selected ", app.selection.len()),
                theme::BADGE,
            )];
            // While a run is under way: its estimated time left.
            if let Some(words) = app
                .progress
                .eta
                .as_ref()
                .filter(|_| app.active_count() > 0)
                .and_then(crate::progress::eta_words)
            {
                spans.push(Span::styled(format!(" {words} "), theme::NOTICE));
            }
            if app.pane == Pane::Detail && !app.log_view.matches.is_empty() {
                spans.push(Span::styled(
                    format!(
                        " match {}/{} ",
                        app.log_view.current_match + 1,
                        app.log_view.matches.len()
                    ),
                    theme::MATCH_BADGE,
                ));
            }
            if app.visual_anchor.is_some() {
                spans.push(Span::styled(
                    " VISUAL: move, v selects the range, Esc cancels ",
                    theme::CURSOR,
                ));
            }
            if app.zoom {
                spans.push(Span::styled(" ZOOM ", theme::CURSOR));
            }
            spans.push(Span::raw(" "));
            let nav = nav_hint(app.context());
            // A hint the navigation hint already gives is not repeated.
            let hints: Vec<&str> = hints
                .into_iter()
                .filter(|h| !nav.is_some_and(|n| n.contains(h)))
                .collect();
            // The message before the standing hints: at 80 columns it is what gets cut last.
            if let Some(m) = &app.message {
                spans.push(Span::styled(format!("{m} │ "), theme::NOTICE));
            }
            if let Some(h) = nav {
                spans.push(Span::styled(format!("{h} · "), theme::MUTED));
            }
            spans.push(Span::styled(hints.join(" · "), theme::MUTED));
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;

    #[test]
    fn hints_message_and_prompts() {
        let mut app = busy_app();
        let shot = |app: &_, w, h| region(app, w, h, |a| a.status, draw).0;
        app.on_key(key('F'));
        insta::assert_snapshot!("status_grid_80x24", shot(&app, 80, 24));
        insta::assert_snapshot!("status_grid_160x48", shot(&app, 160, 48));
        app.on_key(enter());
        insta::assert_snapshot!("status_detail_160x48", shot(&app, 160, 48));
        app.on_key(key('/'));
        app.on_key(key('x'));
        insta::assert_snapshot!("status_search_80x24", shot(&app, 80, 24));
        app.on_key(enter());
        app.on_key(esc());
        app.on_key(key('/'));
        app.on_key(key('d'));
        insta::assert_snapshot!("status_filter_80x24", shot(&app, 80, 24));
        app.on_key(esc());
        app.on_key(key(':'));
        insta::assert_snapshot!("status_selector_80x24", shot(&app, 80, 24));
    }

    #[test]
    fn a_message_shows_whole_at_80_columns_before_the_standing_hints() {
        // The demo's intro was cut after "S selects stal" behind `hjkl move ·`.
        let mut app = busy_app();
        let msg = "demo: demo-debian changed since round 1: S then b rebuilds it";
        app.message = Some(msg.into());
        let line = region(&app, 80, 24, |a| a.status, draw).0;
        assert!(line.contains(msg), "{line}");
    }

    #[test]
    fn the_time_left_shows_while_a_run_is_under_way() {
        use crate::scheduler::{BuildEvent, Eta};
        let mut app = busy_app();
        let shot = |app: &_| region(app, 160, 48, |a| a.status, draw).0;
        assert!(!shot(&app).contains("left"));
        app.on_event(BuildEvent::Progress(Eta {
            eta_secs: Some(190.0),
            cells_left: 2,
            unknown: 0,
            blocked: 0,
        }));
        assert!(
            shot(&app).starts_with(" 0 selected  about 3m 10s left "),
            "{}",
            shot(&app)
        );
    }
}
