//! The matrix: an explicit, sparse set of cells (distro x OCaml version x arch), built from
//! the catalog, the config's selection and exclusions, and the per-(distro, version, arch) rules.
//!
//! Two levels: per (distro, arch) a base "opam" cell `debian-13/opam/arm64`, and per
//! (distro, version, arch) a compiler cell `debian-13/5.4/arm64` built FROM that base.

mod catalog;
mod from_plan;
mod selector;

use serde::Serialize;

use std::sync::Arc;

use crate::config::{ConfigError, LoadedConfig, TagConfig};
use crate::plan::{Os, Plan, PlanError};
pub use catalog::{
    version_key, ArchDef, Catalog, CatalogInfo, Distro, DistroDef, DistroStatus, Family,
    GccOverlayDef, OcamlDef, OpamBranch, OpamDef, RepositoriesDef, RepositoryDef, VariantDef,
    VariantRule, VariantsDef, BUILTIN_CATALOG,
};
pub use selector::{Selector, PART_NAMES};

/// The version part of a base cell's id.
pub const BASE_VERSION: &str = "opam";

/// The version part of the archive cell's id (a plan's `archive` job: `debian-13/archive/amd64`).
pub const ARCHIVE_VERSION: &str = "archive";

/// Which image a cell builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The per-(distro, arch) image with opam and opam-repository, no compiler.
    Base,
    /// One OCaml switch on top of a base image.
    Compiler,
    /// A plan's opam source-archive image, built FROM a base image (`DISTRO/archive/ARCH`).
    Archive,
}

/// One buildable image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Cell {
    /// Stable id: `distro/version/arch`, version `opam` for base cells.
    pub id: String,
    pub level: Level,
    pub distro: String,
    /// None for base cells.
    pub version: Option<String>,
    pub arch: String,
}

impl Cell {
    /// A cell; `version` None makes a base cell.
    pub fn new(distro: &str, version: Option<&str>, arch: &str) -> Cell {
        let level = if version.is_some() {
            Level::Compiler
        } else {
            Level::Base
        };
        let id = format!("{distro}/{}/{arch}", version.unwrap_or(BASE_VERSION));
        Cell {
            id,
            level,
            distro: distro.to_string(),
            version: version.map(str::to_string),
            arch: arch.to_string(),
        }
    }

    /// The archive cell of a plan: `DISTRO/archive/ARCH`, built FROM `DISTRO/opam/ARCH`.
    pub fn archive(distro: &str, arch: &str) -> Cell {
        Cell {
            level: Level::Archive,
            ..Cell::new(distro, Some(ARCHIVE_VERSION), arch)
        }
    }

    /// A Windows cell (its distro is `windows-…`, as docker-base-images names them): shown,
    /// but built only by an engine that runs Windows containers.
    pub fn is_windows(&self) -> bool {
        Os::of_distro(&self.distro) == Os::Windows
    }

    /// Is this cell part of "all" (`build '*'`, "all failed", "all stale", the TUI's
    /// selections of every failed or stale cell)? Not the archive cell (a weekly image built
    /// on top of the previous one: rebuilt only when asked for by its id), and not a Windows
    /// cell (imagegrid's engines build Linux images; no engine here reports OSType windows).
    pub fn in_all(&self) -> bool {
        self.level != Level::Archive && !self.is_windows()
    }

    /// `linux` or `windows`.
    pub fn os(&self) -> &'static str {
        if self.is_windows() {
            "windows"
        } else {
            "linux"
        }
    }

    /// The version part of the id (`opam` for base cells).
    pub fn version_part(&self) -> &str {
        self.version.as_deref().unwrap_or(BASE_VERSION)
    }

    /// The base cell a compiler cell builds FROM.
    pub fn base_id(&self) -> Option<String> {
        self.version
            .as_ref()
            .map(|_| format!("{}/{BASE_VERSION}/{}", self.distro, self.arch))
    }

    /// The per-arch (staging) tag this cell's image gets: `<distro>-opam-<arch>` or
    /// `<distro>-ocaml-<M.m>-<arch>` in the staging repository.
    pub fn staging_tag(&self, tags: &TagConfig) -> String {
        let repo = if tags.registry.is_empty() {
            tags.staging.clone()
        } else {
            format!("{}/{}", tags.registry.trim_end_matches('/'), tags.staging)
        };
        if self.level == Level::Archive {
            // docker-base-images tags the archive `archive` in staging, with no arch.
            return format!("{repo}:{ARCHIVE_VERSION}");
        }
        format!("{repo}:{}-{}", self.public_tag_stem(), self.arch)
    }

    /// `<distro>-opam` or `<distro>-ocaml-<M.m>`: the public tag this cell contributes an arch
    /// to; `archive` for the archive cell.
    pub fn public_tag_stem(&self) -> String {
        if self.level == Level::Archive {
            return ARCHIVE_VERSION.to_string();
        }
        match &self.version {
            None => format!("{}-opam", self.distro),
            Some(v) => format!("{}-ocaml-{}", self.distro, tag_version(v)),
        }
    }
}

