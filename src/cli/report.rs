//! Read-only subcommands: matrix, dockerfile, check, history, log, paths, and the text grid.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use super::Exit;
use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::engine::{Engine, EngineSpec, RunningStep};
use crate::matrix::{Cell, Level, Matrix, BASE_VERSION};
use crate::store::{BuildRecord, BuildStatus, Store};
pub use crate::util::units::human_size;

/// One cell as `matrix --json` prints it.
#[derive(Serialize)]
struct CellRow<'a> {
    id: &'a str,
    level: Level,
    distro: &'a str,
    version: Option<&'a str>,
    arch: &'a str,
    platform: String,
    /// `linux` or `windows` (Windows cells are shown, never built by Linux engines).
    os: &'static str,
    /// The image it builds FROM: the upstream distro image, or its base cell's tag.
    base_image: String,
    depends_on: Option<String>,
    tag: String,
}

fn row<'a>(loaded: &LoadedConfig, m: &'a Matrix, c: &'a Cell) -> CellRow<'a> {
    let distro = m
        .distro(&c.distro)
        .expect("matrix cells have known distros");
    let base_image = match c.base_id() {
        None => distro.base.clone(),
        Some(b) => {
            Cell::new(&c.distro, None, &c.arch).staging_tag(&loaded.config.tags)
                + &format!(" ({b})")
        }
    };
    CellRow {
        id: &c.id,
        level: c.level,
        distro: &c.distro,
        version: c.version.as_deref(),
        arch: &c.arch,
        platform: m.platform(c),
        os: c.os(),
        base_image,
        depends_on: c.base_id(),
        tag: c.staging_tag(&loaded.config.tags),
    }
}

/// Cells chosen by selectors (all when none), or a usage error.
pub fn selected<'a>(m: &'a Matrix, selectors: &[String]) -> Result<Vec<&'a Cell>, Exit> {
    let sels = m.parse_selectors(selectors)?;
    Ok(m.select(&sels))
}

pub fn matrix(
    loaded: &LoadedConfig,
    m: &Matrix,
    selectors: &[String],
    json: bool,
) -> Result<u8, Exit> {
    let cells = selected(m, selectors)?;
    if cells.is_empty() && !selectors.is_empty() {
        eprintln!("imagegrid: no cell matches {}", selectors.join(" "));
    }
    let rows: Vec<CellRow> = cells.iter().map(|c| row(loaded, m, c)).collect();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(0);
    }
    let w = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(4);
    let dw = rows
        .iter()
        .map(|r| r.distro.len())
        .max()
        .unwrap_or(0)
        .max(14);
    let vw = rows
        .iter()
        .map(|r| r.version.unwrap_or(BASE_VERSION).len())
        .max()
        .unwrap_or(0)
        .max(7);
    writeln!(
        out,
        "{:w$}  {:8}  {:dw$}  {:vw$}  {:7}  BASE IMAGE",
        "CELL", "LEVEL", "DISTRO", "VERSION", "ARCH"
    )?;
    for r in &rows {
        let level = match r.level {
            Level::Base => "base",
            Level::Compiler => "compiler",
            Level::Archive => "archive",
        };
        writeln!(
            out,
            "{:w$}  {:8}  {:dw$}  {:vw$}  {:7}  {}",
            r.id,
            level,
            r.distro,
            r.version.unwrap_or(BASE_VERSION),
            r.arch,
            r.base_image
        )?;
    }
    let count = crate::util::words::count(rows.len(), "cell", "cells");
    match &m.catalog.info {
        // The built-in catalog says which pipeline snapshot it reproduces.
        Some(info) => writeln!(out, "{count} (built-in catalog: {})", info.reproduces)?,
        None => writeln!(out, "{count}")?,
    }
    Ok(0)
}

pub fn dockerfile(loaded: &LoadedConfig, m: &Matrix, id: &str) -> Result<u8, Exit> {
    let cell = find_cell(m, id)?;
    let r = Renderer::for_config(loaded);
    let text = r.render(m, cell, None, &loaded.config.tags)?;
    let needs = r.needs(m, cell, &loaded.config.tags)?;
    let pins = r.pins();
    let mut unpinned: Vec<String> = needs
        .opam_refs
        .iter()
        .filter(|x| pins.opam_commit(x).is_none())
        .map(|x| format!("opam {x}"))
        .collect();
    if needs.opam_repository && pins.repository_commit().is_none() {
        unpinned.push("opam-repository master".into());
    }
    if !unpinned.is_empty() {
        eprintln!(
            "note: {} not resolved yet: shown as named (`imagegrid inputs --refresh` pins them)",
            unpinned.join(", ")
        );
    }
    print!("{text}");
    Ok(0)
}

