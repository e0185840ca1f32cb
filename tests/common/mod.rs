//! Shared helpers for the real-engine tests. The engines come from `scripts/test-env.sh`
//! (run by `bash scripts/test.sh`); a test that needs one fails loudly when it is missing.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imagegrid::config::{self, LoadedConfig};
use imagegrid::dockerfile::Renderer;
use imagegrid::engine::{Endpoint, EngineSpec, TlsFiles};
use imagegrid::matrix::Matrix;
use imagegrid::scheduler::{BuildEvent, Command, RunOptions, Scheduler, Summary};
use imagegrid::store::StoreHandle;

/// A variable the test environment sets; panics with how to get it.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the real Docker engines of the test environment.\n\
             Run the tests with `bash scripts/test.sh` (it starts them), or `bash scripts/test-env.sh up` \
             and `source /tmp/imagegrid-test/env` first."
        ),
    }
}

/// The unix-socket engine.
pub fn unix_spec(name: &str, arches: &[&str]) -> EngineSpec {
    let endpoint = Endpoint::parse(&env("IMAGEGRID_TEST_UNIX_HOST")).unwrap();
    EngineSpec::new(
        name,
        endpoint,
        arches.iter().map(|s| s.to_string()).collect(),
    )
}

/// The modern engine (engine m of the test environment: Docker 26.1, Engine API 1.45) on its
/// unix socket; the others are Docker 20.10.
pub fn modern_spec(name: &str, arches: &[&str]) -> EngineSpec {
    let endpoint = Endpoint::parse(&env("IMAGEGRID_TEST_MODERN_HOST")).unwrap();
    EngineSpec::new(
        name,
        endpoint,
        arches.iter().map(|s| s.to_string()).collect(),
    )
}

/// The TCP+TLS engine (the "remote").
pub fn tls_spec(name: &str, arches: &[&str]) -> EngineSpec {
    EngineSpec {
        endpoint: Endpoint::parse(&env("IMAGEGRID_TEST_TLS_HOST")).unwrap(),
        tls: Some(TlsFiles::in_dir(Path::new(&env("IMAGEGRID_TEST_TLS_DIR")))),
        ..unix_spec(name, arches)
    }
}

/// A config for fixture cells: the test templates, network none, a private data dir and
/// staging repository (tests run in parallel on shared engines), and the given engines/distros.
pub fn fixture_config(
    data_dir: &Path,
    staging: &str,
    engines: &str,
    distros: &str,
    matrix: &str,
) -> LoadedConfig {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let text = format!(
        "{engines}\n[matrix]\n{matrix}\n{distros}\n[build]\nnetwork = \"none\"\nidle_timeout_secs = 60\nretries = 1\n\
         [tags]\nstaging = \"{staging}\"\n[paths]\ndata_dir = \"{}\"\ntemplates_dir = \"{}\"\n",
        data_dir.display(),
        templates.display()
    );
    let path = data_dir.join("config.toml");
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(&path, text).unwrap();
    config::load_file(&path).unwrap_or_else(|e| panic!("fixture config: {e}"))
}

