//! `imagegrid demo`: a small bundled matrix that builds real images in seconds on any engine,
//! from one small base image, and shows what the real matrix does: two levels, two arches,
//! a failing cell with a readable summary, a cell whose size regresses, coloured live logs.
//! It keeps its own data directory, so it never mixes with real history.

use std::path::{Path, PathBuf};

use clap::Args;

use super::build::BuildArgs;
use super::Exit;
use crate::config::LoadedConfig;
use crate::engine::{Engine, EngineSpec};
use crate::matrix::Matrix;
use crate::store::{BuildStatus, Store};

const BASE_TEMPLATE: &str = include_str!("../../assets/demo/base.Dockerfile.j2");
const COMPILER_TEMPLATE: &str = include_str!("../../assets/demo/compiler.Dockerfile.j2");

/// The demo cell that fails on purpose, and the one that grows in round two.
pub const BROKEN: &str = "demo-broken";
pub const GROWING: &str = "demo-debian";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Base image of every demo cell; `{arch}` is replaced by the arch (for per-arch tags).
    /// Default: a small public multi-arch image the engines pull if they can.
    #[arg(long, value_name = "IMAGE", default_value = "busybox:1.36")]
    pub base: String,
    /// Run both demo rounds without the TUI and print what they showed (for CI and tests).
    #[arg(long)]
    pub headless: bool,
    /// Where the demo keeps its history (default: a `demo` folder in the data directory).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The demo's config for round 1 or 2, with the user's engines.
fn demo_config(
    user: &LoadedConfig,
    base: &str,
    dir: &Path,
    round: u8,
) -> Result<LoadedConfig, Exit> {
    let distro = |name: &str, quirks: &[&str]| {
        let q: Vec<String> = quirks.iter().map(|q| format!("\"{q}\"")).collect();
        format!("[[distro]]\nname = \"{name}\"\nbase = \"{base}\"\nfamily = \"apk\"\ntier = 1\narches = [\"amd64\", \"arm64\"]\nquirks = [{}]\n", q.join(", "))
    };
    let grown: &[&str] = if round >= 2 { &["grown"] } else { &[] };
    let text = format!(
        "[matrix]\ndistros = [\"{GROWING}\", \"demo-alpine\", \"{BROKEN}\"]\nversions = [\"4.14\", \"5.4\"]\narches = [\"amd64\", \"arm64\"]\n{}{}{}\
         [build]\nnetwork = \"none\"\n[tags]\nstaging = \"imagegrid-demo/opam-staging\"\n[sizes]\nmax_growth_bytes = 1000000\nmax_growth_percent = 10.0\n\
         [paths]\ndata_dir = {:?}\ntemplates_dir = {:?}\n",
        distro(GROWING, grown),
        distro("demo-alpine", &[]),
        distro(BROKEN, &["broken"]),
        dir.display().to_string(),
        dir.join("templates").display().to_string(),
    );
    let mut loaded = crate::config::parse("<demo config>", &text)
        .map_err(|e| Exit::error(format!("demo config: {e}")))?;
    loaded.config.engines = user.config.engines.clone();
    loaded.path = user.path.clone();
    Ok(loaded)
}

fn write_templates(dir: &Path) -> Result<(), Exit> {
    let t = dir.join("templates/apk");
    std::fs::create_dir_all(&t)
        .map_err(|e| Exit::error(format!("cannot create {}: {e}", t.display())))?;
    for (name, text) in [
        ("base.Dockerfile.j2", BASE_TEMPLATE),
        ("compiler.Dockerfile.j2", COMPILER_TEMPLATE),
    ] {
        std::fs::write(t.join(name), text)
            .map_err(|e| Exit::error(format!("cannot write {}: {e}", t.join(name).display())))?;
    }
    Ok(())
}

