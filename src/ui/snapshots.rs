//! Snapshot tests of the screen regions (glyphs only; colours asserted separately),
//! at 80x24 and 160x48, over hand-made state: no terminal, no engine.

use std::collections::{BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

use super::app::App;
use crate::config::LoadedConfig;
use crate::engine::EngineInfo;
use crate::matrix::Matrix;
use crate::scheduler::{BuildEvent, CellResult, EngineHealth};
use crate::store::BuildStatus;

fn small_matrix() -> Matrix {
    let cfg = crate::config::parse(
        "test.toml",
        "[matrix]\ndistros = [\"debian-13\", \"alpine-3.24\", \"ubuntu-24.04\", \"fedora-44\", \"archlinux\"]\narches = [\"amd64\", \"arm64\", \"riscv64\"]\n",
    )
    .unwrap();
    Matrix::from_config(&LoadedConfig { ..cfg }).unwrap()
}

fn finished(
    cell: &str,
    status: BuildStatus,
    size: Option<i64>,
    prev: Option<i64>,
    failure: Option<&str>,
) -> BuildEvent {
    BuildEvent::Finished(CellResult {
        cell: cell.into(),
        status,
        build_id: Some(3),
        engine: Some("local".into()),
        image_id: Some("sha256:0123".into()),
        size,
        previous_size: prev,
        failure: failure.map(str::to_string),
        duration_secs: Some(1.0),
        log_path: None,
    })
}

/// A grid in a mix of states, with two engines.
fn busy_app() -> App {
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
        build_id: 9,
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
        }),
        arches: vec!["amd64".into(), "riscv64".into()],
        running: 1,
        queued: 1,
        last_error: None,
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
    }));
    app
}

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| super::draw::draw(f, app)).unwrap();
    t
}

fn text(t: &Terminal<TestBackend>) -> String {
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

fn key(c: char) -> KeyEvent {
    KeyEvent::new(
        KeyCode::Char(c),
        if c.is_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        },
    )
}

#[test]
fn grid_and_detail_80x24_and_160x48() {
    let mut app = busy_app();
    app.act(super::keymap::Action::Down); // alpine
    app.act(super::keymap::Action::Up);
    for _ in 0..4 {
        app.on_key(key('l'));
    }
    app.on_key(key('l'));
    app.on_key(key('h')); // debian-13/5.4/amd64, failed
    insta::assert_snapshot!("grid_80x24", text(&render(&mut app, 80, 24)));
    insta::assert_snapshot!("grid_160x48", text(&render(&mut app, 160, 48)));
}

#[test]
fn strip_view_and_selection() {
    let mut app = busy_app();
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    app.on_key(key('r'));
    insta::assert_snapshot!("strip_80x24", text(&render(&mut app, 80, 24)));
}

#[test]
fn help_and_confirm() {
    let mut app = busy_app();
    app.on_key(key('?'));
    insta::assert_snapshot!("help_160x48", text(&render(&mut app, 160, 48)));
    app.on_key(key('q')); // closes help
    app.on_key(key('r'));
    app.on_key(key('b'));
    insta::assert_snapshot!("confirm_80x24", text(&render(&mut app, 80, 24)));
}

#[test]
fn publish_confirm_lists_tags() {
    let mut app = busy_app();
    // debian-13's base image is built for every arch; of 5.4 only amd64 and arm64 are.
    let built = |id: i64| crate::publish::Built {
        build_id: id,
        engine: "local".into(),
        image_id: format!("sha256:{id}"),
        size: Some(1),
    };
    let mut b: HashMap<String, crate::publish::Built> = HashMap::new();
    for (i, cell) in [
        "debian-13/opam/amd64",
        "debian-13/opam/arm64",
        "debian-13/opam/riscv64",
        "debian-13/5.4/amd64",
        "debian-13/5.4/arm64",
    ]
    .iter()
    .enumerate()
    {
        b.insert(cell.to_string(), built(i as i64));
    }
    app.set_publish_context(
        crate::config::TagConfig {
            registry: "registry.example:5000".into(),
            ..Default::default()
        },
        b,
    );
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    app.on_key(key(':'));
    for c in "debian-13/opam debian-13/5.4".chars() {
        app.on_key(key(c));
    }
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    app.on_key(key('P'));
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("publish_confirm_80x24", text(&t));
    // What will not be published is red.
    let buf = t.backend().buffer();
    let red_line = (0..buf.area.height).find(|&y| {
        (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect::<String>()
            .contains("debian-13-ocaml-5.4: not every arch is built")
    });
    let y = red_line.expect("the blocked tag is listed");
    assert!((0..buf.area.width).any(|x| buf[(x, y)].fg == Color::Red));
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
        (0..buf.area.width).any(|x| buf[(x, y)].symbol() == "c" && buf[(x, y)].fg == Color::Green)
    });
    assert!(found_green_log, "SGR colour from the log is rendered");
}

fn record(id: i64, size: i64, layers: Vec<(i64, &str)>) -> crate::store::BuildRecord {
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
        log_path: None,
        tag: None,
        base_image: None,
    }
}

#[test]
fn inspector_heat_map_and_list() {
    let mut app = busy_app();
    let fx = app.on_key(key('i'));
    assert_eq!(
        fx,
        vec![super::app::Effect::LoadHistory(
            "debian-13/opam/amd64".into()
        )]
    );
    app.on_history_loaded(
        "debian-13/opam/amd64",
        vec![
            record(
                1,
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
                2,
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
    insta::assert_snapshot!("inspector_80x24", text(&render(&mut app, 80, 24)));
    insta::assert_snapshot!("inspector_160x48", text(&render(&mut app, 160, 48)));
    // Heat map by growth: the regressed cell is red, the shrunk one green.
    app.on_key(key('H'));
    app.on_key(key('H'));
    let t = render(&mut app, 160, 48);
    let buf = t.backend().buffer();
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
    // The list view, sorted by size.
    app.on_key(key('L'));
    insta::assert_snapshot!("list_by_size_80x24", text(&render(&mut app, 80, 24)));
    app.on_key(key('o'));
    assert_eq!(
        app.list_cells()[0],
        "debian-13/opam/amd64",
        "the biggest growth first"
    );
}

/// A plan whose debian-13 has the 36 switches the pipeline builds on amd64 (builds.expected,
/// 2026-05) and alpine-3.23 the plain ones: a tier-1 distro's columns.
fn wide_plan_matrix() -> Matrix {
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
    Matrix::from_plan(&LoadedConfig::defaults(), plan).unwrap()
}

#[test]
fn a_plans_36_switch_columns_scroll_sideways() {
    let m = wide_plan_matrix();
    assert_eq!(m.columns().len(), 37);
    let mut app = App::new(m, &HashMap::new(), &BTreeSet::new(), (10_000_000, 5.0));
    app.on_event(finished(
        "debian-13/4.14-flambda/amd64",
        BuildStatus::Succeeded,
        Some(900_000_000),
        None,
        None,
    ));
    insta::assert_snapshot!("plan_grid_80x24", text(&render(&mut app, 80, 24)));
    // The focus moves right past the edge: the columns follow it.
    for _ in 0..20 {
        app.on_key(key('l'));
    }
    let screen = text(&render(&mut app, 80, 24));
    assert!(screen.contains("│            5.2     5.2-afl"), "{screen}");
    assert!(
        screen.contains("debian-13/5.3-no-flat-float-array/amd64"),
        "{screen}"
    );
    insta::assert_snapshot!("plan_grid_80x24_scrolled", screen);
    insta::assert_snapshot!(
        "plan_grid_160x48_scrolled",
        text(&render(&mut app, 160, 48))
    );
}