/// A cell by exact id, with a hint when it is not in the matrix.
pub fn find_cell<'a>(m: &'a Matrix, id: &str) -> Result<&'a Cell, Exit> {
    if let Some(c) = m.cell(id) {
        return Ok(c);
    }
    // Explain why: a bad part, or a combination the rules exclude.
    m.parse_selectors(&[id.to_string()])?;
    Err(Exit::error(format!("no cell `{id}` in the matrix (excluded by the rules or the config; `imagegrid matrix` lists cells)")))
}

#[derive(Serialize)]
struct CheckRow {
    engine: String,
    endpoint: String,
    reachable: bool,
    info: Option<crate::engine::EngineInfo>,
    arches: Vec<String>,
    error: Option<String>,
    /// Build steps of imagegrid still running there (classic builder), with their build.
    running_build_steps: Vec<StepRow>,
    /// Images of builds the history marks interrupted (they finished after imagegrid stopped).
    images_of_interrupted_builds: Vec<crate::engine::OrphanImage>,
}

#[derive(Serialize)]
struct StepRow {
    #[serde(flatten)]
    step: RunningStep,
    /// The build of the same cell and inputs on this engine that never recorded an end.
    build: Option<i64>,
    /// Its status: `running` (an imagegrid process still runs it) or `interrupted`.
    build_status: Option<BuildStatus>,
}

/// What an engine still runs or holds of builds that never recorded an end.
async fn orphans(
    e: &Engine,
    unfinished: &[BuildRecord],
) -> Result<(Vec<StepRow>, Vec<crate::engine::OrphanImage>), crate::engine::EngineError> {
    let steps = e.running_build_steps().await?;
    let steps = steps
        .into_iter()
        .map(|step| {
            let rec = unfinished
                .iter()
                .rev()
                .find(|r| r.cell == step.cell && r.inputs == step.inputs);
            StepRow {
                build: rec.map(|r| r.id),
                build_status: rec.map(|r| r.status),
                step,
            }
        })
        .collect();
    let interrupted = unfinished
        .iter()
        .filter(|r| r.status == BuildStatus::Interrupted)
        .map(|r| (r.id, r.cell.clone(), r.inputs.clone()))
        .collect();
    Ok((steps, e.images_of_builds(&interrupted).await?))
}

