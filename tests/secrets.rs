//! Credentials never leak: a TLS client key, an ssh private key (good ones that work, and
//! broken ones that make errors), and a password in an endpoint's userinfo. None of them may
//! appear in anything imagegrid writes or shows: command output (text and JSON), build logs,
//! the history database, or the TUI's screen.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "Pa55w0rd-s3cret-7f3a";

/// Secret-looking strings of a key file: its whole text and each line of its body.
fn secrets_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("-----") && l.trim().len() >= 16)
        .map(|l| l.trim().to_string())
        .collect();
    assert!(!v.is_empty(), "{} has a body", path.display());
    v.push(text);
    v
}

/// A key file that is not a valid key but holds something secret-looking, so that errors
/// about it have a chance to quote it.
fn fake_key(dir: &Path, name: &str, header: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    let body = format!("{name}-SECRET-MATERIAL-0123456789abcdefghij");
    std::fs::write(
        &p,
        format!("-----BEGIN {header}-----\n{body}\n{body}\n-----END {header}-----\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn run(cfg: &str, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_imagegrid"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("DOCKER_HOST", format!("tcp://admin:{PASSWORD}@127.0.0.1:1"))
        .env_remove("IMAGEGRID_CONFIG")
        .output()
        .unwrap();
    format!(
        "$ imagegrid {args:?} (exit {:?})\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Everything under a directory, as text (binary files lossily: the history database too).
fn files_under(dir: &Path, out: &mut String) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else if !p.ends_with("config.toml") && !p.to_string_lossy().contains("/keys/") {
            out.push_str(&format!("== {}\n", p.display()));
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
}

/// The TUI on a wide terminal until the engines' states and the stored log show.
fn tui_capture(cfg: &str) -> String {
    let cmd = format!(
        "DOCKER_HOST='tcp://admin:{PASSWORD}@127.0.0.1:1' {} --config {cfg}; sleep 60",
        env!("CARGO_BIN_EXE_imagegrid")
    );
    let term = Tmux::start_sized(&cmd, 400, 50);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut screen = term.screen();
    // Every engine has had its say (up or down), and the focused cell's log is loaded.
    while !(screen.contains("badssh down") && screen.contains("imagegrid: building")) {
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        screen = term.screen();
    }
    drop(term);
    assert!(
        screen.contains("badssh down") && screen.contains("imagegrid: building"),
        "the screen never showed the engines and the log:\n{screen}"
    );
    screen
}

#[test]
fn credentials_never_appear_in_output_logs_history_or_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let tls_dir = env("IMAGEGRID_TEST_TLS_DIR");
    let bad_tls_key = fake_key(&keys, "bad-tls-key.pem", "PRIVATE KEY");
    let bad_ssh_key = fake_key(&keys, "bad-ssh-key", "OPENSSH PRIVATE KEY");
    let ssh = format!("ssh://root@127.0.0.1:{}", env("IMAGEGRID_TEST_SSH_PORT"));
    let engines = format!(
        r#"{tls}
[[engine]]
name = "ssh"
endpoint = "{ssh}"
arches = ["amd64"]
ssh_key = "{ssh_key}"
ssh_known_hosts = "{known}"
remote_socket = "{remote}"
[[engine]]
name = "badtls"
endpoint = "{tls_host}"
arches = ["arm64"]
tls = {{ ca = "{tls_dir}/ca.pem", cert = "{tls_dir}/cert.pem", key = "{bad_tls}" }}
[[engine]]
name = "badssh"
endpoint = "{ssh}"
arches = ["arm64"]
ssh_key = "{bad_ssh}"
ssh_known_hosts = "{known}"
[[engine]]
name = "local"
endpoint = "default"
arches = ["arm64"]
"#,
        tls = tls_engine_toml("tls", &["amd64"]),
        ssh_key = env("IMAGEGRID_TEST_SSH_KEY"),
        known = env("IMAGEGRID_TEST_SSH_KNOWN_HOSTS"),
        remote = env("IMAGEGRID_TEST_SSH_REMOTE_SOCK"),
        tls_host = env("IMAGEGRID_TEST_TLS_HOST"),
        bad_tls = bad_tls_key.display(),
        bad_ssh = bad_ssh_key.display(),
    );
    fixture_config(
        dir.path(),
        "test-secrets",
        &engines,
        &fixture_distro("fixture-secrets", &[]),
        "distros = [\"fixture-secrets\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
    );
    let cfg = dir.path().join("config.toml").display().to_string();

    let mut seen = String::new();
    seen += &run(&cfg, &["check"]);
    seen += &run(&cfg, &["check", "--json"]);
    seen += &run(&cfg, &["build", "*/opam/*", "--json", "--no-cache"]);
    seen += &run(&cfg, &["build", "*/opam/*", "--no-cache"]);
    seen += &run(&cfg, &["history", "--json"]);
    seen += &run(&cfg, &["history"]);
    seen += &run(&cfg, &["log", "fixture-secrets/opam/amd64"]);
    seen += &run(&cfg, &["log", "fixture-secrets/opam/arm64"]);
    seen += &tui_capture(&cfg);
    files_under(dir.path(), &mut seen);

    // The runs did what makes leaks possible: built on the good engines, failed on the bad
    // ones with their reasons, and recorded it all.
    for want in [
        "fixture-secrets/opam/amd64: succeeded",
        "engine badtls",
        "engine badssh",
        "DOCKER_HOST: endpoint for `tcp://",
        "no reachable engine builds arm64",
    ] {
        assert!(seen.contains(want), "expected {want:?} in:\n{seen:.5000}");
    }

    let mut secrets = vec![PASSWORD.to_string()];
    secrets.extend(secrets_of(Path::new(&format!("{tls_dir}/key.pem"))));
    secrets.extend(secrets_of(Path::new(&env("IMAGEGRID_TEST_SSH_KEY"))));
    secrets.extend(secrets_of(&bad_tls_key));
    secrets.extend(secrets_of(&bad_ssh_key));
    for s in &secrets {
        if let Some(at) = seen.find(s.as_str()) {
            let from = seen[..at]
                .rfind("== ")
                .or(seen[..at].rfind("$ "))
                .unwrap_or(0);
            panic!(
                "a credential leaked: {s:.40}… in:\n{}",
                &seen[from..(at + 200).min(seen.len())]
            );
        }
    }
}
