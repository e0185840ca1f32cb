//! The confirm dialogs: build, cancel, publish, quit.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::Frame;

use super::popup;
use crate::ui::keymap::{footer, Context};
use crate::ui::state::{App, Confirm};
use crate::ui::theme;
use crate::util::text::truncate;

/// Draw a confirm dialog over the screen.
pub(super) fn draw(f: &mut Frame, app: &App, c: &Confirm, area: Rect) {
    let (title, mut lines) = match c {
        Confirm::Build { cells, no_cache } => {
            // The scheduler's own routing, over the engines as last reported.
            let rules = crate::scheduler::route::Rules::interactive();
            let preview = app.progress.routing_preview(&app.matrix, cells, &rules);
            let mut lines = vec![Line::raw(format!(
                "Build {}{}?",
                crate::util::words::count(cells.len(), "cell", "cells"),
                if *no_cache { " without cache" } else { "" }
            ))];
            lines.push(Line::raw("Bases build first; stale bases come along."));
            for (e, n, emulated) in preview.engines {
                let how = match emulated {
                    0 => String::new(),
                    m if m == n => " (emulated)".into(),
                    m => format!(" ({m} emulated)"),
                };
                lines.push(Line::raw(format!("  {n} on {e}{how}")));
            }
            if preview.waiting > 0 {
                lines.push(Line::raw(format!(
                    "  {} wait for an engine to answer",
                    preview.waiting
                )));
            }
            // Engines of these cells' arches that do not answer: say so before `y`.
            let arches: std::collections::BTreeSet<&str> = cells
                .iter()
                .filter_map(|id| app.matrix.cell(id))
                .map(|c| c.arch.as_str())
                .collect();
            for h in app.progress.engines.values() {
                if !h.reachable && h.arches.iter().any(|a| arches.contains(a.as_str())) {
                    let why = h.last_error.as_deref().unwrap_or("not answering yet");
                    lines.push(Line::styled(
                        truncate(&format!("  {} is down ({why})", h.engine), 56),
                        theme::ERROR,
                    ));
                    lines.push(Line::styled(
                        "    its builds wait until it answers",
                        theme::ERROR,
                    ));
                }
            }
            for (why, n) in preview.skipped {
                lines.push(Line::styled(
                    truncate(&format!("  {n} skipped: {why}"), 56),
                    theme::ERROR,
                ));
            }
            (" build ", lines)
        }
        Confirm::Cancel { cells } => (
            " cancel ",
            vec![
                Line::raw(format!(
                    "Cancel {}?",
                    crate::util::words::count(
                        cells.len(),
                        "queued or running build",
                        "queued or running builds"
                    )
                )),
                Line::raw("Running builds stop on their engine."),
            ],
        ),
        Confirm::Publish { registry, tags, .. } => {
            let ok: Vec<_> = tags.iter().filter(|t| t.blocked.is_none()).collect();
            let not: Vec<_> = tags.iter().filter(|t| t.blocked.is_some()).collect();
            let aliases = ok.iter().filter(|t| t.alias).count();
            let mut lines = vec![
                Line::raw(format!(
                    "Publish {} and {} to {registry}?",
                    crate::util::words::count(ok.len() - aliases, "tag", "tags"),
                    crate::util::words::count(aliases, "alias", "aliases")
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
                lines.push(Line::styled("Not published:", theme::ERROR));
                for t in not.iter().take(room - shown) {
                    let why = t.blocked.as_deref().unwrap_or("");
                    lines.push(Line::styled(
                        truncate(&format!("  {}: {why}", t.tag), 76),
                        theme::ERROR,
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
                Line::raw(format!(
                    "{active} {} queued or running.",
                    crate::util::words::noun(*active, "build is", "builds are")
                )),
                Line::raw("Quitting cancels them: an engine stops a build"),
                Line::raw("when its client goes."),
            ],
        ),
    };
    lines.push(Line::raw(""));
    lines.push(Line::styled(footer(Context::Confirm), theme::KEY));
    let width = if matches!(c, Confirm::Publish { .. }) {
        78
    } else {
        60
    };
    popup(f, area, width, title, lines);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ratatui::style::Color;

    use super::super::test_setup::*;
    use super::draw;
    use crate::ui::state::{App, Mode};

    fn shot(app: &App, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
        let Mode::Confirm(c) = &app.mode else {
            panic!("no confirm: {:?}", app.mode)
        };
        region(app, w, h, whole, |f, app, r| draw(f, app, c, r))
    }

    #[test]
    fn build_cancel_and_quit() {
        let mut app = busy_app();
        app.on_key(key('r'));
        app.on_key(key('b'));
        insta::assert_snapshot!("build_80x24", shot(&app, 80, 24).0);
        insta::assert_snapshot!("build_160x48", shot(&app, 160, 48).0);
        app.on_key(key('n'));
        app.col = 5; // debian-13/5.5/amd64, queued
        app.on_key(key('x'));
        app.on_key(key('X'));
        insta::assert_snapshot!("cancel_80x24", shot(&app, 80, 24).0);
        app.on_key(key('n'));
        app.on_key(key('q'));
        insta::assert_snapshot!("quit_80x24", shot(&app, 80, 24).0);
    }

    #[test]
    fn publish_lists_tags() {
        // One set of records feeds both the grid and the publish context, as `ui::run` does:
        // debian-13's base image is built for every arch; of 5.4 only amd64 and arm64 are.
        let records: HashMap<String, crate::store::BuildRecord> = [
            "debian-13/opam/amd64",
            "debian-13/opam/arm64",
            "debian-13/opam/riscv64",
            "debian-13/5.4/amd64",
            "debian-13/5.4/arm64",
        ]
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let mut r = record(i as i64 + 1, 1_000_000, vec![]);
            r.cell = cell.to_string();
            r.image_id = Some(format!("sha256:{i}"));
            (cell.to_string(), r)
        })
        .collect();
        let mut app = App::new(
            small_matrix(),
            &records,
            &Default::default(),
            (10_000_000, 5.0),
        );
        app.set_publish_context(
            crate::config::TagConfig {
                registry: "registry.example:5000".into(),
                ..Default::default()
            },
            crate::publish::plan::built_from_history(&records),
        );
        for cell in records.keys() {
            assert_eq!(
                app.progress.cells[cell].status,
                crate::progress::Status::Succeeded,
                "{cell}: the grid shows what the publish context says is built"
            );
        }
        app.on_key(tab());
        app.on_key(key(':'));
        for c in "debian-13/opam debian-13/5.4".chars() {
            app.on_key(key(c));
        }
        app.on_key(enter());
        app.on_key(key('P'));
        let (text, buf) = shot(&app, 80, 24);
        insta::assert_snapshot!("publish_80x24", text);
        // What will not be published is red.
        let y = row_with(&buf, "debian-13-ocaml-5.4: not every arch is built")
            .expect("the blocked tag is listed");
        assert!((0..buf.area.width).any(|x| buf[(x, y)].fg == Color::Red));
        insta::assert_snapshot!("publish_160x48", shot(&app, 160, 48).0);
    }
}
