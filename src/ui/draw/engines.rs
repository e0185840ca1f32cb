//! The engines line: each engine's health, version, arches, load and disk use, shortened
//! alike for every engine until all of them fit the screen's width.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::scheduler::EngineHealth;
use crate::ui::state::App;
use crate::ui::theme;

/// How much of each reachable engine the line shows, most first; the first that fits the
/// width is used for every engine, so that all of them stay on the line (and a down engine's
/// error gets what is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Name, Docker version and native arch, the arches it builds, load, disk.
    Full,
    /// Without the version and native arch.
    Arches,
    /// Name, load and disk only.
    Load,
}

/// One reachable engine's text at a level of detail (its glyph aside).
fn up_text(app: &App, h: &EngineHealth, level: Detail) -> String {
    let info = h
        .info
        .as_ref()
        .filter(|_| level == Detail::Full)
        .map(|i| format!(" {} {}", i.version, i.arch))
        .unwrap_or_default();
    let arches = match level {
        Detail::Full | Detail::Arches => format!(" [{}]", h.arches.join(",")),
        Detail::Load => String::new(),
    };
    // Disk use once measured: `≤` when the engine's API only allows an upper bound.
    let disk = app
        .progress
        .engine_disk
        .get(&h.engine)
        .map(|d| {
            format!(
                " {}{}{}",
                theme::ENGINE_DISK,
                if d.images_exact { "" } else { "≤" },
                crate::util::units::human_size_short(d.total())
            )
        })
        .unwrap_or_default();
    format!(
        "{}{info}{arches} {}{} {}{}{disk}",
        h.engine,
        theme::ENGINE_RUNNING,
        h.running,
        theme::ENGINE_QUEUED,
        h.queued
    )
}

const SEPARATOR: &str = " │ ";
const LABEL: &str = "engines ";

/// The engines line's spans at `width` columns: every engine, each shortened as
/// [`Detail`] says until the line fits; a down engine's error is cut to what is left.
fn spans(app: &App, width: usize) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(LABEL, theme::MUTED)];
    let engines: Vec<&EngineHealth> = app.progress.engines.values().collect();
    if engines.is_empty() {
        spans.push(Span::styled("connecting…", theme::NOTICE));
        return spans;
    }
    let cols = |s: &str| Span::raw(s).width();
    let fixed = cols(LABEL) + cols(SEPARATOR) * (engines.len() - 1);
    let down_head = |h: &EngineHealth| format!("{} down", h.engine);
    let width_at = |level: Detail| -> usize {
        engines
            .iter()
            .map(|h| {
                let glyph = cols(theme::ENGINE_UP);
                glyph
                    + if h.reachable {
                        cols(&up_text(app, h, level))
                    } else {
                        cols(&down_head(h))
                    }
            })
            .sum::<usize>()
            + fixed
    };
    let level = [Detail::Full, Detail::Arches]
        .into_iter()
        .find(|l| width_at(*l) <= width)
        .unwrap_or(Detail::Load);
    // What is left goes to the down engines' errors, shared evenly.
    let down = engines.iter().filter(|h| !h.reachable).count();
    let spare = width.saturating_sub(width_at(level));
    let per_error = spare.checked_div(down).unwrap_or(0);
    for (i, h) in engines.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(SEPARATOR));
        }
        if h.reachable {
            spans.push(Span::styled(theme::ENGINE_UP, theme::OK));
            spans.push(Span::raw(up_text(app, h, level)));
        } else {
            spans.push(Span::styled(theme::ENGINE_DOWN, theme::ERROR));
            let error = h.last_error.as_deref().unwrap_or("connecting");
            // `: ` and at least a few characters of the error, or none of it.
            let text = if per_error >= 2 + cols(error) {
                format!("{}: {error}", down_head(h))
            } else if per_error >= 2 + 6 {
                format!(
                    "{}: {}",
                    down_head(h),
                    crate::util::text::truncate(error, per_error - 2)
                )
            } else {
                down_head(h)
            };
            spans.push(Span::styled(text, theme::ERROR));
        }
    }
    spans
}

