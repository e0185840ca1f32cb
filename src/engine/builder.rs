//! What an engine's builder accepts, probed once per engine: its version, whether it has
//! BuildKit, whether its built-in Dockerfile frontend reads the BuildKit-era syntax
//! (heredocs and `COPY --link` arrived with Dockerfile frontend 1.4, built into Engine 23.0;
//! `RUN --mount` with 1.2, built into Engine 20.10), and whether the frontend image a
//! `# syntax=` directive names resolves from the engine (BuildKit pulls it from its registry,
//! which an air-gapped engine cannot reach).
//!
//! [`Builder::refusal`] is the pure rule routing uses.

use serde::Serialize;

use super::Engine;
use crate::dockerfile::features::Features;
use crate::model::options::FrontendMode;

/// The frontend image of the pipeline's texts (`# syntax=docker/dockerfile:1`).
pub const PIPELINE_SYNTAX: &str = "docker/dockerfile:1";

/// A probe of whether an engine resolves a frontend image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum FrontendProbe {
    /// Not probed (`[build] frontend = "builtin"` never needs it).
    Unprobed,
    /// The engine resolved it from its registry.
    Resolves,
    /// It did not; the engine's answer.
    Fails(String),
}

/// What one engine's builder accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Builder {
    /// `20.10.24`, `26.1.5+dfsg1`.
    pub version: String,
    /// Builds can use BuildKit.
    pub buildkit: bool,
    /// The built-in frontend reads heredocs and `COPY --link` (Engine 23.0 and later).
    pub builtin_heredoc_link: bool,
    /// The built-in frontend reads `RUN --mount` (Engine 20.10 and later, with BuildKit).
    pub builtin_mount: bool,
    /// Whether [`PIPELINE_SYNTAX`] resolves from the engine.
    pub syntax: FrontendProbe,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            version: String::new(),
            buildkit: false,
            builtin_heredoc_link: false,
            builtin_mount: false,
            syntax: FrontendProbe::Unprobed,
        }
    }
}

/// `26.1.5+dfsg1` -> (26, 1); None when it does not start with two numbers.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Builder {
    /// What a builder of this engine version accepts (the frontend image not probed).
    pub fn of_version(version: &str, buildkit: bool) -> Builder {
        let v = major_minor(version).unwrap_or((0, 0));
        Builder {
            version: version.to_string(),
            buildkit,
            builtin_heredoc_link: buildkit && v >= (23, 0),
            builtin_mount: buildkit && v >= (20, 10),
            syntax: FrontendProbe::Unprobed,
        }
    }

    /// One line for `check`: `Docker 26.1.5, BuildKit, built-in frontend: heredocs, COPY
    /// --link, RUN --mount; docker/dockerfile:1 resolves`.
    pub fn describe(&self) -> String {
        let mut built_in = Vec::new();
        if self.builtin_heredoc_link {
            built_in.extend(["heredocs", "COPY --link"]);
        }
        if self.builtin_mount {
            built_in.push("RUN --mount");
        }
        let frontend = if built_in.is_empty() {
            "built-in frontend: classic syntax only".to_string()
        } else {
            format!("built-in frontend: {}", built_in.join(", "))
        };
        let syntax = match &self.syntax {
            FrontendProbe::Unprobed => format!("{PIPELINE_SYNTAX} not probed"),
            FrontendProbe::Resolves => format!("{PIPELINE_SYNTAX} resolves"),
            FrontendProbe::Fails(why) => format!("{PIPELINE_SYNTAX} does not resolve ({why})"),
        };
        format!(
            "Docker {}, {}, {frontend}; {syntax}",
            self.version,
            if self.buildkit {
                "BuildKit"
            } else {
                "classic builder only"
            }
        )
    }

    /// What `imagegrid check` adds under this builder's line when texts with a `# syntax=`
    /// line (the built-in recipes) cannot build here under `frontend`: the frontend image
    /// does not resolve (an engine without a route to its registry). None otherwise.
    pub fn frontend_hint(&self, frontend: FrontendMode) -> Option<String> {
        match (&self.syntax, frontend) {
            (FrontendProbe::Fails(_), FrontendMode::Directive) => Some(format!(
                "texts with a `# syntax={PIPELINE_SYNTAX}` line (the built-in recipes) will not build on this engine; without a route to the frontend's registry, set `[build] frontend = \"builtin\"`{}",
                if self.builtin_heredoc_link {
                    ""
                } else {
                    " and build them on Docker 23 or later (heredocs, `COPY --link`)"
                }
            )),
            _ => None,
        }
    }

    /// Why this engine (`engine`) cannot build a text with `features` under `frontend` and a
    /// run that uses BuildKit (`buildkit`) or not, naming what it lacks and the setting that
    /// would help; None when it can.
    pub fn refusal(
        &self,
        engine: &str,
        features: &Features,
        frontend: FrontendMode,
        buildkit: bool,
    ) -> Option<String> {
        let modern = features.modern();
        let directive = features
            .syntax
            .as_deref()
            .filter(|_| frontend == FrontendMode::Directive);
        if !buildkit && (directive.is_some() || !modern.is_empty()) {
            let what = if modern.is_empty() {
                "a `# syntax=` directive".to_string()
            } else {
                modern.join(", ")
            };
            return Some(format!(
                "engine {engine} (Docker {}) builds with the classic builder, which cannot read {what}; set `[build] buildkit = \"auto\"` or \"on\"{}",
                self.version,
                if self.buildkit { "" } else { " with an engine that has BuildKit" }
            ));
        }
        if let Some(image) = directive {
            return match &self.syntax {
                FrontendProbe::Fails(why) => Some(format!(
                    "engine {engine} (Docker {}) cannot resolve the frontend image {image} the `# syntax=` line names ({why}); set `[build] frontend = \"builtin\"`{}",
                    self.version,
                    if self.builtin_heredoc_link { "" } else { " and use an engine of Docker 23 or later" }
                )),
                _ => None,
            };
        }
        let mut lacks = Vec::new();
        if (features.heredoc || features.link) && !self.builtin_heredoc_link {
            lacks.extend(modern.iter().filter(|m| **m != "RUN --mount"));
        }
        if features.mount && !self.builtin_mount {
            lacks.push("RUN --mount");
        }
        if lacks.is_empty() {
            return None;
        }
        let help = match frontend {
            // The text's `# syntax=` line was stripped: keeping it would have BuildKit pull
            // a frontend image that reads these.
            FrontendMode::Builtin => "use an engine of Docker 23 or later, or set `[build] frontend = \"directive\"` for a text with a `# syntax=` line (the engine then pulls that frontend image from its registry)",
            FrontendMode::Directive => "use an engine of Docker 23 or later, or a text with a `# syntax=` line (`docker/dockerfile:1`) on an engine that reaches its registry",
        };
        Some(format!(
            "engine {engine} (Docker {}) cannot build {}: its built-in Dockerfile frontend predates them ([build] frontend = \"{}\"); {help}",
            self.version,
            lacks.join(", "),
            frontend.as_str()
        ))
    }
}

