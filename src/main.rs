//! The `imagegrid` binary: the TUI by default, headless subcommands for scripts and CI.

fn main() -> std::process::ExitCode {
    imagegrid::cli::main()
}
