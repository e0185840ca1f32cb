//! Resolving the `default` endpoint like the docker CLI does, and TLS files.
//! The endpoint type itself is a plain domain type in [`crate::model::endpoint`].

use std::path::{Path, PathBuf};

use crate::model::endpoint::{Endpoint, DEFAULT_SOCKET};

/// TLS material for a TCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Every file must exist: bollard would otherwise fail later with an opaque TLS EOF.
    pub fn check(&self) -> Result<(), ResolveError> {
        self.check_text().map_err(ResolveError)
    }

    fn check_text(&self) -> Result<(), String> {
        for (what, p) in [
            ("CA", &self.ca),
            ("client certificate", &self.cert),
            ("client key", &self.key),
        ] {
            if !p.is_file() {
                return Err(format!("TLS {what} file {} does not exist", p.display()));
            }
        }
        Ok(())
    }
}

/// A resolved `default` endpoint, with TLS files when the environment or context asks for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub tls: Option<TlsFiles>,
    /// Where it came from, for `check` and `paths`.
    pub source: String,
}

/// Resolve `default` the way the docker CLI does: DOCKER_HOST (with DOCKER_TLS_VERIFY and
/// DOCKER_CERT_PATH), then the current context of ~/.docker, then the local socket.
pub fn resolve_default() -> Result<Resolved, ResolveError> {
    resolve_default_text().map_err(ResolveError)
}

/// DOCKER_HOST, a docker context or TLS files that cannot be used; the message names which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

fn resolve_default_text() -> Result<Resolved, String> {
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()) {
        let endpoint = Endpoint::parse(&host).map_err(|m| format!("DOCKER_HOST: {m}"))?;
        let tls = match (
            &endpoint,
            std::env::var_os("DOCKER_TLS_VERIFY").filter(|v| !v.is_empty() && v != "0"),
        ) {
            (Endpoint::Tcp { .. }, Some(_)) => Some(TlsFiles::in_dir(&docker_cert_path())),
            _ => None,
        };
        return Ok(Resolved {
            endpoint,
            tls,
            source: "DOCKER_HOST".into(),
        });
    }
    if let Some(r) = current_context()? {
        return Ok(r);
    }
    Ok(Resolved {
        endpoint: Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)),
        tls: None,
        source: "default socket".into(),
    })
}

/// The docker CLI's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.home_dir().join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

fn docker_cert_path() -> PathBuf {
    std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(docker_config_dir)
}

/// The docker CLI's current context (DOCKER_CONTEXT, else config.json's currentContext).
fn current_context() -> Result<Option<Resolved>, String> {
    let dir = docker_config_dir();
    let name = match std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        Some(n) => n,
        None => {
            let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
                return Ok(None);
            };
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
            match v.get("currentContext").and_then(|c| c.as_str()) {
                Some(c) if !c.is_empty() => c.to_string(),
                _ => return Ok(None),
            }
        }
    };
    if name == "default" {
        return Ok(None);
    }
    let digest = crate::util::digest::sha256_hex(name.as_bytes());
    let meta_path = dir.join("contexts/meta").join(&digest).join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        format!(
            "docker context `{name}`: cannot read {}: {e}",
            meta_path.display()
        )
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let host = v
        .pointer("/Endpoints/docker/Host")
        .and_then(|h| h.as_str())
        .ok_or_else(|| format!("docker context `{name}` has no docker endpoint"))?;
    let endpoint = Endpoint::parse(host).map_err(|m| format!("docker context `{name}`: {m}"))?;
    let tls_dir = dir.join("contexts/tls").join(&digest).join("docker");
    let tls = (matches!(endpoint, Endpoint::Tcp { .. }) && tls_dir.is_dir())
        .then(|| TlsFiles::in_dir(&tls_dir));
    Ok(Some(Resolved {
        endpoint,
        tls,
        source: format!("docker context `{name}`"),
    }))
}
