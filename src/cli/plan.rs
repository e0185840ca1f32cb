//! `imagegrid plan diff OLD NEW`: what a generator change touches, between two plan files
//! (dumps). Exit 0 when they are equal, 1 when not, 2 when either is not a plan.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::{Exit, EXIT_FAILED};
use crate::plan::{Plan, PlanDiff};

#[derive(Debug, Subcommand)]
pub enum PlanCmd {
    /// Compare two plan files (dumps): cells added, removed and changed (with their
    /// Dockerfile diffs, one edit shown once for every cell it applies to), cells rebuilt
    /// because their base changed, public tags added, removed and retargeted.
    #[command(
        after_help = "Exit status: 0 the plans are equal, 1 they differ, 2 either file is not a plan (file:line: message).\nExamples:\n  imagegrid plan diff builds.expected.old builds.expected\n  imagegrid plan diff old.dump new.dump --json | jq '.groups[] | .cells | length'"
    )]
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// One JSON object: added, removed, changed [{cell, diff}], tags_added, tags_removed,
        /// tags_retargeted [{tag, from, to}], groups [{diff, cells}], base_changed.
        #[arg(long)]
        json: bool,
    },
}

/// Run a `plan` subcommand.
pub fn run(cmd: PlanCmd) -> Result<u8, Exit> {
    match cmd {
        PlanCmd::Diff { old, new, json } => {
            let old = Plan::load(&old)?;
            let new = Plan::load(&new)?;
            let d = PlanDiff::between(&old, &new);
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&d)?)?;
            } else {
                out.write_all(text(&old, &new, &d).as_bytes())?;
            }
            Ok(if d.is_empty() { 0 } else { EXIT_FAILED })
        }
    }
}

/// The human form: counts first, then each edit once with the cells it applies to.
fn text(old: &Plan, new: &Plan, d: &PlanDiff) -> String {
    let mut s = String::new();
    let (o, n) = (old.path().display(), new.path().display());
    if d.is_empty() {
        s.push_str(&format!("{o} and {n} plan the same builds and tags\n"));
        return s;
    }
    s.push_str(&format!(
        "{o} -> {n}: {} added, {} removed, {} changed ({} distinct edits), {} rebuilt for their base; tags: {} added, {} removed, {} retargeted\n",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.groups.len(),
        d.base_changed.len(),
        d.tags_added.len(),
        d.tags_removed.len(),
        d.tags_retargeted.len()
    ));
    let list = |s: &mut String, title: &str, cells: &[String]| {
        if !cells.is_empty() {
            s.push_str(&format!("\n{title} ({}):\n", cells.len()));
            for c in cells {
                s.push_str(&format!("  {c}\n"));
            }
        }
    };
    list(&mut s, "added", &d.added);
    list(&mut s, "removed", &d.removed);
    for (i, g) in d.groups.iter().enumerate() {
        s.push_str(&format!(
            "\nedit {} of {}, in {} cell{}: {}\n",
            i + 1,
            d.groups.len(),
            g.cells.len(),
            if g.cells.len() == 1 { "" } else { "s" },
            g.cells.join(", ")
        ));
        for l in g.diff.lines() {
            s.push_str(&format!("  {l}\n"));
        }
    }
    list(
        &mut s,
        "rebuilt because their base changed",
        &d.base_changed,
    );
    list(&mut s, "public tags added", &d.tags_added);
    list(&mut s, "public tags removed", &d.tags_removed);
    if !d.tags_retargeted.is_empty() {
        s.push_str(&format!(
            "\npublic tags retargeted ({}):\n",
            d.tags_retargeted.len()
        ));
        for r in &d.tags_retargeted {
            s.push_str(&format!(
                "  {}: {} -> {}\n",
                r.tag,
                r.from.join(", "),
                r.to.join(", ")
            ));
        }
    }
    s
}
