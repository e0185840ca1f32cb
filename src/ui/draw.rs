//! Drawing: one function per screen region, reading [`App`] only.

use ansi_to_tui::IntoText;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{
    App, CellProgress, Confirm, DetailMode, GridGeometry, Heat, Mode, Pane, SortKey, Status,
};
use super::keymap::{bindings_for, Context, KEYMAP};
use crate::util::text::truncate;
use crate::util::units::{human_size, human_size_short};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

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

/// The colour of a status.
pub fn colour(s: Status) -> Color {
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

/// Draw the whole screen. `app` is mutable only to record geometry for mouse hits and paging.
pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    // The grid takes what its rows need, up to 60% of the screen; the log gets the rest.
    let grid_rows = app.visible_rows().len().max(1) as u16 + 3;
    let grid_h = grid_rows.min(area.height.saturating_sub(3) * 6 / 10).max(5);
    let [header, grid, engines, detail, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(grid_h),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    draw_grid(f, app, grid);
    draw_engines(f, app, engines);
    draw_detail(f, app, detail);
    draw_status(f, app, status);
    match app.mode.clone() {
        Mode::Help => draw_help(f, area),
        Mode::Confirm(c) => draw_confirm(f, app, &c, area),
        _ => {}
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![
        Span::styled(
            " imagegrid ",
            Style::new()
                .add_modifier(Modifier::BOLD)
                .fg(Color::Black)
                .bg(Color::Cyan),
        ),
        Span::raw(" "),
    ];
    if app.all_arches {
        spans.push(Span::styled(
            "all arches",
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" (focus {})", app.current_arch())));
    } else {
        for (i, a) in app.arch_names().iter().enumerate() {
            let st = if i == app.arch {
                Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
            } else {
                Style::new().fg(Color::Gray)
            };
            spans.push(Span::styled(format!(" {a} "), st));
        }
    }
    spans.push(Span::raw(format!(
        "  {} cells · {} selected",
        app.matrix.cells.len(),
        app.selection.len()
    )));
    if !app.filter.is_empty() {
        spans.push(Span::styled(
            format!(" · filter: {}", app.filter),
            Style::new().fg(Color::Yellow),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The text of one cell in single-arch view: glyph, step or size, delta.
fn cell_text(app: &App, id: &str, v: &CellProgress, width: usize) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(
        glyph(v.status, app.tick).to_string(),
        Style::new()
            .fg(colour(v.status))
            .add_modifier(Modifier::BOLD),
    )];
    if v.stale {
        spans.push(Span::styled("~", Style::new().fg(Color::Yellow)));
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
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
                } else {
                    Style::new().fg(Color::DarkGray)
                };
                spans.push(Span::styled(text, st));
            }
        }
    }
    spans
}

/// A bordered pane, highlighted when it has the keyboard.
fn pane_block<'a>(focused: bool) -> Block<'a> {
    let colour = if focused {
        Color::Cyan
    } else {
        Color::DarkGray
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(colour))
}

/// Background of a cell in the heat-map modes: size relative to the largest shown, or
/// growth (green shrank, yellow grew within the thresholds, red regressed).
fn heat_colour(app: &App, id: &str, max_size: i64) -> Option<Color> {
    let v = app.progress.cells.get(id)?;
    match app.heat {
        Heat::Status => None,
        Heat::Size => {
            let t = v.size? as f64 / max_size.max(1) as f64;
            Some(Color::Indexed(match t {
                t if t < 0.25 => 22,
                t if t < 0.5 => 28,
                t if t < 0.75 => 136,
                _ => 124,
            }))
        }
        Heat::Growth => {
            let d = app.delta(id)?;
            Some(if d < 0 {
                Color::Indexed(22)
            } else if d == 0 {
                Color::Indexed(238)
            } else if app.regressed(id) {
                Color::Indexed(124)
            } else {
                Color::Indexed(136)
            })
        }
    }
}

