//! Publish built images to a registry the way the official images are published: each arch is
//! pushed from the engine that built it to the staging repository, then the arches of each
//! public tag are joined into one multi-arch manifest list in the public repository, then the
//! aliases are pointed at those lists.
//!
//! - [`plan`]: which tags a selection publishes and what each points to (pure).
//! - [`auth`]: the registry credentials, resolved once, never printed.
//! - [`registry`]: the registry client (oci-client), with retries on HTTP 429 and 5xx.
//! - [`publish`] (here): the orchestration, emitting [`PublishEvent`]s for both faces and
//!   writing them to a publish log beside the build logs.
//!
//! Order matters for "nothing half-published": the credentials are checked before anything is
//! written; every per-arch push happens before any public tag is touched; a public tag is put
//! only when all its arches are in the registry, and an alias only after its target.

pub mod auth;
pub mod plan;
pub mod registry;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use tokio::sync::mpsc;

use crate::engine::push::PushError;
use crate::engine::{normalise_arch, Engine, EngineSpec};
use crate::store::StoreHandle;
pub use auth::{Credentials, Secret};
pub use plan::{plan, AliasTag, ArchSource, Built, PlanError, PublicTag, TagLine, TagPlan};
use registry::{ImagePlatform, Registry, RegistryError, RegistryErrorKind, StoredManifest};
pub use registry::{RetryPolicy, Transient};

/// Something that happened during a publish. Serialised as one JSON object per line by
/// `publish --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PublishEvent {
    /// What this publish will do.
    Planned {
        registry: String,
        /// Public tags that can be published.
        tags: usize,
        aliases: usize,
        /// Per-arch pushes.
        pushes: usize,
        /// Where the credentials come from (never the secret), or `anonymous`.
        credentials: String,
    },
    /// A tag or alias that is not published, and why.
    NotPublished { tag: String, reason: String },
    /// A per-arch push began (`index` of `total`, 1-based).
    PushStarted {
        cell: String,
        engine: String,
        reference: String,
        index: usize,
        total: usize,
    },
    /// A per-arch image is in the staging repository.
    Pushed {
        cell: String,
        engine: String,
        reference: String,
        digest: String,
        /// Uncompressed bytes (the engine's size).
        size: Option<i64>,
        /// The sum of the manifest's layers as stored.
        compressed_size: i64,
        secs: f64,
    },
    /// A per-arch push failed; its tag is not published.
    PushFailed {
        cell: String,
        reference: String,
        error: String,
    },
    /// A registry operation failed in a way that may pass, and is tried again.
    Retrying {
        what: String,
        attempt: u32,
        wait_secs: f64,
        reason: String,
    },
    /// A public tag now names a multi-arch manifest list.
    ManifestPushed {
        tag: String,
        reference: String,
        digest: String,
        media_type: String,
        /// `linux/amd64`, `linux/arm64/v8`, ...
        platforms: Vec<String>,
        secs: f64,
    },
    /// An alias now names the same list as its target.
    AliasPushed {
        tag: String,
        reference: String,
        target: String,
        digest: String,
    },
    /// The end.
    Done(PublishSummary),
}

/// How a publish ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PublishSummary {
    /// Public tags published.
    pub tags: Vec<String>,
    /// Aliases published.
    pub aliases: Vec<String>,
    /// Tags and aliases not published, with the reason.
    pub not_published: Vec<(String, String)>,
    /// Per-arch pushes done.
    pub pushes: usize,
    pub duration_secs: f64,
    /// The publish log.
    pub log: Option<String>,
}

impl PublishSummary {
    /// Was everything planned published?
    pub fn all_published(&self) -> bool {
        self.not_published.is_empty()
    }
}

