//! Command line: the TUI by default, and headless subcommands over the same core.
//! Exit status: 0 success, 1 a build or gate failed, 2 usage, config or engine error.

mod build;
mod demo;
mod failures;
mod prune;
mod plan;
mod inputs;
mod publish;
mod report;
mod sizes;
mod why;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, LoadedConfig};
use crate::matrix::Matrix;

/// The documented example config, shipped inside the binary for `config-reference`.
pub const EXAMPLE_CONFIG: &str = include_str!("../../config.example.toml");

/// Exit status for "some build failed".
pub const EXIT_FAILED: u8 = 1;
/// Exit status for usage, config and engine errors.
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "imagegrid",
    version,
    about = "Build and watch a matrix of container base images (distro x OCaml version x arch)",
    long_about = "imagegrid builds the OCaml/opam image matrix on local and remote Docker engines, \
keeps every result (history, sizes, logs), and shows it as a live grid.\n\n\
Without a subcommand it opens the interactive grid.",
    after_help = "Examples:\n  imagegrid                               open the grid\n  imagegrid matrix 'debian-*/5.*/arm64'   list cells\n  imagegrid build debian-13/5.4/amd64     build one cell and its base\n  imagegrid build --failed --json         rebuild what failed, JSON events on stdout"
)]
pub struct Cli {
    /// Config file (default: $IMAGEGRID_CONFIG, then the platform config dir's imagegrid/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Build the pipeline plan in FILE instead of the built-in catalog: the dump of
    /// ocurrent/docker-base-images (`base-images --dump`, its builds.expected). Overrides
    /// `[matrix] plan`.
    #[arg(long, global = true, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List the cells of the matrix.
    #[command(
        after_help = "Examples:\n  imagegrid matrix\n  imagegrid matrix 'debian-*/5.*/arm64' '*/*/riscv64' --json"
    )]
    Matrix {
        /// Selectors: cell ids or globs (distro/version/arch; version `opam` = base images).
        selectors: Vec<String>,
        /// One JSON array of cells.
        #[arg(long)]
        json: bool,
    },
    /// Print the Dockerfile of one cell.
    #[command(after_help = "Example:\n  imagegrid dockerfile debian-13/opam/amd64")]
    Dockerfile {
        /// Cell id, e.g. debian-13/5.4/arm64.
        cell: String,
    },
    /// Validate the config and report whether each engine is reachable.
    #[command(
        after_help = "Exit status: 0 all engines reachable, 1 some unreachable, 2 config error.\nExample:\n  imagegrid --config ci.toml check"
    )]
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Show the moving refs recipes use (opam branches, opam-repository) pinned to commits.
    #[command(
        after_help = "Resolves what is older than `[inputs] refresh` (7d by default).\nExit status: 0 all resolved, 1 an input could not be resolved, 2 config error.\nExample:\n  imagegrid inputs --refresh"
    )]
    Inputs {
        /// Resolve every input again now, whatever the age of its last resolution.
        #[arg(long)]
        refresh: bool,
        #[arg(long)]
        json: bool,
    },
    /// Why cells are stale: the inputs that moved since each one's last success, most
    /// specific first.
    #[command(
        after_help = "Exit status: 0 none stale, 1 some stale, 2 usage/config error.\nExamples:\n  imagegrid why debian-13/5.4/amd64 --diff\n  imagegrid why '*' --json"
    )]
    Why {
        /// Cell ids or globs (`'*'` for every cell).
        selectors: Vec<String>,
        /// One JSON array: [{"cell", "stale", "reasons": [{"kind", "detail", "diff"?}]}].
        #[arg(long)]
        json: bool,
        /// Print the Dockerfile diff against the last success under its reason.
        #[arg(long)]
        diff: bool,
    },
    /// Build cells headless (for CI), with live progress or JSON events.
    #[command(
        after_help = "Exit status: 0 every selected cell built, 1 some failed or were skipped, 2 usage/config/engine error.\nExamples:\n  imagegrid build debian-13/5.4/amd64\n  imagegrid build 'debian-*/*/arm64' --jobs 4\n  imagegrid build --failed --json > events.jsonl"
    )]
    Build(build::BuildArgs),
    /// List past builds.
    #[command(after_help = "Example:\n  imagegrid history 'debian-13/*/amd64' --limit 20")]
    History {
        selectors: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Only the newest N builds.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Failed cells grouped by cause (each cell's newest build), with each cause's hint.
    #[command(
        after_help = "Examples:\n  imagegrid failures\n  imagegrid failures '*/4.14/*' --json"
    )]
    Failures {
        selectors: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Failure rules: list them, or test them over the stored failed logs.
    #[command(
        subcommand,
        after_help = "Examples:\n  imagegrid rules list\n  imagegrid rules test --rules new-rules.toml '*/4.14/*'"
    )]
    Rules(failures::RulesCmd),
    /// Print a stored build log.
    #[command(
        after_help = "Examples:\n  imagegrid log debian-13/5.4/amd64\n  imagegrid log debian-13/5.4/amd64 --build 42"
    )]
    Log {
        cell: String,
        /// Build id (from `history`); default the cell's newest build.
        #[arg(long, value_name = "N")]
        build: Option<i64>,
    },
    /// List every tag a selection would publish and what each points to.
    #[command(after_help = "Example:\n  imagegrid tags 'debian-13/5.4/*'")]
    Tags(publish::TagsArgs),
    /// Push built images to the staging repository, then publish multi-arch tags and aliases.
    #[command(
        after_help = "Exit status: 0 every tag published, 1 some not (arches not built, a push failed), 2 usage/config/registry-auth error.\nExamples:\n  imagegrid publish 'debian-13/*/*' --dry-run\n  imagegrid publish '*' --json > publish.jsonl"
    )]
    Publish(publish::PublishArgs),
    /// Apply the log retention policy (`[history]`); with --engines, remove superseded
    /// images imagegrid made and prune build caches past `keep_storage`.
    #[command(
        after_help = "Exit status: 0 done, 1 some file or engine could not be pruned, 2 usage/config/history error.\nExamples:\n  imagegrid prune --dry-run\n  imagegrid prune --engines --json"
    )]
    Prune(prune::PruneArgs),
    /// Print where config, data, logs and templates live, and how much each holds.
    #[command(after_help = "Example:\n  imagegrid --config ci.toml paths")]
    Paths,
    /// Size reports, plots, regression checks, layer diffs and the multi-stage saving.
    #[command(
        after_help = "Examples:\n  imagegrid sizes 'debian-13/*/*' --format markdown\n  imagegrid sizes --since 2026-11-01 --plot sizes.svg\n  imagegrid sizes --check                      exit 1 when a cell grew past the thresholds\n  imagegrid sizes --diff debian-13/5.4/amd64   layer diff of its two newest builds\n  imagegrid sizes --compare-single-stage debian-13/opam/amd64"
    )]
    Sizes(sizes::SizesArgs),
    /// Pin a build as the size baseline of its cell (default: each selected cell's newest success).
    #[command(
        after_help = "Examples:\n  imagegrid baseline 'debian-13/*/*'\n  imagegrid baseline debian-13/5.4/amd64 --build 42"
    )]
    Baseline {
        selectors: Vec<String>,
        #[arg(long, value_name = "N")]
        build: Option<i64>,
    },
    /// A small bundled matrix that builds real images in seconds: try imagegrid without an hour of OCaml builds.
    #[command(
        after_help = "Examples:\n  imagegrid demo                               round 1 headless, then the grid\n  imagegrid demo --base 'my/busybox:{arch}'    a base image your engines already have\n  imagegrid demo --headless                    both rounds, no TUI (CI)"
    )]
    Demo(demo::DemoArgs),
    /// Print docs/config.md: the config reference, generated from config.example.toml.
    #[command(after_help = "Example:\n  imagegrid config-reference > docs/config.md")]
    ConfigReference,
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  imagegrid completions bash > /etc/bash_completion.d/imagegrid"
    )]
    Completions { shell: clap_complete::Shell },
    /// Plan files (dumps): compare two of them.
    #[command(
        subcommand,
        after_help = "Example:\n  imagegrid plan diff builds.expected.old builds.expected"
    )]
    Plan(plan::PlanCmd),
    /// Print the TUI's keybindings as Markdown (docs/keybindings.md is this output).
    #[command(after_help = "Example:\n  imagegrid keys > docs/keybindings.md")]
    Keys,
}

