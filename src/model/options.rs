//! Build options shared by config, rendering, engines and the scheduler.

use serde::{Deserialize, Serialize};

/// Network mode of build containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The engine's default bridge.
    #[default]
    Default,
    Host,
    None,
}

impl NetworkMode {
    /// The value for the Engine API's `networkmode` parameter.
    pub fn as_api(self) -> &'static str {
        match self {
            NetworkMode::Default => "default",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }
}

/// Whether builds use BuildKit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildkitMode {
    /// BuildKit when the engine supports it, classic builder otherwise.
    #[default]
    Auto,
    On,
    Off,
}

impl BuildkitMode {
    /// Whether a build on an engine uses BuildKit: `auto` follows what the engine reports
    /// (`engine_has_buildkit`, from its `/info` and version).
    pub fn resolve(self, engine_has_buildkit: bool) -> bool {
        match self {
            BuildkitMode::Off => false,
            BuildkitMode::On => true,
            BuildkitMode::Auto => engine_has_buildkit,
        }
    }
}

/// How a Dockerfile's `# syntax=` parser directive is treated (`[build] frontend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontendMode {
    /// Send the text as it is: BuildKit pulls the frontend image the directive names
    /// (`docker/dockerfile:1`) from its registry, so the engine needs to reach it.
    #[default]
    Directive,
    /// Send the text without its `# syntax=` line: the engine's own built-in frontend builds
    /// it (heredocs and `COPY --link` need Engine 23 or later). For air-gapped engines.
    Builtin,
}

impl FrontendMode {
    /// The config value (`directive`, `builtin`).
    pub fn as_str(self) -> &'static str {
        match self {
            FrontendMode::Directive => "directive",
            FrontendMode::Builtin => "builtin",
        }
    }
}
