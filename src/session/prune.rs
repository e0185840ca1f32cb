//! The prune both faces run (`imagegrid prune`, and by itself after a build run): build
//! logs by `[history]`'s policy (see `store::retention`), and on each engine the images the
//! history no longer needs (see `store::images`) and the build cache past `keep_storage`.

use serde::Serialize;

use super::{blocking, Session, SessionError};
use crate::engine::cleanup::DiskUse;
use crate::engine::{Engine, EngineSpec};
use crate::store::images::ImageDecision;
use crate::store::retention::{self, LogPolicy, LogPruneReport};

/// What to prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneOptions {
    /// Engines too (images and build cache), not only logs.
    pub engines: bool,
    /// Say what would go; change nothing.
    pub dry_run: bool,
}

/// One engine's prune.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnginePrune {
    pub engine: String,
    /// Why this engine was not pruned (unreachable, an API error); the others still are.
    pub error: Option<String>,
    /// Every image imagegrid made there, with the policy's verdict.
    pub images: Vec<ImageDecision>,
    /// Images removed (dry: that would be).
    pub removed: usize,
    /// Their sizes as the engine listed them (shared layers counted per image).
    pub removed_bytes: i64,
    /// Removals the engine refused (image: reason); the rest went on.
    pub errors: Vec<String>,
    /// `keep_storage` of this engine, bytes.
    pub keep_storage: Option<u64>,
    /// What the build cache prune reclaimed (None when not run).
    pub cache_reclaimed_bytes: Option<i64>,
    /// Disk use before and after (Engine API system df).
    pub disk_before: Option<DiskUse>,
    pub disk_after: Option<DiskUse>,
}

/// Everything a prune did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub logs: LogPruneReport,
    /// Empty unless engines were asked for.
    pub engines: Vec<EnginePrune>,
}

/// The log policy of a config's `[history]`.
pub fn log_policy(h: &crate::config::HistoryConfig) -> LogPolicy {
    LogPolicy {
        keep_per_cell: (h.keep_logs_per_cell > 0).then_some(h.keep_logs_per_cell),
        keep_days: (h.keep_logs_days > 0).then_some(h.keep_logs_days),
    }
}

impl Session {
    /// Prune logs (and engines when asked). Rows are marked on the store's thread, files
    /// handled on a blocking thread, engines one after another.
    /// Errors: the store's; engine problems are reported per engine and do not stop it.
    pub async fn prune(&self, opts: PruneOptions) -> Result<PruneReport, SessionError> {
        let policy = log_policy(&self.loaded.config.history);
        let dry = opts.dry_run;
        let (rows, ids, texts) = self
            .store
            .try_call(move |s| {
                let (rows, ids) = s.plan_log_prune(policy)?;
                if !dry {
                    s.mark_logs_pruned(&ids)?;
                }
                // The texts only pruned rows named go with them.
                let texts = s.prune_texts(&ids, dry)?;
                Ok((rows, ids, texts))
            })
            .await?;
        let dir = self.store.dir().to_path_buf();
        let mut logs =
            blocking(move || Ok(retention::apply(&dir, &rows, &ids, policy, dry))).await?;
        (logs.texts_removed, logs.texts_bytes) = texts;
        let mut engines = Vec::new();
        if opts.engines {
            for spec in EngineSpec::all(&self.loaded, &self.matrix) {
                engines.push(self.prune_engine(&spec, dry).await?);
            }
        }
        Ok(PruneReport { logs, engines })
    }

    async fn prune_engine(
        &self,
        spec: &EngineSpec,
        dry: bool,
    ) -> Result<EnginePrune, SessionError> {
        let keep_storage = self
            .loaded
            .config
            .engines
            .iter()
            .find(|e| *e.name.get_ref() == spec.name)
            .and_then(|e| e.keep_storage);
        let mut out = EnginePrune {
            engine: spec.name.clone(),
            keep_storage,
            ..Default::default()
        };
        let engine = match Engine::connect(spec).await {
            Ok(e) => e,
            Err(e) => {
                out.error = Some(e.message);
                return Ok(out);
            }
        };
        out.disk_before = engine.disk_use().await.ok();
        let images = match engine.owned_images().await {
            Ok(i) => i,
            Err(e) => {
                out.error = Some(e.message);
                return Ok(out);
            }
        };
        out.images = self
            .store
            .try_call(move |s| {
                let keep = s.images_to_keep()?;
                s.decide_images(images, &keep)
            })
            .await?;
        for d in out.images.iter().filter(|d| d.remove) {
            if !dry {
                if let Err(e) = engine.remove_owned(&d.image).await {
                    out.errors.push(format!("{}: {}", d.image.id, e.message));
                    continue;
                }
            }
            out.removed += 1;
            out.removed_bytes += d.image.size;
        }
        if let (Some(keep), false) = (keep_storage, dry) {
            match engine.prune_build_cache(keep).await {
                Ok(n) => out.cache_reclaimed_bytes = Some(n),
                Err(e) => out.errors.push(format!("build cache: {}", e.message)),
            }
        }
        if !dry {
            out.disk_after = engine.disk_use().await.ok();
        }
        Ok(out)
    }
}
