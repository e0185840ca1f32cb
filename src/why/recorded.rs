//! Reasons from recorded inputs (issue 13, part 1): each build records what went into it
//! ([`Recorded`]: its pins, its Dockerfile text, the base image it started FROM, its
//! options), so a cell's reasons can name exactly what moved since its last success:
//! `opam-repository master 1a2b3c4 -> 9f8e7d6`, `Dockerfile: 1 line changed` (with the
//! unified diff), `base debian-13/opam/amd64 rebuilt (image sha256:…)`; a cell never built
//! or whose last build failed says so.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use similar::TextDiff;

use super::{stale_reasons, Reason, ReasonKind, Reasons};
use crate::dockerfile::{RenderError, Renderer};
use crate::inputs::upstream::{short_digest, upstream_image, Upstreams};
use crate::matrix::{Cell, Matrix};
use crate::model::inputs::{Pins, ResolvedRef};
use crate::model::recorded::Recorded;
use crate::scheduler::RunOptions;
use crate::store::{BuildRecord, BuildStatus, Store, StoreError};

/// What the history knows of one cell: its latest build, its last success, and what that
/// success was made from.
#[derive(Debug, Clone, Default)]
pub struct CellHistory {
    /// The latest build, whatever its status.
    pub latest: Option<BuildRecord>,
    /// The last successful build.
    pub last_ok: Option<BuildRecord>,
    /// What the last success recorded it was made from (None: built before schema 6).
    pub recorded: Option<Recorded>,
    /// The Dockerfile text of the last success (None: built before schema 7).
    pub text: Option<String>,
}

/// Cell id -> what the history knows of it (cells never built are absent).
pub type History = HashMap<String, CellHistory>;

/// Read what [`explain`] needs from the store: every built cell's latest build, last
/// success, and that success's recorded inputs and text.
pub fn load_history(store: &Store) -> Result<History, StoreError> {
    let latest = store.latest_per_cell()?;
    let last_ok = store.last_success_per_cell()?;
    let mut out = History::new();
    for (cell, rec) in latest {
        out.entry(cell).or_default().latest = Some(rec);
    }
    for (cell, rec) in last_ok {
        let recorded = store.recorded(rec.id)?;
        let text = match recorded.as_ref().and_then(|r| r.dockerfile.as_deref()) {
            Some(id) => store.text(id)?,
            None => None,
        };
        let h = out.entry(cell).or_default();
        h.recorded = recorded;
        h.text = text;
        h.last_ok = Some(rec);
    }
    Ok(out)
}

/// One cell's answer: is it stale, and why (most specific first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellWhy {
    pub cell: String,
    pub stale: bool,
    pub reasons: Vec<Reason>,
    /// What could not be checked, never a reason: `upstream digest of debian:13 unknown:
    /// engine m: ...`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The upstream images base cells of `m` start FROM (the first FROM of their text), each
/// with the arches of those cells: what [`crate::engine::upstream::check`] asks. Renders
/// templates: call it off any event loop.
pub fn upstream_wanted(
    m: &Matrix,
    r: &Renderer,
    opts: &RunOptions,
) -> Result<BTreeMap<String, BTreeSet<String>>, RenderError> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in m.cells.iter().filter(|c| c.base_id().is_none()) {
        if let Some(image) = upstream_image(&r.render(m, c, None, &opts.tags)?) {
            out.entry(image).or_default().insert(c.arch.clone());
        }
    }
    Ok(out)
}

/// Base cells whose last success recorded an upstream digest that the registry no longer
/// names (`up`: today's answers): their `upstream` reason; and the notes of those whose
/// answer is an error (nothing is stale because of it).
pub fn upstream_moved(h: &History, up: &Upstreams) -> (Reasons, BTreeMap<String, String>) {
    let mut moved = Reasons::new();
    let mut notes = BTreeMap::new();
    for (cell, x) in h {
        let Some(rec) = x.recorded.as_ref().and_then(|r| r.upstream.as_ref()) else {
            continue;
        };
        let Some(answer) = up.get(&rec.image) else {
            continue;
        };
        match (&rec.digest, &answer.digest, &answer.error) {
            (Some(was), Some(now), _) if was != now => {
                moved.insert(
                    cell.clone(),
                    vec![Reason {
                        kind: ReasonKind::Upstream,
                        detail: format!(
                            "upstream {} has a new digest ({} -> {})",
                            rec.image,
                            short_digest(was),
                            short_digest(now)
                        ),
                        diff: None,
                    }],
                );
            }
            (Some(_), None, Some(e)) => {
                notes.insert(
                    cell.clone(),
                    format!("upstream digest of {} unknown: {e}", rec.image),
                );
            }
            _ => {}
        }
    }
    (moved, notes)
}

