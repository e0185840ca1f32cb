//! imagegrid: a terminal control panel for a matrix of container base images.
//!
//! Data flows one way: engine tasks emit [`scheduler::BuildEvent`]s, one reducer
//! ([`progress::RunProgress`]) folds them into state, and the faces (TUI, headless CLI) read
//! that state. Modules are declared bottom to top: each imports only from those declared before
//! it (tests/layering.rs checks it). See docs/architecture.md.

// leaves: no crate imports
pub mod util;
pub mod logs;

// plain domain types
pub mod model;

// the config file, and the failure rules it adds to
pub mod config;
pub mod causes;

// the moving refs recipes name (opam, opam-repository), pinned to commits over git
pub mod inputs;

// what to build: the pipeline's plan (a dump), the matrix, the Dockerfiles
pub mod plan;
pub mod matrix;
pub mod dockerfile;

// the outside world: engines, history
pub mod engine;
pub mod store;

// work over engines and history
pub mod sizes;
pub mod scheduler;
pub mod publish;

// why a cell needs a rebuild (reasons from history and from plan changes)
pub mod why;

// the one core both faces open, and the one fold of its events
pub mod session;
pub mod progress;

// the two faces
pub mod ui;
pub mod cli;