/// The version part of a tag: `+` and `~` become `-` (`5.5~beta1` -> `5.5-beta1`).
pub fn tag_version(v: &str) -> String {
    v.replace(['+', '~'], "-")
}

/// The selected matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub catalog: Catalog,
    /// Distros in the matrix, in display order.
    pub distros: Vec<Distro>,
    pub versions: Vec<OcamlDef>,
    pub arches: Vec<ArchDef>,
    /// Every cell, base cells before their compiler cells.
    pub cells: Vec<Cell>,
    index: std::collections::HashMap<String, usize>,
    /// The pipeline plan the matrix was made from (`[matrix] plan`, `--plan`); None: the
    /// built-in catalog. A plan's cells render as its Dockerfile texts and publish its pushes.
    pub plan: Option<Arc<Plan>>,
}

/// Why no matrix could be made: the config, or the plan it names.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// A config fault (unknown name, bad selector) at `file:line:column`.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plan file is unreadable or not a usable dump (`file:line: message`).
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// A selector problem, with the selector text (control characters shown escaped: it may
/// come from a script or a pasted line).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", crate::logs::escape_controls(.0))]
pub struct SelectorError(pub String);

impl Matrix {
    /// The grid's columns, left to right: `opam` (the base cells), then every version, then
    /// `archive` when a plan has an archive cell.
    pub fn columns(&self) -> Vec<String> {
        let archive = self.cells.iter().any(|c| c.level == Level::Archive);
        std::iter::once(BASE_VERSION.to_string())
            .chain(self.versions.iter().map(|v| v.version.clone()))
            .chain(archive.then(|| ARCHIVE_VERSION.to_string()))
            .collect()
    }

    /// The matrix a config asks for: from the pipeline plan it names (`--plan` set in
    /// [`LoadedConfig::plan_path`], else `[matrix] plan`), or else from the built-in catalog
    /// ([`Matrix::from_config`]).
    pub fn load(loaded: &LoadedConfig) -> Result<Matrix, MatrixError> {
        match loaded.plan_path() {
            Some(path) => {
                let plan = Plan::load(&path)?;
                Ok(Matrix::from_plan(loaded, plan)?)
            }
            None => Ok(Matrix::from_config(loaded)?),
        }
    }

