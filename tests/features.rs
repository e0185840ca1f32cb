//! README features through the real binary: `paths`, `completions`, `history` selectors and
//! `--limit`, `log --build N`, `baseline --build N`, `build --jobs`; where the config comes
//! from (`--config`, `IMAGEGRID_CONFIG`, `~/.config/imagegrid/config.toml`, none); the
//! `default` engine through the docker CLI's current context; plain TCP accepted on loopback
//! or with `insecure = true`; a real build over ssh; live progress on a terminal.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The binary with an empty home of its own and none of the variables that choose a config
/// or an engine, unless `envs` sets them.
fn imagegrid(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imagegrid"));
    c.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("IMAGEGRID_CONFIG")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CONFIG")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_events(out: &[u8]) -> Vec<serde_json::Value> {
    text(out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Ids of `history --json` rows, oldest first.
fn history_ids(home: &Path, cfg: &str, extra: &[&str]) -> Vec<(i64, String)> {
    let mut args = vec!["--config", cfg, "history", "--json"];
    args.extend_from_slice(extra);
    let o = imagegrid(home, &args, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["cell"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn history_log_baseline_jobs_paths_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut engines = unix_engine_toml("local", &["amd64"]);
    engines = engines.replace("max_parallel = 2", "max_parallel = 4");
    let distros = fixture_distro("fixture-f1", &["sleep-1"])
        + &fixture_distro("fixture-f2", &["sleep-1"])
        + &fixture_distro("fixture-f3", &["sleep-1"]);
    fixture_config(
        dir.path(),
        "test-features",
        &engines,
        &distros,
        "distros = [\"fixture-f1\", \"fixture-f2\", \"fixture-f3\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let cfg_path = dir.path().join("config.toml");
    let cfg = cfg_path.display().to_string();

    // --jobs 1: the engine allows 4, the run starts one build at a time.
    let o = imagegrid(
        &home,
        &[
            "--config",
            &cfg,
            "build",
            "*",
            "--jobs",
            "1",
            "--json",
            "--no-cache",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut running = 0i32;
    let mut most = 0;
    let mut started = 0;
    for e in json_events(&o.stdout) {
        match e["event"].as_str() {
            Some("started") => {
                running += 1;
                started += 1;
                most = most.max(running);
            }
            // A retried build went back to the queue; a finished one had started unless it
            // never reached an engine (skipped: no engine).
            Some("retrying") => running -= 1,
            Some("finished") if e["engine"].is_string() => running -= 1,
            _ => {}
        }
    }
    assert_eq!(started, 6, "every cell built");
    assert_eq!(most, 1, "--jobs 1 ran {most} builds at once");

    // A second build of one cell, with a step the first did not have.
    let text_cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text_cfg.replacen("quirks = [\"sleep-1\"]", "quirks = [\"lines-7\"]", 1),
    )
    .unwrap();
    let o = imagegrid(
        &home,
        &["--config", &cfg, "build", "fixture-f1/opam/amd64", "--json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // history: all 7 builds, oldest first; selectors pick cells; --limit keeps the newest N.
    let all = history_ids(&home, &cfg, &[]);
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "{all:?}");
    let f1 = history_ids(&home, &cfg, &["fixture-f1/*/*"]);
    let want_f1: Vec<(i64, String)> = all
        .iter()
        .filter(|(_, c)| c.starts_with("fixture-f1/"))
        .cloned()
        .collect();
    assert_eq!(f1, want_f1);
    assert_eq!(f1.len(), 3, "f1: opam twice and 5.4 once: {f1:?}");
    let bases = history_ids(&home, &cfg, &["*/opam/amd64", "fixture-f3/5.4/amd64"]);
    assert_eq!(bases.len(), 5, "{bases:?}");
    assert_eq!(
        history_ids(&home, &cfg, &["--limit", "2"]),
        all[5..].to_vec()
    );
    let newest_f1_opam: Vec<(i64, String)> = all
        .iter()
        .filter(|(_, c)| c == "fixture-f1/opam/amd64")
        .cloned()
        .collect();
    assert_eq!(newest_f1_opam.len(), 2);
    assert_eq!(
        history_ids(&home, &cfg, &["fixture-f1/opam/*", "--limit", "1"]),
        newest_f1_opam[1..].to_vec()
    );
    let o = imagegrid(&home, &["--config", &cfg, "history", "nope-1/*/*"], &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown distro is a usage error"
    );

    // log --build N: each build's own log; a build of another cell is refused.
    let (first, second) = (newest_f1_opam[0].0, newest_f1_opam[1].0);
    let log = |build: i64| {
        imagegrid(
            &home,
            &[
                "--config",
                &cfg,
                "log",
                "fixture-f1/opam/amd64",
                "--build",
                &build.to_string(),
            ],
            &[],
        )
    };
    let (o1, o2) = (log(first), log(second));
    assert!(o1.status.success() && o2.status.success());
    let (l1, l2) = (text(&o1.stdout), text(&o2.stdout));
    assert!(
        l1.contains("slow step starting") && !l1.contains("seq 7"),
        "{l1}"
    );
    assert!(
        l2.contains("seq 7") && !l2.contains("slow step starting"),
        "{l2}"
    );
    let o = imagegrid(
        &home,
        &["--config", &cfg, "log", "fixture-f1/opam/amd64"],
        &[],
    );
    assert_eq!(text(&o.stdout), l2, "without --build: the newest build");
    let other = all
        .iter()
        .find(|(_, c)| c == "fixture-f2/opam/amd64")
        .unwrap()
        .0;
    let o = log(other);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains(&format!(
            "build {other} is of cell fixture-f2/opam/amd64, not fixture-f1/opam/amd64"
        )),
        "{}",
        text(&o.stderr)
    );

    // baseline --build N pins that build, not the newest.
    let o = imagegrid(
        &home,
        &[
            "--config",
            &cfg,
            "baseline",
            "fixture-f1/opam/amd64",
            "--build",
            &first.to_string(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // fixture_config: the data directory is the config's own directory.
    let pinned = imagegrid::store::Store::open(dir.path())
        .unwrap()
        .baselines()
        .unwrap();
    assert_eq!(pinned["fixture-f1/opam/amd64"].id, first);
    let o = imagegrid(
        &home,
        &[
            "--config",
            &cfg,
            "baseline",
            "fixture-f1/*/*",
            "--build",
            &other.to_string(),
        ],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "a build the selector does not match"
    );

    // paths: where this config puts things.
    let o = imagegrid(&home, &["--config", &cfg, "paths"], &[]);
    assert!(o.status.success());
    let data = dir.path();
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], format!("config     {cfg}"));
    assert_eq!(lines[1], format!("data       {}", data.display()));
    // The history and the logs say how much they hold (bytes; the logs in how many files).
    let history = format!("history    {}  (", data.join("history.sqlite").display());
    assert!(
        lines[2].starts_with(&history) && lines[2].ends_with("B)"),
        "{out}"
    );
    let logs = format!("logs       {}  (", data.join("logs").display());
    assert!(
        lines[3].starts_with(&logs) && lines[3].contains(" files)"),
        "{out}"
    );
    assert_eq!(
        lines[4],
        format!(
            "templates  {} (overrides the built-in ones)",
            templates.display()
        )
    );

    // completions: a script bash accepts, naming the subcommands.
    let o = imagegrid(&home, &["completions", "bash"], &[]);
    assert!(o.status.success());
    let script = dir.path().join("imagegrid.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let b = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; complete -p imagegrid",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(
        b.status.success() && text(&b.stdout).contains("imagegrid"),
        "{}{}",
        text(&b.stdout),
        text(&b.stderr)
    );
    for sub in ["build", "history", "baseline", "paths", "publish"] {
        assert!(
            text(&o.stdout).contains(sub),
            "no {sub} in the bash completions"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = imagegrid(&home, &["completions", shell], &[]);
        assert!(o.status.success() && !o.stdout.is_empty(), "{shell}");
    }
    let o = imagegrid(&home, &["completions", "tcsh"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

/// A config file naming one distro, so that which file was read shows in `matrix`.
fn marked_config(path: &Path, distro: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("[matrix]\ndistros = [\"{distro}\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]\n"),
    )
    .unwrap();
}

fn matrix_distros(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Vec<String> {
    let mut a = args.to_vec();
    a.extend(["matrix", "--json"]);
    let o = imagegrid(home, &a, envs);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let cells: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let mut d: Vec<String> = cells
        .iter()
        .map(|c| {
            c["id"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    d.dedup();
    d
}

#[test]
fn config_lookup_order() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let home_cfg = home.join(".config/imagegrid/config.toml");
    let env_cfg = dir.path().join("env.toml");
    let flag_cfg = dir.path().join("flag.toml");

    // None: the built-in matrix, and `paths` says which file would have been read.
    std::fs::create_dir_all(&home).unwrap();
    let builtin = matrix_distros(&home, &[], &[]);
    assert!(
        builtin.len() > 5 && builtin.iter().any(|d| d == "debian-13"),
        "{builtin:?}"
    );
    let o = imagegrid(&home, &["paths"], &[]);
    assert!(
        text(&o.stdout).lines().next().unwrap().contains(&format!(
            "(built-in defaults; {} does not exist)",
            home_cfg.display()
        )),
        "{}",
        text(&o.stdout)
    );

    // ~/.config/imagegrid/config.toml, then IMAGEGRID_CONFIG over it, then --config over both.
    marked_config(&home_cfg, "alpine-3.24");
    marked_config(&env_cfg, "ubuntu-24.04");
    marked_config(&flag_cfg, "fedora-44");
    assert_eq!(matrix_distros(&home, &[], &[]), ["alpine-3.24"]);
    let env = [("IMAGEGRID_CONFIG", env_cfg.to_str().unwrap())];
    assert_eq!(matrix_distros(&home, &[], &env), ["ubuntu-24.04"]);
    assert_eq!(
        matrix_distros(&home, &["--config", flag_cfg.to_str().unwrap()], &env),
        ["fedora-44"]
    );
    // XDG_CONFIG_HOME moves the home config.
    let xdg = dir.path().join("xdg");
    marked_config(&xdg.join("imagegrid/config.toml"), "archlinux");
    assert_eq!(
        matrix_distros(&home, &[], &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())]),
        ["archlinux"]
    );
    // An IMAGEGRID_CONFIG that does not exist is an error, not a silent fallback.
    let o = imagegrid(
        &home,
        &["matrix"],
        &[(
            "IMAGEGRID_CONFIG",
            dir.path().join("missing.toml").to_str().unwrap(),
        )],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
}

/// The text of `check` with a config that names no engine: the `default` engine only.
fn check_default(home: &Path, cfg: &Path, envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let o = imagegrid(home, &["--config", cfg.to_str().unwrap(), "check"], envs);
    (o.status.code(), text(&o.stdout) + &text(&o.stderr))
}

#[test]
fn default_engine_from_docker_host_the_cli_context_or_the_local_socket() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[matrix]\ndistros = [\"debian-13\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]\n[paths]\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let unix = env("IMAGEGRID_TEST_UNIX_HOST");

    // No DOCKER_HOST, no context: the local socket.
    let (_, out) = check_default(&home, &cfg, &[]);
    assert!(out.contains("/var/run/docker.sock"), "{out}");

    // The docker CLI's current context (config.json's currentContext), as `docker context
    // create` stores it: contexts/meta/<sha256 of the name>/meta.json.
    let docker = home.join(".docker");
    let name = "imagegrid-test-ctx";
    let digest = sha256_hex(name);
    let meta = docker.join("contexts/meta").join(&digest);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": { "docker": { "Host": unix, "SkipTLSVerify": false } }
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({ "currentContext": name }).to_string(),
    )
    .unwrap();
    let (code, out) = check_default(&home, &cfg, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("reachable") && out.contains(&unix), "{out}");

    // DOCKER_CONTEXT names another context; DOCKER_CONFIG moves the directory.
    let (code, out) = check_default(&home, &cfg, &[("DOCKER_CONTEXT", "no-such-context")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("engine local: UNREACHABLE at default: docker context `no-such-context`"),
        "{out}"
    );
    let moved = dir.path().join("docker-config");
    std::fs::rename(&docker, &moved).unwrap();
    let (code, out) = check_default(&home, &cfg, &[]);
    assert!(out.contains("/var/run/docker.sock"), "context gone: {out}");
    let _ = code;
    let (code, out) = check_default(&home, &cfg, &[("DOCKER_CONFIG", moved.to_str().unwrap())]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&unix), "{out}");

    // DOCKER_HOST wins over the context.
    let (code, out) = check_default(
        &home,
        &cfg,
        &[
            ("DOCKER_CONFIG", moved.to_str().unwrap()),
            ("DOCKER_HOST", "unix:///nonexistent/imagegrid.sock"),
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("/nonexistent/imagegrid.sock"), "{out}");
}

/// `sha256sum` of a string, as the docker CLI names a context's directory.
fn sha256_hex(s: &str) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    text(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A plain TCP front for engine a's unix socket (a real engine over unencrypted TCP), on
/// every address of the machine, until the test process ends.
fn plain_tcp_engine() -> u16 {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = PathBuf::from(
        env("IMAGEGRID_TEST_UNIX_HOST")
            .strip_prefix("unix://")
            .unwrap(),
    );
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let unix = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            let (mut tr, mut tw) = (tcp.try_clone().unwrap(), tcp);
            let (mut ur, mut uw) = (unix.try_clone().unwrap(), unix);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut tr, &mut uw);
                let _ = uw.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut ur, &mut tw);
                let _ = tw.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

/// An IPv4 address of this machine that is not loopback (`hostname -I`).
fn non_loopback_ipv4() -> String {
    let o = Command::new("hostname").arg("-I").output().unwrap();
    text(&o.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .expect("this test needs a non-loopback IPv4 address on the machine (hostname -I)")
        .to_string()
}

#[test]
fn plain_tcp_on_loopback_or_insecure_and_a_build_over_ssh() {
    let port = plain_tcp_engine();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let ip = non_loopback_ipv4();
    let ssh = format!(
        "[[engine]]\nname = \"over-ssh\"\nendpoint = \"ssh://root@127.0.0.1:{}\"\narches = [\"arm64\"]\nssh_key = \"{}\"\nssh_known_hosts = \"{}\"\nremote_socket = \"{}\"\n",
        env("IMAGEGRID_TEST_SSH_PORT"),
        env("IMAGEGRID_TEST_SSH_KEY"),
        env("IMAGEGRID_TEST_SSH_KNOWN_HOSTS"),
        env("IMAGEGRID_TEST_SSH_REMOTE_SOCK"),
    );
    let engines = format!(
        "[[engine]]\nname = \"plain\"\nendpoint = \"tcp://127.0.0.1:{port}\"\narches = [\"amd64\"]\n{ssh}"
    );
    fixture_config(
        dir.path(),
        "test-features-tcp",
        &engines,
        &fixture_distro("fixture-tcp", &[]),
        "distros = [\"fixture-tcp\"]\nversions = [\"5.4\"]\narches = [\"amd64\", \"arm64\"]",
    );
    let cfg_path = dir.path().join("config.toml");
    let cfg = cfg_path.display().to_string();

    // Loopback plain TCP is accepted and builds; arm64 is built over ssh (the only engine
    // for it: the forwarded socket is engine a's, which emulates arm64).
    let o = imagegrid(
        &home,
        &["--config", &cfg, "build", "*", "--json", "--no-cache"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let mut on: Vec<(String, String)> = json_events(&o.stdout)
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| {
            assert_eq!(e["status"], "succeeded", "{e}");
            (
                e["cell"].as_str().unwrap().to_string(),
                e["engine"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    on.sort();
    assert_eq!(
        on,
        [
            ("fixture-tcp/5.4/amd64".into(), "plain".into()),
            ("fixture-tcp/5.4/arm64".into(), "over-ssh".into()),
            ("fixture-tcp/opam/amd64".into(), "plain".into()),
            ("fixture-tcp/opam/arm64".into(), "over-ssh".into()),
        ]
    );
    // What each engine builds natively is learnt from the engine itself (both are x86_64
    // here): amd64 natively, arm64 by emulation. (Which engine wins when one builds an arch
    // natively and another emulates it is `scheduler::route`'s unit tests: no machine of
    // this test environment has a native arm64 engine.)
    for e in json_events(&o.stdout)
        .iter()
        .filter(|e| e["event"] == "started")
    {
        let arm = e["cell"].as_str().unwrap().ends_with("/arm64");
        assert_eq!(e["emulated"], arm, "{e}");
    }
    // The image built over ssh is arm64 (inspected on the engine behind the socket).
    let image = imagegrid::store::Store::open(dir.path())
        .unwrap()
        .last_success_per_cell()
        .unwrap()["fixture-tcp/5.4/arm64"]
        .image_id
        .clone()
        .unwrap();
    let o = Command::new("docker")
        .args(["-H", &env("IMAGEGRID_TEST_UNIX_HOST")])
        .args(["image", "inspect", "--format", "{{.Architecture}}", &image])
        .output()
        .unwrap();
    assert_eq!(text(&o.stdout).trim(), "arm64", "{}", text(&o.stderr));

    // The same plain engine at a non-loopback address: refused, unless `insecure = true`.
    let remote = format!(
        "[[engine]]\nname = \"plain\"\nendpoint = \"tcp://{ip}:{port}\"\narches = [\"amd64\"]\n"
    );
    let text_cfg = std::fs::read_to_string(&cfg_path).unwrap();
    let plain_table = format!(
        "[[engine]]\nname = \"plain\"\nendpoint = \"tcp://127.0.0.1:{port}\"\narches = [\"amd64\"]\n"
    );
    assert!(text_cfg.contains(&plain_table));
    std::fs::write(&cfg_path, text_cfg.replace(&plain_table, &remote)).unwrap();
    let o = imagegrid(&home, &["--config", &cfg, "check"], &[]);
    let out = text(&o.stdout) + &text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "plain TCP to tcp://{ip}:{port} refused: it is not loopback"
        )),
        "{out}"
    );
    std::fs::write(
        &cfg_path,
        text_cfg.replace(&plain_table, &(remote + "insecure = true\n")),
    )
    .unwrap();
    let o = imagegrid(&home, &["--config", &cfg, "check"], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("engine plain: reachable"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn live_progress_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    fixture_config(
        dir.path(),
        "test-features-live",
        &unix_engine_toml("local", &["amd64"]),
        &fixture_distro("fixture-live", &["sleep-4"]),
        "distros = [\"fixture-live\"]\nversions = [\"5.4\"]\narches = [\"amd64\"]",
    );
    let cfg = dir.path().join("config.toml").display().to_string();
    let t = Tmux::start_sized(
        &format!(
            "{} --config {cfg} build 'fixture-live/*/amd64' --no-cache; echo EXIT=$?; sleep 60",
            env!("CARGO_BIN_EXE_imagegrid")
        ),
        120,
        30,
    );
    // While the slow step runs: the live block names the cell, its engine and step, and the
    // counters.
    let s = t.wait_for(120, "fixture-live/opam/amd64 on local: step");
    assert!(s.contains("1 running"), "{s}");
    let s = t.wait_for(120, "EXIT=");
    assert!(s.contains("EXIT=0"), "{s}");
    for cell in ["fixture-live/opam/amd64", "fixture-live/5.4/amd64"] {
        assert!(s.contains(&format!("{cell}: succeeded")), "{s}");
    }
    // The live block is gone at the end: no cell is left shown as running.
    assert!(!s.contains("on local: step"), "{s}");
}
