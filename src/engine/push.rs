//! Push one built image from the engine that holds it to a registry (Engine API `push`).
//!
//! bollard's push stream model drops the raw stream's `aux` digest, so the digest is read from
//! the status line the engine prints at the end (`<tag>: digest: sha256:… size: N`).

use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;

use super::build::split_reference;
use super::{normalise_arch, Engine, EngineError, EngineErrorKind};
use crate::logs::sanitise_line;

/// A push stream silent for this long (while the engine answers nothing) has stalled.
const PUSH_IDLE: Duration = Duration::from_secs(300);

/// What the registry got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The per-arch manifest's digest, `sha256:…`.
    pub digest: String,
    /// The manifest's size in bytes, as the engine reports it.
    pub manifest_size: Option<u64>,
}

/// Why a push failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The registry refused the credentials (or there were none and it wants some).
    #[error("{0}")]
    Auth(String),
    /// HTTP 429 or 5xx from the registry: worth another try later.
    #[error("{0}")]
    Retryable(String),
    /// Anything else (the image is not what it should be, the registry refused it).
    #[error("{0}")]
    Failed(String),
    /// The engine itself failed us.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Sort an error the engine reports for a push by what can be done about it.
pub fn classify_push_error(message: &str) -> PushError {
    let m = message.to_lowercase();
    let auth = [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "incorrect username or password",
    ];
    let retry = [
        "toomanyrequests",
        "too many requests",
        " 429",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway",
        "unexpected http status: 5",
    ];
    if auth.iter().any(|a| m.contains(a)) {
        PushError::Auth(message.to_string())
    } else if retry.iter().any(|r| m.contains(r)) {
        PushError::Retryable(message.to_string())
    } else {
        PushError::Failed(message.to_string())
    }
}

/// `amd64: digest: sha256:abc… size: 735` -> (`sha256:abc…`, 735).
pub fn parse_digest_line(line: &str) -> Option<(String, Option<u64>)> {
    let (_, rest) = line.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    if !digest.starts_with("sha256:") || digest.len() != 71 {
        return None;
    }
    let size = rest
        .split_once("size: ")
        .and_then(|(_, s)| s.split_whitespace().next()?.parse().ok());
    Some((digest.to_string(), size))
}

impl Engine {
    /// Tag image `image_id` as `reference` (`registry/repo:tag`) and push it. The image must be
    /// `arch`: a wrong image would otherwise end up under a platform it is not.
    /// Status lines go to `on_line` as they arrive.
    pub async fn push(
        &self,
        image_id: &str,
        reference: &str,
        arch: &str,
        credentials: Option<DockerCredentials>,
        mut on_line: impl FnMut(String),
    ) -> Result<Pushed, PushError> {
        let name = self.name().to_string();
        let inspect = self.docker().inspect_image(image_id).await.map_err(|e| {
            let err = EngineError::from_bollard_at(&name, Some(&self.endpoint), &e);
            match err.kind {
                EngineErrorKind::Api => PushError::Failed(format!(
                    "image {image_id} is not on engine {name} any more ({}); rebuild the cell",
                    err.message
                )),
                _ => PushError::Engine(err),
            }
        })?;
        let found = normalise_arch(inspect.architecture.as_deref().unwrap_or(""));
        if found != arch {
            return Err(PushError::Failed(format!(
                "image {image_id} on engine {name} is {found}, not {arch}"
            )));
        }
        self.tag(image_id, reference).await?;
        let (repo, tag) = split_reference(reference);
        let opts = PushImageOptionsBuilder::default().tag(tag).build();
        let stream = self.docker().push_image(repo, Some(opts), credentials);
        futures_util::pin_mut!(stream);
        let mut pushed: Option<Pushed> = None;
        loop {
            let item = match tokio::time::timeout(PUSH_IDLE, stream.next()).await {
                Err(_) => {
                    return Err(PushError::Engine(EngineError::new(
                        &name,
                        EngineErrorKind::Lost,
                        format!("push of {reference} silent for {} s", PUSH_IDLE.as_secs()),
                    )))
                }
                Ok(None) => break,
                Ok(Some(item)) => item,
            };
            match item {
                Ok(info) => {
                    let Some(status) = info.status else { continue };
                    let line = sanitise_line(status.as_bytes());
                    if let Some((digest, manifest_size)) = parse_digest_line(&line) {
                        pushed = Some(Pushed {
                            digest,
                            manifest_size,
                        });
                    }
                    // Byte counters are noise; state changes ("Pushed", "Layer already exists") are not.
                    if info
                        .progress_detail
                        .as_ref()
                        .and_then(|p| p.current)
                        .is_none()
                    {
                        on_line(line);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(classify_push_error(&sanitise_line(error.as_bytes())));
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code,
                    message,
                }) => {
                    let message = sanitise_line(message.as_bytes());
                    return Err(match status_code {
                        401 | 403 => PushError::Auth(message),
                        _ => classify_push_error(&message),
                    });
                }
                Err(e) => {
                    return Err(PushError::Engine(EngineError::from_bollard_at(
                        &name,
                        Some(&self.endpoint),
                        &e,
                    )))
                }
            }
        }
        pushed.ok_or_else(|| {
            PushError::Failed(format!(
                "engine {name} ended the push of {reference} without reporting a digest"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lines() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            parse_digest_line(&format!("amd64: digest: {d} size: 735")),
            Some((d.clone(), Some(735)))
        );
        assert_eq!(parse_digest_line("Pushed"), None);
        assert_eq!(parse_digest_line("x: digest: sha256:short size: 1"), None);
    }

    #[test]
    fn push_errors_are_sorted() {
        assert!(matches!(
            classify_push_error("unauthorized: authentication required"),
            PushError::Auth(_)
        ));
        assert!(matches!(
            classify_push_error("toomanyrequests: slow down"),
            PushError::Retryable(_)
        ));
        assert!(matches!(
            classify_push_error("received unexpected HTTP status: 503 Service Unavailable"),
            PushError::Retryable(_)
        ));
        assert!(matches!(
            classify_push_error("manifest invalid"),
            PushError::Failed(_)
        ));
    }
}
