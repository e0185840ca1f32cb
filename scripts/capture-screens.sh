#!/usr/bin/env bash
# Refreshes docs/screens/*.txt: real captures of the real program (the demo, in tmux).
# Uses the engines of a running test environment (IMAGEGRID_TEST_* variables, e.g.
# `source /tmp/imagegrid-test/env`), or starts one for the duration.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/docs/screens
started=
if [[ -z ${IMAGEGRID_TEST_UNIX_HOST:-} ]]; then
  dir=$(mktemp -d /tmp/imagegrid-test.XXXXXX)
  trap 'bash scripts/test-env.sh down "$dir" >/dev/null 2>&1 || true' EXIT
  bash scripts/test-env.sh up "$dir" >/dev/null
  # shellcheck disable=SC1091
  source "$dir/env"
  started=1
fi
cargo build --quiet
work=$(mktemp -d)
session=imagegrid-screens-$$
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$work"; [[ -n $started ]] && bash scripts/test-env.sh down "$dir" >/dev/null 2>&1 || true' EXIT
cat >"$work/config.toml" <<TOML
[[engine]]
name = "local"
endpoint = "$IMAGEGRID_TEST_UNIX_HOST"
arches = ["amd64"]

[[engine]]
name = "arm-remote"
endpoint = "$IMAGEGRID_TEST_TLS_HOST"
arches = ["arm64"]
tls = { dir = "$IMAGEGRID_TEST_TLS_DIR" }
TOML
bin="$ROOT/target/debug/imagegrid --config $work/config.toml"
# Round 1 headless, so the grid has history; then the TUI on round 2.
$bin demo --headless --base "$IMAGEGRID_TEST_FIXTURE_IMAGE:{arch}" --data-dir "$work/demo" >/dev/null 2>&1 || true
rm -rf "$work/demo"
$bin demo --headless --base "$IMAGEGRID_TEST_FIXTURE_IMAGE:{arch}" --data-dir "$work/demo" >/dev/null 2>&1 &&
  sqlite_ok=1 || sqlite_ok=
tmux new-session -d -s "$session" -x 100 -y 30 "$bin demo --base '$IMAGEGRID_TEST_FIXTURE_IMAGE:{arch}' --data-dir $work/demo"
snap() { sleep "${2:-0.6}"; tmux capture-pane -p -t "$session" | sed 's/[[:space:]]*$//' >"$OUT/$1.txt"; }
keys() { for k in "$@"; do tmux send-keys -t "$session" "$k"; sleep 0.2; done; }
mkdir -p "$OUT"
snap grid 3
# A failed cell: the filter keeps the failed row, the first column is its failed base; the
# detail pane leads with the failure line.
keys / f a i l e d Enter g Home
snap grid-failed-cell 1
keys Escape
keys Enter
snap log
keys Escape k k h h i
snap inspector 1.5
keys i Tab
snap all-arches
# The heat map's colours do not survive a text capture: its glyphs (▼ = ▲ ‼) and legend do.
keys Tab H H
snap heat-map-growth
keys H
keys '?'
snap help
keys q q
echo "captured $(ls "$OUT" | wc -l) screens into $OUT${sqlite_ok:+ (demo rounds ok)}"
