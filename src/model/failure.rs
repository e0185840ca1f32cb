//! A failed build as one record: the fields a reader wants first, apart from the one-line
//! summary kept beside it (`failure` in history and events).

use serde::{Deserialize, Serialize};

/// Why a build failed, field by field. Every field is optional: an engine lost mid-build has
/// no exit code, a build that failed before its first step has no step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The failing command's exit status (`exit code: 3`, `returned a non-zero code: 2`).
    pub exit_code: Option<i64>,
    /// The log line that explains the failure (`error: caml/mlvalues.h: No such file...`).
    pub reason: Option<String>,
    /// The step that failed, as the builder names it (`[builder 2/2] RUN ...`, `RUN make`).
    pub step: Option<String>,
    /// The step's command without its instruction keyword, cut to 200 characters.
    pub command: Option<String>,
}
