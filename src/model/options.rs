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
