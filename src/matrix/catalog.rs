//! The built-in table of distros, OCaml versions, arches and opam branches
//! (`assets/matrix.toml`, embedded), and the per-distro overrides a config may add.

use serde::{Deserialize, Serialize};

pub use crate::model::distro::{DistroDef, DistroStatus, Family};

/// The embedded default catalog text.
pub const BUILTIN_CATALOG: &str = include_str!("../../assets/matrix.toml");

/// A catalog text that is not valid (a test checks the built-in one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(pub String);

/// A fully-specified distro.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Distro {
    pub name: String,
    pub base: String,
    pub family: Family,
    pub tier: u8,
    pub status: DistroStatus,
    pub alias: Option<String>,
    pub master: bool,
    pub lts: bool,
    pub arches: Vec<String>,
    pub quirks: Vec<String>,
    pub min_ocaml: Option<String>,
}

impl Distro {
    /// Apply a `[[distro]]` patch: set fields override.
    pub fn patch(&mut self, d: &DistroDef) {
        if let Some(v) = &d.base {
            self.base = v.clone();
        }
        if let Some(v) = d.family {
            self.family = v;
        }
        if let Some(v) = d.tier {
            self.tier = v;
        }
        if let Some(v) = d.status {
            self.status = v;
        }
        if let Some(v) = &d.alias {
            self.alias = Some(v.clone());
        }
        if let Some(v) = d.master {
            self.master = v;
        }
        if let Some(v) = d.lts {
            self.lts = v;
        }
        if let Some(v) = &d.arches {
            self.arches = v.clone();
        }
        if let Some(v) = &d.quirks {
            self.quirks = v.clone();
        }
        if let Some(v) = &d.min_ocaml {
            self.min_ocaml = Some(v.clone());
        }
    }

    /// A new distro from a complete definition; `Err` names the missing field.
    pub fn from_def(d: &DistroDef) -> Result<Distro, &'static str> {
        let base = d.base.clone().ok_or("base")?;
        let family = d.family.ok_or("family")?;
        let mut out = Distro {
            name: d.name.clone(),
            base,
            family,
            tier: 2,
            status: DistroStatus::Active,
            alias: None,
            master: false,
            lts: false,
            arches: vec!["amd64".into()],
            quirks: vec![],
            min_ocaml: None,
        };
        out.patch(d);
        Ok(out)
    }
}

/// One OCaml version column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OcamlDef {
    /// `M.m`: the column, switch name and tag part.
    pub version: String,
    /// The exact release installed.
    pub full: String,
    /// Unreleased trunk compiler (from the beta repository).
    #[serde(default)]
    pub dev: bool,
    /// The version `<distro>` and `<family>` alias tags point at.
    #[serde(default)]
    pub latest: bool,
}

/// One CPU architecture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchDef {
    /// Name as in tags (`amd64`, `arm32v7`).
    pub name: String,
    /// Docker platform (`linux/arm/v7`).
    pub platform: String,
    /// Built by the default matrix.
    #[serde(default = "yes")]
    pub default: bool,
    /// Oldest OCaml version with this arch (riscv64: 4.11).
    pub min_ocaml: Option<String>,
}

fn yes() -> bool {
    true
}

/// One opam branch compiled in the builder stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpamBranch {
    pub name: String,
    pub git_ref: String,
}

/// Where opam and opam-repository come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpamDef {
    pub git_url: String,
    pub repository_url: String,
    pub repository_ref: String,
    pub branches: Vec<OpamBranch>,
}

/// The catalog file's shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    opam: OpamDef,
    ocaml: Vec<OcamlDef>,
    arch: Vec<ArchDef>,
    distro: Vec<DistroDef>,
}

/// Everything the matrix can be made of.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub opam: OpamDef,
    pub ocaml: Vec<OcamlDef>,
    pub arches: Vec<ArchDef>,
    pub distros: Vec<Distro>,
}

impl Catalog {
    /// The embedded catalog. It is checked by tests, so a parse failure is a build defect.
    pub fn builtin() -> Catalog {
        Catalog::parse(BUILTIN_CATALOG).expect("assets/matrix.toml is valid (checked by tests)")
    }

    /// Parse catalog text.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        Self::parse_text(text).map_err(CatalogError)
    }

    fn parse_text(text: &str) -> Result<Catalog, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let distros = file
            .distro
            .iter()
            .map(|d| Distro::from_def(d).map_err(|f| format!("distro {}: missing {f}", d.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Catalog {
            opam: file.opam,
            ocaml: file.ocaml,
            arches: file.arch,
            distros,
        })
    }

    pub fn distro(&self, name: &str) -> Option<&Distro> {
        self.distros.iter().find(|d| d.name == name)
    }
    pub fn arch(&self, name: &str) -> Option<&ArchDef> {
        self.arches.iter().find(|a| a.name == name)
    }
    pub fn ocaml(&self, version: &str) -> Option<&OcamlDef> {
        self.ocaml.iter().find(|o| o.version == version)
    }
}

/// `M.m[.p]` as numbers, for the version rules. Unparsable parts count as 0.
pub fn version_key(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split(['.', '~', '+'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}
