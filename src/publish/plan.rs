//! The tag plan: which public tags and aliases a selection publishes, and what each points
//! to. Pure functions over the matrix, the tag config and the history's built images.
//!
//! A public tag (`debian-13-ocaml-5.4`) joins every arch the matrix has for one
//! (distro, version); it is published only when each of those arches has a built image.
//! Aliases follow the official rules: the distro carrying a family `alias` is the newest of its
//! family (`debian-ocaml-5.4`, and `debian` with the latest OCaml); every distro's tag for the
//! latest OCaml is also `<distro>`; the `master` distro's is also `latest`; an `lts` distro
//! answers to `<alias>-lts` too.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::config::TagConfig;
use crate::matrix::{tag_version, Cell, Distro, Matrix, OcamlDef, ARCHIVE_VERSION};
use crate::store::BuildRecord;

/// A successful per-arch build, as the history records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Built {
    pub build_id: i64,
    /// The engine that built it (and holds the image).
    pub engine: String,
    pub image_id: String,
    /// Uncompressed bytes.
    pub size: Option<i64>,
}

/// The history's last successful build of each cell, as [`Built`]s.
pub fn built_from_history(last_success: &HashMap<String, BuildRecord>) -> HashMap<String, Built> {
    last_success
        .iter()
        .filter_map(|(cell, r)| {
            let image_id = r.image_id.clone().filter(|i| !i.is_empty())?;
            Some((
                cell.clone(),
                Built {
                    build_id: r.id,
                    engine: r.engine.clone(),
                    image_id,
                    size: r.size,
                },
            ))
        })
        .collect()
}

/// One arch of a public tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchSource {
    pub cell: String,
    pub arch: String,
    /// Docker platform, e.g. `linux/arm64`.
    pub platform: String,
    /// The per-arch staging reference the image is pushed to.
    pub staging: String,
    /// None: no successful build yet.
    pub built: Option<Built>,
}

/// One public multi-arch tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicTag {
    /// The tag alone, e.g. `debian-13-ocaml-5.4`.
    pub tag: String,
    /// Repository and tag, e.g. `registry:5000/imagegrid/opam:debian-13-ocaml-5.4`.
    pub reference: String,
    pub distro: String,
    /// None for the base (opam) image.
    pub version: Option<String>,
    /// Every arch the matrix has for this distro and version, in matrix order.
    pub arches: Vec<ArchSource>,
    /// The tag as the pipeline plan names it (`ocaml/opam:debian-13-ocaml-5.4`), for a
    /// matrix made from a plan; a publish still pushes to [`PublicTag::reference`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_reference: Option<String>,
}

impl PublicTag {
    /// Arches without a built image.
    pub fn missing(&self) -> Vec<&ArchSource> {
        self.arches.iter().filter(|a| a.built.is_none()).collect()
    }

    /// Why this tag cannot be published now, if it cannot.
    pub fn blocked(&self) -> Option<String> {
        let missing = self.missing();
        if missing.is_empty() {
            return None;
        }
        let what: Vec<String> = missing
            .iter()
            .map(|a| format!("{} ({})", a.arch, a.cell))
            .collect();
        Some(format!(
            "not every arch is built: missing {}",
            what.join(", ")
        ))
    }
}

/// Which rule made an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasRule {
    /// `<alias>-ocaml-<M.m>`: the newest distro of a family, any version.
    FamilyOcaml,
    /// `<distro>`: the latest OCaml.
    DistroLatest,
    /// `<alias>`: the newest distro of a family with the latest OCaml.
    FamilyLatest,
    /// `latest`: the master distro with the latest OCaml.
    Latest,
    /// A push line of the pipeline plan to the same images as its target's.
    Plan,
}

/// One alias: another name for a public tag's manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasTag {
    pub tag: String,
    pub reference: String,
    /// The public tag it points to.
    pub target: String,
    pub rule: AliasRule,
    /// The alias as the pipeline plan names it, for a matrix made from a plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_reference: Option<String>,
}

/// Everything a selection would publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagPlan {
    /// Registry host as configured (empty: Docker Hub).
    pub registry: String,
    /// The staging repository, with the registry.
    pub staging_repo: String,
    /// The public repository, with the registry.
    pub public_repo: String,
    pub tags: Vec<PublicTag>,
    pub aliases: Vec<AliasTag>,
}

