//! The TOML config: engines, matrix selection, build options, tags, paths.
//!
//! Loading keeps source spans so every error names file, line, column and key
//! (see [`ConfigError`]); semantic checks that need the built-in catalog
//! (unknown distro, unknown arch) run where the catalog is, in the matrix layer above, and
//! report through the same type.

mod history;
mod inputs;
mod location;
pub mod reference;
pub mod rules;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use crate::model::options::{BuildkitMode, FrontendMode, NetworkMode};
pub use history::HistoryConfig;
pub use inputs::{parse_period, InputsConfig, DEFAULT_OPAM, DEFAULT_OPAM_REPOSITORY};
pub use location::SourceLocation;
pub use rules::FailureRuleConfig;

/// Variable that overrides the default config path (the `--config` flag wins over it).
pub const CONFIG_ENV: &str = "IMAGEGRID_CONFIG";

/// An error in a config file, pinned to where it is.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{file}:{line}:{column}: {key}: {message}")]
pub struct ConfigError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key path, e.g. `engine[2].max_parallel`.
    pub key: String,
    pub message: String,
}

/// Errors that are about the file itself rather than a place in it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A source text and its name, used to turn byte spans into [`ConfigError`]s.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    /// An error at a byte span of this source.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        let loc = SourceLocation::of(&self.text, span.start);
        // Both quote the file's text, which may hold escapes meant for the terminal.
        let clean = |s: &str| crate::logs::escape_controls(s);
        ConfigError {
            file: self.name.clone(),
            line: loc.line,
            column: loc.column,
            key: clean(&location::key_path_at(&self.text, span.start)),
            message: clean(&message.into()),
        }
    }
}

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Docker engines that builds may run on. None given: one local engine.
    #[serde(default, rename = "engine")]
    pub engines: Vec<EngineConfig>,
    /// Which part of the catalog to build.
    #[serde(default)]
    pub matrix: MatrixConfig,
    /// Added or overriding distros (same shape as the built-in table).
    #[serde(default, rename = "distro")]
    pub distros: Vec<Spanned<crate::model::distro::DistroDef>>,
    #[serde(default)]
    pub build: BuildConfig,
    #[serde(default)]
    pub tags: TagConfig,
    #[serde(default)]
    pub publish: PublishConfig,
    #[serde(default)]
    pub paths: PathsConfig,
    #[serde(default)]
    pub sizes: SizeConfig,
    /// User failure rules (`[[failure_rule]]`), tried with the built-in ones: see [`rules`].
    #[serde(default, rename = "failure_rule")]
    pub failure_rules: Vec<FailureRuleConfig>,
    /// Log retention and pruning.
    #[serde(default)]
    pub history: HistoryConfig,
    /// Where the moving refs recipes name come from, and how long a resolution is valid.
    #[serde(default)]
    pub inputs: InputsConfig,
}

/// One Docker engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub name: Spanned<String>,
    /// `unix:///path`, `tcp://host:port`, `ssh://user@host[:port]`, or `default`
    /// (DOCKER_HOST, then the docker CLI's current context, then /var/run/docker.sock).
    #[serde(default = "default_endpoint")]
    pub endpoint: Spanned<String>,
    /// Arches this engine builds (natively or under emulation). Empty: every arch of the matrix.
    #[serde(default)]
    pub arches: Vec<Spanned<String>>,
    #[serde(default = "default_max_parallel")]
    pub max_parallel: Spanned<usize>,
    /// TLS files for `tcp://` endpoints.
    pub tls: Option<TlsConfig>,
    /// Allow plain (unencrypted) TCP to a non-loopback address.
    #[serde(default)]
    pub insecure: bool,
    /// For `ssh://`: private key file (else ssh's own defaults).
    pub ssh_key: Option<PathBuf>,
    /// For `ssh://`: the engine's socket on the remote host.
    #[serde(default = "default_remote_socket")]
    pub remote_socket: String,
    /// For `ssh://`: known_hosts file (else ssh's own).
    pub ssh_known_hosts: Option<PathBuf>,
    /// Prune the engine's build cache down to this many bytes once its disk use passes it
    /// (after a run, and by `imagegrid prune --engines`); None: the cache is never pruned.
    pub keep_storage: Option<u64>,
}

