//! The interactive face: the state and its transitions ([`state`]), the keymap ([`keymap`]),
//! the draw functions ([`draw`]) and their look ([`theme`]), the effect executor (`effects`)
//! and the terminal runtime (`runtime`).

pub mod state;
pub mod draw;
pub mod effects;
pub mod keymap;
mod runtime;
pub mod theme;

pub use runtime::{initial_app, run};

/// Why the TUI stopped with an error; the CLI maps it to an exit status.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The history store or a rule of the session.
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    /// The terminal could not be drawn to or read.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}
