//! Build one image on one engine: tar the context in memory, stream the build, decode every
//! progress item (classic and BuildKit) into sanitised log lines and step progress, then
//! inspect the result (id, size, per-layer sizes with the instruction that made each).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, EngineErrorKind};
use crate::logs::{sanitise_line, LineSplitter, DEFAULT_MAX_LINE_BYTES};
pub use crate::model::image::Layer;
use crate::model::image::DOCKERFILE_NAME;
use crate::model::options::NetworkMode;

/// The side Dockerfile the classic builder gets (the rendered one plus one LABEL line).
pub const CLASSIC_DOCKERFILE: &str = "Dockerfile.imagegrid";

/// Label naming the cell an image or build belongs to.
pub const LABEL_CELL: &str = "imagegrid.cell";
/// Label carrying the cell's inputs hash (cache key).
pub const LABEL_INPUTS: &str = "imagegrid.inputs";
/// Label carrying the imagegrid build id (to find builds again after a crash).
pub const LABEL_BUILD: &str = "imagegrid.build";

/// Everything one build needs.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub cell_id: String,
    pub dockerfile: String,
    /// Extra files for the build context (name, contents).
    pub context_files: Vec<(String, Vec<u8>)>,
    /// A directory whose whole tree (`.git` included) is the build context's root, beside
    /// the Dockerfile and `context_files` (which win over its files of the same name):
    /// streamed to the engine as a tar, never held whole in memory.
    pub context_dir: Option<std::path::PathBuf>,
    /// Docker platform, e.g. `linux/arm64`.
    pub platform: String,
    pub tag: String,
    pub labels: BTreeMap<String, String>,
    pub network: NetworkMode,
    pub buildkit: bool,
    pub no_cache: bool,
    pub pull: bool,
    /// No output for this long (and a failed ping) means the engine is gone.
    pub idle_timeout: Duration,
}

/// Something a running build reports.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildProgress {
    /// One sanitised log line.
    Line(String),
    /// Step n of m, with the step's name.
    Step {
        current: u32,
        total: u32,
        name: String,
    },
}

/// A successful build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    pub image_id: String,
    /// Uncompressed size in bytes.
    pub size: i64,
    pub architecture: String,
    /// `linux`, `windows` (empty in records written before it was kept).
    #[serde(default)]
    pub os: String,
    /// `v7`, `v8`... when the image config names one.
    #[serde(default)]
    pub variant: Option<String>,
    pub layers: Vec<Layer>,
}

/// Does an image's platform (its config's os, architecture, variant) answer the one a build
/// asked for (`linux/arm64`, `linux/arm/v7`)? `Err` names what was judged and both platforms,
/// e.g. "platform: built a linux/amd64 image for linux/arm64". The variant is compared only
/// when the request names one.
fn check_platform(requested: &str, built: &BuiltImage) -> Result<(), String> {
    let mut parts = requested.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    let (Some(os), Some(arch)) = (os, arch) else {
        return Ok(()); // no platform asked: the engine's own
    };
    let got_arch = super::normalise_arch(&built.architecture);
    let want_arch = super::normalise_arch(match (arch, variant) {
        ("arm", Some("v7")) => "arm",
        (a, _) => a,
    });
    let os_ok = built.os.is_empty() || built.os == os;
    let variant_ok = match (variant, built.variant.as_deref()) {
        (Some(w), Some(g)) => w == g,
        _ => true,
    };
    if os_ok && got_arch == want_arch && variant_ok {
        return Ok(());
    }
    let got = match built.variant.as_deref() {
        Some(v) if !v.is_empty() => format!("{}/{}/{v}", built.os, built.architecture),
        _ => format!("{}/{}", built.os, built.architecture),
    };
    Err(format!("platform: built a {got} image for {requested}"))
}

/// Why a build did not produce an image.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The build itself failed (a step exited non-zero, bad Dockerfile): never retried.
    #[error("{0}")]
    Failed(String),
    /// The build ran to its end, but the image it made was judged wrong afterwards (another
    /// platform than asked, or no image under the tag): no step is to blame. Never retried.
    #[error("{0}")]
    Judged(String),
    /// The engine failed us (connection lost, engine restarted, stalled).
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cancelled")]
    Cancelled,
}

