//! Publish built images to a registry the way the official images are published.
//!
//! - [`plan`]: which tags a selection publishes and what each points to (pure).
//! - [`auth`]: the registry credentials, resolved once, never printed.

pub mod auth;
pub mod plan;

pub use auth::{Credentials, Secret};
pub use plan::{plan, AliasTag, ArchSource, Built, PlanError, PublicTag, TagLine, TagPlan};
