//! `imagegrid prune`: apply the log retention policy (`[history]`) and, with `--engines`,
//! remove the images the history no longer needs and prune build caches past
//! `keep_storage`. The same prune runs by itself after a build run.

use std::io::Write;

use super::Exit;
use crate::config::LoadedConfig;
use crate::matrix::Matrix;
use crate::session::prune::{PruneOptions, PruneReport};
use crate::session::Session;
use crate::util::units::human_size;

/// Arguments of `imagegrid prune`.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Say what would go; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object (logs, engines) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Engines too: superseded images imagegrid made, and build caches past `keep_storage`.
    #[arg(long)]
    pub engines: bool,
}

pub async fn run(loaded: &LoadedConfig, matrix: Matrix, args: PruneArgs) -> Result<u8, Exit> {
    let session = Session::open(loaded.clone(), matrix)?;
    let report = session
        .prune(PruneOptions {
            engines: args.engines,
            dry_run: args.dry_run,
        })
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_report(&mut out, &report, true)?;
    }
    let failed = !report.logs.errors.is_empty()
        || report
            .engines
            .iter()
            .any(|e| e.error.is_some() || !e.errors.is_empty());
    Ok(if failed { super::EXIT_FAILED } else { 0 })
}

/// The report as text; `detail` lists each log and image (off for the one-line note after a
/// build run).
pub fn print_report(out: &mut dyn Write, r: &PruneReport, detail: bool) -> std::io::Result<()> {
    let l = &r.logs;
    let would = if l.dry_run { "would " } else { "" };
    let policy = format!(
        "keep_logs_per_cell = {}, keep_logs_days = {}",
        l.policy
            .keep_per_cell
            .map(|n| n.to_string())
            .unwrap_or("no limit".into()),
        l.policy
            .keep_days
            .map(|n| n.to_string())
            .unwrap_or("no limit".into()),
    );
    writeln!(
        out,
        "logs: {would}prune {} ({}), {would}compress {} ({} -> {}), {would}remove {} leftover files ({}); {} kept ({}); {would}free {} [{policy}]",
        l.pruned.len(),
        human_size(l.pruned_bytes as i64),
        l.compressed,
        human_size(l.compressed_from_bytes as i64),
        if l.dry_run { "?".to_string() } else { human_size(l.compressed_to_bytes as i64) },
        l.leftovers_removed,
        human_size(l.leftover_bytes as i64),
        l.kept,
        human_size(l.kept_bytes as i64),
        human_size(l.freed_bytes() as i64),
    )?;
    if detail || l.texts_removed > 0 {
        writeln!(
            out,
            "texts: {would}remove {} Dockerfile text{} no kept build names ({})",
            l.texts_removed,
            if l.texts_removed == 1 { "" } else { "s" },
            human_size(l.texts_bytes as i64),
        )?;
    }
    if detail {
        for p in &l.pruned {
            writeln!(
                out,
                "  log of build {} ({}): {}",
                p.build,
                p.cell,
                human_size(p.bytes as i64)
            )?;
        }
    }
    for e in &l.errors {
        writeln!(out, "  error: {e}")?;
    }
    for e in &r.engines {
        if let Some(err) = &e.error {
            writeln!(out, "engine {}: not pruned: {err}", e.engine)?;
            continue;
        }
        let disk = |d: &Option<crate::engine::cleanup::DiskUse>| match d {
            Some(d) => format!(
                "{}{} in {} images{}",
                if d.images_exact { "" } else { "<= " },
                human_size(d.images_bytes),
                d.images,
                d.build_cache_bytes
                    .map(|b| format!(", build cache {}", human_size(b)))
                    .unwrap_or_default()
            ),
            None => "unknown".into(),
        };
        writeln!(
            out,
            "engine {}: {would}remove {} of {} imagegrid images ({}){}; disk {}{}",
            e.engine,
            e.removed,
            e.images.len(),
            human_size(e.removed_bytes),
            match (e.keep_storage, e.cache_reclaimed_bytes) {
                (Some(k), Some(n)) => format!(
                    ", build cache pruned to {} ({} reclaimed)",
                    human_size(k as i64),
                    human_size(n)
                ),
                (Some(k), None) =>
                    format!(", {would}prune the build cache to {}", human_size(k as i64)),
                _ => String::new(),
            },
            disk(&e.disk_before),
            if e.disk_after.is_some() {
                format!(" -> {}", disk(&e.disk_after))
            } else {
                String::new()
            },
        )?;
        if detail {
            for d in &e.images {
                writeln!(
                    out,
                    "  {} {} {} ({}): {}",
                    if d.remove { "remove" } else { "keep  " },
                    d.image.id.get(..19).unwrap_or(&d.image.id),
                    d.image.cell,
                    d.image.tags.join(", "),
                    d.reason
                )?;
            }
        }
        for err in &e.errors {
            writeln!(out, "  error: {err}")?;
        }
    }
    Ok(())
}
