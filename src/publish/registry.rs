//! The registry side of publishing, through oci-client: check the credentials, read per-arch
//! manifests and image configs, mount blobs from the staging repository into the public one,
//! and put manifests and manifest lists. HTTP 429 and 5xx are retried with backoff
//! ([`with_retry`]); a `Retry-After` the registry sends (seconds or an HTTP date, RFC 9110
//! section 10.2.3) sets the wait instead, up to a cap.
//!
//! Cross-repository mounts do not go through oci-client: its `mount_blob` takes only `201
//! Created` for success, while the distribution spec ("Mounting a blob from another
//! repository") lets a registry that does not mount answer `202 Accepted` with an upload
//! session in `Location`, which the client then finishes like any upload; and its errors drop
//! the response headers, Retry-After among them. [`Registry::mount`] speaks that exchange
//! itself over reqwest (the HTTP client oci-client is built on), taking only the bearer token
//! from oci-client: 201 is done; 202 is finished by streaming the blob from the source
//! repository into a monolithic `PUT <Location>?digest=...` (and the session is cancelled if
//! that fails).
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

/// Longest wait between two tries (a registry's Retry-After is capped to it too).
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
    /// How long the other side asked to wait before trying again (HTTP Retry-After).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
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
                // The registry's own word on when to come back wins over our backoff.
                let wait = e
                    .retry_after()
                    .map(|d| d.min(MAX_DELAY))
                    .unwrap_or_else(|| policy.delay(attempt));
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
    /// The registry's Retry-After, when it sent one.
    pub retry_after: Option<Duration>,
}

