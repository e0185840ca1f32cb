//! Render a cell's Dockerfile from the templates in `assets/templates/` (embedded), or from a
//! user templates directory that overrides them file by file. Output is deterministic; its
//! hash with the build options is the cell's cache key ("inputs"), so changed cells show as stale.

pub mod features;
pub mod pins;
pub mod same;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::LoadedConfig;
use crate::inputs::InputSources;
use crate::matrix::{version_key, Cell, Level, Matrix};
use crate::model::inputs::{Needs, Pins, OPAM_REFS, OPAM_REPOSITORY_REF};
use crate::model::options::NetworkMode;

/// The name of the Dockerfile inside the build context.
pub use crate::model::image::DOCKERFILE_NAME;

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../assets/templates/", $name)))),*]
    };
}

/// Built-in templates, by relative name.
pub const EMBEDDED_TEMPLATES: &[(&str, &str)] = embedded![
    "common/macros.j2",
    "apt/base.Dockerfile.j2",
    "apt/compiler.Dockerfile.j2",
    "apk/base.Dockerfile.j2",
    "apk/compiler.Dockerfile.j2",
    "dnf/base.Dockerfile.j2",
    "dnf/compiler.Dockerfile.j2",
    "zypper/base.Dockerfile.j2",
    "zypper/compiler.Dockerfile.j2",
    "pacman/base.Dockerfile.j2",
    "pacman/compiler.Dockerfile.j2",
    "archive.Dockerfile.j2",
];

/// A template that failed to load or render, with where.
#[derive(Debug, thiserror::Error)]
#[error("template {template}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct RenderError {
    pub template: String,
    pub line: Option<usize>,
    pub message: String,
}

impl RenderError {
    fn from_minijinja(template: &str, e: &minijinja::Error) -> RenderError {
        // The innermost error names the template actually at fault (an import, say).
        let name = e.name().unwrap_or(template).to_string();
        let mut message = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string());
        if e.kind() == minijinja::ErrorKind::UndefinedError && e.detail().is_none() {
            message = "undefined variable".into();
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        RenderError {
            template: name,
            line: e.line(),
            message,
        }
    }
}

/// Renders Dockerfiles for the cells of one matrix.
pub struct Renderer {
    env: Environment<'static>,
    user_dir: Option<PathBuf>,
    /// The pins [`Renderer::render`] and [`Renderer::inputs`] use (the last resolution).
    pins: Arc<Pins>,
}

/// What a build needs from the template side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellInputs {
    /// The Dockerfile text to build.
    pub dockerfile: String,
    /// Cache key: sha256 of the canonical Dockerfile and the build options (hex, 64 chars).
    pub hash: String,
    /// Template it came from (`apt/base.Dockerfile.j2`).
    pub template: String,
    /// The pinned inputs the text uses (what it needs, found in its unpinned text).
    pub needs: Needs,
}

/// Build options that change what an image is, and so belong in its cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyOptions {
    pub network: NetworkMode,
}

