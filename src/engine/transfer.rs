//! Move a built image (a base, usually) from one engine to another, so that a compiler cell can
//! build where a slot is free instead of waiting for the engine that built its base.
//!
//! Two ways, the scheduler picks one:
//! - [`copy_image`]: engine to engine through the Engine API, image export
//!   (`GET /images/get?names=ID`) streamed into image load (`POST /images/load`) through a
//!   bounded channel, so at most [`CHANNEL_CHUNKS`] chunks of the tar are in memory at once;
//! - [`pull_by_digest`]: the image was pushed to a registry (`Engine::push`); the target pulls
//!   `repo@digest` and tags it as the base's reference ([`copy_via_registry`] does both).
//!
//! Both end by checking, on the target, that the reference resolves to the expected image id
//! (the config digest, the same on every engine with the classic image store). Credentials are
//! passed to the engine in its `X-Registry-Auth` header and appear in no error or log line.

use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::{CreateImageOptionsBuilder, ImportImageOptionsBuilder};
use futures_util::StreamExt;
use serde::Serialize;

use super::{Engine, EngineError, EngineErrorKind};
use crate::logs::sanitise_line;

/// How many chunks of the export (as the source engine's HTTP body delivers them, typically
/// 8-32 KiB each, at most a few hundred KiB) may wait for the target engine: the bound on the
/// memory a copy holds, whatever the image's size.
pub const CHANNEL_CHUNKS: usize = 16;

/// A side of the copy silent this long (no chunk from the source, or the target taking none)
/// has stalled.
pub const TRANSFER_IDLE: Duration = Duration::from_secs(300);

/// bollard's request timeout for the transfer's own clients: the load request's upload can
/// last as long as the image takes to stream; stalls are caught by [`TRANSFER_IDLE`] instead.
const TRANSFER_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How the image travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Engine API export from the source piped into load on the target.
    ExportLoad,
    /// Pushed to a registry, pulled by digest on the target.
    Registry,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::ExportLoad => "export/load",
            Via::Registry => "registry",
        })
    }
}

/// What a finished transfer moved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transfer {
    /// Bytes streamed: the export tar's size (export/load), or the layer bytes the target
    /// downloaded (registry; layers it already had count 0). 0 when the target already held
    /// the image.
    pub bytes: u64,
    /// Wall-clock seconds, from the first request to the verified tag.
    pub secs: f64,
    pub via: Via,
}

/// Which part of a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferFailure {
    /// The source engine failed (unreachable, lost mid-export, does not hold the image).
    Source(EngineError),
    /// The target engine failed (unreachable, lost mid-load, refused the tar or the pull).
    Target(EngineError),
    /// The target ended up with another image under the reference (or none).
    Mismatch {
        /// The id the reference resolved to on the target, if any.
        found: Option<String>,
    },
    /// The registry refused the push (credentials, quota, a bad repository name).
    Registry(String),
}

/// A transfer that failed, naming both ends and the reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("moving {reference} ({expected_id}) from {from} to engine {to}: {}", self.detail())]
pub struct TransferError {
    /// `engine NAME` for export/load, `registry HOST/REPO` for a pull by digest.
    pub from: String,
    /// The target engine's name.
    pub to: String,
    pub reference: String,
    pub expected_id: String,
    pub failure: TransferFailure,
}

impl TransferError {
    fn detail(&self) -> String {
        match &self.failure {
            TransferFailure::Source(e) | TransferFailure::Target(e) => e.to_string(),
            TransferFailure::Mismatch { found: Some(id) } => format!(
                "engine {} holds {id} under {} after the transfer, not {}",
                self.to, self.reference, self.expected_id
            ),
            TransferFailure::Registry(m) => m.clone(),
            TransferFailure::Mismatch { found: None } => format!(
                "{} does not resolve on engine {} after the transfer",
                self.reference, self.to
            ),
        }
    }

    /// The engine whose failure ended the transfer, if one did.
    pub fn engine(&self) -> Option<&EngineError> {
        match &self.failure {
            TransferFailure::Source(e) | TransferFailure::Target(e) => Some(e),
            TransferFailure::Mismatch { .. } | TransferFailure::Registry(_) => None,
        }
    }

    /// Worth another try (an engine restarted or the connection dropped).
    pub fn is_transient(&self) -> bool {
        self.engine().is_some_and(EngineError::is_transient)
    }
}

