//! The built-in table of distros, OCaml versions, compiler variants, arches, opam branches
//! and extra opam repositories (`assets/matrix.toml`, embedded: the facts of the upstream
//! pipeline's dump dated 2026-05-22), and the per-distro overrides a config may add.

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
    /// Major version of the default gcc; None: unknown (no gcc-gated repository).
    pub gcc: Option<u32>,
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
        if let Some(v) = d.gcc {
            self.gcc = Some(v);
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
            gcc: None,
        };
        out.patch(d);
        Ok(out)
    }
}

/// One OCaml version column: a release, dev or beta compiler, or one of their variants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OcamlDef {
    /// The column, cell id part and tag part, in tag form: `5.4`, `5.5-beta1`,
    /// `4.14-flambda`.
    pub version: String,
    /// The exact release installed (`5.4.1`, `5.5.0~beta1`); for a plan's column, the
    /// plan's switch (`4.14.3+flambda`).
    pub full: String,
    /// The opam switch name when it differs from `version` (`5.5~beta1`); a variant has
    /// its version's.
    #[serde(default)]
    pub switch: Option<String>,
    /// Unreleased trunk compiler (`ocaml-variants.<full>+trunk`, from the beta repository).
    #[serde(default)]
    pub dev: bool,
    /// Unreleased pre-release (`ocaml-base-compiler.<full>`, from the beta repository).
    #[serde(default)]
    pub beta: bool,
    /// The version `<distro>` and `<family>` alias tags point at.
    #[serde(default)]
    pub latest: bool,
    /// The compiler variant of this column (`flambda`), None for a plain switch. Set by
    /// the catalog's variant rules, never in the file.
    #[serde(skip_deserializing)]
    pub variant: Option<String>,
    /// Arches a variant column is built on (None: every arch of its distros). Set by the
    /// variant rules.
    #[serde(skip_deserializing)]
    pub variant_arches: Option<Vec<String>>,
    /// A variant of a version older than `[variants] options_from`: a package of its own
    /// (`ocaml-variants.4.11.2+flambda`), not an option package. Set by the variant rules.
    #[serde(skip_deserializing)]
    pub variant_package: bool,
}

impl OcamlDef {
    /// The opam switch name: `switch`, else `version`'s M.m part (a variant's switch is its
    /// version's).
    pub fn switch_name(&self) -> &str {
        match &self.switch {
            Some(s) => s,
            None => match &self.variant {
                Some(v) => self
                    .version
                    .strip_suffix(&format!("-{v}"))
                    .unwrap_or(&self.version),
                None => &self.version,
            },
        }
    }

    /// The compiler package list of `opam switch create --packages=` and the package and
    /// version `opam pin add -k version` pins, as the pipeline writes them:
    /// `ocaml-base-compiler.5.4.1`; a dev version `ocaml-variants.5.6.0+trunk`; a variant
    /// `ocaml-variants.5.4.1+options,ocaml-options-only-flambda` (`+trunk` on a dev version),
    /// or before option packages existed `ocaml-variants.4.11.2+flambda`.
    pub fn packages(&self) -> (String, &'static str, String) {
        if let (Some(v), true) = (&self.variant, self.variant_package) {
            let version = format!("{}+{v}", self.full);
            return (
                format!("ocaml-variants.{version}"),
                "ocaml-variants",
                version,
            );
        }
        let variants_version = if self.dev {
            format!("{}+trunk", self.full)
        } else {
            format!("{}+options", self.full)
        };
        match (&self.variant, self.dev) {
            (None, false) => (
                format!("ocaml-base-compiler.{}", self.full),
                "ocaml-base-compiler",
                self.full.clone(),
            ),
            (None, true) => (
                format!("ocaml-variants.{variants_version}"),
                "ocaml-variants",
                variants_version,
            ),
            (Some(v), _) => (
                format!("ocaml-variants.{variants_version},ocaml-options-only-{v}"),
                "ocaml-variants",
                variants_version,
            ),
        }
    }

