#!/usr/bin/env bash
# The project's test command:
#
#   scripts/test.sh [extra cargo test args...]
#
# Starts the real-engine test environment (scripts/test-env.sh) in a fresh
# /tmp/imagegrid-test.XXXXXX, runs `cargo test --locked --all-targets` with
# its IMAGEGRID_TEST_* variables, and always tears it down again: on success,
# failure, Ctrl-C, SIGTERM or SIGHUP. Exits with cargo's status.
#
# Each run holds a lock on /tmp/imagegrid-test.XXXXXX.lock while it lives.
# Before starting, environments of runs that died without cleaning up (their
# lock is free, or they have no lock and their engines are dead) are removed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
TEST_ENV=$HERE/test-env.sh
PREFIX=/tmp/imagegrid-test.
# Held while cleaning stale dirs and creating ours, so a concurrent run
# never takes our fresh, not yet locked dir for a stale one.
DIRS_LOCK=/tmp/.imagegrid-test-dirs.lock

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

find_cargo() {
  if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
  fi
  command -v cargo >/dev/null ||
    die "cargo not found on PATH (nor in ~/.cargo/bin): install Rust (rustup) to run the tests"
}

pid_alive() { # exists and is not a zombie
  local state
  [[ -n $1 && -r /proc/$1/stat ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

engines_alive() { # any engine of DIR still running
  local f
  for f in "$1/a/engine.pid" "$1/b/engine.pid" "$1/m/engine.pid"; do
    [[ -f $f ]] && pid_alive "$(tr -dc 0-9 <"$f")" && return 0
  done
  return 1
}

# A dir is stale when the run that owned it is gone: its lock file can be
# taken (the owner held it until it died), or, for a dir without a lock
# file (made by hand with test-env.sh up), its engines are dead.
is_stale() {
  local dir=$1
  if [[ -e $dir.lock ]]; then
    flock -n "$dir.lock" true
  elif engines_alive "$dir"; then
    return 1
  fi
}

clean_stale_dirs() {
  local d
  for d in "$PREFIX"*; do
    [[ -d $d && ! -L $d ]] || continue
    is_stale "$d" || continue
    log "removing stale $d"
    bash "$TEST_ENV" down "$d" 9>&- || log "warning: could not clean $d"
    rm -f "$d.lock"
  done
  for d in "$PREFIX"*.lock; do # lock files whose dir is already gone
    [[ -f $d && ! -e ${d%.lock} ]] || continue
    if flock -n "$d" true; then rm -f "$d"; fi
  done
}

DIR=
CARGO_PID=

# EXIT trap: tear the environment down, keep the exit status.
# shellcheck disable=SC2317 # (trap handlers look unreachable to shellcheck)
cleanup() {
  local rc=$?
  trap - EXIT
  trap '' INT TERM HUP # a second Ctrl-C must not cut the teardown short
  if [[ -n $DIR ]]; then
    bash "$TEST_ENV" down "$DIR" 9>&- || log "warning: teardown of $DIR failed"
    rm -f "$DIR.lock"
  fi
  exit "$rc"
}

# INT/TERM/HUP: stop cargo and the tests it runs (their own process group),
# then exit, which runs the EXIT trap.
# shellcheck disable=SC2317
on_signal() {
  local rc=$1
  trap '' INT TERM HUP
  if [[ -n $CARGO_PID ]]; then
    kill -TERM -- "-$CARGO_PID" 2>/dev/null || true
    wait "$CARGO_PID" 2>/dev/null || true
  fi
  log "interrupted"
  exit "$rc"
}

main() {
  find_cargo
  [[ $(id -u) == 0 ]] || die "must run as root (private dockerd engines, mounts, apt-get)"

  trap cleanup EXIT
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM
  trap 'on_signal 129' HUP

  exec 8>"$DIRS_LOCK"
  flock 8
  clean_stale_dirs
  DIR=$(mktemp -d "${PREFIX}XXXXXX")
  # fd 9 holds our lock for the whole run; every child gets 9>&- so that no
  # daemon or test keeps it after we are gone.
  exec 9>"$DIR.lock"
  flock 9
  exec 8>&-

  local env_file
  env_file=$(bash "$TEST_ENV" up "$DIR" 9>&-)
  # shellcheck disable=SC1090
  . "$env_file"

  cd "$ROOT"
  # cargo runs in its own session (so Ctrl-C reaches only us, and on_signal
  # can stop cargo and every test process with one kill of its group); we
  # wait for it in the background so a signal is handled at once.
  local rc=0
  setsid cargo test --locked --all-targets "$@" 9>&- &
  CARGO_PID=$!
  wait "$CARGO_PID" || rc=$?
  CARGO_PID=
  exit "$rc"
}

main "$@"