/// The same config with `[build]` options (`key = value` lines) set, reloaded from its file.
pub fn with_build_options(loaded: &LoadedConfig, lines: &str) -> LoadedConfig {
    let path = loaded.path.clone().expect("a config from a file");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for line in lines.lines() {
        let key = line.split('=').next().unwrap().trim();
        let old = text
            .lines()
            .find(|l| l.split('=').next().map(str::trim) == Some(key))
            .map(str::to_string);
        text = match old {
            Some(old) => text.replacen(&old, line, 1),
            None => text.replacen("[build]\n", &format!("[build]\n{line}\n"), 1),
        };
    }
    std::fs::write(&path, text).unwrap();
    config::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A `[[distro]]` table of a fixture distro built from the busybox fixture image.
pub fn fixture_distro(name: &str, quirks: &[&str]) -> String {
    let q: Vec<String> = quirks.iter().map(|q| format!("\"{q}\"")).collect();
    format!(
        "[[distro]]\nname = \"{name}\"\nbase = \"{}\"\nfamily = \"apk\"\ntier = 3\narches = [\"amd64\", \"arm64\"]\nquirks = [{}]\n",
        env("IMAGEGRID_TEST_FIXTURE_IMAGE"),
        q.join(", ")
    )
}

/// An `[[engine]]` table for the unix engine.
pub fn unix_engine_toml(name: &str, arches: &[&str]) -> String {
    format!(
        "[[engine]]\nname = \"{name}\"\nendpoint = \"{}\"\narches = {arches:?}\nmax_parallel = 2\n",
        env("IMAGEGRID_TEST_UNIX_HOST")
    )
}

/// An `[[engine]]` table for the modern engine (Docker 26.1).
pub fn modern_engine_toml(name: &str, arches: &[&str]) -> String {
    format!(
        "[[engine]]\nname = \"{name}\"\nendpoint = \"{}\"\narches = {arches:?}\nmax_parallel = 2\n",
        env("IMAGEGRID_TEST_MODERN_HOST")
    )
}

/// An `[[engine]]` table for the TLS engine.
pub fn tls_engine_toml(name: &str, arches: &[&str]) -> String {
    format!(
        "[[engine]]\nname = \"{name}\"\nendpoint = \"{}\"\narches = {arches:?}\nmax_parallel = 2\ntls = {{ dir = \"{}\" }}\n",
        env("IMAGEGRID_TEST_TLS_HOST"),
        env("IMAGEGRID_TEST_TLS_DIR")
    )
}

/// A running scheduler over a config, with its event stream collected.
pub struct Run {
    pub handle: imagegrid::scheduler::SchedulerHandle,
    pub events: tokio::sync::mpsc::UnboundedReceiver<BuildEvent>,
    pub task: tokio::task::JoinHandle<Summary>,
    pub seen: Vec<BuildEvent>,
    pub store: StoreHandle,
}

fn test_options(loaded: &LoadedConfig) -> RunOptions {
    let mut opts = RunOptions::from_config(loaded);
    // Tests share engines and cell names across runs: never let a cached step stand in for a build.
    opts.no_cache = true;
    opts
}

/// The build plan of `selectors` of a config.
pub fn plan(
    loaded: &LoadedConfig,
    store: &StoreHandle,
    selectors: &[&str],
) -> Vec<imagegrid::scheduler::PlannedCell> {
    let last_ok = store.try_blocking(|s| s.last_success_per_cell()).unwrap();
    let matrix = Matrix::from_config(loaded).unwrap();
    let renderer = Renderer::new(loaded.templates_dir().as_deref());
    let sels = matrix
        .parse_selectors(&selectors.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap();
    let cells = matrix.select(&sels);
    assert!(!cells.is_empty(), "selectors {selectors:?} match nothing");
    Scheduler::plan(&matrix, &renderer, &last_ok, &test_options(loaded), &cells).unwrap()
}

/// Plan and start building `selectors` of a config.
pub fn start(loaded: &LoadedConfig, selectors: &[&str]) -> Run {
    let matrix = Matrix::from_config(loaded).unwrap();
    let store = StoreHandle::open(&loaded.data_dir()).unwrap();
    let renderer = Renderer::new(loaded.templates_dir().as_deref());
    let opts = test_options(loaded);
    let plan = plan(loaded, &store, selectors);
    let specs = EngineSpec::all(loaded, &matrix);
    let (s, handle, commands, events) = Scheduler::new(
        specs,
        store.clone(),
        Arc::new(renderer),
        Arc::new(matrix),
        opts,
    );
    let task = tokio::spawn(s.run(commands));
    handle.send(Command::Build(plan));
    Run {
        handle,
        events,
        task,
        seen: Vec::new(),
        store,
    }
}

impl Run {
    /// Queue more cells into the running scheduler.
    pub fn queue(&self, loaded: &LoadedConfig, selectors: &[&str]) {
        let plan = plan(loaded, &self.store, selectors);
        self.handle.send(Command::Build(plan));
    }

    /// Wait for an event matching `pred` (keeps everything seen), failing after `secs`.
    pub async fn wait_for(
        &mut self,
        secs: u64,
        what: &str,
        pred: impl Fn(&BuildEvent) -> bool,
    ) -> BuildEvent {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(ev)) => {
                    self.seen.push(ev.clone());
                    if pred(&ev) {
                        return ev;
                    }
                }
                Ok(None) => panic!(
                    "event stream ended while waiting for {what}; seen: {:#?}",
                    self.summary_of_seen()
                ),
                Err(_) => panic!(
                    "timed out after {secs}s waiting for {what}; seen: {:#?}",
                    self.summary_of_seen()
                ),
            }
        }
    }

    /// Run to the end; returns the summary.
    pub async fn finish(mut self, secs: u64) -> (Summary, Vec<BuildEvent>, StoreHandle) {
        let ev = self
            .wait_for(secs, "the end of the run", |e| {
                matches!(e, BuildEvent::Done(_))
            })
            .await;
        let BuildEvent::Done(s) = ev else {
            unreachable!()
        };
        (s, self.seen, self.store)
    }

    fn summary_of_seen(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|e| !matches!(e, BuildEvent::Log { .. }))
            .map(|e| format!("{e:?}"))
            .collect()
    }
}

