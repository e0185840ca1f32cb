//! The `?` popup: the keymap in use and what the glyphs mean.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{centered, popup};
use crate::ui::keymap::{hints, sections_for, Context, Scope, KEYMAP};
use crate::ui::theme;

/// Key column width: two spaces and the keys, padded.
const KEYS_WIDTH: usize = 14;

/// `units` joined by spaces into lines narrower than `width` (one cell to spare, so that text
/// never touches a border; a unit too long gets a line of its own and is cut by the popup).
fn wrap(units: &[String], width: usize) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut cur = String::new();
    for u in units {
        let w = Span::raw(u.as_str()).width();
        if !cur.is_empty() && Span::raw(cur.as_str()).width() + 1 + w >= width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(u);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The keys of `scopes`, each help text wrapped to `width` columns under its own indent.
fn section(scopes: &[Scope], width: usize) -> Vec<Line<'static>> {
    let mut lines = vec![];
    for scope in scopes {
        lines.push(Line::styled(scope.title(), theme::HEADING));
        for b in KEYMAP.iter().filter(|b| b.scope == *scope) {
            let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
            let words: Vec<String> = b.help.split_whitespace().map(str::to_string).collect();
            let text = wrap(&words, width.saturating_sub(KEYS_WIDTH).max(10));
            for (i, t) in text.into_iter().enumerate() {
                let head = if i == 0 {
                    format!("  {:12}", keys.join(" "))
                } else {
                    " ".repeat(KEYS_WIDTH)
                };
                lines.push(Line::from(vec![
                    Span::styled(head, theme::KEY),
                    Span::raw(t),
                ]));
            }
        }
    }
    lines
}

/// What the glyphs mean, wrapped to `width` without parting a glyph from its word.
fn legend(width: usize) -> Vec<Line<'static>> {
    let words: Vec<&str> = theme::LEGEND.split_whitespace().collect();
    let pairs: Vec<String> = words.chunks(2).map(|p| p.join(" ")).collect();
    wrap(&pairs, width)
        .into_iter()
        .map(|l| Line::styled(l, theme::MUTED))
        .collect()
}

/// Draw the help popup over the screen: the keys that act in `view`, the view under it.
/// Long help texts and the glyph legend wrap to the popup's width.
pub(super) fn draw(f: &mut Frame, view: Context, area: Rect) {
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
        // Each half of the popup's inner width (150 less the borders).
        let column = (150 - 2) / 2;
        let (left, mut right) = (section(&own, column), section(&anywhere, column));
        right.push(Line::raw(""));
        right.extend(legend(column));
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
    let width = 86.min(area.width) as usize - 2;
    let mut lines = section(&scopes, width);
    lines.extend(legend(width));
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
        let (wide, buf) = region(&app, 160, 48, whole, |f, _, r| draw(f, Context::Grid, r));
        insta::assert_snapshot!("help_160x48", wide);
        // Nothing is cut at a column's edge: the popup spans x 5..155, its two columns 6..80
        // and 80..154, and text wraps one cell short of each column's end.
        // Rows inside the popup: those with its left border at x 5 (not its top or bottom).
        for y in (0..48).filter(|&y| buf[(5, y)].symbol() == "│") {
            for x in [79, 153] {
                assert_eq!(
                    buf[(x, y)].symbol(),
                    " ",
                    "text reaches x {x} on row {y}:\n{wide}"
                );
            }
        }
        let flat = wide.split_whitespace().collect::<Vec<_>>().join(" ");
        for item in ["~ stale", "– excluded", "↷ skipped"] {
            assert!(flat.contains(item), "legend item {item:?} missing:\n{wide}");
        }
        assert!(flat.contains("registry"), "{wide}");
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