    /// Build the matrix a config asks for from the built-in catalog (a configured plan is
    /// read by [`Matrix::load`]); every unknown name is a [`ConfigError`] at its place.
    pub fn from_config(loaded: &LoadedConfig) -> Result<Matrix, ConfigError> {
        let cfg = &loaded.config;
        let src = &loaded.source;
        let mut catalog = Catalog::builtin();

        for d in &cfg.distros {
            let def = d.get_ref();
            if let Some(existing) = catalog.distros.iter_mut().find(|x| x.name == def.name) {
                existing.patch(def);
            } else {
                let distro = Distro::from_def(def).map_err(|field| {
                    src.error_at(
                        d.span(),
                        format!(
                            "new distro \"{}\" needs `{field}` (it is not in the built-in table)",
                            def.name
                        ),
                    )
                })?;
                catalog.distros.push(distro);
            }
        }
        // Arch names inside distro definitions must be known too.
        for d in &cfg.distros {
            for a in d.get_ref().arches.iter().flatten() {
                if catalog.arch(a).is_none() {
                    return Err(src.error_at(
                        d.span(),
                        unknown("arch", a, catalog.arches.iter().map(|x| &x.name)),
                    ));
                }
            }
        }

        let distros: Vec<Distro> = if cfg.matrix.distros.is_empty() {
            catalog
                .distros
                .iter()
                .filter(|d| d.status == DistroStatus::Active)
                .cloned()
                .collect()
        } else {
            named_distros(&catalog, &cfg.matrix.distros, src)?
        };
        let versions = named_versions(&catalog, &cfg.matrix.versions, src)?;
        let arches: Vec<ArchDef> = if cfg.matrix.arches.is_empty() {
            catalog
                .arches
                .iter()
                .filter(|a| a.default)
                .cloned()
                .collect()
        } else {
            named_arches(&catalog, &cfg.matrix.arches, src)?
        };
        for engine in &cfg.engines {
            for a in &engine.arches {
                if catalog.arch(a.get_ref()).is_none() {
                    return Err(src.error_at(
                        a.span(),
                        format!(
                            "engine \"{}\" cannot build {}",
                            engine.name.get_ref(),
                            unknown("arch", a.get_ref(), catalog.arches.iter().map(|x| &x.name))
                        ),
                    ));
                }
            }
        }
        let exclude = exclusions(&cfg.matrix.exclude, src)?;

        let cells = cells_for(&catalog, &distros, &versions, &arches, &exclude);
        let index = index_of(&cells);
        Ok(Matrix {
            catalog,
            distros,
            versions,
            arches,
            cells,
            index,
            plan: None,
        })
    }

    /// The default matrix (no config file).
    pub fn builtin() -> Matrix {
        Matrix::from_config(&LoadedConfig::defaults()).expect("built-in defaults are valid")
    }

    pub fn cell(&self, id: &str) -> Option<&Cell> {
        self.index.get(id).map(|&i| &self.cells[i])
    }
    pub fn distro(&self, name: &str) -> Option<&Distro> {
        self.catalog.distro(name)
    }
    pub fn arch(&self, name: &str) -> Option<&ArchDef> {
        self.catalog.arch(name)
    }
    pub fn ocaml(&self, version: &str) -> Option<&OcamlDef> {
        self.catalog.ocaml(version)
    }

    /// Compiler cells that build FROM this base cell.
    pub fn dependants<'a>(&'a self, base: &'a Cell) -> impl Iterator<Item = &'a Cell> + 'a {
        self.cells
            .iter()
            .filter(move |c| c.base_id().as_deref() == Some(base.id.as_str()))
    }

    /// Parse selectors, refusing names that exist nowhere (a typo should not select nothing silently).
    pub fn parse_selectors(&self, texts: &[String]) -> Result<Vec<Selector>, SelectorError> {
        let mut out = Vec::new();
        for t in texts {
            let sel = Selector::parse(t)?;
            for (part, lit) in sel.literal_parts() {
                let known = match part {
                    0 => self.catalog.distro(lit).is_some(),
                    1 => {
                        lit == BASE_VERSION
                            || (lit == ARCHIVE_VERSION
                                && (self.plan.is_some() || self.catalog.archive.is_some()))
                            || self.catalog.ocaml(lit).is_some()
                    }
                    _ => self.catalog.arch(lit).is_some(),
                };
                if !known {
                    let names: Vec<&String> = match part {
                        0 => self.distros.iter().map(|d| &d.name).collect(),
                        1 => self.versions.iter().map(|v| &v.version).collect(),
                        _ => self.arches.iter().map(|a| &a.name).collect(),
                    };
                    return Err(SelectorError(format!(
                        "selector `{}`: {}",
                        sel.as_str(),
                        unknown(PART_NAMES[part], lit, names.into_iter())
                    )));
                }
            }
            out.push(sel);
        }
        Ok(out)
    }

    /// The cells any selector matches, in matrix order. No selectors: every cell.
    pub fn select(&self, selectors: &[Selector]) -> Vec<&Cell> {
        self.cells
            .iter()
            .filter(|c| selectors.is_empty() || selectors.iter().any(|s| s.matches(c)))
            .collect()
    }

    /// The cells a build of these selectors means: [`Matrix::select`], less the cells that
    /// are not part of "all" ([`Cell::in_all`]) unless a selector is exactly their id.
    /// Naming a Windows cell so keeps it, for the planning step to say why it is not built.
    pub fn select_to_build(&self, selectors: &[Selector]) -> Vec<&Cell> {
        self.select(selectors)
            .into_iter()
            .filter(|c| c.in_all() || selectors.iter().any(|s| s.as_str() == c.id))
            .collect()
    }

    /// The Docker platform of a cell: its arch's (`linux/arm64`), `windows/amd64` for a
    /// Windows cell.
    pub fn platform(&self, cell: &Cell) -> String {
        let linux = self
            .arch(&cell.arch)
            .map(|a| a.platform.clone())
            .unwrap_or_else(|| format!("linux/{}", cell.arch));
        if cell.is_windows() {
            linux.replacen("linux/", "windows/", 1)
        } else {
            linux
        }
    }
}

