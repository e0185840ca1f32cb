//! The pieces of a plan: arches, switches, image references, jobs, pushes and sections.
//!
//! Format facts cite ocurrent/docker-base-images (`src/dump.ml`, `src/pipeline.ml`,
//! `src/tag.ml`), whose `base-images --dump` writes the file committed as `builds.expected`.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// A CPU architecture as the dump spells it (ocaml-version's `string_of_arch`, the suffix of
/// every job line `NAME/ARCH`).
///
/// `i386` and `arm32v7` only appear in dumps older than docker-base-images e73e1d6
/// (2026-05-05), which dropped them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Amd64,
    Arm64,
    Ppc64le,
    S390x,
    Riscv64,
    I386,
    Arm32v7,
}

impl Arch {
    /// Every arch a dump may name, in the order the refusal message lists them.
    pub const ALL: [Arch; 7] = [
        Arch::Amd64,
        Arch::Arm64,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Riscv64,
        Arch::I386,
        Arch::Arm32v7,
    ];

    /// The dump's spelling: `amd64`, `arm64`, `ppc64le`, `s390x`, `riscv64`, `i386`, `arm32v7`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
            Arch::I386 => "i386",
            Arch::Arm32v7 => "arm32v7",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Arch {
    type Err = ();

    /// Only the dump's spellings (exact, lower case); `x86_64` or `aarch64` are not arches here.
    fn from_str(s: &str) -> Result<Self, ()> {
        Arch::ALL.into_iter().find(|a| a.as_str() == s).ok_or(())
    }
}

/// The operating system a job's image runs, after its distro: docker-base-images names every
/// Windows distro `windows-…` (`windows-server-mingw-ltsc2025`, `windows-msvc-ltsc2019`) and
/// builds those without BuildKit; everything else is Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    Linux,
    Windows,
}

impl Os {
    /// The OS of a distro named as in the dump.
    pub fn of_distro(distro: &str) -> Os {
        if distro.starts_with("windows") {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// An opam switch as a compiler job line names it (`4.14.3+flambda`, `5.5.0~beta1`, `5.4.1`),
/// with its tag form, the VERSION part of a cell id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Switch {
    written: String,
    tag: String,
}

impl Switch {
    /// A switch from its written form; `None` unless it is `MAJOR.MINOR[.PATCH][SUFFIX]`.
    pub fn parse(written: &str) -> Option<Switch> {
        let tag = version_tag(written)?;
        Some(Switch {
            written: written.to_string(),
            tag,
        })
    }

    /// As the dump writes it: `4.14.3+flambda`.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Tag form, as docker-base-images `Tag.tag_of_compiler` makes it: the patch dropped,
    /// `+` and `~` turned into `-` (`4.14.3+flambda` → `4.14-flambda`, `5.5.0~beta1` →
    /// `5.5-beta1`, `5.4.1` → `5.4`).
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// `MAJOR.MINOR[.PATCH]REST` → `MAJOR.MINOR` + REST with `+`/`~` → `-`; the same rule as
/// fidelity's `version_tag` (`^(\d+)\.(\d+)(?:\.\d+)?(.*)$`).
fn version_tag(s: &str) -> Option<String> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let major = digits(s);
    if major == 0 || s.as_bytes().get(major) != Some(&b'.') {
        return None;
    }
    let after_major = &s[major + 1..];
    let minor = digits(after_major);
    if minor == 0 {
        return None;
    }
    let mut rest = &after_major[minor..];
    if let Some(patch) = rest.strip_prefix('.') {
        let n = digits(patch);
        if n > 0 {
            rest = &patch[n..];
        }
    }
    let rest: String = rest
        .chars()
        .map(|c| if c == '+' || c == '~' { '-' } else { c })
        .collect();
    Some(format!("{}.{}{rest}", &s[..major], &after_major[..minor]))
}

/// An image reference `REPOSITORY:TAG` as the dump writes them (push lines, a compiler's
/// `FROM`); the repository may carry a registry host with a port (`localhost:5000/x/y`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `ocurrent/opam-staging`, `ocaml/opam`.
    pub repository: String,
    /// `debian-13-opam-amd64`, `debian-13-ocaml-5.4`, `latest`.
    pub tag: String,
}

impl ImageRef {
    /// `REPOSITORY:TAG`; `None` without a tag, with an empty part or with whitespace.
    pub fn parse(s: &str) -> Option<ImageRef> {
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            return None;
        }
        let slash = s.rfind('/').map_or(0, |i| i + 1);
        let colon = slash + s[slash..].rfind(':')?;
        let (repository, tag) = (&s[..colon], &s[colon + 1..]);
        if repository.is_empty() || tag.is_empty() || repository.ends_with('/') {
            return None;
        }
        Some(ImageRef {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// What a job builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// The distro's opam image: job line `DISTRO/ARCH`, cell `DISTRO/opam/ARCH`.
    Base,
    /// A compiler image: job line `SWITCH/ARCH`, cell `DISTRO/VERSION/ARCH`, DISTRO being
    /// the base image it starts FROM and VERSION the switch in tag form.
    Compiler(Switch),
    /// The opam source-archive image: a bare `archive` line (no arch), built FROM the master
    /// distro's amd64 base; cell `DISTRO/archive/ARCH` after that base.
    Archive,
}

/// One build job of the dump, with its exact Dockerfile text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub(super) kind: JobKind,
    pub(super) distro: String,
    pub(super) arch: Arch,
    pub(super) cell: String,
    pub(super) text: String,
    pub(super) line: usize,
    pub(super) from: Option<StagingFrom>,
}

/// Where a compiler or archive job names its staging base image in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StagingFrom {
    pub(super) image: ImageRef,
    /// Byte range of the reference in the job's text.
    pub(super) span: Range<usize>,
    /// 1-based line of the `FROM` in the file.
    pub(super) line: usize,
}

impl Job {
    /// Base, compiler (with its switch) or archive.
    pub fn kind(&self) -> &JobKind {
        &self.kind
    }

