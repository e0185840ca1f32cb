//! The engines line: each engine's health, version, arches, load and disk use.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::ui::state::App;
use crate::ui::theme;

/// Draw the engines line.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled("engines ", theme::MUTED)];
    if app.progress.engines.is_empty() {
        spans.push(Span::styled("connecting…", theme::NOTICE));
    }
    for (i, h) in app.progress.engines.values().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" │ "));
        }
        if h.reachable {
            spans.push(Span::styled(theme::ENGINE_UP, theme::OK));
            let info = h
                .info
                .as_ref()
                .map(|i| format!(" {} {}", i.version, i.arch))
                .unwrap_or_default();
            // Disk use once measured: `≤` when the engine's API only allows an upper bound.
            let disk = app
                .progress
                .engine_disk
                .get(&h.engine)
                .map(|d| {
                    format!(
                        " ⛁{}{}",
                        if d.images_exact { "" } else { "≤" },
                        crate::util::units::human_size_short(d.total())
                    )
                })
                .unwrap_or_default();
            spans.push(Span::raw(format!(
                "{}{info} [{}] ▶{} ◌{}{disk}",
                h.engine,
                h.arches.join(","),
                h.running,
                h.queued
            )));
        } else {
            spans.push(Span::styled(theme::ENGINE_DOWN, theme::ERROR));
            spans.push(Span::styled(
                format!(
                    "{} down: {}",
                    h.engine,
                    h.last_error.as_deref().unwrap_or("connecting")
                ),
                theme::ERROR,
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
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
