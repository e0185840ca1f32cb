//! Resolving the moving refs recipes name to commits, as the live pipeline does weekly:
//! opam's branches 2.1 ... 2.5 at their heads and `master` at the newest release tag
//! (pre-releases included), opam-repository's master. Through the system `git` (see
//! [`git`]). The last resolution is cached in `DATA_DIR/inputs/resolved.json` and stays valid
//! for `[inputs] refresh`; opam-repository is cloned once into `DATA_DIR/inputs/opam-repository`
//! and checked out (detached, with its `.git`) at the resolved commit: the base images'
//! build context.
//!
//! Blocking (git runs as a child process): call it off any event loop.

pub mod git;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::LoadedConfig;
use crate::model::inputs::{redact_url, Needs, Pins, ResolvedRef, OPAM_REFS, OPAM_REPOSITORY_REF};

/// The name of the opam input (in errors, `imagegrid inputs`).
pub const OPAM: &str = "opam";
/// The name of the opam-repository input.
pub const OPAM_REPOSITORY: &str = "opam-repository";

/// An input that could not be resolved: names the input and its URL (credentials removed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input {input} ({url}): {message}")]
pub struct InputError {
    /// `opam` or `opam-repository`.
    pub input: String,
    /// The configured location, without credentials.
    pub url: String,
    /// What failed: git's own last lines (`Could not resolve host: github.com`).
    pub message: String,
}

/// Where the inputs come from and where their state lives.
#[derive(Debug, Clone)]
pub struct InputSources {
    /// opam's location as git takes it (URL, or an absolute path).
    pub opam: String,
    /// opam-repository's location as git takes it.
    pub opam_repository: String,
    /// How long a resolution stays valid.
    pub refresh: Duration,
    /// `DATA_DIR/inputs`.
    pub dir: PathBuf,
}

impl InputSources {
    /// The config's `[inputs]` (paths relative to the config file) and data directory.
    pub fn from_config(loaded: &LoadedConfig) -> InputSources {
        let i = &loaded.config.inputs;
        InputSources {
            opam: loaded.input_location(i.opam.get_ref()),
            opam_repository: loaded.input_location(i.opam_repository.get_ref()),
            refresh: i.refresh,
            dir: loaded.data_dir().join("inputs"),
        }
    }

    /// The opam-repository checkout (the base images' build context).
    pub fn checkout_dir(&self) -> PathBuf {
        self.dir.join("opam-repository")
    }

    /// Whether the checkout holds a commit yet: a fresh data dir has none, nor does one
    /// whose first fetch failed (offline), where only an empty clone was made.
    pub fn has_checkout(&self) -> bool {
        let dir = self.checkout_dir();
        dir.join(".git").is_dir()
            && git::git(Some(&dir), &["rev-parse", "-q", "--verify", "HEAD"]).is_ok()
    }

    fn cache_file(&self) -> PathBuf {
        self.dir.join("resolved.json")
    }

