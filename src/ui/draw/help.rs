//! The `?` popup: the keymap in use and what the glyphs mean.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::centered;
use crate::ui::keymap::{bindings_for, Binding, Context, Scope};
use crate::ui::state::help::{help_lines, help_width, HelpKind, KEYS_W};
use crate::ui::state::Search;
use crate::ui::theme;

/// Draw the help popup over the screen: the keys that act in `view`, the view under it,
/// then what the glyphs mean, wrapped to the popup (lines from
/// [`crate::ui::state::help::help_lines`]) and scrolled to `top`; `search`'s matches
/// underlined, its current match reversed. Returns the largest useful `top` (its lines
/// less those that fit) and how many lines fit.
pub(super) fn draw(
    f: &mut Frame,
    view: Context,
    top: usize,
    search: Option<&Search>,
    area: Rect,
) -> (usize, usize) {
    let width = help_width(area.width);
    let help = help_lines(view, area.width);
    // The matches on the lines drawn (the screen may have been resized since the search).
    let search = search.map(|s| {
        let mut s = s.clone();
        s.recompute(&help.iter().map(|l| l.plain()).collect::<Vec<_>>());
        s
    });
    let search = search.as_ref();
    let current = search.and_then(Search::current_line);
    let lines: Vec<Line> = help
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let line = match l.kind {
                HelpKind::Heading => Line::styled(l.text, theme::HEADING),
                HelpKind::Binding => Line::from(vec![
                    Span::styled(format!("  {:w$}", l.keys, w = KEYS_W - 2), theme::KEY),
                    Span::raw(l.text),
                ]),
                HelpKind::Legend => Line::styled(format!("  {}", l.text), theme::MUTED),
            };
            if current == Some(i) {
                line.patch_style(theme::SEARCH_CURRENT)
            } else if search.is_some_and(|s| s.is_match(i)) {
                line.patch_style(theme::SEARCH_MATCH)
            } else {
                line
            }
        })
        .collect();
    let room = area.height.saturating_sub(2) as usize;
    let max_top = lines.len().saturating_sub(room);
    let top = top.min(max_top);
    // How to close it first, then the search keys.
    let (mut close_first, search_keys): (Vec<&Binding>, Vec<_>) = bindings_for(Context::Help)
        .filter(|b| !b.hint.is_empty())
        .partition(|b| b.scope == Scope::Help);
    close_first.extend(search_keys);
    let close_first: Vec<&str> = close_first.iter().map(|b| b.hint).collect();
    let title = format!(
        " help · {}{}{} ",
        close_first.join(" · "),
        if max_top > 0 {
            format!(
                " · lines {}-{} of {}",
                top + 1,
                (top + room).min(lines.len()),
                lines.len()
            )
        } else {
            String::new()
        },
        search.map_or(String::new(), |s| format!(" · {}", s.describe()))
    );
    let shown: Vec<Line> = lines.into_iter().skip(top).take(room).collect();
    let r = centered(area, width, shown.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(shown).block(theme::popup_block().title(title)),
        r,
    );
    (max_top, room)
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
                draw(f, Context::Grid, top, None, r);
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
                draw(f, ctx, 0, None, r);
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
