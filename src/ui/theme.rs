//! The look of the TUI in one place: every glyph, status colour, heat ramp and pane style.
//! Draw code names a role from here and never a colour, so that a colour means one thing
//! everywhere (red: failed or regressed) and a theme is one file to change. A test fails on a
//! `Color::` outside this file.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders};

use super::state::Status;
use crate::sizes::Change;

// ---- glyphs ------------------------------------------------------------------------------

/// Frames of the building spinner.
pub const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
/// A cell whose own inputs changed since its last build (a pinned ref, its Dockerfile, its
/// options).
pub const STALE: &str = "~";
/// A cell stale only because of its base (rebuilt since, or stale itself).
pub const STALE_BASE: &str = "^";
/// A grid position with no cell (excluded from the matrix).
pub const EXCLUDED: &str = "–";
/// Every arch of the position is selected.
pub const SELECTED: &str = "▸";
/// Some arches of the position are selected.
pub const PARTLY_SELECTED: &str = "▹";
/// An engine that answers, and one that does not.
pub const ENGINE_UP: &str = "● ";
pub const ENGINE_DOWN: &str = "○ ";
/// Before an engine's count of builds running now.
pub const ENGINE_RUNNING: &str = "▶";
/// Before an engine's count of builds waiting for it.
pub const ENGINE_QUEUED: &str = "◌";
/// Before the disk an engine's images take.
pub const ENGINE_DISK: &str = "⛁";
/// The inspector's diff base.
pub const DIFF_BASE: &str = "◆";
/// The cursor of a prompt.
pub const PROMPT_CURSOR: &str = "▏";
/// What the glyphs mean, for the help popup (it wraps to the popup's width).
/// The engines line's glyphs, for the help's legend.
pub const ENGINE_LEGEND: &str = "engines: ● up  ○ down  [arches it builds]  ▶ builds running  ◌ builds queued  ⛁ disk its images take (≤ an upper bound)";
pub const LEGEND: &str = "· never  ◌ queued  ⠋ building  ✓ ok  ✗ failed  ⊘ cancelled  ! interrupted  ↷ skipped  ~ stale  ^ base stale  – excluded (none)  ▸ selected  ▹ partly selected";

/// Heat map glyphs, so that the map reads without colour: size quartiles (smallest to the
/// largest shown), and growth against the previous success.
pub const HEAT_SIZE_GLYPHS: [&str; 4] = ["▁", "▃", "▅", "█"];
pub const HEAT_SHRANK_GLYPH: &str = "▼";
pub const HEAT_SAME_GLYPH: &str = "=";
pub const HEAT_GREW_GLYPH: &str = "▲";
pub const HEAT_REGRESSED_GLYPH: &str = "‼";
/// The heat maps' one-line legends.
pub const HEAT_SIZE_LEGEND: &str = " size: ▁ <25% ▃ <50% ▅ <75% █ up to the largest shown ";
pub const HEAT_GROWTH_LEGEND: &str =
    " growth: ▼ shrank  = same  ▲ grew  ‼ past a size threshold (red) ";

/// The size quartile of `t` (size relative to the largest shown, 0..=1).
pub fn size_quartile(t: f64) -> usize {
    match t {
        t if t < 0.25 => 0,
        t if t < 0.5 => 1,
        t if t < 0.75 => 2,
        _ => 3,
    }
}

/// Is colour off? `NO_COLOR` set to anything but empty (no-color.org), or a terminal
/// whose `TERM` says it has none (`dumb`, `*-mono`, `*-m`).
pub fn monochrome(no_color: Option<&str>, term: Option<&str>) -> bool {
    no_color.is_some_and(|v| !v.is_empty())
        || term.is_some_and(|t| t == "dumb" || t.ends_with("-mono") || t.ends_with("-m"))
}