/// Why each of `cells` needs a rebuild, from the history `h`, today's renderer (its pins
/// are today's resolutions) and options. A cell is stale when it was never built, when its
/// latest build failed, when its inputs hash differs from its last success's, or when its
/// base was rebuilt since (another base image than the one it started FROM). Renders
/// templates: call it off any event loop.
pub fn explain(
    m: &Matrix,
    r: &Renderer,
    opts: &RunOptions,
    h: &History,
    up: &Upstreams,
    cells: &[&Cell],
) -> Result<Vec<CellWhy>, RenderError> {
    let last: HashMap<String, BuildRecord> = h
        .iter()
        .filter_map(|(c, x)| x.last_ok.clone().map(|r| (c.clone(), r)))
        .collect();
    let by_hash = stale_reasons(m, r, opts, &last)?;
    let (moved, notes) = upstream_moved(h, up);
    let mut out = Vec::new();
    for c in cells {
        let mut reasons = own_reasons(m, r, opts, h, c, &by_hash, &moved)?;
        if let Some(latest) = h.get(&c.id).and_then(|x| x.latest.as_ref()) {
            if latest.status == BuildStatus::Failed {
                reasons.push(Reason {
                    kind: ReasonKind::LastFailed,
                    detail: format!(
                        "last build failed (build {}{})",
                        latest.id,
                        latest
                            .failure
                            .as_deref()
                            .map(|f| format!(": {f}"))
                            .unwrap_or_default()
                    ),
                    diff: None,
                });
            }
        }
        out.push(CellWhy {
            cell: c.id.clone(),
            stale: !reasons.is_empty(),
            reasons,
            notes: notes.get(&c.id).cloned().into_iter().collect(),
        });
    }
    Ok(out)
}

/// [`explain`] over a whole matrix, as [`Reasons`]: the cells a stale rebuild starts, those
/// with a reason besides "never built" and "last build failed" (the grid shows those two
/// by their status already, and `build --failed` is for the second).
pub fn explain_all(
    m: &Matrix,
    r: &Renderer,
    opts: &RunOptions,
    h: &History,
    up: &Upstreams,
) -> Result<Reasons, RenderError> {
    let cells: Vec<&Cell> = m.cells.iter().collect();
    Ok(explain(m, r, opts, h, up, &cells)?
        .into_iter()
        .filter(|w| {
            w.reasons
                .iter()
                .any(|x| !matches!(x.kind, ReasonKind::NeverBuilt | ReasonKind::LastFailed))
        })
        .map(|w| (w.cell, w.reasons))
        .collect())
}

/// A cell's reasons but "last build failed".
fn own_reasons(
    m: &Matrix,
    r: &Renderer,
    opts: &RunOptions,
    h: &History,
    c: &Cell,
    by_hash: &Reasons,
    moved: &Reasons,
) -> Result<Vec<Reason>, RenderError> {
    let mine = h.get(&c.id);
    let Some(ok) = mine.and_then(|x| x.last_ok.as_ref()) else {
        return Ok(vec![Reason {
            kind: ReasonKind::NeverBuilt,
            detail: "never built".into(),
            diff: None,
        }]);
    };
    let mut out = Vec::new();
    let recorded = mine.and_then(|x| x.recorded.as_ref());
    if let Some(rec) = recorded {
        out.extend(pin_reasons(&rec.pins, r.pins()));
        if let Some(old) = mine.and_then(|x| x.text.as_deref()) {
            // Today's templates with the recorded pins: the template's own change, apart
            // from the pins (named above).
            let now = r.render_pinned(m, c, None, &opts.tags, &rec.pins)?;
            if let Some(reason) = dockerfile_reason(old, &now) {
                out.push(reason);
            }
        }
        let network = opts.network.as_api();
        if let Some(was) = rec.network.as_deref().filter(|n| *n != network) {
            out.push(Reason {
                kind: ReasonKind::BuildOptions,
                detail: format!("built with network {was}, configured now: {network}"),
                diff: None,
            });
        }
    }
    if let Some(v) = moved.get(&c.id) {
        out.extend(v.iter().cloned());
    }
    if let Some(base) = c.base_id() {
        let started_from = recorded
            .and_then(|x| x.base_image.as_deref())
            .or(ok.base_image.as_deref());
        let base_now = h
            .get(&base)
            .and_then(|x| x.last_ok.as_ref())
            .and_then(|b| b.image_id.as_deref());
        if let (Some(was), Some(now)) = (started_from, base_now) {
            if was != now {
                out.push(Reason {
                    kind: ReasonKind::BaseRebuilt,
                    detail: format!("base {base} rebuilt (image {})", short_id(now)),
                    diff: None,
                });
            }
        }
        if by_hash.contains_key(&base) || moved.contains_key(&base) {
            out.push(Reason {
                kind: ReasonKind::BaseStale,
                detail: format!("base {base} is stale"),
                diff: None,
            });
        }
    }
    // Inputs differ but nothing recorded names why (built before schema 7): what the
    // hashes tell.
    if out.is_empty() {
        if let Some(v) = by_hash.get(&c.id) {
            out.extend(v.iter().cloned());
        }
    }
    Ok(out)
}

