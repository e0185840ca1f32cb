//! The `?` help's lines, from the keymap and the screen's width: one pure function that the
//! help popup draws and the help's search searches, so both see the same lines.

use super::search::{top_showing, Search};
use super::*;
use crate::ui::keymap::{sections_for, KEYMAP};

/// Widest the help popup gets, in columns.
pub const HELP_WIDTH: u16 = 100;
/// Width of the keys column, in columns.
pub const KEYS_W: usize = 16;

/// What a help line is, for its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpKind {
    /// A section title (a keymap scope, `Glyphs`).
    Heading,
    /// A binding: its keys (on its first line only) and a line of its wrapped help text.
    Binding,
    /// A line of the glyph legend.
    Legend,
}

/// One line of the help as drawn: `keys` fills the keys column of a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpLine {
    pub kind: HelpKind,
    pub keys: String,
    pub text: String,
}

impl HelpLine {
    /// The line as the popup shows it, without style: what a search looks in.
    pub fn plain(&self) -> String {
        match self.kind {
            HelpKind::Heading => self.text.clone(),
            HelpKind::Binding => format!("  {:w$}{}", self.keys, self.text, w = KEYS_W - 2),
            HelpKind::Legend => format!("  {}", self.text),
        }
    }
}

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

/// The popup's width on a screen `screen_width` columns wide.
pub fn help_width(screen_width: u16) -> u16 {
    HELP_WIDTH.min(screen_width)
}

/// The help's lines for `view` on a screen `screen_width` columns wide: the keys that act
/// in the view by section, their help wrapped to the popup, then the glyph legend.
pub fn help_lines(view: Context, screen_width: u16) -> Vec<HelpLine> {
    let width = help_width(screen_width) as usize;
    let text_w = width.saturating_sub(2 + KEYS_W).max(10);
    let mut lines = vec![];
    for scope in sections_for(view) {
        lines.push(HelpLine {
            kind: HelpKind::Heading,
            keys: String::new(),
            text: scope.title().to_string(),
        });
        for b in KEYMAP.iter().filter(|b| b.scope == scope) {
            let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
            for (i, part) in wrap_words(b.help, text_w).into_iter().enumerate() {
                lines.push(HelpLine {
                    kind: HelpKind::Binding,
                    keys: if i == 0 {
                        keys.join(" ")
                    } else {
                        String::new()
                    },
                    text: part,
                });
            }
        }
    }
    lines.push(HelpLine {
        kind: HelpKind::Heading,
        keys: String::new(),
        text: "Glyphs".into(),
    });
    for legend in [crate::ui::theme::LEGEND, crate::ui::theme::ENGINE_LEGEND] {
        for part in wrap_words(legend, width.saturating_sub(4)) {
            lines.push(HelpLine {
                kind: HelpKind::Legend,
                keys: String::new(),
                text: part,
            });
        }
    }
    lines
}

impl App {
    /// Whether the help popup is on screen: open, or under its own search prompt.
    pub fn help_shown(&self) -> bool {
        match self.mode {
            Mode::Help => true,
            Mode::Search(_) => self.search_in == Context::Help,
            _ => false,
        }
    }

    /// The help's lines as the last frame drew them (its view and width).
    pub fn help_text(&self) -> Vec<String> {
        help_lines(self.view_context(), self.geometry.screen_width)
            .iter()
            .map(HelpLine::plain)
            .collect()
    }

    /// Search the help for `query` (empty: clear the search) and scroll to the first match.
    pub fn search_help(&mut self, query: &str) {
        self.help_search = Search::new(query, &self.help_text());
        self.show_help_match();
    }

    /// `n`/`N` in the help: the next or previous match, scrolled into view.
    pub fn step_help_match(&mut self, forward: bool) {
        let lines = self.help_text();
        let Some(s) = &mut self.help_search else {
            self.message = Some("no search: / searches the help".into());
            return;
        };
        // The lines may have rewrapped since the search (a resize).
        s.recompute(&lines);
        s.step(forward);
        self.show_help_match();
    }

    /// Scroll the help to its current match and say which it is.
    fn show_help_match(&mut self) {
        let Some(s) = &self.help_search else {
            self.message = Some("search cleared".into());
            return;
        };
        self.message = Some(s.describe());
        if let Some(line) = s.current_line() {
            let len = self.help_text().len();
            let room = self.geometry.help_room.max(1);
            self.help_top = top_showing(line, room, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_keymap_and_the_width() {
        let narrow = help_lines(Context::Grid, 60);
        let wide = help_lines(Context::Grid, 160);
        assert!(
            narrow.len() > wide.len(),
            "narrow text wraps onto more lines"
        );
        for l in &narrow {
            assert!(l.plain().chars().count() <= 60, "{l:?}");
        }
        assert!(wide.iter().any(|l| l.plain().contains("quit (asks when")));
        assert_eq!(wide.last().unwrap().kind, HelpKind::Legend);
        // The inspector's help lists its keys, the grid's does not.
        let has_d = |ls: &[HelpLine]| ls.iter().any(|l| l.text.contains("diff against the build"));
        assert!(has_d(&help_lines(Context::Inspector, 80)) && !has_d(&wide));
    }
}
