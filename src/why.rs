//! Why a cell needs a rebuild: a list of reasons per cell, most specific first, each a kind
//! and a sentence. Two sources so far:
//!
//! - the history ([`stale_reasons`]): a cell whose last success was built from other inputs
//!   than today's. The history records each build's inputs hash only, not its texts, so the
//!   reason says what can be told from hashes: built with other build options (the hash
//!   matches today's text under another option), the plan changed the cell or its base, or
//!   (built-in catalog) its rendered Dockerfile changed;
//! - two plans ([`plan_reasons`]): the cells a new plan changes, exactly (the texts of both
//!   plans are at hand), with the number of lines changed.
//!
//! - recorded inputs ([`recorded::explain`]): each build since schema 7 records what went into
//!   it, so the reasons name exactly what moved (a pinned ref's commits, the Dockerfile's
//!   changed lines with a diff, the base image it started FROM), and a cell never built or
//!   whose last build failed says so.

pub mod recorded;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::dockerfile::{RenderError, Renderer};
use crate::matrix::{Cell, Matrix};
use crate::model::options::NetworkMode;
use crate::plan::{Plan, PlanDiff};
use crate::scheduler::RunOptions;
use crate::store::BuildRecord;

/// What kind of change a reason names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// The plan (dump) gives the cell, or its base, another Dockerfile.
    ChangedByPlan,
    /// Same Dockerfile, other build options (network mode).
    BuildOptions,
    /// The built-in catalog or the templates render another Dockerfile (with the same
    /// pins: `Dockerfile: 3 lines changed`, a diff beside).
    Dockerfile,
    /// A pinned input moved: `opam-repository master 1a2b3c4 -> 9f8e7d6`.
    Input,
    /// Its base was rebuilt since: it started FROM another base image.
    BaseRebuilt,
    /// Its base is stale (listed after the cell's own reasons).
    BaseStale,
    /// The upstream image it starts FROM has a new digest in its registry.
    Upstream,
    /// No successful build of it is recorded.
    NeverBuilt,
    /// Its latest build failed.
    LastFailed,
}

impl ReasonKind {
    /// A few words for the grid and the detail pane: `changed by plan`.
    pub fn words(self) -> &'static str {
        match self {
            ReasonKind::ChangedByPlan => "changed by plan",
            ReasonKind::BuildOptions => "build options changed",
            ReasonKind::Dockerfile => "Dockerfile changed",
            ReasonKind::Input => "input moved",
            ReasonKind::BaseRebuilt => "base rebuilt",
            ReasonKind::BaseStale => "base stale",
            ReasonKind::Upstream => "upstream moved",
            ReasonKind::NeverBuilt => "never built",
            ReasonKind::LastFailed => "last build failed",
        }
    }

    /// The cell is stale because of its base, not of its own inputs (the grid marks the
    /// two apart).
    pub fn is_base(self) -> bool {
        matches!(self, ReasonKind::BaseRebuilt | ReasonKind::BaseStale)
    }
}

/// One reason a cell needs a rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub kind: ReasonKind,
    /// A sentence: `its Dockerfile in new.dump changed (1 line added, 0 removed)`.
    pub detail: String,
    /// For a Dockerfile change: the unified diff from the text of the last success to
    /// today's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// Reasons by cell id.
pub type Reasons = BTreeMap<String, Vec<Reason>>;

/// Why each cell of `m` whose last success (`last`) was built from other inputs than today's
/// is stale. Renders templates: call it off any event loop.
pub fn stale_reasons(
    m: &Matrix,
    r: &Renderer,
    opts: &RunOptions,
    last: &HashMap<String, BuildRecord>,
) -> Result<Reasons, RenderError> {
    let key = opts.key_options();
    let built: Vec<&Cell> = m
        .cells
        .iter()
        .filter(|c| last.contains_key(&c.id))
        .collect();
    let now = r
        .keys(m, &built, &[key.network], &opts.tags)?
        .pop()
        .unwrap_or_default();
    let stale =
        |id: &str| matches!((now.get(id), last.get(id)), (Some(h), Some(rec)) if *h != rec.inputs);
    // A stale cell built with another network setting says so: its keys under the others.
    let stale_cells: Vec<&Cell> = built.iter().copied().filter(|c| stale(&c.id)).collect();
    let networks: Vec<NetworkMode> = [NetworkMode::Default, NetworkMode::Host, NetworkMode::None]
        .into_iter()
        .filter(|n| *n != key.network && !stale_cells.is_empty())
        .collect();
    let others: Vec<(NetworkMode, HashMap<String, String>)> = networks
        .iter()
        .copied()
        .zip(r.keys(m, &stale_cells, &networks, &opts.tags)?)
        .collect();
    let mut out = Reasons::new();
    for c in &m.cells {
        if !stale(&c.id) {
            continue;
        }
        let rec = &last[&c.id];
        let mut other = None;
        for (network, keys) in &others {
            if keys.get(&c.id) == Some(&rec.inputs) {
                other = Some(*network);
            }
        }
        let reason = match (other, &m.plan, c.base_id().filter(|b| stale(b))) {
            (Some(n), _, _) => Reason {
                kind: ReasonKind::BuildOptions,
                detail: format!(
                    "built with network {}, configured now: {}",
                    n.as_api(),
                    key.network.as_api()
                ),
                diff: None,
            },
            (None, Some(_), Some(base)) => Reason {
                kind: ReasonKind::ChangedByPlan,
                detail: format!("its base {base} changed in the plan"),
                diff: None,
            },
            (None, Some(plan), None) => Reason {
                kind: ReasonKind::ChangedByPlan,
                detail: format!(
                    "its Dockerfile in {} (or its base's, since rebuilt) differs from the one its last success was built from",
                    plan.path().display()
                ),
                diff: None,
            },
            (None, None, _) => Reason {
                kind: ReasonKind::Dockerfile,
                detail: "its rendered Dockerfile (templates, catalog, or its base's) differs from the one its last success was built from".into(),
                diff: None,
            },
        };
        out.insert(c.id.clone(), vec![reason]);
    }
    Ok(out)
}

