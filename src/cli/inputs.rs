//! `imagegrid inputs [--refresh] [--json]`: the moving refs recipes use and the commits they
//! are pinned to (resolved again when older than `[inputs] refresh`, or at once with
//! `--refresh`); and the registry digest of each upstream image base cells start FROM
//! (`[build] check_upstream`: asked of an engine when older than `refresh`, or at once with
//! `--refresh`).

use crate::config::LoadedConfig;
use crate::inputs::{InputSources, OPAM, OPAM_REPOSITORY};
use crate::model::inputs::{Needs, ResolvedRef, OPAM_REFS};

use super::Exit;

/// Resolve and show every input; exit 1 when one could not be resolved (its last
/// resolution, if any, is still shown, marked as such).
pub fn run(loaded: &LoadedConfig, refresh: bool, json: bool) -> Result<u8, Exit> {
    let sources = InputSources::from_config(loaded);
    let needs = Needs {
        opam_refs: OPAM_REFS.iter().map(|r| r.to_string()).collect(),
        opam_repository: true,
    };
    let (pins, errors) = sources.resolve(&needs, refresh);
    let failed = |input: &str| errors.iter().any(|e| e.input == input);
    let mut rows: Vec<(&str, &ResolvedRef, bool)> = Vec::new();
    for r in OPAM_REFS {
        if let Some(p) = pins.opam.get(*r) {
            rows.push((OPAM, p, failed(OPAM)));
        }
    }
    if let Some(p) = &pins.opam_repository {
        rows.push((OPAM_REPOSITORY, p, failed(OPAM_REPOSITORY)));
    }
    // What each base build sends: the checkout (with its .git) and a Dockerfile, as a tar.
    // None when there is no checkout yet (a fresh data dir offline).
    let checkout = Some(sources.checkout_dir()).filter(|_| sources.has_checkout());
    let context_bytes = checkout
        .as_ref()
        .filter(|_| pins.opam_repository.is_some())
        .and_then(|c| crate::engine::build::dir_context_size(c, "").ok());
    // The upstream images (an unreadable matrix or an unreachable engine is a note: the
    // refs above are still shown).
    let (upstreams, up_error) = match crate::matrix::Matrix::load(loaded) {
        Ok(m) => {
            let renderer = crate::dockerfile::Renderer::for_config(loaded);
            match super::runtime()?.block_on(crate::session::upstream::check(
                loaded, &m, &renderer, refresh,
            )) {
                Ok((up, unsaved)) => {
                    let wanted = crate::why::recorded::upstream_wanted(
                        &m,
                        &renderer,
                        &crate::scheduler::RunOptions::from_config(loaded),
                    )
                    .unwrap_or_default();
                    let up: Vec<_> = up
                        .into_iter()
                        .filter(|(i, _)| wanted.contains_key(i))
                        .collect();
                    (up, unsaved)
                }
                Err(e) => (vec![], Some(e.to_string())),
            }
        }
        Err(e) => (vec![], Some(e.to_string())),
    };
    if json {
        let v = serde_json::json!({
            "upstream": upstreams.iter().map(|(image, a)| serde_json::json!({
                "image": image, "digest": a.digest, "error": a.error, "engine": a.engine,
                "asked_at": a.asked_at,
            })).collect::<Vec<_>>(),
            "inputs": rows.iter().map(|(input, r, stale)| serde_json::json!({
                "input": input, "url": r.url, "ref": r.git_ref, "commit": r.commit,
                "tag": r.tag, "resolved_at": r.resolved_at, "stale": stale,
            })).collect::<Vec<_>>(),
            "checkout": checkout,
            "context_bytes": context_bytes,
            "refresh_secs": sources.refresh.as_secs(),
            "errors": errors.iter().map(|e| serde_json::json!({
                "input": e.input, "url": e.url, "message": e.message,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<16} {:<7} {:<40} RESOLVED", "INPUT", "REF", "COMMIT");
        for (input, r, stale) in &rows {
            let tag = r
                .tag
                .as_deref()
                .map(|t| format!(" (tag {t})"))
                .unwrap_or_default();
            println!(
                "{input:<16} {:<7} {:<40} {}{tag}{}",
                r.git_ref,
                r.commit,
                r.resolved_at,
                if *stale {
                    " (last resolution: refreshing failed)"
                } else {
                    ""
                }
            );
        }
        match (&checkout, context_bytes) {
            (Some(c), Some(n)) => println!(
                "opam-repository checkout: {} (build context of the base images: {})",
                c.display(),
                crate::util::units::human_size(n as i64)
            ),
            (Some(c), None) => println!("opam-repository checkout: {}", c.display()),
            (None, _) => println!(
                "opam-repository checkout: none yet (the first resolution that reaches {} makes it in {})",
                crate::model::inputs::redact_url(&sources.opam_repository),
                sources.checkout_dir().display()
            ),
        }
        for (image, a) in &upstreams {
            let what = match (&a.digest, &a.error) {
                (Some(d), _) => d.clone(),
                (None, Some(e)) => format!("unknown: {e}"),
                (None, None) => "no registry digest".into(),
            };
            println!(
                "upstream {image}: {what} (asked {} of engine {})",
                a.asked_at, a.engine
            );
        }
    }
    if let Some(e) = up_error {
        eprintln!("imagegrid: upstream digests: {e}");
    }
    for e in &errors {
        eprintln!("imagegrid: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}
