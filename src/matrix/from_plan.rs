//! A matrix made from a pipeline plan (the dump of ocurrent/docker-base-images,
//! `base-images --dump`, committed there as `builds.expected`): its distros, switches, arches
//! and jobs, exactly as the file has them (sparse), filtered by the config's `[matrix]` lists.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::catalog::{ArchDef, Catalog, Distro, DistroStatus, Family, OcamlDef};
use super::{
    exclusions, index_of, named_arches, named_distros, named_versions, unknown, Cell, Matrix,
    Selector,
};
use crate::config::{ConfigError, LoadedConfig};
use crate::plan::{Arch, JobKind, Plan, Switch};

impl Matrix {
    /// The matrix of a plan: one cell per job (`DISTRO/opam/ARCH`, `DISTRO/VERSION/ARCH`,
    /// `DISTRO/archive/ARCH`), distros in the order their base jobs come, versions in tag form
    /// ordered by [`switch_order`], arches in [`Arch::ALL`] order. `[matrix]` `distros`,
    /// `versions` (tag form, globs allowed: `5.4` is the plain switch, `5.4*` its variants
    /// too), `arches` and `exclude` filter it as they filter the catalog; a name the plan does
    /// not have is a [`ConfigError`] at its place. `[[distro]]` tables do not apply to a plan.
    pub fn from_plan(loaded: &LoadedConfig, plan: Plan) -> Result<Matrix, ConfigError> {
        let cfg = &loaded.config;
        let src = &loaded.source;
        let builtin = Catalog::builtin();
        let catalog = plan_catalog(&plan, &builtin);

        // Engine arches are checked against every arch imagegrid knows, as with the catalog.
        for engine in &cfg.engines {
            for a in &engine.arches {
                if builtin.arch(a.get_ref()).is_none() {
                    return Err(src.error_at(
                        a.span(),
                        format!(
                            "engine \"{}\" cannot build {}",
                            engine.name.get_ref(),
                            unknown("arch", a.get_ref(), builtin.arches.iter().map(|x| &x.name))
                        ),
                    ));
                }
            }
        }

        let distros: Vec<Distro> = if cfg.matrix.distros.is_empty() {
            catalog.distros.clone()
        } else {
            named_distros(&catalog, &cfg.matrix.distros, src)?
        };
        let versions = named_versions(&catalog, &cfg.matrix.versions, src)?;
        let arches: Vec<ArchDef> = if cfg.matrix.arches.is_empty() {
            catalog.arches.clone()
        } else {
            named_arches(&catalog, &cfg.matrix.arches, src)?
        };
        let exclude = exclusions(&cfg.matrix.exclude, src)?;

        let cells = plan_cells(&plan, &distros, &versions, &arches, &exclude);
        let index = index_of(&cells);
        Ok(Matrix {
            catalog,
            distros,
            versions,
            arches,
            cells,
            index,
            plan: Some(Arc::new(plan)),
        })
    }
}

/// The plan's distros, versions and arches as a catalog (selectors and names are checked
/// against it). A distro takes the built-in table's family and tags facts when the table
/// knows its name; its `base` is the image its first base job starts FROM.
fn plan_catalog(plan: &Plan, builtin: &Catalog) -> Catalog {
    let mut distros: Vec<Distro> = Vec::new();
    let mut switches: Vec<&Switch> = Vec::new();
    let mut seen_switch = HashSet::new();
    let mut arches: Vec<Arch> = Vec::new();
    for job in plan.jobs() {
        if !arches.contains(&job.arch()) {
            arches.push(job.arch());
        }
        match job.kind() {
            JobKind::Base => match distros.iter_mut().find(|d| d.name == job.distro()) {
                Some(d) => d.arches.push(job.arch().to_string()),
                None => distros.push(plan_distro(builtin, job.distro(), job)),
            },
            JobKind::Compiler(s) => {
                if seen_switch.insert(s.tag()) {
                    switches.push(s);
                }
            }
            JobKind::Archive => {}
        }
    }
    switches.sort_by_key(|s| switch_order(s));
    arches.sort();
    Catalog {
        info: None,
        opam: builtin.opam.clone(),
        repositories: None,
        variants: None,
        archive: None,
        ocaml: switches
            .into_iter()
            .map(|s| OcamlDef {
                version: s.tag().to_string(),
                full: s.as_str().to_string(),
                switch: None,
                dev: false,
                beta: false,
                latest: false,
                variant: None,
                variant_arches: None,
                variant_package: false,
            })
            .collect(),
        arches: arches
            .into_iter()
            .map(|a| {
                builtin.arch(a.as_str()).cloned().unwrap_or(ArchDef {
                    name: a.to_string(),
                    platform: format!("linux/{a}"),
                    default: true,
                    min_ocaml: None,
                })
            })
            .collect(),
        distros,
    }
}

