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
use imagegrid::store::Store;

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
    pub store: Arc<Mutex<Store>>,
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
    store: &Store,
    selectors: &[&str],
) -> Vec<imagegrid::scheduler::PlannedCell> {
    let matrix = Matrix::from_config(loaded).unwrap();
    let renderer = Renderer::new(loaded.templates_dir().as_deref());
    let sels = matrix
        .parse_selectors(&selectors.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap();
    let cells = matrix.select(&sels);
    assert!(!cells.is_empty(), "selectors {selectors:?} match nothing");
    Scheduler::plan(&matrix, &renderer, store, &test_options(loaded), &cells).unwrap()
}

/// Plan and start building `selectors` of a config.
pub fn start(loaded: &LoadedConfig, selectors: &[&str]) -> Run {
    let matrix = Matrix::from_config(loaded).unwrap();
    let store = Store::open(&loaded.data_dir()).unwrap();
    let renderer = Renderer::new(loaded.templates_dir().as_deref());
    let opts = test_options(loaded);
    let plan = plan(loaded, &store, selectors);
    let store = Arc::new(Mutex::new(store));
    let specs = EngineSpec::all(loaded, &matrix);
    let (s, handle, commands, events) = Scheduler::new(
        specs,
        store.clone(),
        Arc::new(renderer),
        Arc::new(matrix),
        opts,
    );
    let task = tokio::spawn(s.run(commands, true));
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
        let plan = plan(loaded, &self.store.lock().unwrap(), selectors);
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
    pub async fn finish(mut self, secs: u64) -> (Summary, Vec<BuildEvent>, Arc<Mutex<Store>>) {
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

    /// Send a signal to the engine.
    pub fn signal(&self, sig: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid.to_string()])
            .status();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        // dockerd, its containerd and shims: everything whose command line names our directory.
        let dir = self.dir.path().display().to_string();
        self.signal("CONT");
        self.signal("KILL");
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
