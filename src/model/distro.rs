//! How a distro is described: in the built-in catalog (`assets/matrix.toml`) and in a
//! config's `[[distro]]` tables, which patch or extend it.

use serde::{Deserialize, Serialize};

/// Package-manager family; picks the template family that renders a distro.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Apt,
    Apk,
    #[serde(alias = "yum")]
    Dnf,
    Zypper,
    Pacman,
}

impl Family {
    /// The template directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Apt => "apt",
            Family::Apk => "apk",
            Family::Dnf => "dnf",
            Family::Zypper => "zypper",
            Family::Pacman => "pacman",
        }
    }
    /// Every family, for template listings and tests.
    pub const ALL: [Family; 5] = [
        Family::Apt,
        Family::Apk,
        Family::Dnf,
        Family::Zypper,
        Family::Pacman,
    ];
}

/// Whether a distro is built by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistroStatus {
    #[default]
    Active,
    /// Known (old configs still load) but left out unless named.
    Deprecated,
    /// Newer than the pipeline dump the built-in catalog reproduces: known, left out unless
    /// named.
    Preview,
}

/// One distro as the catalog or a config `[[distro]]` table describes it.
/// In a config every field but `name` is optional: a known name is patched, a new one needs `base` and `family`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistroDef {
    pub name: String,
    pub base: Option<String>,
    pub family: Option<Family>,
    pub tier: Option<u8>,
    pub status: Option<DistroStatus>,
    /// Family alias tag (`debian`, `ubuntu`) this distro takes when it is the newest of its family.
    pub alias: Option<String>,
    /// The master distro gets the `latest` tag.
    pub master: Option<bool>,
    /// Also answers to `<alias>-lts`.
    pub lts: Option<bool>,
    pub arches: Option<Vec<String>>,
    pub quirks: Option<Vec<String>>,
    /// Oldest OCaml version built on this distro.
    pub min_ocaml: Option<String>,
    /// Major version of the distro's default gcc (`15`): old compilers get the GCC >= 15
    /// patch overlay on 15 and newer.
    pub gcc: Option<u32>,
}