pub async fn check(loaded: &LoadedConfig, m: &Matrix, json: bool) -> Result<u8, Exit> {
    let specs = EngineSpec::all(loaded, m);
    let results = futures_util::future::join_all(specs.iter().map(Engine::connect)).await;
    // History ties what engines still run to builds; without it, check still checks.
    let store = match open_store(loaded) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("imagegrid: history unavailable: {}", e.message);
            None
        }
    };
    let mut rows: Vec<CheckRow> = Vec::new();
    for (s, r) in specs.iter().zip(results) {
        rows.push(match r {
            Ok(mut e) => {
                // Whether the `# syntax=` frontend image resolves matters only to `directive`.
                if loaded.config.build.frontend == crate::config::FrontendMode::Directive
                    && e.info.builder.buildkit
                {
                    e.info.builder.syntax = e
                        .probe_frontend(
                            crate::engine::builder::PIPELINE_SYNTAX,
                            std::time::Duration::from_secs(10),
                        )
                        .await;
                }
                let unfinished = match &store {
                    Some(st) => st.unfinished_on(&s.name)?,
                    None => vec![],
                };
                let (steps, images, error) = match orphans(&e, &unfinished).await {
                    Ok((s, i)) => (s, i, None),
                    Err(err) => (vec![], vec![], Some(err.message)),
                };
                CheckRow {
                    engine: s.name.clone(),
                    endpoint: e.endpoint.to_string(),
                    reachable: true,
                    info: Some(e.info.clone()),
                    arches: s.arches.clone(),
                    error,
                    running_build_steps: steps,
                    images_of_interrupted_builds: images,
                }
            }
            Err(e) => CheckRow {
                engine: s.name.clone(),
                endpoint: s.endpoint.to_string(),
                reachable: false,
                info: None,
                arches: s.arches.clone(),
                error: Some(e.message),
                running_build_steps: vec![],
                images_of_interrupted_builds: vec![],
            },
        });
    }
    let unbuildable: Vec<&str> = m
        .arches
        .iter()
        .filter(|a| !specs.iter().any(|s| s.arches.contains(&a.name)))
        .map(|a| a.name.as_str())
        .collect();
    let ok = rows.iter().all(|r| r.reachable);
    if json {
        let v = serde_json::json!({ "config": loaded.source.name, "cells": m.cells.len(), "engines": rows, "arches_without_engine": unbuildable });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "config {}: ok ({} cells)",
            loaded.source.name,
            m.cells.len()
        );
        for r in &rows {
            match (&r.info, &r.error) {
                (Some(i), _) => println!(
                    "engine {}: reachable at {} (Docker {}, API {}, {}/{}, BuildKit {}) builds {}",
                    r.engine,
                    r.endpoint,
                    i.version,
                    i.api_version,
                    i.os,
                    i.arch,
                    if i.buildkit { "yes" } else { "no" },
                    r.arches.join(", ")
                ),
                (None, e) => println!(
                    "engine {}: UNREACHABLE at {}: {}",
                    r.engine,
                    r.endpoint,
                    e.clone().unwrap_or_default()
                ),
            }
            if let Some(i) = &r.info {
                println!(
                    "  builder: {} ([build] frontend = \"{}\")",
                    i.builder.describe(),
                    loaded.config.build.frontend.as_str()
                );
                if let Some(h) = i.builder.frontend_hint(loaded.config.build.frontend) {
                    println!("  hint: {h}");
                }
            }
            if let (Some(_), Some(e)) = (&r.info, &r.error) {
                println!("  cannot list its imagegrid builds: {e}");
            }
            for s in &r.running_build_steps {
                let build = match (s.build, s.build_status) {
                    (Some(b), Some(BuildStatus::Running)) => {
                        format!("build {b}, which an imagegrid process still runs")
                    }
                    (Some(b), _) => format!("build {b}, interrupted: its imagegrid stopped"),
                    (None, _) => "no build in this history".to_string(),
                };
                println!(
                    "  build step still running: {} in container {} ({}), {build}; `docker stop {}` on this engine ends it",
                    s.step.cell, s.step.container, s.step.status, s.step.container
                );
            }
            for i in &r.images_of_interrupted_builds {
                println!(
                    "  build {} of {} is marked interrupted, but this engine holds its image {}: it finished after imagegrid stopped",
                    i.build, i.cell, i.image_id
                );
            }
        }
        if !unbuildable.is_empty() {
            println!("warning: no engine builds {}", unbuildable.join(", "));
        }
    }
    Ok(if ok { 0 } else { super::EXIT_FAILED })
}

/// The store, opened (or a clear error naming the file).
pub fn open_store(loaded: &LoadedConfig) -> Result<Store, Exit> {
    Ok(Store::open(&loaded.data_dir())?)
}

pub fn history(
    loaded: &LoadedConfig,
    m: &Matrix,
    selectors: &[String],
    json: bool,
    limit: Option<usize>,
) -> Result<u8, Exit> {
    let sels = m.parse_selectors(selectors)?;
    let store = open_store(loaded)?;
    let mut out = std::io::stdout().lock();
    let mut printer = HistoryPrinter::new(json);
    // Exact cell ids (no glob): their rows by index, newest first, only as many as asked.
    let exact: Option<Vec<&str>> = selectors
        .iter()
        .map(|s| (!s.contains(['*', '?', '[']) && m.cell(s).is_some()).then_some(s.as_str()))
        .collect();
    match (exact, limit) {
        (Some(cells), _) if !cells.is_empty() => {
            let mut rows: Vec<BuildRecord> = Vec::new();
            for c in cells {
                rows.extend(store.cell_history(c, limit)?);
            }
            rows.sort_by_key(|r| r.id);
            rows.dedup_by_key(|r| r.id);
            if let Some(n) = limit {
                let skip = rows.len().saturating_sub(n);
                rows.drain(..skip);
            }
            for r in &rows {
                printer.row(&mut out, r)?;
            }
        }
        (_, limit) => {
            // Stream the whole history through the filter; with --limit, hold only the last N.
            let keep = |r: &BuildRecord| in_selection(m, &sels, &r.cell);
            let mut last: std::collections::VecDeque<BuildRecord> = Default::default();
            let mut err: Option<std::io::Error> = None;
            store.each_build(&mut |r| {
                if !keep(&r) {
                    return true;
                }
                match limit {
                    Some(n) => {
                        last.push_back(r);
                        if last.len() > n {
                            last.pop_front();
                        }
                        true
                    }
                    None => match printer.row(&mut out, &r) {
                        Ok(()) => true,
                        Err(e) => {
                            err = Some(e);
                            false
                        }
                    },
                }
            })?;
            if let Some(e) = err {
                return Err(e.into());
            }
            for r in &last {
                printer.row(&mut out, r)?;
            }
        }
    }
    printer.end(&mut out)?;
    Ok(0)
}

