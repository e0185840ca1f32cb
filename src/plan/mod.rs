//! A pipeline plan: the dump of ocurrent/docker-base-images (`base-images --dump`, committed
//! there as `builds.expected`), parsed into its jobs, with their exact Dockerfile texts, and
//! its manifest pushes. Pure: no I/O but [`Plan::load`]'s one read, nothing from the rest of
//! the crate.
//!
//! The layout, as `src/dump.ml` writes it (each note one line, nested notes indented by TAB,
//! empty lines never indented):
//!
//! ```text
//! debian-13                          a header: a distro, or a group (windows-mingw)
//! debian-13/amd64                    a base job DISTRO/ARCH
//! <TAB># syntax=docker/dockerfile:1  its Dockerfile, one TAB before each non-empty line
//!
//! 5.4.1/amd64                        a compiler job SWITCH/ARCH, FROM a staging base image
//! <TAB>FROM ocurrent/opam-staging:debian-13-opam-amd64
//! archive                            the archive job (no arch), FROM a staging base image
//! <TAB>…
//! ocurrent/opam-staging:debian-13-ocaml-5.4-amd64, … -> ocaml/opam:debian-13-ocaml-5.4
//! ```
//!
//! Cell ids follow tools/fidelity.py: `DISTRO/opam/ARCH`, `DISTRO/VERSION/ARCH` (VERSION: the
//! switch in tag form) and `DISTRO/archive/ARCH`, where a compiler's or the archive's DISTRO
//! is the base image it starts FROM.

pub mod diff;
mod job;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use diff::PlanDiff;
pub use job::{Arch, ImageRef, Job, JobKind, Os, Push, Section, Switch};

/// Why a file is not a usable plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A fault at a line of the file: `file:line: message`.
    #[error("{file}:{line}: {message}")]
    At {
        /// The file as the caller named it.
        file: String,
        /// 1-based line.
        line: usize,
        message: String,
    },
    /// The file could not be read.
    #[error("cannot read plan {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl PlanError {
    /// The 1-based line of an [`PlanError::At`].
    pub fn line(&self) -> Option<usize> {
        match self {
            PlanError::At { line, .. } => Some(*line),
            PlanError::Read { .. } => None,
        }
    }
}

/// A parsed dump: sections, jobs and pushes in file order, with lookups.
#[derive(Debug, Clone)]
pub struct Plan {
    path: PathBuf,
    sections: Vec<Section>,
    jobs: Vec<Job>,
    pushes: Vec<Push>,
    by_cell: HashMap<String, usize>,
    by_staging_tag: HashMap<String, usize>,
    /// For each job, the index of the base job it starts FROM (compilers and the archive).
    bases: Vec<Option<usize>>,
}

impl Plan {
    /// Read and parse the dump at `path`; errors name the file as `path` displays.
    pub fn load(path: impl AsRef<Path>) -> Result<Plan, PlanError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| PlanError::Read {
            file: path.display().to_string(),
            source,
        })?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => Plan::parse(path, text),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                Err(PlanError::At {
                    file: path.display().to_string(),
                    line,
                    message: "not UTF-8 text, so not a dump (base-images --dump output)".into(),
                })
            }
        }
    }

    /// Parse dump text; `path` is only used to name the file in errors and [`Plan::path`].
    ///
    /// Refuses, as `file:line: message`: a text that is not a dump (empty, TOML, a line of no
    /// known shape, CRLF endings), a job without Dockerfile lines, an arch outside
    /// [`Arch::ALL`], a switch not `MAJOR.MINOR…`, a compiler or archive job whose staging
    /// `FROM` is missing or names a base job the file does not have, two jobs with one cell id,
    /// a malformed push. One fault is reported: the first reading top to bottom; bases are
    /// matched once the whole file is read (a base may come after its compilers).
    pub fn parse(path: &Path, text: &str) -> Result<Plan, PlanError> {
        parse::parse(path, text)
    }

    /// The path the plan was parsed as.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Headers in file order, each with the jobs and pushes under it.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Jobs in file order.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// Manifest pushes in file order; their targets are the public tags. Old dumps may push
    /// one target twice (2021 Windows aliases), so a target need not be unique.
    pub fn pushes(&self) -> &[Push] {
        &self.pushes
    }

    /// The job of a cell id (`debian-13/4.14-flambda/amd64`).
    pub fn job(&self, cell: &str) -> Option<&Job> {
        self.by_cell.get(cell).map(|&i| &self.jobs[i])
    }

    /// The base job a compiler or the archive starts FROM (matched by its staging tag
    /// `DISTRO-opam-ARCH`), looked up by the job's cell id; `None` for a base job.
    pub fn base_of(&self, job: &Job) -> Option<&Job> {
        let i = *self.by_cell.get(job.cell())?;
        self.bases[i].map(|b| &self.jobs[b])
    }

    /// The job whose staging image a push source names, matched by tag
    /// ([`Job::staging_tag`]) whatever the repository.
    pub fn job_for_source(&self, source: &ImageRef) -> Option<&Job> {
        self.by_staging_tag.get(&source.tag).map(|&i| &self.jobs[i])
    }

    /// Every public tag with the staging images it joins, in file order (duplicates kept).
    pub fn public_tags(&self) -> impl Iterator<Item = (&ImageRef, &[ImageRef])> {
        self.pushes
            .iter()
            .map(|p| (&p.target, p.sources.as_slice()))
    }

    /// The pushes to a public tag given as `REPOSITORY:TAG` (`ocaml/opam:latest`).
    pub fn pushes_to<'a>(&'a self, target: &'a str) -> impl Iterator<Item = &'a Push> + 'a {
        self.pushes.iter().filter(move |p| {
            target
                .strip_prefix(p.target.repository.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                == Some(p.target.tag.as_str())
        })
    }
}
