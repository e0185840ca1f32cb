//! Identifiers that cross module boundaries, as types: the compiler tells a cell id from an
//! engine name or a tag, and a build id from a count. Each serialises as the bare value
//! (`"debian-13/5.4/amd64"`, `"local"`, `42`), so JSON events and history keep their shape.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The id's text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                $name(s.clone())
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_id!(
    /// A cell: `distro/version/arch` (`debian-13/5.4/amd64`, base cells `debian-13/opam/arm64`).
    CellId
);
string_id!(
    /// An engine's configured name (`[[engine]] name`).
    EngineName
);

/// A build's row id in the history (SQLite `builds.id`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BuildId(pub i64);

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<i64> for BuildId {
    fn from(v: i64) -> Self {
        BuildId(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_look_up_and_serialise_as_their_text() {
        let id = CellId::from("debian-13/5.4/amd64");
        assert_eq!(id, "debian-13/5.4/amd64");
        let mut m = std::collections::HashMap::new();
        m.insert(id.clone(), 1);
        assert_eq!(m.get("debian-13/5.4/amd64"), Some(&1));
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"debian-13/5.4/amd64\""
        );
        assert_eq!(serde_json::to_string(&BuildId(7)).unwrap(), "7");
        assert_eq!(EngineName::from("a").to_string(), "a");
    }
}
