//! Registry credentials: from the imagegrid config (`[publish]` username with a password file or
//! variable), else from the docker CLI's config (`credHelpers`, `auths`, `credsStore`).
//! Resolved once per publish; the secret lives in a [`Secret`], which never prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;

use crate::config::LoadedConfig;

/// The docker config's key for Docker Hub.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// A password or token. Its `Debug` and `Display` print `***`, so that no log line, error
/// or event can carry it by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Credentials for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
    /// Where they came from, for messages (`docker config /root/.docker/config.json (auths)`).
    pub source: String,
}

impl Credentials {
    /// For the Engine API's `X-Registry-Auth` (bollard).
    pub fn docker(&self, registry: &str) -> bollard::auth::DockerCredentials {
        bollard::auth::DockerCredentials {
            username: Some(self.username.clone()),
            password: Some(self.secret.expose().to_string()),
            serveraddress: Some(server_address(registry)),
            ..Default::default()
        }
    }

    /// For oci-client.
    pub fn oci(&self) -> oci_client::secrets::RegistryAuth {
        oci_client::secrets::RegistryAuth::Basic(
            self.username.clone(),
            self.secret.expose().to_string(),
        )
    }
}

/// Why credentials could not be resolved. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credentials for registry {registry}: {message}")]
pub struct AuthError {
    pub registry: String,
    pub message: String,
}

/// What the docker config calls a registry: Docker Hub's legacy URL, else the host.
pub fn server_address(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Docker Hub, under any of its names (or none).
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// A docker config key (`https://host/v1/`, `host`) reduced to the host.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    host == registry || (is_docker_hub(registry) && is_docker_hub(host))
}

/// Where the docker config lives: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    crate::engine::docker_config_dir()
}

/// Resolve the credentials for `registry`: the imagegrid config's, else the docker config's
/// (in `docker_dir`), else none (anonymous).
pub async fn resolve(
    loaded: &LoadedConfig,
    registry: &str,
    docker_dir: &Path,
) -> Result<Option<Credentials>, AuthError> {
    let err = |message: String| AuthError {
        registry: display_registry(registry),
        message,
    };
    let p = &loaded.config.publish;
    if let Some(username) = &p.username {
        let (secret, source) = if let Some(file) = &p.password_file {
            let path = loaded.resolve(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                err(format!(
                    "publish.password_file {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            let first = text.lines().next().unwrap_or("").to_string();
            (first, format!("publish.password_file {}", path.display()))
        } else if let Some(var) = &p.password_env {
            let v = std::env::var(var)
                .map_err(|_| err(format!("publish.password_env: ${var} is not set")))?;
            (v, format!("publish.password_env ${var}"))
        } else {
            return Err(err(
                "publish.username needs password_file or password_env".into()
            ));
        };
        if secret.is_empty() {
            return Err(err(format!("{source} gives an empty password")));
        }
        return Ok(Some(Credentials {
            username: username.clone(),
            secret: Secret::new(secret),
            source: format!("imagegrid config ({source})"),
        }));
    }
    from_docker_config(registry, docker_dir).await.map_err(err)
}

/// `docker.io` for an empty registry, for messages.
pub fn display_registry(registry: &str) -> String {
    if registry.is_empty() {
        "docker.io".into()
    } else {
        registry.to_string()
    }
}

/// The docker CLI's way: a per-registry helper, else an `auths` entry, else the default store.
async fn from_docker_config(registry: &str, dir: &Path) -> Result<Option<Credentials>, String> {
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let shown = path.display();
    if let Some(helpers) = v.get("credHelpers").and_then(|h| h.as_object()) {
        if let Some(helper) = helpers
            .iter()
            .find(|(k, _)| same_registry(k, registry))
            .and_then(|(_, h)| h.as_str())
        {
            return helper_get(helper, registry, &format!("{shown} (credHelpers)")).await;
        }
    }
    if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
        if let Some(entry) = auths
            .iter()
            .find(|(k, _)| same_registry(k, registry))
            .map(|(_, e)| e)
        {
            if let Some(c) = auth_entry(entry, &format!("{shown} (auths)"))? {
                return Ok(Some(c));
            }
        }
    }
    if let Some(store) = v
        .get("credsStore")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
    {
        return helper_get(store, registry, &format!("{shown} (credsStore)")).await;
    }
    Ok(None)
}

/// One `auths` entry: `auth` (base64 `user:password`) or `username` + `password`.
/// An entry with neither is a placeholder left by a credential store: None.
fn auth_entry(entry: &serde_json::Value, source: &str) -> Result<Option<Credentials>, String> {
    if entry
        .get("identitytoken")
        .and_then(|t| t.as_str())
        .is_some_and(|t| !t.is_empty())
    {
        return Err(format!(
            "{source}: the entry holds an identity token, which imagegrid cannot use; log in with a password or access token, or set publish.username and publish.password_file"
        ));
    }
    if let Some(auth) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("{source}: `auth` is not base64"))?;
        let text =
            String::from_utf8(raw).map_err(|_| format!("{source}: `auth` is not UTF-8 text"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| format!("{source}: `auth` is not user:password"))?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            secret: Secret::new(pass),
            source: format!("docker config {source}"),
        }));
    }
    let user = entry.get("username").and_then(|u| u.as_str());
    let pass = entry.get("password").and_then(|u| u.as_str());
    match (user, pass) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok(Some(Credentials {
            username: u.to_string(),
            secret: Secret::new(p),
            source: format!("docker config {source}"),
        })),
        _ => Ok(None),
    }
}