fn draw_grid(f: &mut Frame, app: &mut App, area: Rect) {
    if app.list.is_some() {
        return draw_list(f, app, area);
    }
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
    let block = pane_block(focused_pane).title(title);
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
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Gray)
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
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            },
        )];
        for ci in first_col..first_col + shown.min(app.columns.len()) {
            let cells = app.cells_at(distro, ci);
            let focused = ri == app.row && ci == app.col;
            let in_visual = visual
                .is_some_and(|((ra, rb), (ca, cb))| ri >= ra && ri <= rb && ci >= ca && ci <= cb);
            let mut content: Vec<Span> = if cells.is_empty() {
                vec![Span::styled("–", Style::new().fg(Color::DarkGray))]
            } else if app.all_arches {
                cells
                    .iter()
                    .map(|c| {
                        let v = &app.progress.cells[&c.id];
                        let mut st = Style::new().fg(colour(v.status));
                        if focused && c.arch == app.current_arch() {
                            st = st.add_modifier(Modifier::UNDERLINED);
                        }
                        Span::styled(glyph(v.status, app.tick).to_string(), st)
                    })
                    .collect()
            } else {
                let c = cells[0];
                cell_text(app, &c.id, &app.progress.cells[&c.id], cell_w as usize - 1)
            };
            let selected = !cells.is_empty() && cells.iter().all(|c| app.selection.contains(&c.id));
            let partly = !selected && cells.iter().any(|c| app.selection.contains(&c.id));
            if selected || partly {
                content.insert(
                    0,
                    Span::styled(
                        if selected { "▸" } else { "▹" },
                        Style::new().fg(Color::Cyan),
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
                extra = extra.bg(bg);
            }
            if selected || in_visual {
                extra = extra.bg(Color::Indexed(236));
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
            Style::new().fg(Color::Yellow),
        ));
    }
    f.render_widget(Paragraph::new(lines), inner);
    app.grid_geometry = Some(GridGeometry {
        x: inner.x,
        y: inner.y,
        first_cell_x: inner.x + name_w,
        cell_width: cell_w,
        rows_shown: body_h.min(rows.len().saturating_sub(first_row)) as u16,
        first_row,
        first_col,
    });
}