/// The build context as an in-memory tar: the Dockerfile plus any extra files.
pub fn context_tar(dockerfile: &str, files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append_generated(&mut tar, dockerfile, files)?;
    tar.into_inner()
}

/// Append the Dockerfile and the extra files to a context tar, as both contexts have them.
fn append_generated<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dockerfile: &str,
    files: &[(String, Vec<u8>)],
) -> std::io::Result<()> {
    let mut add = |name: &str, data: &[u8], mode: u32| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        // A fixed mtime keeps the context (and the classic builder's cache) deterministic.
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, name, data)
    };
    add(DOCKERFILE_NAME, dockerfile.as_bytes(), 0o644)?;
    // Extra files are tools and scripts more often than not: keep them executable.
    for (name, data) in files {
        add(name, data, 0o755)?;
    }
    Ok(())
}

/// A build context on its way to the engine: whole in memory (a Dockerfile and small files)
/// or streamed from a tar written on a thread of its own (a directory tree).
enum ContextBody {
    Full(Vec<u8>),
    Stream(tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>),
}

impl ContextBody {
    /// Start the `/build` request with this body.
    fn build(
        self,
        docker: &bollard::Docker,
        opts: bollard::query_parameters::BuildImageOptions,
    ) -> impl futures_util::Stream<Item = Item> + '_ {
        let body = match self {
            ContextBody::Full(tar) => bollard::body_full(tar.into()),
            ContextBody::Stream(rx) => {
                bollard::body_try_stream(futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item.map(Into::into), rx))
                }))
            }
        };
        docker.build_image(opts, None, Some(body))
    }
}

/// Chunks of a tar being written, sent to the request body as they fill.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the build stopped reading its context",
            )
        })
    }
}

/// Every path under `dir` (directories before their contents, names sorted), relative.
fn tree(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        let mut subdirs = Vec::new();
        for n in names {
            let p = rel.join(&n);
            let meta = std::fs::symlink_metadata(dir.join(&p))?;
            out.push(p.clone());
            if meta.is_dir() {
                subdirs.push(p);
            }
        }
        // Depth first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

/// Write the context of `dir` plus the Dockerfile and files (which win over the
/// directory's own files of those names) as a tar into `w`.
fn write_dir_context(
    w: impl std::io::Write,
    dir: &std::path::Path,
    dockerfile: &str,
    files: &[(String, Vec<u8>)],
) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(w);
    tar.follow_symlinks(false);
    let ours: Vec<&str> = std::iter::once(DOCKERFILE_NAME)
        .chain(files.iter().map(|(n, _)| n.as_str()))
        .collect();
    for rel in tree(dir)? {
        if rel.to_str().is_some_and(|r| ours.contains(&r)) {
            continue;
        }
        tar.append_path_with_name(dir.join(&rel), &rel)?;
    }
    append_generated(&mut tar, dockerfile, files)?;
    tar.into_inner()?.flush()
}

/// Stream the context of `dir` (see [`write_dir_context`]) from a thread of its own; a
/// failure to read the tree ends the body with that error (and so the build).
fn stream_dir_context(
    dir: std::path::PathBuf,
    dockerfile: String,
    files: Vec<(String, Vec<u8>)>,
) -> std::io::Result<ContextBody> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let err_tx = tx.clone();
    std::thread::Builder::new()
        .name("imagegrid-context".into())
        .spawn(move || {
            let w = ChunkWriter {
                tx,
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = write_dir_context(w, &dir, &dockerfile, &files) {
                let msg = format!("cannot read the build context {}: {e}", dir.display());
                let _ = err_tx.blocking_send(Err(std::io::Error::other(msg)));
            }
        })?;
    Ok(ContextBody::Stream(rx))
}