/// Draw the engines line.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let line = Line::from(spans(app, area.width as usize));
    f.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use super::super::test_setup::*;
    use super::draw;
    use crate::ui::state::App;

    #[test]
    fn up_down_and_connecting() {
        let app = busy_app();
        let shot = |app: &_, w, h| region(app, w, h, |a| a.engines, draw).0;
        insta::assert_snapshot!("engines_80x24", shot(&app, 80, 24));
        insta::assert_snapshot!("engines_160x48", shot(&app, 160, 48));
        let fresh = App::new(
            small_matrix(),
            &Default::default(),
            &Default::default(),
            (1, 1.0),
        );
        assert_eq!(shot(&fresh, 80, 24), "engines connecting…\n");
    }

    /// The test environment's three engines, as a newcomer saw them at 80 columns: only a
    /// and part of b fitted, m and its disk use were cut.
    fn three_engines() -> App {
        use crate::engine::EngineInfo;
        use crate::scheduler::{BuildEvent, EngineHealth};
        let mut app = App::new(
            small_matrix(),
            &Default::default(),
            &Default::default(),
            (1, 1.0),
        );
        for (slot, (name, version, up)) in [
            ("a", "20.10.24", true),
            ("b", "20.10.24", false),
            ("m", "26.1.5+dfsg1", true),
        ]
        .into_iter()
        .enumerate()
        {
            app.on_event(BuildEvent::Engine(EngineHealth {
                engine: name.into(),
                endpoint: format!("unix:///run/{name}.sock"),
                reachable: up,
                info: up.then(|| EngineInfo {
                    version: version.into(),
                    api_version: "1.41".into(),
                    os: "linux".into(),
                    arch: "amd64".into(),
                    buildkit: true,
                    builder: Default::default(),
                }),
                arches: vec!["amd64".into(), "arm64".into(), "riscv64".into()],
                running: slot,
                queued: 3,
                last_error: (!up).then(|| "error during connect: tls: bad certificate".into()),
                max_parallel: 2,
                tried: true,
                slot,
            }));
            if up {
                app.on_event(BuildEvent::EngineDisk {
                    engine: name.into(),
                    disk: crate::engine::cleanup::DiskUse {
                        images_bytes: 2_500_000_000 * (slot as i64 + 1),
                        images_exact: true,
                        images: 12,
                        build_cache_bytes: None,
                    },
                });
            }
        }
        app
    }

    #[test]
    fn every_engine_fits_at_80_columns() {
        let app = three_engines();
        let shot = |w| region(&app, w, 24, |a| a.engines, draw).0;
        let narrow = shot(80);
        insta::assert_snapshot!("engines_three_80x24", narrow);
        for want in ["● a ", "○ b down", "● m ", "⛁7.5G", "▶2 ◌3"] {
            assert!(narrow.contains(want), "{want:?} in {narrow}");
        }
        // Wide enough: everything, the down engine's whole error too.
        let wide = shot(200);
        insta::assert_snapshot!("engines_three_200x24", wide);
        assert!(wide.contains("m 26.1.5+dfsg1 amd64 [amd64,arm64,riscv64] ▶2 ◌3 ⛁7.5G"));
        assert!(wide.contains("tls: bad certificate"));
        // The arches go before the disk use does.
        let mid = shot(120);
        assert!(
            mid.contains("[amd64,arm64,riscv64]") && mid.contains("⛁7.5G"),
            "{mid}"
        );
        assert!(!mid.contains("26.1.5"), "{mid}");
    }

    #[test]
    fn disk_use_once_measured() {
        let mut app = busy_app();
        let shot = |app: &_| region(app, 200, 24, |a| a.engines, draw).0;
        assert!(!shot(&app).contains('⛁'), "{}", shot(&app));
        let engine = app
            .progress
            .engines
            .values()
            .find(|h| h.reachable)
            .unwrap()
            .engine
            .clone();
        app.on_event(crate::scheduler::BuildEvent::EngineDisk {
            engine: engine.clone().into(),
            disk: crate::engine::cleanup::DiskUse {
                images_bytes: 3_000_000_000,
                images_exact: false,
                images: 12,
                build_cache_bytes: None,
            },
        });
        let s = shot(&app);
        assert!(s.contains(&format!("{engine} ")), "{s}");
        assert!(s.contains("⛁≤3.0G"), "{s}");
    }
}