impl PublishEvent {
    /// The event as one human line (the CLI, the publish log, the TUI's status line).
    pub fn line(&self) -> String {
        match self {
            PublishEvent::Planned {
                registry,
                tags,
                aliases,
                pushes,
                credentials,
            } => format!(
                "publishing {} and {} to {} ({}); credentials: {credentials}",
                crate::util::words::count(*tags, "tag", "tags"),
                crate::util::words::count(*aliases, "alias", "aliases"),
                auth::display_registry(registry),
                crate::util::words::count(*pushes, "per-arch push", "per-arch pushes")
            ),
            PublishEvent::NotPublished { tag, reason } => {
                format!("{tag}: not published: {reason}")
            }
            PublishEvent::PushStarted {
                cell,
                engine,
                reference,
                index,
                total,
            } => format!("push {index}/{total}: {cell} from engine {engine} to {reference}"),
            PublishEvent::Pushed {
                cell,
                digest,
                size,
                compressed_size,
                secs,
                ..
            } => format!(
                "pushed {cell}: {digest}, {} compressed ({} uncompressed) in {secs:.1}s",
                crate::util::units::human_size(*compressed_size),
                size.map(crate::util::units::human_size)
                    .unwrap_or_else(|| "?".into())
            ),
            PublishEvent::PushFailed {
                cell,
                reference,
                error,
            } => format!("push of {cell} to {reference} failed: {error}"),
            PublishEvent::Retrying {
                what,
                attempt,
                wait_secs,
                reason,
            } => format!("{what}: retry {attempt} in {wait_secs:.1}s after: {reason}"),
            PublishEvent::ManifestPushed {
                reference,
                digest,
                platforms,
                secs,
                ..
            } => format!(
                "published {reference} -> {digest} ({}) in {secs:.1}s",
                platforms.join(", ")
            ),
            PublishEvent::AliasPushed {
                reference,
                target,
                digest,
                ..
            } => format!("published alias {reference} = {target} ({digest})"),
            PublishEvent::Done(s) => format!(
                "done: {} and {} published, {} not published, {} in {:.1}s{}",
                crate::util::words::count(s.tags.len(), "tag", "tags"),
                crate::util::words::count(s.aliases.len(), "alias", "aliases"),
                s.not_published.len(),
                crate::util::words::count(s.pushes, "push", "pushes"),
                s.duration_secs,
                s.log
                    .as_ref()
                    .map(|l| format!("; log {l}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// A publish that stopped: the credentials or the registry failed. Public tags already put
/// (none when the credentials are refused at the start) stay.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Credentials(#[from] auth::AuthError),
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The registry refused the credentials during a push from an engine.
    #[error("registry {registry}: pushing {reference} from engine {engine}: {message}")]
    PushRefused {
        registry: String,
        reference: String,
        engine: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Transient for PushError {
    fn is_transient(&self) -> bool {
        matches!(self, PushError::Retryable(_))
    }
}

/// Sends events and appends their lines to the publish log.
struct Emitter<'a> {
    tx: &'a mpsc::UnboundedSender<PublishEvent>,
    log: Option<(std::fs::File, PathBuf)>,
}

impl<'a> Emitter<'a> {
    fn emit(&mut self, ev: PublishEvent) {
        if let Some((f, _)) = self.log.as_mut() {
            let stamp = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let _ = writeln!(f, "{stamp} {}", ev.line());
        }
        let _ = self.tx.send(ev);
    }

    fn retry_reporter<'b, E: std::fmt::Display>(
        &'b mut self,
        what: &'b str,
    ) -> impl FnMut(u32, std::time::Duration, &E) + use<'a, 'b, E> {
        move |attempt, wait, e| {
            self.emit(PublishEvent::Retrying {
                what: what.to_string(),
                attempt,
                wait_secs: wait.as_secs_f64(),
                reason: e.to_string(),
            })
        }
    }
}

/// The repository path without the registry host.
fn path_of<'a>(registry: &str, repo: &'a str) -> &'a str {
    if registry.is_empty() {
        return repo;
    }
    repo.strip_prefix(registry)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(repo)
}

/// `linux/arm64/v8` from an image config.
fn platform_name(p: &ImagePlatform) -> String {
    let mut s = match &p.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
        _ => format!("{}/{}", p.os, p.architecture),
    };
    if let Some(v) = p.os_version.as_deref().filter(|v| !v.is_empty()) {
        s.push_str(&format!(" (os.version {v})"));
    }
    s
}

/// A manifest list may hold each platform once: with two, which one a client pulls is
/// unpredictable (moby/moby#41507). A platform is os, architecture, variant and os.version
/// (the pipeline's windows lists join windows/amd64 images that differ by os.version).
fn check_platforms_unique(entries: &[(&StoredManifest, &ImagePlatform)]) -> Result<(), String> {
    let key = |p: &ImagePlatform| {
        (
            p.os.clone(),
            crate::engine::normalise_arch(&p.architecture),
            p.variant.clone().filter(|v| !v.is_empty()),
            p.os_version.clone().filter(|v| !v.is_empty()),
        )
    };
    let mut seen = std::collections::HashMap::new();
    for (m, p) in entries {
        if let Some(first) = seen.insert(key(p), &m.digest) {
            return Err(format!(
                "platform {} twice ({first} and {}); a list holds each platform once",
                platform_name(p),
                m.digest
            ));
        }
    }
    Ok(())
}

/// The manifest list (Docker's when every entry is a Docker manifest, else an OCI index) that
/// joins per-arch manifests: its bytes, media type and digest.
/// Errors: two entries of one platform (see `check_platforms_unique`).
pub(crate) fn manifest_list(
    entries: &[(&StoredManifest, &ImagePlatform)],
) -> Result<(Vec<u8>, String, String), String> {
    check_platforms_unique(entries)?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct List<'a> {
        schema_version: u32,
        media_type: &'a str,
        manifests: Vec<Entry<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry<'a> {
        media_type: &'a str,
        size: usize,
        digest: &'a str,
        platform: Platform<'a>,
    }
    #[derive(Serialize)]
    struct Platform<'a> {
        architecture: &'a str,
        os: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        variant: Option<&'a str>,
        #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
        os_version: Option<&'a str>,
    }
    let docker = entries
        .iter()
        .all(|(m, _)| m.media_type == registry::DOCKER_MANIFEST);
    let media_type = if docker {
        registry::DOCKER_MANIFEST_LIST
    } else {
        registry::OCI_INDEX
    };
    let list = List {
        schema_version: 2,
        media_type,
        manifests: entries
            .iter()
            .map(|(m, p)| Entry {
                media_type: &m.media_type,
                size: m.bytes.len(),
                digest: &m.digest,
                platform: Platform {
                    architecture: &p.architecture,
                    os: &p.os,
                    variant: p.variant.as_deref().filter(|v| !v.is_empty()),
                    os_version: p.os_version.as_deref().filter(|v| !v.is_empty()),
                },
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&list).expect("a manifest list serialises");
    let digest = crate::util::digest::sha256_digest(&bytes);
    Ok((bytes, media_type.to_string(), digest))
}

/// Everything a publish needs besides the plan.
pub struct PublishContext<'a> {
    /// Every configured engine (the one that built an image pushes it).
    pub engines: Vec<EngineSpec>,
    pub credentials: Option<Credentials>,
    pub retry: RetryPolicy,
    /// The history: where compressed sizes go, and beside which the publish log is written.
    pub store: &'a StoreHandle,
}

/// Publish a plan. Tags that cannot be published (arches not built, a failed push) are
/// reported and skipped; credentials or registry failures stop the publish with an error.
pub async fn publish(
    plan: &TagPlan,
    ctx: PublishContext<'_>,
    events: &mpsc::UnboundedSender<PublishEvent>,
) -> Result<PublishSummary, PublishError> {
    let start = Instant::now();
    let log = open_log(ctx.store);
    let mut out = Emitter { tx: events, log };
    let mut summary = PublishSummary {
        log: out.log.as_ref().map(|(_, p)| p.display().to_string()),
        ..Default::default()
    };
    let result = run(plan, &ctx, &mut out, &mut summary).await;
    summary.duration_secs = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            out.emit(PublishEvent::Done(summary.clone()));
            Ok(summary)
        }
        Err(e) => {
            if let Some((f, _)) = out.log.as_mut() {
                let _ = writeln!(f, "stopped: {e}");
            }
            Err(e)
        }
    }
}

