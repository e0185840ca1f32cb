//! What went into one build, as recorded with it (issue 13): the pinned inputs
//! ([`Pins`], the schema-6 keys) and, beside them, the Dockerfile text's id (its sha256 in
//! the store's table of texts), the base image it started FROM, the upstream image's digest,
//! the platform and the build options. Stored as one JSON object (the `inputs_record`
//! column); every key is optional, so a schema-6 record reads as one with only pins.

use serde::{Deserialize, Serialize};

use super::inputs::Pins;

/// The recorded inputs of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// The pinned refs (opam, opam-repository) the build used.
    #[serde(flatten)]
    pub pins: Pins,
    /// sha256 (hex, 64 chars) of the Dockerfile text, as rendered with the pins and with its
    /// base named by tag (the text the cache key is made of); the text is in the store's
    /// table of texts under this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The image id (`sha256:...`) of the base a compiler cell was built FROM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// The upstream image a base cell starts FROM and its registry digest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// The platform built for (`linux/amd64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The network mode of the build (`default`, `host`, `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `build --same-inputs`: the build whose recorded inputs this one used again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_inputs_of: Option<i64>,
}

/// An upstream image (`debian:13`) and its digest (`sha256:...`, the registry's manifest
/// digest as the engine reports it in the image's RepoDigests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_6_record_reads_as_pins_only_and_new_keys_sit_beside_them() {
        let old =
            r#"{"opam_repository":{"url":"u","ref":"master","commit":"c","resolved_at":"t"}}"#;
        let r: Recorded = serde_json::from_str(old).unwrap();
        assert_eq!(r.pins.repository_commit(), Some("c"));
        assert_eq!(r.dockerfile, None);
        let r = Recorded {
            dockerfile: Some("d".into()),
            base_image: Some("sha256:b".into()),
            platform: Some("linux/amd64".into()),
            ..r
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["dockerfile"], "d");
        assert_eq!(v["opam_repository"]["commit"], "c");
        // A schema-6 reader (pins only) still reads the new record.
        let pins: Pins = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(pins, r.pins);
        assert_eq!(serde_json::from_value::<Recorded>(v).unwrap(), r);
    }
}
