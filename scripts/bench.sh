#!/usr/bin/env bash
# Runs the benchmarks (benches/builds.rs, ui.rs and load.rs; README.md, "Benchmarks", says
# what each measures): starts the test engines (as scripts/test.sh does), builds in release,
# runs `cargo bench`, and tears the engines down. Extra args go to `cargo bench`
# (e.g. `--bench ui`). Variables choose what runs:
#   IMAGEGRID_BENCH_ROWS=one-buildkit,one-classic,grid-buildkit,grid-classic  builds rows
#   IMAGEGRID_BENCH_RUNS=5        samples per side of each builds row (at least 5)
#   IMAGEGRID_BENCH_ONLY=load|frozen|keys   one part of benches/load.rs
#   IMAGEGRID_BENCH_DISTROS=60    a smaller load run (five cells per distro)
# e.g. `IMAGEGRID_BENCH_ROWS=grid-buildkit bash scripts/bench.sh --bench builds`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/imagegrid-test.XXXXXX)
trap 'bash scripts/test-env.sh down "$dir" >/dev/null 2>&1 || true' EXIT INT TERM
bash scripts/test-env.sh up "$dir" >/dev/null
# shellcheck disable=SC1091
source "$dir/env"
cargo build --release --locked
cargo bench --locked "$@"