/// `sha256:` + 64 hex digits, adding the prefix to a bare 64-digit id.
fn normalise_id(id: &str) -> String {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("sha256:{id}")
    } else {
        id.to_string()
    }
}

/// The id `image` (a reference or an id) resolves to on `engine`; `Ok(None)` when the engine
/// answers that it holds no such image.
async fn resolve(engine: &Engine, image: &str) -> Result<Option<String>, EngineError> {
    match engine.docker().inspect_image(image).await {
        Ok(i) => Ok(i.id),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(EngineError::from_bollard_at(
            engine.name(),
            Some(&engine.endpoint),
            &e,
        )),
    }
}

/// Copy image `expected_id` from engine `src` to engine `dst` and tag it there as `reference`
/// (`repo:tag`), through the Engine API: `GET /images/get` on `src` streamed into
/// `POST /images/load` on `dst`, with at most [`CHANNEL_CHUNKS`] chunks in flight.
/// `on_bytes` gets the running count of bytes streamed after each chunk.
///
/// When `dst` already holds `expected_id` nothing is streamed: the reference is (re)tagged
/// and `bytes` is 0. Errors: `src` does not hold `expected_id`, either engine fails or stalls
/// ([`TRANSFER_IDLE`]) mid-copy, `dst` refuses the tar, or `reference` does not resolve to
/// `expected_id` on `dst` afterwards; each names both engines and the reference.
pub async fn copy_image(
    src: &Engine,
    dst: &Engine,
    reference: &str,
    expected_id: &str,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Transfer, TransferError> {
    let started = Instant::now();
    let expected = normalise_id(expected_id);
    let fail = |failure| TransferError {
        from: format!("engine {}", src.name()),
        to: dst.name().to_string(),
        reference: reference.to_string(),
        expected_id: expected.clone(),
        failure,
    };
    if let Some(done) = already_there(dst, reference, &expected, started, Via::ExportLoad)
        .await
        .map_err(fail)?
    {
        return Ok(done);
    }
    match resolve(src, &expected)
        .await
        .map_err(|e| fail(TransferFailure::Source(e)))?
    {
        Some(_) => {}
        None => {
            return Err(fail(TransferFailure::Source(EngineError::new(
                src.name(),
                EngineErrorKind::Api,
                format!("it holds no image {expected}"),
            ))))
        }
    }

    let src_docker = src.docker().clone().with_timeout(TRANSFER_REQUEST_TIMEOUT);
    let dst_docker = dst.docker().clone().with_timeout(TRANSFER_REQUEST_TIMEOUT);
    let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let body =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(Ok::<_, std::io::Error>);
    let opts = ImportImageOptionsBuilder::default().quiet(true).build();

    let lost = |engine: &Engine, what: &str| {
        EngineError::new(
            engine.name(),
            EngineErrorKind::Lost,
            format!("{what} silent for {} s", TRANSFER_IDLE.as_secs()),
        )
    };
    // Export side: every chunk from `src` into the channel, counting.
    let pump = async {
        let names = [expected.as_str()];
        let export = src_docker.export_images(&names);
        futures_util::pin_mut!(export);
        let mut total: u64 = 0;
        loop {
            let chunk = match tokio::time::timeout(TRANSFER_IDLE, export.next()).await {
                Err(_) => return Err(TransferFailure::Source(lost(src, "image export"))),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(TransferFailure::Source(EngineError::from_bollard_at(
                        src.name(),
                        Some(&src.endpoint),
                        &e,
                    )))
                }
                Ok(Some(Ok(c))) => c,
            };
            total += chunk.len() as u64;
            match tokio::time::timeout(TRANSFER_IDLE, tx.send(chunk)).await {
                Err(_) => return Err(TransferFailure::Target(lost(dst, "image load"))),
                // The load request ended (its own error says why): stop reading.
                Ok(Err(_)) => break,
                Ok(Ok(())) => {}
            }
            on_bytes(total);
        }
        drop(tx);
        Ok(total)
    };
    // Load side: the channel as the request body; the engine answers once it has read it all.
    let load = async {
        let stream = dst_docker.import_image_stream(opts, body, None);
        futures_util::pin_mut!(stream);
        loop {
            match tokio::time::timeout(TRANSFER_IDLE, stream.next()).await {
                Err(_) => return Err(TransferFailure::Target(lost(dst, "image load"))),
                Ok(None) => return Ok(()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(bollard::errors::Error::DockerStreamError { error }))) => {
                    return Err(TransferFailure::Target(EngineError::new(
                        dst.name(),
                        EngineErrorKind::Api,
                        format!("image load failed: {}", sanitise_line(error.as_bytes())),
                    )))
                }
                Ok(Some(Err(e))) => {
                    return Err(TransferFailure::Target(EngineError::from_bollard_at(
                        dst.name(),
                        Some(&dst.endpoint),
                        &e,
                    )))
                }
            }
        }
    };
    futures_util::pin_mut!(pump, load);
    let mut sent: Option<u64> = None;
    let mut loaded = false;
    while sent.is_none() || !loaded {
        tokio::select! {
            // The source first: when it fails, the load fails too (a cut body), and the
            // source's error is the one that says why.
            biased;
            r = &mut pump, if sent.is_none() => sent = Some(r.map_err(fail)?),
            r = &mut load, if !loaded => {
                if let Err(e) = r {
                    // A load that failed because the export did: report the export.
                    if sent.is_none() {
                        if let Some(Err(pe)) = futures_util::FutureExt::now_or_never(&mut pump) {
                            return Err(fail(pe));
                        }
                    }
                    return Err(fail(e));
                }
                loaded = true;
            }
        }
    }
    let bytes = sent.unwrap_or(0);
    finish(dst, reference, &expected, bytes, started, Via::ExportLoad)
        .await
        .map_err(fail)
}

