//! The TUI keys the test audit found untested (`R`, `B`, `M`, `s`, `m` and the mouse, `w`,
//! `f`, `D`), pressed on the hand-made busy grid; a click is placed by reading the drawn
//! screen, not the geometry the draw code stored.

use std::collections::BTreeSet;

use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::test_setup::*;
use crate::ui::state::{Confirm, Detail, Effect, Loadable, Mode, Pane};

#[test]
fn r_retries_every_failed_cell_and_b_rebuilds_without_cache() {
    let mut app = busy_app();
    // busy_app: debian-13/5.4/amd64 and debian-13/opam/arm64 failed; nothing else did.
    app.on_key(key('R'));
    let Mode::Confirm(Confirm::Build { cells, no_cache }) = &app.mode else {
        panic!("R asks first: {:?}", app.mode)
    };
    let cells: BTreeSet<&str> = cells.iter().map(String::as_str).collect();
    assert_eq!(
        cells,
        BTreeSet::from(["debian-13/5.4/amd64", "debian-13/opam/arm64"])
    );
    assert!(!no_cache);
    let fx = app.on_key(key('y'));
    assert!(
        matches!(&fx[..], [Effect::Build { cells, no_cache: false }] if cells.len() == 2),
        "{fx:?}"
    );

    // B: the focused cell (no selection), without the engine's cache.
    let focused = app.focused().unwrap();
    app.on_key(key('B'));
    assert_eq!(
        app.mode,
        Mode::Confirm(Confirm::Build {
            cells: vec![focused.clone()],
            no_cache: true
        })
    );
    let fx = app.on_key(key('y'));
    assert_eq!(
        fx,
        vec![Effect::Build {
            cells: vec![focused],
            no_cache: true
        }]
    );
}

#[test]
fn m_merged_log_s_save_w_wrap_f_follow() {
    let mut app = failed_focus_app();
    app.on_key(key('M'));
    assert_eq!(app.detail, Detail::Merged);
    app.on_key(key('M'));
    assert_eq!(app.detail, Detail::Log);

    app.on_key(enter()); // the log pane
    assert_eq!(app.pane, Pane::Detail);
    assert_eq!(
        app.on_key(key('s')),
        vec![Effect::SaveLog {
            cell: "debian-13/5.4/amd64".into()
        }]
    );
    assert!(!app.log_view.wrap);
    app.on_key(key('w'));
    assert!(app.log_view.wrap);
    app.on_key(key('w'));
    assert!(!app.log_view.wrap);
    // Scrolling up stops following; f follows again.
    assert!(app.log_view.follow);
    app.on_key(key('k'));
    assert!(!app.log_view.follow, "k in the log scrolls up");
    app.on_key(key('f'));
    assert!(app.log_view.follow);
}

#[test]
fn d_sets_the_inspector_diff_base() {
    let mut app = inspector_app();
    let Detail::Inspector(Loadable::Ready(_, i)) = &app.detail else {
        panic!("{:?}", app.detail)
    };
    // Opened on the newest build (#3), diffed against the one before (#2).
    let (base, shown) = i.pair().unwrap();
    assert_eq!((base.id, shown.id), (2, 3));
    // `i` gave the inspector the keyboard: D acts there.
    app.on_key(key('D'));
    let Detail::Inspector(Loadable::Ready(_, i)) = &app.detail else {
        panic!("{:?}", app.detail)
    };
    assert_eq!(i.base, Some(i.cursor));
    assert_eq!(
        app.message.as_deref(),
        Some("diff base set: move to another build to compare")
    );
}

#[test]
fn m_toggles_mouse_capture_and_a_click_focuses_the_cell_under_it() {
    let mut app = busy_app();
    assert!(app.mouse_capture);
    assert_eq!(app.on_key(key('m')), vec![Effect::SetMouse(false)]);
    assert!(!app.mouse_capture);
    assert_eq!(app.on_key(key('m')), vec![Effect::SetMouse(true)]);

    // Where the drawn screen shows ubuntu-24.04's row and the 5.4 column.
    let screen = text(&render(&mut app, 160, 48));
    let lines: Vec<&str> = screen.lines().collect();
    let y = lines
        .iter()
        .position(|l| l.starts_with("│ubuntu-24.04") || l.starts_with("┃ubuntu-24.04"))
        .expect("ubuntu-24.04's row");
    let header = lines
        .iter()
        .find(|l| l.contains("opam") && l.contains("4.14"))
        .expect("the column header");
    // Screen x = char index: the header is one cell per char.
    let chars: Vec<char> = header.chars().collect();
    let col = (0..chars.len())
        .find(|&i| chars[i..].starts_with(&['5', '.', '4', ' ']))
        .expect("the 5.4 column");
    let click = |column: usize, row: usize| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: column as u16,
        row: row as u16,
        modifiers: KeyModifiers::NONE,
    };
    app.on_mouse(click(col + 1, y));
    assert_eq!(app.focused().as_deref(), Some("ubuntu-24.04/5.4/amd64"));
    // A click on the header row leaves the focus alone.
    app.on_mouse(click(col + 1, 0));
    assert_eq!(app.focused().as_deref(), Some("ubuntu-24.04/5.4/amd64"));
    // The wheel over the grid moves its focus a row (the wheel acts on the pane under it).
    app.on_mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: (col + 1) as u16,
        row: y as u16,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.focused().as_deref(), Some("alpine-3.24/5.4/amd64"));
}