/// The size in bytes of the tar [`BuildRequest::context_dir`] makes of `dir` with a
/// Dockerfile of `dockerfile_len` bytes (what each build sends to the engine).
pub fn dir_context_size(dir: &std::path::Path, dockerfile: &str) -> std::io::Result<u64> {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    write_dir_context(&mut n, dir, dockerfile, &[])?;
    Ok(n.0)
}

/// Turns the build stream's items into log lines and step progress.
#[derive(Default)]
struct Decoder {
    stream_lines: Option<LineSplitter>,
    /// BuildKit: vertex digest -> (display number, name, done).
    vertexes: HashMap<String, VertexState>,
    vertex_logs: HashMap<String, LineSplitter>,
    next_vertex: u32,
    image_id: Option<String>,
    /// The first vertex that failed for a reason of its own (not cancelled because another
    /// failed): the step a failure is blamed on.
    failed_vertex: Option<String>,
}

struct VertexState {
    /// `#n` in the log: given when the vertex first starts, completes or logs, so the numbers
    /// follow the build's order. The order vertexes are first *announced* in is not it: Engine
    /// 26 announces the whole graph up front, last step first.
    number: Option<u32>,
    name: String,
    started: bool,
    done: bool,
}

/// BuildKit's error text for a vertex stopped because the build was cancelled, which it does
/// to every running vertex when one fails (moby/buildkit#3955; docker/cli#1291).
fn is_cancellation(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("context canceled") || e.contains("context cancelled") || e == "canceled"
}

impl Decoder {
    fn splitter(slot: &mut Option<LineSplitter>) -> &mut LineSplitter {
        slot.get_or_insert_with(|| LineSplitter::new(DEFAULT_MAX_LINE_BYTES))
    }

    fn item(&mut self, info: BuildInfo, out: &mut Vec<BuildProgress>) {
        if let Some(s) = info.stream {
            for line in Self::splitter(&mut self.stream_lines).push(s.as_bytes()) {
                if let Some(step) = parse_classic_step(&line) {
                    out.push(step);
                }
                out.push(BuildProgress::Line(line));
            }
        }
        if let Some(status) = info.status {
            // Pull progress: one line per layer state change, without the byte counters.
            let id = info.id.unwrap_or_default();
            let line = if id.is_empty() {
                status
            } else {
                format!("{id}: {status}")
            };
            if info
                .progress_detail
                .as_ref()
                .and_then(|p| p.current)
                .is_none()
            {
                out.push(BuildProgress::Line(sanitise_line(line.as_bytes())));
            }
        }
        match info.aux {
            Some(BuildInfoAux::Default(img)) => {
                if let Some(id) = img.id {
                    self.image_id = Some(id);
                }
            }
            Some(BuildInfoAux::BuildKit(status)) => self.buildkit(status, out),
            None => {}
        }
    }