/// Tag `expected` as `reference` on `dst` and check the reference resolves to it.
/// When `dst` already holds `expected`: tag it `reference` there and say so (0 bytes moved);
/// None when it does not.
async fn already_there(
    dst: &Engine,
    reference: &str,
    expected: &str,
    started: Instant,
    via: Via,
) -> Result<Option<Transfer>, TransferFailure> {
    if resolve(dst, expected)
        .await
        .map_err(TransferFailure::Target)?
        .is_none()
    {
        return Ok(None);
    }
    finish(dst, reference, expected, 0, started, via)
        .await
        .map(Some)
}

async fn finish(
    dst: &Engine,
    reference: &str,
    expected: &str,
    bytes: u64,
    started: Instant,
    via: Via,
) -> Result<Transfer, TransferFailure> {
    match resolve(dst, expected)
        .await
        .map_err(TransferFailure::Target)?
    {
        Some(_) => dst
            .tag(expected, reference)
            .await
            .map_err(TransferFailure::Target)?,
        None => return Err(TransferFailure::Mismatch { found: None }),
    }
    let found = resolve(dst, reference)
        .await
        .map_err(TransferFailure::Target)?;
    if found.as_deref() != Some(expected) {
        return Err(TransferFailure::Mismatch { found });
    }
    Ok(Transfer {
        bytes,
        secs: started.elapsed().as_secs_f64(),
        via,
    })
}