/// `logs/publish-<time>.log` in the data directory; None if it cannot be made (the events
/// still flow).
fn open_log(store: &StoreHandle) -> Option<(std::fs::File, PathBuf)> {
    let dir = store.dir().join("logs");
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .ok()?;
    let path = dir.join(format!("publish-{stamp}-{}.log", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    Some((f, path))
}

/// One arch pushed to staging, with what the registry holds for it.
struct Staged {
    manifest: StoredManifest,
    platform: ImagePlatform,
}

async fn run(
    plan: &TagPlan,
    ctx: &PublishContext<'_>,
    out: &mut Emitter<'_>,
    summary: &mut PublishSummary,
) -> Result<(), PublishError> {
    let publishable: Vec<&PublicTag> = plan.publishable().collect();
    let aliases: Vec<&AliasTag> = plan
        .aliases
        .iter()
        .filter(|a| plan.alias_blocked(a).is_none())
        .collect();
    out.emit(PublishEvent::Planned {
        registry: plan.registry.clone(),
        tags: publishable.len(),
        aliases: aliases.len(),
        pushes: plan.pushes(),
        credentials: ctx
            .credentials
            .as_ref()
            .map(|c| format!("user {} from {}", c.username, c.source))
            .unwrap_or_else(|| "anonymous".into()),
    });
    for t in &plan.tags {
        if let Some(reason) = t.blocked() {
            not_published(out, summary, &t.tag, reason);
        }
    }
    for a in &plan.aliases {
        if let Some(reason) = plan.alias_blocked(a) {
            not_published(out, summary, &a.tag, reason);
        }
    }
    if publishable.is_empty() {
        return Ok(());
    }

    let registry = Registry::new(&plan.registry, ctx.credentials.as_ref());
    let staging = path_of(&plan.registry, &plan.staging_repo);
    let public = path_of(&plan.registry, &plan.public_repo);
    // Nothing is written before the registry has taken the credentials for both repositories.
    registry.check(staging).await?;
    if public != staging {
        registry.check(public).await?;
    }

    // 1. Every arch of every publishable tag into the staging repository.
    let mut engines: HashMap<String, Result<Engine, String>> = HashMap::new();
    let total = plan.pushes();
    let mut index = 0;
    let mut staged: Vec<(&PublicTag, Vec<Staged>)> = Vec::new();
    'tags: for tag in &publishable {
        let mut arches = Vec::new();
        for a in &tag.arches {
            index += 1;
            let built = a
                .built
                .as_ref()
                .expect("publishable tags have every arch built");
            let engine = match engines.get(&built.engine) {
                Some(e) => e.clone(),
                None => {
                    let e = match ctx.engines.iter().find(|s| s.name == built.engine) {
                        Some(spec) => Engine::connect(spec).await.map_err(|e| e.to_string()),
                        None => Err(format!(
                            "engine {} (which built it) is not configured any more",
                            built.engine
                        )),
                    };
                    engines.insert(built.engine.clone(), e.clone());
                    e
                }
            };
            out.emit(PublishEvent::PushStarted {
                cell: a.cell.clone(),
                engine: built.engine.clone(),
                reference: a.staging.clone(),
                index,
                total,
            });
            let t0 = Instant::now();
            let pushed = match engine {
                Err(e) => Err(e),
                Ok(engine) => {
                    match push_one(&engine, a, built, ctx, &registry, staging, out).await {
                        Ok(s) => Ok(s),
                        Err(StepError::Fatal(e)) => return Err(e),
                        Err(StepError::Failed(e)) => Err(e),
                    }
                }
            };
            match pushed {
                Ok(s) => {
                    let compressed = s.manifest.compressed_size();
                    let build_id = built.build_id;
                    ctx.store
                        .try_call(move |s| s.set_compressed_size(build_id, compressed))
                        .await?;
                    summary.pushes += 1;
                    out.emit(PublishEvent::Pushed {
                        cell: a.cell.clone(),
                        engine: built.engine.clone(),
                        reference: a.staging.clone(),
                        digest: s.manifest.digest.clone(),
                        size: built.size,
                        compressed_size: compressed,
                        secs: t0.elapsed().as_secs_f64(),
                    });
                    arches.push(s);
                }
                Err(error) => {
                    out.emit(PublishEvent::PushFailed {
                        cell: a.cell.clone(),
                        reference: a.staging.clone(),
                        error: error.clone(),
                    });
                    not_published(
                        out,
                        summary,
                        &tag.tag,
                        format!("the push of {} failed: {error}", a.cell),
                    );
                    for al in plan.aliases_of(&tag.tag) {
                        not_published(
                            out,
                            summary,
                            &al.tag,
                            format!("its target {} is not published", tag.tag),
                        );
                    }
                    continue 'tags;
                }
            }
        }
        staged.push((tag, arches));
    }

    // 2. One manifest list per public tag, in the public repository.
    let mut lists: HashMap<&str, (Vec<u8>, String, String)> = HashMap::new();
    for (tag, arches) in &staged {
        let t0 = Instant::now();
        match put_list(&registry, ctx.retry, staging, public, tag, arches, out).await {
            Ok(list) => {
                out.emit(PublishEvent::ManifestPushed {
                    tag: tag.tag.clone(),
                    reference: tag.reference.clone(),
                    digest: list.2.clone(),
                    media_type: list.1.clone(),
                    platforms: arches.iter().map(|s| platform_name(&s.platform)).collect(),
                    secs: t0.elapsed().as_secs_f64(),
                });
                summary.tags.push(tag.tag.clone());
                lists.insert(tag.tag.as_str(), list);
            }
            Err(e) if e.kind == RegistryErrorKind::Auth => return Err(e.into()),
            Err(e) => {
                not_published(out, summary, &tag.tag, e.to_string());
                for al in plan.aliases_of(&tag.tag) {
                    not_published(
                        out,
                        summary,
                        &al.tag,
                        format!("its target {} is not published", tag.tag),
                    );
                }
            }
        }
    }

    // 3. Aliases: the same list under another tag.
    for a in aliases {
        let Some((bytes, media_type, digest)) = lists.get(a.target.as_str()) else {
            continue; // reported with its target
        };
        let what = format!("alias {}", a.reference);
        let r = registry::with_retry(ctx.retry, out.retry_reporter(&what), || {
            registry.put_manifest(public, &a.tag, bytes, media_type)
        })
        .await;
        match r {
            Ok(()) => {
                out.emit(PublishEvent::AliasPushed {
                    tag: a.tag.clone(),
                    reference: a.reference.clone(),
                    target: a.target.clone(),
                    digest: digest.clone(),
                });
                summary.aliases.push(a.tag.clone());
            }
            Err(e) if e.kind == RegistryErrorKind::Auth => return Err(e.into()),
            Err(e) => not_published(out, summary, &a.tag, e.to_string()),
        }
    }
    Ok(())
}

/// Report a tag or alias that is not published.
fn not_published(out: &mut Emitter, summary: &mut PublishSummary, tag: &str, reason: String) {
    summary
        .not_published
        .push((tag.to_string(), reason.clone()));
    out.emit(PublishEvent::NotPublished {
        tag: tag.to_string(),
        reason,
    });
}

/// A step that failed: for this tag only, or for the whole publish.
enum StepError {
    Failed(String),
    Fatal(PublishError),
}

/// Push one arch from its engine and read back what the registry stored.
async fn push_one(
    engine: &Engine,
    a: &ArchSource,
    built: &Built,
    ctx: &PublishContext<'_>,
    registry: &Registry,
    staging: &str,
    out: &mut Emitter<'_>,
) -> Result<Staged, StepError> {
    let creds = ctx.credentials.as_ref().map(|c| c.docker(&registry.name()));
    let what = format!("push of {}", a.staging);
    let pushed = registry::with_retry(ctx.retry, out.retry_reporter(&what), || {
        engine.push(&built.image_id, &a.staging, &a.arch, creds.clone(), |_| {})
    })
    .await;
    let pushed = match pushed {
        Ok(p) => p,
        Err(PushError::Auth(message)) => {
            return Err(StepError::Fatal(PublishError::PushRefused {
                registry: registry.name(),
                reference: a.staging.clone(),
                engine: engine.name().to_string(),
                message,
            }))
        }
        Err(e) => return Err(StepError::Failed(e.to_string())),
    };
    let what = format!("reading back {}", a.staging);
    let fail = |e: RegistryError| {
        if e.kind == RegistryErrorKind::Auth {
            StepError::Fatal(e.into())
        } else {
            StepError::Failed(e.to_string())
        }
    };
    let manifest = registry::with_retry(ctx.retry, out.retry_reporter(&what), || {
        registry.manifest(staging, &pushed.digest)
    })
    .await
    .map_err(fail)?;
    let platform = registry::with_retry(ctx.retry, out.retry_reporter(&what), || {
        registry.platform(staging, &manifest.manifest.config)
    })
    .await
    .map_err(fail)?;
    if normalise_arch(&platform.architecture) != a.arch {
        return Err(StepError::Failed(format!(
            "the registry holds a {} image under {} (digest {}), not {}",
            platform.architecture, a.staging, manifest.digest, a.arch
        )));
    }
    Ok(Staged { manifest, platform })
}

/// Bring a tag's per-arch manifests into the public repository and put its list.
async fn put_list(
    registry: &Registry,
    retry: RetryPolicy,
    staging: &str,
    public: &str,
    tag: &PublicTag,
    arches: &[Staged],
    out: &mut Emitter<'_>,
) -> Result<(Vec<u8>, String, String), RegistryError> {
    if public != staging {
        for s in arches {
            let blobs = std::iter::once(&s.manifest.manifest.config)
                .chain(s.manifest.manifest.layers.iter());
            for b in blobs {
                let what = format!("mounting {} into {public}", b.digest);
                registry::with_retry(retry, out.retry_reporter(&what), || {
                    registry.mount(public, staging, &b.digest)
                })
                .await?;
            }
            let what = format!("manifest {} in {public}", s.manifest.digest);
            registry::with_retry(retry, out.retry_reporter(&what), || {
                registry.put_manifest(
                    public,
                    &s.manifest.digest,
                    &s.manifest.bytes,
                    &s.manifest.media_type,
                )
            })
            .await?;
        }
    }
    let entries: Vec<(&StoredManifest, &ImagePlatform)> =
        arches.iter().map(|s| (&s.manifest, &s.platform)).collect();
    let (bytes, media_type, digest) = manifest_list(&entries)
        .map_err(|m| registry.refusal(public, &format!("tag {}", tag.tag), m))?;
    let what = format!("manifest list {}", tag.reference);
    registry::with_retry(retry, out.retry_reporter(&what), || {
        registry.put_manifest(public, &tag.tag, &bytes, &media_type)
    })
    .await?;
    Ok((bytes, media_type, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::manifest::{OciDescriptor, OciImageManifest};

    fn stored(media_type: &str, digest: &str, layers: &[i64]) -> StoredManifest {
        let d = |size: i64| OciDescriptor {
            media_type: "x".into(),
            digest: "sha256:0".into(),
            size,
            urls: None,
            annotations: None,
            artifact_type: None,
        };
        StoredManifest {
            digest: digest.into(),
            media_type: media_type.into(),
            bytes: vec![b'x'; 735],
            manifest: OciImageManifest {
                schema_version: 2,
                media_type: Some(media_type.into()),
                config: d(2340),
                layers: layers.iter().map(|s| d(*s)).collect(),
                subject: None,
                artifact_type: None,
                annotations: None,
            },
        }
    }

    #[test]
    fn lists_join_arches_with_their_platforms() {
        let amd = stored(registry::DOCKER_MANIFEST, "sha256:a", &[1_064_348, 127]);
        let arm = stored(registry::DOCKER_MANIFEST, "sha256:b", &[1_029_792, 125]);
        assert_eq!(amd.compressed_size(), 1_064_475);
        let p1 = ImagePlatform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            os_version: None,
        };
        let p2 = ImagePlatform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
            os_version: None,
        };
        let (bytes, media_type, digest) = manifest_list(&[(&amd, &p1), (&arm, &p2)]).unwrap();
        assert_eq!(media_type, registry::DOCKER_MANIFEST_LIST);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["manifests"][0]["digest"], "sha256:a");
        assert_eq!(v["manifests"][0]["size"], 735);
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        assert!(v["manifests"][0]["platform"].get("variant").is_none());
        assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
        assert_eq!(digest, crate::util::digest::sha256_digest(&bytes));
        // Same input, same bytes: an alias gets the very same digest.
        assert_eq!(
            manifest_list(&[(&amd, &p1), (&arm, &p2)]).unwrap().2,
            digest
        );
        // An OCI manifest among them makes it an OCI index.
        let oci = stored(registry::OCI_MANIFEST, "sha256:c", &[1]);
        assert_eq!(
            manifest_list(&[(&oci, &p1)]).unwrap().1,
            registry::OCI_INDEX
        );
        // One platform twice is refused; windows images that differ by os.version are not
        // the same platform.
        let e = manifest_list(&[(&amd, &p1), (&oci, &p1)]).unwrap_err();
        assert!(e.contains("platform linux/amd64 twice"), "{e}");
        let win = |v: &str| ImagePlatform {
            architecture: "amd64".into(),
            os: "windows".into(),
            variant: None,
            os_version: Some(v.into()),
        };
        let (w1, w2) = (win("10.0.17763.5329"), win("10.0.20348.2227"));
        let (bytes, ..) = manifest_list(&[(&amd, &w1), (&oci, &w2)]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v["manifests"][1]["platform"]["os.version"],
            "10.0.20348.2227"
        );
        assert!(manifest_list(&[(&amd, &w1), (&oci, &w1)]).is_err());
        assert_eq!(platform_name(&p2), "linux/arm64/v8");
    }

    #[test]
    fn repository_paths() {
        assert_eq!(path_of("127.0.0.1:5000", "127.0.0.1:5000/a/b"), "a/b");
        assert_eq!(path_of("", "a/b"), "a/b");
    }
}
