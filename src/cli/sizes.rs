//! `imagegrid sizes` (reports, plots, gates, single-stage comparison) and `imagegrid baseline`.

use std::collections::HashMap;

use clap::Args;

use super::report::{human_size, open_store, selected};
use super::{Exit, EXIT_FAILED};
use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::engine::build::BuildRequest;
use crate::engine::{Engine, EngineSpec};
use crate::matrix::{Level, Matrix};
use crate::sizes::{self, Format, SizeRow, Thresholds};

#[derive(Debug, Args)]
pub struct SizesArgs {
    /// Cells (ids or globs); none: every cell with a successful build.
    pub selectors: Vec<String>,
    /// Only builds started on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also draw size over time per cell into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    /// Exit 1 when a cell grew past the [sizes] thresholds (against the previous success or its baseline).
    #[arg(long)]
    pub check: bool,
    /// Build this base cell's recipe as one stage and as many, and compare the sizes.
    #[arg(long, value_name = "CELL", conflicts_with_all = ["selectors", "since", "plot", "check", "diff", "wasted", "builds", "format"])]
    pub compare_single_stage: Option<String>,
    /// Layer-by-layer diff of this cell's two newest successful builds (or --build A --build B).
    #[arg(long, value_name = "CELL", conflicts_with_all = ["selectors", "since", "plot", "check", "wasted", "format"])]
    pub diff: Option<String>,
    /// Wasted bytes of this cell's newest successful image: files later layers replace or delete.
    #[arg(long, value_name = "CELL", conflicts_with_all = ["selectors", "since", "plot", "check", "builds"])]
    pub wasted: Option<String>,
    /// Build ids for --diff (two of them).
    #[arg(long = "build", value_name = "N", requires = "diff")]
    pub builds: Vec<i64>,
}

/// The thresholds of the config.
pub fn thresholds(loaded: &LoadedConfig) -> Thresholds {
    Thresholds {
        bytes: loaded.config.sizes.max_growth_bytes,
        percent: loaded.config.sizes.max_growth_percent,
    }
}

fn validate_since(s: &str) -> Result<String, Exit> {
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(s, &date_only).is_ok() {
        return Ok(format!("{s}T00:00:00Z"));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|_| s.to_string())
        .map_err(|_| {
            Exit::error(format!(
                "--since `{s}`: expected YYYY-MM-DD or an RFC 3339 time"
            ))
        })
}

pub async fn run(loaded: &LoadedConfig, matrix: &Matrix, args: SizesArgs) -> Result<u8, Exit> {
    if let Some(cell) = &args.compare_single_stage {
        return compare_single_stage(loaded, matrix, cell).await;
    }
    let store = open_store(loaded)?;
    if let Some(cell) = &args.wasted {
        return wasted(loaded, matrix, &store, cell, args.format).await;
    }
    if let Some(cell) = &args.diff {
        return diff(loaded, matrix, &store, cell, &args.builds).await;
    }
    let sels = matrix.parse_selectors(&args.selectors)?;
    let since = args.since.as_deref().map(validate_since).transpose()?;
    // The report compares each cell's newest two sized successes: read only those (one index
    // lookup per cell). A plot draws every success, so it reads them all.
    let history = match &args.plot {
        Some(_) => store.successes(since.as_deref())?,
        None => store.last_sized_successes(since.as_deref(), 2)?,
    };
    let history: Vec<_> = history
        .into_iter()
        .filter(|r| {
            sels.is_empty()
                || matrix
                    .cell(&r.cell)
                    .is_some_and(|c| sels.iter().any(|s| s.matches(c)))
        })
        .collect();
    let rows = sizes::rows(&history, &store.baselines()?, &thresholds(loaded));
    if let Some(path) = &args.plot {
        let n = sizes::plot::size_over_time(path, &history)?;
        eprintln!(
            "imagegrid: plotted {} to {}",
            crate::util::words::count(n, "cell", "cells"),
            path.display()
        );
    }
    print!("{}", sizes::render(&rows, args.format));
    if args.check {
        let offenders: Vec<SizeRow> = rows.into_iter().filter(|r| r.regressed).collect();
        if !offenders.is_empty() {
            eprintln!(
                "imagegrid: {} past the thresholds:",
                crate::util::words::count(offenders.len(), "cell grew", "cells grew")
            );
            eprint!("{}", sizes::render(&offenders, Format::Table));
            return Ok(EXIT_FAILED);
        }
    }
    Ok(0)
}

