//! The confirm dialogs: build, cancel, publish, quit.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::Frame;

use super::popup;
use crate::ui::app::{App, Confirm};
use crate::util::text::truncate;

/// Draw a confirm dialog over the screen.
pub(super) fn draw(f: &mut Frame, app: &App, c: &Confirm, area: Rect) {
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
