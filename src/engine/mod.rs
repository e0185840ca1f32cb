//! One Docker engine through bollard: connect (unix, tcp+TLS, ssh via a forwarded socket),
//! negotiate the API version, report health, and build one cell (see [`build`]).

pub mod build;
pub mod cleanup;
pub mod builder;
mod endpoint;
mod orphans;
pub mod push;
pub mod transfer;
mod ssh;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};
use serde::Serialize;

use crate::config::{EngineConfig, LoadedConfig};
use crate::matrix::Matrix;
pub use crate::model::endpoint::{is_loopback_host, redact, Endpoint, DEFAULT_SOCKET};
pub use endpoint::{docker_config_dir, resolve_default, Resolved, TlsFiles};
pub use orphans::{OrphanImage, RunningStep};

/// Seconds bollard may take to send a request and get response headers. Builds upload their
/// context inside this window, so it is generous.
const REQUEST_TIMEOUT_SECS: u64 = 300;
/// How long connecting and negotiating may take before an engine counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach one engine and what it may build, from the config.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    pub name: String,
    pub endpoint: Endpoint,
    pub tls: Option<TlsFiles>,
    pub insecure: bool,
    /// Arch names this engine builds.
    pub arches: Vec<String>,
    pub max_parallel: usize,
    pub ssh_key: Option<PathBuf>,
    pub ssh_known_hosts: Option<PathBuf>,
    pub remote_socket: String,
}

impl EngineSpec {
    /// From one `[[engine]]` table (paths relative to the config file).
    pub fn from_config(e: &EngineConfig, loaded: &LoadedConfig, matrix: &Matrix) -> EngineSpec {
        let endpoint = Endpoint::parse(e.endpoint.get_ref()).unwrap_or(Endpoint::Default);
        let tls = e.tls.as_ref().map(|t| {
            let dir = t.dir.as_ref().map(|d| loaded.resolve(d));
            let pick = |explicit: &Option<PathBuf>, file: &str| match (explicit, &dir) {
                (Some(p), _) => loaded.resolve(p),
                (None, Some(d)) => d.join(file),
                (None, None) => PathBuf::from(file),
            };
            TlsFiles {
                ca: pick(&t.ca, "ca.pem"),
                cert: pick(&t.cert, "cert.pem"),
                key: pick(&t.key, "key.pem"),
            }
        });
        let arches = if e.arches.is_empty() {
            matrix.arches.iter().map(|a| a.name.clone()).collect()
        } else {
            e.arches.iter().map(|a| a.get_ref().clone()).collect()
        };
        EngineSpec {
            name: e.name.get_ref().clone(),
            endpoint,
            tls,
            insecure: e.insecure,
            arches,
            max_parallel: *e.max_parallel.get_ref(),
            ssh_key: e.ssh_key.as_ref().map(|p| loaded.resolve(p)),
            ssh_known_hosts: e.ssh_known_hosts.as_ref().map(|p| loaded.resolve(p)),
            remote_socket: e.remote_socket.clone(),
        }
    }

    /// An engine with default settings (no TLS, no ssh, two builds at once).
    pub fn new(name: &str, endpoint: Endpoint, arches: Vec<String>) -> EngineSpec {
        EngineSpec {
            name: name.into(),
            endpoint,
            tls: None,
            insecure: false,
            arches,
            max_parallel: 2,
            ssh_key: None,
            ssh_known_hosts: None,
            remote_socket: DEFAULT_SOCKET.into(),
        }
    }

    /// Every engine of a config; none configured means one local engine for every arch.
    pub fn all(loaded: &LoadedConfig, matrix: &Matrix) -> Vec<EngineSpec> {
        if loaded.config.engines.is_empty() {
            let arches = matrix.arches.iter().map(|a| a.name.clone()).collect();
            return vec![EngineSpec::new("local", Endpoint::Default, arches)];
        }
        loaded
            .config
            .engines
            .iter()
            .map(|e| EngineSpec::from_config(e, loaded, matrix))
            .collect()
    }
}

/// Why an engine could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineErrorKind {
    /// Refused before connecting: unsafe or incomplete settings.
    Refused,
    /// Nothing answered.
    Unreachable,
    /// The TLS handshake failed (certificate does not verify, wrong client cert).
    Tls,
    /// The connection broke or stalled during work.
    Lost,
    /// The engine answered with an error.
    Api,
}

/// An engine problem, naming the engine.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("engine {engine}: {message}")]
pub struct EngineError {
    pub engine: String,
    pub kind: EngineErrorKind,
    pub message: String,
}

