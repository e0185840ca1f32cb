//! Asking engines for the registry digest of upstream images, without pulling (Engine API
//! `GET /distribution/{name}/json`, bollard's `inspect_registry_image`: the digest of the
//! manifest, or manifest list, the tag names now), and for the digest an image already on
//! an engine was pulled by (its `RepoDigests`). Answers are cached by
//! [`crate::inputs::upstream::UpstreamCache`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Engine, EngineError, EngineErrorKind, EngineSpec};
use crate::inputs::upstream::{UpstreamAnswer, UpstreamCache, Upstreams};

/// How long one distribution question may take (the engine asks the registry).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(30);

impl Engine {
    /// The registry digest (`sha256:...`) `image` names now, asked through this engine
    /// (which reaches the registry with its own network and insecure-registry settings).
    /// Errors: the engine's (registry unreachable, unknown image, no such tag), naming the
    /// engine.
    pub async fn registry_digest(&self, image: &str) -> Result<String, EngineError> {
        let asked = tokio::time::timeout(
            ASK_TIMEOUT,
            self.docker().inspect_registry_image(image, None),
        )
        .await
        .map_err(|_| {
            EngineError::new(
                self.name(),
                EngineErrorKind::Lost,
                format!(
                    "no answer about {image}'s registry digest within {} s",
                    ASK_TIMEOUT.as_secs()
                ),
            )
        })?
        .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        asked.descriptor.digest.ok_or_else(|| {
            EngineError::new(
                self.name(),
                EngineErrorKind::Api,
                format!("the registry answered no digest for {image}"),
            )
        })
    }

    /// What this engine holds of `image` (a tag): nothing, an image built or loaded
    /// locally (no `RepoDigests` entry for its repository), or one pulled by a digest.
    pub async fn local_image(&self, image: &str) -> LocalImage {
        let Ok(inspect) = self.docker().inspect_image(image).await else {
            return LocalImage::Absent;
        };
        let repo = repository(image);
        inspect
            .repo_digests
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.split_once('@'))
            .find(|(r, _)| *r == repo || r.ends_with(&format!("/{repo}")))
            .map(|(_, d)| LocalImage::Pulled(d.to_string()))
            .unwrap_or(LocalImage::Unregistered)
    }
}

/// What an engine holds of an upstream image ([`Engine::local_image`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalImage {
    /// Not on the engine.
    Absent,
    /// Built or loaded there: no registry digest.
    Unregistered,
    /// Pulled from a registry by this digest (`sha256:...`).
    Pulled(String),
}

/// An image reference without its tag or digest (`127.0.0.1:5000/x/up:1` ->
/// `127.0.0.1:5000/x/up`).
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// The answers for `wanted` (upstream image -> arches of the base cells that start FROM it):
/// cached answers still fresh are kept (all asked again when `force`); the others are asked
/// of the first engine of `specs` that builds one of those arches, and the cache is updated.
/// An engine that does not connect, or has no engine for the arches, is an answer with an
/// error (a note, never a reason). Errors: only the cache file's write.
pub async fn check(
    specs: &[EngineSpec],
    wanted: &BTreeMap<String, BTreeSet<String>>,
    cache: &UpstreamCache,
    force: bool,
) -> (Upstreams, Option<String>) {
    let mut answers = cache.load();
    let now = time::OffsetDateTime::now_utc();
    let at = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut engines: BTreeMap<String, Result<Engine, EngineError>> = BTreeMap::new();
    let mut asked = false;
    for (image, arches) in wanted {
        if !force && answers.get(image).is_some_and(|a| cache.fresh(a, now)) {
            continue;
        }
        asked = true;
        let Some(spec) = specs
            .iter()
            .find(|s| s.arches.iter().any(|a| arches.contains(a)))
        else {
            answers.insert(
                image.clone(),
                UpstreamAnswer {
                    digest: None,
                    error: Some(format!(
                        "no engine builds {}",
                        arches.iter().cloned().collect::<Vec<_>>().join(", ")
                    )),
                    engine: String::new(),
                    asked_at: at.clone(),
                },
            );
            continue;
        };
        if !engines.contains_key(&spec.name) {
            engines.insert(spec.name.clone(), Engine::connect(spec).await);
        }
        let result = match &engines[&spec.name] {
            Ok(e) => e.registry_digest(image).await,
            Err(e) => Err(e.clone()),
        };
        let (digest, error) = match result {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(e.to_string())),
        };
        answers.insert(
            image.clone(),
            UpstreamAnswer {
                digest,
                error,
                engine: spec.name.clone(),
                asked_at: at.clone(),
            },
        );
    }
    let saved = if asked {
        cache.save(&answers).err()
    } else {
        None
    };
    (answers, saved)
}

#[cfg(test)]
mod tests {
    #[test]
    fn repository_drops_the_tag_not_the_port() {
        assert_eq!(
            super::repository("127.0.0.1:5000/x/up:1"),
            "127.0.0.1:5000/x/up"
        );
        assert_eq!(
            super::repository("127.0.0.1:5000/x/up"),
            "127.0.0.1:5000/x/up"
        );
        assert_eq!(super::repository("debian:13"), "debian");
        assert_eq!(super::repository("debian@sha256:ab"), "debian");
    }
}
