//! Plain domain types shared by every layer above: no I/O, no config, no engine.
//! Types live here when two modules at different layers need them (a build's status is
//! written by the scheduler, stored by the store and shown by both faces).

pub mod cause;
pub mod distro;
pub mod endpoint;
pub mod failure;
pub mod failure_line;
pub mod ids;
pub mod image;
pub mod inputs;
pub mod options;
pub mod recorded;
pub mod status;