/// "unknown distro `x` (known: a, b, c)".
/// The distros a config's `[matrix] distros` names, in its order; an unknown name is an
/// error at its place. The catalog and the plan path both read the list this way.
fn named_distros(
    catalog: &Catalog,
    names: &[toml::Spanned<String>],
    src: &crate::config::Source,
) -> Result<Vec<Distro>, ConfigError> {
    names
        .iter()
        .map(|name| {
            catalog.distro(name.get_ref()).cloned().ok_or_else(|| {
                src.error_at(
                    name.span(),
                    unknown(
                        "distro",
                        name.get_ref(),
                        catalog.distros.iter().map(|d| &d.name),
                    ),
                )
            })
        })
        .collect()
}

/// The arches a config's `[matrix] arches` names, in its order; an unknown one is an error at
/// its place.
fn named_arches(
    catalog: &Catalog,
    names: &[toml::Spanned<String>],
    src: &crate::config::Source,
) -> Result<Vec<ArchDef>, ConfigError> {
    names
        .iter()
        .map(|a| {
            catalog.arch(a.get_ref()).cloned().ok_or_else(|| {
                src.error_at(
                    a.span(),
                    unknown("arch", a.get_ref(), catalog.arches.iter().map(|x| &x.name)),
                )
            })
        })
        .collect()
}

/// `[matrix] exclude` as selectors; a bad one is an error at its place.
fn exclusions(
    entries: &[toml::Spanned<String>],
    src: &crate::config::Source,
) -> Result<Vec<Selector>, ConfigError> {
    entries
        .iter()
        .map(|e| Selector::parse(e.get_ref()).map_err(|m| src.error_at(e.span(), m.0)))
        .collect()
}

/// Cell id -> position in `cells`.
fn index_of(cells: &[Cell]) -> std::collections::HashMap<String, usize> {
    cells
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect()
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    format!("unknown {what} `{name}` (known: {})", known.join(", "))
}

/// The explicit cell set: the rules decide which (distro, version, arch) exist
/// ([`Catalog::builds`]); the archive's distro (`[archive]`) has the archive cell, on its
/// base for the archive's arch, after its compiler cells.
fn cells_for(
    catalog: &Catalog,
    distros: &[Distro],
    versions: &[OcamlDef],
    arches: &[ArchDef],
    exclude: &[Selector],
) -> Vec<Cell> {
    let excluded = |c: &Cell| exclude.iter().any(|s| s.matches(c));
    let mut cells = Vec::new();
    for d in distros {
        for a in arches.iter().filter(|a| d.arches.contains(&a.name)) {
            let base = Cell::new(&d.name, None, &a.name);
            if excluded(&base) {
                // No compiler cell without its base.
                continue;
            }
            cells.push(base);
        }
        for v in versions {
            for a in arches.iter().filter(|a| catalog.builds(d, v, a)) {
                let cell = Cell::new(&d.name, Some(&v.version), &a.name);
                let has_base = cells.iter().any(|c| Some(&c.id) == cell.base_id().as_ref());
                if has_base && !excluded(&cell) {
                    cells.push(cell);
                }
            }
        }
        if let Some(archive) = catalog.archive.as_ref().filter(|a| a.distro == d.name) {
            let cell = Cell::archive(&d.name, &archive.arch);
            let has_base = cells.iter().any(|c| Some(&c.id) == cell.base_id().as_ref());
            if has_base && !excluded(&cell) {
                cells.push(cell);
            }
        }
    }
    cells
}