    fn buildkit(
        &mut self,
        status: bollard::moby::buildkit::v1::StatusResponse,
        out: &mut Vec<BuildProgress>,
    ) {
        for v in status.vertexes {
            let next = &mut self.next_vertex;
            let state = self
                .vertexes
                .entry(v.digest.clone())
                .or_insert_with(|| VertexState {
                    number: None,
                    name: v.name.clone(),
                    started: false,
                    done: false,
                });
            if v.started.is_none() && v.completed.is_none() && v.error.is_empty() {
                continue; // announced only: no number yet
            }
            let n = *state.number.get_or_insert_with(|| {
                *next += 1;
                *next
            });
            if v.started.is_some() && !state.started {
                state.started = true;
                out.push(BuildProgress::Line(sanitise_line(
                    format!("#{n} {}", v.name).as_bytes(),
                )));
            }
            let cancelled = !v.error.is_empty() && is_cancellation(&v.error);
            if !v.error.is_empty() && !cancelled {
                out.push(BuildProgress::Line(sanitise_line(
                    format!("#{n} ERROR: {}", v.error).as_bytes(),
                )));
                if self.failed_vertex.is_none() {
                    self.failed_vertex = Some(v.digest.clone());
                    if is_step(&v.name) {
                        // The failing step, reported last: what the failure is blamed on.
                        let total = self.vertexes.values().filter(|s| is_step(&s.name)).count();
                        let done = self
                            .vertexes
                            .values()
                            .filter(|s| s.done && is_step(&s.name))
                            .count();
                        out.push(BuildProgress::Step {
                            current: done as u32 + 1,
                            total: total as u32,
                            name: sanitise_line(v.name.as_bytes()),
                        });
                    }
                }
            }
            let state = self.vertexes.get_mut(&v.digest).expect("inserted above");
            if v.completed.is_some() && !state.done {
                state.done = true;
                if cancelled {
                    out.push(BuildProgress::Line(format!("#{n} CANCELED")));
                } else if v.cached {
                    out.push(BuildProgress::Line(format!("#{n} CACHED")));
                } else if v.error.is_empty() {
                    out.push(BuildProgress::Line(format!("#{n} DONE")));
                }
                if self.failed_vertex.is_some() || cancelled || !v.error.is_empty() {
                    // After a failure, steps that end were stopped because of it (or ended
                    // in the race): the failing step stays the one reported.
                    continue;
                }
                let total = self.vertexes.values().filter(|s| is_step(&s.name)).count() as u32;
                let done = self
                    .vertexes
                    .values()
                    .filter(|s| s.done && is_step(&s.name))
                    .count() as u32;
                if is_step(&v.name) {
                    out.push(BuildProgress::Step {
                        current: done,
                        total,
                        name: sanitise_line(v.name.as_bytes()),
                    });
                }
            }
        }
        for log in status.logs {
            let next = &mut self.next_vertex;
            let n = match self.vertexes.get_mut(&log.vertex) {
                Some(s) => *s.number.get_or_insert_with(|| {
                    *next += 1;
                    *next
                }),
                None => 0,
            };
            let splitter = self
                .vertex_logs
                .entry(log.vertex.clone())
                .or_insert_with(|| LineSplitter::new(DEFAULT_MAX_LINE_BYTES));
            for line in splitter.push(&log.msg) {
                out.push(BuildProgress::Line(format!("#{n} {line}")));
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<BuildProgress>) {
        if let Some(s) = self.stream_lines.as_mut() {
            if let Some(line) = s.finish() {
                out.push(BuildProgress::Line(line));
            }
        }
        let mut rest: Vec<(u32, String)> = Vec::new();
        for (digest, s) in self.vertex_logs.iter_mut() {
            if let Some(line) = s.finish() {
                let n = self
                    .vertexes
                    .get(digest)
                    .and_then(|v| v.number)
                    .unwrap_or(0);
                rest.push((n, line));
            }
        }
        rest.sort();
        out.extend(
            rest.into_iter()
                .map(|(n, l)| BuildProgress::Line(format!("#{n} {l}"))),
        );
    }
}

/// The Dockerfile with `label` inserted after each FROM instruction (after its continuation
/// lines, if it has any).
pub fn label_stages(dockerfile: &str, label: &str) -> String {
    let mut out = String::with_capacity(dockerfile.len() + 256);
    let mut in_from = false;
    for line in dockerfile.trim_end().lines() {
        out.push_str(line);
        out.push('\n');
        let word = line.split_whitespace().next().unwrap_or("");
        if !in_from && word.eq_ignore_ascii_case("FROM") {
            in_from = true;
        }
        if in_from && !line.trim_end().ends_with('\\') {
            in_from = false;
            out.push_str(label);
            out.push('\n');
        }
    }
    out.truncate(out.trim_end().len());
    out
}

type Item = Result<BuildInfo, bollard::errors::Error>;

/// A build's progress items, from the stream itself or from a build running on its own.
enum Items<'a> {
    Direct(futures_util::stream::BoxStream<'a, Item>),
    Isolated(IsolatedBuild),
}

impl Items<'_> {
    async fn next(&mut self) -> Option<Item> {
        match self {
            Items::Direct(s) => s.next().await,
            Items::Isolated(b) => b.items.recv().await,
        }
    }
}

/// A BuildKit build driven on a thread and tokio runtime of its own, its items sent back.
///
/// Why: bollard 0.21.1 serves each build's BuildKit session from a task it spawns and never
/// stops, holding the session's connection to the engine; each build left one open file and
/// about 50 KB behind (measured with benches/load.rs), which a TUI that runs for days would
/// pile up. Dropping the build's own runtime when the build ends ends that task and closes
/// the connection. Dropping this value (the build ended, was cancelled, or stalled) does it.
struct IsolatedBuild {
    items: tokio::sync::mpsc::Receiver<Item>,
    stop: CancellationToken,
}

impl IsolatedBuild {
    fn start(
        docker: bollard::Docker,
        opts: bollard::query_parameters::BuildImageOptions,
        tar: ContextBody,
    ) -> std::io::Result<IsolatedBuild> {
        let (tx, items) = tokio::sync::mpsc::channel(256);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let run = move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.blocking_send(Err(bollard::errors::Error::IOError { err: e }));
                    return;
                }
            };
            rt.block_on(async move {
                let stream = tar.build(&docker, opts);
                futures_util::pin_mut!(stream);
                loop {
                    let item = tokio::select! {
                        _ = stopped.cancelled() => break,
                        item = stream.next() => item,
                    };
                    match item {
                        Some(item) => {
                            if tx.send(item).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    }
                }
            });
            // `rt` is dropped here, and with it bollard's session task and its connection.
        };
        std::thread::Builder::new()
            .name("imagegrid-build".into())
            .spawn(run)?;
        Ok(IsolatedBuild { items, stop })
    }
}