/// The list view: cells sorted by size or growth.
fn draw_list(f: &mut Frame, app: &mut App, area: Rect) {
    let key = if app.list == Some(SortKey::Growth) {
        "growth"
    } else {
        "size"
    };
    let block = pane_block(app.pane == Pane::Grid).title(format!(
        " cells by {key} (o: sort by the other, L: back to the grid) "
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let ids = app.list_cells();
    let h = inner.height as usize;
    let first = if app.list_cursor >= h {
        app.list_cursor + 1 - h
    } else {
        0
    };
    let w = ids.iter().map(|i| i.len()).max().unwrap_or(10) + 2;
    let mut lines = Vec::new();
    for (i, id) in ids.iter().enumerate().skip(first).take(h) {
        let v = &app.progress.cells[id];
        let delta = app
            .delta(id)
            .map(|d| {
                format!(
                    "{}{}",
                    if d > 0 {
                        "+"
                    } else if d < 0 {
                        "-"
                    } else {
                        "±"
                    },
                    human_size(d.abs())
                )
            })
            .unwrap_or_default();
        let mut st = Style::new();
        if app.regressed(id) {
            st = st.fg(Color::Red).add_modifier(Modifier::BOLD);
        }
        let mut line = Line::from(vec![
            Span::styled(
                format!("{} ", glyph(v.status, app.tick)),
                Style::new().fg(colour(v.status)),
            ),
            Span::raw(format!("{id:w$}")),
            Span::raw(format!(
                "{:>10} ",
                v.size.map(human_size).unwrap_or_default()
            )),
            Span::styled(format!("{delta:>12}"), st),
        ]);
        if i == app.list_cursor {
            line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
    app.grid_geometry = None;
}

fn draw_engines(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled("engines ", Style::new().fg(Color::Gray))];
    if app.progress.engines.is_empty() {
        spans.push(Span::styled("connecting…", Style::new().fg(Color::Yellow)));
    }
    for (i, h) in app.progress.engines.values().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" │ "));
        }
        if h.reachable {
            spans.push(Span::styled("● ", Style::new().fg(Color::Green)));
            let info = h
                .info
                .as_ref()
                .map(|i| format!(" {} {}", i.version, i.arch))
                .unwrap_or_default();
            spans.push(Span::raw(format!(
                "{}{info} [{}] ▶{} ◌{}",
                h.engine,
                h.arches.join(","),
                h.running,
                h.queued
            )));
        } else {
            spans.push(Span::styled("○ ", Style::new().fg(Color::Red)));
            spans.push(Span::styled(
                format!(
                    "{} down: {}",
                    h.engine,
                    h.last_error.as_deref().unwrap_or("connecting")
                ),
                Style::new().fg(Color::Red),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_detail(f: &mut Frame, app: &mut App, area: Rect) {
    let focused_pane = app.pane == Pane::Detail;
    let id = app.focused();
    let title = match (app.detail, &id) {
        (DetailMode::Merged, _) => " merged log of running builds ".to_string(),
        (_, None) => " no cell here for this arch ".to_string(),
        (mode, Some(id)) => {
            let v = &app.progress.cells[id];
            let mut t = format!(" {id} · {}", v.status.word());
            if let Some(e) = &v.engine {
                t.push_str(&format!(" · {e}"));
            }
            if let Some(b) = v.build_id {
                t.push_str(&format!(" · build {b}"));
            }
            if let Some(s) = v.size {
                t.push_str(&format!(" · {}", human_size(s)));
            }
            if v.stale {
                t.push_str(" · stale");
            }
            if mode == DetailMode::Dockerfile {
                t.push_str(" · Dockerfile");
            }
            t.push(' ');
            t
        }
    };
    let mut flags = vec![];
    if matches!(app.detail, DetailMode::Log | DetailMode::Merged) {
        flags.push(if app.log_view.follow {
            "follow"
        } else {
            "paused"
        });
        if app.log_view.wrap {
            flags.push("wrap");
        }
    }
    let block = pane_block(focused_pane).title(title);
    let block = if flags.is_empty() {
        block
    } else {
        block.title_bottom(Line::from(format!(" {} ", flags.join(" · "))).right_aligned())
    };
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    let mut height = inner.height as usize;

    if app.detail == DetailMode::Inspector {
        draw_inspector(f, app, inner);
        return;
    }
    if app.detail == DetailMode::Dockerfile {
        let text = match (&app.dockerfile, &id) {
            (Some((cell, text)), Some(id)) if cell == id => text.clone(),
            _ => "rendering…".into(),
        };
        let p = Paragraph::new(text).scroll((app.log_view.top.min(u16::MAX as usize) as u16, 0));
        f.render_widget(p, inner);
        app.log_height = height;
        return;
    }
    if app.detail == DetailMode::Log {
        if let Some((id_str, v)) = id
            .as_deref()
            .and_then(|i| app.progress.cells.get(i).map(|v| (i, v)))
        {
            if let (Some(fail), true) = (
                &v.failure,
                matches!(
                    v.status,
                    Status::Failed | Status::Skipped | Status::Interrupted | Status::Cancelled
                ),
            ) {
                lines.push(Line::styled(
                    format!("✗ {fail}"),
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ));
            }
            if app.log_of(id_str).evicted_lines() > 0 {
                let path = v
                    .log_path
                    .clone()
                    .unwrap_or_else(|| "the history's log file".into());
                lines.push(Line::styled(
                    format!(
                        "… {} older lines only on disk ({path})",
                        app.log_of(id_str).evicted_lines()
                    ),
                    Style::new().fg(Color::DarkGray),
                ));
            }
            if app.log_of(id_str).is_empty() && v.status != Status::Building {
                let hint = match &v.log_path {
                    Some(p) => format!(
                        "log of build {} is on disk: {p}  (imagegrid log {})",
                        v.build_id.unwrap_or(0),
                        id.clone().unwrap_or_default()
                    ),
                    None => "no log yet: b builds this cell".into(),
                };
                lines.push(Line::styled(hint, Style::new().fg(Color::DarkGray)));
            }
        }
    }
    height = height.saturating_sub(lines.len());
    app.log_height = height.max(1);
    let log = app.shown_log();
    if let Some(log) = log {
        let len = log.len();
        let top = if app.log_view.follow {
            len.saturating_sub(height)
        } else {
            app.log_view.top.min(len)
        };
        let current = app
            .log_view
            .matches
            .get(app.log_view.current_match)
            .copied();
        for (i, line) in log.iter().enumerate().skip(top).take(height) {
            let mut l = line
                .into_text()
                .map(|t| t.lines.into_iter().next().unwrap_or_default())
                .unwrap_or_else(|_| Line::raw(line.to_string()));
            if current == Some(i) {
                l = l.patch_style(Style::new().bg(Color::Indexed(58)));
            } else if app.log_view.matches.binary_search(&i).is_ok() {
                l = l.patch_style(Style::new().add_modifier(Modifier::UNDERLINED));
            }
            lines.push(l);
        }
    }
    let mut p = Paragraph::new(Text::from(lines));
    if app.log_view.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, inner);
}

/// The size inspector: the cell's successful builds over time (a sparkline and a list), and
/// the layers of the build under the cursor diffed against the one before it (or `D`'s base).
fn draw_inspector(f: &mut Frame, app: &App, area: Rect) {
    use ratatui::widgets::Sparkline;
    let Some(insp) = app.inspector.as_ref() else {
        return;
    };
    if insp.builds.is_empty() {
        f.render_widget(Paragraph::new("no successful build of this cell yet"), area);
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(38), Constraint::Fill(1)]).areas(area);
    let [spark, list] = Layout::vertical([Constraint::Length(3), Constraint::Fill(1)]).areas(left);
    let sizes: Vec<u64> = insp
        .builds
        .iter()
        .map(|b| b.size.unwrap_or(0).max(0) as u64)
        .collect();
    let min = sizes.iter().copied().min().unwrap_or(0);
    // Offset by the smallest so that small changes on big images are visible.
    let data: Vec<u64> = sizes.iter().map(|s| s - min + 1).collect();
    f.render_widget(
        Sparkline::default()
            .block(Block::default().title(format!("size over {} builds", sizes.len())))
            .data(&data)
            .style(Style::new().fg(Color::Cyan)),
        spark,
    );
    let h = list.height as usize;
    let first = if insp.cursor >= h {
        insp.cursor + 1 - h
    } else {
        0
    };
    let mut lines = Vec::new();
    for (i, b) in insp.builds.iter().enumerate().skip(first).take(h) {
        let marker = if Some(i) == insp.base { "◆" } else { " " };
        let mut line = Line::raw(format!(
            "{marker}#{:<5} {} {:>9}",
            b.id,
            b.started_at
                .get(5..16)
                .unwrap_or(&b.started_at)
                .replace('T', " "),
            b.size.map(human_size).unwrap_or_default()
        ));
        if i == insp.cursor {
            line = line.patch_style(Style::new().add_modifier(Modifier::REVERSED));
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), list);

    let mut rows = Vec::new();
    match insp.pair() {
        Some((base, shown)) => {
            let total = shown.size.unwrap_or(0) - base.size.unwrap_or(0);
            rows.push(Line::styled(
                format!(
                    "build #{} vs #{}: {}{}",
                    shown.id,
                    base.id,
                    if total >= 0 { "+" } else { "-" },
                    human_size(total.abs())
                ),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            for c in crate::sizes::layer_diff(&base.layers, &shown.layers) {
                let (sym, st) = match c.change {
                    crate::sizes::Change::Added => ("+", Style::new().fg(Color::Yellow)),
                    crate::sizes::Change::Removed => ("-", Style::new().fg(Color::Cyan)),
                    crate::sizes::Change::Grown => ("↑", Style::new().fg(Color::Red)),
                    crate::sizes::Change::Shrunk => ("↓", Style::new().fg(Color::Green)),
                    crate::sizes::Change::Same => ("=", Style::new().fg(Color::DarkGray)),
                };
                let d = c.delta();
                let delta = if d == 0 {
                    String::new()
                } else {
                    format!("{}{}", if d > 0 { "+" } else { "-" }, human_size(d.abs()))
                };
                rows.push(Line::from(vec![
                    Span::styled(
                        format!(
                            "{sym} {:>9} {:>9} ",
                            c.after.or(c.before).map(human_size).unwrap_or_default(),
                            delta
                        ),
                        st,
                    ),
                    Span::raw(c.instruction),
                ]));
            }
        }
        None => {
            let shown = &insp.builds[insp.cursor];
            rows.push(Line::styled(
                format!(
                    "layers of build #{} (the first success: nothing to diff)",
                    shown.id
                ),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            for l in shown.layers.iter().rev() {
                rows.push(Line::raw(format!(
                    "  {:>9}  {}",
                    human_size(l.size),
                    crate::sizes::instruction(&l.created_by)
                )));
            }
        }
    }
    f.render_widget(Paragraph::new(rows), right);
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let line = match &app.mode {
        Mode::Filter(t) => Line::from(vec![
            Span::styled("filter: ", Style::new().fg(Color::Yellow)),
            Span::raw(format!("{t}▏")),
            Span::styled("  Enter apply · Esc cancel", Style::new().fg(Color::Gray)),
        ]),
        Mode::Selector(t) => Line::from(vec![
            Span::styled("select: ", Style::new().fg(Color::Yellow)),
            Span::raw(format!("{t}▏")),
            Span::styled(
                "  distro/version/arch globs · Enter · Esc",
                Style::new().fg(Color::Gray),
            ),
        ]),
        Mode::Search(t) => Line::from(vec![
            Span::styled("search: ", Style::new().fg(Color::Yellow)),
            Span::raw(format!("{t}▏")),
            Span::styled("  Enter · Esc", Style::new().fg(Color::Gray)),
        ]),
        _ => {
            let ctx = if app.pane == Pane::Grid {
                Context::Grid
            } else {
                Context::Detail
            };
            let hints: Vec<&str> = bindings_for(ctx)
                .filter(|b| !b.hint.is_empty())
                .map(|b| b.hint)
                .collect();
            let mut spans = vec![Span::styled(
                format!(" {} selected ", app.selection.len()),
                Style::new().fg(Color::Black).bg(Color::Gray),
            )];
            if app.pane == Pane::Detail && !app.log_view.matches.is_empty() {
                spans.push(Span::styled(
                    format!(
                        " match {}/{} ",
                        app.log_view.current_match + 1,
                        app.log_view.matches.len()
                    ),
                    Style::new().fg(Color::Black).bg(Color::Yellow),
                ));
            }
            spans.push(Span::raw(" "));
            if let Some(m) = &app.message {
                spans.push(Span::styled(
                    format!("{m} │ "),
                    Style::new().fg(Color::Yellow),
                ));
            }
            spans.push(Span::styled(
                hints.join(" · "),
                Style::new().fg(Color::Gray),
            ));
            Line::from(spans)
        }
    };
    f.render_widget(Paragraph::new(line), area);
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
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(title.to_string()),
        ),
        r,
    );
}

fn draw_help(f: &mut Frame, area: Rect) {
    let section = |ctxs: &[Context]| {
        let mut lines = vec![];
        for ctx in ctxs {
            lines.push(Line::styled(
                ctx.title(),
                Style::new().add_modifier(Modifier::BOLD).fg(Color::Cyan),
            ));
            for b in KEYMAP.iter().filter(|b| b.context == *ctx) {
                let keys: Vec<String> = b.keys.iter().map(|k| k.label()).collect();
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("  {:12}", keys.join(" ")),
                        Style::new().fg(Color::Yellow),
                    ),
                    Span::raw(b.help),
                ]));
            }
        }
        lines
    };
    let glyphs = Line::styled("· never ◌ queued ⠋ building ✓ ok ✗ failed ⊘ cancelled ! interrupted ↷ skipped ~ stale – excluded", Style::new().fg(Color::Gray));
    let title = " help (from the keymap in use) · any key closes it ";
    // Two columns where the terminal is wide enough, so the whole keymap fits on one screen.
    if area.width >= 150 {
        let (left, mut right) = (
            section(&[Context::Grid]),
            section(&[Context::Detail, Context::Any]),
        );
        right.push(Line::raw(""));
        right.push(glyphs);
        let h = left.len().max(right.len()) as u16 + 2;
        let r = centered(area, 150, h);
        f.render_widget(Clear, r);
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(r);
        f.render_widget(block, r);
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(inner);
        f.render_widget(Paragraph::new(left), a);
        f.render_widget(Paragraph::new(right), b);
        return;
    }
    let mut lines = section(&[Context::Grid, Context::Detail, Context::Any]);
    lines.push(glyphs);
    let room = area.height.saturating_sub(2) as usize;
    if lines.len() > room {
        lines.truncate(room.saturating_sub(1));
        lines.push(Line::styled(
            "… more in a wider terminal, or `imagegrid keys`",
            Style::new().fg(Color::Gray),
        ));
    }
    popup(f, area, 86, title, lines);
}