/// The `Finished` result of a cell among events.
pub fn result<'a>(events: &'a [BuildEvent], cell: &str) -> &'a imagegrid::scheduler::CellResult {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            BuildEvent::Finished(r) if r.cell == cell => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no result for {cell}"))
}

/// Is any process on this machine running with `needle` in its command line?
pub fn process_running(needle: &str) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    rd.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
            .unwrap_or(false)
    })
}

/// A throwaway dockerd of the test's own, for tests that kill or freeze an engine.
pub struct PrivateEngine {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub pid: i32,
    child: std::process::Child,
}

impl PrivateEngine {
    /// Start one and wait until it answers; loads the amd64 busybox fixture image into it.
    pub async fn start() -> PrivateEngine {
        let dir = tempfile::Builder::new()
            .prefix("imagegrid-private-engine.")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("engine.sock");
        let child = Self::spawn(dir.path(), &socket);
        let pid = child.id() as i32;
        let engine = PrivateEngine {
            dir,
            socket,
            pid,
            child,
        };
        engine.wait_until_it_answers().await;
        engine.load_fixture().await;
        engine
    }

    fn spawn(d: &Path, socket: &Path) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("engine.log"))
            .unwrap();
        std::process::Command::new(env("IMAGEGRID_TEST_DOCKERD"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("engine.pid"))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd")
    }

    /// Restart it as `systemctl restart docker` would: SIGTERM, wait for it to exit, start
    /// it again on the same socket and data (images kept), and wait until it answers.
    pub async fn restart(&mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "dockerd did not stop on SIGTERM");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child = Self::spawn(self.dir.path(), &self.socket);
        self.pid = self.child.id() as i32;
        self.wait_until_it_answers().await;
    }

    async fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if imagegrid::engine::Engine::connect(&self.spec("probe", &["amd64"]))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "private dockerd did not start: {}",
                std::fs::read_to_string(self.dir.path().join("engine.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn spec(&self, name: &str, arches: &[&str]) -> EngineSpec {
        EngineSpec::new(
            name,
            Endpoint::Unix(self.socket.clone()),
            arches.iter().map(|s| s.to_string()).collect(),
        )
    }

    pub fn engine_toml(&self, name: &str, arches: &[&str]) -> String {
        format!("[[engine]]\nname = \"{name}\"\nendpoint = \"unix://{}\"\narches = {arches:?}\nmax_parallel = 2\n", self.socket.display())
    }

    async fn load_fixture(&self) {
        let e = imagegrid::engine::Engine::connect(&self.spec("probe", &["amd64"]))
            .await
            .unwrap();
        let busybox = std::fs::read(env("IMAGEGRID_TEST_BUSYBOX_AMD64")).unwrap();
        let req = imagegrid::engine::build::BuildRequest {
            cell_id: "fixture".into(),
            dockerfile: "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n".into(),
            context_files: vec![("busybox".into(), busybox)],
            context_dir: None,
            platform: "linux/amd64".into(),
            tag: format!("{}:amd64", env("IMAGEGRID_TEST_FIXTURE_IMAGE")),
            labels: Default::default(),
            network: imagegrid::config::NetworkMode::None,
            buildkit: false,
            no_cache: false,
            pull: false,
            idle_timeout: Duration::from_secs(60),
        };
        e.build(&req, &Default::default(), |_| {})
            .await
            .expect("load the fixture image");
    }

    /// Send a signal to the engine; panics when `kill` fails (a test must not go on believing
    /// it froze or killed an engine it did not).
    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid);
        if sig == "STOP" {
            // `kill` returns once the signal is sent; a thread already running on the other
            // core can still answer for a moment. Wait until every thread is stopped.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !self.all_threads_stopped() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "engine {} not stopped 10 s after SIGSTOP",
                    self.pid
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Whether every thread of the engine's process is in state T (stopped), from /proc.
    fn all_threads_stopped(&self) -> bool {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return false;
        };
        tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|st| {
                    // The state follows the command name, which is in parentheses.
                    st.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
                })
                .is_some_and(|state| state == "T" || state == "t")
        })
    }

    /// Whether the engine answers `GET /_ping` on its socket within `timeout` (a frozen one
    /// accepts the connection but never answers).
    pub fn answers_ping(&self, timeout: Duration) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(timeout));
        let _ = s.set_write_timeout(Some(timeout));
        if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 200"))
    }

    /// `kill -SIG` without checking: for teardown, where the engine may be gone already.
    fn signal_quietly(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid.to_string()])
            .status();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        // dockerd, its containerd and shims: everything whose command line names our directory.
        let dir = self.dir.path().display().to_string();
        self.signal_quietly("CONT");
        self.signal_quietly("KILL");
        for _ in 0..3 {
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    let cmd = std::fs::read(e.path().join("cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                        .unwrap_or_default();
                    if cmd.contains(&dir) {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", &e.file_name().to_string_lossy()])
                            .status();
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.wait();
        // Mounts of a killed engine (a restarted one especially: its BuildKit executor's) can
        // refuse the first try while the kernel tears the dying processes down: try again
        // until none is left, or the directory could not be removed.
        for _ in 0..10 {
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|m| m.starts_with(&dir))
                .collect();
            if points.is_empty() {
                break;
            }
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for m in points {
                let _ = std::process::Command::new("umount")
                    .args(["-l", m])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One HTTP answer from a registry.
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Media types a client accepts when it wants a manifest of any kind.
pub const ACCEPT_ANY_MANIFEST: &str = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// GET (or HEAD) `path` from a loopback registry `host:port` over plain HTTP/1.0, written by
/// hand so that the tests check the registry independently of the code under test.
pub fn registry_request(
    method: &str,
    host: &str,
    path: &str,
    accept: &str,
    basic: Option<(&str, &str)>,
) -> HttpReply {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("registry {host} does not answer: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: {accept}\r\n");
    if let Some((u, p)) = basic {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("an HTTP status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// GET with no credentials.
pub fn registry_get(host: &str, path: &str, accept: &str) -> HttpReply {
    registry_request("GET", host, path, accept, None)
}

/// A docker-registry of the test's own that wants a user and password (htpasswd, bcrypt), on
/// loopback over plain HTTP (engines treat 127.0.0.0/8 registries as insecure, and send
/// credentials to them). Stopped by its pid when dropped.
pub struct AuthRegistry {
    pub dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub host: String,
    pub user: String,
    pub password: String,
    child: std::process::Child,
}

impl AuthRegistry {
    pub fn start(user: &str, password: &str) -> AuthRegistry {
        // The test environment installs Debian's docker-registry; its absence means no environment.
        let _ = env("IMAGEGRID_TEST_REGISTRY");
        let dir = tempfile::Builder::new()
            .prefix("imagegrid-auth-registry.")
            .tempdir()
            .unwrap();
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
             auth:\n  htpasswd:\n    realm: imagegrid-test\n    path: {htpasswd}\nhttp:\n  addr: {host}\n",
            data = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/docker-registry (installed by scripts/test-env.sh)");
        let r = AuthRegistry {
            dir,
            host,
            user: user.into(),
            password: password.into(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&r.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "the authenticated registry did not start: {}",
                std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    /// GET with the right credentials.
    pub fn get(&self, path: &str, accept: &str) -> HttpReply {
        registry_request(
            "GET",
            &self.host,
            path,
            accept,
            Some((&self.user, &self.password)),
        )
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fault a [`FaultProxy`] injects: the next `times` requests with `method` whose path
/// contains `path` get `status` instead of reaching the registry (with a `Retry-After` header
/// when `retry_after` is set).
#[derive(Debug, Clone, Default)]
pub struct Fault {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub times: usize,
    pub retry_after: Option<String>,
}

type ProxyBody = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

/// A loopback HTTP proxy in front of a real registry that answers chosen requests with HTTP
/// 429 or 5xx, and passes everything else through (keeping the Host header, so the registry's
/// upload locations point back at the proxy). Engines and imagegrid both talk through it.
/// With [`FaultProxy::decline_mounts`] it answers cross-repository mounts as a registry that
/// will not mount does (distribution spec): `202 Accepted` with a fresh upload session, made
/// by passing the POST on without its `mount`/`from` parameters.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    faults: Arc<Mutex<Vec<Fault>>>,
    decline: Arc<std::sync::atomic::AtomicBool>,
    /// `METHOD path -> status` of every injected answer.
    pub injected: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Start one in the current tokio runtime.
    pub async fn start(upstream: &str) -> FaultProxy {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let faults: Arc<Mutex<Vec<Fault>>> = Arc::default();
        let injected: Arc<Mutex<Vec<String>>> = Arc::default();
        let decline: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<hyper::body::Incoming>();
        let upstream = upstream.to_string();
        let (f, inj, dec) = (faults.clone(), injected.clone(), decline.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (f, inj, dec, client, upstream) = (
                    f.clone(),
                    inj.clone(),
                    dec.clone(),
                    client.clone(),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (f, inj, dec, client, upstream) = (
                                f.clone(),
                                inj.clone(),
                                dec.clone(),
                                client.clone(),
                                upstream.clone(),
                            );
                            async move {
                                let method = req.method().as_str().to_string();
                                let path = req
                                    .uri()
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_else(|| "/".into());
                                let hit = f
                                    .lock()
                                    .unwrap()
                                    .iter_mut()
                                    .find(|x| {
                                        x.times > 0 && x.method == method && path.contains(&x.path)
                                    })
                                    .map(|x| {
                                        x.times -= 1;
                                        (x.status, x.retry_after.clone())
                                    });
                                let full = |s: &'static str| -> ProxyBody {
                                    http_body_util::Full::new(bytes::Bytes::from(s))
                                        .map_err(|never| match never {})
                                        .boxed()
                                };
                                if let Some((status, retry_after)) = hit {
                                    inj.lock()
                                        .unwrap()
                                        .push(format!("{method} {path} -> {status}"));
                                    let body = if status == 429 {
                                        r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected: slow down"}]}"#
                                    } else {
                                        "injected failure"
                                    };
                                    let mut answer = hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .header("connection", "close");
                                    if let Some(r) = retry_after {
                                        answer = answer.header("retry-after", r);
                                    }
                                    return Ok::<_, std::convert::Infallible>(
                                        answer.body(full(body)).unwrap(),
                                    );
                                }
                                // A declined mount: the same POST without mount/from opens
                                // an ordinary upload session (202 + Location).
                                let mut path = path;
                                if method == "POST"
                                    && dec.load(std::sync::atomic::Ordering::SeqCst)
                                    && path.contains("/blobs/uploads/?")
                                    && path.contains("mount=")
                                {
                                    inj.lock()
                                        .unwrap()
                                        .push(format!("{method} {path} -> mount declined"));
                                    path.truncate(path.find('?').unwrap());
                                }
                                let (mut parts, body) = req.into_parts();
                                parts.uri = format!("http://{upstream}{path}").parse().unwrap();
                                match client
                                    .request(hyper::Request::from_parts(parts, body))
                                    .await
                                {
                                    Ok(r) => Ok(r.map(|b| b.boxed())),
                                    Err(_) => Ok(hyper::Response::builder()
                                        .status(502)
                                        .body(full("the registry behind the proxy failed"))
                                        .unwrap()),
                                }
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FaultProxy {
            host,
            faults,
            decline,
            injected,
            task,
        }
    }

    /// Decline every cross-repository mount from now on (202 and an upload session).
    pub fn decline_mounts(&self) {
        self.decline
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Add a fault.
    pub fn inject(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    /// Faults not used up yet.
    pub fn pending(&self) -> Vec<Fault> {
        self.faults
            .lock()
            .unwrap()
            .iter()
            .filter(|f| f.times > 0)
            .cloned()
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A real terminal (tmux) running a command, killed when dropped.
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// A 100x30 terminal.
    pub fn start(cmd: &str) -> Tmux {
        Tmux::start_sized(cmd, 100, 30)
    }
    /// A terminal of `width` x `height`.
    pub fn start_sized(cmd: &str, width: u16, height: u16) -> Tmux {
        let session = format!("imagegrid-test-{}-{}", std::process::id(), rand_suffix());
        let ok = std::process::Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                cmd,
            ])
            .status()
            .expect("tmux is installed by scripts/test-env.sh");
        assert!(ok.success());
        Tmux { session }
    }
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            std::process::Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    /// The tmux session's name, for tmux commands a test sends itself (resize-window...).
    pub fn session_name(&self) -> String {
        self.session.clone()
    }
    /// A tmux format evaluated in the pane (`#{alternate_on}`, `#{mouse_any_flag}`...).
    pub fn format(&self, format: &str) -> String {
        let o = std::process::Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.session, format])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
    pub fn screen(&self) -> String {
        let o = std::process::Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    pub fn wait_for(&self, secs: u64, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what:?} on screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// A number that differs between runs, for unique names on shared engines.
pub fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

/// The contents of one file of an image (through a created, never started, container).
pub async fn file_in_image(engine: &imagegrid::engine::Engine, image: &str, path: &str) -> String {
    let docker = engine.docker();
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{DownloadFromContainerOptions, RemoveContainerOptions};
    use futures_util::StreamExt;
    let body = ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(vec!["true".into()]),
        network_disabled: Some(true),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.unwrap().id;
    let opts = DownloadFromContainerOptions { path: path.into() };
    let mut tar_bytes = Vec::new();
    let mut s = docker.download_from_container(&id, Some(opts));
    let mut failure = None;
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(c) => tar_bytes.extend_from_slice(&c),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let rm = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    docker.remove_container(&id, Some(rm)).await.unwrap();
    if let Some(e) = failure {
        panic!("{path} is not in {image}: {e}");
    }
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    text
}

/// Run `git -C dir ARGS` (as a fixed test identity) and return its trimmed stdout; panics
/// with git's stderr when it fails. The moving inputs' stand-in repositories are made so.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@example.org", "-c", "user.name=t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}