/// Ask `docker-credential-<helper> get` (on PATH), the docker credential helper protocol:
/// the server address on stdin, `{"ServerURL","Username","Secret"}` on stdout.
async fn helper_get(
    helper: &str,
    registry: &str,
    source: &str,
) -> Result<Option<Credentials>, String> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{source}: `{helper}` is not a credential helper name"
        ));
    }
    helper_get_program(&format!("docker-credential-{helper}"), registry, source).await
}

/// Run one credential helper program (`get`) for `registry`.
async fn helper_get_program(
    program: &str,
    registry: &str,
    source: &str,
) -> Result<Option<Credentials>, String> {
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{source}: cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input (it failed) closes the pipe first:
        // that is not the error to report; its exit status and output are.
        if let Err(e) = stdin.write_all(server_address(registry).as_bytes()).await {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(format!("{source}: writing to {program}: {e}"));
            }
        }
    }
    let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "{source}: {program} did not answer within {} s",
                HELPER_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("{source}: {program}: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if said.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // The helper failed: its first line of output says why. A helper prints a secret
        // only on success; should a broken one print it anyway, it is not repeated.
        let first = said.lines().next().unwrap_or("").trim();
        let first: String = if said.to_lowercase().contains("secret") {
            "(output withheld: it mentions a secret)".into()
        } else {
            crate::logs::sanitise_line(first.as_bytes())
                .chars()
                .take(200)
                .collect()
        };
        return Err(format!(
            "{source}: {program} failed ({}): {first}",
            out.status
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!("{source}: {program} printed something that is not its JSON answer")
    })?;
    if a.username == "<token>" {
        return Err(format!(
            "{source}: {program} holds an identity token, which imagegrid cannot use; set publish.username and publish.password_file"
        ));
    }
    Ok(Some(Credentials {
        username: a.username,
        secret: Secret::new(a.secret),
        source: format!("docker credential helper {program} ({source})"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, json: &str) {
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            username: "u".into(),
            secret: Secret::new("hunter2"),
            source: "s".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.secret.to_string(), "***");
        assert_eq!(c.secret.expose(), "hunter2");
    }

    #[tokio::test]
    async fn docker_config_auths() {
        let d = tempfile::tempdir().unwrap();
        let loaded = LoadedConfig::defaults();
        // user:pa:ss -> the password keeps its colon.
        write_config(
            d.path(),
            r#"{"auths": {"https://127.0.0.1:5000/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                          "https://index.docker.io/v1/": {"username": "hub", "password": "p"},
                          "other:1": {}}}"#,
        );
        let c = resolve(&loaded, "127.0.0.1:5000", d.path())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.secret.expose()), ("user", "pa:ss"));
        assert!(c.source.contains("(auths)"), "{}", c.source);
        let hub = resolve(&loaded, "", d.path()).await.unwrap().unwrap();
        assert_eq!(hub.username, "hub");
        // A placeholder entry and an unknown registry: anonymous.
        assert!(resolve(&loaded, "other:1", d.path())
            .await
            .unwrap()
            .is_none());
        assert!(resolve(&loaded, "nowhere:2", d.path())
            .await
            .unwrap()
            .is_none());
        // No config at all: anonymous.
        let empty = tempfile::tempdir().unwrap();
        assert!(resolve(&loaded, "x", empty.path()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn broken_entries_say_where_without_the_secret() {
        let d = tempfile::tempdir().unwrap();
        let loaded = LoadedConfig::defaults();
        write_config(d.path(), r#"{"auths": {"r:1": {"auth": "not base64!"}}}"#);
        let e = resolve(&loaded, "r:1", d.path()).await.unwrap_err();
        assert!(e.to_string().contains("`auth` is not base64"), "{e}");
        assert!(e.to_string().contains("registry r:1"), "{e}");
        write_config(
            d.path(),
            r#"{"credHelpers": {"r:1": "imagegrid-no-such-helper"}}"#,
        );
        let e = resolve(&loaded, "r:1", d.path()).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot run docker-credential-imagegrid-no-such-helper"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_failing_helper_never_echoes_a_secret() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("docker-credential-imagegrid-unit-broken");
        std::fs::write(
            &bin,
            "#!/bin/sh\nprintf '{\"Username\":\"u\",\"Secret\":\"hunter2\"}'\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // Called by path: helper_get takes a name, so run the protocol step directly.
        let e = helper_get_program(bin.to_str().unwrap(), "r:1", "test")
            .await
            .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("output withheld"), "{e}");
    }

    #[tokio::test]
    async fn imagegrid_config_wins() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pw"), "s3cret\nignored\n").unwrap();
        let text = "[publish]\nusername = \"me\"\npassword_file = \"pw\"\n";
        let path = d.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let loaded = crate::config::load_file(&path).unwrap();
        write_config(
            d.path(),
            r#"{"auths": {"r:1": {"auth": "dXNlcjpwYTpzcw=="}}}"#,
        );
        let c = resolve(&loaded, "r:1", d.path()).await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.secret.expose()), ("me", "s3cret"));
        assert!(c.source.starts_with("imagegrid config"), "{}", c.source);
        // Half a credential is a config error.
        let e = crate::config::parse("t.toml", "[publish]\nusername = \"me\"\n").unwrap_err();
        assert!(e.to_string().contains("needs `password_file`"), "{e}");
    }
}
