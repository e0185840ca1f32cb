//! The grid: distros down, versions across, one cell per arch (or a strip of every arch),
//! coloured by status, size or growth.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::ui::state::{App, CauseRow, CellProgress, GridGeometry, Heat, Pane, Status};
use crate::ui::theme::{self, glyph, pane_block};
use crate::util::text::truncate;
use crate::util::units::human_size_short;

/// The text of one cell in single-arch view: glyph (its cause's, in colour-by-cause mode),
/// step or size, delta.
fn cell_text(
    app: &App,
    causes: Option<&[CauseRow]>,
    id: &str,
    v: &CellProgress,
    width: usize,
) -> Vec<Span<'static>> {
    let mut spans = vec![causes
        .and_then(|rows| super::failures::cause_span(app, rows, id))
        .unwrap_or_else(|| {
            Span::styled(
                glyph(v.status, app.tick).to_string(),
                theme::BOLD.fg(theme::status(v.status)),
            )
        })];
    if v.stale {
        // Own reasons come first: a first reason about the base means no input of its own.
        let glyph = match v.why.first() {
            Some(r) if r.kind.is_base() => theme::STALE_BASE,
            _ => theme::STALE,
        };
        spans.push(Span::styled(glyph, theme::NOTICE));
    }
    let detail = match v.status {
        Status::Building => v.step.map(|(a, b)| format!(" {a}/{b}")).unwrap_or_default(),
        _ => v
            .size
            .map(|s| format!(" {}", human_size_short(s)))
            .unwrap_or_default(),
    };
    spans.push(Span::raw(detail));
    if v.status == Status::Succeeded {
        if let Some(d) = app.delta(id).filter(|d| *d != 0) {
            let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
            let text = format!(
                " {}{}",
                if d > 0 { "+" } else { "-" },
                human_size_short(d.abs())
            );
            if used + text.chars().count() <= width {
                let st = if app.regressed(id) {
                    theme::ALARM
                } else {
                    theme::DIM
                };
                spans.push(Span::styled(text, st));
            }
        }
    }
    spans
}

/// The heat map's glyph of a cell: its size quartile or its growth, so that the map reads
/// without colour.
fn heat_glyph(app: &App, id: &str, max_size: i64) -> Option<&'static str> {
    let v = app.progress.cells.get(id)?;
    match app.heat {
        // By cause, the cell's own glyph is its cause's letter (see `cell_text`).
        Heat::Status | Heat::Cause => None,
        Heat::Size => {
            let t = v.size? as f64 / max_size.max(1) as f64;
            Some(theme::HEAT_SIZE_GLYPHS[theme::size_quartile(t)])
        }
        Heat::Growth => {
            let d = app.delta(id)?;
            Some(if d < 0 {
                theme::HEAT_SHRANK_GLYPH
            } else if d == 0 {
                theme::HEAT_SAME_GLYPH
            } else if app.regressed(id) {
                theme::HEAT_REGRESSED_GLYPH
            } else {
                theme::HEAT_GREW_GLYPH
            })
        }
    }
}

/// The line under the grid: the heat map's legend, or the strip view's arch order.
fn legend(app: &App) -> Option<String> {
    if app.all_arches {
        let slots: Vec<String> = app
            .arch_names()
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}:{a}", i + 1))
            .collect();
        return Some(format!(
            " strip: one slot per arch, in order {} (– none) ",
            slots.join(" ")
        ));
    }
    match app.heat {
        Heat::Status => None,
        Heat::Size => Some(theme::HEAT_SIZE_LEGEND.to_string()),
        Heat::Growth => Some(theme::HEAT_GROWTH_LEGEND.to_string()),
        // The causes' legend is in the grid's title.
        Heat::Cause => None,
    }
}

/// Background of a cell in the heat-map modes: size relative to the largest shown, or
/// growth (green shrank, yellow grew within the thresholds, red regressed).
fn heat_colour(app: &App, id: &str, max_size: i64) -> Option<Color> {
    let v = app.progress.cells.get(id)?;
    match app.heat {
        Heat::Status | Heat::Cause => None,
        Heat::Size => {
            let t = v.size? as f64 / max_size.max(1) as f64;
            Some(theme::heat_size(t))
        }
        Heat::Growth => {
            let d = app.delta(id)?;
            Some(if d < 0 {
                theme::HEAT_SHRANK
            } else if d == 0 {
                theme::HEAT_SAME
            } else if app.regressed(id) {
                theme::HEAT_REGRESSED
            } else {
                theme::HEAT_GREW
            })
        }
    }
}

