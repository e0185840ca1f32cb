//! `ssh://` engines: the system `ssh` client forwards the remote engine's socket to a local one.
//!
//! bollard 0.21's own ssh transport mishandles explicit ports and needs `docker` on the remote;
//! a forwarded socket needs neither, and uses the operator's ssh config, agent and known_hosts.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::{Endpoint, EngineError, EngineErrorKind, EngineSpec};

/// A running `ssh -L` forward; killed when dropped.
pub struct SshTunnel {
    child: std::sync::Mutex<Child>,
    dir: tempdir::Dir,
}

mod tempdir {
    /// A private directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl SshTunnel {
    /// Start `ssh -N -L LOCAL:REMOTE` and wait until the local socket exists.
    pub async fn open(spec: &EngineSpec, endpoint: &Endpoint) -> Result<SshTunnel, EngineError> {
        let Endpoint::Ssh { user, host, port } = endpoint else {
            return Err(EngineError::new(
                &spec.name,
                EngineErrorKind::Refused,
                "not an ssh endpoint",
            ));
        };
        let dir = std::env::temp_dir().join(format!(
            "imagegrid-ssh-{}-{}",
            std::process::id(),
            sanitise(&spec.name)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            EngineError::new(
                &spec.name,
                EngineErrorKind::Refused,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let dir = tempdir::Dir(dir);
        let local = dir.0.join("engine.sock");
        let mut cmd = Command::new("ssh");
        cmd.arg("-nNT")
            .args([
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StreamLocalBindUnlink=yes",
            ])
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ]);
        if let Some(p) = port {
            cmd.arg("-p").arg(p.to_string());
        }
        if let Some(k) = &spec.ssh_key {
            cmd.arg("-i").arg(k).args(["-o", "IdentitiesOnly=yes"]);
        }
        if let Some(kh) = &spec.ssh_known_hosts {
            cmd.arg("-o")
                .arg(format!("UserKnownHostsFile={}", kh.display()));
        }
        cmd.arg("-L")
            .arg(format!("{}:{}", local.display(), spec.remote_socket));
        let target = match user {
            Some(u) => format!("{u}@{host}"),
            None => host.clone(),
        };
        cmd.arg(target)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            EngineError::new(
                &spec.name,
                EngineErrorKind::Refused,
                format!("cannot run ssh: {e}"),
            )
        })?;
        let deadline = Instant::now() + super::CONNECT_TIMEOUT;
        loop {
            if local.exists() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut err).await;
                }
                return Err(EngineError::new(
                    &spec.name,
                    EngineErrorKind::Unreachable,
                    format!(
                        "ssh to {endpoint} exited ({status}): {}",
                        crate::logs::sanitise_line(err.trim().replace('\n', "; ").as_bytes())
                    ),
                ));
            }
            if Instant::now() > deadline {
                return Err(EngineError::new(
                    &spec.name,
                    EngineErrorKind::Unreachable,
                    format!(
                        "ssh to {endpoint} did not forward the engine socket within {} s",
                        super::CONNECT_TIMEOUT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(SshTunnel {
            child: std::sync::Mutex::new(child),
            dir,
        })
    }

    pub fn local_socket(&self) -> PathBuf {
        self.dir.0.join("engine.sock")
    }
}

impl Drop for SshTunnel {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.start_kill();
        }
    }
}

fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