impl EngineError {
    pub fn new(engine: &str, kind: EngineErrorKind, message: impl Into<String>) -> EngineError {
        EngineError {
            engine: engine.to_string(),
            kind,
            message: message.into(),
        }
    }

    /// Worth retrying on the same or another engine (connection reset, engine restarted).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            EngineErrorKind::Unreachable | EngineErrorKind::Lost
        )
    }

    /// Classify a bollard error from talking to engine `name`.
    pub fn from_bollard(name: &str, e: &bollard::errors::Error) -> EngineError {
        EngineError::from_bollard_at(name, None, e)
    }

    /// [`EngineError::from_bollard`] naming the endpoint tried (`unix:///path`,
    /// `tcp://host:port`) in a connection failure's message, when it is known.
    pub fn from_bollard_at(
        name: &str,
        endpoint: Option<&Endpoint>,
        e: &bollard::errors::Error,
    ) -> EngineError {
        use bollard::errors::Error as B;
        let text = e.to_string();
        let lower = format!("{e:?}").to_lowercase();
        let kind = if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            EngineErrorKind::Tls
        } else {
            match e {
                B::DockerResponseServerError { .. } | B::DockerStreamError { .. } => {
                    EngineErrorKind::Api
                }
                B::SocketNotFoundError(_) => EngineErrorKind::Unreachable,
                B::RequestTimeoutError => EngineErrorKind::Lost,
                B::IOError { .. } => EngineErrorKind::Lost,
                B::HyperResponseError { .. } => EngineErrorKind::Lost,
                _ if lower.contains("connect") || lower.contains("refused") => {
                    EngineErrorKind::Unreachable
                }
                _ => EngineErrorKind::Lost,
            }
        };
        let message = match kind {
            EngineErrorKind::Tls => format!("TLS handshake failed (does the engine's certificate verify against the configured CA?): {}", source_chain(e)),
            _ => crate::util::root_cause::lead_with_root_cause_at(
                source_chain(e).trim(),
                endpoint.map(|e| e.to_string()).as_deref(),
            ),
        };
        let _ = text;
        EngineError::new(name, kind, message)
    }
}

/// An error and its sources on one line (bollard's top-level messages are often vague).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// What an engine says about itself.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EngineInfo {
    /// Docker version, e.g. 20.10.24.
    pub version: String,
    /// Negotiated API version, e.g. 1.41.
    pub api_version: String,
    pub os: String,
    /// Native arch in matrix naming (amd64, arm64, ...).
    pub arch: String,
    /// Whether builds can use BuildKit.
    pub buildkit: bool,
    /// What its builder accepts (see [`builder::Builder`]).
    pub builder: builder::Builder,
}

/// A connected engine. Cheap to clone (bollard's client is an Arc).
#[derive(Clone)]
pub struct Engine {
    pub spec: EngineSpec,
    /// The endpoint actually used (`default` resolved), for display.
    pub endpoint: Endpoint,
    pub info: EngineInfo,
    docker: Docker,
    _tunnel: Option<Arc<ssh::SshTunnel>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.spec.name)
            .field("endpoint", &self.endpoint.to_string())
            .finish()
    }
}