/// Every engine must hold (or pull) the base image for each demo arch it builds.
async fn check_base(loaded: &LoadedConfig, matrix: &Matrix, base: &str) -> Result<(), Exit> {
    use futures_util::StreamExt;
    for spec in EngineSpec::all(loaded, matrix) {
        let engine = match Engine::connect(&spec).await {
            Ok(e) => e,
            Err(e) => return Err(Exit::error(format!("{e}\n(the demo builds on the engines of your config; `imagegrid check` tests them)"))),
        };
        for arch in spec
            .arches
            .iter()
            .filter(|a| *a == "amd64" || *a == "arm64")
        {
            let image = base.replace("{arch}", arch);
            if engine.docker().inspect_image(&image).await.is_ok() {
                check_shell(&engine, &image, arch).await?;
                continue;
            }
            eprintln!(
                "imagegrid demo: pulling {image} for linux/{arch} on engine {} ...",
                engine.name()
            );
            let opts = bollard::query_parameters::CreateImageOptionsBuilder::default()
                .from_image(&image)
                .platform(&format!("linux/{arch}"))
                .build();
            let mut pull = engine.docker().create_image(Some(opts), None, None);
            while let Some(item) = pull.next().await {
                if let Err(e) = item {
                    return Err(Exit::error(format!(
                        "the demo needs the image {image} on engine {}, which cannot pull it: {}\n\
                         Provide it without a registry: on a machine that can pull, `docker pull --platform linux/{arch} {image}` \
                         and `docker save {image} | docker -H <engine> load`; or pass --base with an image the engine has \
                         (`{{arch}}` in the name is replaced by amd64 or arm64, e.g. --base 'my/busybox:{{arch}}').",
                        engine.name(),
                        crate::engine::source_chain(&e)
                    )));
                }
            }
            check_shell(&engine, &image, arch).await?;
        }
    }
    Ok(())
}

/// The demo's `RUN` steps run through `/bin/sh`: a base image without it (a busybox tag made
/// for one arch only, a distroless image) would fail every cell of that arch with a cut-off
/// `stat /bin/sh`. Start `/bin/sh -c true` in it once, on no network, and refuse with the
/// reason if that cannot run. The container is removed either way.
async fn check_shell(engine: &Engine, image: &str, arch: &str) -> Result<(), Exit> {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
    use futures_util::StreamExt;
    let docker = engine.docker();
    let opts = CreateContainerOptionsBuilder::default()
        .platform(&format!("linux/{arch}"))
        .build();
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), "true".into()]),
        entrypoint: Some(vec![]),
        network_disabled: Some(true),
        ..Default::default()
    };
    let refuse = |why: String| {
        Exit::error(format!(
            "the demo base {image} cannot run /bin/sh for linux/{arch} on engine {}: {why}\n\
             Every demo step runs through /bin/sh: pass --base with an image that has a shell for each arch \
             (`docker run --rm --platform linux/{arch} IMAGE /bin/sh -c true` checks one).",
            engine.name()
        ))
    };
    let id = docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| refuse(crate::engine::source_chain(&e)))?
        .id;
    let started = docker.start_container(&id, None).await;
    let status = match started {
        Ok(()) => docker
            .wait_container(&id, None)
            .next()
            .await
            .map(|r| r.map(|w| w.status_code)),
        Err(e) => Some(Err(e)),
    };
    let _ = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    match status {
        Some(Ok(0)) | None => Ok(()),
        Some(Ok(code)) => Err(refuse(format!("/bin/sh -c true exited {code}"))),
        Some(Err(e)) => Err(refuse(crate::engine::source_chain(&e))),
    }
}

/// The file in the demo's data directory naming the base image its round 1 was built with.
const BASE_MARKER: &str = "demo-base.txt";

/// Why round 1 runs (again), or None when the history is reused: the history is empty, or
/// `--base` is not the base it was built with.
fn rerun_reason(empty: bool, before: Option<&str>, base: &str) -> Option<String> {
    if empty {
        return Some("no demo history yet".into());
    }
    match before {
        Some(b) if b == base => None,
        Some(b) => Some(format!("--base changed since the last run (was {b})")),
        None => Some("the demo history does not say which base built it".into()),
    }
}