/// Client TLS material for one engine. `dir` follows DOCKER_CERT_PATH's layout (ca.pem, cert.pem, key.pem).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub dir: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn default_endpoint() -> Spanned<String> {
    Spanned::new(0..0, "default".to_string())
}
fn default_max_parallel() -> Spanned<usize> {
    Spanned::new(0..0, 2)
}
fn default_remote_socket() -> String {
    "/var/run/docker.sock".to_string()
}

/// The slice of the catalog to build. Empty lists mean "the catalog's defaults".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixConfig {
    #[serde(default)]
    pub distros: Vec<Spanned<String>>,
    #[serde(default)]
    pub versions: Vec<Spanned<String>>,
    #[serde(default)]
    pub arches: Vec<Spanned<String>>,
    /// Selectors of cells to leave out (`alpine-*/4.14/*`).
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// A pipeline plan to build instead of the built-in catalog: the dump of
    /// ocurrent/docker-base-images (`base-images --dump`, its `builds.expected`), relative to
    /// the config file. The lists above then filter the plan's cells.
    pub plan: Option<Spanned<PathBuf>>,
}

/// How builds run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    #[serde(default)]
    pub network: NetworkMode,
    #[serde(default)]
    pub buildkit: BuildkitMode,
    /// `directive` sends a Dockerfile's `# syntax=` line (BuildKit pulls that frontend
    /// image); `builtin` strips it so the engine's own frontend builds the text.
    #[serde(default)]
    pub frontend: FrontendMode,
    /// Ask the engine to pull a newer upstream base image.
    #[serde(default)]
    pub pull: bool,
    /// Seconds without any output from a build before it counts as stalled.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Retries of transient engine errors (never of failed builds).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds a cell whose engine dropped its build (connection lost, engine restarted)
    /// waits for an engine of its arch to answer again before it fails (headless runs;
    /// the TUI keeps such cells queued until one does).
    #[serde(default = "default_reconnect_wait")]
    pub reconnect_wait_secs: u64,
    /// A compiler cell may build on an engine that lacks its base image, which is copied
    /// there first (image export and load through the Engine API, verified by image id),
    /// when that is expected to end sooner than waiting for the engine holding it. Off:
    /// compilers build only where their base is (`build --no-transfer` for one run).
    #[serde(default = "default_transfer")]
    pub transfer: bool,
    /// A repository (`host[:port]/path`) through which a base image moves to another engine:
    /// pushed there from the engine that built it, pulled by digest on the other. Unset: the
    /// image streams engine to engine (Engine API export piped into load).
    #[serde(default)]
    pub transfer_registry: Option<Spanned<String>>,
    /// Ask an engine for the registry digest of each upstream image a base cell starts
    /// FROM (at most once per `[inputs] refresh`, without pulling), so that a moved upstream
    /// makes its base cells stale (issue 13).
    #[serde(default = "default_true")]
    pub check_upstream: bool,
}

fn default_true() -> bool {
    true
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            network: NetworkMode::default(),
            buildkit: BuildkitMode::default(),
            frontend: FrontendMode::default(),
            pull: false,
            idle_timeout_secs: default_idle_timeout(),
            retries: default_retries(),
            reconnect_wait_secs: default_reconnect_wait(),
            transfer: default_transfer(),
            transfer_registry: None,
            check_upstream: true,
        }
    }
}

fn default_idle_timeout() -> u64 {
    900
}
fn default_retries() -> u32 {
    2
}
fn default_transfer() -> bool {
    true
}
fn default_reconnect_wait() -> u64 {
    // A restarted engine is back in seconds; a reboot of its host takes a minute or two.
    120
}