    /// The column of variant `name` of this version, built on `arches` (None: all).
    fn variant_column(
        &self,
        name: &str,
        arches: Option<Vec<String>>,
        own_package: bool,
    ) -> OcamlDef {
        OcamlDef {
            version: format!("{}-{name}", self.version),
            switch: Some(self.switch_name().to_string()),
            latest: false,
            variant: Some(name.to_string()),
            variant_arches: arches,
            variant_package: own_package,
            ..self.clone()
        }
    }
}

/// One compiler variant and the versions and arches it is built for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantDef {
    /// Tag suffix and option package (`ocaml-options-only-<name>`).
    pub name: String,
    /// The first rule whose range holds a version decides; none: not built for it.
    pub rules: Vec<VariantRule>,
}

/// A version range of a variant, and the arches it is built on there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantRule {
    /// Oldest version (inclusive), `M.m`.
    pub min_ocaml: Option<String>,
    /// First version no longer in the range, `M.m`.
    pub below_ocaml: Option<String>,
    /// None: every arch.
    pub arches: Option<Vec<String>>,
}

impl VariantRule {
    fn holds(&self, version: &str) -> bool {
        let v = version_key(version);
        self.min_ocaml
            .as_deref()
            .is_none_or(|m| v >= version_key(m))
            && self
                .below_ocaml
                .as_deref()
                .is_none_or(|b| v < version_key(b))
    }
}

/// The compiler variants and the distro tiers that build them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantsDef {
    /// Distros of these tiers get the variant columns.
    pub tiers: Vec<u8>,
    /// The first version with `ocaml-options-only-*` packages (`4.12`).
    pub options_from: String,
    /// Every variant, in column order (`[[variants.variant]]` tables).
    #[serde(rename = "variant")]
    pub variants: Vec<VariantDef>,
}

impl VariantsDef {
    /// The arches variant `name` is built on for a version (Some(None): every arch), or
    /// None when it is not built for that version.
    pub fn arches_for(&self, name: &str, version: &str) -> Option<Option<Vec<String>>> {
        let def = self.variants.iter().find(|v| v.name == name)?;
        def.rules
            .iter()
            .find(|r| r.holds(version))
            .map(|r| r.arches.clone())
    }
}

/// An opam repository a compiler image adds (`opam repo add NAME URL --set-default`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepositoryDef {
    /// The name opam knows it by (`beta`).
    pub name: String,
    /// Its URL as opam takes it (`git+https://github.com/ocaml/ocaml-beta-repository`).
    pub url: String,
}

/// The GCC >= 15 patch overlay and when a compiler image adds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GccOverlayDef {
    /// The name opam knows it by (`ocaml-patches-overlay`).
    pub name: String,
    /// Its URL as opam takes it.
    pub url: String,
    /// Distros whose default gcc is at least this.
    pub min_gcc: u32,
    /// Compilers older than this (`M.m`).
    pub below_ocaml: String,
    /// Releases that carry the fixes (`4.14.2`).
    #[serde(default)]
    pub except: Vec<String>,
}

/// Extra opam repositories of compiler images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepositoriesDef {
    /// Added first for dev and beta compilers.
    pub beta: RepositoryDef,
    /// Added for old compilers on distros with a new gcc.
    pub gcc_overlay: GccOverlayDef,
}

/// The opam source-archive image: where it is built and the images it is made from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchiveDef {
    /// The distro whose base image it builds on (`debian-13`, the master distro).
    pub distro: String,
    /// The arch of that base image (`amd64`).
    pub arch: String,
    /// The image the archives are copied into (`alpine:latest`).
    pub image: String,
    /// The previous archive image, whose archives it keeps (`ocaml/opam:archive`).
    pub previous: String,
    /// The legacy opam.ocaml.org archive image.
    pub legacy: String,
}

/// What the catalog says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogInfo {
    /// The pipeline dump it reproduces (`ocurrent/docker-base-images builds.expected,
    /// 2026-05-22`).
    pub reproduces: String,
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
    /// The installed binary is `/usr/bin/opam-<name>` (`2.1`, `dev`).
    pub name: String,
    /// What the builder checks out (a branch, `master`; the context's `opam.checkouts` maps
    /// it to a pinned commit when one is resolved); the builder's binary is `opam-<git_ref>`.
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
    catalog: CatalogInfo,
    opam: OpamDef,
    repositories: RepositoriesDef,
    ocaml: Vec<OcamlDef>,
    variants: VariantsDef,
    archive: ArchiveDef,
    arch: Vec<ArchDef>,
    distro: Vec<DistroDef>,
}