/// Remove every colour from a drawn frame, keeping bold, reverse and underline. Colour
/// changes must not reach a terminal with colour off: crossterm turns each into a bare
/// `ESC[m`, which resets the attributes too, and focus and the shown tab would vanish.
pub fn drop_colours(buf: &mut Buffer) {
    for cell in buf.content.iter_mut() {
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

/// Text on a heat map background: white and bold keep their contrast on every ramp colour.
pub const HEAT_TEXT: Style = Style::new().fg(Color::White).add_modifier(Modifier::BOLD);

/// The glyph of a status; readable without colour.
pub fn glyph(s: Status, tick: u64) -> &'static str {
    match s {
        Status::Never => "·",
        Status::Queued => "◌",
        Status::Building => SPINNER[(tick % SPINNER.len() as u64) as usize],
        Status::Succeeded => "✓",
        Status::Failed => "✗",
        Status::Cancelled => "⊘",
        Status::Interrupted => "!",
        Status::Skipped => "↷",
    }
}

/// The symbol and style of a layer change in the inspector's diff.
pub fn change(c: Change) -> (&'static str, Style) {
    match c {
        Change::Added => ("+", Style::new().fg(Color::Yellow)),
        Change::Removed => ("-", Style::new().fg(Color::Cyan)),
        Change::Grown => ("↑", Style::new().fg(Color::Red)),
        Change::Shrunk => ("↓", Style::new().fg(Color::Green)),
        Change::Same => ("=", DIM),
    }
}

// ---- status colours -------------------------------------------------------------------------

/// The colour of a status.
pub fn status(s: Status) -> Color {
    match s {
        Status::Never => Color::DarkGray,
        Status::Queued => Color::Blue,
        Status::Building => Color::Yellow,
        Status::Succeeded => Color::Green,
        Status::Failed => Color::Red,
        Status::Cancelled | Status::Skipped => Color::Gray,
        Status::Interrupted => Color::Magenta,
    }
}

// ---- heat ramp ------------------------------------------------------------------------------

/// Background by size, `t` the size relative to the largest shown (0..=1).
pub fn heat_size(t: f64) -> Color {
    Color::Indexed([22, 28, 136, 124][size_quartile(t)])
}

/// Colours of failure causes by rank (the grid's colour-by-cause mode, the failures view);
/// each cause also has a letter, so the colour is never the only sign.
pub fn cause(rank: usize) -> Color {
    const CAUSES: [Color; 8] = [
        Color::Red,
        Color::Magenta,
        Color::Yellow,
        Color::Cyan,
        Color::LightRed,
        Color::LightMagenta,
        Color::LightBlue,
        Color::LightGreen,
    ];
    CAUSES[rank % CAUSES.len()]
}

/// Backgrounds by growth against the previous success.
pub const HEAT_SHRANK: Color = Color::Indexed(22);
pub const HEAT_SAME: Color = Color::Indexed(238);
/// Grew, within the thresholds.
pub const HEAT_GREW: Color = Color::Indexed(136);
/// Grew past a threshold.
pub const HEAT_REGRESSED: Color = Color::Indexed(124);

// ---- styles by role -------------------------------------------------------------------------

/// Plain text.
pub const PLAIN: Style = Style::new();
/// Emphasis without colour (the focused row and column, titles).
pub const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);
/// The cursor line of a list.
pub const CURSOR: Style = Style::new().add_modifier(Modifier::REVERSED);
/// Secondary text: labels, unfocused arches and columns, hints.
pub const MUTED: Style = Style::new().fg(Color::Gray);
/// Tertiary text: small deltas, notes about the log, unchanged layers.
pub const DIM: Style = Style::new().fg(Color::DarkGray);
/// Things to notice: the filter, prompts, messages, connecting engines, stale marks.
pub const NOTICE: Style = Style::new().fg(Color::Yellow);
/// Something is wrong: an engine down, a tag that will not be published.
pub const ERROR: Style = Style::new().fg(Color::Red);
/// Wrong and worth the eye: a failure line, a regression.
pub const ALARM: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
/// An engine that answers.
pub const OK: Style = Style::new().fg(Color::Green);
/// The app's name in the header.
pub const BRAND: Style = Style::new()
    .add_modifier(Modifier::BOLD)
    .fg(Color::Black)
    .bg(Color::Cyan);