impl Engine {
    /// Does `image` (a frontend image) resolve from this engine? Asks the engine to look it
    /// up in its registry (`GET /distribution/{name}/json`), as BuildKit would, within
    /// `timeout`.
    pub async fn probe_frontend(&self, image: &str, timeout: std::time::Duration) -> FrontendProbe {
        match tokio::time::timeout(timeout, self.docker().inspect_registry_image(image, None)).await
        {
            Ok(Ok(_)) => FrontendProbe::Resolves,
            Ok(Err(e)) => FrontendProbe::Fails(crate::logs::sanitise_line(
                super::EngineError::from_bollard_at(self.name(), Some(&self.endpoint), &e)
                    .message
                    .as_bytes(),
            )),
            Err(_) => FrontendProbe::Fails(format!("no answer within {} s", timeout.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::features::features;

    const PIPELINE_BASE: &str = "# syntax=docker/dockerfile:1\nFROM a\nCOPY <<-EOF /x\n\ty\nEOF\nCOPY --link [ \".\", \"/r\" ]\n";
    const ARCHIVE: &str = "FROM a\nRUN --mount=type=bind,target=/c,from=x true\n";

    #[test]
    fn engines_refuse_what_their_builder_cannot_read_and_say_what_helps() {
        let old = Builder::of_version("20.10.24+dfsg1", true);
        let new = Builder::of_version("26.1.5+dfsg1", true);
        let base = features(PIPELINE_BASE);
        let builtin = FrontendMode::Builtin;
        assert_eq!(new.refusal("m", &base, builtin, true), None);
        let why = old.refusal("a", &base, builtin, true).unwrap();
        assert!(
            why.contains("engine a (Docker 20.10.24+dfsg1) cannot build heredocs, COPY --link"),
            "{why}"
        );
        assert!(why.contains("frontend = \"directive\""), "{why}");
        // RUN --mount is built into 20.10 already.
        assert_eq!(old.refusal("a", &features(ARCHIVE), builtin, true), None);
        // The classic builder reads none of it.
        let why = new.refusal("m", &base, builtin, false).unwrap();
        assert!(
            why.contains("classic builder") && why.contains("buildkit"),
            "{why}"
        );
        // Directive: an engine that cannot resolve the frontend image refuses.
        let mut offline = old.clone();
        offline.syntax = FrontendProbe::Fails("no such host".into());
        let why = offline
            .refusal("a", &base, FrontendMode::Directive, true)
            .unwrap();
        assert!(
            why.contains("docker/dockerfile:1")
                && why.contains("frontend = \"builtin\"")
                && why.contains("Docker 23"),
            "{why}"
        );
        let mut online = old.clone();
        online.syntax = FrontendProbe::Resolves;
        assert_eq!(
            online.refusal("a", &base, FrontendMode::Directive, true),
            None
        );
        // Classic text builds anywhere.
        assert_eq!(
            Builder::of_version("20.10.24", false).refusal(
                "b",
                &features("FROM a\nRUN true\n"),
                builtin,
                false
            ),
            None
        );
        // check's hint: only where the directive's image does not resolve.
        assert_eq!(offline.frontend_hint(FrontendMode::Builtin), None);
        assert_eq!(online.frontend_hint(FrontendMode::Directive), None);
        let hint = offline.frontend_hint(FrontendMode::Directive).unwrap();
        assert!(
            hint.contains("frontend = \"builtin\"") && hint.contains("Docker 23"),
            "{hint}"
        );
        let mut new_offline = new.clone();
        new_offline.syntax = FrontendProbe::Fails("no such host".into());
        let hint = new_offline.frontend_hint(FrontendMode::Directive).unwrap();
        assert!(
            hint.contains("frontend = \"builtin\"") && !hint.contains("Docker 23"),
            "{hint}"
        );
        assert!(
            new.describe()
                .contains("heredocs, COPY --link, RUN --mount"),
            "{}",
            new.describe()
        );
    }
}