/// Reasons as text for a pane above a Dockerfile: `# stale: DETAIL` a line each, each diff
/// under its reason, then `# the Dockerfile now:`.
pub fn why_text(reasons: &[Reason]) -> String {
    let mut out = String::new();
    for r in reasons {
        out.push_str(&format!("# stale: {}\n", r.detail));
        if let Some(d) = &r.diff {
            out.push_str(d);
            if !d.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out.push_str("# the Dockerfile now:\n");
    out
}

/// `sha256:` and 12 hex digits.
fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// The pinned refs that moved between a build's record (`was`) and today's pins (`now`):
/// only the refs the build used (its record holds only those).
pub fn pin_reasons(was: &Pins, now: &Pins) -> Vec<Reason> {
    let moved = |name: &str, a: &ResolvedRef, b: Option<&ResolvedRef>| {
        let b = b.filter(|b| b.commit != a.commit)?;
        Some(Reason {
            kind: ReasonKind::Input,
            detail: format!(
                "{name} {} {} -> {}",
                a.git_ref,
                &a.commit[..a.commit.len().min(7)],
                &b.commit[..b.commit.len().min(7)]
            ),
            diff: None,
        })
    };
    let mut out = Vec::new();
    if let Some(a) = &was.opam_repository {
        out.extend(moved("opam-repository", a, now.opam_repository.as_ref()));
    }
    for (git_ref, a) in &was.opam {
        out.extend(moved("opam", a, now.opam.get(git_ref)));
    }
    out
}

/// `Dockerfile: N lines changed` with the unified diff from `old` to `new`, or None when
/// they are equal. N counts a changed line once (the larger of lines added and removed).
pub fn dockerfile_reason(old: &str, new: &str) -> Option<Reason> {
    if old == new {
        return None;
    }
    let d = TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for op in d.iter_all_changes() {
        match op.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let n = usize::max(added, removed);
    Some(Reason {
        kind: ReasonKind::Dockerfile,
        detail: format!(
            "Dockerfile: {n} line{} changed (+{added} -{removed})",
            if n == 1 { "" } else { "s" }
        ),
        diff: Some(
            d.unified_diff()
                .context_radius(3)
                .header("last success", "now")
                .to_string(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::inputs::ResolvedRef;

    fn repo(commit: char) -> Pins {
        Pins {
            opam_repository: Some(ResolvedRef {
                url: "file:///srv/opam-repository".into(),
                git_ref: "master".into(),
                commit: commit.to_string().repeat(40),
                tag: None,
                resolved_at: "2026-01-01T00:00:00Z".into(),
            }),
            ..Pins::default()
        }
    }

    fn build(
        id: i64,
        cell: &str,
        status: BuildStatus,
        image: &str,
        base: Option<&str>,
    ) -> BuildRecord {
        BuildRecord {
            id,
            cell: cell.into(),
            engine: "a".into(),
            inputs: String::new(),
            status,
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: None,
            image_id: (status == BuildStatus::Succeeded).then(|| image.to_string()),
            size: None,
            compressed_size: None,
            layers: vec![],
            failure: (status == BuildStatus::Failed).then(|| "exit 1".to_string()),
            failure_record: None,
            cause: None,
            log_pruned_at: None,
            log_path: None,
            tag: None,
            base_image: base.map(str::to_string),
        }
    }

    /// The history a run with `r` leaves: each cell built once, successfully, recording
    /// what the scheduler records (pins used, text, base image).
    fn built(m: &Matrix, r: &Renderer, opts: &RunOptions, cells: &[&Cell]) -> History {
        let mut h = History::new();
        for (i, c) in cells.iter().enumerate() {
            let inputs = r.inputs(m, c, opts.key_options(), &opts.tags).unwrap();
            let base = c.base_id().map(|b| format!("sha256:img-{b}"));
            let mut rec = build(
                i as i64 + 1,
                &c.id,
                BuildStatus::Succeeded,
                &format!("sha256:img-{}", c.id),
                base.as_deref(),
            );
            rec.inputs = inputs.hash;
            let recorded = Recorded {
                pins: r.pins().record(&inputs.needs),
                base_image: base.clone(),
                network: Some(opts.network.as_api().into()),
                ..Recorded::default()
            };
            h.insert(
                c.id.clone(),
                CellHistory {
                    latest: Some(rec.clone()),
                    last_ok: Some(rec),
                    recorded: Some(recorded),
                    text: Some(inputs.dockerfile),
                },
            );
        }
        h
    }

    #[test]
    fn reasons_name_exactly_what_moved() {
        let loaded = crate::config::parse("t.toml", "").unwrap();
        let m = Matrix::load(&loaded).unwrap();
        let opts = RunOptions::from_config(&loaded);
        let r = Renderer::new(None).with_pins(std::sync::Arc::new(repo('a')));
        // A base that uses opam-repository, and two compiler cells on it.
        let base = m
            .cells
            .iter()
            .find(|c| c.base_id().is_none() && r.needs(&m, c, &opts.tags).unwrap().opam_repository)
            .expect("a base cell that copies opam-repository");
        let on_base: Vec<&Cell> = m
            .cells
            .iter()
            .filter(|c| c.base_id().as_deref() == Some(base.id.as_str()))
            .take(2)
            .collect();
        assert_eq!(on_base.len(), 2, "two compiler cells on {}", base.id);
        let mut cells = vec![base];
        cells.extend(&on_base);
        let mut h = built(&m, &r, &opts, &cells);
        let none = Upstreams::new();
        // Built from exactly today's inputs: nothing stale.
        let why = explain(&m, &r, &opts, &h, &none, &cells).unwrap();
        assert!(why.iter().all(|w| !w.stale), "{why:?}");

        // opam-repository moved: the base names it; the cells on it have their base stale.
        let moved = Renderer::new(None).with_pins(std::sync::Arc::new(repo('b')));
        let why = explain(&m, &moved, &opts, &h, &none, &cells).unwrap();
        assert_eq!(
            why[0].reasons,
            [Reason {
                kind: ReasonKind::Input,
                detail: "opam-repository master aaaaaaa -> bbbbbbb".into(),
                diff: None
            }]
        );
        for w in &why[1..] {
            assert_eq!(w.reasons.len(), 1, "{w:?}");
            assert_eq!(w.reasons[0].kind, ReasonKind::BaseStale);
        }

        // One line of a compiler cell's recorded text differs from today's: one line
        // changed, with the diff; the base rebuilt for the other cell: base rebuilt.
        let c1 = on_base[0].id.clone();
        let text = h[&c1].text.clone().unwrap();
        let first = text.lines().next().unwrap().to_string();
        let edited = text.replacen(&first, &format!("{first} # old"), 1);
        h.get_mut(&c1).unwrap().text = Some(edited);
        let new_base = "sha256:0123456789abcdef0123";
        let b = h.get_mut(&base.id).unwrap();
        b.last_ok.as_mut().unwrap().image_id = Some(new_base.into());
        // c1 started FROM the new base (it was rebuilt since), the other did not.
        h.get_mut(&c1)
            .unwrap()
            .recorded
            .as_mut()
            .unwrap()
            .base_image = Some(new_base.into());
        let why = explain(&m, &r, &opts, &h, &none, &cells).unwrap();
        assert!(!why[0].stale);
        let d = &why[1].reasons;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].detail, "Dockerfile: 1 line changed (+1 -1)");
        let diff = d[0].diff.as_deref().unwrap();
        assert!(
            diff.contains(&format!("-{first} # old")) && diff.contains(&format!("+{first}")),
            "{diff}"
        );
        assert_eq!(
            why[2].reasons,
            [Reason {
                kind: ReasonKind::BaseRebuilt,
                detail: format!("base {} rebuilt (image sha256:0123456789ab)", base.id),
                diff: None
            }]
        );
        assert!(why[2].reasons[0].kind.is_base() && !d[0].kind.is_base());

        // The latest build failed after the success; a cell never built.
        let c2 = on_base[1].id.clone();
        h.get_mut(&c2).unwrap().latest = Some(build(9, &c2, BuildStatus::Failed, "", None));
        let never = m.cells.iter().find(|c| !h.contains_key(&c.id)).unwrap();
        let why = explain(&m, &r, &opts, &h, &none, &[on_base[1], never]).unwrap();
        assert_eq!(why[0].reasons.last().unwrap().kind, ReasonKind::LastFailed);
        assert_eq!(
            why[0].reasons.last().unwrap().detail,
            "last build failed (build 9: exit 1)"
        );
        assert_eq!(
            why[1].reasons,
            [Reason {
                kind: ReasonKind::NeverBuilt,
                detail: "never built".into(),
                diff: None
            }]
        );
        // Only input reasons make the grid's stale set: not "never built".
        let all = explain_all(&m, &r, &opts, &h, &none).unwrap();
        assert!(all.contains_key(&c1) && !all.contains_key(&never.id));
    }

    #[test]
    fn a_moved_upstream_makes_its_base_stale_and_an_unknown_one_is_a_note() {
        use crate::inputs::upstream::UpstreamAnswer;
        use crate::model::recorded::Upstream;
        let loaded = crate::config::parse("t.toml", "").unwrap();
        let m = Matrix::load(&loaded).unwrap();
        let opts = RunOptions::from_config(&loaded);
        let r = Renderer::new(None);
        let base = m.cells.iter().find(|c| c.base_id().is_none()).unwrap();
        let on_base = m
            .cells
            .iter()
            .find(|c| c.base_id().as_deref() == Some(base.id.as_str()))
            .unwrap();
        let image = upstream_wanted(&m, &r, &opts)
            .unwrap()
            .into_iter()
            .find(|(_, arches)| arches.contains(&base.arch))
            .unwrap()
            .0;
        let cells = vec![base, on_base];
        let mut h = built(&m, &r, &opts, &cells);
        let was = format!("sha256:{}", "a".repeat(64));
        h.get_mut(&base.id)
            .unwrap()
            .recorded
            .as_mut()
            .unwrap()
            .upstream = Some(Upstream {
            image: image.clone(),
            digest: Some(was.clone()),
        });
        let answer = |digest: Option<String>, error: Option<&str>| {
            let mut up = Upstreams::new();
            up.insert(
                image.clone(),
                UpstreamAnswer {
                    digest,
                    error: error.map(str::to_string),
                    engine: "m".into(),
                    asked_at: "2026-01-01T00:00:00Z".into(),
                },
            );
            up
        };
        // The same digest: nothing.
        let why = explain(&m, &r, &opts, &h, &answer(Some(was.clone()), None), &cells).unwrap();
        assert!(
            why.iter().all(|w| !w.stale && w.notes.is_empty()),
            "{why:?}"
        );
        // A new digest: the base names it, the cell on it has its base stale.
        let now = format!("sha256:{}", "b".repeat(64));
        let why = explain(&m, &r, &opts, &h, &answer(Some(now), None), &cells).unwrap();
        assert_eq!(
            why[0].reasons,
            [Reason {
                kind: ReasonKind::Upstream,
                detail: format!(
                    "upstream {image} has a new digest (sha256:aaaaaaaaaaaa… -> sha256:bbbbbbbbbbbb…)"
                ),
                diff: None
            }]
        );
        assert_eq!(why[1].reasons[0].kind, ReasonKind::BaseStale);
        // The registry unreachable: a note, and nothing stale.
        let why = explain(
            &m,
            &r,
            &opts,
            &h,
            &answer(None, Some("engine m: connection refused")),
            &cells,
        )
        .unwrap();
        assert!(why.iter().all(|w| !w.stale), "{why:?}");
        assert_eq!(
            why[0].notes,
            [format!(
                "upstream digest of {image} unknown: engine m: connection refused"
            )]
        );
    }
}