    /// Linux or Windows, after [`Job::distro`].
    pub fn os(&self) -> Os {
        Os::of_distro(&self.distro)
    }

    /// The distro: a base job's own name; for a compiler or the archive, the distro of the
    /// staging base image it starts FROM (`FROM …opam-staging:DISTRO-opam-ARCH`).
    pub fn distro(&self) -> &str {
        &self.distro
    }

    /// The arch of the job line; the archive's is its base's.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// A compiler job's switch.
    pub fn switch(&self) -> Option<&Switch> {
        match &self.kind {
            JobKind::Compiler(s) => Some(s),
            _ => None,
        }
    }

    /// The VERSION part of the cell id: `opam`, a switch in tag form, or `archive`.
    pub fn version(&self) -> &str {
        match &self.kind {
            JobKind::Base => "opam",
            JobKind::Compiler(s) => s.tag(),
            JobKind::Archive => "archive",
        }
    }

    /// Cell id `DISTRO/VERSION/ARCH`: `debian-13/opam/amd64`, `debian-13/4.14-flambda/amd64`,
    /// `debian-13/archive/amd64` (the ids tools/fidelity.py expects).
    pub fn cell(&self) -> &str {
        &self.cell
    }

    /// The Dockerfile, byte for byte as the pipeline sends it: the dump's lines with the one
    /// TAB that `dump.ml` puts before each non-empty line removed, joined with `\n`. Empty
    /// dump lines up to the next job belong to it (a text ending in `\n` leaves one).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line of the job line (`debian-13/amd64`, `5.4.1/amd64`, `archive`); the text
    /// starts on the next line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The staging base image a compiler or archive job starts FROM, in staging-tag form as
    /// the dump writes it (`ocurrent/opam-staging:debian-13-opam-amd64`); `None` for a base.
    pub fn from_image(&self) -> Option<&ImageRef> {
        self.from.as_ref().map(|f| &f.image)
    }