/// One line of a plan for a confirm dialog: a tag, what it points to, and why it will not be
/// published if it will not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLine {
    pub tag: String,
    /// An alias (points to another tag) rather than a public tag (joins arches).
    pub alias: bool,
    pub points_to: String,
    pub blocked: Option<String>,
}

impl TagPlan {
    /// The public tags whose arches are all built.
    pub fn publishable(&self) -> impl Iterator<Item = &PublicTag> {
        self.tags.iter().filter(|t| t.blocked().is_none())
    }

    /// The public tag named `tag`.
    pub fn tag(&self, tag: &str) -> Option<&PublicTag> {
        self.tags.iter().find(|t| t.tag == tag)
    }

    /// Aliases of one public tag.
    pub fn aliases_of<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a AliasTag> + 'a {
        self.aliases.iter().filter(move |a| a.target == tag)
    }

    /// Why an alias cannot be published now (its target cannot), if it cannot.
    pub fn alias_blocked(&self, alias: &AliasTag) -> Option<String> {
        match self.tag(&alias.target) {
            Some(t) if t.blocked().is_none() => None,
            _ => Some(format!("its target {} is not published", alias.target)),
        }
    }

    /// Per-arch pushes a publish would do: every arch of every publishable tag.
    pub fn pushes(&self) -> usize {
        self.publishable().map(|t| t.arches.len()).sum()
    }

    /// Every tag and alias, each followed by its aliases, for a dialog or a listing.
    pub fn lines(&self) -> Vec<TagLine> {
        let mut out = Vec::new();
        for t in &self.tags {
            let arches: Vec<&str> = t.arches.iter().map(|a| a.arch.as_str()).collect();
            out.push(TagLine {
                tag: t.tag.clone(),
                alias: false,
                points_to: arches.join(", "),
                blocked: t.blocked(),
            });
            for a in self.aliases_of(&t.tag) {
                out.push(TagLine {
                    tag: a.tag.clone(),
                    alias: true,
                    points_to: format!("= {}", a.target),
                    blocked: self.alias_blocked(a),
                });
            }
        }
        out
    }
}

/// A plan that cannot be made: the tag scheme gives two things one name, or an invalid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("tag `{tag}` would name both {first} and {second}; change `[tags]` patterns or the distros' `alias` so that each tag names one image")]
    Conflict {
        tag: String,
        first: String,
        second: String,
    },
    #[error("tag `{tag}` ({what}) is not a valid tag: {why}")]
    Invalid {
        tag: String,
        what: String,
        why: String,
    },
}

/// `registry/repo`, or `repo` alone for Docker Hub.
pub fn repository(registry: &str, repo: &str) -> String {
    if registry.is_empty() {
        repo.to_string()
    } else {
        format!("{}/{repo}", registry.trim_end_matches('/'))
    }
}

/// Fill a pattern's placeholders.
fn expand(pattern: &str, distro: &str, version: Option<&str>, alias: Option<&str>) -> String {
    pattern
        .replace("{distro}", distro)
        .replace("{version}", &version.map(tag_version).unwrap_or_default())
        .replace("{alias}", alias.unwrap_or(""))
}

/// A tag as registries accept it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let first_ok = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok {
        return Err("it must start with a letter, digit or `_`".into());
    }
    if tag.len() > 128 {
        return Err(format!("it is {} characters long (at most 128)", tag.len()));
    }
    match tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(c) => Err(format!("`{c}` is not allowed")),
        None => Ok(()),
    }
}

/// The public tag of a (distro, version): `version` None is the base image, `archive` the
/// archive image (tagged `archive`, as the pipeline does).
pub fn public_tag(tags: &TagConfig, distro: &str, version: Option<&str>) -> String {
    match version {
        Some(ARCHIVE_VERSION) => ARCHIVE_VERSION.to_string(),
        None => expand(tags.opam.get_ref(), distro, None, None),
        Some(v) => expand(tags.ocaml.get_ref(), distro, Some(v), None),
    }
}