/// Does a history row's cell match the selectors (all when there are none)? A cell no longer
/// in the matrix is matched by its id's parts.
pub(super) fn in_selection(m: &Matrix, sels: &[crate::matrix::Selector], id: &str) -> bool {
    sels.is_empty()
        || m.cell(id)
            .map(|c| sels.iter().any(|s| s.matches(c)))
            .unwrap_or_else(|| sels.iter().any(|s| s.matches(&cell_from_id(id))))
}

/// Writes history rows one at a time: a table, or a JSON array streamed element by element.
struct HistoryPrinter {
    json: bool,
    rows: usize,
}

impl HistoryPrinter {
    fn new(json: bool) -> HistoryPrinter {
        HistoryPrinter { json, rows: 0 }
    }

    fn row(&mut self, out: &mut dyn Write, r: &BuildRecord) -> std::io::Result<()> {
        if self.json {
            out.write_all(if self.rows == 0 { b"[\n" } else { b",\n" })?;
            serde_json::to_writer_pretty(&mut *out, r)?;
        } else {
            if self.rows == 0 {
                writeln!(
                    out,
                    "{:>5}  {:28}  {:11}  {:10}  {:20}  {:>9}  {:>10}  {:>8}  FAILURE",
                    "BUILD", "CELL", "STATUS", "ENGINE", "STARTED", "SIZE", "COMPRESSED", "TIME"
                )?;
            }
            writeln!(
                out,
                "{:>5}  {:28}  {:11}  {:10}  {:20}  {:>9}  {:>10}  {:>8}  {}{}",
                r.id,
                r.cell,
                r.status.as_str(),
                r.engine,
                r.started_at.get(..19).unwrap_or(&r.started_at),
                r.size.map(human_size).unwrap_or_default(),
                r.compressed_size.map(human_size).unwrap_or_default(),
                r.duration_secs()
                    .map(|d| format!("{d:.1}s"))
                    .unwrap_or_default(),
                match (&r.cause, r.failure.as_deref()) {
                    // Failure lines lead with their cause since schema 4; older ones get it.
                    (Some(c), Some(f)) if f.starts_with(&c.name) => f.to_string(),
                    (Some(c), Some(f)) => format!("[{}] {f}", c.name),
                    (_, f) => f.unwrap_or("").to_string(),
                },
                if r.log_pruned_at.is_some() {
                    if r.failure.is_some() {
                        "  (log pruned)"
                    } else {
                        "(log pruned)"
                    }
                } else {
                    ""
                }
            )?;
        }
        self.rows += 1;
        Ok(())
    }

    fn end(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.json {
            out.write_all(if self.rows == 0 { b"[]\n" } else { b"\n]\n" })?;
        } else if self.rows == 0 {
            writeln!(
                out,
                "{:>5}  {:28}  {:11}  {:10}  {:20}  {:>9}  {:>10}  {:>8}  FAILURE",
                "BUILD", "CELL", "STATUS", "ENGINE", "STARTED", "SIZE", "COMPRESSED", "TIME"
            )?;
        }
        Ok(())
    }
}

/// A cell value from an id that may no longer be in the matrix (for history filters).
fn cell_from_id(id: &str) -> Cell {
    let p: Vec<&str> = id.splitn(3, '/').collect();
    let (d, v, a) = (
        p.first().copied().unwrap_or(""),
        p.get(1).copied().unwrap_or(""),
        p.get(2).copied().unwrap_or(""),
    );
    Cell::new(d, (v != BASE_VERSION).then_some(v), a)
}

