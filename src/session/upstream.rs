//! Upstream digests for both faces (issue 13): which upstream images the matrix's base
//! cells start FROM, the engines' answers for their registry digests (cached for `[inputs]
//! refresh`, see [`crate::inputs::upstream`]), and the cells a build must pull for.

use std::collections::BTreeSet;

use crate::config::LoadedConfig;
use crate::dockerfile::Renderer;
use crate::engine::EngineSpec;
use crate::inputs::upstream::{UpstreamCache, Upstreams};
use crate::matrix::Matrix;
use crate::scheduler::{PlannedCell, RunOptions};
use crate::why::recorded::{upstream_moved, upstream_wanted, History};

use super::SessionError;

/// The upstream answers for the matrix's base cells: fresh cached ones kept, the others
/// asked of an engine of the arch (all asked again when `force`). With `[build]
/// check_upstream = false`, none. The second value: a cache file that could not be written.
/// Renders templates (few: the base cells'), briefly, on the caller's thread.
pub async fn check(
    loaded: &LoadedConfig,
    m: &Matrix,
    r: &Renderer,
    force: bool,
) -> Result<(Upstreams, Option<String>), SessionError> {
    if !loaded.config.build.check_upstream {
        return Ok((Upstreams::new(), None));
    }
    let opts = RunOptions::from_config(loaded);
    let wanted = upstream_wanted(m, r, &opts)?;
    let specs = EngineSpec::all(loaded, m);
    Ok(
        crate::engine::upstream::check(&specs, &wanted, &UpstreamCache::from_config(loaded), force)
            .await,
    )
}

/// The cached answers, whatever their age (no engine asked); none with `[build]
/// check_upstream = false`.
pub fn cached(loaded: &LoadedConfig) -> Upstreams {
    if !loaded.config.build.check_upstream {
        return Upstreams::new();
    }
    UpstreamCache::from_config(loaded).load()
}

/// Build with a pull each planned cell whose upstream moved since its last success
/// (`h`, `up`: the cached answers), whatever `[build] pull` says, so that the rebuild
/// clears the reason. Returns the cells marked.
pub fn pull_moved(plan: &mut [PlannedCell], h: &History, up: &Upstreams) -> BTreeSet<String> {
    let (moved, _) = upstream_moved(h, up);
    let mut out = BTreeSet::new();
    for p in plan.iter_mut().filter(|p| moved.contains_key(&p.cell.id)) {
        p.pull = true;
        out.insert(p.cell.id.clone());
    }
    out
}
