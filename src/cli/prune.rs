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

/// Whether the prune after a build run is worth its lines on stderr: it removed something
/// (logs, leftover files, Dockerfile texts, images, build cache) or a removal failed.
/// Compressing the run's finished logs happens every run and is not news, nor is an engine
/// the run already found unreachable (as the TUI's status line, `ui/effects.rs`).
pub fn after_run_is_news(r: &PruneReport) -> bool {
    let l = &r.logs;
    let logs = !l.pruned.is_empty()
        || l.leftovers_removed > 0
        || l.texts_removed > 0
        || !l.errors.is_empty();
    logs || r.engines.iter().any(|e| {
        e.removed > 0 || e.cache_reclaimed_bytes.is_some_and(|n| n > 0) || !e.errors.is_empty()
    })
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
            for line in image_lines(&e.images) {
                writeln!(out, "{line}")?;
            }
        }
        for err in &e.errors {
            writeln!(out, "  error: {err}")?;
        }
    }
    Ok(())
}

/// One line per image this history decides about; the images other histories made (kept,
/// never this history's to remove: after `imagegrid demo`, all of the demo's) as one count.
fn image_lines(images: &[crate::store::images::ImageDecision]) -> Vec<String> {
    use crate::store::images::OTHER_HISTORY;
    let mut lines = Vec::new();
    let mut others = 0;
    for d in images {
        if !d.remove && d.reason == OTHER_HISTORY {
            others += 1;
            continue;
        }
        let tags = if d.image.tags.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.image.tags.join(", "))
        };
        lines.push(format!(
            "  {} {} {}{tags}: {}",
            if d.remove { "remove" } else { "keep  " },
            d.image.id.get(..19).unwrap_or(&d.image.id),
            d.image.cell,
            d.reason
        ));
    }
    if others > 0 {
        lines.push(format!(
            "  keep   {} made by other histories (the demo's, another data directory's)",
            crate::util::words::count(others, "image", "images")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{after_run_is_news, image_lines};
    use crate::session::prune::{EnginePrune, PruneReport};
    use crate::store::retention::LogPruneReport;

    #[test]
    fn a_prune_after_a_run_that_removed_nothing_is_not_news() {
        // Every headless run printed a logs line and an engine line of zeros.
        let quiet = || PruneReport {
            logs: LogPruneReport {
                compressed: 2,
                kept: 5,
                ..Default::default()
            },
            engines: vec![
                EnginePrune {
                    engine: "a".into(),
                    cache_reclaimed_bytes: Some(0),
                    ..Default::default()
                },
                EnginePrune {
                    engine: "b".into(),
                    error: Some("unreachable".into()),
                    ..Default::default()
                },
            ],
        };
        assert!(!after_run_is_news(&quiet()));
        let mut r = quiet();
        r.logs.leftovers_removed = 1;
        assert!(after_run_is_news(&r));
        let mut r = quiet();
        r.logs.texts_removed = 1;
        assert!(after_run_is_news(&r));
        let mut r = quiet();
        r.engines[0].removed = 1;
        assert!(after_run_is_news(&r));
        let mut r = quiet();
        r.engines[0].cache_reclaimed_bytes = Some(4096);
        assert!(after_run_is_news(&r));
        let mut r = quiet();
        r.engines[0].errors.push("sha256:x: in use".into());
        assert!(after_run_is_news(&r));
    }
    use crate::engine::cleanup::OwnedImage;
    use crate::store::images::{ImageDecision, OTHER_HISTORY};

    fn decision(id: &str, tags: &[&str], remove: bool, reason: &str) -> ImageDecision {
        ImageDecision {
            image: OwnedImage {
                id: format!("sha256:{id}"),
                cell: "acc/opam/amd64".into(),
                build: Some(1),
                inputs: None,
                history: None,
                compare: false,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                size: 1,
                in_use: false,
            },
            remove,
            reason: reason.into(),
        }
    }

    #[test]
    fn other_histories_images_are_one_count_and_untagged_images_have_no_empty_parentheses() {
        // After the demo, a dry run listed each of its images as "made by another history".
        let lines = image_lines(&[
            decision("aaaaaaaaaaaaaaaa", &["r:t"], true, "superseded by build 3"),
            decision(
                "bbbbbbbbbbbbbbbb",
                &[],
                false,
                "no build label: not this history's",
            ),
            decision("cccccccccccccccc", &["d:1"], false, OTHER_HISTORY),
            decision("dddddddddddddddd", &["d:2"], false, OTHER_HISTORY),
        ]);
        assert_eq!(
            lines,
            vec![
                "  remove sha256:aaaaaaaaaaaa acc/opam/amd64 (r:t): superseded by build 3",
                "  keep   sha256:bbbbbbbbbbbb acc/opam/amd64: no build label: not this history's",
                "  keep   2 images made by other histories (the demo's, another data directory's)",
            ]
        );
    }
}