/// The cells `new` changes from `old`, with why: their own Dockerfile (lines added and
/// removed), or their base's. Added cells are not listed (never built is not a change).
pub fn plan_reasons(old: &Plan, new: &Plan) -> Reasons {
    let d = PlanDiff::between(old, new);
    let mut out = Reasons::new();
    let path = new.path().display();
    for c in &d.changed {
        let count = |sign: char| {
            c.diff
                .lines()
                .filter(|l| l.starts_with(sign) && !l.starts_with("@@"))
                .count()
        };
        out.insert(
            c.cell.clone(),
            vec![Reason {
                kind: ReasonKind::ChangedByPlan,
                detail: format!(
                    "its Dockerfile in {path} changed ({} lines added, {} removed)",
                    count('+'),
                    count('-')
                ),
                diff: Some(c.diff.clone()),
            }],
        );
    }
    for cell in &d.base_changed {
        let base = new
            .job(cell)
            .and_then(|j| new.base_of(j))
            .map(|b| b.cell().to_string())
            .unwrap_or_default();
        out.insert(
            cell.clone(),
            vec![Reason {
                kind: ReasonKind::ChangedByPlan,
                detail: format!("its base {base} changed in {path}"),
                diff: None,
            }],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BuildStatus;
    use std::path::Path;

    const OLD: &str = include_str!("../tests/fixtures/plan/diff-old.dump");
    const NEW: &str = include_str!("../tests/fixtures/plan/diff-new.dump");

    /// A matrix over a plan, as `--plan` makes it.
    fn plan_matrix(name: &str, text: &str, network: &str) -> (Matrix, RunOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut loaded =
            crate::config::parse("t.toml", &format!("[build]\nnetwork = \"{network}\"\n")).unwrap();
        loaded.plan_override = Some(path);
        let m = Matrix::load(&loaded).unwrap();
        (m, RunOptions::from_config(&loaded))
    }

    fn success(cell: &str, inputs: String) -> BuildRecord {
        BuildRecord {
            id: 1,
            cell: cell.into(),
            engine: "a".into(),
            inputs,
            status: BuildStatus::Succeeded,
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            image_id: Some("sha256:x".into()),
            size: None,
            compressed_size: None,
            layers: vec![],
            failure: None,
            failure_record: None,
            cause: None,
            log_pruned_at: None,
            log_path: None,
            tag: None,
            base_image: None,
        }
    }

    #[test]
    fn history_built_from_the_old_plan_is_stale_by_the_new_one() {
        let r = Renderer::new(None);
        let (old, opts) = plan_matrix("old.dump", OLD, "default");
        // Every cell of the old plan built (its inputs recorded), then the new plan read.
        let last: HashMap<String, BuildRecord> = old
            .cells
            .iter()
            .map(|c| {
                let h = r
                    .inputs(&old, c, opts.key_options(), &opts.tags)
                    .unwrap()
                    .hash;
                (c.id.clone(), success(&c.id, h))
            })
            .collect();
        assert!(stale_reasons(&old, &r, &opts, &last).unwrap().is_empty());
        let (new, opts) = plan_matrix("new.dump", NEW, "default");
        let why = stale_reasons(&new, &r, &opts, &last).unwrap();
        let cells: Vec<&str> = why.keys().map(String::as_str).collect();
        assert_eq!(
            cells,
            [
                "alpine-3.23/5.4/amd64",
                "debian-13/5.3/amd64",
                "debian-13/5.4/amd64",
                "debian-13/5.4/arm64",
                "debian-13/archive/amd64",
                "debian-13/opam/amd64",
            ]
        );
        assert!(why.values().all(|v| v[0].kind == ReasonKind::ChangedByPlan));
        assert!(why["debian-13/archive/amd64"][0]
            .detail
            .contains("its base debian-13/opam/amd64 changed"));
        assert!(why["debian-13/5.4/arm64"][0]
            .detail
            .contains("differs from the one its last success was built from"));
        // The same plan under another network mode: build options, not the plan.
        let (same, host) = plan_matrix("old.dump", OLD, "host");
        let why = stale_reasons(&same, &r, &host, &last).unwrap();
        assert_eq!(why.len(), old.cells.len());
        assert_eq!(
            why["debian-13/opam/amd64"][0],
            Reason {
                kind: ReasonKind::BuildOptions,
                detail: "built with network default, configured now: host".into(),
                diff: None,
            }
        );
    }

    #[test]
    fn a_new_plan_marks_the_cells_it_changes() {
        let old = Plan::parse(Path::new("old.dump"), OLD).unwrap();
        let new = Plan::parse(Path::new("new.dump"), NEW).unwrap();
        let why = plan_reasons(&old, &new);
        assert_eq!(why.len(), 6, "{why:?}");
        assert_eq!(
            why["debian-13/5.4/amd64"][0].detail,
            "its Dockerfile in new.dump changed (1 lines added, 0 removed)"
        );
        assert_eq!(
            why["debian-13/archive/amd64"][0].detail,
            "its base debian-13/opam/amd64 changed in new.dump"
        );
        assert!(
            !why.contains_key("debian-13/5.5/amd64"),
            "added, not changed"
        );
        assert_eq!(
            why["debian-13/opam/amd64"][0].kind.words(),
            "changed by plan"
        );
    }
}