/// A failure that ends the command, with its exit status.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn error(message: impl Into<String>) -> Exit {
        Exit {
            code: EXIT_ERROR,
            message: message.into(),
        }
    }
}

/// Exit statuses by error kind, in one place. Every lower layer's error is a type; the CLI
/// turns each into its status here and nowhere else. Usage, config, engine, registry, store
/// and terminal errors end with [`EXIT_ERROR`]; a closed stdout pipe (`imagegrid history |
/// head`) ends quietly with 0, as other Unix tools do.
macro_rules! exit_with {
    ($($ty:ty => $code:expr),* $(,)?) => {
        $(impl From<$ty> for Exit {
            fn from(e: $ty) -> Exit {
                Exit { code: $code, message: e.to_string() }
            }
        })*
    };
}

exit_with! {
    crate::config::ConfigError => EXIT_ERROR,
    crate::config::LoadError => EXIT_ERROR,
    crate::matrix::MatrixError => EXIT_ERROR,
    crate::plan::PlanError => EXIT_ERROR,
    crate::matrix::SelectorError => EXIT_ERROR,
    crate::dockerfile::RenderError => EXIT_ERROR,
    crate::engine::EngineError => EXIT_ERROR,
    crate::store::StoreError => EXIT_ERROR,
    crate::sizes::plot::PlotError => EXIT_ERROR,
    crate::publish::auth::AuthError => EXIT_ERROR,
    crate::session::SessionError => EXIT_ERROR,
    crate::ui::UiError => EXIT_ERROR,
    serde_json::Error => EXIT_ERROR,
}