async fn wasted(
    loaded: &LoadedConfig,
    matrix: &Matrix,
    store: &crate::store::Store,
    cell: &str,
    format: Format,
) -> Result<u8, Exit> {
    let rec = store
        .last_success_per_cell()?
        .remove(cell)
        .ok_or_else(|| Exit::error(format!("{cell} has no successful build")))?;
    let image = rec.image_id.clone().unwrap_or_default();
    let spec = EngineSpec::all(loaded, matrix)
        .into_iter()
        .find(|s| s.name == rec.engine)
        .ok_or_else(|| {
            Exit::error(format!(
                "build {} of {cell} was made on engine {}, which is no longer configured",
                rec.id, rec.engine
            ))
        })?;
    let engine = Engine::connect(&spec).await?;
    let (tmp, bytes) = export_image(loaded, &engine, &image).await?;
    let w = tokio::task::spawn_blocking(move || crate::sizes::wasted::analyse(tmp))
        .await
        .map_err(|e| Exit::error(e.to_string()))?
        .map_err(|e| Exit::error(format!("{cell}: cannot read the image archive: {e}")))?;
    if format == Format::Json {
        println!(
            "{}",
            serde_json::json!({ "cell": cell, "build": rec.id, "image": image, "exported_bytes": bytes, "waste": w })
        );
        return Ok(0);
    }
    println!(
        "{cell} (build {}): {} in files, {} wasted, efficiency {:.1}%",
        rec.id,
        human_size(w.total as i64),
        human_size(w.wasted as i64),
        w.efficiency * 100.0
    );
    for f in &w.files {
        println!(
            "  {:>10}  {} copies  {}",
            human_size(f.wasted as i64),
            f.copies,
            f.path
        );
    }
    Ok(0)
}

/// `docker save` of `image`, spilled to an anonymous file (images can be larger than memory,
/// and the manifest comes last); with its size.
async fn export_image(
    loaded: &LoadedConfig,
    engine: &Engine,
    image: &str,
) -> Result<(std::fs::File, u64), Exit> {
    use futures_util::StreamExt;
    use std::io::Write;
    let mut tmp = tempfile_in(&loaded.data_dir())?;
    let mut stream = engine.docker().export_image(image);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Exit::error(format!(
                "cannot export {image} from engine {}: {}",
                engine.name(),
                crate::engine::source_chain(&e)
            ))
        })?;
        bytes += chunk.len() as u64;
        tmp.write_all(&chunk)
            .map_err(|e| Exit::error(format!("cannot spool the image export: {e}")))?;
    }
    Ok((tmp, bytes))
}

/// An anonymous file in `dir` (removed when dropped).
fn tempfile_in(dir: &std::path::Path) -> Result<std::fs::File, Exit> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Exit::error(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(format!(".export-{}.tar", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| Exit::error(format!("cannot create {}: {e}", path.display())))?;
    // Unlinked at once: the open handle keeps it until the analysis is done, even on a crash.
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

/// The digest of each layer of a recorded build (newest first, like its layers), read from
/// its image on the engine that built it; empty when the image or the engine is gone, or the
/// history cannot be matched to the layers (see `sizes::history_digests`).
///
/// With `content`, the digests are content fingerprints that ignore time stamps (the image is
/// exported): a step rebuilt without changing what it wrote keeps its fingerprint, not its
/// layer digest.
async fn recorded_digests(
    loaded: &LoadedConfig,
    matrix: &Matrix,
    rec: &crate::store::BuildRecord,
    content: bool,
) -> Result<Vec<Option<String>>, String> {
    let image = rec.image_id.as_deref().ok_or("no image recorded")?;
    let spec = EngineSpec::all(loaded, matrix)
        .into_iter()
        .find(|s| s.name == rec.engine)
        .ok_or_else(|| format!("engine {} is no longer configured", rec.engine))?;
    let engine = tokio::time::timeout(std::time::Duration::from_secs(15), Engine::connect(&spec))
        .await
        .map_err(|_| format!("engine {} did not answer", rec.engine))?
        .map_err(|e| e.to_string())?;
    let inspect = engine
        .docker()
        .inspect_image(image)
        .await
        .map_err(|e| inspect_failure(&e, image, &rec.engine))?;
    let mut diff_ids = inspect
        .root_fs
        .and_then(|r| r.layers)
        .ok_or("the engine lists no layers")?;
    if content {
        let (tmp, _) = export_image(loaded, &engine, image)
            .await
            .map_err(|e| e.message)?;
        let fingerprints =
            tokio::task::spawn_blocking(move || sizes::wasted::layer_fingerprints(tmp))
                .await
                .map_err(|e| e.to_string())??;
        if fingerprints.len() != diff_ids.len() {
            return Err("the exported image has other layers than the engine lists".into());
        }
        diff_ids = fingerprints;
    }
    let digests = sizes::history_digests(&rec.layers, &diff_ids);
    if digests.iter().all(Option::is_none) && !rec.layers.is_empty() {
        return Err("its history cannot be matched to its layers".into());
    }
    Ok(digests)
}

/// Why an image's layers could not be read, for `sizes --diff`'s note: an image the engine no
/// longer has (404) is said in words, since the prune after each run removes a cell's
/// superseded images by design; any other error as the engine put it.
fn inspect_failure(e: &bollard::errors::Error, image: &str, engine: &str) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => format!(
            "its image {} is no longer on engine {engine}; the prune after each run removes superseded images",
            crate::util::text::short_id(image)
        ),
        _ => crate::engine::source_chain(e),
    }
}