/// Tag scheme: where built images are tagged (per arch) and published.
///
/// Public tag and alias patterns take placeholders: `{distro}` (the distro's name),
/// `{version}` (the OCaml version as in tags, `5.5~beta1` -> `5.5-beta1`) and `{alias}` (the
/// distro's family alias). An empty alias pattern turns that alias off. The defaults are the
/// official ocaml/opam rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagConfig {
    /// Registry host, empty for Docker Hub.
    #[serde(default)]
    pub registry: String,
    /// Repository for per-arch images (tags `<distro>-opam-<arch>`, `<distro>-ocaml-<M.m>-<arch>`).
    #[serde(default = "default_staging")]
    pub staging: String,
    /// Repository for the public multi-arch tags.
    #[serde(default = "default_public")]
    pub public: String,
    /// Public tag of a base (opam) image.
    #[serde(default = "default_opam_tag")]
    pub opam: Spanned<String>,
    /// Public tag of a compiler image.
    #[serde(default = "default_ocaml_tag")]
    pub ocaml: Spanned<String>,
    /// Alias of every compiler tag of the newest distro of a family (the one with `alias`).
    #[serde(default = "default_family_ocaml_tag")]
    pub family_ocaml: Spanned<String>,
    /// Alias of a distro's compiler tag for the latest OCaml (`latest = true`).
    #[serde(default = "default_distro_latest_tag")]
    pub distro_latest: Spanned<String>,
    /// Alias of the newest distro of a family with the latest OCaml.
    #[serde(default = "default_family_latest_tag")]
    pub family_latest: Spanned<String>,
    /// Alias of the master distro with the latest OCaml.
    #[serde(default = "default_latest_tag")]
    pub latest: Spanned<String>,
}

impl Default for TagConfig {
    fn default() -> Self {
        TagConfig {
            registry: String::new(),
            staging: default_staging(),
            public: default_public(),
            opam: default_opam_tag(),
            ocaml: default_ocaml_tag(),
            family_ocaml: default_family_ocaml_tag(),
            distro_latest: default_distro_latest_tag(),
            family_latest: default_family_latest_tag(),
            latest: default_latest_tag(),
        }
    }
}

impl TagConfig {
    /// Every pattern with its key name and the placeholders it may use.
    pub fn patterns(&self) -> [(&'static str, &Spanned<String>, &'static [&'static str]); 6] {
        [
            ("opam", &self.opam, &["distro"]),
            ("ocaml", &self.ocaml, &["distro", "version"]),
            ("family_ocaml", &self.family_ocaml, &["alias", "version"]),
            ("distro_latest", &self.distro_latest, &["distro"]),
            ("family_latest", &self.family_latest, &["alias"]),
            ("latest", &self.latest, &[]),
        ]
    }
}

fn default_staging() -> String {
    "imagegrid/opam-staging".to_string()
}
fn default_public() -> String {
    "imagegrid/opam".to_string()
}
fn pattern(p: &str) -> Spanned<String> {
    Spanned::new(0..0, p.to_string())
}
fn default_opam_tag() -> Spanned<String> {
    pattern("{distro}-opam")
}
fn default_ocaml_tag() -> Spanned<String> {
    pattern("{distro}-ocaml-{version}")
}
fn default_family_ocaml_tag() -> Spanned<String> {
    pattern("{alias}-ocaml-{version}")
}
fn default_distro_latest_tag() -> Spanned<String> {
    pattern("{distro}")
}
fn default_family_latest_tag() -> Spanned<String> {
    pattern("{alias}")
}
fn default_latest_tag() -> Spanned<String> {
    pattern("latest")
}

/// Publishing: credentials and retries (`imagegrid publish`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// User for `tags.registry`. Unset: the docker CLI's config (credHelpers, auths, credsStore).
    pub username: Option<String>,
    /// File whose first line is the password or token (relative to the config file).
    pub password_file: Option<PathBuf>,
    /// Variable holding the password or token.
    pub password_env: Option<String>,
    /// Retries of one push or manifest upload after HTTP 429 or 5xx.
    #[serde(default = "default_publish_retries")]
    pub retries: u32,
    /// First delay before a retry, in milliseconds; it doubles on each retry.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            username: None,
            password_file: None,
            password_env: None,
            retries: default_publish_retries(),
            backoff_ms: default_backoff_ms(),
        }
    }
}