/// The aliases the rules give a (distro, compiler version) tag, with their rules.
pub fn aliases_for(tags: &TagConfig, d: &Distro, v: &OcamlDef) -> Vec<(String, AliasRule)> {
    let mut out = Vec::new();
    let mut add = |pattern: &str, alias: Option<&str>, rule: AliasRule| {
        if !pattern.is_empty() {
            out.push((expand(pattern, &d.name, Some(&v.version), alias), rule));
        }
    };
    // The family names this distro answers to: its alias, and `<alias>-lts` for an LTS.
    let families: Vec<String> = match &d.alias {
        Some(a) if d.lts => vec![a.clone(), format!("{a}-lts")],
        Some(a) => vec![a.clone()],
        None => vec![],
    };
    for f in &families {
        add(tags.family_ocaml.get_ref(), Some(f), AliasRule::FamilyOcaml);
    }
    if v.latest {
        add(tags.distro_latest.get_ref(), None, AliasRule::DistroLatest);
        for f in &families {
            add(
                tags.family_latest.get_ref(),
                Some(f),
                AliasRule::FamilyLatest,
            );
        }
        if d.master {
            add(tags.latest.get_ref(), None, AliasRule::Latest);
        }
    }
    out
}

/// (distro, version) groups of cells, in matrix order.
fn groups<'a>(cells: impl Iterator<Item = &'a Cell>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for c in cells {
        let key = (c.distro.clone(), c.version.clone());
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// Every tag name the whole matrix would publish, checked for validity and uniqueness:
/// a conflict anywhere is a scheme problem, whichever part is selected. An alias that names
/// the same image as another name (`archlinux` is both the distro and its family) is no
/// conflict: it is published once.
fn check_scheme(matrix: &Matrix, tags: &TagConfig) -> Result<(), PlanError> {
    // tag -> (the (distro, version) whose image it names, what claimed it)
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut claim = |tag: String, target: &str, what: String| -> Result<(), PlanError> {
        check_tag(&tag).map_err(|why| PlanError::Invalid {
            tag: tag.clone(),
            what: what.clone(),
            why,
        })?;
        match owners.get(&tag) {
            Some((t, _)) if t == target => Ok(()),
            Some((_, first)) => Err(PlanError::Conflict {
                tag,
                first: first.clone(),
                second: what,
            }),
            None => {
                owners.insert(tag, (target.to_string(), what));
                Ok(())
            }
        }
    };
    for (distro, version) in groups(matrix.cells.iter()) {
        let group = format!("{distro}/{}", version.as_deref().unwrap_or("opam"));
        let tag = public_tag(tags, &distro, version.as_deref());
        claim(tag, &group, format!("the public tag of {group}"))?;
        if let (Some(d), Some(v)) = (
            matrix.distro(&distro),
            version.as_deref().and_then(|v| matrix.ocaml(v)),
        ) {
            for (alias, rule) in aliases_for(tags, d, v) {
                claim(alias, &group, format!("the {rule:?} alias of {group}"))?;
            }
        }
    }
    Ok(())
}

/// The plan for the selected cells: each selected cell brings in the public tag it contributes
/// an arch to (with every arch of that tag) and that tag's aliases.
pub fn plan(
    matrix: &Matrix,
    tags: &TagConfig,
    selected: &[&Cell],
    built: &HashMap<String, Built>,
) -> Result<TagPlan, PlanError> {
    if let Some(dump) = &matrix.plan {
        return plan_from_dump(matrix, dump, tags, selected, built);
    }
    check_scheme(matrix, tags)?;
    let staging_repo = repository(&tags.registry, &tags.staging);
    let public_repo = repository(&tags.registry, &tags.public);
    let wanted = groups(selected.iter().copied());
    let mut out = TagPlan {
        registry: tags.registry.clone(),
        staging_repo,
        public_repo,
        tags: Vec::new(),
        aliases: Vec::new(),
    };
    // Matrix order, whatever order the selection came in.
    for (distro, version) in groups(matrix.cells.iter()) {
        if !wanted.contains(&(distro.clone(), version.clone())) {
            continue;
        }
        let tag = public_tag(tags, &distro, version.as_deref());
        let arches = matrix
            .cells
            .iter()
            .filter(|c| c.distro == distro && c.version == version)
            .map(|c| ArchSource {
                cell: c.id.clone(),
                arch: c.arch.clone(),
                platform: matrix
                    .arch(&c.arch)
                    .map(|a| a.platform.clone())
                    .unwrap_or_else(|| format!("linux/{}", c.arch)),
                staging: c.staging_tag(tags),
                built: built.get(&c.id).cloned(),
            })
            .collect();
        if let (Some(d), Some(v)) = (
            matrix.distro(&distro),
            version.as_deref().and_then(|v| matrix.ocaml(v)),
        ) {
            for (alias, rule) in aliases_for(tags, d, v) {
                // The same name for the same image twice is published once.
                if alias == tag || out.aliases.iter().any(|a| a.tag == alias) {
                    continue;
                }
                out.aliases.push(AliasTag {
                    reference: format!("{}:{alias}", out.public_repo),
                    tag: alias,
                    target: tag.clone(),
                    rule,
                    plan_reference: None,
                });
            }
        }
        out.tags.push(PublicTag {
            reference: format!("{}:{tag}", out.public_repo),
            tag,
            distro,
            version,
            arches,
            plan_reference: None,
        });
    }
    Ok(out)
}

/// The plan of a matrix made from a pipeline plan: its push lines, in file order. The first
/// push to a set of staging images is a public tag, each later push to the same set an alias
/// of it ([`AliasRule::Plan`]); a target pushed twice (older dumps) counts once. A source
/// names a job by its staging tag; sources whose cells the matrix left out are left out, and
/// a push with none left is no tag. A selected cell brings in every tag it is a source of.
/// Tags keep the plan's names; the repositories are the configured ones (`[tags]`), the
/// plan's shown in `plan_reference`.
fn plan_from_dump(
    matrix: &Matrix,
    dump: &crate::plan::Plan,
    tags: &TagConfig,
    selected: &[&Cell],
    built: &HashMap<String, Built>,
) -> Result<TagPlan, PlanError> {
    let staging_repo = repository(&tags.registry, &tags.staging);
    let public_repo = repository(&tags.registry, &tags.public);
    let wanted: std::collections::HashSet<&str> = selected.iter().map(|c| c.id.as_str()).collect();
    let mut out = TagPlan {
        registry: tags.registry.clone(),
        staging_repo,
        public_repo,
        tags: Vec::new(),
        aliases: Vec::new(),
    };
    let mut seen_targets = std::collections::HashSet::new();
    // Source cell ids of each public tag made so far -> its tag.
    let mut by_sources: HashMap<Vec<String>, String> = HashMap::new();
    for push in dump.pushes() {
        let tag = push.target.tag.clone();
        if !seen_targets.insert(tag.clone()) {
            continue;
        }
        let cells: Vec<&Cell> = push
            .sources
            .iter()
            .filter_map(|s| dump.job_for_source(s))
            .filter_map(|j| matrix.cell(j.cell()))
            .collect();
        if cells.is_empty() || !cells.iter().any(|c| wanted.contains(c.id.as_str())) {
            continue;
        }
        check_tag(&tag).map_err(|why| PlanError::Invalid {
            tag: tag.clone(),
            what: format!("pushed at line {} of the plan", push.line),
            why,
        })?;
        let ids: Vec<String> = cells.iter().map(|c| c.id.clone()).collect();
        let plan_reference = Some(push.target.to_string());
        if let Some(target) = by_sources.get(&ids) {
            out.aliases.push(AliasTag {
                reference: format!("{}:{tag}", out.public_repo),
                tag,
                target: target.clone(),
                rule: AliasRule::Plan,
                plan_reference,
            });
            continue;
        }
        by_sources.insert(ids, tag.clone());
        let first = cells[0];
        out.tags.push(PublicTag {
            reference: format!("{}:{tag}", out.public_repo),
            tag,
            distro: first.distro.clone(),
            version: first.version.clone(),
            arches: cells
                .iter()
                .map(|c| ArchSource {
                    cell: c.id.clone(),
                    arch: c.arch.clone(),
                    platform: matrix.platform(c),
                    staging: c.staging_tag(tags),
                    built: built.get(&c.id).cloned(),
                })
                .collect(),
            plan_reference,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, LoadedConfig};

    fn select<'a>(m: &'a Matrix, sel: &str) -> Vec<&'a Cell> {
        let s = m.parse_selectors(&[sel.to_string()]).unwrap();
        m.select(&s)
    }

    fn all_built(m: &Matrix) -> HashMap<String, Built> {
        m.cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.id.clone(),
                    Built {
                        build_id: i as i64,
                        engine: "e".into(),
                        image_id: format!("sha256:{i:064}"),
                        size: Some(1),
                    },
                )
            })
            .collect()
    }

    fn alias_names(p: &TagPlan, target: &str) -> Vec<String> {
        p.aliases_of(target).map(|a| a.tag.clone()).collect()
    }

    #[test]
    fn official_aliases() {
        let m = Matrix::builtin();
        let t = TagConfig::default();
        let built = all_built(&m);
        let p = plan(&m, &t, &select(&m, "debian-13"), &built).unwrap();
        assert_eq!(p.tags[0].tag, "debian-13-opam");
        assert_eq!(p.tags[0].reference, "imagegrid/opam:debian-13-opam");
        assert_eq!(
            p.tags[0]
                .arches
                .iter()
                .map(|a| a.arch.as_str())
                .collect::<Vec<_>>(),
            ["amd64", "arm64", "ppc64le", "s390x", "riscv64"]
        );
        assert!(alias_names(&p, "debian-13-opam").is_empty());
        assert_eq!(
            alias_names(&p, "debian-13-ocaml-5.4"),
            ["debian-ocaml-5.4", "debian-13", "debian", "latest"]
        );
        assert_eq!(alias_names(&p, "debian-13-ocaml-5.3"), ["debian-ocaml-5.3"]);
        assert_eq!(alias_names(&p, "debian-13-ocaml-5.5"), ["debian-ocaml-5.5"]);
        // archlinux is its own family: `archlinux-ocaml-5.4` is its public tag, and
        // `archlinux` is both its distro and family alias, published once.
        let p = plan(&m, &t, &select(&m, "archlinux/5.4"), &built).unwrap();
        assert_eq!(p.tags[0].tag, "archlinux-ocaml-5.4");
        assert_eq!(alias_names(&p, "archlinux-ocaml-5.4"), ["archlinux"]);

        let p = plan(&m, &t, &select(&m, "ubuntu-26.04/5.4"), &built).unwrap();
        assert_eq!(
            alias_names(&p, "ubuntu-26.04-ocaml-5.4"),
            [
                "ubuntu-ocaml-5.4",
                "ubuntu-lts-ocaml-5.4",
                "ubuntu-26.04",
                "ubuntu",
                "ubuntu-lts"
            ]
        );
        // Not the newest of its family: only the distro alias, only for the latest OCaml.
        let p = plan(&m, &t, &select(&m, "debian-12/5.*"), &built).unwrap();
        assert_eq!(alias_names(&p, "debian-12-ocaml-5.4"), ["debian-12"]);
        assert!(alias_names(&p, "debian-12-ocaml-5.3").is_empty());
        let p = plan(&m, &t, &select(&m, "alpine-3.23/5.4/arm64"), &built).unwrap();
        assert_eq!(p.tags.len(), 1, "one arch selects the whole tag");
        assert_eq!(p.tags[0].arches.len(), 2);
        assert_eq!(
            alias_names(&p, "alpine-3.23-ocaml-5.4"),
            ["alpine-ocaml-5.4", "alpine-3.23", "alpine"]
        );
    }

    #[test]
    fn default_scheme_matches_the_cells_own_tags() {
        let m = Matrix::builtin();
        let t = TagConfig {
            registry: "127.0.0.1:5000".into(),
            ..TagConfig::default()
        };
        let p = plan(&m, &t, &m.cells.iter().collect::<Vec<_>>(), &HashMap::new()).unwrap();
        for tag in &p.tags {
            for a in &tag.arches {
                let c = m.cell(&a.cell).unwrap();
                assert_eq!(tag.tag, c.public_tag_stem());
                if c.level == crate::matrix::Level::Archive {
                    // The pipeline's staging tag of the archive has no arch.
                    assert_eq!(a.staging, "127.0.0.1:5000/imagegrid/opam-staging:archive");
                    continue;
                }
                assert_eq!(
                    a.staging,
                    format!(
                        "127.0.0.1:5000/imagegrid/opam-staging:{}-{}",
                        tag.tag, a.arch
                    )
                );
            }
            assert_eq!(
                tag.reference,
                format!("127.0.0.1:5000/imagegrid/opam:{}", tag.tag)
            );
        }
        // Every alias names one image: no conflict in the built-in catalog.
        let mut names: Vec<&str> = p.tags.iter().map(|t| t.tag.as_str()).collect();
        names.extend(p.aliases.iter().map(|a| a.tag.as_str()));
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(p.aliases.iter().filter(|a| a.tag == "latest").count(), 1);
    }

    #[test]
    fn missing_arches_block_the_tag_and_its_aliases() {
        let m = Matrix::builtin();
        let mut built = all_built(&m);
        built.remove("alpine-3.23/5.4/arm64");
        let p = plan(
            &m,
            &TagConfig::default(),
            &select(&m, "alpine-3.23"),
            &built,
        )
        .unwrap();
        let t = p.tag("alpine-3.23-ocaml-5.4").unwrap();
        assert_eq!(
            t.blocked().unwrap(),
            "not every arch is built: missing arm64 (alpine-3.23/5.4/arm64)"
        );
        assert!(p.tag("alpine-3.23-opam").unwrap().blocked().is_none());
        let alias = p.aliases.iter().find(|a| a.tag == "alpine").unwrap();
        assert_eq!(
            p.alias_blocked(alias).unwrap(),
            "its target alpine-3.23-ocaml-5.4 is not published"
        );
        // The opam tag and 32 switch tags x 2 arches, 4 amd64-only variant tags (4.11-fp,
        // 4.14-fp, 4.14-flambda-fp, 4.14-nnpchecker), less the blocked tag's 2.
        assert_eq!(p.pushes(), 2 + 32 * 2 + 4 - 2);
        let lines = p.lines();
        let blocked: Vec<&str> = lines
            .iter()
            .filter(|l| l.blocked.is_some())
            .map(|l| l.tag.as_str())
            .collect();
        assert_eq!(
            blocked,
            [
                "alpine-3.23-ocaml-5.4",
                "alpine-ocaml-5.4",
                "alpine-3.23",
                "alpine"
            ]
        );
    }

    fn with_config(extra: &str) -> (LoadedConfig, Matrix) {
        let loaded = config::parse("test.toml", extra).unwrap();
        let m = Matrix::from_config(&loaded).unwrap();
        (loaded, m)
    }

    #[test]
    fn patterns_from_the_config() {
        let (loaded, m) = with_config(
            "[tags]\nocaml = \"ocaml-{version}-on-{distro}\"\nlatest = \"\"\nfamily_latest = \"{alias}-current\"\n",
        );
        let t = &loaded.config.tags;
        let p = plan(&m, t, &select(&m, "debian-13/5.4/amd64"), &HashMap::new()).unwrap();
        assert_eq!(p.tags[0].tag, "ocaml-5.4-on-debian-13");
        assert_eq!(
            alias_names(&p, "ocaml-5.4-on-debian-13"),
            ["debian-ocaml-5.4", "debian-13", "debian-current"]
        );
    }

    #[test]
    fn conflicts_and_bad_tags_are_refused() {
        // Two distros claim the `debian` family.
        let (loaded, m) = with_config("[[distro]]\nname = \"debian-12\"\nalias = \"debian\"\n");
        let e = plan(
            &m,
            &loaded.config.tags,
            &select(&m, "alpine-3.23"),
            &HashMap::new(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, PlanError::Conflict { tag, .. } if tag == "debian-ocaml-4.11"),
            "{e}"
        );
        assert!(e.to_string().contains("debian-12/4.11"), "{e}");
        // The opam tag pattern without {distro} gives every distro the same tag.
        let (loaded, m) = with_config("[tags]\nopam = \"opam\"\n");
        let e = plan(&m, &loaded.config.tags, &[], &HashMap::new()).unwrap_err();
        assert!(
            matches!(&e, PlanError::Conflict { tag, .. } if tag == "opam"),
            "{e}"
        );
        // A pattern that expands to something no registry takes.
        let (loaded, m) = with_config("[tags]\nopam = \"-{distro}\"\n");
        let e = plan(&m, &loaded.config.tags, &[], &HashMap::new()).unwrap_err();
        assert!(matches!(&e, PlanError::Invalid { .. }), "{e}");
    }

    #[test]
    fn config_refuses_unknown_placeholders() {
        let e = config::parse("t.toml", "[tags]\nopam = \"{distro}-{version}\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml:2:8: tags.opam: `{distro}-{version}` uses {version}; this key knows {distro}"
        );
        let e = config::parse("t.toml", "[tags]\nlatest = \"new/est\"\n").unwrap_err();
        assert!(e.to_string().contains("`/` cannot appear in a tag"), "{e}");
    }

    #[test]
    fn history_records_become_built_images() {
        let rec = |id: i64, image: Option<&str>| BuildRecord {
            id,
            cell: "c".into(),
            engine: "e".into(),
            inputs: "h".into(),
            status: crate::store::BuildStatus::Succeeded,
            started_at: "2026-11-24T10:00:00Z".into(),
            finished_at: None,
            image_id: image.map(str::to_string),
            size: Some(5),
            compressed_size: None,
            layers: vec![],
            failure: None,
            failure_record: None,
            cause: None,
            log_path: None,
            tag: None,
            base_image: None,
            log_pruned_at: None,
        };
        let mut h = HashMap::new();
        h.insert("a".to_string(), rec(1, Some("sha256:1")));
        h.insert("b".to_string(), rec(2, None));
        let b = built_from_history(&h);
        assert_eq!(b.len(), 1);
        assert_eq!(b["a"].build_id, 1);
    }

    fn small_plan_matrix(config_text: &str) -> Matrix {
        let loaded = config::parse("c.toml", config_text).unwrap();
        let dump = crate::plan::Plan::parse(
            std::path::Path::new("small.dump"),
            include_str!("../../tests/fixtures/plan/small.dump"),
        )
        .unwrap();
        Matrix::from_plan(&loaded, dump).unwrap()
    }

    #[test]
    fn a_plans_pushes_are_its_tags_published_to_the_configured_repository() {
        let m = small_plan_matrix("[tags]\nregistry = \"127.0.0.1:5000\"\n");
        let t = config::parse("c.toml", "[tags]\nregistry = \"127.0.0.1:5000\"\n")
            .unwrap()
            .config
            .tags;
        let all: Vec<&Cell> = m.cells.iter().collect();
        let p = plan(&m, &t, &all, &all_built(&m)).unwrap();
        let names: Vec<&str> = p.tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(
            names,
            [
                "debian-13-opam",
                "debian-13-ocaml-5.4",
                "debian-13-ocaml-4.14-flambda",
                "debian-13-ocaml-5.5-beta1",
                "archive",
                "alpine-3.23-opam",
                "alpine-3.23-ocaml-5.4",
                "windows-all-mingw",
                "windows-server-mingw-ltsc2025-opam",
            ]
        );
        assert_eq!(
            alias_names(&p, "debian-13-ocaml-5.4"),
            ["debian-ocaml-5.4", "debian-13", "debian", "latest"]
        );
        assert_eq!(
            alias_names(&p, "windows-all-mingw"),
            ["windows-server-mingw-ltsc2025-ocaml-5.4"]
        );
        assert!(p.aliases.iter().all(|a| a.rule == AliasRule::Plan));
        let t54 = p.tag("debian-13-ocaml-5.4").unwrap();
        // The plan's names are shown; a publish goes to the configured repositories.
        assert_eq!(
            t54.plan_reference.as_deref(),
            Some("ocaml/opam:debian-13-ocaml-5.4")
        );
        assert_eq!(
            t54.reference,
            "127.0.0.1:5000/imagegrid/opam:debian-13-ocaml-5.4"
        );
        let staging: Vec<&str> = t54.arches.iter().map(|a| a.staging.as_str()).collect();
        assert_eq!(
            staging,
            [
                "127.0.0.1:5000/imagegrid/opam-staging:debian-13-ocaml-5.4-arm64",
                "127.0.0.1:5000/imagegrid/opam-staging:debian-13-ocaml-5.4-amd64"
            ]
        );
        let archive = p.tag("archive").unwrap();
        assert_eq!(archive.arches[0].cell, "debian-13/archive/amd64");
        assert_eq!(
            archive.arches[0].staging,
            "127.0.0.1:5000/imagegrid/opam-staging:archive"
        );
        assert_eq!(
            p.tag("windows-all-mingw").unwrap().arches[0].platform,
            "windows/amd64"
        );
        assert_eq!(p.tags.len() + p.aliases.len(), 19);

        // One arch selects its whole tag and that tag's aliases, nothing else.
        let p = plan(
            &m,
            &t,
            &select(&m, "alpine-3.23/5.4/arm64"),
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(p.tags.len(), 1);
        assert_eq!(p.tags[0].arches.len(), 2);
        assert_eq!(
            alias_names(&p, "alpine-3.23-ocaml-5.4"),
            ["alpine-ocaml-5.4", "alpine-3.23", "alpine"]
        );
        assert!(p.tags[0].blocked().is_some());

        // A filtered matrix joins only the arches it has.
        let m = small_plan_matrix("[matrix]\narches = [\"amd64\"]\n");
        let p = plan(&m, &t, &select(&m, "debian-13/5.4"), &HashMap::new()).unwrap();
        assert_eq!(p.tags[0].arches.len(), 1);
    }
}
