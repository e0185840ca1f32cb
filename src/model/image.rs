//! What a build leaves behind, as history and size reports see it.

use serde::{Deserialize, Serialize};

/// The file name of the Dockerfile in every build context imagegrid sends, and inside the
/// image (`/Dockerfile.*` copies are named after it).
pub const DOCKERFILE_NAME: &str = "Dockerfile";

/// One layer of an image, newest first as the engine lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Uncompressed bytes.
    pub size: i64,
    /// The instruction that made it.
    pub created_by: String,
}
