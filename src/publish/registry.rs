//! The registry side of publishing, through oci-client: check the credentials, read per-arch
//! manifests and image configs, mount blobs from the staging repository into the public one,
//! and put manifests and manifest lists. HTTP 429 and 5xx are retried with backoff
//! ([`with_retry`]).
//!
//! Why oci-client: the Engine API has no manifest-list endpoint (`docker manifest` is a registry
//! client inside the CLI), and oci-client 0.18 speaks the distribution API (token and basic
//! auth, cross-repository mounts, raw manifests) on the reqwest/rustls stack bollard already
//! brings.

use std::future::Future;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde::Deserialize;

use super::auth::{display_registry, Credentials};
use crate::config::PublishConfig;
use crate::engine::is_loopback_host;

/// Docker's per-arch manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI's per-arch manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI's index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(60);

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub retries: u32,
    /// Wait before the first retry; it doubles for each next one.
    pub first_delay: Duration,
}

impl RetryPolicy {
    /// From `[publish]`.
    pub fn from_config(p: &PublishConfig) -> RetryPolicy {
        RetryPolicy {
            retries: p.retries,
            first_delay: Duration::from_millis(p.backoff_ms),
        }
    }

    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.first_delay.saturating_mul(factor).min(MAX_DELAY)
    }
}

/// Errors that may go away when tried again later.
pub trait Transient {
    fn is_transient(&self) -> bool;
}

/// Run `op` until it succeeds, fails for good, or the retries are used up. `on_retry` hears of
/// each retry (attempt number, wait, the error) before the wait.
pub async fn with_retry<T, E, Fut>(
    policy: RetryPolicy,
    mut on_retry: impl FnMut(u32, Duration, &E),
    mut op: impl FnMut() -> Fut,
) -> Result<T, E>
where
    E: Transient,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt < policy.retries => {
                attempt += 1;
                let wait = policy.delay(attempt);
                on_retry(attempt, wait, &e);
                tokio::time::sleep(wait).await;
            }
            r => return r,
        }
    }
}

/// What kind of registry trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryErrorKind {
    /// Credentials refused, or needed and missing.
    Auth,
    /// Nothing answered.
    Unreachable,
    /// HTTP 429 or 5xx.
    Transient,
    /// The repository, manifest or blob does not exist.
    NotFound,
    Other,
}

/// A registry problem, naming the registry, repository and tag (or digest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry {registry}, repository {repository}{}: {message}", reference.as_ref().map(|r| format!(", {r}")).unwrap_or_default())]
pub struct RegistryError {
    pub registry: String,
    pub repository: String,
    /// `tag X` or `digest sha256:…`.
    pub reference: Option<String>,
    pub kind: RegistryErrorKind,
    pub message: String,
}

impl Transient for RegistryError {
    fn is_transient(&self) -> bool {
        self.kind == RegistryErrorKind::Transient
    }
}

/// `tag X` or `digest sha256:…`, for messages.
fn describe(reference: &str) -> String {
    if reference.starts_with("sha256:") {
        format!("digest {reference}")
    } else {
        format!("tag {reference}")
    }
}

/// The platform an image config declares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImagePlatform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    /// The OS build an image needs (Windows images: `10.0.20348.2113`); part of the platform
    /// (OCI image-spec, image-index.md `platform`).
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
}

/// A per-arch manifest as stored in the registry.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: String,
    pub media_type: String,
    /// The exact bytes (their sha256 is the digest).
    pub bytes: Vec<u8>,
    pub manifest: OciImageManifest,
}

impl StoredManifest {
    /// The compressed size of the image: the sum of its layers as stored.
    pub fn compressed_size(&self) -> i64 {
        self.manifest.layers.iter().map(|l| l.size).sum()
    }
}

/// One registry, with the credentials resolved for it.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    /// As configured (empty: Docker Hub).
    registry: String,
}