/// The columns a config's `[matrix] versions` names, in the catalog's order: each entry is
/// a column name (`5.4` is the plain switch only, `5.4-flambda` a variant) or a glob over
/// them (`5.4*`: the switch and its variants); an entry that names nothing is an error at
/// its place. Empty: every column. The catalog and the plan path both read the list so.
fn named_versions(
    catalog: &Catalog,
    entries: &[toml::Spanned<String>],
    src: &crate::config::Source,
) -> Result<Vec<OcamlDef>, ConfigError> {
    if entries.is_empty() {
        return Ok(catalog.ocaml.clone());
    }
    let mut keep = std::collections::HashSet::new();
    for v in entries {
        let matched = match_names(v, catalog.ocaml.iter().map(|o| &o.version))
            .map_err(|m| src.error_at(v.span(), m))?;
        if matched.is_empty() {
            let plain = catalog.ocaml.iter().filter(|o| o.variant.is_none());
            let mut message = unknown("OCaml version", v.get_ref(), plain.map(|o| &o.version));
            if let Some(variants) = &catalog.variants {
                let names: Vec<&str> = variants.variants.iter().map(|x| x.name.as_str()).collect();
                message.insert_str(
                    message.len() - 1,
                    &format!(
                        "; variants as `5.4-flambda`: {}; globs as `5.4*`",
                        names.join(", ")
                    ),
                );
            }
            return Err(src.error_at(v.span(), message));
        }
        keep.extend(matched);
    }
    // The catalog's order, whatever order the config lists them in.
    Ok(catalog
        .ocaml
        .iter()
        .filter(|o| keep.contains(&o.version))
        .cloned()
        .collect())
}

