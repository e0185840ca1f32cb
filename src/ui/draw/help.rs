//! The `?` popup: the keymap in use and what the glyphs mean.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::centered;
use crate::ui::keymap::{hints, sections_for, Context, KEYMAP};
use crate::ui::theme;

/// Widest the help popup gets, in columns.
const HELP_WIDTH: u16 = 100;
/// Width of the keys column.
const KEYS_W: usize = 16;

/// Words of `text` in lines of at most `w` characters (a longer word gets its own line).
fn wrap_words(text: &str, w: usize) -> Vec<String> {
    let mut out = vec![];
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > w {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// Draw the help popup over the screen: the keys that act in `view`, the view under it,
/// then what the glyphs mean, wrapped to the popup and scrolled to `top`. Returns the
/// largest useful `top` (its lines less those that fit).
pub(super) fn draw(f: &mut Frame, view: Context, top: usize, area: Rect) -> usize {
    let width = HELP_WIDTH.min(area.width);
    let text_w = (width as usize).saturating_sub(2 + KEYS_W).max(10);
    let mut lines = vec![];
    for scope in sections_for(view) {
        lines.push(Line::styled(scope.title(), theme::HEADING));
        for b in KEYMAP.iter().filter(|b| b.scope == scope) {
            let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
            for (i, part) in wrap_words(b.help, text_w).into_iter().enumerate() {
                let k = if i == 0 {
                    keys.join(" ")
                } else {
                    String::new()
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k:w$}", w = KEYS_W - 2), theme::KEY),
                    Span::raw(part),
                ]));
            }
        }
    }
    lines.push(Line::styled("Glyphs", theme::HEADING));
    for part in wrap_words(theme::LEGEND, (width as usize).saturating_sub(4)) {
        lines.push(Line::styled(format!("  {part}"), theme::MUTED));
    }
    let room = area.height.saturating_sub(2) as usize;
    let max_top = lines.len().saturating_sub(room);
    let top = top.min(max_top);
    let title = format!(
        " help · {}{} ",
        hints(Context::Help).join(" · "),
        if max_top > 0 {
            format!(
                " · lines {}-{} of {}",
                top + 1,
                (top + room).min(lines.len()),
                lines.len()
            )
        } else {
            String::new()
        }
    );
    let shown: Vec<Line> = lines.into_iter().skip(top).take(room).collect();
    let r = centered(area, width, shown.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(shown).block(theme::popup_block().title(title)),
        r,
    );
    max_top
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;
    use crate::ui::keymap::Context;

    #[test]
    fn scrolls_and_wraps_at_every_size() {
        let app = busy_app();
        let shot = |top, w, h| {
            region(&app, w, h, whole, |f, _, r| {
                draw(f, Context::Grid, top, r);
            })
            .0
        };
        insta::assert_snapshot!("help_80x24", shot(0, 80, 24));
        insta::assert_snapshot!("help_160x48", shot(0, 160, 48));
        // Scrolled to the end at 80x24: the Anywhere keys and the whole legend are there.
        let end = shot(usize::MAX, 80, 24);
        assert!(end.contains("quit (asks when builds are running)"), "{end}");
        assert!(end.contains("– excluded (none)"), "{end}");
        assert!(end.contains("~ stale"), "{end}");
        insta::assert_snapshot!("help_80x24_end", end);
        // No line is cut at the popup's edge: the longest help text wraps.
        let wide = shot(0, 220, 60);
        assert!(wide.contains("registry"), "{wide}");
    }

    #[test]
    fn only_the_keys_of_the_view() {
        let app = busy_app();
        let shot = |ctx, w, h| {
            region(&app, w, h, whole, |f, _, r| {
                draw(f, ctx, 0, r);
            })
            .0
        };
        let grid = shot(Context::Grid, 160, 48);
        assert!(!grid.contains("sort by size / growth"), "{grid}");
        assert!(!grid.contains("diff against the build"), "{grid}");
        insta::assert_snapshot!("help_list_160x48", shot(Context::List, 160, 48));
        insta::assert_snapshot!("help_inspector_80x24", shot(Context::Inspector, 80, 24));
    }
}