async fn diff(
    loaded: &LoadedConfig,
    matrix: &Matrix,
    store: &crate::store::Store,
    cell: &str,
    builds: &[i64],
) -> Result<u8, Exit> {
    let (a, b) = match builds {
        [a, b] => (
            store
                .build(*a)?
                .ok_or_else(|| Exit::error(format!("no build {a}")))?,
            store
                .build(*b)?
                .ok_or_else(|| Exit::error(format!("no build {b}")))?,
        ),
        [] => {
            let ok = store.successes_of(cell)?;
            if ok.len() < 2 {
                return Err(Exit::error(format!(
                    "{cell} has {} successful builds; a diff needs two",
                    ok.len()
                )));
            }
            (ok[ok.len() - 2].clone(), ok[ok.len() - 1].clone())
        }
        _ => {
            return Err(Exit::error(
                "--diff takes no --build (the two newest successes) or exactly two",
            ))
        }
    };
    println!(
        "{cell}: build {} ({}) -> build {} ({})",
        a.id,
        a.size.map(human_size).unwrap_or_default(),
        b.id,
        b.size.map(human_size).unwrap_or_default()
    );
    // Same instruction and size is not the same layer if the content changed: compare
    // digests where the images are still there to tell them.
    // A rebuilt step has a new layer digest even when it wrote the same files (their time
    // stamps are in the layer): where digests alone would call a layer changed, the images'
    // contents decide.
    let mut content = false;
    let changes = loop {
        let mut digests = Vec::new();
        for rec in [&a, &b] {
            match recorded_digests(loaded, matrix, rec, content).await {
                Ok(d) => digests.push(d),
                Err(e) => {
                    eprintln!(
                        "imagegrid: layer digests of build {} unknown ({e}): its layers are compared by instruction and size",
                        rec.id
                    );
                    digests.push(Vec::new());
                }
            }
        }
        let by_digest =
            sizes::layer_diff_with_digests(&a.layers, &b.layers, &digests[0], &digests[1]);
        let by_size = sizes::layer_diff(&a.layers, &b.layers);
        if content || by_digest == by_size {
            break by_digest;
        }
        content = true;
    };
    for c in changes {
        let d = c.delta();
        let delta = if d == 0 {
            String::new()
        } else {
            format!("{}{}", if d > 0 { "+" } else { "-" }, human_size(d.abs()))
        };
        println!(
            "  {:8} {:>10} {:>10} {:>10}  {}",
            format!("{:?}", c.change).to_lowercase(),
            c.before.map(human_size).unwrap_or_default(),
            c.after.map(human_size).unwrap_or_default(),
            delta,
            c.instruction
        );
    }
    Ok(0)
}

