//! Upstream images (issue 13): the image a base cell starts FROM (`debian:13`) and the
//! answers engines gave for its registry digest, cached in `DATA_DIR/inputs/upstream.json`
//! beside the refs' `resolved.json`. An answer stays valid for `[inputs] refresh`; a failed
//! answer (registry unreachable) is asked again after [`RETRY_FAILED`] at most. The asking
//! itself is the engine layer's (`engine/upstream.rs`: Engine API `GET /distribution/{name}/json`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A failed answer is asked again after this long (or `refresh`, when shorter).
pub const RETRY_FAILED: Duration = Duration::from_secs(3600);

/// What an engine answered for one upstream image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamAnswer {
    /// The registry's digest of the image's manifest (list), `sha256:...`; None when the
    /// question failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Why the question failed (`engine m: ... connection refused`), credentials removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The engine asked.
    pub engine: String,
    /// When it was asked (RFC 3339, UTC).
    pub asked_at: String,
}

/// Upstream image (as written after FROM) -> the last answer for it.
pub type Upstreams = BTreeMap<String, UpstreamAnswer>;

/// The cache file of upstream answers.
#[derive(Debug, Clone)]
pub struct UpstreamCache {
    /// `DATA_DIR/inputs/upstream.json`.
    pub file: PathBuf,
    /// How long a digest stays valid (`[inputs] refresh`).
    pub refresh: Duration,
}

impl UpstreamCache {
    /// The cache of a config's data dir, valid for its `[inputs] refresh`.
    pub fn from_config(loaded: &crate::config::LoadedConfig) -> UpstreamCache {
        UpstreamCache {
            file: loaded.data_dir().join("inputs").join("upstream.json"),
            refresh: loaded.config.inputs.refresh,
        }
    }

    /// Every answer kept, whatever its age (an unreadable file reads as none).
    pub fn load(&self) -> Upstreams {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Write `answers` (atomically: a temporary file renamed). Errors name the file.
    pub fn save(&self, answers: &Upstreams) -> Result<(), String> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = self.file.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(answers).unwrap_or_default();
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.file))
            .map_err(|e| format!("cannot write {}: {e}", self.file.display()))
    }

    /// Is `a` recent enough not to ask again, at `now`? A digest for `refresh`, a failure
    /// for the shorter of `refresh` and [`RETRY_FAILED`].
    pub fn fresh(&self, a: &UpstreamAnswer, now: time::OffsetDateTime) -> bool {
        let valid = if a.digest.is_some() {
            self.refresh
        } else {
            self.refresh.min(RETRY_FAILED)
        };
        time::OffsetDateTime::parse(&a.asked_at, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| now - t < valid)
    }
}

/// The upstream image of a base cell's Dockerfile: the image of its first `FROM` line
/// (flags such as `--platform=` skipped, `AS name` dropped). None for `scratch`, for an
/// image named by a build argument (`$`), or a text without FROM.
pub fn upstream_image(dockerfile: &str) -> Option<String> {
    let line = dockerfile.lines().map(str::trim).find(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
    })?;
    let image = line
        .split_whitespace()
        .skip(1)
        .find(|w| !w.starts_with("--"))?;
    if image == "scratch" || image.contains('$') {
        return None;
    }
    Some(image.to_string())
}

/// `sha256:` and 12 hex digits, then `…` (a digest in a sentence).
pub fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    if hex.len() <= 12 {
        return d.to_string();
    }
    format!("sha256:{}…", &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_is_the_first_from_image() {
        let t = "# syntax=docker/dockerfile:1\nFROM --platform=linux/amd64 debian:13 AS base\nRUN x\nFROM base\n";
        assert_eq!(upstream_image(t).as_deref(), Some("debian:13"));
        assert_eq!(
            upstream_image("\tfrom 127.0.0.1:5000/x/up:1\n").as_deref(),
            Some("127.0.0.1:5000/x/up:1")
        );
        assert_eq!(upstream_image("FROM scratch\n"), None);
        assert_eq!(upstream_image("ARG B\nFROM $B\n"), None);
        assert_eq!(upstream_image("RUN true\n"), None);
        assert_eq!(
            short_digest(&format!("sha256:{}", "ab".repeat(32))),
            "sha256:abababababab…"
        );
    }

    #[test]
    fn failures_are_asked_again_sooner_than_digests() {
        let c = UpstreamCache {
            file: PathBuf::from("/nonexistent/upstream.json"),
            refresh: Duration::from_secs(7 * 24 * 3600),
        };
        let now = time::OffsetDateTime::now_utc();
        let at = |ago: i64| {
            (now - time::Duration::seconds(ago))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let ok = |ago| UpstreamAnswer {
            digest: Some("sha256:a".into()),
            error: None,
            engine: "m".into(),
            asked_at: at(ago),
        };
        let failed = |ago| UpstreamAnswer {
            digest: None,
            error: Some("connection refused".into()),
            ..ok(ago)
        };
        assert!(c.fresh(&ok(2 * 3600), now));
        assert!(!c.fresh(&ok(8 * 24 * 3600), now));
        assert!(c.fresh(&failed(60), now));
        assert!(!c.fresh(&failed(2 * 3600), now));
        assert!(c.load().is_empty(), "a missing file reads as no answers");
    }
}
