//! Two plans compared: what a generator change touches. Cells added, removed and changed
//! (their own Dockerfile text differs, with a unified diff), cells rebuilt only because their
//! base changed, the changed cells grouped by their edit (a generator change repeats one edit
//! over dozens of cells), and public tags added, removed and retargeted. Pure: two parsed
//! [`Plan`]s in, a [`PlanDiff`] out.
//!
//! Diffs are made by the `similar` crate (Myers' algorithm, the one `git diff` uses by
//! default), as unified hunks with 3 lines of context and no file header.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::Plan;

/// Lines of context around each change in a cell's diff (as `diff -u`).
pub const CONTEXT_LINES: usize = 3;

/// What changed from one plan to another. Cells are named by id (`debian-13/5.4/amd64`);
/// lists of cells are in the file order of the plan they come from (NEW's, but OLD's for
/// `removed`), tags in alphabetical order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanDiff {
    /// Cells only NEW has.
    pub added: Vec<String>,
    /// Cells only OLD has.
    pub removed: Vec<String>,
    /// Cells whose Dockerfile text differs, each with its own diff.
    pub changed: Vec<ChangedCell>,
    /// Public tags (push targets, `ocaml/opam:debian-13`) only NEW pushes.
    pub tags_added: Vec<String>,
    /// Public tags only OLD pushes.
    pub tags_removed: Vec<String>,
    /// Public tags both push, from other staging images: an alias now pointing to another
    /// distro or version.
    pub tags_retargeted: Vec<Retarget>,
    /// `changed`, grouped by edit: cells whose diffs remove and add the same lines (context
    /// aside) are one group, shown once. In order of each group's first cell.
    pub groups: Vec<EditGroup>,
    /// Cells whose own text is the same but whose base cell changed: their cache key
    /// includes the base's, so they are rebuilt too.
    pub base_changed: Vec<String>,
}

/// One changed cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedCell {
    pub cell: String,
    /// Unified diff hunks (`@@ -a,b +c,d @@` then ` `, `-`, `+` lines), OLD to NEW.
    pub diff: String,
}

/// One edit and the cells it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditGroup {
    /// The diff of the group's first cell (the others differ at most in context lines).
    pub diff: String,
    /// The cells, in NEW's file order.
    pub cells: Vec<String>,
}

/// A public tag whose sources changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retarget {
    pub tag: String,
    /// The staging images OLD joins under it (`ocurrent/opam-staging:debian-12-ocaml-5.4-amd64`),
    /// sorted.
    pub from: Vec<String>,
    /// The staging images NEW joins under it, sorted.
    pub to: Vec<String>,
}

impl PlanDiff {
    /// Compare `old` with `new`.
    pub fn between(old: &Plan, new: &Plan) -> PlanDiff {
        let mut d = PlanDiff::default();
        for j in new.jobs() {
            match old.job(j.cell()) {
                None => d.added.push(j.cell().to_string()),
                Some(o) if o.text() != j.text() => d.changed.push(ChangedCell {
                    cell: j.cell().to_string(),
                    diff: unified(o.text(), j.text()),
                }),
                Some(_) => {}
            }
        }
        d.removed = old
            .jobs()
            .iter()
            .filter(|j| new.job(j.cell()).is_none())
            .map(|j| j.cell().to_string())
            .collect();
        let changed: BTreeSet<&str> = d.changed.iter().map(|c| c.cell.as_str()).collect();
        d.base_changed = new
            .jobs()
            .iter()
            .filter(|j| old.job(j.cell()).is_some() && !changed.contains(j.cell()))
            .filter(|j| new.base_of(j).is_some_and(|b| changed.contains(b.cell())))
            .map(|j| j.cell().to_string())
            .collect();
        d.groups = group(&d.changed);
        let (old_tags, new_tags) = (tags(old), tags(new));
        for (tag, sources) in &new_tags {
            match old_tags.get(tag) {
                None => d.tags_added.push(tag.clone()),
                Some(from) if from != sources => d.tags_retargeted.push(Retarget {
                    tag: tag.clone(),
                    from: from.iter().cloned().collect(),
                    to: sources.iter().cloned().collect(),
                }),
                Some(_) => {}
            }
        }
        d.tags_removed = old_tags
            .keys()
            .filter(|t| !new_tags.contains_key(*t))
            .cloned()
            .collect();
        d
    }

    /// The plans build the same cells from the same texts and push the same tags.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.tags_added.is_empty()
            && self.tags_removed.is_empty()
            && self.tags_retargeted.is_empty()
    }

    /// Every cell a build of NEW would rebuild because of the change: added, changed and
    /// base-changed cells, in NEW's file order.
    pub fn touched<'a>(&'a self, new: &'a Plan) -> impl Iterator<Item = &'a str> + 'a {
        let set: BTreeSet<&str> = self
            .added
            .iter()
            .chain(&self.base_changed)
            .map(String::as_str)
            .chain(self.changed.iter().map(|c| c.cell.as_str()))
            .collect();
        new.jobs()
            .iter()
            .map(|j| j.cell())
            .filter(move |c| set.contains(c))
    }
}

/// Unified diff hunks of `old` → `new`, without file header lines.
pub fn unified(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut out = String::new();
    for hunk in diff
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .iter_hunks()
    {
        out.push_str(&hunk.to_string());
    }
    out
}

