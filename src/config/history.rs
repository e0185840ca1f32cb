//! `[history]`: how much of the build history's logs to keep, and the prunes that run by
//! themselves after a build run (see `store::retention` and `imagegrid prune`).

use serde::Deserialize;

/// The retention policy of build logs. A log goes when it is past either limit, except a
/// log being written, each cell's last success and last failure, pinned baselines and each
/// cell's newest published build (always kept). History rows are always kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Keep the newest N logs of each cell; 0 = no limit.
    #[serde(default = "default_keep_logs_per_cell")]
    pub keep_logs_per_cell: usize,
    /// Keep logs of builds started within the last D days; 0 = no limit.
    #[serde(default = "default_keep_logs_days")]
    pub keep_logs_days: u32,
    /// After each build run, prune logs (and each engine's superseded images and build
    /// cache) by the policy, as `imagegrid prune --engines` does.
    #[serde(default = "yes")]
    pub prune_after_run: bool,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            keep_logs_per_cell: default_keep_logs_per_cell(),
            keep_logs_days: default_keep_logs_days(),
            prune_after_run: true,
        }
    }
}

fn default_keep_logs_per_cell() -> usize {
    10
}

fn default_keep_logs_days() -> u32 {
    90
}

fn yes() -> bool {
    true
}