fn plan_distro(builtin: &Catalog, name: &str, base_job: &crate::plan::Job) -> Distro {
    let base = base_job.first_from().unwrap_or_default().to_string();
    let arch = base_job.arch().to_string();
    match builtin.distro(name) {
        Some(d) => Distro {
            base,
            arches: vec![arch],
            status: DistroStatus::Active,
            min_ocaml: None,
            ..d.clone()
        },
        None => Distro {
            name: name.to_string(),
            base,
            family: family_by_name(name),
            tier: 2,
            status: DistroStatus::Active,
            alias: None,
            master: false,
            lts: false,
            arches: vec![arch],
            quirks: vec![],
            min_ocaml: None,
            gcc: None,
        },
    }
}

/// The package family a distro's name suggests (the plan's texts do not need it; it names
/// the distro's kind in listings). Windows and unknown names count as apt.
fn family_by_name(name: &str) -> Family {
    let has = |p: &str| name.starts_with(p);
    if has("alpine") {
        Family::Apk
    } else if has("fedora") || has("centos") || has("oraclelinux") || has("rhel") {
        Family::Dnf
    } else if has("opensuse") || has("sles") {
        Family::Zypper
    } else if has("archlinux") {
        Family::Pacman
    } else {
        Family::Apt
    }
}

/// How switches are ordered as columns: by MAJOR.MINOR, the release before its
/// pre-releases (`5.5` before `5.5-beta1`), the plain switch before its variants, each
/// group by name: `4.14`, `4.14-flambda`, `5.5`, `5.5-afl`, `5.5-beta1`, `5.5-beta1-afl`.
pub fn switch_order(s: &Switch) -> (u32, u32, String, String) {
    let w = s.as_str();
    let num = |t: &str| {
        t.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    };
    let major = num(w);
    let minor = num(w.split_once('.').map_or("", |(_, r)| r));
    // After MAJOR.MINOR[.PATCH]: `~PRERELEASE` then `+VARIANT…`.
    let rest = w.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let (pre, variant) = match rest.split_once('+') {
        Some((pre, v)) => (pre, v),
        None => (rest, ""),
    };
    (major, minor, pre.to_string(), variant.to_string())
}

