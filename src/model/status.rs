//! Where a build ended up: the one status type of history, events and both faces.

use serde::{Deserialize, Serialize};

/// Where a build ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The imagegrid process died while it ran.
    Interrupted,
    /// Not attempted (its base failed, say).
    Skipped,
}

impl BuildStatus {
    /// Did this build fail, in the sense every report uses: failed or interrupted (a cancelled
    /// or skipped build is not a failure of the cell's recipe).
    pub fn is_failed(self) -> bool {
        matches!(self, BuildStatus::Failed | BuildStatus::Interrupted)
    }

    /// Is the build still going?
    pub fn is_active(self) -> bool {
        self == BuildStatus::Running
    }

    /// The lowercase word stored in the history and printed in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Cancelled => "cancelled",
            BuildStatus::Interrupted => "interrupted",
            BuildStatus::Skipped => "skipped",
        }
    }
    /// The status a history row stores as text; text this version does not know (written by a
    /// newer imagegrid) reads as `Interrupted`, the one status that claims nothing about the image.
    pub fn from_db(s: &str) -> BuildStatus {
        match s {
            "running" => BuildStatus::Running,
            "succeeded" => BuildStatus::Succeeded,
            "failed" => BuildStatus::Failed,
            "cancelled" => BuildStatus::Cancelled,
            "skipped" => BuildStatus::Skipped,
            _ => BuildStatus::Interrupted,
        }
    }
}

impl std::fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