impl Drop for IsolatedBuild {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The matrix's arch name as Docker spells it in platforms (`arm32v7` -> `arm/v7`).
pub fn docker_arch(arch: &str) -> &str {
    match arch {
        "arm32v7" => "arm/v7",
        "i386" => "386",
        other => other,
    }
}

/// bollard #560: a spurious "bytes remaining on stream" at the end of a stream.
fn is_trailing_decoder_error(e: &bollard::errors::Error) -> bool {
    e.to_string().contains("bytes remaining on stream")
}

/// Image ids compare with or without the `sha256:` prefix, and short ids by prefix.
fn same_image(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.trim_start_matches("sha256:"),
        b.trim_start_matches("sha256:"),
    );
    !a.is_empty() && !b.is_empty() && (a.starts_with(b) || b.starts_with(a))
}

/// `registry:5000/repo:tag` -> (`registry:5000/repo`, `tag`); no tag means `latest`.
pub fn split_reference(r: &str) -> (&str, &str) {
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (r, "latest"),
    }
}

/// BuildKit Dockerfile steps are named `[stage n/m] INSTR ...`; internal vertexes are not steps.
fn is_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]")
}

/// `Step 3/12 : RUN make` -> Step progress.
pub fn parse_classic_step(line: &str) -> Option<BuildProgress> {
    let rest = line.strip_prefix("Step ")?;
    let (nums, name) = rest.split_once(" : ")?;
    let (a, b) = nums.split_once('/')?;
    Some(BuildProgress::Step {
        current: a.trim().parse().ok()?,
        total: b.trim().parse().ok()?,
        name: name.to_string(),
    })
}