impl Transient for RegistryError {
    fn is_transient(&self) -> bool {
        self.kind == RegistryErrorKind::Transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (IMF-fixdate, or the obsolete RFC 850
/// and asctime forms a recipient must accept, RFC 9110 section 5.6.7), as a wait from `now`.
/// A date in the past is no wait; anything else unreadable is None.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let date = parse_http_date(v)?;
    let now = time::OffsetDateTime::from(now);
    let wait = date - now;
    Some(if wait.is_negative() {
        Duration::ZERO
    } else {
        wait.unsigned_abs()
    })
}

fn parse_http_date(v: &str) -> Option<time::OffsetDateTime> {
    use time::macros::format_description;
    use time::PrimitiveDateTime;
    let fixdate =
        format_description!("[day] [month repr:short] [year] [hour]:[minute]:[second] GMT");
    if let Some((_, rest)) = v.split_once(", ") {
        // IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, or RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`.
        if let Ok(t) = PrimitiveDateTime::parse(rest, fixdate) {
            return Some(t.assume_utc());
        }
        let (date, clock) = rest.split_once(' ')?;
        let mut parts = date.split('-');
        let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
        let yy: i32 = yy.parse().ok().filter(|_| yy.len() == 2)?;
        // A two-digit year is the one that is not more than 50 years in the future.
        let now = time::OffsetDateTime::now_utc().year();
        let mut year = now - now.rem_euclid(100) + yy;
        if year > now + 50 {
            year -= 100;
        }
        return PrimitiveDateTime::parse(&format!("{day} {month} {year} {clock}"), fixdate)
            .ok()
            .map(|t| t.assume_utc());
    }
    // asctime: `Sun Nov  6 08:49:37 1994`.
    let rest = v.split_once(' ')?.1;
    PrimitiveDateTime::parse(
        rest,
        format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
        ),
    )
    .ok()
    .map(|t| t.assume_utc())
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
    /// For the calls oci-client cannot make right (see the module documentation).
    http: reqwest::Client,
    /// `http` for loopback registries, else `https` (as oci-client is configured).
    scheme: &'static str,
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
            retry_after: None,
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
        let plain = !registry.is_empty() && is_loopback_host(host);
        let protocol = if plain {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(120)),
            ..Default::default()
        });
        Registry {
            client,
            http,
            scheme: if plain { "http" } else { "https" },
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
                crate::util::root_cause::lead_with_root_cause(&format!(
                    "cannot connect: {}",
                    crate::engine::source_chain(r as &dyn std::error::Error)
                )),
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
            retry_after: None,
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
            retry_after: None,
        })
    }

    /// Make blob `digest` of repository `from` available in `to`: mounted when the registry
    /// can (201), else uploaded through the session it opened instead (202).
    pub async fn mount(&self, to: &str, from: &str, digest: &str) -> Result<(), RegistryError> {
        let target = self.reference(to, digest);
        let base = format!("{}://{}/v2/", self.scheme, target.resolve_registry());
        let token = self.token(to, digest, RegistryOperation::Push).await?;
        let url = reqwest::Url::parse_with_params(
            &format!("{base}{to}/blobs/uploads/"),
            &[("mount", digest), ("from", from)],
        )
        .map_err(|e| self.failure(to, digest, RegistryErrorKind::Other, e.to_string()))?;
        let res = self
            .authorize(self.http.post(url), &token)
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .map_err(|e| self.error(to, Some(digest), e.into()))?;
        match res.status().as_u16() {
            201 => Ok(()),
            202 => {
                let location = self.location(to, digest, &base, &res)?;
                let done = self.upload_from(to, from, digest, &token, &location).await;
                if done.is_err() {
                    // Leave no session behind (best effort; registries expire them anyway).
                    let _ = self
                        .authorize(self.http.delete(location), &token)
                        .send()
                        .await;
                }
                done
            }
            _ => Err(self.response_error(to, digest, res).await),
        }
    }

    /// Finish the upload session at `location` with the bytes of blob `digest` of `from`,
    /// streamed: one monolithic PUT (distribution spec, "Pushing a blob monolithically").
    async fn upload_from(
        &self,
        to: &str,
        from: &str,
        digest: &str,
        push_token: &Option<String>,
        location: &reqwest::Url,
    ) -> Result<(), RegistryError> {
        let source = self.reference(from, digest);
        let pull_token = self.token(from, digest, RegistryOperation::Pull).await?;
        let url = format!(
            "{}://{}/v2/{from}/blobs/{digest}",
            self.scheme,
            source.resolve_registry()
        );
        let blob = self
            .authorize(self.http.get(url), &pull_token)
            .send()
            .await
            .map_err(|e| self.error(from, Some(digest), e.into()))?;
        if !blob.status().is_success() {
            return Err(self.response_error(from, digest, blob).await);
        }
        let length = blob.content_length();
        let mut put = location.clone();
        put.query_pairs_mut().append_pair("digest", digest);
        let mut req = self
            .authorize(self.http.put(put), push_token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(blob.bytes_stream()));
        if let Some(n) = length {
            req = req.header(reqwest::header::CONTENT_LENGTH, n);
        }
        let res = req
            .send()
            .await
            .map_err(|e| self.error(to, Some(digest), e.into()))?;
        match res.status().as_u16() {
            201 => Ok(()),
            _ => Err(self.response_error(to, digest, res).await),
        }
    }

    /// The bearer token for `repo` (None: the registry takes basic auth or nothing).
    async fn token(
        &self,
        repo: &str,
        digest: &str,
        op: RegistryOperation,
    ) -> Result<Option<String>, RegistryError> {
        self.client
            .auth(&self.reference(repo, digest), &self.auth, op)
            .await
            .map_err(|e| self.error(repo, Some(digest), e))
    }

    fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        token: &Option<String>,
    ) -> reqwest::RequestBuilder {
        match (token, &self.auth) {
            (Some(t), _) => req.bearer_auth(t),
            (None, RegistryAuth::Basic(user, password)) => req.basic_auth(user, Some(password)),
            (None, RegistryAuth::Bearer(t)) => req.bearer_auth(t),
            (None, _) => req,
        }
    }

    /// The upload session a 202 names, resolved against the registry's base URL (it may be a
    /// path or a full URL).
    fn location(
        &self,
        repo: &str,
        digest: &str,
        base: &str,
        res: &reqwest::Response,
    ) -> Result<reqwest::Url, RegistryError> {
        let value = res
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.failure(
                    repo,
                    digest,
                    RegistryErrorKind::Other,
                    "HTTP 202 without a Location: no upload session to finish".into(),
                )
            })?;
        reqwest::Url::parse(base)
            .and_then(|b| b.join(value))
            .map_err(|e| {
                self.failure(
                    repo,
                    digest,
                    RegistryErrorKind::Other,
                    format!("bad upload Location {value:?}: {e}"),
                )
            })
    }

    fn failure(
        &self,
        repo: &str,
        digest: &str,
        kind: RegistryErrorKind,
        message: String,
    ) -> RegistryError {
        RegistryError {
            registry: self.name(),
            repository: repo.to_string(),
            reference: Some(describe(digest)),
            kind,
            message,
            retry_after: None,
        }
    }

    /// An unexpected answer as a [`RegistryError`], read as oci-client reads one (so messages
    /// look alike), with the registry's Retry-After. `reference`: the tag or digest at stake.
    async fn response_error(
        &self,
        repo: &str,
        reference: &str,
        res: reqwest::Response,
    ) -> RegistryError {
        let status = res.status();
        let url = res.url().to_string();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let body = res.bytes().await.unwrap_or_default();
        let code = status.as_u16();
        let e = match code {
            401 => OciDistributionError::UnauthorizedError { url },
            400..=499 => match serde_json::from_slice::<oci_client::errors::OciEnvelope>(&body) {
                Ok(envelope) => OciDistributionError::RegistryError { envelope, url },
                Err(_) => OciDistributionError::ServerError {
                    code,
                    url,
                    message: String::from_utf8_lossy(&body).into_owned(),
                },
            },
            // A success the spec does not allow here (200, 204...), or 3xx/5xx.
            _ => OciDistributionError::ServerError {
                code,
                url,
                message: String::from_utf8_lossy(&body).into_owned(),
            },
        };
        let mut e = self.error(repo, Some(reference), e);
        // 503 is "try later" whether or not the body says more; so is anything with Retry-After
        // among the statuses that may carry one.
        if matches!(code, 429 | 503) || (code >= 500 && retry_after.is_some()) {
            e.kind = RegistryErrorKind::Transient;
        }
        e.retry_after = retry_after;
        e
    }

    /// Put a manifest (or manifest list) under a tag or its digest. Over reqwest, like
    /// [`Registry::mount`], so that a 429/503's Retry-After reaches [`with_retry`].
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let r = self.reference(repo, reference);
        let content_type: reqwest::header::HeaderValue =
            media_type.parse().map_err(|_| RegistryError {
                registry: self.name(),
                repository: repo.to_string(),
                reference: Some(describe(reference)),
                kind: RegistryErrorKind::Other,
                message: format!("bad media type {media_type}"),
                retry_after: None,
            })?;
        let token = self.token(repo, reference, RegistryOperation::Push).await?;
        let url = format!(
            "{}://{}/v2/{repo}/manifests/{reference}",
            self.scheme,
            r.resolve_registry()
        );
        let res = self
            .authorize(self.http.put(url), &token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes.to_vec())
            .send()
            .await
            .map_err(|e| self.error(repo, Some(reference), e.into()))?;
        // 201 Created per the spec; another 2xx still says the manifest was taken.
        match res.status().as_u16() {
            200..=202 => Ok(()),
            _ => Err(self.response_error(repo, reference, res).await),
        }
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

    #[test]
    fn retry_after_in_seconds_or_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        for date in [
            "Sun, 06 Nov 1994 08:50:07 GMT",
            "Sunday, 06-Nov-94 08:50:07 GMT",
            "Sun Nov  6 08:50:07 1994",
        ] {
            assert_eq!(
                parse_retry_after(date, now),
                Some(Duration::from_secs(30)),
                "{date}"
            );
        }
        // In the past: no wait. Unreadable: not a Retry-After.
        assert_eq!(
            parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[derive(Debug, PartialEq)]
    struct Later(Option<Duration>);
    impl Transient for Later {
        fn is_transient(&self) -> bool {
            true
        }
        fn retry_after(&self) -> Option<Duration> {
            self.0
        }
    }

    /// Retry-After sets the wait (capped), instead of the backoff.
    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_capped() {
        let policy = RetryPolicy {
            retries: 3,
            first_delay: Duration::from_millis(100),
        };
        let answers = std::sync::Mutex::new(vec![
            Later(Some(Duration::from_secs(3600))),
            Later(None),
            Later(Some(Duration::from_secs(7))),
        ]);
        let mut waits = vec![];
        let r: Result<(), Later> = with_retry(
            policy,
            |_, d, _| waits.push(d),
            || {
                let next = answers.lock().unwrap().pop();
                async move {
                    match next {
                        Some(e) => Err(e),
                        None => Ok(()),
                    }
                }
            },
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(
            waits,
            [
                Duration::from_secs(7),
                Duration::from_millis(200),
                MAX_DELAY
            ]
        );
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