/// Group changed cells by the lines their diff removes and adds (signs kept, order kept,
/// context lines and hunk positions left out).
fn group(changed: &[ChangedCell]) -> Vec<EditGroup> {
    let mut groups: Vec<EditGroup> = Vec::new();
    let mut by_edit: HashMap<Vec<&str>, usize> = HashMap::new();
    for c in changed {
        let edit: Vec<&str> = c
            .diff
            .lines()
            .filter(|l| l.starts_with('-') || l.starts_with('+'))
            .collect();
        match by_edit.get(&edit) {
            Some(&g) => groups[g].cells.push(c.cell.clone()),
            None => {
                by_edit.insert(edit, groups.len());
                groups.push(EditGroup {
                    diff: c.diff.clone(),
                    cells: vec![c.cell.clone()],
                });
            }
        }
    }
    groups
}

/// Every public tag of a plan with the staging images pushed under it (a target pushed
/// twice, as old Windows aliases were, joins both pushes' sources).
fn tags(plan: &Plan) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (target, sources) in plan.public_tags() {
        out.entry(target.to_string())
            .or_default()
            .extend(sources.iter().map(|s| s.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const OLD: &str = include_str!("../../tests/fixtures/plan/diff-old.dump");
    const NEW: &str = include_str!("../../tests/fixtures/plan/diff-new.dump");

    fn plans() -> (Plan, Plan) {
        (
            Plan::parse(Path::new("diff-old.dump"), OLD).unwrap(),
            Plan::parse(Path::new("diff-new.dump"), NEW).unwrap(),
        )
    }

    #[test]
    fn a_plan_equals_itself() {
        let (old, _) = plans();
        let d = PlanDiff::between(&old, &old);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d, PlanDiff::default());
    }

    #[test]
    fn the_fixture_pair_differs_as_written() {
        let (old, new) = plans();
        let d = PlanDiff::between(&old, &new);
        assert_eq!(d.added, ["debian-13/5.5/amd64"]);
        assert_eq!(d.removed, ["debian-13/5.3/arm64"]);
        let changed: Vec<&str> = d.changed.iter().map(|c| c.cell.as_str()).collect();
        assert_eq!(
            changed,
            [
                "debian-13/opam/amd64",
                "debian-13/5.4/arm64",
                "debian-13/5.4/amd64",
                "debian-13/5.3/amd64",
                "alpine-3.23/5.4/amd64"
            ]
        );
        assert_eq!(
            d.changed[0].diff,
            "@@ -2,4 +2,5 @@\n \n FROM imagegrid-fixture/busybox:latest\n \
             RUN mkdir -p /home/opam && echo 'opam:x:1000:1000::/home/opam:/bin/sh' >> /etc/passwd\n\
             +RUN apt-get update\n COPY --link [ \"Dockerfile\", \"/Dockerfile.opam\" ]\n"
        );
        // One edit over four cells whose context lines differ (arch, distro, switch): one group.
        assert_eq!(d.groups.len(), 2);
        assert_eq!(d.groups[0].cells, ["debian-13/opam/amd64"]);
        assert_eq!(
            d.groups[1].cells,
            [
                "debian-13/5.4/arm64",
                "debian-13/5.4/amd64",
                "debian-13/5.3/amd64",
                "alpine-3.23/5.4/amd64"
            ]
        );
        assert_eq!(d.groups[1].diff, d.changed[1].diff);
        assert_ne!(d.changed[1].diff, d.changed[2].diff, "context differs");
        assert_eq!(d.base_changed, ["debian-13/archive/amd64"]);
        assert_eq!(d.tags_added, ["ocaml/opam:debian-13-ocaml-5.5"]);
        assert_eq!(d.tags_removed, ["ocaml/opam:debian-13-ocaml-5.3"]);
        assert_eq!(
            d.tags_retargeted,
            [Retarget {
                tag: "ocaml/opam:debian".into(),
                from: vec![
                    "ocurrent/opam-staging:debian-13-ocaml-5.4-amd64".into(),
                    "ocurrent/opam-staging:debian-13-ocaml-5.4-arm64".into()
                ],
                to: vec!["ocurrent/opam-staging:debian-13-ocaml-5.5-amd64".into()],
            }]
        );
        let touched: Vec<&str> = d.touched(&new).collect();
        assert_eq!(
            touched,
            [
                "debian-13/opam/amd64",
                "debian-13/5.4/arm64",
                "debian-13/5.4/amd64",
                "debian-13/5.3/amd64",
                "debian-13/5.5/amd64",
                "debian-13/archive/amd64",
                "alpine-3.23/5.4/amd64"
            ]
        );
        // And the other way round: added and removed swap, the same edits reversed.
        let back = PlanDiff::between(&new, &old);
        assert_eq!(back.added, d.removed);
        assert_eq!(back.removed, d.added);
        assert_eq!(back.tags_added, d.tags_removed);
        assert_eq!(back.groups.len(), 2);
    }

    #[test]
    fn unified_hunks_have_no_header_and_say_a_missing_newline() {
        assert_eq!(unified("a\nb\n", "a\nc\n"), "@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
        assert_eq!(unified("same", "same"), "");
        let d = unified("a\nb", "a\nb\n");
        assert!(d.contains("No newline at end of file"), "{d}");
    }
}
