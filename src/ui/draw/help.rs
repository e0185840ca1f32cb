//! The `?` popup: the keymap in use and what the glyphs mean.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{centered, popup};
use crate::ui::keymap::{Context, KEYMAP};
use crate::ui::theme;

/// Draw the help popup over the screen.
pub(super) fn draw(f: &mut Frame, area: Rect) {
    let section = |ctxs: &[Context]| {
        let mut lines = vec![];
        for ctx in ctxs {
            lines.push(Line::styled(ctx.title(), theme::HEADING));
            for b in KEYMAP.iter().filter(|b| b.context == *ctx) {
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
    let title = " help (from the keymap in use) · any key closes it ";
    // Two columns where the terminal is wide enough, so the whole keymap fits on one screen.
    if area.width >= 150 {
        let (left, mut right) = (
            section(&[Context::Grid]),
            section(&[Context::Detail, Context::Any]),
        );
        right.push(Line::raw(""));
        right.push(glyphs);
        let h = left.len().max(right.len()) as u16 + 2;
        let r = centered(area, 150, h);
        f.render_widget(Clear, r);
        let block = theme::popup_block().title(title);
        let inner = block.inner(r);
        f.render_widget(block, r);
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(inner);
        f.render_widget(Paragraph::new(left), a);
        f.render_widget(Paragraph::new(right), b);
        return;
    }
    let mut lines = section(&[Context::Grid, Context::Detail, Context::Any]);
    lines.push(glyphs);
    let room = area.height.saturating_sub(2) as usize;
    if lines.len() > room {
        lines.truncate(room.saturating_sub(1));
        lines.push(Line::styled(
            "… more in a wider terminal, or `imagegrid keys`",
            theme::MUTED,
        ));
    }
    popup(f, area, 86, title, lines);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;

    #[test]
    fn one_column_then_two() {
        let app = busy_app();
        let shot = |w, h| region(&app, w, h, whole, |f, _, r| draw(f, r)).0;
        insta::assert_snapshot!("help_80x24", shot(80, 24));
        insta::assert_snapshot!("help_160x48", shot(160, 48));
    }
}
