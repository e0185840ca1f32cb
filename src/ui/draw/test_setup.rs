//! What the draw tests share: hand-made states (no terminal, no engine), and rendering the
//! whole screen or one region at a screen size over ratatui's `TestBackend`. Snapshots hold
//! glyphs only; colours are asserted separately.

use std::collections::{BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::Frame;
use ratatui::Terminal;

use super::{layout, Areas};
use crate::config::LoadedConfig;
use crate::engine::EngineInfo;
use crate::matrix::Matrix;
use crate::scheduler::{BuildEvent, CellResult, EngineHealth};
use crate::store::BuildStatus;
use crate::ui::state::App;

pub fn small_matrix() -> Matrix {
    let cfg = crate::config::parse(
        "test.toml",
        "[matrix]\ndistros = [\"debian-13\", \"alpine-3.24\", \"ubuntu-24.04\", \"fedora-44\", \"archlinux\"]\nversions = [\"4.14\", \"5.2\", \"5.3\", \"5.4\", \"5.5\"]\narches = [\"amd64\", \"arm64\", \"riscv64\"]\nexclude = [\"*/archive/*\"]\n",
    )
    .unwrap();
    Matrix::from_config(&LoadedConfig { ..cfg }).unwrap()
}

pub fn finished(
    cell: &str,
    status: BuildStatus,
    size: Option<i64>,
    prev: Option<i64>,
    failure: Option<&str>,
) -> BuildEvent {
    BuildEvent::Finished(CellResult {
        cell: cell.into(),
        status,
        build_id: Some(3.into()),
        engine: Some("local".into()),
        image_id: Some("sha256:0123".into()),
        size,
        previous_size: prev,
        failure: failure.map(str::to_string),
        failure_record: None,
        cause: None,
        duration_secs: Some(1.0),
        log_path: None,
    })
}

/// A grid in a mix of states, with two engines.
pub fn busy_app() -> App {
    let mut stale = BTreeSet::new();
    stale.insert("ubuntu-24.04/5.4/amd64".to_string());
    let mut app = App::new(small_matrix(), &HashMap::new(), &stale, (10_000_000, 5.0));
    app.on_event(finished(
        "debian-13/opam/amd64",
        BuildStatus::Succeeded,
        Some(412_000_000),
        Some(394_000_000),
        None,
    ));
    app.on_event(finished(
        "debian-13/4.14/amd64",
        BuildStatus::Succeeded,
        Some(730_000_000),
        Some(731_000_000),
        None,
    ));
    app.on_event(finished(
        "debian-13/5.4/amd64",
        BuildStatus::Failed,
        None,
        None,
        Some("step `RUN opam switch create 5.4`, exit code 2: ... | gcc: fatal error: killed"),
    ));
    app.on_event(BuildEvent::Started {
        cell: "debian-13/5.3/amd64".into(),
        engine: "local".into(),
        build_id: 9.into(),
        emulated: false,
    });
    app.on_event(BuildEvent::Step {
        cell: "debian-13/5.3/amd64".into(),
        current: 4,
        total: 9,
        name: "RUN make".into(),
    });
    app.on_event(BuildEvent::Queued {
        cell: "debian-13/5.5/amd64".into(),
    });
    app.on_event(finished(
        "ubuntu-24.04/5.4/amd64",
        BuildStatus::Succeeded,
        Some(801_000_000),
        None,
        None,
    ));
    app.on_event(finished(
        "alpine-3.24/opam/amd64",
        BuildStatus::Succeeded,
        Some(61_500_000),
        Some(60_000_000),
        None,
    ));
    app.on_event(finished(
        "alpine-3.24/4.14/amd64",
        BuildStatus::Skipped,
        None,
        None,
        Some("base alpine-3.24/opam/amd64 failed"),
    ));
    app.on_event(finished(
        "debian-13/opam/arm64",
        BuildStatus::Failed,
        None,
        None,
        Some("engine arm lost during build"),
    ));
    for i in 0..30 {
        app.on_event(BuildEvent::Log {
            cell: "debian-13/5.4/amd64".into(),
            line: format!("#7 \x1b[32mcompiling\x1b[0m module {i}"),
        });
    }
    app.on_event(BuildEvent::Log {
        cell: "debian-13/5.4/amd64".into(),
        line: "#7 gcc: fatal error: Killed signal terminated program cc1".into(),
    });
    app.on_event(BuildEvent::Engine(EngineHealth {
        engine: "local".into(),
        endpoint: "unix:///var/run/docker.sock".into(),
        reachable: true,
        info: Some(EngineInfo {
            version: "20.10.24".into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            buildkit: true,
            builder: Default::default(),
        }),
        arches: vec!["amd64".into(), "riscv64".into()],
        running: 1,
        queued: 1,
        last_error: None,
        max_parallel: 2,
        tried: true,
        slot: 0,
    }));
    app.on_event(BuildEvent::Engine(EngineHealth {
        engine: "arm".into(),
        endpoint: "tcp://10.0.0.9:2376".into(),
        reachable: false,
        info: None,
        arches: vec!["arm64".into()],
        running: 0,
        queued: 0,
        last_error: Some("TLS handshake failed".into()),
        max_parallel: 2,
        tried: true,
        slot: 1,
    }));
    app
}

/// The whole screen at a size, as the runtime draws it (the geometry is stored back).
pub fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut geometry = app.geometry;
    t.draw(|f| geometry = super::draw(f, app)).unwrap();
    app.geometry = geometry;
    t
}