impl Renderer {
    /// Templates from `user_dir` win over the embedded ones, file by file.
    pub fn new(user_dir: Option<&Path>) -> Renderer {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let dir = user_dir.map(Path::to_path_buf);
        let loader_dir = dir.clone();
        env.set_loader(move |name| {
            if let Some(dir) = &loader_dir {
                let p = dir.join(name);
                if p.is_file() {
                    return std::fs::read_to_string(&p).map(Some).map_err(|e| {
                        minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read {}: {e}", p.display()),
                        )
                    });
                }
            }
            Ok(EMBEDDED_TEMPLATES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string()))
        });
        Renderer {
            env,
            user_dir: dir,
            pins: Arc::new(Pins::default()),
        }
    }

    /// The renderer of a config: its templates directory, and the last resolution of its
    /// inputs (`DATA_DIR/inputs/resolved.json`; no network: unresolved refs stay names).
    pub fn for_config(loaded: &LoadedConfig) -> Renderer {
        Renderer::new(loaded.templates_dir().as_deref())
            .with_pins(Arc::new(InputSources::from_config(loaded).cached()))
    }

    /// The same renderer with other default pins.
    pub fn with_pins(mut self, pins: Arc<Pins>) -> Renderer {
        self.pins = pins;
        self
    }

    /// The pins [`Renderer::render`] uses.
    pub fn pins(&self) -> &Arc<Pins> {
        &self.pins
    }

    /// Where a template comes from: the user's file or `<built-in>`.
    pub fn origin(&self, template: &str) -> String {
        match &self.user_dir {
            Some(d) if d.join(template).is_file() => d.join(template).display().to_string(),
            _ => format!("<built-in>/{template}"),
        }
    }

    /// The template a cell renders from; for a plan's cell, the plan's job
    /// (`builds.expected:123`, the line of its job line).
    pub fn template_for(matrix: &Matrix, cell: &Cell) -> Option<String> {
        if let Some(plan) = &matrix.plan {
            let job = plan.job(&cell.id)?;
            return Some(format!("{}:{}", plan.path().display(), job.line()));
        }
        let family = matrix.distro(&cell.distro)?.family;
        let kind = match cell.level {
            Level::Base => "base",
            Level::Compiler => "compiler",
            // One recipe whatever the family: it only runs opam and rsync on the base.
            Level::Archive => return Some("archive.Dockerfile.j2".to_string()),
        };
        Some(format!("{}/{kind}.Dockerfile.j2", family.as_str()))
    }

    /// Render a cell's Dockerfile. `from` is the base image a compiler cell builds on
    /// (an image id once its base is built); None uses the base cell's staging tag.
    ///
    /// A plan's cell is its job's text byte for byte; `from` replaces only the staging
    /// reference of a compiler's or the archive's `FROM` (None keeps the plan's
    /// `…opam-staging:DISTRO-opam-ARCH`).
    ///
    /// Moving refs are replaced by this renderer's pins (see [`Renderer::render_pinned`]).
    pub fn render(
        &self,
        matrix: &Matrix,
        cell: &Cell,
        from: Option<&str>,
        tags: &crate::config::TagConfig,
    ) -> Result<String, RenderError> {
        self.render_pinned(matrix, cell, from, tags, &self.pins)
    }

    /// [`Renderer::render`] with these pins: a plan's text gets each pinned `git checkout
    /// REF` replaced by its commit ([`pins::substitute`]); a template gets `opam.checkouts`
    /// and `opam.repository_commit` in its context.
    pub fn render_pinned(
        &self,
        matrix: &Matrix,
        cell: &Cell,
        from: Option<&str>,
        tags: &crate::config::TagConfig,
        pins: &Pins,
    ) -> Result<String, RenderError> {
        if let Some(plan) = &matrix.plan {
            let job = plan.job(&cell.id).ok_or_else(|| RenderError {
                template: plan.path().display().to_string(),
                line: None,
                message: format!("the plan has no job for cell {}", cell.id),
            })?;
            let text = match from {
                Some(f) if cell.base_id().is_some() => job.text_with_from(f),
                _ => job.text().to_string(),
            };
            return Ok(pins::substitute(&text, pins));
        }
        let template = Self::template_for(matrix, cell).ok_or_else(|| RenderError {
            template: "?".into(),
            line: None,
            message: format!("cell {} has an unknown distro", cell.id),
        })?;
        let ctx = self.context(matrix, cell, from, tags, &template, pins)?;
        let tmpl = self
            .env
            .get_template(&template)
            .map_err(|e| RenderError::from_minijinja(&template, &e))?;
        tmpl.render(ctx)
            .map_err(|e| RenderError::from_minijinja(&template, &e))
    }

    /// The Dockerfile and cache key of a cell, with this renderer's pins.
    pub fn inputs(
        &self,
        matrix: &Matrix,
        cell: &Cell,
        opts: KeyOptions,
        tags: &crate::config::TagConfig,
    ) -> Result<CellInputs, RenderError> {
        self.inputs_pinned(matrix, cell, opts, tags, &self.pins)
    }

    /// The pinned inputs a cell's recipe uses (read from its text rendered without pins).
    pub fn needs(
        &self,
        matrix: &Matrix,
        cell: &Cell,
        tags: &crate::config::TagConfig,
    ) -> Result<Needs, RenderError> {
        let text = self.render_pinned(matrix, cell, None, tags, &Pins::default())?;
        Ok(pins::needs(&text))
    }

    /// The Dockerfile and cache key of a cell with these pins. A compiler cell's key includes
    /// its base's key, so changing a base makes every compiler cell on it stale. The pinned
    /// commits are in the key: opam's in the text itself, opam-repository's (the build
    /// context) beside it, for a text that copies the context.
    pub fn inputs_pinned(
        &self,
        matrix: &Matrix,
        cell: &Cell,
        opts: KeyOptions,
        tags: &crate::config::TagConfig,
        pins: &Pins,
    ) -> Result<CellInputs, RenderError> {
        let template = Self::template_for(matrix, cell).unwrap_or_default();
        let dockerfile = self.render_pinned(matrix, cell, None, tags, pins)?;
        let needs = self.needs(matrix, cell, tags)?;
        let canonical = match cell.base_id().and_then(|b| matrix.cell(&b).cloned()) {
            Some(base) => {
                let base_key = self.inputs_pinned(matrix, &base, opts, tags, pins)?.hash;
                self.render_pinned(
                    matrix,
                    cell,
                    Some(&format!("imagegrid-inputs:{base_key}")),
                    tags,
                    pins,
                )?
            }
            None => dockerfile.clone(),
        };
        let hash = hash_key(matrix, cell, &canonical, opts.network, &needs, pins);
        Ok(CellInputs {
            dockerfile,
            hash,
            template,
            needs,
        })
    }

    /// The cache keys ([`CellInputs::hash`], with today's pins) of `cells` under each of
    /// `networks` (one map, cell id -> key, per network, in order): what a staleness check
    /// over a whole matrix needs (the TUI's first frame waits on it). Each cell renders once
    /// whatever the networks and however many compiler cells stand on a base: a compiler's
    /// key text is rendered FROM a placeholder that each network's base key then replaces.
    pub fn keys(
        &self,
        matrix: &Matrix,
        cells: &[&Cell],
        networks: &[NetworkMode],
        tags: &crate::config::TagConfig,
    ) -> Result<Vec<HashMap<String, String>>, RenderError> {
        let placeholder = format!("imagegrid-inputs:{BASE_KEY_PLACEHOLDER}");
        // Cell id -> (its key text, with the placeholder for a compiler's base; its needs;
        // its base cell).
        let mut prepared: HashMap<String, (String, Needs, Option<Cell>)> = HashMap::new();
        let mut order: Vec<Cell> = Vec::new();
        for c in cells {
            let base = c.base_id().and_then(|b| matrix.cell(&b).cloned());
            for cell in base.iter().chain(std::iter::once(*c)) {
                if prepared.contains_key(&cell.id) {
                    continue;
                }
                let b = cell.base_id().and_then(|b| matrix.cell(&b).cloned());
                let from = b.as_ref().map(|_| placeholder.as_str());
                let text = self.render_pinned(matrix, cell, from, tags, &self.pins)?;
                let needs = self.needs(matrix, cell, tags)?;
                prepared.insert(cell.id.clone(), (text, needs, b));
                order.push(cell.clone());
            }
        }
        let wanted: std::collections::HashSet<&str> = cells.iter().map(|c| c.id.as_str()).collect();
        let mut out = Vec::new();
        for &network in networks {
            let mut keys: HashMap<String, String> = HashMap::new();
            // Bases first: a compiler's key text takes its base's key.
            for compilers in [false, true] {
                for cell in order.iter().filter(|c| c.base_id().is_some() == compilers) {
                    let (text, needs, base) = &prepared[&cell.id];
                    let text = match base.as_ref().and_then(|b| keys.get(&b.id)) {
                        Some(k) => text.replace(BASE_KEY_PLACEHOLDER, k),
                        None => text.clone(),
                    };
                    let k = hash_key(matrix, cell, &text, network, needs, &self.pins);
                    keys.insert(cell.id.clone(), k);
                }
            }
            keys.retain(|id, _| wanted.contains(id.as_str()));
            out.push(keys);
        }
        Ok(out)
    }

    fn context(
        &self,
        matrix: &Matrix,
        cell: &Cell,
        from: Option<&str>,
        tags: &crate::config::TagConfig,
        template: &str,
        pins: &Pins,
    ) -> Result<minijinja::Value, RenderError> {
        let err = |m: String| RenderError {
            template: template.to_string(),
            line: None,
            message: m,
        };
        let distro = matrix
            .distro(&cell.distro)
            .ok_or_else(|| err(format!("unknown distro {}", cell.distro)))?;
        let arch = matrix
            .arch(&cell.arch)
            .ok_or_else(|| err(format!("unknown arch {}", cell.arch)))?;
        let opam = &matrix.catalog.opam;
        let default_opam = opam
            .branches
            .first()
            .map(|b| b.name.clone())
            .unwrap_or_default();
        // opam ref (`2.1` ... `2.5`, `master`) -> its pinned commit, or the ref itself.
        let checkouts: serde_json::Map<String, serde_json::Value> = OPAM_REFS
            .iter()
            .map(|r| (r.to_string(), pins.opam_commit(r).unwrap_or(r).into()))
            .collect();
        let mut ctx = serde_json::json!({
            "template_name": template,
            "dockerfile_name": DOCKERFILE_NAME,
            "cell": { "id": cell.id, "level": cell.level },
            "distro": {
                "name": distro.name, "base": distro.base, "family": distro.family,
                "tier": distro.tier, "quirks": distro.quirks, "gcc": distro.gcc,
            },
            "arch": { "name": arch.name, "platform": arch.platform },
            "opam": {
                "git_url": opam.git_url, "repository_url": opam.repository_url,
                "repository_ref": opam.repository_ref, "branches": opam.branches,
                "default": default_opam,
                "checkouts": checkouts,
                "repository_commit": pins.repository_commit(),
            },
        });
        let base_ref = || match from {
            Some(f) => f.to_string(),
            None => matrix
                .cell(&cell.base_id().unwrap_or_default())
                .map(|b| b.staging_tag(tags))
                .unwrap_or_else(|| Cell::new(&cell.distro, None, &cell.arch).staging_tag(tags)),
        };
        if cell.level == Level::Archive {
            let archive = matrix
                .catalog
                .archive
                .as_ref()
                .ok_or_else(|| err("the catalog has no [archive]".to_string()))?;
            ctx["from"] = base_ref().into();
            ctx["archive"] = serde_json::to_value(archive).unwrap_or_default();
            return Ok(minijinja::Value::from_serialize(&ctx));
        }
        if let Some(version) = &cell.version {
            let o = matrix
                .ocaml(version)
                .ok_or_else(|| err(format!("unknown OCaml version {version}")))?;
            let (package, pin_package, pin_version) = o.packages();
            let repositories = matrix.catalog.repositories_for(distro, o);
            ctx["from"] = base_ref().into();
            ctx["ocaml"] = serde_json::json!({
                "version": o.version, "full": o.full, "switch": o.switch_name(),
                "package": package, "pin_package": pin_package, "pin_version": pin_version,
                "dev": o.dev, "beta": o.beta, "variant": o.variant,
                "repositories": repositories,
                "zstd": version_key(&o.version) >= (5, 1, 0),
            });
        }
        Ok(minijinja::Value::from_serialize(&ctx))
    }
}