async fn compare_single_stage(
    loaded: &LoadedConfig,
    matrix: &Matrix,
    id: &str,
) -> Result<u8, Exit> {
    let cell = super::report::find_cell(matrix, id)?;
    if cell.level != Level::Base {
        return Err(Exit::error(format!(
            "{id} is a compiler cell, built in one stage already; compare a base cell such as {}",
            cell.base_id().unwrap_or_default()
        )));
    }
    let renderer = Renderer::for_config(loaded);
    let multi = renderer.render(matrix, cell, None, &loaded.config.tags)?;
    let single = sizes::single_stage(&multi).map_err(|e| Exit::error(format!("{id}: {e}")))?;
    let spec = EngineSpec::all(loaded, matrix)
        .into_iter()
        .find(|s| s.arches.contains(&cell.arch))
        .ok_or_else(|| Exit::error(format!("no configured engine builds {}", cell.arch)))?;
    let engine = Engine::connect(&spec).await?;
    let platform = matrix
        .arch(&cell.arch)
        .map(|a| a.platform.clone())
        .unwrap_or_default();
    let mut results = HashMap::new();
    for (kind, dockerfile) in [("multi-stage", multi), ("single-stage", single)] {
        let tag = format!("imagegrid-compare/{}:{}-{kind}", cell.distro, cell.arch);
        eprintln!(
            "imagegrid: building {id} as {kind} on {} ...",
            engine.name()
        );
        let req = BuildRequest {
            cell_id: id.to_string(),
            dockerfile,
            context_files: vec![],
            context_dir: None,
            platform: platform.clone(),
            tag,
            // Imagegrid's own (never any other image is pruned): `imagegrid prune --engines`
            // removes comparison images.
            labels: [
                (crate::engine::build::LABEL_CELL.to_string(), id.to_string()),
                (
                    crate::engine::cleanup::LABEL_COMPARE.to_string(),
                    kind.to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            network: loaded.config.build.network,
            buildkit: loaded.config.build.buildkit.resolve(engine.info.buildkit),
            no_cache: false,
            pull: false,
            idle_timeout: std::time::Duration::from_secs(loaded.config.build.idle_timeout_secs),
        };
        let mut last = Vec::new();
        let img = engine
            .build(&req, &Default::default(), |p| {
                if let crate::engine::build::BuildProgress::Line(l) = p {
                    last.push(l);
                    if last.len() > 5 {
                        last.remove(0);
                    }
                }
            })
            .await
            .map_err(|e| Exit {
                code: EXIT_FAILED,
                message: format!("{id} as {kind}: {e}\n{}", last.join("\n")),
            })?;
        results.insert(kind, img.size);
    }
    let (m, s) = (results["multi-stage"], results["single-stage"]);
    println!("{id}");
    println!("  multi-stage   {:>10}", human_size(m));
    println!("  single-stage  {:>10}", human_size(s));
    let saved = s - m;
    println!(
        "  saving        {:>10} ({:.1}% of the single-stage image)",
        human_size(saved),
        if s > 0 {
            saved as f64 * 100.0 / s as f64
        } else {
            0.0
        }
    );
    Ok(0)
}

/// `imagegrid baseline SELECTOR [--build N]`: pin the newest success (or build N) as each cell's baseline.
pub fn baseline(
    loaded: &LoadedConfig,
    matrix: &Matrix,
    selectors: &[String],
    build: Option<i64>,
) -> Result<u8, Exit> {
    let store = open_store(loaded)?;
    if let Some(b) = build {
        let rec = store
            .build(b)?
            .ok_or_else(|| Exit::error(format!("no build {b} in the history")))?;
        if rec.status != crate::store::BuildStatus::Succeeded {
            return Err(Exit::error(format!(
                "build {b} of {} {}; only a successful build can be a baseline",
                rec.cell, rec.status
            )));
        }
        let sels = matrix.parse_selectors(selectors)?;
        if let Some(c) = matrix.cell(&rec.cell) {
            if !sels.is_empty() && !sels.iter().any(|s| s.matches(c)) {
                return Err(Exit::error(format!(
                    "build {b} is of {}, which the selector does not match",
                    rec.cell
                )));
            }
        }
        store.set_baseline(&rec.cell, b)?;
        println!(
            "{}: baseline is build {b} ({})",
            rec.cell,
            rec.size.map(human_size).unwrap_or_default()
        );
        return Ok(0);
    }
    if selectors.is_empty() {
        return Err(Exit::error(
            "name the cells whose baseline to pin (e.g. `imagegrid baseline 'debian-13/*/*'`)",
        ));
    }
    let last = store.last_success_per_cell()?;
    let mut n = 0;
    for c in selected(matrix, selectors)? {
        if let Some(r) = last.get(&c.id) {
            store.set_baseline(&c.id, r.id)?;
            println!(
                "{}: baseline is build {} ({})",
                c.id,
                r.id,
                r.size.map(human_size).unwrap_or_default()
            );
            n += 1;
        }
    }
    if n == 0 {
        return Err(Exit::error(
            "no selected cell has a successful build to pin",
        ));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::inspect_failure;

    #[test]
    fn an_image_gone_from_its_engine_is_said_in_words() {
        // Docker 20.10's own 404 text (F3 replay): the id twice, no reason.
        let gone = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "no such image: sha256:f06435c3ca1f: No such image: sha256:f06435c3ca1f"
                .into(),
        };
        let why = inspect_failure(&gone, "sha256:f06435c3ca1f08193949cb569fe7398f", "local");
        assert_eq!(
            why,
            "its image f06435c3ca1f is no longer on engine local; the prune after each run removes superseded images"
        );
        let other = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "disk full".into(),
        };
        assert!(inspect_failure(&other, "sha256:ab", "local").contains("disk full"));
    }
}
