//! The interactive face: app state and `update` ([`app`]), the keymap ([`keymap`]), the
//! draw functions ([`draw`]) and the terminal runtime ([`run`]).

pub mod app;
pub mod draw;
pub mod keymap;
mod run;

pub use run::run;

#[cfg(test)]
mod snapshots;
