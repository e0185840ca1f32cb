//! Searching the help and the size inspector with the log's keys (issue 18, NEWCOMER rows 1,
//! 5 and 21): `/` opens the prompt, `n`/`N` step through the matches, the view scrolls to
//! the current one, `Esc` clears the search before it closes anything. State transitions
//! first (no terminal), then what the screen shows at 80x24, with and without colour.

use ratatui::style::{Color, Modifier};

use super::test_setup::*;
use crate::ui::keymap::Context;
use crate::ui::state::{App, Detail, Loadable, Mode};

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(c));
    }
}

fn search(app: &mut App, text: &str) {
    app.on_key(key('/'));
    assert_eq!(app.context(), crate::ui::keymap::Context::Prompt);
    typed(app, text);
    app.on_key(enter());
}

/// The busy grid with its help open, drawn once at `w`x`h` (the help's geometry).
fn help_app(w: u16, h: u16) -> App {
    let mut app = busy_app();
    app.on_key(key('?'));
    render(&mut app, w, h);
    app
}

#[test]
fn help_search_steps_scrolls_and_esc_clears_it_first() {
    let mut app = help_app(80, 24);
    let lines = app.help_text();
    search(&mut app, "selection");
    assert_eq!(app.mode, Mode::Help, "the help stays open after its search");
    let s = app.help_search.clone().expect("a search");
    let want: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.to_lowercase().contains("selection"))
        .map(|(i, _)| i)
        .collect();
    assert!(want.len() >= 3, "{lines:#?}");
    assert_eq!(s.matches, want);
    let in_view = |a: &App| {
        let line = a.help_search.as_ref().unwrap().current_line().unwrap();
        line >= a.help_top && line < a.help_top + a.geometry.help_room
    };
    assert!(in_view(&app));
    // The last match is below the first page: N from the first wraps and scrolls to it.
    app.on_key(key('N'));
    assert_eq!(app.help_search.as_ref().unwrap().current, want.len() - 1);
    assert!(
        app.help_top > 0 && in_view(&app),
        "scrolled to {}",
        app.help_top
    );
    app.on_key(key('n'));
    assert_eq!(app.help_search.as_ref().unwrap().current, 0);
    assert!(in_view(&app));
    app.on_key(key('n'));
    assert_eq!(app.help_search.as_ref().unwrap().current, 1);
    // A resize rewraps the help: n finds the matches on the new lines.
    render(&mut app, 60, 15);
    app.on_key(key('n'));
    let narrow = app.help_text();
    let s = app.help_search.as_ref().unwrap();
    assert!(
        narrow[s.current_line().unwrap()].contains("selection"),
        "{s:?}"
    );
    assert!(in_view(&app));
    render(&mut app, 80, 24);
    // / reopens on the old text, selected: typing replaces it.
    app.on_key(key('/'));
    assert!(matches!(&app.mode, Mode::Search(p) if p.text == "selection" && p.selected));
    app.on_key(esc());
    assert_eq!(
        app.mode,
        Mode::Help,
        "Esc in the prompt goes back to the help"
    );
    assert!(
        app.help_search.is_some(),
        "cancelling the prompt keeps the search"
    );
    // Esc clears the search, then closes the help.
    app.on_key(esc());
    assert_eq!(
        (app.mode.clone(), app.help_search.clone()),
        (Mode::Help, None)
    );
    app.on_key(esc());
    assert_eq!(app.mode, Mode::Normal);
    app.on_key(key('?'));
    app.on_key(key('n'));
    assert_eq!(
        app.message.as_deref(),
        Some("no search: / searches the help")
    );
    app.on_key(esc());
    // A search with no match says so.
    app.on_key(key('?'));
    search(&mut app, "zzzz");
    assert_eq!(app.message.as_deref(), Some("no match for \"zzzz\""));
}

#[test]
fn inspector_search_moves_the_cursor_to_a_build_and_scrolls_to_a_layer() {
    let mut app = inspector_app();
    render(&mut app, 80, 24);
    assert_eq!(app.context(), Context::Inspector);
    let cursor = |a: &App| match &a.detail {
        Detail::Inspector(Loadable::Ready(_, i)) => i.cursor,
        _ => panic!("inspector not ready"),
    };
    assert_eq!(cursor(&app), 1, "the newest build first");
    // Build #2's row (its date) moves the cursor to it.
    search(&mut app, "11-22");
    assert_eq!(cursor(&app), 0);
    assert_eq!(app.message.as_deref(), Some("match 1 of 1 for \"11-22\""));
    // A layer of the build shown: apt-get is in both builds' diff rows.
    app.on_key(key('j')); // the keyboard moves the cursor; the search follows the layers
    search(&mut app, "git clone");
    let s = app.inspector_search().unwrap().clone();
    let n_builds = 2;
    assert_eq!(s.matches.len(), 1, "{s:?}");
    assert!(s.matches[0] >= n_builds, "a layer row: {s:?}");
    assert_eq!(cursor(&app), 1);
    // j/k to the first build: its layers have no git clone.
    app.on_key(key('k'));
    assert_eq!(cursor(&app), 0);
    assert!(app.inspector_search().unwrap().matches.is_empty());
    app.on_key(key('n'));
    assert_eq!(app.message.as_deref(), Some("no match for \"git clone\""));
    // Esc clears the search first, then gives the keyboard back to the grid.
    app.on_key(esc());
    assert!(app.inspector_search().is_none());
    assert_eq!(app.context(), Context::Inspector);
    app.on_key(esc());
    assert_eq!(app.context(), Context::Grid);
}

#[test]
fn help_search_at_80x24_underlines_matches_and_reverses_the_current() {
    let mut app = help_app(80, 24);
    app.mono = true;
    search(&mut app, "select");
    app.on_key(key('n'));
    let t = render(&mut app, 80, 24);
    let buf = t.backend().buffer();
    assert!(buf
        .content
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    let row_has = |y: u16, m: Modifier| (0..80).any(|x| buf[(x, y)].modifier.contains(m));
    let lines = app.help_text();
    let s = app.help_search.as_ref().unwrap();
    let current = lines[s.current_line().unwrap()].trim_end();
    let other = lines[s.matches[0]].trim_end();
    let current = row_with(buf, current).expect("the current match is on screen");
    assert!(
        row_has(current, Modifier::REVERSED),
        "current match reversed"
    );
    let other = row_with(buf, other).expect("the first match is on screen");
    assert!(row_has(other, Modifier::UNDERLINED) && !row_has(other, Modifier::REVERSED));
    let shot = text(&t);
    assert!(
        shot.contains("match 2 of"),
        "the status line says which: {shot}"
    );
    insta::assert_snapshot!("help_search_80x24", shot);
}

#[test]
fn inspector_search_at_80x24() {
    let mut app = inspector_app();
    let t = render(&mut app, 80, 24);
    // NEWCOMER 21: the inspector's own keys fit in the status line at 80 columns.
    let status = text(&t).lines().last().unwrap().to_string();
    assert!(
        status.contains("j/k build · D diff base · / search · i close"),
        "{status}"
    );
    assert_eq!(status.matches("D diff base").count(), 1, "{status}");
    search(&mut app, "apt-get");
    let t = render(&mut app, 80, 24);
    let buf = t.backend().buffer();
    let y = row_with(buf, "apt-get").expect("the layer is shown");
    assert!(
        (0..80).any(|x| buf[(x, y)].modifier.contains(Modifier::REVERSED)),
        "the current match is reversed"
    );
    insta::assert_snapshot!("inspector_search_80x24", text(&t));
}