/// Docker's arch names -> the matrix's.
pub fn normalise_arch(a: &str) -> String {
    match a {
        "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "arm" => "arm32v7",
        "i386" | "i686" | "386" => "i386",
        "ppc64le" | "ppc64el" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
    .to_string()
}

impl Engine {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Connect and negotiate; refuses unsafe settings before any byte is sent.
    pub async fn connect(spec: &EngineSpec) -> Result<Engine, EngineError> {
        let name = spec.name.as_str();
        let (endpoint, mut tls) = match &spec.endpoint {
            Endpoint::Default => {
                let r = resolve_default()
                    .map_err(|m| EngineError::new(name, EngineErrorKind::Refused, m.0))?;
                (r.endpoint, r.tls)
            }
            e => (e.clone(), None),
        };
        if spec.tls.is_some() {
            tls = spec.tls.clone();
        }
        let version = API_DEFAULT_VERSION;
        let tried = endpoint.clone();
        let bollard_err =
            |e: bollard::errors::Error| EngineError::from_bollard_at(name, Some(&tried), &e);
        let mut tunnel = None;
        let docker = match &endpoint {
            Endpoint::Default => unreachable!("resolved above"),
            Endpoint::Unix(path) => {
                if !path.exists() {
                    return Err(EngineError::new(
                        name,
                        EngineErrorKind::Unreachable,
                        format!("socket {} does not exist", path.display()),
                    ));
                }
                Docker::connect_with_unix(&path.to_string_lossy(), REQUEST_TIMEOUT_SECS, version)
                    .map_err(bollard_err)?
            }
            Endpoint::Tcp { host, port } => {
                let addr = format!(
                    "{}:{port}",
                    if host.contains(':') {
                        format!("[{host}]")
                    } else {
                        host.clone()
                    }
                );
                match &tls {
                    Some(files) => {
                        files.check().map_err(|m| EngineError::new(name, EngineErrorKind::Refused, m.0))?;
                        Docker::connect_with_ssl(&addr, &files.key, &files.cert, &files.ca, REQUEST_TIMEOUT_SECS, version)
                            .map_err(bollard_err)?
                    }
                    None if is_loopback_host(host) || spec.insecure => {
                        Docker::connect_with_http(&addr, REQUEST_TIMEOUT_SECS, version).map_err(bollard_err)?
                    }
                    None => {
                        return Err(EngineError::new(
                            name,
                            EngineErrorKind::Refused,
                            format!("plain TCP to {endpoint} refused: it is not loopback; configure `tls` (ca, cert, key) or set `insecure = true` to accept an unencrypted, unauthenticated connection"),
                        ))
                    }
                }
            }
            Endpoint::Ssh { .. } => {
                let t = ssh::SshTunnel::open(spec, &endpoint).await?;
                let d = Docker::connect_with_unix(
                    &t.local_socket().to_string_lossy(),
                    REQUEST_TIMEOUT_SECS,
                    version,
                )
                .map_err(bollard_err)?;
                tunnel = Some(Arc::new(t));
                d
            }
        };
        let docker = match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Err(bollard_err(e)),
            Err(_) => {
                return Err(EngineError::new(
                    name,
                    EngineErrorKind::Unreachable,
                    format!(
                        "no answer from {endpoint} within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                ))
            }
        };
        let mut engine = Engine {
            spec: spec.clone(),
            endpoint,
            info: EngineInfo::default(),
            docker,
            _tunnel: tunnel,
        };
        engine.info = engine.fetch_info().await?;
        Ok(engine)
    }

    /// Ask the engine for its version and platform.
    pub async fn fetch_info(&self) -> Result<EngineInfo, EngineError> {
        // negotiate_version() already fetched /version but does not keep it; this is one more round trip.
        let v = tokio::time::timeout(CONNECT_TIMEOUT, self.docker.version())
            .await
            .map_err(|_| {
                EngineError::new(
                    self.name(),
                    EngineErrorKind::Lost,
                    "version request timed out",
                )
            })?
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        let api = self.docker.client_version();
        let api_version = format!("{}.{}", api.major_version, api.minor_version);
        let os = v.os.clone().unwrap_or_default();
        // BuildKit's session API exists from API 1.39 (Docker 18.09) on Linux engines.
        let buildkit = os == "linux" && (api.major_version, api.minor_version) >= (1, 39);
        let version = v.version.unwrap_or_default();
        Ok(EngineInfo {
            builder: builder::Builder::of_version(&version, buildkit),
            version,
            api_version,
            os,
            arch: normalise_arch(&v.arch.unwrap_or_default()),
            buildkit,
        })
    }

    /// A cheap liveness check for the health loop and the stall watchdog.
    pub async fn ping(&self) -> Result<(), EngineError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(EngineError::from_bollard_at(
                self.name(),
                Some(&self.endpoint),
                &e,
            )),
            Err(_) => Err(EngineError::new(
                self.name(),
                EngineErrorKind::Lost,
                format!("ping got no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            )),
        }
    }

    /// Does this engine build `arch` natively (no emulation)?
    pub fn is_native(&self, arch: &str) -> bool {
        self.info.arch == arch
    }
}

#[cfg(test)]
mod refused_tests {
    use super::*;

    /// A real refused connection (a loopback port and a socket file nobody listens on)
    /// names the endpoint tried, so a person with several engines knows which is down.
    #[tokio::test]
    async fn a_refused_connection_names_the_endpoint() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tcp = Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let e = Engine::connect(&EngineSpec::new("t", tcp, vec![]))
            .await
            .unwrap_err();
        let want = format!("connection refused at tcp://127.0.0.1:{port} (");
        assert!(e.message.starts_with(&want), "{e:?}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = Engine::connect(&EngineSpec::new("u", Endpoint::Unix(path.clone()), vec![]))
            .await
            .unwrap_err();
        let want = format!("connection refused at unix://{} (", path.display());
        assert!(e.message.starts_with(&want), "{e:?}");
    }
}
