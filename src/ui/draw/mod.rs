//! Drawing: the layout here, one file per screen region. Draw code reads [`App`] and never
//! writes into it; what the next input needs from the layout (grid hit areas, log height) is
//! returned as a [`Geometry`] that the runtime stores for `App::on_key` and `App::on_mouse`.

mod confirm;
mod detail;
mod engines;
mod failures;
mod grid;
mod header;
mod help;
mod inspector;
mod list;
mod status;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::state::{App, Geometry, Mode, Pane};
use super::theme;

/// The screen's regions, top to bottom.
#[derive(Debug, Clone, Copy)]
struct Areas {
    header: Rect,
    grid: Rect,
    engines: Rect,
    detail: Rect,
    status: Rect,
}

/// Split the screen. The grid takes what its rows need, up to 45% of the screen between the
/// header and the status lines (the list view up to half), so that the log keeps 10 lines at
/// 80x24; the log gets the rest. Zoomed (`z`), the focused pane takes all of it.
fn layout(app: &App, area: Rect) -> Areas {
    let middle = area.height.saturating_sub(3);
    let (wanted, share) = if app.list.is_some() {
        (app.list_cells().len().max(1) as u16 + 3, 50)
    } else {
        (app.visible_rows().len().max(1) as u16 + 3, 45)
    };
    let grid_h = match (app.zoom, app.pane) {
        (true, Pane::Grid) => middle.saturating_sub(1),
        (true, Pane::Detail) => 0,
        _ => wanted.min(middle * share / 100).max(5),
    };
    let [header, grid, engines, detail, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(grid_h),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        header,
        grid,
        engines,
        detail,
        status,
    }
}

/// Draw the whole screen; returns where the grid and the log were drawn.
pub fn draw(f: &mut Frame, app: &App) -> Geometry {
    let area = f.area();
    let a = layout(app, area);
    header::draw(f, app, a.header);
    let (mut grid, mut list) = (None, None);
    if a.grid.height > 0 {
        if app.failures.is_some() {
            failures::draw(f, app, a.grid);
        } else if app.list.is_some() {
            list = Some(list::draw(f, app, a.grid));
        } else {
            grid = Some(grid::draw(f, app, a.grid));
        }
    }
    engines::draw(f, app, a.engines);
    let log_height = if a.detail.height > 0 {
        detail::draw(f, app, a.detail)
    } else {
        app.geometry.log_height
    };
    status::draw(f, app, a.status);
    let (mut help_max_top, mut help_room) = (0, 0);
    match &app.mode {
        // The help leaves the status line free: its search prompt is typed there.
        _ if app.help_shown() => {
            let above_status = Rect {
                height: area.height.saturating_sub(1),
                ..area
            };
            let search = app.help_search.as_ref();
            (help_max_top, help_room) =
                help::draw(f, app.view_context(), app.help_top, search, above_status);
        }
        Mode::Confirm(c) => confirm::draw(f, app, c, area),
        _ => {}
    }
    if app.mono {
        theme::drop_colours(f.buffer_mut());
    }
    Geometry {
        grid,
        list,
        log_height,
        header: a.header,
        cells: a.grid,
        detail: a.detail,
        help_max_top,
        help_room,
        screen_width: area.width,
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A bordered box in the middle of the screen, sized to its lines.
fn popup(f: &mut Frame, area: Rect, width: u16, title: &str, lines: Vec<Line>) {
    let r = centered(area, width, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(theme::popup_block().title(title.to_string())),
        r,
    );
}

#[cfg(test)]
mod test_setup;

#[cfg(test)]
mod frictions_tests;
#[cfg(test)]
mod key_tests;
#[cfg(test)]
mod search_tests;

#[cfg(test)]
mod tests {
    use ratatui::style::Color;

    use super::test_setup::*;

    /// The one whole-screen pair: every region in its place.
    #[test]
    fn whole_screen_80x24_and_160x48() {
        let mut app = failed_focus_app();
        insta::assert_snapshot!("screen_80x24", text(&render(&mut app, 80, 24)));
        insta::assert_snapshot!("screen_160x48", text(&render(&mut app, 160, 48)));
    }

    #[test]
    fn draw_returns_the_geometry_it_used() {
        let mut app = failed_focus_app();
        render(&mut app, 80, 24);
        let g = app.geometry.grid.expect("the grid is shown");
        assert_eq!((g.first_row, g.rows_shown), (0, 5));
        assert!(app.geometry.log_height > 1);
        app.on_key(key('L'));
        render(&mut app, 80, 24);
        assert_eq!(app.geometry.grid, None, "the list view has no grid cells");
    }

    #[test]
    fn colours_mean_states() {
        let mut app = busy_app();
        app.col = 4; // debian-13/5.4/amd64, whose log is coloured
        let t = render(&mut app, 160, 48);
        let buf = t.backend().buffer();
        let find = |sym: &str| -> Vec<Color> {
            let mut v = vec![];
            for y in 0..buf.area.height {
                for x in 0..buf.area.width {
                    if buf[(x, y)].symbol() == sym {
                        v.push(buf[(x, y)].fg);
                    }
                }
            }
            v
        };
        assert!(find("✗").contains(&Color::Red), "failed cells are red");
        assert!(
            find("✓").contains(&Color::Green),
            "succeeded cells are green"
        );
        // The regression (+18M over a 10 MB threshold) is red; the shrink is not.
        let row_text = |y: u16| -> String {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect()
        };
        let y = (0..buf.area.height)
            .find(|&y| row_text(y).contains("+18M"))
            .expect("the regression is shown");
        let x = (0..buf.area.width)
            .find(|&x| buf[(x, y)].symbol() == "+")
            .unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let y = (0..buf.area.height)
            .find(|&y| row_text(y).contains("-1.0M"))
            .expect("the shrink is shown");
        let x = (0..buf.area.width)
            .find(|&x| buf[(x, y)].symbol() == "-" && buf[(x + 1, y)].symbol() == "1")
            .unwrap();
        assert_ne!(buf[(x, y)].fg, Color::Red);
        // The log keeps the build's colour.
        let found_green_log = (0..buf.area.height).any(|y| {
            (0..buf.area.width)
                .any(|x| buf[(x, y)].symbol() == "c" && buf[(x, y)].fg == Color::Green)
        });
        assert!(found_green_log, "SGR colour from the log is rendered");
    }
}