/// oci-client's TLS is rustls without a built-in provider; use ring, as bollard does.
fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Registry {
    /// A request imagegrid will not send (it breaks a rule of the spec), as this registry's
    /// error for `repository` and `reference`.
    pub fn refusal(&self, repository: &str, reference: &str, message: String) -> RegistryError {
        RegistryError {
            registry: self.registry.clone(),
            repository: repository.to_string(),
            reference: Some(reference.to_string()),
            kind: RegistryErrorKind::Other,
            message,
        }
    }

    /// A client for `registry`. Loopback registries are spoken to over plain HTTP (as Docker
    /// engines do by default); every other over HTTPS.
    pub fn new(registry: &str, credentials: Option<&Credentials>) -> Registry {
        install_crypto_provider();
        let host = registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(registry);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let protocol = if !registry.is_empty() && is_loopback_host(host) {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        });
        Registry {
            client,
            auth: credentials
                .map(Credentials::oci)
                .unwrap_or(RegistryAuth::Anonymous),
            registry: registry.to_string(),
        }
    }

    /// The registry as messages name it.
    pub fn name(&self) -> String {
        display_registry(&self.registry)
    }

    fn host(&self) -> String {
        if self.registry.is_empty() {
            "docker.io".into()
        } else {
            self.registry.clone()
        }
    }

    fn reference(&self, repo: &str, reference: &str) -> Reference {
        if reference.starts_with("sha256:") {
            Reference::with_digest(self.host(), repo.to_string(), reference.to_string())
        } else {
            Reference::with_tag(self.host(), repo.to_string(), reference.to_string())
        }
    }

    /// Turn an oci-client error into one that names where it happened.
    fn error(&self, repo: &str, reference: Option<&str>, e: OciDistributionError) -> RegistryError {
        use OciDistributionError as O;
        let (kind, message) = match &e {
            O::UnauthorizedError { .. } => (
                RegistryErrorKind::Auth,
                "HTTP 401 Unauthorized: the registry refused the credentials".to_string(),
            ),
            O::AuthenticationFailure(m) => (
                RegistryErrorKind::Auth,
                format!("authentication failed: {}", short(m)),
            ),
            O::ServerError { code, message, .. } => {
                let kind = match code {
                    401 | 403 => RegistryErrorKind::Auth,
                    404 => RegistryErrorKind::NotFound,
                    429 | 500..=599 => RegistryErrorKind::Transient,
                    _ => RegistryErrorKind::Other,
                };
                (kind, format!("HTTP {code}: {}", short(message)))
            }
            O::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let kind = if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    RegistryErrorKind::Auth
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
                {
                    RegistryErrorKind::Transient
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::NameUnknown
                            | OciErrorCode::ManifestUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    RegistryErrorKind::NotFound
                } else {
                    RegistryErrorKind::Other
                };
                let text: Vec<String> = envelope
                    .errors
                    .iter()
                    .map(|e| {
                        let code = serde_json::to_value(&e.code)
                            .ok()
                            .and_then(|c| c.as_str().map(str::to_string))
                            .unwrap_or_else(|| format!("{:?}", e.code));
                        format!("{code}: {}", short(&e.message))
                    })
                    .collect();
                (kind, text.join("; "))
            }
            O::RequestError(r) if r.is_connect() => (
                RegistryErrorKind::Unreachable,
                format!(
                    "cannot connect: {}",
                    crate::engine::source_chain(r as &dyn std::error::Error)
                ),
            ),
            O::RequestError(r) if r.is_timeout() => (
                RegistryErrorKind::Transient,
                format!(
                    "timed out: {}",
                    crate::engine::source_chain(r as &dyn std::error::Error)
                ),
            ),
            other => (
                RegistryErrorKind::Other,
                crate::engine::source_chain(other as &dyn std::error::Error),
            ),
        };
        RegistryError {
            registry: self.name(),
            repository: repo.to_string(),
            reference: reference.map(describe),
            kind,
            message,
        }
    }

    /// Check that the registry answers and takes the credentials for `repo` (a repository that
    /// does not exist yet is fine). Nothing is written.
    pub async fn check(&self, repo: &str) -> Result<(), RegistryError> {
        let r = self.reference(repo, "latest");
        // A token registry checks the credentials when it hands out a push token.
        match self
            .client
            .auth(&r, &self.auth, RegistryOperation::Push)
            .await
        {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(e) => return Err(self.error(repo, None, e)),
        }
        // A basic-auth (or open) registry: a read shows whether the credentials work.
        match self.client.list_tags(&r, &self.auth, Some(1), None).await {
            Ok(_) => Ok(()),
            Err(e) => match self.error(repo, None, e) {
                e if e.kind == RegistryErrorKind::NotFound => Ok(()),
                e if e.kind == RegistryErrorKind::Auth && self.auth == RegistryAuth::Anonymous => {
                    Err(RegistryError {
                        message: format!(
                            "{}; no credentials were found for it (docker login {}, or set publish.username and publish.password_file)",
                            e.message,
                            self.name()
                        ),
                        ..e
                    })
                }
                e => Err(e),
            },
        }
    }

    /// A per-arch manifest by tag or digest.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<StoredManifest, RegistryError> {
        let r = self.reference(repo, reference);
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(&r, &self.auth, &[DOCKER_MANIFEST, OCI_MANIFEST])
            .await
            .map_err(|e| self.error(repo, Some(reference), e))?;
        let manifest: OciImageManifest = serde_json::from_slice(&bytes).map_err(|e| {
            self.error(
                repo,
                Some(reference),
                OciDistributionError::ManifestParsingError(e.to_string()),
            )
        })?;
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        Ok(StoredManifest {
            digest,
            media_type,
            bytes: bytes.to_vec(),
            manifest,
        })
    }

    /// The platform an image's config blob declares.
    pub async fn platform(
        &self,
        repo: &str,
        config: &OciDescriptor,
    ) -> Result<ImagePlatform, RegistryError> {
        let r = self.reference(repo, &config.digest);
        let mut out: Vec<u8> = Vec::new();
        self.client
            .pull_blob(&r, config, &mut out)
            .await
            .map_err(|e| self.error(repo, Some(&config.digest), e))?;
        serde_json::from_slice(&out).map_err(|e| RegistryError {
            registry: self.name(),
            repository: repo.to_string(),
            reference: Some(describe(&config.digest)),
            kind: RegistryErrorKind::Other,
            message: format!("the image config is not what an image config looks like: {e}"),
        })
    }

    /// Make blob `digest` of repository `from` available in `to` without copying it.
    pub async fn mount(&self, to: &str, from: &str, digest: &str) -> Result<(), RegistryError> {
        let target = self.reference(to, digest);
        let source = self.reference(from, digest);
        // The push scope of `to` must be asked for before the mount (oci-client asks lazily).
        self.client
            .store_auth_if_needed(target.resolve_registry(), &self.auth)
            .await;
        self.client
            .mount_blob(&target, &source, digest)
            .await
            .map_err(|e| self.error(to, Some(digest), e))
    }

    /// Put a manifest (or manifest list) under a tag or its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let r = self.reference(repo, reference);
        self.client
            .store_auth_if_needed(r.resolve_registry(), &self.auth)
            .await;
        let content_type = media_type.parse().map_err(|_| RegistryError {
            registry: self.name(),
            repository: repo.to_string(),
            reference: Some(describe(reference)),
            kind: RegistryErrorKind::Other,
            message: format!("bad media type {media_type}"),
        })?;
        self.client
            .push_manifest_raw(&r, bytes.to_vec(), content_type)
            .await
            .map(|_| ())
            .map_err(|e| self.error(repo, Some(reference), e))
    }
}

