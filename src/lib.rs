//! imagegrid: a terminal control panel for a matrix of container base images.
//!
//! Data flows one way: engine tasks emit [`scheduler::BuildEvent`]s, the app folds them into
//! state, and the faces (TUI, headless CLI) read that state. See docs/architecture.md.

pub mod cli;
pub mod config;
pub mod dockerfile;
pub mod engine;
pub mod logs;
pub mod matrix;
pub mod plan;
pub mod publish;
pub mod scheduler;
pub mod sizes;
pub mod store;
pub mod ui;
