//! `imagegrid tags` (what a selection would publish and what each tag points to) and
//! `imagegrid publish` (per-arch pushes, manifest lists, aliases), over [`crate::publish`].

use std::io::{IsTerminal, Write};

use clap::Args;

use super::report::selected;
use super::{Exit, EXIT_FAILED};
use crate::config::LoadedConfig;
use crate::matrix::Matrix;
use crate::publish::auth::{self, display_registry};
use crate::publish::{PublishEvent, TagPlan};
use crate::session::Session;
use crate::util::text::short_id;
use crate::util::units::human_size;

/// `imagegrid tags`.
#[derive(Debug, Args)]
pub struct TagsArgs {
    /// Cells whose tags to list: ids or globs (distro/version/arch); none lists every tag.
    pub selectors: Vec<String>,
    /// The plan as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `imagegrid publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Cells whose tags to publish: ids or globs. A tag takes every arch of its
    /// distro/version, so one arch selects the whole tag. `'*'` publishes everything.
    pub selectors: Vec<String>,
    /// Print what would be pushed and published, and change nothing (no engine or
    /// registry is contacted).
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per event on stdout, the last one the summary.
    #[arg(long)]
    pub json: bool,
}

/// The plan for some selectors, from the config and the history: the session's rule, the
/// one the TUI's publish confirm uses.
async fn make_plan(session: &Session, selectors: &[String]) -> Result<TagPlan, Exit> {
    let cells = selected(&session.matrix, selectors)?;
    Ok(session.publish_plan(&cells).await?)
}

/// The plan as text: each public tag with its arches, then its aliases.
fn print_plan(out: &mut impl Write, plan: &TagPlan) -> std::io::Result<()> {
    writeln!(
        out,
        "registry {}: staging {}, public {}",
        display_registry(&plan.registry),
        plan.staging_repo,
        plan.public_repo
    )?;
    if plan.tags.iter().any(|t| t.plan_reference.is_some()) {
        writeln!(
            out,
            "tags as the pipeline plan names them; a publish pushes them to {} (`[tags]`)",
            plan.public_repo
        )?;
    }
    for t in &plan.tags {
        let state = match t.blocked() {
            None => format!("{} arches", t.arches.len()),
            Some(why) => format!("NOT PUBLISHABLE: {why}"),
        };
        writeln!(
            out,
            "{}  ({state})",
            t.plan_reference.as_deref().unwrap_or(&t.reference)
        )?;
        for a in &t.arches {
            let built = match &a.built {
                Some(b) => format!(
                    "build {} on {}, image {}{}",
                    b.build_id,
                    b.engine,
                    short_id(&b.image_id),
                    b.size
                        .map(|s| format!(", {}", human_size(s)))
                        .unwrap_or_default()
                ),
                None => "not built".into(),
            };
            writeln!(
                out,
                "    {:8} {:14} <- {}  ({built})",
                a.arch, a.platform, a.staging
            )?;
        }
        for al in plan.aliases_of(&t.tag) {
            writeln!(
                out,
                "  alias {} = {}",
                al.plan_reference.as_deref().unwrap_or(&al.reference),
                t.tag
            )?;
        }
    }
    let blocked = plan.tags.iter().filter(|t| t.blocked().is_some()).count();
    writeln!(
        out,
        "{}, {}; {} publishable, {} not",
        crate::util::words::count(plan.tags.len(), "tag", "tags"),
        crate::util::words::count(plan.aliases.len(), "alias", "aliases"),
        plan.tags.len() - blocked,
        blocked
    )
}

/// `imagegrid tags`.
pub async fn tags(loaded: &LoadedConfig, matrix: &Matrix, args: TagsArgs) -> Result<u8, Exit> {
    let session = Session::open(loaded.clone(), matrix.clone())?;
    let plan = make_plan(&session, &args.selectors).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &plan)?;
        writeln!(out)?;
    } else {
        print_plan(&mut out, &plan)?;
    }
    Ok(0)
}

/// `imagegrid publish`.
pub async fn run(loaded: &LoadedConfig, matrix: &Matrix, args: PublishArgs) -> Result<u8, Exit> {
    if args.selectors.is_empty() {
        return Err(Exit::error("name the cells whose tags to publish (e.g. `imagegrid publish 'debian-13/*/*'`); `imagegrid publish '*'` publishes everything; `imagegrid tags` lists the tags"));
    }
    let session = Session::open(loaded.clone(), matrix.clone())?;
    // What a build of the same selectors builds: `'*'` leaves out the cells outside "all"
    // (the archive, Windows), which are published when named by their ids.
    let sels = session.matrix.parse_selectors(&args.selectors)?;
    let cells = session.matrix.select_to_build(&sels);
    let plan = session.publish_plan(&cells).await?;
    if plan.tags.is_empty() {
        eprintln!(
            "imagegrid: no tag to publish for {}",
            args.selectors.join(" ")
        );
        return Ok(0);
    }
    let registry = loaded.config.tags.registry.clone();
    let credentials = auth::resolve(loaded, &registry, &auth::docker_config_dir()).await?;
    let creds_text = credentials
        .as_ref()
        .map(|c| format!("user {} from {}", c.username, c.source))
        .unwrap_or_else(|| "none (anonymous)".into());

    if args.dry_run {
        let mut out = std::io::stdout().lock();
        print_plan(&mut out, &plan)?;
        writeln!(out, "credentials: {creds_text}")?;
        writeln!(
            out,
            "dry run: would push {} images, then put {} manifest lists and their aliases; nothing was changed",
            plan.pushes(),
            plan.publishable().count()
        )?;
        return Ok(if plan.tags.iter().all(|t| t.blocked().is_none()) {
            0
        } else {
            EXIT_FAILED
        });
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let json = args.json;
    let live = !json && std::io::stderr().is_terminal();
    let printer = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            print_event(&ev, json, live);
        }
    });
    let result = tokio::select! {
        r = session.publish_with(&plan, credentials, &tx) => r,
        _ = tokio::signal::ctrl_c() => {
            drop(tx);
            let _ = printer.await;
            return Err(Exit::error("interrupted: the publish stopped part way; tags already put stay, run it again to finish"));
        }
    };
    drop(tx);
    let _ = printer.await;
    match result {
        Ok(summary) => Ok(if summary.all_published() {
            0
        } else {
            EXIT_FAILED
        }),
        Err(e) => Err(Exit::error(format!("publish stopped: {e}"))),
    }
}

/// One event: JSON on stdout, or a line on stderr.
fn print_event(ev: &PublishEvent, json: bool, live: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(ev) {
            let _ = writeln!(std::io::stdout().lock(), "{s}");
        }
        return;
    }
    // Start and retry lines matter on a terminal; in a CI log the results say it all.
    if !live && matches!(ev, PublishEvent::PushStarted { .. }) {
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "imagegrid: {}", ev.line());
}