/// Pull `repo@digest` (`repo` = `registry/path`, `digest` = `sha256:…`, a per-arch manifest)
/// on engine `dst` and tag the image as `reference` (the base's pinned reference), checking it
/// is `expected_id`. `credentials` (None for an anonymous registry) go to the engine in its
/// `X-Registry-Auth` header. `on_bytes` gets the running count of layer bytes downloaded, as
/// the engine reports them (layers it already holds count 0).
///
/// When `dst` already holds `expected_id` nothing is pulled: the reference is (re)tagged and
/// `bytes` is 0. Errors name the registry repository, the target engine and the reference.
pub async fn pull_by_digest(
    dst: &Engine,
    repo: &str,
    digest: &str,
    expected_id: &str,
    reference: &str,
    credentials: Option<DockerCredentials>,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Transfer, TransferError> {
    let started = Instant::now();
    let expected = normalise_id(expected_id);
    let fail = |failure| TransferError {
        from: format!("registry {repo}@{digest}"),
        to: dst.name().to_string(),
        reference: reference.to_string(),
        expected_id: expected.clone(),
        failure,
    };
    if let Some(done) = already_there(dst, reference, &expected, started, Via::Registry)
        .await
        .map_err(fail)?
    {
        return Ok(done);
    }
    // As the docker CLI sends `docker pull repo@digest`: the digest in `tag`.
    let opts = CreateImageOptionsBuilder::default()
        .from_image(repo)
        .tag(digest)
        .build();
    let pulled = format!("{repo}@{digest}");
    let stream = dst.docker().create_image(Some(opts), None, credentials);
    futures_util::pin_mut!(stream);
    let mut layers: std::collections::BTreeMap<String, (u64, Option<u64>)> = Default::default();
    let mut reported = 0;
    loop {
        let item = match tokio::time::timeout(TRANSFER_IDLE, stream.next()).await {
            Err(_) => {
                return Err(fail(TransferFailure::Target(EngineError::new(
                    dst.name(),
                    EngineErrorKind::Lost,
                    format!("pull of {pulled} silent for {} s", TRANSFER_IDLE.as_secs()),
                ))))
            }
            Ok(None) => break,
            Ok(Some(item)) => item,
        };
        match item {
            Ok(info) => {
                let Some(id) = info.id else { continue };
                let p = info.progress_detail.unwrap_or_default();
                // Per layer (by id): (bytes so far, its size when the engine said it).
                match info.status.as_deref() {
                    Some("Downloading") => {
                        let e = layers.entry(id).or_default();
                        e.0 = e.0.max(p.current.unwrap_or(0).max(0) as u64);
                        if let Some(t) = p.total.filter(|t| *t > 0) {
                            e.1 = Some(t as u64);
                        }
                    }
                    // The last progress line before this may fall short of the size.
                    Some("Download complete") => {
                        if let Some(e) = layers.get_mut(&id) {
                            e.0 = e.0.max(e.1.unwrap_or(0));
                        }
                    }
                    _ => continue,
                }
                let total: u64 = layers.values().map(|e| e.0).sum();
                if total != reported {
                    reported = total;
                    on_bytes(total);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(fail(TransferFailure::Target(EngineError::new(
                    dst.name(),
                    EngineErrorKind::Api,
                    format!(
                        "pull of {pulled} failed: {}",
                        sanitise_line(error.as_bytes())
                    ),
                ))))
            }
            Err(e) => {
                return Err(fail(TransferFailure::Target(EngineError::from_bollard_at(
                    dst.name(),
                    Some(&dst.endpoint),
                    &e,
                ))))
            }
        }
    }
    let got = resolve(dst, &pulled)
        .await
        .map_err(|e| fail(TransferFailure::Target(e)))?;
    if got.as_deref() != Some(expected.as_str()) {
        return Err(fail(TransferFailure::Mismatch { found: got }));
    }
    finish(dst, reference, &expected, reported, started, Via::Registry)
        .await
        .map_err(fail)
}

/// The tag a transfer pushes image `id` under in the transfer repository: `id-` and the
/// id's 64 hex digits, so that pushing the same image twice is a no-op at the registry.
pub fn registry_tag(id: &str) -> String {
    let id = normalise_id(id);
    format!("id-{}", id.trim_start_matches("sha256:"))
}

/// The registry way end to end: push image `expected_id` (of `arch`) from `src` to
/// `registry_repo` (`registry/path`, `[build] transfer_registry`) under [`registry_tag`], then
/// [`pull_by_digest`] on `dst` and tag it `reference`. `bytes` counts what `dst` downloaded;
/// `secs` covers both halves. Skips both when `dst` already holds the image.
#[allow(clippy::too_many_arguments)]
pub async fn copy_via_registry(
    src: &Engine,
    dst: &Engine,
    reference: &str,
    expected_id: &str,
    arch: &str,
    registry_repo: &str,
    credentials: Option<DockerCredentials>,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Transfer, TransferError> {
    let started = Instant::now();
    let expected = normalise_id(expected_id);
    let fail = |failure| TransferError {
        from: format!("engine {} (through registry {registry_repo})", src.name()),
        to: dst.name().to_string(),
        reference: reference.to_string(),
        expected_id: expected.clone(),
        failure,
    };
    if let Some(done) = already_there(dst, reference, &expected, started, Via::Registry)
        .await
        .map_err(fail)?
    {
        return Ok(done);
    }
    let staged = format!("{registry_repo}:{}", registry_tag(&expected));
    let pushed = src
        .push(&expected, &staged, arch, credentials.clone(), |_| {})
        .await
        .map_err(|e| match e {
            super::push::PushError::Engine(e) => fail(TransferFailure::Source(e)),
            other => fail(TransferFailure::Registry(format!(
                "push of {staged}: {other}"
            ))),
        })?;
    let mut t = pull_by_digest(
        dst,
        registry_repo,
        &pushed.digest,
        &expected,
        reference,
        credentials,
        on_bytes,
    )
    .await?;
    t.secs = started.elapsed().as_secs_f64();
    Ok(t)
}

/// Which way [`move_image`] moves an image, from `[build] transfer_registry`. Its `Debug`
/// never prints the credentials.
#[derive(Clone, PartialEq, Default)]
pub enum TransferWay {
    /// Engine to engine: [`copy_image`].
    #[default]
    ExportLoad,
    /// Through a registry repository (`host[:port]/path`): [`copy_via_registry`].
    Registry {
        repo: String,
        /// Sent to the engines for the push and the pull; None for a registry that needs no
        /// login (the config gives none).
        credentials: Option<DockerCredentials>,
    },
}

impl std::fmt::Debug for TransferWay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferWay::ExportLoad => f.write_str("ExportLoad"),
            TransferWay::Registry { repo, credentials } => f
                .debug_struct("Registry")
                .field("repo", repo)
                .field("credentials", &credentials.as_ref().map(|_| "***"))
                .finish(),
        }
    }
}

