//! The `?` popup: the keymap in use and what the glyphs mean.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{centered, popup};
use crate::ui::keymap::{hints, sections_for, Context, Scope, KEYMAP};
use crate::ui::theme;

/// Draw the help popup over the screen: the keys that act in `view`, the view under it.
pub(super) fn draw(f: &mut Frame, view: Context, area: Rect) {
    let section = |scopes: &[Scope]| {
        let mut lines = vec![];
        for scope in scopes {
            lines.push(Line::styled(scope.title(), theme::HEADING));
            for b in KEYMAP.iter().filter(|b| b.scope == *scope) {
                let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:12}", keys.join(" ")), theme::KEY),
                    Span::raw(b.help),
                ]));
            }
        }
        lines
    };
    let glyphs = Line::styled(theme::LEGEND, theme::MUTED);
    let title = format!(
        " help (from the keymap in use) · {} ",
        hints(Context::Help).join(" · ")
    );
    let scopes: Vec<Scope> = sections_for(view).collect();
    // Two columns where the terminal is wide enough, so the whole keymap fits on one screen.
    if area.width >= 150 {
        // The view's own keys on the left, those that act anywhere on the right.
        let (anywhere, own): (Vec<Scope>, Vec<Scope>) =
            scopes.iter().partition(|s| **s == Scope::Anywhere);
        let (left, mut right) = (section(&own), section(&anywhere));
        right.push(Line::raw(""));
        right.push(glyphs);
        let h = left.len().max(right.len()) as u16 + 2;
        let r = centered(area, 150, h);
        f.render_widget(Clear, r);
        let block = theme::popup_block().title(title.as_str());
        let inner = block.inner(r);
        f.render_widget(block, r);
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(inner);
        f.render_widget(Paragraph::new(left), a);
        f.render_widget(Paragraph::new(right), b);
        return;
    }
    let mut lines = section(&scopes);
    lines.push(glyphs);
    let room = area.height.saturating_sub(2) as usize;
    if lines.len() > room {
        lines.truncate(room.saturating_sub(1));
        lines.push(Line::styled(
            "… more in a wider terminal, or `imagegrid keys`",
            theme::MUTED,
        ));
    }
    popup(f, area, 86, &title, lines);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;
    use crate::ui::keymap::Context;

    #[test]
    fn one_column_then_two() {
        let app = busy_app();
        let shot = |w, h| region(&app, w, h, whole, |f, _, r| draw(f, Context::Grid, r)).0;
        insta::assert_snapshot!("help_80x24", shot(80, 24));
        insta::assert_snapshot!("help_160x48", shot(160, 48));
    }

    #[test]
    fn only_the_keys_of_the_view() {
        let app = busy_app();
        let shot = |ctx, w, h| region(&app, w, h, whole, |f, _, r| draw(f, ctx, r)).0;
        let grid = shot(Context::Grid, 160, 48);
        assert!(!grid.contains("sort by size / growth"), "{grid}");
        assert!(!grid.contains("diff against the build"), "{grid}");
        insta::assert_snapshot!("help_list_160x48", shot(Context::List, 160, 48));
        insta::assert_snapshot!("help_inspector_80x24", shot(Context::Inspector, 80, 24));
    }
}