/// A registry's message, cut to something that fits a line.
fn short(s: &str) -> String {
    crate::util::text::truncate(&crate::logs::sanitise_line(s.trim().as_bytes()), 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug, PartialEq)]
    struct E(bool);
    impl Transient for E {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_with_doubling_waits() {
        let policy = RetryPolicy {
            retries: 3,
            first_delay: Duration::from_millis(100),
        };
        let calls = Cell::new(0);
        let mut waits = vec![];
        let start = tokio::time::Instant::now();
        let r: Result<u32, E> = with_retry(
            policy,
            |n, d, _| waits.push((n, d)),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err(E(true))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(r, Ok(3));
        assert_eq!(
            waits,
            [
                (1, Duration::from_millis(100)),
                (2, Duration::from_millis(200))
            ]
        );
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        // Permanent errors are not retried; transient ones stop after `retries`.
        calls.set(0);
        let r: Result<(), E> = with_retry(
            policy,
            |_, _, _| {},
            || {
                calls.set(calls.get() + 1);
                async { Err(E(false)) }
            },
        )
        .await;
        assert_eq!((r, calls.get()), (Err(E(false)), 1));
        calls.set(0);
        let r: Result<(), E> = with_retry(
            policy,
            |_, _, _| {},
            || {
                calls.set(calls.get() + 1);
                async { Err(E(true)) }
            },
        )
        .await;
        assert_eq!((r, calls.get()), (Err(E(true)), 4));
        assert_eq!(policy.delay(30), MAX_DELAY);
    }
}
