//! Draw tests of the newcomer's frictions (issue 18) at 80x24 and 160x48: without colour
//! every meaning keeps an attribute or a glyph; heat maps have legends; the Dockerfile view
//! scrolls; a zoomed pane takes the screen; a failure line wraps instead of hiding its reason;
//! a queued cell says what it waits for.

use ratatui::style::{Color, Modifier};

use super::test_setup::*;
use crate::ui::state::App;

fn screen(app: &mut App, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
    let t = render(app, w, h);
    (text(&t), t.backend().buffer().clone())
}

#[test]
fn without_colour_focus_tab_and_range_keep_their_marks() {
    let mut app = busy_app();
    app.mono = true;
    app.on_key(key('v'));
    app.on_key(key('l'));
    let (text, buf) = screen(&mut app, 80, 24);
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "no colour is drawn"
    );
    let reversed = buf
        .content
        .iter()
        .filter(|c| c.modifier.contains(Modifier::REVERSED))
        .count();
    let underlined = buf
        .content
        .iter()
        .filter(|c| c.modifier.contains(Modifier::UNDERLINED))
        .count();
    assert!(reversed > 0, "the focused cell is reversed");
    assert!(underlined >= 8, "the visual range is underlined");
    assert!(
        text.contains("[amd64]"),
        "the shown tab is bracketed:\n{text}"
    );
    assert!(
        text.contains('┏'),
        "the focused pane's border is thick:\n{text}"
    );
    assert!(text.contains("VISUAL"), "{text}");
}

#[test]
fn heat_maps_carry_glyphs_and_a_legend() {
    let mut app = busy_app();
    app.on_key(key('H'));
    let grid = |app: &App, w, h| {
        region(
            app,
            w,
            h,
            |a| a.grid,
            |f, app, r| {
                super::grid::draw(f, app, r);
            },
        )
    };
    let (size, _) = grid(&app, 80, 24);
    assert!(size.contains("size: ▁ <25%"), "{size}");
    insta::assert_snapshot!("heat_size_80x24", size);
    app.on_key(key('H'));
    let (growth, buf) = grid(&app, 160, 48);
    assert!(
        growth.contains("‼"),
        "the regression has its glyph:\n{growth}"
    );
    assert!(growth.contains("▼"), "the shrink has its glyph:\n{growth}");
    insta::assert_snapshot!("heat_growth_160x48", growth);
    // Text on the ramp is white and bold, never red on red.
    let y = row_with(&buf, "+18M").expect("the regression is shown");
    let row: String = (0..buf.area.width)
        .map(|x| buf[(x, y)].symbol().to_string())
        .collect();
    let x = row[..row.find("+18M").unwrap()].chars().count() as u16;
    assert_eq!(buf[(x, y)].fg, Color::White);
    assert_eq!(buf[(x, y)].bg, Color::Indexed(124));
}

#[test]
fn the_dockerfile_view_scrolls_and_a_zoomed_pane_takes_the_screen() {
    let mut app = failed_focus_app();
    app.on_key(key('d'));
    let id = app.focused().unwrap();
    let text: String = (1..=175).map(|i| format!("RUN step {i}\n")).collect();
    app.on_dockerfile_loaded(id, text);
    render(&mut app, 80, 24);
    for _ in 0..3 {
        app.on_key(ctrl_key('d'));
    }
    let (s, _) = screen(&mut app, 80, 24);
    assert!(
        !s.contains("RUN step 1 ") && s.contains("RUN step 34"),
        "{s}"
    );
    insta::assert_snapshot!("dockerfile_scrolled_80x24", s);
    app.on_key(key('z'));
    let (s, _) = screen(&mut app, 160, 48);
    assert!(!s.contains("grid: distro"), "zoomed: no grid:\n{s}");
    insta::assert_snapshot!("dockerfile_zoomed_160x48", s);
}

#[test]
fn a_long_failure_wraps_with_its_reason_first_and_a_queued_cell_says_why() {
    let mut app = failed_focus_app();
    let long = crate::model::failure_line::failure_line(
        None,
        &crate::model::failure::Failure {
            exit_code: Some(2),
            reason: Some("error: OCaml headers not found".into()),
            step: Some("[opam-builder 3/4] RUN printf 'checking for caml/mlvalues.h... \\033[31mno\\033[0m' && exit 2".into()),
            command: Some("printf 'checking for caml/mlvalues.h... \\033[31mno\\033[0m' && exit 2".into()),
        },
    );
    let id = app.focused().unwrap();
    app.on_event(finished(
        &id,
        crate::store::BuildStatus::Failed,
        None,
        None,
        Some(&long),
    ));
    let (s, _) = screen(&mut app, 80, 24);
    assert!(
        s.contains("✗ exit code 2: error: OCaml headers not found"),
        "{s}"
    );
    assert!(s.contains("step opam-builder 3/4"), "{s}");
    insta::assert_snapshot!("failure_wrapped_80x24", s);
    // debian-13/5.5/amd64 is queued; amd64's engine answers: it waits for a slot.
    let mut busy = busy_app();
    busy.col = 5;
    let (s, _) = screen(&mut busy, 160, 48);
    assert!(s.contains("queued: waiting for a free slot"), "{s}");
    // An arm64 cell whose only engine is down names it and its error.
    busy.on_event(crate::scheduler::BuildEvent::Queued {
        cell: "debian-13/5.5/arm64".into(),
    });
    busy.on_key(key(']'));
    let (s, _) = screen(&mut busy, 160, 48);
    assert!(
        s.contains("queued: waiting for engine arm (TLS handshake failed) to answer"),
        "{s}"
    );
}