fn default_publish_retries() -> u32 {
    4
}
fn default_backoff_ms() -> u64 {
    1000
}

/// Where state lives; unset paths come from the platform's directories.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// History database and logs.
    pub data_dir: Option<PathBuf>,
    /// A directory whose templates override the built-in ones (same relative names).
    pub templates_dir: Option<PathBuf>,
}

/// Size regression thresholds (a cell regresses when it grows past either).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeConfig {
    /// Growth in bytes against the previous successful build.
    #[serde(default = "default_max_growth_bytes")]
    pub max_growth_bytes: u64,
    /// Growth in percent against the previous successful build.
    #[serde(default = "default_max_growth_percent")]
    pub max_growth_percent: f64,
}

impl Default for SizeConfig {
    fn default() -> Self {
        SizeConfig {
            max_growth_bytes: default_max_growth_bytes(),
            max_growth_percent: default_max_growth_percent(),
        }
    }
}

fn default_max_growth_bytes() -> u64 {
    10_000_000
}
fn default_max_growth_percent() -> f64 {
    5.0
}

/// A config as loaded, with the text it came from (for error positions).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub source: Source,
    /// The file it came from, None for built-in defaults.
    pub path: Option<PathBuf>,
    /// A plan named on the command line (`--plan`, relative to the working directory); it
    /// wins over `[matrix] plan`.
    pub plan_override: Option<PathBuf>,
}

/// Parse config text. `name` is used in error messages.
pub fn parse(name: &str, text: &str) -> Result<LoadedConfig, ConfigError> {
    let source = Source {
        name: name.to_string(),
        text: text.to_string(),
    };
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        source.error_at(span, clean_toml_message(e.message()))
    })?;
    let loaded = LoadedConfig {
        config,
        source,
        path: None,
        plan_override: None,
    };
    loaded.check_engines()?;
    loaded.check_sets()?;
    loaded.check_tags()?;
    if let Some(r) = &loaded.config.build.transfer_registry {
        check_transfer_registry(r.get_ref()).map_err(|m| loaded.source.error_at(r.span(), m))?;
    }
    rules::check(&loaded.source, &loaded.config.failure_rules)?;
    Ok(loaded)
}

/// `[build] transfer_registry` is `host[:port]/path` with no tag or digest: a registry host
/// (it has a `.` or a `:`, or is `localhost`), then lower-case path components.
pub fn check_transfer_registry(r: &str) -> Result<(), String> {
    let usage = "expected a repository `host[:port]/path` with no tag or digest, e.g. `127.0.0.1:5000/imagegrid/transfer`";
    let Some((host, path)) = r.split_once('/') else {
        return Err(format!("`{r}` has no path: {usage}"));
    };
    let host_ok = !host.is_empty()
        && (host.contains('.') || host.contains(':') || host == "localhost")
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !host_ok {
        return Err(format!("`{host}` is not a registry host: {usage}"));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
    };
    if !path.split('/').all(component_ok) {
        return Err(format!("`{path}` is not a repository path (lower-case letters, digits, `.`, `_`, `-`, components split by `/`): {usage}"));
    }
    Ok(())
}