pub fn log(loaded: &LoadedConfig, cell: &str, build: Option<i64>) -> Result<u8, Exit> {
    let store = open_store(loaded)?;
    let id = match build {
        Some(b) => b,
        None => store
            .latest_id(cell)?
            .ok_or_else(|| Exit::error(format!("no build of {cell} in the history")))?,
    };
    let rec = store
        .build(id)?
        .ok_or_else(|| Exit::error(format!("no build {id} in the history")))?;
    if rec.cell != cell {
        return Err(Exit::error(format!(
            "build {id} is of cell {}, not {cell}",
            rec.cell
        )));
    }
    let path = store.log_path(id);
    if let Some(at) = &rec.log_pruned_at {
        println!(
            "build {id} of {cell}: log pruned at {at} by the retention policy ([history] keep_logs_per_cell, keep_logs_days); `imagegrid history` keeps its row"
        );
        return Ok(0);
    }
    // Finished logs are stored compressed: read either form.
    match crate::store::logfile::copy_to(&path, &mut std::io::stdout().lock()) {
        Ok(_) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e)
            if rec.status == BuildStatus::Skipped
                || rec.status == BuildStatus::Cancelled && rec.engine.is_empty() =>
        {
            let _ = e;
            println!(
                "build {id} of {cell} was {} without running: {}",
                rec.status,
                rec.failure.unwrap_or_default()
            );
            Ok(0)
        }
        Err(e) => Err(Exit::error(format!(
            "cannot read log {}: {e}",
            path.display()
        ))),
    }
}

pub fn paths(loaded: &LoadedConfig) {
    let cfg = loaded
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| {
            format!(
                "{} (built-in defaults; {} does not exist)",
                loaded.source.name,
                crate::config::default_config_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )
        });
    let data = loaded.data_dir();
    let db = data.join(crate::store::DB_FILE);
    // What each place holds: the database with its WAL, and every file under logs/.
    let db_bytes: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(std::path::PathBuf::from(p)).ok()
        })
        .map(|m| m.len())
        .sum();
    let (log_files, log_bytes) = std::fs::read_dir(data.join("logs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .fold((0u64, 0u64), |(n, b), m| (n + 1, b + m.len()))
        })
        .unwrap_or((0, 0));
    println!("config     {cfg}");
    println!("data       {}", data.display());
    println!(
        "history    {}  ({})",
        db.display(),
        human_size(db_bytes as i64)
    );
    println!(
        "logs       {}  ({} in {log_files} files)",
        data.join("logs").display(),
        human_size(log_bytes as i64)
    );
    println!(
        "templates  {}",
        loaded
            .templates_dir()
            .map(|d| format!("{} (overrides the built-in ones)", d.display()))
            .unwrap_or_else(|| "built-in".into())
    );
}

/// The plain-text grid (what runs when stdout is not a terminal).
pub fn print_grid(loaded: &LoadedConfig, m: &Matrix) -> Result<(), Exit> {
    let latest: HashMap<String, BuildRecord> = match open_store(loaded) {
        Ok(s) => s.latest_per_cell()?,
        Err(e) => {
            eprintln!("imagegrid: history unavailable: {}", e.message);
            HashMap::new()
        }
    };
    let mut out = std::io::stdout().lock();
    let cols: Vec<String> = m.columns();
    write!(out, "{:22}", "")?;
    for c in &cols {
        write!(out, "{:>14}", c)?;
    }
    writeln!(out)?;
    for d in &m.distros {
        write!(out, "{:22}", d.name)?;
        for col in &cols {
            let cells: Vec<&Cell> = m
                .cells
                .iter()
                .filter(|c| c.distro == d.name && c.version_part() == col)
                .collect();
            if cells.is_empty() {
                write!(out, "{:>14}", "-")?;
                continue;
            }
            let ok = cells
                .iter()
                .filter(|c| {
                    latest
                        .get(&c.id)
                        .is_some_and(|r| r.status == BuildStatus::Succeeded)
                })
                .count();
            let bad = cells
                .iter()
                .filter(|c| latest.get(&c.id).is_some_and(|r| r.status.is_failed()))
                .count();
            write!(out, "{:>14}", format!("{ok}ok {bad}x /{}", cells.len()))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{} cells; arches: {}",
        m.cells.len(),
        m.arches
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(())
}
