//! Engine endpoints as the config writes them (`unix://`, `tcp://`, `ssh://`, `default`):
//! parsing and the safety facts (loopback, redaction) that config validation needs without
//! talking to any engine.

use std::net::IpAddr;
use std::path::PathBuf;

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// DOCKER_HOST, then the docker CLI's current context, then /var/run/docker.sock.
    Default,
    Unix(PathBuf),
    Tcp {
        host: String,
        port: u16,
    },
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
    },
}

/// The conventional local socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// An endpoint string that cannot be used; the message says what is accepted (and never
/// repeats a password that was in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

impl Endpoint {
    /// Parse an endpoint string (`unix:///PATH`, `tcp://HOST:PORT`, `ssh://[USER@]HOST[:PORT]`,
    /// `default`). Errors: no scheme, an unsupported one, a relative socket path, a bad port,
    /// a password in the string.
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        Self::parse_text(s).map_err(EndpointError)
    }

    fn parse_text(s: &str) -> Result<Endpoint, String> {
        let s = s.trim();
        if s == "default" || s.is_empty() {
            return Ok(Endpoint::Default);
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("endpoint `{s}` has no scheme; use unix://PATH, tcp://HOST:PORT, ssh://[USER@]HOST[:PORT] or default"))?;
        match scheme {
            "unix" => {
                if rest.is_empty() || !rest.starts_with('/') {
                    return Err(format!("endpoint `{s}`: a unix socket needs an absolute path (unix:///var/run/docker.sock)"));
                }
                Ok(Endpoint::Unix(PathBuf::from(rest)))
            }
            "tcp" | "ssh" => {
                let rest = rest.trim_end_matches('/');
                let (userinfo, hostport) = match rest.rsplit_once('@') {
                    Some((u, h)) => (Some(u), h),
                    None => (None, rest),
                };
                if userinfo.is_some_and(|u| u.contains(':')) {
                    return Err(format!("endpoint for `{}`: passwords do not belong in endpoints; use TLS client certificates or an ssh key", redact(s)));
                }
                let (host, port) = split_host_port(hostport).map_err(|m| format!("endpoint `{s}`: {m}"))?;
                if scheme == "tcp" {
                    if userinfo.is_some() {
                        return Err(format!("endpoint `{s}`: tcp:// takes no user"));
                    }
                    Ok(Endpoint::Tcp { host, port: port.unwrap_or(2376) })
                } else {
                    Ok(Endpoint::Ssh { user: userinfo.map(str::to_string), host, port })
                }
            }
            "http" | "https" => Err(format!("endpoint `{s}`: use tcp://HOST:PORT (TLS is set with `tls`)")),
            "npipe" => Err(format!("endpoint `{s}`: Windows named pipes are not supported")),
            other => Err(format!("endpoint `{s}`: unsupported scheme `{other}`; use unix://, tcp://, ssh:// or default")),
        }
    }

    /// Is this a TCP endpoint on the loopback interface?
    pub fn is_loopback(&self) -> bool {
        match self {
            Endpoint::Tcp { host, .. } => is_loopback_host(host),
            _ => false,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Default => write!(f, "default"),
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { host, port } => write!(f, "tcp://{}:{port}", bracket(host)),
            Endpoint::Ssh { user, host, port } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                write!(f, "{}", bracket(host))?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Remove any `user:password@` from an endpoint-like string, for messages.
pub fn redact(s: &str) -> String {
    match (s.find("://"), s.rfind('@')) {
        (Some(i), Some(j)) if j > i => format!("{}://***@{}", &s[..i], &s[j + 1..]),
        _ => s.to_string(),
    }
}

fn split_host_port(hp: &str) -> Result<(String, Option<u16>), String> {
    if hp.is_empty() {
        return Err("missing host".into());
    }
    if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed `[` in IPv6 address")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected `{after}` after address")),
        };
        return Ok((h.to_string(), port));
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?;
            Ok((h.to_string(), Some(port)))
        }
        _ => Ok((hp.to_string(), None)),
    }
}

/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(Endpoint::parse("default").unwrap(), Endpoint::Default);
        assert_eq!(
            Endpoint::parse("unix:///run/d.sock").unwrap(),
            Endpoint::Unix("/run/d.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2376").unwrap(),
            Endpoint::Tcp {
                host: "10.0.0.2".into(),
                port: 2376
            }
        );
        assert_eq!(
            Endpoint::parse("ssh://me@build-arm:2222").unwrap(),
            Endpoint::Ssh {
                user: Some("me".into()),
                host: "build-arm".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:23").unwrap(),
            Endpoint::Tcp {
                host: "::1".into(),
                port: 23
            }
        );
        assert!(Endpoint::parse("tcp://[::1]:23").unwrap().is_loopback());
        assert!(!Endpoint::parse("tcp://10.1.1.1:23").unwrap().is_loopback());
    }

    #[test]
    fn refuses() {
        assert!(Endpoint::parse("http://x:1")
            .unwrap_err()
            .0
            .contains("use tcp://"));
        assert!(Endpoint::parse("unix://rel")
            .unwrap_err()
            .0
            .contains("absolute"));
        let e = Endpoint::parse("ssh://me:hunter2@host").unwrap_err().0;
        assert!(!e.contains("hunter2"), "{e}");
        assert!(Endpoint::parse("tcp://h:99999")
            .unwrap_err()
            .0
            .contains("bad port"));
        assert!(Endpoint::parse("docker.sock")
            .unwrap_err()
            .0
            .contains("no scheme"));
    }
}