/// A tag pattern may use only `allowed` placeholders, and what is around them must be
/// valid in a tag (letters, digits, `_`, `.`, `-`).
fn check_pattern(p: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = p;
    while let Some(open) = rest.find('{') {
        check_literal(&rest[..open])?;
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{p}` has an unclosed `{{`"))?;
        let name = &after[..close];
        if !allowed.contains(&name) {
            let known: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
            return Err(format!(
                "`{p}` uses {{{name}}}; this key knows {}",
                if known.is_empty() {
                    "no placeholder".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        rest = &after[close + 1..];
    }
    check_literal(rest)
}

fn check_literal(s: &str) -> Result<(), String> {
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(c) => Err(format!(
            "`{c}` cannot appear in a tag (letters, digits, `_`, `.`, `-`)"
        )),
        None => Ok(()),
    }
}

/// toml's messages are fine; trim the trailing newline some carry.
fn clean_toml_message(msg: &str) -> String {
    msg.trim().replace('\n', " ")
}

impl LoadedConfig {
    /// Checks that need only the config itself.
    fn check_engines(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<&Spanned<String>> = Vec::new();
        for engine in &self.config.engines {
            let name = engine.name.get_ref();
            if name.trim().is_empty() {
                return Err(self
                    .source
                    .error_at(engine.name.span(), "engine name is empty"));
            }
            if let Some(first) = seen.iter().find(|n| n.get_ref() == name) {
                let first_line = SourceLocation::of(&self.source.text, first.span().start).line;
                return Err(self.source.error_at(
                    engine.name.span(),
                    format!(
                        "duplicate engine name \"{name}\" (first defined at line {first_line})"
                    ),
                ));
            }
            seen.push(&engine.name);
            if *engine.max_parallel.get_ref() == 0 {
                return Err(self.source.error_at(
                    engine.max_parallel.span(),
                    "max_parallel must be at least 1",
                ));
            }
            let endpoint = engine.endpoint.get_ref();
            if let Err(msg) = crate::model::endpoint::Endpoint::parse(endpoint) {
                return Err(self.source.error_at(engine.endpoint.span(), msg.0));
            }
        }
        Ok(())
    }

    /// Lists that mean sets hold each entry once: a repeated arch would make two cells with one
    /// id and a manifest list with one platform twice (moby/moby#41507). The error points at
    /// the repeat and names the line of the first.
    fn check_sets(&self) -> Result<(), ConfigError> {
        let m = &self.config.matrix;
        let mut lists: Vec<&[Spanned<String>]> =
            vec![&m.distros, &m.versions, &m.arches, &m.exclude];
        for e in &self.config.engines {
            lists.push(&e.arches);
        }
        for list in lists {
            self.check_unique(list.iter().map(|v| (v.get_ref().trim(), v.span())))?;
        }
        for d in &self.config.distros {
            // A `[[distro]]` table's lists have no spans of their own: point at the table.
            for (what, list) in [
                ("arches", &d.get_ref().arches),
                ("quirks", &d.get_ref().quirks),
            ] {
                let Some(list) = list else { continue };
                let mut seen = std::collections::HashSet::new();
                if let Some(dup) = list.iter().find(|v| !seen.insert(v.as_str())) {
                    return Err(self.source.error_at(
                        d.span(),
                        format!(
                            "distro \"{}\": {what} lists \"{dup}\" twice",
                            d.get_ref().name
                        ),
                    ));
                }
            }
        }
        // Two tag patterns that are the same text would put two images under one tag.
        let patterns: Vec<(&str, std::ops::Range<usize>)> = self
            .config
            .tags
            .patterns()
            .into_iter()
            .filter(|(_, p, _)| !p.get_ref().is_empty())
            .map(|(_, p, _)| (p.get_ref().as_str(), p.span()))
            .collect();
        self.check_unique(patterns.into_iter())
    }

    fn check_unique<'a>(
        &self,
        items: impl Iterator<Item = (&'a str, std::ops::Range<usize>)>,
    ) -> Result<(), ConfigError> {
        let mut seen: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        for (v, span) in items {
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == v) {
                let first_line = SourceLocation::of(&self.source.text, first.start).line;
                return Err(self.source.error_at(
                    span,
                    format!("\"{v}\" is listed twice (first at line {first_line}); each entry counts once"),
                ));
            }
            seen.push((v, span));
        }
        Ok(())
    }

    /// Tag patterns use only the placeholders their key allows; publish credentials are whole.
    fn check_tags(&self) -> Result<(), ConfigError> {
        for (_, p, allowed) in self.config.tags.patterns() {
            if let Err(msg) = check_pattern(p.get_ref(), allowed) {
                // Defaults are valid, so a bad pattern came from the file and has a span.
                return Err(self.source.error_at(p.span(), msg));
            }
        }
        let p = &self.config.publish;
        if p.username.is_some() != (p.password_file.is_some() || p.password_env.is_some()) {
            return Err(self.source.error_at(
                self.span_of_table("publish"),
                "`username` needs `password_file` or `password_env`, and they need `username`",
            ));
        }
        if p.password_file.is_some() && p.password_env.is_some() {
            return Err(self.source.error_at(
                self.span_of_table("publish"),
                "give `password_file` or `password_env`, not both",
            ));
        }
        Ok(())
    }

    /// Where a `[name]` table starts (for errors about the table as a whole).
    fn span_of_table(&self, name: &str) -> std::ops::Range<usize> {
        let header = format!("[{name}]");
        let at = self
            .source
            .text
            .lines()
            .scan(0, |pos, l| {
                let start = *pos;
                *pos += l.len() + 1;
                Some((start, l))
            })
            .find(|(_, l)| l.trim() == header)
            .map(|(start, _)| start)
            .unwrap_or(0);
        at..at
    }

    /// Built-in defaults: no file.
    pub fn defaults() -> LoadedConfig {
        LoadedConfig {
            config: Config::default(),
            source: Source {
                name: "<built-in defaults>".into(),
                text: String::new(),
            },
            path: None,
            plan_override: None,
        }
    }

    /// The pipeline plan to build, if any: `--plan` as given, else `[matrix] plan` relative
    /// to the config file.
    pub fn plan_path(&self) -> Option<PathBuf> {
        self.plan_override.clone().or_else(|| {
            self.config
                .matrix
                .plan
                .as_ref()
                .map(|p| self.resolve(p.get_ref()))
        })
    }

    /// The directory for history and logs.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.config.paths.data_dir {
            return self.resolve(dir);
        }
        project_dirs()
            .map(|d| d.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".imagegrid"))
    }

    /// A git input's location as git takes it: a URL as written, a path relative to the
    /// config file.
    pub fn input_location(&self, configured: &str) -> String {
        if configured.contains("://") || configured.contains('@') {
            return configured.to_string();
        }
        let p = self.resolve(Path::new(configured));
        // git runs in other directories (the checkout): an absolute path.
        let p = match std::env::current_dir() {
            Ok(cwd) if p.is_relative() => cwd.join(p),
            _ => p,
        };
        p.display().to_string()
    }

    /// The user's templates directory, if configured.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        self.config
            .paths
            .templates_dir
            .as_ref()
            .map(|d| self.resolve(d))
    }

    /// Relative paths in a config file are relative to that file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        match (&self.path, p.is_relative()) {
            (Some(file), true) => file.parent().unwrap_or(Path::new(".")).join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// The platform directories for imagegrid.
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "imagegrid", "imagegrid")
}

/// The config file used when neither `--config` nor the variable names one.
pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

/// Load the config: `explicit` (the --config flag), else $IMAGEGRID_CONFIG, else the
/// default path if it exists, else built-in defaults. A named file that is missing is an error.
pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, LoadError> {
    let from_env = std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let named = explicit.map(Path::to_path_buf).or(from_env);
    let path = match named {
        Some(p) => p,
        None => match default_config_path() {
            Some(p) if p.exists() => p,
            _ => return Ok(LoadedConfig::defaults()),
        },
    };
    load_file(&path)
}

/// Load one file.
pub fn load_file(path: &Path) -> Result<LoadedConfig, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut loaded = parse(&path.display().to_string(), &text)?;
    loaded.path = Some(path.to_path_buf());
    Ok(loaded)
}