/// The names a config entry selects: itself if it is one of `names`, else every name its
/// glob matches (none: the caller reports it as unknown).
fn match_names<'a>(
    entry: &toml::Spanned<String>,
    names: impl Iterator<Item = &'a String>,
) -> Result<Vec<String>, String> {
    const MATCH: glob::MatchOptions = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let text = entry.get_ref().trim();
    let pattern = glob::Pattern::new(text).map_err(|e| format!("bad glob `{text}`: {}", e.msg))?;
    Ok(names
        .filter(|n| n.as_str() == text || pattern.matches_with(n, MATCH))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_rules() {
        let m = Matrix::builtin();
        assert!(m.cell("debian-13/5.4/arm64").is_some());
        assert!(m.cell("debian-13/opam/riscv64").is_some());
        assert!(m
            .cells
            .iter()
            .all(|c| !(c.distro.starts_with("alpine") && c.arch == "riscv64")));
        // i386 and arm32v7 are known but off by default.
        assert!(m
            .cells
            .iter()
            .all(|c| c.arch != "i386" && c.arch != "arm32v7"));
        // Distros newer than the dump the catalog reproduces are not in the default matrix.
        assert!(m.cells.iter().all(|c| c.distro != "alpine-3.24"));
        // debian-12 still had s390x on 2026-05-22.
        assert!(m.cell("debian-12/opam/s390x").is_some());
        for c in &m.cells {
            if let Some(b) = c.base_id() {
                assert!(m.cell(&b).is_some(), "{} has no base", c.id);
            }
        }
    }

    fn versions_of(config: &str) -> Result<Vec<String>, String> {
        let loaded = crate::config::parse("c.toml", config).map_err(|e| e.to_string())?;
        let m = Matrix::from_config(&loaded).map_err(|e| e.to_string())?;
        Ok(m.versions.iter().map(|v| v.version.clone()).collect())
    }

    #[test]
    fn versions_select_plain_switches_variants_by_name_or_glob() {
        // A version alone is its plain switch, as configs meant before variants existed.
        assert_eq!(
            versions_of("[matrix]\nversions = [\"5.4\"]\n").unwrap(),
            ["5.4"]
        );
        assert_eq!(
            versions_of("[matrix]\nversions = [\"5.4-flambda\", \"4.14\"]\n").unwrap(),
            ["4.14", "5.4-flambda"],
            "catalog order"
        );
        assert_eq!(
            versions_of("[matrix]\nversions = [\"5.5*\"]\n").unwrap(),
            [
                "5.5",
                "5.5-afl",
                "5.5-flambda",
                "5.5-no-flat-float-array",
                "5.5-beta1",
                "5.5-beta1-afl",
                "5.5-beta1-flambda",
                "5.5-beta1-no-flat-float-array"
            ]
        );
        let e = versions_of("[matrix]\nversions = [\"5.4-fp\"]\n").unwrap_err();
        assert!(
            e.starts_with("c.toml:2:13: matrix.versions: unknown OCaml version `5.4-fp` (known: 4.11, 4.14, 5.2, 5.3, 5.4, 5.5, 5.5-beta1, 5.6; variants as `5.4-flambda`: afl, flambda,"),
            "{e}"
        );
        // Every column of the default matrix: 8 switches and their 28 variants.
        assert_eq!(versions_of("").unwrap().len(), 36);
        let m = Matrix::builtin();
        let plain: Vec<&str> = m
            .versions
            .iter()
            .filter(|v| v.variant.is_none())
            .map(|v| v.version.as_str())
            .collect();
        assert_eq!(
            plain,
            [
                "4.11",
                "4.14",
                "5.2",
                "5.3",
                "5.4",
                "5.5",
                "5.5-beta1",
                "5.6"
            ]
        );
    }

    #[test]
    fn variant_cells_follow_tier_and_arch_rules() {
        let m = Matrix::builtin();
        let count = |d: &str, a: &str| {
            m.cells
                .iter()
                .filter(|c| c.distro == d && c.arch == a && c.level == Level::Compiler)
                .count()
        };
        // The dump's switch counts per (distro, arch).
        assert_eq!(count("debian-13", "amd64"), 36);
        assert_eq!(count("debian-13", "arm64"), 32);
        for a in ["ppc64le", "s390x", "riscv64"] {
            assert_eq!(count("debian-13", a), 20, "{a}");
        }
        assert_eq!(count("alpine-3.23", "amd64"), 36);
        assert_eq!(count("alpine-3.23", "arm64"), 32);
        // Tier 2 and 3 distros: the 8 plain switches only.
        assert_eq!(count("ubuntu-26.04", "amd64"), 8);
        assert_eq!(count("archlinux", "amd64"), 8);
        let compilers = m
            .cells
            .iter()
            .filter(|c| c.level == Level::Compiler)
            .count();
        let bases = m.cells.iter().filter(|c| c.level == Level::Base).count();
        assert_eq!((bases, compilers), (49, 532), "the dump's Linux jobs");
    }

    #[test]
    fn the_archive_cell_is_the_catalogs_archive_distros_only() {
        let m = Matrix::builtin();
        let a = m.cell("debian-13/archive/amd64").unwrap();
        assert_eq!(a.level, Level::Archive);
        assert!(!a.in_all(), "built only when named");
        assert_eq!(
            m.columns().last().map(String::as_str),
            Some(ARCHIVE_VERSION)
        );
        // A master distro of the user's own does not make one.
        let loaded = crate::config::parse(
            "c.toml",
            "[matrix]\ndistros = [\"mine\"]\n[[distro]]\nname = \"mine\"\nbase = \"x\"\nfamily = \"apt\"\nmaster = true\n",
        )
        .unwrap();
        let m = Matrix::from_config(&loaded).unwrap();
        assert!(m.cells.iter().all(|c| c.level != Level::Archive));
        assert!(m.columns().iter().all(|c| c != ARCHIVE_VERSION));
    }

    #[test]
    fn tags() {
        let c = Cell::new("debian-13", Some("5.4"), "arm64");
        assert_eq!(
            c.staging_tag(&TagConfig::default()),
            "imagegrid/opam-staging:debian-13-ocaml-5.4-arm64"
        );
        let b = Cell::new("debian-13", None, "amd64");
        let t = TagConfig {
            registry: "127.0.0.1:5000".into(),
            ..TagConfig::default()
        };
        assert_eq!(
            b.staging_tag(&t),
            "127.0.0.1:5000/imagegrid/opam-staging:debian-13-opam-amd64"
        );
        assert_eq!(tag_version("5.5~beta1"), "5.5-beta1");
    }
}