impl Engine {
    /// Build one image. Progress goes to `on_progress` as it arrives; cancelling the token
    /// drops the stream, which makes the engine stop the build.
    pub async fn build(
        &self,
        req: &BuildRequest,
        cancel: &CancellationToken,
        mut on_progress: impl FnMut(BuildProgress),
    ) -> Result<BuiltImage, BuildError> {
        let name = self.name().to_string();
        // The classic builder turns each `labels` option into a step of its own (a container
        // and a commit each); one LABEL line in a side Dockerfile costs one step. `Dockerfile`
        // itself stays as rendered, since templates COPY it into the image.
        let mut files = req.context_files.clone();
        let mut labels: HashMap<String, String> = req.labels.clone().into_iter().collect();
        let mut dockerfile_name = DOCKERFILE_NAME;
        if !req.buildkit && !labels.is_empty() {
            let pairs = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
                req.labels
                    .iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
                    .collect()
            };
            // Every stage is labelled with its cell and inputs right after its FROM, so the
            // containers of its RUN steps carry them: a build that outlives its imagegrid can
            // be found again (see `orphans`). Not the build id: it changes every build and
            // would make the classic builder's layer cache miss on every step after it.
            let stable = pairs(&|k| k == LABEL_CELL || k == LABEL_INPUTS);
            let body = if stable.is_empty() {
                req.dockerfile.trim_end().to_string()
            } else {
                label_stages(&req.dockerfile, &format!("LABEL {}", stable.join(" ")))
            };
            let text = format!("{body}\nLABEL {}\n", pairs(&|_| true).join(" "));
            files.push((CLASSIC_DOCKERFILE.to_string(), text.into_bytes()));
            dockerfile_name = CLASSIC_DOCKERFILE;
            labels.clear();
        }
        let tar = match &req.context_dir {
            None => context_tar(&req.dockerfile, &files).map(ContextBody::Full),
            Some(dir) => stream_dir_context(dir.clone(), req.dockerfile.clone(), files),
        }
        .map_err(|e| BuildError::Failed(format!("cannot make the build context: {e}")))?;
        let session = format!("imagegrid-{}", uuid::Uuid::new_v4());
        let mut opts = BuildImageOptionsBuilder::default()
            .dockerfile(dockerfile_name)
            .t(&req.tag)
            .labels(&labels)
            .networkmode(req.network.as_api())
            .nocache(req.no_cache)
            .rm(true)
            .forcerm(true);
        // The engine's own platform is its default; naming it anyway costs the classic
        // builder a platform check per stage (measured: about 50 ms a build).
        let native = format!("{}/{}", self.info.os, docker_arch(&self.info.arch));
        if req.platform != native {
            opts = opts.platform(&req.platform);
        }
        if req.pull {
            opts = opts.pull("true");
        }
        if req.buildkit {
            opts = opts
                .version(BuilderVersion::BuilderBuildKit)
                .session(&session);
        }
        let mut stream = if req.buildkit {
            Items::Isolated(
                IsolatedBuild::start(self.docker().clone(), opts.build(), tar).map_err(|e| {
                    BuildError::Failed(format!("cannot start a thread for the build: {e}"))
                })?,
            )
        } else {
            Items::Direct(tar.build(self.docker(), opts.build()).boxed())
        };
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let mut failure: Option<String> = None;
        let mut last_output = Instant::now();
        // Check the engine at least this often while the stream is silent.
        let watch_every = req
            .idle_timeout
            .min(Duration::from_secs(30))
            .max(Duration::from_millis(200));
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return Err(BuildError::Cancelled),
                n = tokio::time::timeout(watch_every, stream.next()) => n,
            };
            match next {
                Err(_) => {
                    // Silent: is the engine still there? A frozen engine or a cut network fails the ping.
                    if let Err(e) = tokio::select! {
                        _ = cancel.cancelled() => return Err(BuildError::Cancelled),
                        p = self.ping() => p,
                    } {
                        return Err(BuildError::Engine(EngineError::new(
                            &name,
                            EngineErrorKind::Lost,
                            format!(
                                "no build output for {} s and no answer to a ping: {}",
                                last_output.elapsed().as_secs(),
                                e.message
                            ),
                        )));
                    }
                    if last_output.elapsed() >= req.idle_timeout {
                        return Err(BuildError::Engine(EngineError::new(
                            &name,
                            EngineErrorKind::Lost,
                            format!(
                                "build stream silent for {} s (idle_timeout_secs)",
                                req.idle_timeout.as_secs()
                            ),
                        )));
                    }
                }
                Ok(None) => break,
                Ok(Some(Ok(info))) => {
                    last_output = Instant::now();
                    decoder.item(info, &mut out);
                    for p in out.drain(..) {
                        on_progress(p);
                    }
                }
                Ok(Some(Err(bollard::errors::Error::DockerStreamError { error }))) => {
                    failure = Some(sanitise_line(error.as_bytes()));
                    break;
                }
                Ok(Some(Err(e))) if decoder.image_id.is_some() && is_trailing_decoder_error(&e) => {
                    // bollard 0.21.1's decoder can report leftover bytes when a CRLF is split
                    // across reads at the very end of the stream (bollard #560), after the
                    // image is made: the image, checked below, decides.
                    break;
                }
                Ok(Some(Err(e))) => {
                    decoder.finish(&mut out);
                    for p in out.drain(..) {
                        on_progress(p);
                    }
                    let err = EngineError::from_bollard_at(&name, Some(&self.endpoint), &e);
                    if let bollard::errors::Error::JsonDataError { .. } = e {
                        return Err(BuildError::Failed(format!(
                            "engine sent an undecodable build item: {}",
                            err.message
                        )));
                    }
                    return Err(BuildError::Engine(EngineError::new(
                        &name,
                        EngineErrorKind::Lost,
                        err.message,
                    )));
                }
            }
        }
        decoder.finish(&mut out);
        for p in out.drain(..) {
            on_progress(p);
        }
        if let Some(message) = failure {
            on_progress(BuildProgress::Line(format!("ERROR: {message}")));
            return Err(BuildError::Failed(message));
        }
        // The stream can end cleanly on a lost connection; the image is the proof of success.
        let built = self
            .inspect_built(&req.tag)
            .await
            .map_err(|e| match e.kind {
                EngineErrorKind::Api => {
                    BuildError::Judged(format!("the build ended without an image: {}", e.message))
                }
                _ => BuildError::Engine(e),
            })?;
        // The tag must name the image this build reported making, not an older one.
        match &decoder.image_id {
            Some(id) if !same_image(id, &built.image_id) => {
                Err(BuildError::Engine(EngineError::new(
                    &name,
                    EngineErrorKind::Lost,
                    format!(
                        "the build reported image {id} but {} is tagged {}",
                        req.tag, built.image_id
                    ),
                )))
            }
            // Judged by the image it made (docker/buildx#1389): a final stage pinned to
            // another platform makes an image of that platform, whatever was asked.
            _ => check_platform(&req.platform, &built)
                .map(|_| built)
                .map_err(BuildError::Judged),
        }
    }

    /// Tag an image (by id) as `repo:tag` on this engine.
    pub async fn tag(&self, image: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_reference(reference);
        let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker()
            .tag_image(image, Some(opts))
            .await
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))
    }

    /// Id, size, arch and layers of an image.
    pub async fn inspect_built(&self, image: &str) -> Result<BuiltImage, EngineError> {
        let inspect = self
            .docker()
            .inspect_image(image)
            .await
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        let history = self
            .docker()
            .image_history(image)
            .await
            .map_err(|e| EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e))?;
        Ok(BuiltImage {
            image_id: inspect.id.unwrap_or_default(),
            size: inspect.size.unwrap_or(0),
            architecture: inspect.architecture.unwrap_or_default(),
            os: inspect.os.unwrap_or_default(),
            variant: inspect.variant.filter(|v| !v.is_empty()),
            layers: history
                .into_iter()
                .map(|h| Layer {
                    size: h.size,
                    created_by: sanitise_line(h.created_by.as_bytes()),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_steps() {
        assert_eq!(
            parse_classic_step("Step 3/12 : RUN make"),
            Some(BuildProgress::Step {
                current: 3,
                total: 12,
                name: "RUN make".into()
            })
        );
        assert_eq!(parse_classic_step("Stepping"), None);
    }

    #[test]
    fn stages_are_labelled_after_from() {
        let df = "# FROM in a comment\nFROM a AS b\nRUN x\nfrom --platform=linux/amd64 \\\n  c\nCOPY --from=b /x /x\n";
        assert_eq!(
            label_stages(df, "LABEL k=v"),
            "# FROM in a comment\nFROM a AS b\nLABEL k=v\nRUN x\nfrom --platform=linux/amd64 \\\n  c\nLABEL k=v\nCOPY --from=b /x /x"
        );
    }

    #[test]
    fn tar_has_dockerfile() {
        let t = context_tar("FROM scratch\n", &[("a.txt".into(), b"hi".to_vec())]).unwrap();
        let mut ar = tar::Archive::new(&t[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "a.txt"]);
    }

    /// F5's shape: a builder stage fails while the final stage runs; BuildKit then cancels the
    /// final stage's step, which completes after the failure. The failing step is the one
    /// that failed, the cancelled one reads CANCELED, and numbers follow the start order even
    /// though the graph was announced last step first (Engine 26).
    #[test]
    fn buildkit_failure_is_blamed_on_the_failing_vertex() {
        use bollard::moby::buildkit::v1::{StatusResponse, Vertex};
        let at = Some(Default::default());
        let v = |d: &str, name: &str| Vertex {
            digest: d.into(),
            name: name.into(),
            ..Default::default()
        };
        let slow = "[stage-1 2/3] RUN echo slow && sleep 30";
        let bad = "[builder 2/2] RUN echo configure && exit 3";
        let mut dec = Decoder::default();
        let mut out = Vec::new();
        let status = |vs: Vec<Vertex>| StatusResponse {
            vertexes: vs,
            ..Default::default()
        };
        // Announced up front, last step first.
        dec.buildkit(
            status(vec![
                v("c", slow),
                v("b", bad),
                v("a", "[builder 1/2] FROM x"),
            ]),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        let started = |mut x: Vertex| {
            x.started = at;
            x
        };
        let completed = |mut x: Vertex, error: &str| {
            x.started = at;
            x.completed = at;
            x.error = error.into();
            x
        };
        dec.buildkit(
            status(vec![completed(v("a", "[builder 1/2] FROM x"), "")]),
            &mut out,
        );
        dec.buildkit(
            status(vec![started(v("b", bad)), started(v("c", slow))]),
            &mut out,
        );
        dec.buildkit(
            status(vec![completed(
                v("b", bad),
                "process \"/bin/sh -c echo configure && exit 3\" did not complete successfully: exit code: 3",
            )]),
            &mut out,
        );
        dec.buildkit(
            status(vec![completed(v("c", slow), "context canceled")]),
            &mut out,
        );
        let lines: Vec<&str> = out
            .iter()
            .filter_map(|p| match p {
                BuildProgress::Line(l) => Some(l.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(lines[..2], ["#1 [builder 1/2] FROM x", "#1 DONE"]);
        assert_eq!(lines[2], format!("#2 {bad}"));
        assert_eq!(lines[3], format!("#3 {slow}"));
        assert!(lines[4].starts_with("#2 ERROR: process"), "{lines:?}");
        assert_eq!(lines.last(), Some(&"#3 CANCELED"));
        let last_step = out.iter().rev().find_map(|p| match p {
            BuildProgress::Step { name, .. } => Some(name.as_str()),
            _ => None,
        });
        assert_eq!(last_step, Some(bad));
    }

    #[test]
    fn images_are_judged_by_their_platform() {
        let img = |os: &str, arch: &str, variant: Option<&str>| BuiltImage {
            image_id: "sha256:x".into(),
            size: 1,
            architecture: arch.into(),
            os: os.into(),
            variant: variant.map(str::to_string),
            layers: vec![],
        };
        assert!(check_platform("linux/arm64", &img("linux", "arm64", Some("v8"))).is_ok());
        assert!(check_platform("linux/amd64", &img("linux", "amd64", None)).is_ok());
        assert!(check_platform("linux/arm/v7", &img("linux", "arm", Some("v7"))).is_ok());
        assert_eq!(
            check_platform("linux/arm64", &img("linux", "amd64", None)).unwrap_err(),
            "platform: built a linux/amd64 image for linux/arm64"
        );
        assert!(check_platform("linux/arm/v7", &img("linux", "arm", Some("v6"))).is_err());
        assert!(check_platform("linux/amd64", &img("windows", "amd64", None)).is_err());
    }
}