impl TransferWay {
    /// The registry way when `transfer_registry` is set, else export/load.
    pub fn from_setting(transfer_registry: Option<&str>) -> TransferWay {
        match transfer_registry {
            Some(repo) => TransferWay::Registry {
                repo: repo.to_string(),
                credentials: None,
            },
            None => TransferWay::ExportLoad,
        }
    }
}

/// Move image `expected_id` (of `arch`) from `src` to `dst` and tag it `reference` there, the
/// configured way; see [`copy_image`] and [`copy_via_registry`] for progress and errors.
pub async fn move_image(
    src: &Engine,
    dst: &Engine,
    reference: &str,
    expected_id: &str,
    arch: &str,
    way: &TransferWay,
    on_bytes: &mut (dyn FnMut(u64) + Send),
) -> Result<Transfer, TransferError> {
    match way {
        TransferWay::ExportLoad => copy_image(src, dst, reference, expected_id, on_bytes).await,
        TransferWay::Registry { repo, credentials } => {
            copy_via_registry(
                src,
                dst,
                reference,
                expected_id,
                arch,
                repo,
                credentials.clone(),
                on_bytes,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tags() {
        let hex = "ab".repeat(32);
        assert_eq!(normalise_id(&hex), format!("sha256:{hex}"));
        assert_eq!(
            normalise_id(&format!("sha256:{hex}")),
            format!("sha256:{hex}")
        );
        assert_eq!(registry_tag(&hex), format!("id-{hex}"));
        assert_eq!(registry_tag(&format!("sha256:{hex}")).len(), 67);
    }

    #[test]
    fn the_way_follows_the_setting() {
        assert_eq!(TransferWay::from_setting(None), TransferWay::ExportLoad);
        assert!(matches!(
            TransferWay::from_setting(Some("127.0.0.1:5000/x")),
            TransferWay::Registry { repo, credentials: None } if repo == "127.0.0.1:5000/x"
        ));
        let secret = TransferWay::Registry {
            repo: "r.example/x".into(),
            credentials: Some(DockerCredentials {
                password: Some("hunter2".into()),
                ..Default::default()
            }),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(Via::ExportLoad.to_string(), "export/load");
        assert_eq!(
            serde_json::to_value(Via::ExportLoad).unwrap(),
            serde_json::json!("export_load")
        );
    }

    #[test]
    fn a_mismatch_names_both_ends_and_what_was_found() {
        let e = TransferError {
            from: "engine a".into(),
            to: "m".into(),
            reference: "s:debian-13-opam-amd64-1".into(),
            expected_id: "sha256:1".into(),
            failure: TransferFailure::Mismatch {
                found: Some("sha256:2".into()),
            },
        };
        assert_eq!(
            e.to_string(),
            "moving s:debian-13-opam-amd64-1 (sha256:1) from engine a to engine m: engine m holds \
             sha256:2 under s:debian-13-opam-amd64-1 after the transfer, not sha256:1"
        );
        assert!(!e.is_transient());
    }
}