impl From<std::io::Error> for Exit {
    fn from(e: std::io::Error) -> Exit {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader has what it wanted.
            Exit {
                code: 0,
                message: String::new(),
            }
        } else {
            Exit::error(format!("cannot write the output: {e}"))
        }
    }
}

/// Entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("imagegrid: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}

/// The config (`--config`), with `--plan` set over its `[matrix] plan`.
pub fn load_config(
    cli_config: Option<&std::path::Path>,
    cli_plan: Option<&std::path::Path>,
) -> Result<LoadedConfig, Exit> {
    let mut loaded = config::load(cli_config)?;
    if let Some(p) = cli_plan {
        loaded.plan_override = Some(p.to_path_buf());
    }
    Ok(loaded)
}

/// Config and matrix (from the plan when one is named), or the exit for a bad config or
/// plan.
pub fn load(
    cli_config: Option<&std::path::Path>,
    cli_plan: Option<&std::path::Path>,
) -> Result<(LoadedConfig, Matrix), Exit> {
    let loaded = load_config(cli_config, cli_plan)?;
    let matrix = Matrix::load(&loaded)?;
    Ok((loaded, matrix))
}

fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::error(format!("cannot start the async runtime: {e}")))
}

fn run(cli: Cli) -> Result<u8, Exit> {
    let cfg_path = cli.config.as_deref();
    let plan_path = cli.plan.as_deref();
    let load = |c| load(c, plan_path);
    match cli.command {
        None => {
            let (loaded, matrix) = load(cfg_path)?;
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
                Ok(runtime()?.block_on(crate::ui::run(loaded, matrix, None))?)
            } else {
                // Not a terminal (a pipe, CI): the grid as text.
                report::print_grid(&loaded, &matrix)?;
                Ok(0)
            }
        }
        Some(Cmd::Matrix { selectors, json }) => {
            let (loaded, matrix) = load(cfg_path)?;
            report::matrix(&loaded, &matrix, &selectors, json)
        }
        Some(Cmd::Dockerfile { cell }) => {
            let (loaded, matrix) = load(cfg_path)?;
            report::dockerfile(&loaded, &matrix, &cell)
        }
        Some(Cmd::Check { json }) => {
            let (loaded, matrix) = load(cfg_path)?;
            runtime()?.block_on(report::check(&loaded, &matrix, json))
        }
        Some(Cmd::Inputs { refresh, json }) => {
            let loaded = load_config(cfg_path, plan_path)?;
            inputs::run(&loaded, refresh, json)
        }
        Some(Cmd::Why {
            selectors,
            json,
            diff,
        }) => {
            why::require_selectors(&selectors)?;
            let (loaded, matrix) = load(cfg_path)?;
            why::run(&loaded, &matrix, &selectors, json, diff)
        }
        Some(Cmd::Build(args)) => {
            let (loaded, matrix) = load(cfg_path)?;
            runtime()?.block_on(build::run(&loaded, matrix, args))
        }
        Some(Cmd::History {
            selectors,
            json,
            limit,
        }) => {
            let (loaded, matrix) = load(cfg_path)?;
            report::history(&loaded, &matrix, &selectors, json, limit)
        }
        Some(Cmd::Failures { selectors, json }) => {
            let (loaded, matrix) = load(cfg_path)?;
            failures::failures(&loaded, &matrix, &selectors, json)
        }
        Some(Cmd::Rules(failures::RulesCmd::List { json })) => {
            let loaded = load_config(cfg_path, plan_path)?;
            failures::list(&loaded, json)
        }
        Some(Cmd::Rules(failures::RulesCmd::Test(args))) => {
            let (loaded, matrix) = load(cfg_path)?;
            failures::test(&loaded, &matrix, &args)
        }
        Some(Cmd::Log { cell, build }) => {
            let (loaded, _) = load(cfg_path)?;
            report::log(&loaded, &cell, build)
        }
        Some(Cmd::Sizes(args)) => {
            let (loaded, matrix) = load(cfg_path)?;
            runtime()?.block_on(sizes::run(&loaded, &matrix, args))
        }
        Some(Cmd::Baseline { selectors, build }) => {
            let (loaded, matrix) = load(cfg_path)?;
            sizes::baseline(&loaded, &matrix, &selectors, build)
        }
        Some(Cmd::Demo(args)) => {
            let loaded = load_config(cfg_path, plan_path)?;
            runtime()?.block_on(demo::run(&loaded, args))
        }
        Some(Cmd::ConfigReference) => {
            print!("{}", config::reference::markdown(EXAMPLE_CONFIG));
            Ok(0)
        }
        Some(Cmd::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "imagegrid",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Some(Cmd::Tags(args)) => {
            let (loaded, matrix) = load(cfg_path)?;
            runtime()?.block_on(publish::tags(&loaded, &matrix, args))
        }
        Some(Cmd::Publish(args)) => {
            let (loaded, matrix) = load(cfg_path)?;
            runtime()?.block_on(publish::run(&loaded, &matrix, args))
        }
        Some(Cmd::Plan(cmd)) => plan::run(cmd),
        Some(Cmd::Keys) => {
            print!("{}", crate::ui::keymap::markdown());
            Ok(0)
        }
        Some(Cmd::Prune(args)) => {
            let (loaded, matrix) = load(cfg_path)?;
            runtime()?.block_on(prune::run(&loaded, matrix, args))
        }
        Some(Cmd::Paths) => {
            let loaded = load_config(cfg_path, plan_path)?;
            report::paths(&loaded);
            Ok(0)
        }
    }
}
