//! Pinned inputs: the commits the moving refs a recipe names (opam branches, opam-repository
//! master) were resolved to, as one record. The record is stored with every build (JSON, the
//! `inputs_record` column) and is part of a cell's cache key.
//!
//! The record is a JSON object whose keys are all optional, so that later additions (the
//! Dockerfile text id, the base image id, the upstream image digest: see issue 13) are new
//! keys beside these, and old records still read: readers ignore keys they do not know and
//! treat a missing key as "not recorded".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The opam branches the pipeline builds, in order; `master` is the opam-dev build and the
/// bootstrap checkout. Each is pinned to a commit before a build (`master` to the newest
/// release tag, pre-releases included: DOMAIN.md 1.1).
pub const OPAM_REFS: &[&str] = &["2.1", "2.2", "2.3", "2.4", "2.5", "master"];

/// The opam-repository ref the pipeline builds from.
pub const OPAM_REPOSITORY_REF: &str = "master";

/// One resolved git input: where from, which ref, which commit, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedRef {
    /// The repository as configured (URL or path; never with credentials: see
    /// [`redact_url`]).
    pub url: String,
    /// The moving ref (`2.5`, `master`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The full commit id (40 hex digits).
    pub commit: String,
    /// For `master` of opam: the release tag it stands for (`2.5.0-beta1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// RFC 3339 time of the resolution.
    pub resolved_at: String,
}

/// The pinned inputs of one build, or of the whole session: what a recipe's moving refs
/// stand for. Empty maps and `None` mean "not resolved": the text then keeps the ref names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pins {
    /// opam branch (`2.1` ... `2.5`, `master`) -> its resolution.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub opam: BTreeMap<String, ResolvedRef>,
    /// opam-repository at its ref: the base images' build context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opam_repository: Option<ResolvedRef>,
}

impl Pins {
    /// The commit an opam ref is pinned to, if resolved.
    pub fn opam_commit(&self, git_ref: &str) -> Option<&str> {
        self.opam.get(git_ref).map(|r| r.commit.as_str())
    }

    /// The opam-repository commit, if resolved.
    pub fn repository_commit(&self) -> Option<&str> {
        self.opam_repository.as_ref().map(|r| r.commit.as_str())
    }

    /// Nothing resolved.
    pub fn is_empty(&self) -> bool {
        self.opam.is_empty() && self.opam_repository.is_none()
    }

    /// The part of these pins a build with `needs` used: the record stored with it.
    pub fn record(&self, needs: &Needs) -> Pins {
        Pins {
            opam: self
                .opam
                .iter()
                .filter(|(r, _)| needs.opam_refs.iter().any(|n| n == *r))
                .map(|(r, v)| (r.clone(), v.clone()))
                .collect(),
            opam_repository: self
                .opam_repository
                .clone()
                .filter(|_| needs.opam_repository),
        }
    }
}

/// Which inputs a recipe uses (found in its text: see `dockerfile::pins::needs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// opam refs it checks out (a subset of [`OPAM_REFS`]).
    pub opam_refs: Vec<String>,
    /// It copies the build context's root: the opam-repository checkout.
    pub opam_repository: bool,
}

impl Needs {
    /// Uses no pinned input.
    pub fn is_empty(&self) -> bool {
        self.opam_refs.is_empty() && !self.opam_repository
    }
}

/// A URL with any `user:password@` part removed, for logs, errors and records.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_a_url() {
        assert_eq!(
            redact_url("https://me:secret@example.org/o/r.git"),
            "https://example.org/o/r.git"
        );
        assert_eq!(redact_url("https://example.org/x"), "https://example.org/x");
        assert_eq!(redact_url("/srv/git/opam"), "/srv/git/opam");
        assert_eq!(redact_url("file:///srv/git/opam"), "file:///srv/git/opam");
    }

    #[test]
    fn a_record_keeps_only_what_the_build_used_and_reads_back_with_unknown_keys() {
        let r = |git_ref: &str, c: &str| ResolvedRef {
            url: "u".into(),
            git_ref: git_ref.into(),
            commit: c.into(),
            tag: None,
            resolved_at: "t".into(),
        };
        let mut pins = Pins::default();
        pins.opam.insert("2.1".into(), r("2.1", "a"));
        pins.opam.insert("2.5".into(), r("2.5", "b"));
        pins.opam_repository = Some(r("master", "c"));
        let needs = Needs {
            opam_refs: vec!["2.5".into()],
            opam_repository: false,
        };
        let rec = pins.record(&needs);
        assert_eq!(rec.opam.keys().collect::<Vec<_>>(), ["2.5"]);
        assert!(rec.opam_repository.is_none());
        // A later issue adds keys beside these: an old reader still reads the record.
        let mut json = serde_json::to_value(&rec).unwrap();
        json["dockerfile"] = "sha256:x".into();
        let back: Pins = serde_json::from_value(json).unwrap();
        assert_eq!(back, rec);
    }
}