    /// The image the text's first `FROM` names (flags such as `--platform=` skipped): the
    /// upstream image a base job starts from (`debian:13`,
    /// `mcr.microsoft.com/windows/server:ltsc2025`), the staging base of a compiler.
    pub fn first_from(&self) -> Option<&str> {
        self.text.lines().find_map(|l| {
            let rest = l.trim_start().strip_prefix("FROM ")?;
            rest.split_whitespace().find(|t| !t.starts_with("--"))
        })
    }

    /// 1-based file line of that `FROM`.
    pub fn from_line(&self) -> Option<usize> {
        self.from.as_ref().map(|f| f.line)
    }

    /// The text with the staging base reference of its `FROM` replaced by `image` (e.g. the
    /// exact base image built for it), everything else unchanged; the text itself for a base.
    pub fn text_with_from(&self, image: &str) -> String {
        match &self.from {
            Some(f) => {
                let mut t = String::with_capacity(self.text.len() + image.len());
                t.push_str(&self.text[..f.span.start]);
                t.push_str(image);
                t.push_str(&self.text[f.span.end..]);
                t
            }
            None => self.text.clone(),
        }
    }

    /// The tag the pipeline pushes this job's image under in its staging repository
    /// (`Tag.v distro ?switch ~arch`): `debian-13-opam-amd64`, `debian-13-ocaml-4.14-flambda-amd64`,
    /// and `archive` for the archive. Push lines name these as their sources.
    pub fn staging_tag(&self) -> String {
        match &self.kind {
            JobKind::Base => format!("{}-opam-{}", self.distro, self.arch),
            JobKind::Compiler(s) => format!("{}-ocaml-{}-{}", self.distro, s.tag(), self.arch),
            JobKind::Archive => "archive".to_string(),
        }
    }
}

/// One manifest push, `SOURCES -> TARGET` (docker-base-images `Docker.push_manifest`, noted as
/// `"%a -> %s"` with the sources comma-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The per-arch staging images joined into the manifest, in the dump's order.
    pub sources: Vec<ImageRef>,
    /// The public tag: `ocaml/opam:debian-13-ocaml-5.4`, an alias such as `ocaml/opam:debian`.
    pub target: ImageRef,
    /// 1-based line in the file.
    pub line: usize,
}

/// A header line and what follows it up to the next header: a distro (`debian-13`) or a group
/// (`windows-mingw`). The archive's `archive` line is a job, not a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// As written: `debian-13`, `windows-mingw`.
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    /// Indices into [`super::Plan::jobs`] of the jobs under this header.
    pub jobs: Range<usize>,
    /// Indices into [`super::Plan::pushes`] of the pushes under this header.
    pub pushes: Range<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_follow_fidelity() {
        for (w, t) in [
            ("4.14.3+flambda", "4.14-flambda"),
            ("5.5.0~beta1", "5.5-beta1"),
            (
                "5.5.0~beta1+no-flat-float-array",
                "5.5-beta1-no-flat-float-array",
            ),
            ("4.14.3+flambda+fp", "4.14-flambda-fp"),
            ("5.4.1", "5.4"),
            ("5.4", "5.4"),
            ("4.02.3", "4.02"),
        ] {
            assert_eq!(Switch::parse(w).unwrap().tag(), t, "{w}");
        }
        for bad in ["5", "5.", ".4", "5.x", "beta"] {
            assert_eq!(Switch::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn image_refs() {
        let r = ImageRef::parse("localhost:5000/imagegrid/opam:debian-13").unwrap();
        assert_eq!(
            (r.repository.as_str(), r.tag.as_str()),
            ("localhost:5000/imagegrid/opam", "debian-13")
        );
        assert_eq!(r.to_string(), "localhost:5000/imagegrid/opam:debian-13");
        for bad in ["ocaml/opam", "localhost:5000/opam", ":x", "a:", "a b:c", ""] {
            assert_eq!(ImageRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn arches_round_trip() {
        for a in Arch::ALL {
            assert_eq!(a.as_str().parse::<Arch>(), Ok(a));
        }
        assert!("x86_64".parse::<Arch>().is_err());
    }
}