/// The plan's jobs that the selection keeps, as cells: grouped by distro in distro order, in
/// file order within a distro (a base comes before the compilers that start FROM it). A cell
/// whose base is left out is left out too.
fn plan_cells(
    plan: &Plan,
    distros: &[Distro],
    versions: &[OcamlDef],
    arches: &[ArchDef],
    exclude: &[Selector],
) -> Vec<Cell> {
    let distro_rank: HashMap<&str, usize> = distros
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.as_str(), i))
        .collect();
    let versions: HashSet<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    let arches: HashSet<&str> = arches.iter().map(|a| a.name.as_str()).collect();
    let mut kept: Vec<(usize, usize, Cell)> = Vec::new();
    let mut bases: HashSet<String> = HashSet::new();
    for (i, job) in plan.jobs().iter().enumerate() {
        let Some(&rank) = distro_rank.get(job.distro()) else {
            continue;
        };
        let arch = job.arch().as_str();
        if !arches.contains(arch) {
            continue;
        }
        let cell = match job.kind() {
            JobKind::Base => Cell::new(job.distro(), None, arch),
            JobKind::Compiler(s) => {
                if !versions.contains(s.tag()) {
                    continue;
                }
                Cell::new(job.distro(), Some(s.tag()), arch)
            }
            JobKind::Archive => Cell::archive(job.distro(), arch),
        };
        if exclude.iter().any(|s| s.matches(&cell)) {
            continue;
        }
        if cell.base_id().is_none() {
            bases.insert(cell.id.clone());
        }
        kept.push((rank, i, cell));
    }
    // After the loop: a base may come after its compilers in the file.
    kept.retain(|(_, _, c)| c.base_id().is_none_or(|b| bases.contains(&b)));
    kept.sort_by_key(|(rank, i, c)| (*rank, c.base_id().is_some(), *i));
    kept.into_iter().map(|(_, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::matrix::Level;

    const SMALL: &str = include_str!("../../tests/fixtures/plan/small.dump");

    fn matrix(config_text: &str) -> Result<Matrix, String> {
        let loaded = config::parse("c.toml", config_text).map_err(|e| e.to_string())?;
        let plan = Plan::parse(std::path::Path::new("small.dump"), SMALL).unwrap();
        Matrix::from_plan(&loaded, plan).map_err(|e| e.to_string())
    }

    fn ids(m: &Matrix) -> Vec<&str> {
        m.cells.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn fixture_matrix() {
        let m = matrix("").unwrap();
        assert_eq!(
            ids(&m),
            [
                "debian-13/opam/arm64",
                "debian-13/opam/amd64",
                "debian-13/5.4/arm64",
                "debian-13/5.4/amd64",
                "debian-13/4.14-flambda/amd64",
                "debian-13/5.5-beta1/arm64",
                "debian-13/5.5-beta1/amd64",
                "debian-13/archive/amd64",
                "alpine-3.23/opam/arm64",
                "alpine-3.23/opam/amd64",
                "alpine-3.23/5.4/arm64",
                "alpine-3.23/5.4/amd64",
                "windows-server-mingw-ltsc2025/opam/amd64",
                "windows-server-mingw-ltsc2025/5.4/amd64",
            ]
        );
        let distros: Vec<(&str, &str, Vec<&str>)> = m
            .distros
            .iter()
            .map(|d| {
                (
                    d.name.as_str(),
                    d.base.as_str(),
                    d.arches.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            distros,
            [
                (
                    "debian-13",
                    "imagegrid-fixture/busybox:latest",
                    vec!["arm64", "amd64"]
                ),
                (
                    "alpine-3.23",
                    "imagegrid-fixture/busybox:latest",
                    vec!["arm64", "amd64"]
                ),
                (
                    "windows-server-mingw-ltsc2025",
                    "mcr.microsoft.com/windows/server:ltsc2025",
                    vec!["amd64"]
                ),
            ]
        );
        assert_eq!(
            m.columns(),
            ["opam", "4.14-flambda", "5.4", "5.5-beta1", "archive"]
        );
        let arches: Vec<&str> = m.arches.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(arches, ["amd64", "arm64"]);
        let archive = m.cell("debian-13/archive/amd64").unwrap();
        assert_eq!(archive.level, Level::Archive);
        assert_eq!(archive.base_id().as_deref(), Some("debian-13/opam/amd64"));
        assert_eq!(
            m.cell("debian-13/4.14-flambda/amd64")
                .unwrap()
                .base_id()
                .as_deref(),
            Some("debian-13/opam/amd64")
        );
        let win = m.cell("windows-server-mingw-ltsc2025/5.4/amd64").unwrap();
        assert!(win.is_windows() && !win.in_all());
        assert_eq!(m.platform(win), "windows/amd64");
        assert!(m.plan.is_some());
    }

    #[test]
    fn selectors_reach_every_cell_and_all_leaves_out_archive_and_windows() {
        let m = matrix("").unwrap();
        let sel = |t: &[&str]| {
            let texts: Vec<String> = t.iter().map(|s| s.to_string()).collect();
            m.parse_selectors(&texts).unwrap()
        };
        let picked =
            |cells: Vec<&Cell>| -> Vec<String> { cells.iter().map(|c| c.id.clone()).collect() };
        assert_eq!(
            picked(m.select(&sel(&["debian-13/4.14-*/amd64"]))),
            ["debian-13/4.14-flambda/amd64"]
        );
        assert_eq!(
            picked(m.select(&sel(&["*/5.5-beta1"]))),
            ["debian-13/5.5-beta1/arm64", "debian-13/5.5-beta1/amd64"]
        );
        // Listing: every cell. Building "all": not the archive, not Windows.
        assert_eq!(m.select(&sel(&["*"])).len(), 14);
        let all = picked(m.select_to_build(&sel(&["*"])));
        assert_eq!(all.len(), 11);
        assert!(all
            .iter()
            .all(|c| !c.contains("archive") && !c.starts_with("windows")));
        assert_eq!(picked(m.select_to_build(&[])).len(), 11);
        assert!(m.select_to_build(&sel(&["*/archive/*"])).is_empty());
        // Named by their exact ids, they are kept.
        assert_eq!(
            picked(m.select_to_build(&sel(&[
                "debian-13/archive/amd64",
                "windows-server-mingw-ltsc2025/opam/amd64"
            ]))),
            [
                "debian-13/archive/amd64",
                "windows-server-mingw-ltsc2025/opam/amd64"
            ]
        );
        let e = m
            .parse_selectors(&["debian-13/5.9/amd64".into()])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "selector `debian-13/5.9/amd64`: unknown version `5.9` (known: 4.14-flambda, 5.4, 5.5-beta1)"
        );
    }

    #[test]
    fn config_lists_filter_the_plan() {
        let m = matrix("[matrix]\nversions = [\"5.4\"]\n").unwrap();
        // `5.4` is the plain switch only; the archive is no version and stays.
        assert_eq!(
            ids(&m)
                .into_iter()
                .filter(|c| !c.contains("/opam/"))
                .collect::<Vec<_>>(),
            [
                "debian-13/5.4/arm64",
                "debian-13/5.4/amd64",
                "debian-13/archive/amd64",
                "alpine-3.23/5.4/arm64",
                "alpine-3.23/5.4/amd64",
                "windows-server-mingw-ltsc2025/5.4/amd64"
            ]
        );
        let m = matrix("[matrix]\nversions = [\"4.14*\", \"5.5*\"]\n").unwrap();
        let versions: Vec<&str> = m.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(versions, ["4.14-flambda", "5.5-beta1"]);
        let m = matrix(
            "[matrix]\ndistros = [\"debian-13\"]\narches = [\"amd64\"]\nexclude = [\"*/5.5-beta1/*\"]\n",
        )
        .unwrap();
        assert_eq!(
            ids(&m),
            [
                "debian-13/opam/amd64",
                "debian-13/5.4/amd64",
                "debian-13/4.14-flambda/amd64",
                "debian-13/archive/amd64"
            ]
        );
        // Excluding a base excludes what builds FROM it, the archive too.
        let m = matrix("[matrix]\nexclude = [\"debian-13/opam/amd64\"]\n").unwrap();
        assert!(ids(&m)
            .iter()
            .all(|c| !(c.starts_with("debian-13/") && c.ends_with("/amd64"))));
        assert_eq!(
            matrix("[matrix]\nversions = [\"5.9*\"]\n").unwrap_err(),
            "c.toml:2:13: matrix.versions: unknown OCaml version `5.9*` (known: 4.14-flambda, 5.4, 5.5-beta1)"
        );
        assert_eq!(
            matrix("[matrix]\ndistros = [\"debian-12\"]\n").unwrap_err(),
            "c.toml:2:12: matrix.distros: unknown distro `debian-12` (known: debian-13, alpine-3.23, windows-server-mingw-ltsc2025)"
        );
        assert_eq!(
            matrix("[matrix]\narches = [\"s390x\"]\n").unwrap_err(),
            "c.toml:2:11: matrix.arches: unknown arch `s390x` (known: amd64, arm64)"
        );
    }

    fn order(ws: &[&str]) -> Vec<String> {
        let mut s: Vec<Switch> = ws.iter().map(|w| Switch::parse(w).unwrap()).collect();
        s.sort_by_key(switch_order);
        s.iter().map(|s| s.tag().to_string()).collect()
    }

    #[test]
    fn switches_ordered_plain_variants_then_betas() {
        assert_eq!(
            order(&[
                "5.6.0",
                "5.5.0~beta1+afl",
                "5.5.0",
                "5.5.0~beta1",
                "4.14.3+flambda",
                "4.14.3+flambda+fp",
                "5.5.0+afl",
                "4.14.3",
                "4.11.2",
            ]),
            [
                "4.11",
                "4.14",
                "4.14-flambda",
                "4.14-flambda-fp",
                "5.5",
                "5.5-afl",
                "5.5-beta1",
                "5.5-beta1-afl",
                "5.6"
            ]
        );
    }

    #[test]
    fn families_by_name() {
        assert_eq!(family_by_name("alpine-3.23"), Family::Apk);
        assert_eq!(family_by_name("centos-10"), Family::Dnf);
        assert_eq!(family_by_name("opensuse-tumbleweed"), Family::Zypper);
        assert_eq!(family_by_name("archlinux"), Family::Pacman);
        assert_eq!(family_by_name("debian-13"), Family::Apt);
    }
}