    /// The last resolution, whatever its age; no network. Only entries resolved from the
    /// configured locations count (a changed `[inputs]` URL is unresolved until resolved).
    pub fn cached(&self) -> Pins {
        let mut pins: Pins = std::fs::read(self.cache_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let opam = redact_url(&self.opam);
        pins.opam.retain(|_, r| r.url == opam);
        let repo = redact_url(&self.opam_repository);
        pins.opam_repository = pins.opam_repository.filter(|r| r.url == repo);
        pins
    }

    fn save(&self, pins: &Pins) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let tmp = self.dir.join("resolved.json.tmp");
        let text = serde_json::to_vec_pretty(pins).unwrap_or_default();
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, self.cache_file()))
            .map_err(|e| format!("cannot write {}: {e}", self.cache_file().display()))
    }

    /// Pins for what `needs` asks, resolving again what is missing or older than `refresh`
    /// (everything asked when `force`). Each input resolves on its own: one unreachable
    /// source is an [`InputError`] and leaves the other's pins (and its last cached
    /// resolution, kept for display) as they are. The opam-repository checkout is moved to
    /// its pinned commit whenever it is elsewhere.
    pub fn resolve(&self, needs: &Needs, force: bool) -> (Pins, Vec<InputError>) {
        let mut pins = self.cached();
        let mut errors = Vec::new();
        let now = time::OffsetDateTime::now_utc();
        let fresh = |r: &ResolvedRef| {
            !force
                && time::OffsetDateTime::parse(
                    &r.resolved_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_ok_and(|t| now - t < self.refresh)
        };
        let opam_fresh = needs
            .opam_refs
            .iter()
            .all(|r| pins.opam.get(r).is_some_and(fresh));
        if !needs.opam_refs.is_empty() && !opam_fresh {
            match self.resolve_opam(&needs.opam_refs) {
                // Refs resolved earlier and not asked for now keep their last resolution.
                Ok(refs) => pins.opam.extend(refs),
                Err(e) => errors.push(e),
            }
        }
        if needs.opam_repository {
            let keep = pins.opam_repository.as_ref().filter(|r| fresh(r)).cloned();
            let result = match keep {
                Some(r) => self.check_out(&r.commit).map(|_| r),
                None => self.resolve_repository(),
            };
            match result {
                Ok(r) => pins.opam_repository = Some(r),
                Err(e) => errors.push(e),
            }
        }
        if let Err(message) = self.save(&pins) {
            errors.push(InputError {
                input: "cache".into(),
                url: self.cache_file().display().to_string(),
                message,
            });
        }
        (pins, errors)
    }

    fn opam_error(&self, message: String) -> InputError {
        InputError {
            input: OPAM.into(),
            url: redact_url(&self.opam),
            message,
        }
    }

    fn repository_error(&self, message: String) -> InputError {
        InputError {
            input: OPAM_REPOSITORY.into(),
            url: redact_url(&self.opam_repository),
            message,
        }
    }

    /// The opam refs asked for (of [`OPAM_REFS`]), from one `git ls-remote`.
    fn resolve_opam(
        &self,
        wanted: &[String],
    ) -> Result<std::collections::BTreeMap<String, ResolvedRef>, InputError> {
        let refs = git::ls_remote(&self.opam).map_err(|m| self.opam_error(m))?;
        let at = now();
        let url = redact_url(&self.opam);
        let mut out = std::collections::BTreeMap::new();
        for r in OPAM_REFS.iter().filter(|r| wanted.iter().any(|w| w == *r)) {
            let (commit, tag) = if *r == "master" {
                let (tag, commit) = git::newest_release(&refs).ok_or_else(|| {
                    self.opam_error(
                        "no release tag (MAJOR.MINOR[.PATCH][-beta1]) to pin master to".into(),
                    )
                })?;
                (commit, Some(tag))
            } else {
                let head = format!("refs/heads/{r}");
                let commit = refs
                    .iter()
                    .find(|(n, _)| *n == head)
                    .map(|(_, c)| c.clone())
                    .ok_or_else(|| self.opam_error(format!("no branch {r}")))?;
                (commit, None)
            };
            out.insert(
                r.to_string(),
                ResolvedRef {
                    url: url.clone(),
                    git_ref: r.to_string(),
                    commit,
                    tag,
                    resolved_at: at.clone(),
                },
            );
        }
        Ok(out)
    }

    /// Fetch opam-repository's ref into the local clone and check it out.
    fn resolve_repository(&self) -> Result<ResolvedRef, InputError> {
        let dir = self.checkout_dir();
        self.ensure_clone(&dir)?;
        git::git(
            Some(&dir),
            &[
                "fetch",
                "-q",
                "--no-tags",
                &self.opam_repository,
                OPAM_REPOSITORY_REF,
            ],
        )
        .map_err(|m| self.repository_error(format!("cannot fetch {OPAM_REPOSITORY_REF}: {m}")))?;
        let commit = git::git(Some(&dir), &["rev-parse", "FETCH_HEAD"])
            .map_err(|m| self.repository_error(m))?
            .trim()
            .to_string();
        self.check_out(&commit)?;
        Ok(ResolvedRef {
            url: redact_url(&self.opam_repository),
            git_ref: OPAM_REPOSITORY_REF.into(),
            commit,
            tag: None,
            resolved_at: now(),
        })
    }

    fn ensure_clone(&self, dir: &Path) -> Result<(), InputError> {
        if dir.join(".git").is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| self.repository_error(format!("cannot create {}: {e}", dir.display())))?;
        git::git(Some(dir), &["init", "-q"])
            .map(|_| ())
            .map_err(|m| self.repository_error(m))
    }

    /// Make the checkout hold exactly `commit` (fetching it if the clone lacks it), clean.
    pub fn check_out(&self, commit: &str) -> Result<(), InputError> {
        let dir = self.checkout_dir();
        self.ensure_clone(&dir)?;
        let head =
            git::git(Some(&dir), &["rev-parse", "-q", "--verify", "HEAD"]).unwrap_or_default();
        let status = git::git(
            Some(&dir),
            &["status", "--porcelain", "--untracked-files=all"],
        )
        .unwrap_or_else(|_| "?".into());
        if head.trim() == commit && status.trim().is_empty() {
            return Ok(());
        }
        let have = git::git(
            Some(&dir),
            &["cat-file", "-e", &format!("{commit}^{{commit}}")],
        )
        .is_ok();
        if !have {
            git::git(
                Some(&dir),
                &[
                    "fetch",
                    "-q",
                    "--no-tags",
                    &self.opam_repository,
                    OPAM_REPOSITORY_REF,
                ],
            )
            .map_err(|m| {
                self.repository_error(format!("cannot fetch {OPAM_REPOSITORY_REF}: {m}"))
            })?;
        }
        git::git(
            Some(&dir),
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "--force",
                "--detach",
                commit,
            ],
        )
        .and_then(|_| git::git(Some(&dir), &["clean", "-q", "-f", "-d", "-x"]))
        .map(|_| ())
        .map_err(|m| self.repository_error(format!("cannot check out {commit}: {m}")))
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
