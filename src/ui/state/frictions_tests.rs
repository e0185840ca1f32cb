//! Tests of the newcomer's frictions (issue 18), as plain state transitions: every pane
//! scrolls and searches with the log's keys, Esc goes back one level, prompts replace or
//! clear their old text, toggles toggle, messages give way to the next action, the mouse
//! acts where it points.

use super::tests::key;
use super::*;
use ratatui::layout::Rect;

fn app() -> App {
    App::new(
        Matrix::builtin(),
        &HashMap::new(),
        &BTreeSet::new(),
        (10_000_000, 5.0),
    )
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn typed(a: &mut App, text: &str) {
    for c in text.chars() {
        a.on_key(key(c));
    }
}

/// A 175-line Dockerfile for the focused cell, shown in the Dockerfile view.
fn with_dockerfile(a: &mut App) {
    a.geometry.log_height = 7;
    a.on_key(key('d'));
    let id = a.focused().unwrap();
    let text: String = (1..=175)
        .map(|i| {
            if i == 120 {
                "RUN opam install dune\n".to_string()
            } else {
                format!("# line {i}\n")
            }
        })
        .collect();
    a.on_dockerfile_loaded(id, text);
}

#[test]
fn the_dockerfile_scrolls_searches_and_wraps_like_the_log() {
    let mut a = app();
    with_dockerfile(&mut a);
    assert_eq!(a.context(), Context::Dockerfile, "d gives it the keyboard");
    assert_eq!(
        (a.log_view.top, a.log_view.follow),
        (0, false),
        "read from the top"
    );
    a.on_key(key('j'));
    a.on_key(key('j'));
    assert_eq!(a.log_view.top, 2);
    a.on_key(code(KeyCode::PageDown));
    assert_eq!(a.log_view.top, 9);
    a.on_key(key('G'));
    a.on_key(key('k'));
    assert_eq!(a.log_view.top, 175 - 7 - 1, "G then k: one above the end");
    a.on_key(key('g'));
    assert_eq!(a.log_view.top, 0);
    a.on_key(key('/'));
    typed(&mut a, "opam install");
    a.on_key(code(KeyCode::Enter));
    assert_eq!(
        a.log_view.matches,
        vec![119],
        "search runs on the Dockerfile"
    );
    assert!(a.log_view.top <= 119 && 119 < a.log_view.top + 7);
    a.on_key(key('w'));
    assert!(a.log_view.wrap);
    assert_eq!(a.message.as_deref(), Some("wrap on: long lines wrap"));
    a.on_key(key('w'));
    assert!(!a.log_view.wrap, "w toggles back");
}

#[test]
fn esc_goes_back_one_level() {
    let mut a = app();
    with_dockerfile(&mut a);
    a.on_key(key('/'));
    typed(&mut a, "line");
    a.on_key(code(KeyCode::Enter));
    assert!(!a.log_view.matches.is_empty());
    a.on_key(code(KeyCode::Esc));
    assert_eq!(a.log_view.search, None, "first the search");
    assert!(a.log_view.matches.is_empty());
    assert_eq!(a.pane, Pane::Detail);
    a.on_key(code(KeyCode::Esc));
    assert_eq!(a.pane, Pane::Grid, "then back to the grid");
    // Visual range: Esc cancels it, and the next v starts a new one.
    a.on_key(key('v'));
    a.on_key(key('j'));
    a.on_key(key('l'));
    a.on_key(code(KeyCode::Esc));
    assert_eq!(a.visual_anchor, None);
    a.on_key(key('v'));
    a.on_key(key('v'));
    assert_eq!(a.selection.len(), 1, "a fresh range of one cell");
    // A filter: Esc clears it.
    a.on_key(key('/'));
    typed(&mut a, "alpine");
    a.on_key(code(KeyCode::Enter));
    assert_eq!(a.filter, "alpine");
    a.on_key(code(KeyCode::Esc));
    assert_eq!(a.filter, "");
    // The list view: Esc leaves it.
    a.on_key(key('L'));
    a.on_key(code(KeyCode::Esc));
    assert_eq!(a.list, None);
}

#[test]
fn prompts_replace_or_clear_their_old_text() {
    let mut a = app();
    a.on_key(key('/'));
    typed(&mut a, "alpine");
    a.on_key(code(KeyCode::Enter));
    a.on_key(key('/'));
    assert!(matches!(&a.mode, Mode::Filter(p) if p.text == "alpine" && p.selected));
    typed(&mut a, "debian");
    assert!(
        matches!(&a.mode, Mode::Filter(p) if p.text == "debian"),
        "typing replaces"
    );
    a.on_key(ctrl('u'));
    assert!(
        matches!(&a.mode, Mode::Filter(p) if p.text.is_empty()),
        "Ctrl-u clears"
    );
    typed(&mut a, "5.4");
    a.on_key(code(KeyCode::Enter));
    assert_eq!(
        a.columns,
        vec!["5.4".to_string()],
        "a version hides the other columns"
    );
    a.on_key(key('/'));
    a.on_key(ctrl('u'));
    typed(&mut a, "arm64");
    a.on_key(code(KeyCode::Enter));
    assert_eq!(a.current_arch(), "arm64", "an arch shows its tab");
    assert_eq!(a.columns, a.matrix.columns(), "every column again");
}

#[test]
fn row_and_column_selections_toggle() {
    let mut a = app();
    a.on_key(key('r'));
    let n = a.selection.len();
    assert!(n > 1);
    assert!(a.message.as_deref().unwrap().contains("selected"));
    a.on_key(key('r'));
    assert!(a.selection.is_empty(), "r again unselects the row");
    assert!(a.message.as_deref().unwrap().contains("unselected"));
    a.on_key(key('c'));
    assert!(!a.selection.is_empty());
    a.on_key(key('c'));
    assert!(a.selection.is_empty(), "c again unselects the column");
}

#[test]
fn messages_give_way_to_the_next_action() {
    let mut a = app();
    a.on_key(key('H'));
    assert!(a.message.is_some());
    a.on_key(key('j'));
    assert_eq!(a.message, None, "the heat map's message does not linger");
    // Size, growth, cause, then off.
    a.on_key(key('H'));
    a.on_key(key('H'));
    a.on_key(key('H'));
    assert_eq!(
        a.message.as_deref(),
        Some("heat map off: the grid shows status")
    );
}

#[test]
fn list_and_inspector_move_with_every_move_key() {
    let mut a = app();
    a.on_key(key('L'));
    let n = a.list_cells().len();
    a.on_key(key('G'));
    assert_eq!(a.list_cursor, n - 1);
    a.on_key(key('g'));
    assert_eq!(a.list_cursor, 0);
    a.geometry.log_height = 5;
    a.on_key(code(KeyCode::PageDown));
    assert_eq!(a.list_cursor, 5);
    a.on_key(key('L'));
    a.on_key(key('i'));
    assert_eq!(
        a.context(),
        Context::Inspector,
        "i gives the inspector the keyboard"
    );
    let id = a.focused().unwrap();
    a.on_history_loaded(&id, vec![]);
    a.on_key(key('i'));
    assert_eq!(a.context(), Context::Grid, "i again closes it");
}

#[test]
fn zoom_and_a_second_ctrl_c() {
    let mut a = app();
    a.on_key(key('z'));
    assert!(a.zoom);
    a.on_key(code(KeyCode::Esc));
    assert!(!a.zoom, "Esc unzooms");
    a.on_event(BuildEvent::Queued {
        cell: "alpine-3.23/opam/amd64".into(),
    });
    a.on_key(ctrl('c'));
    assert!(matches!(a.mode, Mode::Confirm(Confirm::Quit { .. })));
    let fx = a.on_key(ctrl('c'));
    assert_eq!(fx, vec![Effect::Quit], "a second Ctrl-C quits");
    assert!(a.quit);
}

#[test]
fn the_help_scrolls_and_closes_on_its_keys() {
    let mut a = app();
    a.geometry.help_max_top = 30;
    a.on_key(key('?'));
    a.on_key(key('j'));
    a.on_key(key('j'));
    assert_eq!(a.help_top, 2);
    a.on_key(key('G'));
    assert_eq!(a.help_top, 30);
    a.on_key(key('x'));
    assert_eq!(a.mode, Mode::Help, "other keys do not close it");
    a.on_key(key('q'));
    assert_eq!(a.mode, Mode::Normal);
    assert!(!a.quit, "q closes the help, it does not quit");
}

#[test]
fn the_wheel_scrolls_the_pane_under_the_pointer_and_clicks_act() {
    let mut a = app();
    a.geometry.log_height = 5;
    a.geometry.header = Rect::new(0, 0, 80, 1);
    a.geometry.cells = Rect::new(0, 1, 80, 8);
    a.geometry.detail = Rect::new(0, 10, 80, 12);
    let id = a.focused().unwrap();
    for i in 0..50 {
        a.on_event(BuildEvent::Log {
            cell: id.clone().into(),
            line: format!("line {i}"),
        });
    }
    let wheel = |kind, row| MouseEvent {
        kind,
        column: 10,
        row,
        modifiers: KeyModifiers::NONE,
    };
    a.on_mouse(wheel(MouseEventKind::ScrollUp, 15));
    assert_eq!(
        a.focused().as_deref(),
        Some(id.as_str()),
        "the grid focus stays"
    );
    assert!(!a.log_view.follow);
    assert_eq!(a.log_view.top, 45 - mouse::WHEEL_LINES as usize);
    // A click on the second arch tab shows it.
    let x = mouse::TABS_X + mouse::tab_label("amd64", true).chars().count() as u16 + 1;
    a.on_mouse(wheel(MouseEventKind::Down(MouseButton::Left), 0).with_column(x));
    assert_eq!(a.current_arch(), "arm64");
    // A click on the log gives it the keyboard.
    a.on_mouse(wheel(MouseEventKind::Down(MouseButton::Left), 12));
    assert_eq!(a.pane, Pane::Detail);
    // The list view: a click on its header sorts by the other key, on a row focuses it.
    a.on_key(code(KeyCode::Esc));
    a.on_key(key('L'));
    a.geometry.list = Some(ListGeometry {
        y: 3,
        first: 0,
        rows: 5,
    });
    a.on_mouse(wheel(MouseEventKind::Down(MouseButton::Left), 2));
    assert_eq!(a.list, Some(SortKey::Growth));
    a.on_mouse(wheel(MouseEventKind::Down(MouseButton::Left), 5));
    assert_eq!(a.list_cursor, 2);
}

trait WithColumn {
    fn with_column(self, x: u16) -> Self;
}

impl WithColumn for MouseEvent {
    fn with_column(mut self, x: u16) -> Self {
        self.column = x;
        self
    }
}