/// Everything the matrix can be made of.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// None for a plan's catalog.
    pub info: Option<CatalogInfo>,
    pub opam: OpamDef,
    /// None for a plan's catalog (its texts carry their repositories).
    pub repositories: Option<RepositoriesDef>,
    /// Every column: each version, followed by its variants (the rules' order).
    pub ocaml: Vec<OcamlDef>,
    /// None for a plan's catalog.
    pub variants: Option<VariantsDef>,
    /// The archive cell's place; None for a plan's catalog (its archive is a job).
    pub archive: Option<ArchiveDef>,
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
        let mut ocaml = Vec::new();
        for o in &file.ocaml {
            ocaml.push(o.clone());
            for v in &file.variants.variants {
                if let Some(arches) = file.variants.arches_for(&v.name, &o.version) {
                    let own_package =
                        version_key(&o.version) < version_key(&file.variants.options_from);
                    ocaml.push(o.variant_column(&v.name, arches, own_package));
                }
            }
        }
        if !distros.iter().any(|d| d.name == file.archive.distro) {
            return Err(format!("archive: unknown distro `{}`", file.archive.distro));
        }
        for v in &file.variants.variants {
            for a in v.rules.iter().flat_map(|r| r.arches.iter().flatten()) {
                if !file.arch.iter().any(|x| &x.name == a) {
                    return Err(format!("variant {}: unknown arch `{a}`", v.name));
                }
            }
        }
        Ok(Catalog {
            info: Some(file.catalog),
            opam: file.opam,
            repositories: Some(file.repositories),
            ocaml,
            variants: Some(file.variants),
            archive: Some(file.archive),
            arches: file.arch,
            distros,
        })
    }

    /// Does this distro build the variant columns (its tier is one of `[variants] tiers`)?
    pub fn builds_variants(&self, distro: &Distro) -> bool {
        self.variants
            .as_ref()
            .is_some_and(|v| v.tiers.contains(&distro.tier))
    }

    /// Is (distro, column, arch) a cell by the catalog's rules: the arch's and the distro's
    /// oldest OCaml, and for a variant the distro's tier and the variant's arches.
    pub fn builds(&self, distro: &Distro, ocaml: &OcamlDef, arch: &ArchDef) -> bool {
        let v = version_key(&ocaml.version);
        if !distro.arches.contains(&arch.name) {
            return false;
        }
        if distro
            .min_ocaml
            .as_deref()
            .is_some_and(|m| v < version_key(m))
            || arch
                .min_ocaml
                .as_deref()
                .is_some_and(|m| v < version_key(m))
        {
            return false;
        }
        if ocaml.variant.is_some() {
            return self.builds_variants(distro)
                && ocaml
                    .variant_arches
                    .as_ref()
                    .is_none_or(|a| a.contains(&arch.name));
        }
        true
    }

    /// The opam repositories a compiler image adds first, in order: the beta repository for
    /// a dev or beta compiler, the GCC >= 15 overlay for an old compiler on a distro whose
    /// default gcc is new enough.
    pub fn repositories_for(&self, distro: &Distro, ocaml: &OcamlDef) -> Vec<RepositoryDef> {
        let Some(repos) = &self.repositories else {
            return vec![];
        };
        let mut out = Vec::new();
        if ocaml.dev || ocaml.beta {
            out.push(repos.beta.clone());
        }
        let o = &repos.gcc_overlay;
        if distro.gcc.is_some_and(|g| g >= o.min_gcc)
            && version_key(&ocaml.version) < version_key(&o.below_ocaml)
            && !o.except.contains(&ocaml.full)
        {
            out.push(RepositoryDef {
                name: o.name.clone(),
                url: o.url.clone(),
            });
        }
        out
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

/// `M.m[.p]` as numbers, for the version rules: a pre-release or variant suffix
/// (`~beta1`, `+flambda`, tag form `-beta1`, `-flambda`) does not count. Unparsable parts
/// count as 0.
pub fn version_key(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split(['.', '~', '+', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column<'a>(c: &'a Catalog, v: &str) -> &'a OcamlDef {
        c.ocaml(v).unwrap_or_else(|| panic!("no column {v}"))
    }

    #[test]
    fn packages_as_the_pipeline_writes_them() {
        let c = Catalog::builtin();
        let p = |v: &str| {
            let o = column(&c, v);
            let (pkgs, pin, pin_version) = o.packages();
            (o.switch_name().to_string(), pkgs, pin, pin_version)
        };
        assert_eq!(
            p("5.4"),
            (
                "5.4".into(),
                "ocaml-base-compiler.5.4.1".into(),
                "ocaml-base-compiler",
                "5.4.1".into()
            )
        );
        assert_eq!(
            p("5.4-flambda"),
            (
                "5.4".into(),
                "ocaml-variants.5.4.1+options,ocaml-options-only-flambda".into(),
                "ocaml-variants",
                "5.4.1+options".into()
            )
        );
        assert_eq!(
            p("5.6-afl"),
            (
                "5.6".into(),
                "ocaml-variants.5.6.0+trunk,ocaml-options-only-afl".into(),
                "ocaml-variants",
                "5.6.0+trunk".into()
            )
        );
        assert_eq!(
            p("5.5-beta1-no-flat-float-array"),
            (
                "5.5~beta1".into(),
                "ocaml-variants.5.5.0~beta1+options,ocaml-options-only-no-flat-float-array".into(),
                "ocaml-variants",
                "5.5.0~beta1+options".into()
            )
        );
        // Before ocaml-options-only-* existed, a variant is a package of its own.
        assert_eq!(
            p("4.11-fp"),
            (
                "4.11".into(),
                "ocaml-variants.4.11.2+fp".into(),
                "ocaml-variants",
                "4.11.2+fp".into()
            )
        );
        assert_eq!(p("5.5").1, "ocaml-variants.5.5.0+trunk");
        assert_eq!(p("5.5-beta1").1, "ocaml-base-compiler.5.5.0~beta1");
    }

    #[test]
    fn beta_repository_and_gcc_overlay_rules() {
        let c = Catalog::builtin();
        let repos = |d: &str, v: &str| -> Vec<String> {
            c.repositories_for(c.distro(d).unwrap(), column(&c, v))
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert!(repos("debian-13", "5.4").is_empty());
        assert_eq!(repos("debian-13", "5.6"), ["beta"]);
        assert_eq!(repos("debian-13", "5.5-beta1-afl"), ["beta"]);
        // gcc 14: no overlay; gcc 15 and 16: every compiler below 5.1.
        assert!(repos("debian-13", "4.11").is_empty());
        assert_eq!(repos("fedora-44", "4.14"), ["ocaml-patches-overlay"]);
        assert_eq!(repos("alpine-3.23", "4.11-fp"), ["ocaml-patches-overlay"]);
        assert!(repos("alpine-3.23", "5.2").is_empty());
        // 4.14.2 carries the fixes.
        let mut d = c.distro("fedora-44").unwrap().clone();
        d.gcc = Some(15);
        let mut o = column(&c, "4.14").clone();
        o.full = "4.14.2".into();
        assert!(c.repositories_for(&d, &o).is_empty());
        d.gcc = None;
        assert!(c.repositories_for(&d, column(&c, "4.11")).is_empty());
    }

    #[test]
    fn bad_catalogs_are_refused() {
        let bad_arch = BUILTIN_CATALOG.replacen(
            "arches = [\"amd64\", \"arm64\"] },",
            "arches = [\"amd64\", \"m68k\"] },",
            1,
        );
        assert_ne!(bad_arch, BUILTIN_CATALOG);
        assert_eq!(
            Catalog::parse(&bad_arch).unwrap_err().0,
            "variant afl: unknown arch `m68k`"
        );
        let set_variant = BUILTIN_CATALOG.replacen(
            "version = \"5.4\"\n",
            "version = \"5.4\"\nvariant = \"x\"\n",
            1,
        );
        // `variant` comes from the rules only.
        let e = Catalog::parse(&set_variant).unwrap_err().0;
        assert!(e.contains("unknown field `variant`"), "{e}");
    }
}