fn draw_confirm(f: &mut Frame, app: &App, c: &Confirm, area: Rect) {
    let (title, mut lines) = match c {
        Confirm::Build { cells, no_cache } => {
            let mut per_engine: std::collections::BTreeMap<String, usize> = Default::default();
            let mut unroutable = 0;
            for id in cells {
                let arch = app
                    .matrix
                    .cell(id)
                    .map(|c| c.arch.clone())
                    .unwrap_or_default();
                let engines: Vec<&String> = app
                    .progress
                    .engines
                    .values()
                    .filter(|h| h.arches.contains(&arch))
                    .map(|h| &h.engine)
                    .collect();
                if engines.is_empty() {
                    unroutable += 1;
                } else {
                    *per_engine
                        .entry(
                            engines
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(" or "),
                        )
                        .or_default() += 1;
                }
            }
            let mut lines = vec![Line::raw(format!(
                "Build {} cells{}?",
                cells.len(),
                if *no_cache { " without cache" } else { "" }
            ))];
            lines.push(Line::raw("Bases build first; stale bases come along."));
            for (e, n) in per_engine {
                lines.push(Line::raw(format!("  {n} on {e}")));
            }
            if unroutable > 0 {
                lines.push(Line::styled(
                    format!("  {unroutable} on no configured engine (they will be skipped)"),
                    Style::new().fg(Color::Red),
                ));
            }
            (" build ", lines)
        }
        Confirm::Cancel { cells } => (
            " cancel ",
            vec![
                Line::raw(format!("Cancel {} queued or running builds?", cells.len())),
                Line::raw("Running builds stop on their engine."),
            ],
        ),
        Confirm::Publish { registry, tags, .. } => {
            let ok: Vec<_> = tags.iter().filter(|t| t.blocked.is_none()).collect();
            let not: Vec<_> = tags.iter().filter(|t| t.blocked.is_some()).collect();
            let aliases = ok.iter().filter(|t| t.alias).count();
            let mut lines = vec![
                Line::raw(format!(
                    "Publish {} tags and {aliases} aliases to {registry}?",
                    ok.len() - aliases
                )),
                Line::raw("Each arch is pushed from the engine that built it."),
            ];
            // Room for the list: the screen less the dialog's own lines and borders.
            let room = (area.height as usize).saturating_sub(10).max(3);
            let mut shown = 0;
            for t in ok.iter().take(room) {
                lines.push(Line::raw(truncate(
                    &format!("  {:28} {}", t.tag, t.points_to),
                    76,
                )));
                shown += 1;
            }
            if !not.is_empty() && shown < room {
                lines.push(Line::styled("Not published:", Style::new().fg(Color::Red)));
                for t in not.iter().take(room - shown) {
                    let why = t.blocked.as_deref().unwrap_or("");
                    lines.push(Line::styled(
                        truncate(&format!("  {}: {why}", t.tag), 76),
                        Style::new().fg(Color::Red),
                    ));
                    shown += 1;
                }
            }
            if tags.len() > shown {
                lines.push(Line::raw(format!("  … and {} more", tags.len() - shown)));
            }
            (" publish ", lines)
        }
        Confirm::Quit { active } => (
            " quit ",
            vec![
                Line::raw(format!("{active} builds are queued or running.")),
                Line::raw("Quitting cancels them: an engine stops a build"),
                Line::raw("when its client goes."),
            ],
        ),
    };
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "y / Enter: yes    n / Esc: no",
        Style::new().fg(Color::Yellow),
    ));
    let width = if matches!(c, Confirm::Publish { .. }) {
        78
    } else {
        60
    };
    popup(f, area, width, title, lines);
}