/// Draw the grid; returns where its cells are, for mouse hits.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) -> GridGeometry {
    let max_size = app
        .progress
        .cells
        .values()
        .filter_map(|c| c.size)
        .max()
        .unwrap_or(1);
    let focused_pane = app.pane == Pane::Grid;
    let rows = app.visible_rows();
    let name_w = rows.iter().map(|r| r.len()).max().unwrap_or(8).clamp(8, 20) as u16 + 1;
    // Columns narrower than this scroll sideways instead (a plan's 36 switches), keeping the
    // focused column in view.
    const MIN_CELL_W: u16 = 8;
    let inner_w = pane_block(focused_pane).inner(area).width;
    let avail = inner_w.saturating_sub(name_w);
    let fit = ((avail / MIN_CELL_W) as usize).max(1);
    let total = app.columns.len().max(1);
    let shown = total.min(fit);
    let first_col = if app.col >= shown {
        app.col + 1 - shown
    } else {
        0
    };
    let ncols = shown as u16;
    let cell_w = (avail / ncols).max(3);
    let title = if shown < total {
        format!(
            " grid: distro × OCaml version · {}–{} of {} columns {}{}",
            first_col + 1,
            first_col + shown,
            total,
            if first_col > 0 { "‹" } else { "" },
            if first_col + shown < total { "›" } else { "" }
        )
    } else {
        " grid: distro × OCaml version ".to_string()
    };
    let causes = (app.heat == Heat::Cause).then(|| app.cause_rows());
    let title = match &causes {
        Some(rows) => format!("{title}· by cause: {} ", super::failures::legend(rows)),
        None => title,
    };
    let mut block = pane_block(focused_pane).title(title);
    if let Some(l) = legend(app) {
        block = block.title_bottom(Line::styled(l, theme::BOLD));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let body_h = inner.height.saturating_sub(1) as usize;
    let first_row = if app.row >= body_h {
        app.row + 1 - body_h
    } else {
        0
    };
    let visual = app.visual_anchor.map(|(r0, c0)| {
        (
            (r0.min(app.row), r0.max(app.row)),
            (c0.min(app.col), c0.max(app.col)),
        )
    });

    let mut lines = Vec::new();
    let mut head = vec![Span::raw(format!("{:w$}", "", w = name_w as usize))];
    for (i, c) in app.columns.iter().enumerate().skip(first_col).take(shown) {
        let st = if i == app.col {
            theme::BOLD
        } else {
            theme::MUTED
        };
        head.push(Span::styled(
            format!(
                "{:w$}",
                truncate(c, cell_w as usize - 1),
                w = cell_w as usize
            ),
            st,
        ));
    }
    lines.push(Line::from(head));
    for (ri, distro) in rows.iter().enumerate().skip(first_row).take(body_h) {
        let mut spans = vec![Span::styled(
            format!(
                "{:w$}",
                truncate(distro, name_w as usize - 1),
                w = name_w as usize
            ),
            if ri == app.row {
                theme::BOLD
            } else {
                theme::PLAIN
            },
        )];
        for ci in first_col..first_col + shown.min(app.columns.len()) {
            let cells = app.cells_at(distro, ci);
            let focused = ri == app.row && ci == app.col;
            let in_visual = visual
                .is_some_and(|((ra, rb), (ca, cb))| ri >= ra && ri <= rb && ci >= ca && ci <= cb);
            let mut content: Vec<Span> = if cells.is_empty() {
                vec![Span::styled(theme::EXCLUDED, theme::DIM)]
            } else if app.all_arches {
                // One slot per arch of the matrix, in order; `–` where the distro lacks it.
                app.arch_names()
                    .iter()
                    .map(|arch| match cells.iter().find(|c| c.arch == *arch) {
                        Some(c) => {
                            let v = &app.progress.cells[&c.id];
                            let mut st = Style::new().fg(theme::status(v.status));
                            if focused && c.arch == app.current_arch() {
                                st = st.add_modifier(Modifier::UNDERLINED);
                            }
                            match causes
                                .as_deref()
                                .and_then(|rows| super::failures::cause_span(app, rows, &c.id))
                            {
                                Some(s) => {
                                    let fg = s.style.fg.unwrap_or_default();
                                    s.patch_style(st.fg(fg))
                                }
                                None => Span::styled(glyph(v.status, app.tick).to_string(), st),
                            }
                        }
                        None => Span::styled(theme::EXCLUDED, theme::DIM),
                    })
                    .collect()
            } else {
                let c = cells[0];
                let heat = heat_glyph(app, &c.id, max_size);
                let room = cell_w as usize - 1 - usize::from(heat.is_some());
                let mut spans = cell_text(
                    app,
                    causes.as_deref(),
                    &c.id,
                    &app.progress.cells[&c.id],
                    room,
                );
                if let Some(g) = heat {
                    spans.insert(0, Span::raw(g));
                }
                spans
            };
            let selected = !cells.is_empty() && cells.iter().all(|c| app.selection.contains(&c.id));
            let partly = !selected && cells.iter().any(|c| app.selection.contains(&c.id));
            if selected || partly {
                content.insert(
                    0,
                    Span::styled(
                        if selected {
                            theme::SELECTED
                        } else {
                            theme::PARTLY_SELECTED
                        },
                        theme::SELECT_MARK,
                    ),
                );
            }
            let used: usize = content.iter().map(|s| s.content.chars().count()).sum();
            content.push(Span::raw(
                " ".repeat((cell_w as usize).saturating_sub(used)),
            ));
            let mut extra = Style::new();
            if let Some(bg) = cells
                .first()
                .filter(|_| !app.all_arches)
                .and_then(|c| heat_colour(app, &c.id, max_size))
            {
                // Text keeps its contrast on the ramp: white and bold, not the status colour.
                extra = extra.patch(theme::HEAT_TEXT).bg(bg);
            }
            if selected || in_visual {
                // Underlined as well as shaded: the range shows without colour.
                extra = extra
                    .bg(theme::SELECTED_BG)
                    .add_modifier(Modifier::UNDERLINED);
            }
            if focused {
                extra = extra.add_modifier(Modifier::REVERSED);
            }
            for s in content {
                let st = s.style.patch(extra);
                spans.push(Span::styled(s.content, st));
            }
        }
        lines.push(Line::from(spans));
    }
    if rows.is_empty() {
        lines.push(Line::styled(
            "  no distro matches the filter (/ to change it)",
            theme::NOTICE,
        ));
    }
    f.render_widget(Paragraph::new(lines), inner);
    GridGeometry {
        x: inner.x,
        y: inner.y,
        first_cell_x: inner.x + name_w,
        cell_width: cell_w,
        rows_shown: body_h.min(rows.len().saturating_sub(first_row)) as u16,
        first_row,
        first_col,
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::Color;

    use super::super::test_setup::*;
    use super::draw;

    fn shot(app: &App, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
        region(
            app,
            w,
            h,
            |a| a.grid,
            |f, app, r| {
                draw(f, app, r);
            },
        )
    }

    use crate::ui::state::App;

    #[test]
    fn one_arch_focused_on_a_failed_cell() {
        let app = failed_focus_app();
        insta::assert_snapshot!("grid_80x24", shot(&app, 80, 24).0);
        insta::assert_snapshot!("grid_160x48", shot(&app, 160, 48).0);
    }

    #[test]
    fn strip_view_and_selection() {
        let mut app = busy_app();
        app.on_key(tab());
        app.on_key(key('r'));
        insta::assert_snapshot!("strip_80x24", shot(&app, 80, 24).0);
        insta::assert_snapshot!("strip_160x48", shot(&app, 160, 48).0);
    }

    #[test]
    fn heat_map_by_growth() {
        let mut app = busy_app();
        app.on_key(key('H'));
        app.on_key(key('H'));
        let (_, buf) = shot(&app, 160, 48);
        let bg_of = |needle: &str| {
            for y in 0..buf.area.height {
                let row: String = (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect();
                if let Some(col) = row.find(needle) {
                    let x = row[..col].chars().count() as u16;
                    return buf[(x, y)].bg;
                }
            }
            panic!("{needle} not on screen");
        };
        // The regressed cell is red, the shrunk one green.
        assert_eq!(
            bg_of("✓ 62M"),
            Color::Indexed(136),
            "alpine grew 1.5 MB (2.5%): within the thresholds"
        );
        assert_eq!(
            bg_of("✓ 412M"),
            Color::Indexed(124),
            "debian-13 base grew 18 MB: regressed"
        );
        assert_eq!(bg_of("✓ 730M"), Color::Indexed(22), "shrank");
    }

    #[test]
    fn base_stale_reads_apart_from_input_stale() {
        use crate::why::{Reason, ReasonKind, Reasons};
        let marks = |kind: ReasonKind| {
            let mut app = busy_app();
            let reasons: Reasons = app
                .progress
                .cells
                .keys()
                .map(|id| {
                    let r = Reason {
                        kind,
                        detail: "d".into(),
                        diff: None,
                    };
                    (id.clone(), vec![r])
                })
                .collect();
            app.progress.set_reasons(&reasons);
            let text = shot(&app, 160, 48).0;
            (text.matches('~').count(), text.matches('^').count())
        };
        let (input_tilde, input_caret) = marks(ReasonKind::Input);
        let (base_tilde, base_caret) = marks(ReasonKind::BaseRebuilt);
        assert!(input_tilde > base_tilde, "{input_tilde} {base_tilde}");
        assert_eq!(
            input_tilde - base_tilde,
            base_caret - input_caret,
            "each stale cell shows one glyph or the other"
        );
    }

    #[test]
    fn filter_matching_nothing() {
        let mut app = busy_app();
        app.filter = "nothing-matches".into();
        insta::assert_snapshot!("grid_empty_80x24", shot(&app, 80, 24).0);
    }

    /// A plan whose debian-13 has the 36 switches the pipeline builds on amd64 (builds.expected,
    /// 2026-05) and alpine-3.23 the plain ones: a tier-1 distro's columns.
    fn wide_plan_matrix() -> crate::matrix::Matrix {
        const SWITCHES: &str = "4.11.2 4.11.2+afl 4.11.2+flambda 4.11.2+fp 4.14.3 4.14.3+afl \
            4.14.3+flambda 4.14.3+flambda+fp 4.14.3+fp 4.14.3+nnp 4.14.3+nnpchecker \
            4.14.3+no-flat-float-array 5.2.1 5.2.1+afl 5.2.1+flambda 5.2.1+no-flat-float-array \
            5.3.0 5.3.0+afl 5.3.0+flambda 5.3.0+no-flat-float-array 5.4.1 5.4.1+afl 5.4.1+flambda \
            5.4.1+no-flat-float-array 5.5.0~beta1 5.5.0~beta1+afl 5.5.0~beta1+flambda \
            5.5.0~beta1+no-flat-float-array 5.5.0 5.5.0+afl 5.5.0+flambda 5.5.0+no-flat-float-array \
            5.6.0 5.6.0+afl 5.6.0+flambda 5.6.0+no-flat-float-array";
        let mut dump = String::new();
        for (distro, plain_only) in [("debian-13", false), ("alpine-3.23", true)] {
            dump.push_str(&format!("{distro}\n{distro}/amd64\n\tFROM x\n"));
            for s in SWITCHES.split_whitespace() {
                if plain_only && s.contains('+') {
                    continue;
                }
                dump.push_str(&format!(
                    "{s}/amd64\n\tFROM ocurrent/opam-staging:{distro}-opam-amd64\n"
                ));
            }
        }
        let plan = crate::plan::Plan::parse(std::path::Path::new("wide.dump"), &dump).unwrap();
        crate::matrix::Matrix::from_plan(&crate::config::LoadedConfig::defaults(), plan).unwrap()
    }

    #[test]
    fn a_plans_36_switch_columns_scroll_sideways() {
        let m = wide_plan_matrix();
        assert_eq!(m.columns().len(), 37);
        let mut app = App::new(
            m,
            &std::collections::HashMap::new(),
            &std::collections::BTreeSet::new(),
            (10_000_000, 5.0),
        );
        app.on_event(finished(
            "debian-13/4.14-flambda/amd64",
            crate::store::BuildStatus::Succeeded,
            Some(900_000_000),
            None,
            None,
        ));
        insta::assert_snapshot!("plan_grid_80x24", shot(&app, 80, 24).0);
        // The focus moves right past the edge: the columns follow it.
        for _ in 0..20 {
            app.on_key(key('l'));
        }
        let (screen, _) = shot(&app, 80, 24);
        assert!(screen.contains("5.2-afl"), "{screen}");
        assert!(
            !screen.contains(" 4.11 "),
            "scrolled past the first columns: {screen}"
        );
        insta::assert_snapshot!("plan_grid_80x24_scrolled", screen);
        insta::assert_snapshot!("plan_grid_160x48_scrolled", shot(&app, 160, 48).0);
    }
}