fn build_args(selectors: &[&str], stale: bool) -> BuildArgs {
    BuildArgs {
        selectors: selectors.iter().map(|s| s.to_string()).collect(),
        failed: false,
        stale,
        json: false,
        dry_run: false,
        jobs: None,
        no_cache: false,
        same_inputs: false,
        no_transfer: false,
        max_size: None,
        max_growth: None,
    }
}

pub async fn run(user: &LoadedConfig, args: DemoArgs) -> Result<u8, Exit> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| user.data_dir().join("demo"));
    write_templates(&dir)?;
    let round1 = demo_config(user, &args.base, &dir, 1)?;
    let round2 = demo_config(user, &args.base, &dir, 2)?;
    let matrix1 = Matrix::from_config(&round1)?;
    check_base(&round1, &matrix1, &args.base).await?;
    let empty = Store::open(&dir)?.last_success_per_cell()?.is_empty();
    let marker = dir.join(BASE_MARKER);
    let before = std::fs::read_to_string(&marker)
        .ok()
        .map(|s| s.trim().to_string());
    let rerun = rerun_reason(empty, before.as_deref(), &args.base);
    match &rerun {
        Some(why) => eprintln!(
            "imagegrid demo: {why}: round 1 builds every demo cell ({}; {} is broken on purpose)",
            dir.display(),
            BROKEN
        ),
        None => eprintln!(
            "imagegrid demo: reusing the demo history in {} (built with base {}); --data-dir DIR for a fresh run",
            dir.display(),
            args.base
        ),
    }
    if rerun.is_some() {
        std::fs::write(&marker, format!("{}\n", args.base))
            .map_err(|e| Exit::error(format!("cannot write {}: {e}", marker.display())))?;
        super::build::run(&round1, matrix1, build_args(&["*"], false)).await?;
    }
    let matrix2 = Matrix::from_config(&round2)?;
    if !args.headless {
        let intro = format!(
            "demo: {GROWING} changed since round 1: S then b rebuilds it; H heat map, i inspector"
        );
        return Ok(crate::ui::run(round2, matrix2, Some(intro)).await?);
    }
    eprintln!("imagegrid demo: round 2 rebuilds what changed ({GROWING} grew)");
    super::build::run(&round2, matrix2, build_args(&[], true)).await?;
    report(&round2, &dir)
}

/// What the demo showed: the failing cell's summary and the regression.
fn report(loaded: &LoadedConfig, dir: &Path) -> Result<u8, Exit> {
    let store = Store::open(dir)?;
    let latest = store.latest_per_cell()?;
    let failed: Vec<_> = latest
        .values()
        .filter(|r| r.status == BuildStatus::Failed && r.cell.starts_with(BROKEN))
        .collect();
    let rows = crate::sizes::rows(
        &store.successes(None)?,
        &store.baselines()?,
        &super::sizes::thresholds(loaded),
    );
    let regressed: Vec<_> = rows.iter().filter(|r| r.regressed).collect();
    println!("demo data: {}", dir.display());
    for f in &failed {
        println!(
            "failed     {}: {}",
            f.cell,
            f.failure.as_deref().unwrap_or("")
        );
    }
    for r in &regressed {
        let d = r.delta.map(|d| d.bytes).unwrap_or(0);
        println!(
            "regressed  {}: {} ({}{})",
            r.cell,
            crate::util::units::human_size(r.size),
            if d >= 0 { "+" } else { "-" },
            crate::util::units::human_size(d.abs())
        );
    }
    Ok(if failed.is_empty() || regressed.is_empty() {
        super::EXIT_FAILED
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::rerun_reason;

    #[test]
    fn a_rerun_says_whether_it_reuses_the_history() {
        assert!(rerun_reason(true, None, "b").is_some());
        assert_eq!(rerun_reason(false, Some("b"), "b"), None);
        let why = rerun_reason(false, Some("a"), "b").unwrap();
        assert!(
            why.contains("--base changed") && why.contains("was a"),
            "{why}"
        );
        assert!(rerun_reason(false, None, "b").is_some());
    }
}