/// Stands for a base's key in a compiler's key text while the base's key is not known yet
/// ([`Renderer::keys`]): hex, so that a template passes it through as it would a key.
const BASE_KEY_PLACEHOLDER: &str =
    "ba5eba5eba5eba5eba5eba5eba5eba5eba5eba5eba5eba5eba5eba5eba5eba5e";

/// The cache key of `cell` from its key text (`canonical`: its Dockerfile, a compiler's
/// FROM its base's key), its platform, the network and, for a text that copies the build
/// context, the opam-repository commit it would get.
fn hash_key(
    matrix: &Matrix,
    cell: &Cell,
    canonical: &str,
    network: NetworkMode,
    needs: &Needs,
    pins: &Pins,
) -> String {
    let platform = matrix
        .arch(&cell.arch)
        .map(|a| a.platform.as_str())
        .unwrap_or("");
    let mut h = Sha256::new();
    h.update(b"imagegrid-inputs-v1\0");
    h.update(canonical.as_bytes());
    h.update(b"\0platform=");
    h.update(platform.as_bytes());
    h.update(b"\0network=");
    h.update(network.as_api().as_bytes());
    if needs.opam_repository {
        // The build context: the checkout's commit (or the ref, while unresolved).
        h.update(b"\0opam-repository=");
        h.update(
            pins.repository_commit()
                .unwrap_or(OPAM_REPOSITORY_REF)
                .as_bytes(),
        );
    }
    crate::util::digest::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadedConfig, TagConfig};
    use crate::plan::Plan;

    const SMALL: &str = include_str!("../../tests/fixtures/plan/small.dump");

    fn plan_matrix(text: &str) -> Matrix {
        let plan = Plan::parse(Path::new("small.dump"), text).unwrap();
        Matrix::from_plan(&LoadedConfig::defaults(), plan).unwrap()
    }

    #[test]
    fn keys_of_a_whole_matrix_are_each_cells_own_key() {
        let tags = TagConfig::default();
        let builtin = Matrix::load(&LoadedConfig::defaults()).unwrap();
        for m in [builtin, plan_matrix(SMALL)] {
            let r = Renderer::new(None);
            // Compilers before their bases too: the memo must not depend on the order.
            let cells: Vec<&Cell> = m.cells.iter().rev().collect();
            let networks = [NetworkMode::Default, NetworkMode::None];
            let all = r.keys(&m, &cells, &networks, &tags).unwrap();
            for (network, keys) in networks.into_iter().zip(all) {
                let opts = KeyOptions { network };
                assert_eq!(keys.len(), m.cells.len());
                for c in &m.cells {
                    assert_eq!(
                        keys[&c.id],
                        r.inputs(&m, c, opts, &tags).unwrap().hash,
                        "{}",
                        c.id
                    );
                }
            }
        }
    }

    #[test]
    fn a_plans_cells_render_as_its_texts_and_key_on_them() {
        let m = plan_matrix(SMALL);
        let r = Renderer::new(None);
        let tags = TagConfig::default();
        let opts = KeyOptions {
            network: NetworkMode::default(),
        };
        let plan = m.plan.clone().unwrap();
        for c in &m.cells {
            let job = plan.job(&c.id).unwrap();
            assert_eq!(
                r.render(&m, c, None, &tags).unwrap(),
                job.text(),
                "{}",
                c.id
            );
        }
        let c = m.cell("debian-13/4.14-flambda/amd64").unwrap();
        let pinned = r
            .render(
                &m,
                c,
                Some("imagegrid/opam-staging:debian-13-opam-amd64-0123456789ab"),
                &tags,
            )
            .unwrap();
        assert!(
            pinned.contains("\nFROM imagegrid/opam-staging:debian-13-opam-amd64-0123456789ab\n")
        );
        assert_eq!(
            pinned.replace(
                "imagegrid/opam-staging:debian-13-opam-amd64-0123456789ab",
                "ocurrent/opam-staging:debian-13-opam-amd64"
            ),
            plan.job(&c.id).unwrap().text()
        );
        // A base's FROM is its upstream image: never replaced.
        let b = m.cell("debian-13/opam/amd64").unwrap();
        assert_eq!(
            r.render(&m, b, Some("x:y"), &tags).unwrap(),
            plan.job(&b.id).unwrap().text()
        );
        assert_eq!(
            Renderer::template_for(&m, c).as_deref(),
            Some(format!("small.dump:{}", plan.job(&c.id).unwrap().line()).as_str())
        );

        // The key follows the text: a changed base makes its compilers stale too, and a
        // changed compiler only itself.
        let key =
            |m: &Matrix, id: &str| r.inputs(m, m.cell(id).unwrap(), opts, &tags).unwrap().hash;
        let edited = plan_matrix(&SMALL.replacen(
            "echo 'opam 2.5' > /usr/local/bin/opam-2.5",
            "echo 'opam 2.5.1' > /usr/local/bin/opam-2.5",
            2,
        ));
        assert_ne!(
            key(&m, "debian-13/opam/arm64"),
            key(&edited, "debian-13/opam/arm64")
        );
        assert_ne!(
            key(&m, "debian-13/5.4/arm64"),
            key(&edited, "debian-13/5.4/arm64")
        );
        assert_eq!(
            key(&m, "alpine-3.23/5.4/arm64"),
            key(&edited, "alpine-3.23/5.4/arm64")
        );
        let edited =
            plan_matrix(&SMALL.replacen("echo 4.14.3+flambda >", "echo 4.14.3+flambda+x >", 1));
        assert_ne!(
            key(&m, "debian-13/4.14-flambda/amd64"),
            key(&edited, "debian-13/4.14-flambda/amd64")
        );
        assert_eq!(
            key(&m, "debian-13/5.4/amd64"),
            key(&edited, "debian-13/5.4/amd64")
        );
    }
}