/// The arch shown, among the header's arches.
pub const ARCH_SHOWN: Style = Style::new()
    .add_modifier(Modifier::BOLD)
    .add_modifier(Modifier::REVERSED);
/// The selection marks in the grid.
pub const SELECT_MARK: Style = Style::new().fg(Color::Cyan);
/// Background of selected cells and of the visual range.
pub const SELECTED_BG: Color = Color::Indexed(236);
/// The log line of the current search match.
pub const MATCH_BG: Color = Color::Indexed(58);
/// The inspector's sparkline.
pub const SPARKLINE: Style = Style::new().fg(Color::Cyan);
/// The status bar's selection count.
pub const BADGE: Style = Style::new().fg(Color::Black).bg(Color::Gray);
/// The status bar's search match count.
pub const MATCH_BADGE: Style = Style::new().fg(Color::Black).bg(Color::Yellow);
/// A section title in the help popup.
pub const HEADING: Style = Style::new().add_modifier(Modifier::BOLD).fg(Color::Cyan);
/// Keys in the help popup and popup footers.
pub const KEY: Style = Style::new().fg(Color::Yellow);

// ---- panes ----------------------------------------------------------------------------------

/// The border of a pane that has the keyboard, and of one that has not.
pub const PANE_FOCUSED: Style = Style::new().fg(Color::Cyan);
pub const PANE: Style = Style::new().fg(Color::DarkGray);

/// A bordered pane, highlighted when it has the keyboard: a thick border, so that focus
/// reads without colour too.
pub fn pane_block<'a>(focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(if focused { PANE_FOCUSED } else { PANE })
}

/// The current search match: a background, and reversed so that it shows without colour.
pub const MATCH_CURRENT: Style = Style::new()
    .bg(MATCH_BG)
    .add_modifier(Modifier::BOLD)
    .add_modifier(Modifier::UNDERLINED);

/// The current match of a search in the help or the inspector: reversed and bold (the
/// other matches are underlined), so both read without colour.
pub const SEARCH_CURRENT: Style = Style::new()
    .add_modifier(Modifier::REVERSED)
    .add_modifier(Modifier::BOLD);

/// Another match of a search: underlined.
pub const SEARCH_MATCH: Style = Style::new().add_modifier(Modifier::UNDERLINED);

/// A popup's box.
pub fn popup_block<'a>() -> Block<'a> {
    Block::default().borders(Borders::ALL)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// No colour is named outside this file (test modules and `*_tests.rs` files aside: they
    /// check the colours).
    #[test]
    fn colour_off_by_no_color_or_term() {
        use super::monochrome;
        assert!(monochrome(Some("1"), Some("xterm-256color")));
        assert!(!monochrome(Some(""), Some("xterm-256color")));
        assert!(!monochrome(None, Some("xterm-256color")));
        assert!(monochrome(None, Some("vt100-mono")));
        assert!(monochrome(None, Some("dumb")));
    }

    #[test]
    fn no_colour_literal_outside_the_theme() {
        fn walk(dir: &Path, bad: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, bad);
                } else if p.extension().is_some_and(|x| x == "rs")
                    && !p.ends_with("theme.rs")
                    && !p.ends_with("test_setup.rs")
                    && !p.to_string_lossy().ends_with("_tests.rs")
                {
                    let text = std::fs::read_to_string(&p).unwrap();
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    for (i, line) in code.lines().enumerate() {
                        if line.contains("Color::") {
                            bad.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut bad = vec![];
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui"),
            &mut bad,
        );
        assert!(
            bad.is_empty(),
            "colours outside ui/theme.rs:\n{}",
            bad.join("\n")
        );
    }
}