/// One region alone, in the place the layout gives it on a `w`x`h` screen: `pick` chooses
/// the region's area, `draw` draws it. Returns the region's rows (popups: the whole screen).
pub fn region(
    app: &App,
    w: u16,
    h: u16,
    pick: impl Fn(&Areas) -> Rect,
    draw: impl FnOnce(&mut Frame, &App, Rect),
) -> (String, Buffer) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let area = pick(&layout(app, Rect::new(0, 0, w, h)));
    t.draw(|f| draw(f, app, area)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in area.y..area.y + area.height {
        let line: String = (area.x..area.x + area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    (out, buf)
}

/// The whole screen's area, for popups.
pub fn whole(a: &Areas) -> Rect {
    Rect::new(0, 0, a.header.width, a.status.y + a.status.height)
}

/// The screen row holding `needle`, if any.
pub fn row_with(buf: &Buffer, needle: &str) -> Option<u16> {
    (0..buf.area.height).find(|&y| {
        (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect::<String>()
            .contains(needle)
    })
}

/// The text of a whole rendered screen, lines trimmed.
pub fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn key(c: char) -> KeyEvent {
    KeyEvent::new(
        KeyCode::Char(c),
        if c.is_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        },
    )
}

pub fn record(id: i64, size: i64, layers: Vec<(i64, &str)>) -> crate::store::BuildRecord {
    crate::store::BuildRecord {
        id,
        cell: "debian-13/opam/amd64".into(),
        engine: "local".into(),
        inputs: "h".into(),
        status: BuildStatus::Succeeded,
        started_at: format!("2026-11-2{id}T10:00:00Z"),
        finished_at: None,
        image_id: None,
        size: Some(size),
        compressed_size: None,
        layers: layers
            .into_iter()
            .map(|(size, by)| crate::engine::build::Layer {
                size,
                created_by: by.into(),
            })
            .collect(),
        failure: None,
        failure_record: None,
        cause: None,
        log_path: None,
        tag: None,
        base_image: None,
        log_pruned_at: None,
    }
}

/// The busy grid focused on its failed cell, debian-13/5.4/amd64, whose log is coloured.
pub fn failed_focus_app() -> App {
    let mut app = busy_app();
    app.act(crate::ui::keymap::Action::Down); // alpine
    app.act(crate::ui::keymap::Action::Up);
    for _ in 0..4 {
        app.on_key(key('l'));
    }
    app.on_key(key('l'));
    app.on_key(key('h')); // debian-13/5.4/amd64, failed
    app
}

/// The busy grid with the inspector open on debian-13/opam/amd64 over its two successful
/// builds: #2 (394 MB) and #3 (412 MB), the build the grid shows (the busy grid's
/// `finished` event: build 3, 412 MB, previously 394 MB).
pub fn inspector_app() -> App {
    let mut app = busy_app();
    let fx = app.on_key(key('i'));
    assert_eq!(
        fx,
        vec![crate::ui::state::Effect::LoadHistory(
            "debian-13/opam/amd64".into()
        )]
    );
    app.on_history_loaded(
        "debian-13/opam/amd64",
        vec![
            record(
                2,
                394_000_000,
                vec![
                    (1_000, "COPY Dockerfile /Dockerfile.opam # buildkit"),
                    (
                        300_000_000,
                        "RUN apt-get install build-essential # buildkit",
                    ),
                    (93_999_000, "/bin/sh -c #(nop) ADD file:1 in / "),
                ],
            ),
            record(
                3,
                412_000_000,
                vec![
                    (1_000, "COPY Dockerfile /Dockerfile.opam # buildkit"),
                    (
                        18_000_000,
                        "RUN git clone --depth 1 opam-repository # buildkit",
                    ),
                    (
                        300_000_000,
                        "RUN apt-get install build-essential # buildkit",
                    ),
                    (93_999_000, "/bin/sh -c #(nop) ADD file:1 in / "),
                ],
            ),
        ],
    );
    app
}

/// Enter as a key.
pub fn enter() -> KeyEvent {
    KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
}

/// Tab as a key.
pub fn tab() -> KeyEvent {
    KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)
}

/// Esc as a key.
pub fn esc() -> KeyEvent {
    KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)
}

/// A key with Ctrl held.
pub fn ctrl_key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}
