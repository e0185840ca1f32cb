//! Why a build failed, in a word: the cause a failure rule names (`gcc-15`, `no-manifest`),
//! with the rule's hint. Set on every failed build (`unclassified` when no rule matched),
//! stored in the history, carried by `finished` events and grouped by the faces.

use serde::{Deserialize, Serialize};

/// The cause of a failed build no rule matched.
pub const UNCLASSIFIED: &str = "unclassified";

/// A failed build's cause: the name of the rule that matched, and its hint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cause {
    /// Short name (`gcc-15`), or [`UNCLASSIFIED`].
    pub name: String,
    /// What to do about it; empty when the rule gives none.
    #[serde(default)]
    pub hint: String,
}

impl Cause {
    /// The cause of a failure no rule matched.
    pub fn unclassified() -> Cause {
        Cause {
            name: UNCLASSIFIED.to_string(),
            hint: String::new(),
        }
    }

    /// Did no rule match?
    pub fn is_unclassified(&self) -> bool {
        self.name == UNCLASSIFIED
    }

    /// What a failure line leads with: `name: hint` (or the name alone without a hint);
    /// None when no rule matched.
    pub fn lead(&self) -> Option<String> {
        match (self.is_unclassified(), self.hint.is_empty()) {
            (true, _) => None,
            (false, true) => Some(self.name.clone()),
            (false, false) => Some(format!("{}: {}", self.name, self.hint)),
        }
    }
}
