#!/usr/bin/env bash
# Real-engine test environment for imagegrid.
#
#   scripts/test-env.sh up   [DIR]   start everything, write DIR/env, print its path
#   scripts/test-env.sh down [DIR]   stop everything `up` started, remove DIR
#   scripts/test-env.sh env  [DIR]   print DIR/env if the environment answers, else exit 1
#
# DIR defaults to /tmp/imagegrid-test. `up` gives the tests:
#   - engine "a": a private dockerd on a unix socket;
#   - engine "b": a private dockerd on tcp://127.0.0.1:PORT with mutual TLS;
#     (a and b: Debian 12's docker.io, Docker 20.10, Engine API 1.41)
#   - engine "m" (modern): Debian 13 (trixie)'s docker.io dockerd, Docker 26.1
#     (Engine API 1.45), on a unix socket; fetched once with a private apt
#     state (trixie never enters the system's sources) and kept in CACHE_DIR,
#     with trixie's docker-buildx CLI plugin next to it;
#   - fixture images imagegrid-fixture/busybox:{amd64,arm64,latest} on all three
#     (FROM scratch + static busybox; arm64 runs under qemu-user-static);
#   - an sshd on loopback through which engine a's socket can be forwarded;
#   - a registry (Debian's docker-registry) on loopback.
# Needs root and a Debian machine; installs what is missing with apt-get.
# Every process is stopped by the pid in its pid file, never by name.
set -euo pipefail
set -E # the ERR trap below also fires inside functions

PROG=imagegrid-test
DEFAULT_DIR=/tmp/imagegrid-test
CACHE_DIR=/var/cache/imagegrid-test # survives runs: the arm64 busybox, Docker 26.1, apt log
# containerd, runc, tini: what engine m's dockerd (from trixie) runs on (bookworm's
# docker.io depends on them too; named here since engine m needs them in their own right).
PACKAGES=(docker.io containerd runc tini qemu-user-static binfmt-support busybox-static
  docker-registry openssh-server openssl curl tmux)
ENGINES=(a b m) # every engine `up` starts, by its directory under DIR
FIXTURE_REPO=imagegrid-fixture/busybox
MARKER=.imagegrid-test-env # marks a DIR as ours, so `up`/`down` never wipe anything else
READY_TIMEOUT=30           # seconds to wait for a service to answer
STOP_TIMEOUT=10            # seconds between SIGTERM and SIGKILL
PORT_MIN=23760             # free ports are picked in [PORT_MIN, PORT_MAX), below the
PORT_MAX=32760             # kernel's ephemeral range so outgoing connections can't hold them

# Whatever the caller configured for docker/curl must not leak into our checks.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_SUSPEND=1 # docker.io pulls in needrestart; it must not restart services
export DOCKER_BUILDKIT=0 # the CLI has no buildx plugin; the classic builder is enough here

# ---------------------------------------------------------------- output ---

STEP_OPEN= # set while a "doing x ... " line waits for its "ok"

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

# End a pending "doing x ... " line so a message does not glue onto it.
break_step_line() {
  if [[ -n $STEP_OPEN ]]; then
    printf '\n' >&2
    STEP_OPEN=
  fi
}

warn() {
  break_step_line
  log "warning: $*"
}

die() {
  if [[ -n $STEP_OPEN ]]; then printf 'FAILED\n' >&2; fi
  STEP_OPEN=
  log "error: $*"
  exit 1
}

on_error() { # unexpected failure of a plain command (set -e)
  local rc=$1 line=$2 cmd=$3
  if [[ -n $STEP_OPEN ]]; then printf 'FAILED\n' >&2; fi
  STEP_OPEN=
  log "error: '$cmd' failed with status $rc (test-env.sh line $line)"
}
trap 'on_error $? $LINENO "$BASH_COMMAND"' ERR

now_us() { printf '%s' "${EPOCHREALTIME/./}"; }

fmt_secs() { # microseconds -> "1.4 s"
  local us=$1
  printf '%d.%d s' $((us / 1000000)) $((us % 1000000 / 100000))
}

# step "what" cmd args...: runs cmd, printing "imagegrid-test: what ... ok (1.4 s)".
step() {
  local what=$1 t0
  shift
  t0=$(now_us)
  printf '%s: %s ... ' "$PROG" "$what" >&2
  STEP_OPEN=1
  "$@"
  local took
  took=$(fmt_secs $(($(now_us) - t0)))
  if [[ -n $STEP_OPEN ]]; then
    printf 'ok (%s)\n' "$took" >&2
  else
    log "$what: ok ($took)"
  fi
  STEP_OPEN=
}

# Last lines of a log file, indented, for error messages.
log_tail() {
  if [[ -f $1 ]]; then tail -n "${2:-20}" "$1" | sed 's/^/    | /'; fi
}

# ----------------------------------------------------------------- paths ---

# Sets DIR (absolute) and refuses paths that `up`/`down` must never wipe.
set_dir() {
  DIR=$(realpath -m -- "${1:-$DEFAULT_DIR}")
  [[ $DIR =~ ^/[A-Za-z0-9._/-]+$ ]] || die "DIR must be an absolute path of [A-Za-z0-9._/-]: '$DIR'"
  case $DIR in
  / | /tmp | /var | /var/tmp | /var/lib | /root | /home | /etc | /usr | /usr/* | /work | /run | /proc* | /sys* | /dev*)
    die "refusing to use $DIR as the test directory"
    ;;
  esac
  if [[ -d $DIR && ! -e $DIR/$MARKER ]] && [[ -n $(ls -A "$DIR") ]]; then
    die "$DIR exists, is not empty and was not made by test-env.sh; refusing to wipe it"
  fi
  # Unix socket paths are limited to 107 bytes; the longest we create is
  # DIR/b/exec/containerd/containerd.sock.ttrpc.
  ((${#DIR} <= 60)) || die "DIR is too long for unix socket paths (max 60 chars): $DIR"
}

# ------------------------------------------------------------- processes ---

pid_from_file() {
  if [[ -f $1 ]]; then tr -dc 0-9 2>/dev/null <"$1" | head -c 10 || true; fi
}

# Alive = exists and is not a zombie (our daemons get reparented to pid 1,
# which may not reap them quickly).
pid_alive() {
  local pid=$1 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# A pid from a pid file counts as ours only if the process still refers to
# DIR: its command line names a path under DIR (dockerd, containerd, shims,
# sshd, registry all do), or, for a container's init (CONTAINER_ID given),
# it sits in that container's cgroup. Pid files outlive their process and
# pids get reused, so a bare pid is never trusted.
pid_is_ours() { # pid_is_ours PID DIR [CONTAINER_ID]
  local pid=$1 dir=$2 id=${3:-}
  pid_alive "$pid" || return 1
  if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/"; then
    return 0
  fi
  [[ -n $id ]] && grep -qF -- "/$id" "/proc/$pid/cgroup" 2>/dev/null
}

# wait_gone SECONDS PID...: true once none of the pids is alive.
wait_gone() {
  local secs=$1 pid deadline
  shift
  deadline=$(($(now_us) + secs * 1000000))
  while :; do
    local left=0
    for pid; do if pid_alive "$pid"; then left=1; fi; done
    ((left)) || return 0
    (($(now_us) < deadline)) || return 1
    sleep 0.1
  done
}

# stop_pids PID...: SIGTERM, then SIGKILL whatever is left after STOP_TIMEOUT.
# Callers pass only pids they checked with pid_is_ours.
stop_pids() {
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  wait_gone "$STOP_TIMEOUT" "$@" && return 0
  local pid left=()
  for pid; do if pid_alive "$pid"; then left+=("$pid"); fi; done
  warn "still running ${STOP_TIMEOUT}s after SIGTERM, sending SIGKILL: $(ps -o pid=,comm= -p "${left[*]}" | xargs)"
  kill -KILL "${left[@]}" 2>/dev/null || true
  wait_gone 5 "${left[@]}" || die "could not stop pids ${left[*]}"
}

# stop_pidfiles DIR PIDFILE...: stops the processes named by the pid files.
# Missing files and stale pids are fine. An init.pid is the init of a
# container whose engine is gone (its directory is named by the container
# id): it gets SIGKILL at once, as pid 1 of its namespace it would ignore
# SIGTERM, and its death ends every process of the container.
stop_pidfiles() {
  local dir=$1 f pid id pids=()
  shift
  for f; do
    pid=$(pid_from_file "$f")
    id=
    if [[ ${f##*/} == init.pid ]]; then id=${f%/*} id=${id##*/}; fi
    pid_is_ours "$pid" "$dir" "$id" || continue
    if [[ -n $id ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    pids+=("$pid")
  done
  stop_pids "${pids[@]}"
}

# containerd-shim-runc-v2 writes no pid file. A shim left by a killed engine
# is found by the containerd socket under DIR that its command line names.
orphan_shims() {
  local dir=$1 f pid candidates e socks=()
  for e in "${ENGINES[@]}"; do socks+=(-e "$dir/$e/exec/containerd/containerd.sock"); done
  # One grep over all command lines finds candidates; each is then checked
  # for the exact "-address SOCK" argument pair.
  mapfile -t candidates < <(grep -laF "${socks[@]}" /proc/[0-9]*/cmdline 2>/dev/null || true)
  for f in "${candidates[@]}"; do
    pid=${f#/proc/} pid=${pid%/cmdline}
    tr '\0' ' ' 2>/dev/null <"$f" | grep -qF -- "-address $dir/" || continue
    if pid_alive "$pid"; then printf '%s\n' "$pid"; fi
  done
  return 0
}

# Container bundles of a killed engine leave their cgroups (named by
# container id) and shim sockets (named in the bundle's "address" file)
# outside DIR; remove those of the bundles under DIR.
remove_bundle_leftovers() {
  local dir=$1 b id addr cg
  for b in "$dir"/*/exec/containerd/daemon/io.containerd.runtime.v2.task/*/*/; do
    [[ -d $b ]] || continue
    id=${b%/} id=${id##*/}
    for cg in /sys/fs/cgroup/*/docker/"$id" /sys/fs/cgroup/docker/"$id"; do
      if [[ -d $cg ]]; then rmdir "$cg" 2>/dev/null || true; fi
    done
    addr=$(cat "$b/address" 2>/dev/null) || continue
    if [[ $addr == unix:///run/containerd/s/* ]]; then rm -f "${addr#unix://}"; fi
  done
}

# Kill the running containers of the engines under DIR that still answer.
# dockerd would otherwise stop each one with its 10 s stop timeout on
# shutdown; a test environment being thrown away need not wait for that.
kill_containers() {
  local dir=$1 e sock ids id
  for e in "${ENGINES[@]}"; do
    sock=$dir/$e/engine.sock
    if [[ ! -S $sock ]] || ! ping_unix "$sock"; then continue; fi
    ids=$(curl_ --unix-socket "$sock" http://localhost/containers/json 2>/dev/null |
      grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4) || true
    for id in $ids; do
      curl_ -o /dev/null -X POST --unix-socket "$sock" "http://localhost/containers/$id/kill" 2>/dev/null || true
    done
  done
}

# Unmount everything still mounted under DIR (overlay2 layers, container shm,
# network namespaces) left by an engine that died without cleaning up.
unmount_under() {
  local dir=$1 m mounts
  for _ in 1 2 3; do
    mapfile -t mounts < <(findmnt -rn -o TARGET | awk -v p="$dir/" 'index($0, p) == 1' | sort -r)
    ((${#mounts[@]})) || return 0
    for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  done
  die "still mounted under $dir: ${mounts[*]}"
}

# Stop everything under DIR, unmount and remove it. Safe when nothing runs.
teardown() {
  local dir=$1 leftovers=() e pidfiles=()
  [[ -e $dir ]] || return 0
  # Engines first: a dockerd stops its containers and its own containerd.
  kill_containers "$dir"
  for e in "${ENGINES[@]}"; do pidfiles+=("$dir/$e/engine.pid"); done
  stop_pidfiles "$dir" "${pidfiles[@]}"
  stop_pidfiles "$dir" "$dir/ssh/sshd.pid" "$dir/registry/registry.pid"
  # An engine killed hard leaves its containerd, containers and shims behind
  # (its containerd and each container's init have a pid file under the
  # exec root; -xdev keeps find out of still-mounted container filesystems).
  mapfile -t leftovers < <(find "$dir" -xdev -type f -name '*.pid' 2>/dev/null)
  stop_pidfiles "$dir" "${leftovers[@]}"
  mapfile -t leftovers < <(orphan_shims "$dir")
  stop_pids "${leftovers[@]}"
  remove_bundle_leftovers "$dir"
  unmount_under "$dir"
  rm -rf --one-file-system -- "$dir"
  [[ ! -e $dir ]] || die "could not remove $dir"
}

# ----------------------------------------------------------------- ports ---

PICKED_PORTS=" "

# True if any TCP socket (v4 or v6, any state) uses local port $1.
port_in_use() {
  local hex
  hex=$(printf ':%04X' "$1")
  awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port VAR: sets VAR to a free port (not in $(...): PICKED_PORTS must
# persist). Starts at a random place so that two `up`s running at the same
# time (test.sh next to a long-lived env) rarely race for one port.
pick_port() {
  local var=$1 span=$((PORT_MAX - PORT_MIN)) start p i
  start=$((RANDOM % span))
  for ((i = 0; i < span; i++)); do
    p=$((PORT_MIN + (start + i) % span))
    [[ $PICKED_PORTS == *" $p "* ]] && continue
    port_in_use "$p" && continue
    PICKED_PORTS+="$p "
    printf -v "$var" '%s' "$p"
    return 0
  done
  die "no free TCP port in [$PORT_MIN, $PORT_MAX)"
}

# wait_until SECONDS cmd args...: polls cmd every 0.2 s.
wait_until() {
  local secs=$1 deadline
  shift
  deadline=$(($(now_us) + secs * 1000000))
  until "$@"; do
    (($(now_us) < deadline)) || return 1
    sleep 0.2
  done
}

# ------------------------------------------------------- a. packages ---

APT_LOG=$CACHE_DIR/apt.log
APT=(apt-get -q -o DPkg::Lock::Timeout=600)

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qx 'install ok installed' || printf '%s\n' "$p"
  done
}

ensure_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]})) || return 0
  mkdir -p "$CACHE_DIR"
  # policy-rc.d exit 101 keeps maintainer scripts from starting the packages'
  # own services (system dockerd, sshd on :22, registry on :5000).
  local policy=/usr/sbin/policy-rc.d added='' rc=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added=1
  fi
  { "${APT[@]}" update && "${APT[@]}" install -y "${missing[@]}"; } >>"$APT_LOG" 2>&1 || rc=$?
  if [[ -n $added ]]; then rm -f "$policy"; fi
  ((rc == 0)) || die "apt-get install ${missing[*]} failed (status $rc); end of $APT_LOG:
$(log_tail "$APT_LOG")"
}

# --------------------------------------------------------- b. binfmt ---

ensure_binfmt() {
  local m=/proc/sys/fs/binfmt_misc
  mountpoint -q "$m" || mount -t binfmt_misc binfmt_misc "$m" || die "cannot mount binfmt_misc at $m"
  # --enable warns (and may exit 1) for formats that are already enabled.
  update-binfmts --enable >/dev/null 2>&1 || true
  grep -qx enabled "$m/qemu-aarch64" 2>/dev/null ||
    die "qemu-aarch64 is not registered in $m after update-binfmts --enable (is qemu-user-static installed?)"
  # The F flag makes the kernel open the interpreter now, so it also works
  # inside containers whose root has no qemu.
  grep -q '^flags:.*F' "$m/qemu-aarch64" || die "qemu-aarch64 is registered without the F (fix binary) flag"
}

# ------------------------------------------------ c. docker 26.1 (m) ---

# Engine m runs Debian 13 (trixie)'s docker.io, unpacked with dpkg -x into
# MODERN_ROOT and kept there across runs, next to trixie's docker-buildx CLI
# plugin (docker.io's dockerd, docker-proxy; docker-init points at bookworm's
# tini-static; containerd and runc are bookworm's, see PACKAGES).
MODERN_SUITE=trixie
MODERN_ROOT=$CACHE_DIR/docker-$MODERN_SUITE
MODERN_DOCKERD=$MODERN_ROOT/usr/sbin/dockerd
MODERN_BUILDX=$MODERN_ROOT/usr/libexec/docker/cli-plugins/docker-buildx
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The URIs of the Debian archive this machine's apt already uses: "deb"
# entries of the host's own suite with component main, from one-line .list
# files and deb822 .sources files alike (the mirror is reachable; nothing else
# on the internet may be).
debian_mirrors() {
  local codename f
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
  [[ -n $codename ]] || return 0
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # deb [options] URI SUITE COMPONENT...
    sed -E 's/#.*//; s/\[[^]]*\]//' "$f" | awk -v s="$codename" '
      $1 == "deb" && $3 == s { for (i = 4; i <= NF; i++) if ($i == "main") { print $2; break } }'
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v s="$codename" '
      function has(list, word) { return (" " list " ") ~ (" " word " ") }
      function set(text) { gsub(/[ \t]+/, " ", text); sub(/^ /, "", text); sub(/ $/, "", text); v[key] = text }
      function flush(  n, i, u) {
        if (has(v["types"], "deb") && has(v["suites"], s) && has(v["components"], "main") &&
          tolower(v["enabled"]) != "no") {
          n = split(v["uris"], u, " ")
          for (i = 1; i <= n; i++) print u[i]
        }
        split("", v)
      }
      /^#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { set(v[key] " " $0); next }
      { key = tolower(substr($0, 1, index($0, ":") - 1)); set(substr($0, index($0, ":") + 1)) }
      END { flush() }' "$f"
  done
}

# The cached tree is usable: both binaries run and docker-init resolves.
modern_docker_works() {
  [[ $("$MODERN_DOCKERD" --version 2>/dev/null) == "Docker version "* ]] &&
    [[ $("$MODERN_BUILDX" version 2>/dev/null) == *buildx* ]] &&
    [[ -x $MODERN_ROOT/usr/sbin/docker-proxy && -x $MODERN_ROOT/usr/bin/docker-init ]]
}

# Downloads trixie's docker.io and docker-buildx with a private apt state
# (sources, lists and cache in a temp dir: the system's apt never sees
# trixie) from the first mirror of debian_mirrors that has them, and unpacks
# both into MODERN_ROOT.
download_modern_docker() {
  local work mirror mirrors opts rc=1 deb
  mapfile -t mirrors < <(debian_mirrors | awk '!seen[$0]++')
  ((${#mirrors[@]})) || die "no Debian mirror (a \"deb\" entry for this release with main) in" \
    "/etc/apt/sources.list or /etc/apt/sources.list.d/; cannot fetch docker.io from $MODERN_SUITE"
  work=$(mktemp -d "$CACHE_DIR/download.XXXXXX")
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/sources.list.d" "$work/debs"
  chown -R _apt "$work" 2>/dev/null || true # lets apt download without its "unsandboxed" warning
  opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/sources.list.d"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "APT::Architectures=$(dpkg --print-architecture)" -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false)
  for mirror in "${mirrors[@]}"; do
    printf 'deb [signed-by=%s] %s %s main\n' "$DEBIAN_KEYRING" "$mirror" "$MODERN_SUITE" >"$work/sources.list"
    printf '%s: fetching docker.io and docker-buildx from %s %s\n' "$PROG" "$mirror" "$MODERN_SUITE" >>"$APT_LOG"
    if {
      "${APT[@]}" "${opts[@]}" update &&
        (cd "$work/debs" && "${APT[@]}" "${opts[@]}" download docker.io docker-buildx)
    } >>"$APT_LOG" 2>&1; then
      rc=0
      break
    fi
  done
  if ((rc == 0)); then
    mkdir -p "$work/root"
    for deb in "$work"/debs/*.deb; do
      { dpkg -x "$deb" "$work/root" &&
        dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$work/root/.imagegrid-packages"; } ||
        rc=1
    done
  fi
  if ((rc == 0)); then
    # docker.io's docker-init is a relative link to a tini-static it does not ship.
    ln -sfn /usr/bin/tini-static "$work/root/usr/bin/docker-init"
    rm -rf "$MODERN_ROOT"
    mv "$work/root" "$MODERN_ROOT"
  fi
  rm -rf "$work"
  modern_docker_works || die "could not get a working docker.io and docker-buildx from" \
    "$MODERN_SUITE (mirrors tried: ${mirrors[*]}); end of $APT_LOG:
$(log_tail "$APT_LOG")"
}

ensure_modern_docker() {
  local lock_fd
  mkdir -p "$CACHE_DIR"
  # The lock keeps two concurrent `up`s from downloading and replacing the tree at once.
  exec {lock_fd}>"$CACHE_DIR/docker-$MODERN_SUITE.lock"
  flock "$lock_fd"
  if ! modern_docker_works; then download_modern_docker; fi
  exec {lock_fd}>&-
}

# ----------------------------------------------------- d. certificates ---

write_openssl_conf() {
  cat >"$1" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = imagegrid-test
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

# P-256 keys in PKCS#8: quick to make, read by Go, OpenSSL and rustls alike.
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>>"$TLS_LOG"; }

# new_ca CERT KEY CN
new_ca() {
  new_key "$2"
  openssl req -new -x509 -config "$TLS_CONF" -extensions ca_ext -key "$2" -out "$1" \
    -days 3650 -subj "/CN=$3" 2>>"$TLS_LOG"
}

# new_leaf CERT KEY CN EXT CA_CERT CA_KEY
new_leaf() {
  local csr=$1.csr
  new_key "$2"
  openssl req -new -config "$TLS_CONF" -key "$2" -out "$csr" -subj "/CN=$3" 2>>"$TLS_LOG"
  openssl x509 -req -in "$csr" -CA "$5" -CAkey "$6" -set_serial "0x$(openssl rand -hex 16)" \
    -days 3650 -extfile "$TLS_CONF" -extensions "$4" -out "$1" 2>>"$TLS_LOG"
  rm -f "$csr"
}

make_certs() {
  local t=$DIR/tls
  mkdir -p "$t"
  TLS_CONF=$t/openssl.cnf TLS_LOG=$t/openssl.log
  write_openssl_conf "$TLS_CONF"
  new_ca "$t/ca.pem" "$t/ca-key.pem" "imagegrid-test CA"
  new_leaf "$t/server-cert.pem" "$t/server-key.pem" localhost server_ext "$t/ca.pem" "$t/ca-key.pem"
  # cert.pem/key.pem/ca.pem: the names DOCKER_CERT_PATH expects.
  new_leaf "$t/cert.pem" "$t/key.pem" imagegrid-test-client client_ext "$t/ca.pem" "$t/ca-key.pem"
  # An unrelated CA and a client cert signed by it, for negative tests.
  new_ca "$t/wrong-ca.pem" "$t/wrong-ca-key.pem" "imagegrid-test unrelated CA"
  new_leaf "$t/wrong-cert.pem" "$t/wrong-key.pem" imagegrid-test-intruder client_ext \
    "$t/wrong-ca.pem" "$t/wrong-ca-key.pem"
  chmod 600 "$t"/*key.pem
  openssl verify -CAfile "$t/ca.pem" "$t/server-cert.pem" "$t/cert.pem" >/dev/null ||
    die "generated certificates do not verify against $t/ca.pem"
}

# -------------------------------------------------------- e. engines ---

curl_() { curl -sS --noproxy '*' --max-time 3 "$@"; }

ping_unix() { [[ $(curl_ --unix-socket "$1" http://localhost/_ping 2>/dev/null) == OK ]]; }

ping_tls() {
  local t=$DIR/tls
  [[ $(curl_ --cacert "$t/ca.pem" --cert "$t/cert.pem" --key "$t/key.pem" \
    "https://127.0.0.1:$1/_ping" 2>/dev/null) == OK ]]
}

# engine_ready NAME PID PING...: the ping answers; fails fast if dockerd exited.
engine_ready() {
  local name=$1 pid=$2
  shift 2
  pid_alive "$pid" || die "dockerd of engine $name exited; end of $DIR/$name/engine.log:
$(log_tail "$DIR/$name/engine.log")"
  "$@"
}

# start_engine NAME ROOT [extra dockerd args...]: runs the system's dockerd
# (ROOT empty) or ROOT/usr/sbin/dockerd, with ROOT/usr/sbin and ROOT/usr/bin
# first on its PATH for its own docker-proxy and docker-init (containerd and
# runc are the system's either way). Each engine gets its own data root, exec
# root (so its own supervised containerd, whose socket lives in
# EXEC/containerd/) and its own containerd namespace, so two engines can never
# see each other's containers even if they ended up on one containerd.
start_engine() {
  local name=$1 root=$2 d=$DIR/$1 dockerd=dockerd path=$PATH
  shift 2
  if [[ -n $root ]]; then dockerd=$root/usr/sbin/dockerd path=$root/usr/sbin:$root/usr/bin:$PATH; fi
  mkdir -p "$d/data" "$d/exec"
  printf '{}\n' >"$d/daemon.json" # never pick up /etc/docker/daemon.json
  PATH=$path setsid "$dockerd" \
    --config-file "$d/daemon.json" \
    --host "unix://$d/engine.sock" \
    --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/engine.pid" \
    --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
    --containerd-namespace "imagegrid-$name" --containerd-plugins-namespace "imagegrid-$name-plugins" \
    --label "imagegrid.test.engine=$name" \
    "$@" </dev/null >"$d/engine.log" 2>&1 &
  ENGINE_PID=$!
}

check_own_containerd() {
  local name=$1 sock=$DIR/$1/exec/containerd/containerd.sock
  if [[ ! -S $sock ]]; then
    warn "engine $name did not start its own containerd ($sock missing); it probably uses" \
      "the system one at /run/containerd (namespace imagegrid-$name keeps it apart)"
  fi
}

# wait_unix_engine NAME PID: the engine answers on DIR/NAME/engine.sock.
wait_unix_engine() {
  local name=$1
  wait_until "$READY_TIMEOUT" engine_ready "$name" "$2" ping_unix "$DIR/$name/engine.sock" ||
    die "engine $name did not answer /_ping within ${READY_TIMEOUT}s; end of $DIR/$name/engine.log:
$(log_tail "$DIR/$name/engine.log")"
  check_own_containerd "$name"
}

start_engine_a() {
  start_engine a ""
  wait_unix_engine a "$ENGINE_PID"
}

# Engine m: trixie's dockerd from the cache (see ensure_modern_docker), on a
# unix socket only. It is launched before engines a and b and waited for after
# them: it takes about a second longer to answer (most of it waiting to
# connect to its containerd), which they use.
launch_engine_m() {
  start_engine m "$MODERN_ROOT"
  ENGINE_M_PID=$ENGINE_PID
}
start_engine_m() { wait_unix_engine m "$ENGINE_M_PID"; }

start_engine_b() {
  local t=$DIR/tls
  pick_port TLS_PORT
  start_engine b "" --host "tcp://127.0.0.1:$TLS_PORT" --tlsverify \
    --tlscacert "$t/ca.pem" --tlscert "$t/server-cert.pem" --tlskey "$t/server-key.pem"
  wait_until "$READY_TIMEOUT" engine_ready b "$ENGINE_PID" ping_tls "$TLS_PORT" ||
    die "engine b did not answer https://127.0.0.1:$TLS_PORT/_ping within ${READY_TIMEOUT}s; end of $DIR/b/engine.log:
$(log_tail "$DIR/b/engine.log")"
  ping_unix "$DIR/b/engine.sock" || die "engine b does not answer on its unix socket"
  check_own_containerd b
}

# docker CLI against engine a / b / m, with a private CLI config directory.
docker_a() { DOCKER_CONFIG=$DIR/docker-config docker -H "unix://$DIR/a/engine.sock" "$@"; }
docker_m() { DOCKER_CONFIG=$DIR/docker-config docker -H "unix://$DIR/m/engine.sock" "$@"; }
docker_b() {
  local t=$DIR/tls
  DOCKER_CONFIG=$DIR/docker-config docker -H "tcp://127.0.0.1:$TLS_PORT" --tlsverify \
    --tlscacert "$t/ca.pem" --tlscert "$t/cert.pem" --tlskey "$t/key.pem" "$@"
}

# ----------------------------------------------------- f. fixtures ---

BUSYBOX_AMD64=/bin/busybox # from busybox-static
BUSYBOX_ARM64=$CACHE_DIR/busybox-arm64

# elf_machine FILE: the ELF e_machine field as hex ("3e00" x86-64, "b700" aarch64).
elf_machine() { od -An -tx1 -j18 -N2 "$1" | tr -d ' \n'; }

# Downloads busybox-static:arm64 from Debian once and keeps the binary in
# CACHE_DIR. The arm64 dpkg architecture is only added for the download.
download_busybox_arm64() {
  local work added='' rc=0
  work=$(mktemp -d "$CACHE_DIR/download.XXXXXX")
  chown _apt "$work" 2>/dev/null || true # lets apt download without its "unsandboxed" warning
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    added=1
  fi
  {
    "${APT[@]}" update &&
      (cd "$work" && apt-get -q download busybox-static:arm64) &&
      dpkg -x "$work"/busybox-static_*_arm64.deb "$work/root"
  } >>"$APT_LOG" 2>&1 || rc=$?
  if [[ -n $added ]]; then dpkg --remove-architecture arm64 || rc=1; fi
  if ((rc == 0)) && [[ $(elf_machine "$work/root/bin/busybox") == b700 ]]; then
    install -m 755 "$work/root/bin/busybox" "$BUSYBOX_ARM64.tmp"
    mv -f "$BUSYBOX_ARM64.tmp" "$BUSYBOX_ARM64"
  fi
  rm -rf "$work"
  [[ -x $BUSYBOX_ARM64 ]] || die "could not get busybox-static:arm64 (status $rc); end of $APT_LOG:
$(log_tail "$APT_LOG")"
}

ensure_busyboxes() {
  [[ $(dpkg --print-architecture) == amd64 ]] || die "this harness expects an amd64 host"
  [[ -x $BUSYBOX_AMD64 && $(elf_machine "$BUSYBOX_AMD64") == 3e00 ]] ||
    die "$BUSYBOX_AMD64 is not an x86-64 busybox (is busybox-static installed?)"
  mkdir -p "$CACHE_DIR"
  # The lock keeps two concurrent `up`s from both editing dpkg's architectures.
  exec {lock_fd}>"$CACHE_DIR/busybox.lock"
  flock "$lock_fd"
  if [[ ! -x $BUSYBOX_ARM64 || $(elf_machine "$BUSYBOX_ARM64") != b700 ]]; then
    download_busybox_arm64
  fi
  exec {lock_fd}>&-
}

# build_fixture ARCH BUSYBOX: FROM scratch + busybox, on engine a.
build_fixture() {
  local arch=$1 ctx=$DIR/fixture/$1
  mkdir -p "$ctx"
  cp "$2" "$ctx/busybox"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
EOF
  docker_a build -q --platform "linux/$arch" --network none -t "$FIXTURE_REPO:$arch" "$ctx" \
    >>"$DIR/fixture/build.log" 2>&1 ||
    die "building $FIXTURE_REPO:$arch failed; end of $DIR/fixture/build.log:
$(log_tail "$DIR/fixture/build.log")"
}

# check_fixture ENGINE_FN ARCH UNAME: image metadata and a real run (arm64 runs under qemu).
check_fixture() {
  local dk=$1 arch=$2 want=$3 got
  got=$("$dk" image inspect -f '{{.Os}}/{{.Architecture}}' "$FIXTURE_REPO:$arch")
  [[ $got == "linux/$arch" ]] || die "$FIXTURE_REPO:$arch on ${dk#docker_} is $got, expected linux/$arch"
  got=$("$dk" run --rm --network none "$FIXTURE_REPO:$arch" uname -m 2>>"$DIR/fixture/build.log") ||
    die "running $FIXTURE_REPO:$arch on engine ${dk#docker_} failed; see $DIR/fixture/build.log"
  [[ $got == "$want" ]] || die "$FIXTURE_REPO:$arch on engine ${dk#docker_}: uname -m printed '$got', expected $want"
}

make_fixtures() {
  ensure_busyboxes
  build_fixture amd64 "$BUSYBOX_AMD64"
  build_fixture arm64 "$BUSYBOX_ARM64"
  docker_a tag "$FIXTURE_REPO:amd64" "$FIXTURE_REPO:latest" # the host's own arch
  load_fixtures docker_b docker_m
  check_fixtures docker_a docker_b docker_m
}

# check_fixtures ENGINE_FN...: check_fixture of both arches on each engine, the
# engines side by side (a check mostly waits on its engine: this saves about a
# second per engine). A failed check's messages go to a file, reported below.
check_fixtures() {
  local dk pid err failed=''
  local -A checks=()
  for dk; do
    (
      STEP_OPEN=
      check_fixture "$dk" amd64 x86_64
      check_fixture "$dk" arm64 aarch64
    ) 2>"$DIR/fixture/check-${dk#docker_}.err" &
    checks[$dk]=$!
  done
  for dk in "${!checks[@]}"; do
    pid=${checks[$dk]} err=$DIR/fixture/check-${dk#docker_}.err
    if ! wait "$pid"; then failed+=$'\n'$(sed 's/^/    | /' "$err"); fi
    rm -f "$err"
  done
  [[ -z $failed ]] || die "fixture images do not work on every engine:$failed"
}

# load_fixtures ENGINE_FN...: the fixture images built on engine a, loaded into
# the other engines. Same image IDs everywhere: copy instead of building again.
load_fixtures() {
  local tar=$DIR/fixture/images.tar dk
  docker_a save -o "$tar" "$FIXTURE_REPO:amd64" "$FIXTURE_REPO:arm64" "$FIXTURE_REPO:latest"
  for dk; do
    "$dk" load -q -i "$tar" >>"$DIR/fixture/build.log" 2>&1 ||
      die "loading the fixture images into engine ${dk#docker_} failed; end of $DIR/fixture/build.log:
$(log_tail "$DIR/fixture/build.log")"
  done
  rm -f "$tar"
}

# ----------------------------------------------------------- g. sshd ---

ssh_opts() { # the client options a test needs to reach our sshd
  local s=$DIR/ssh
  printf '%s\n' -F /dev/null -i "$s/id_ed25519" -o IdentitiesOnly=yes \
    -o UserKnownHostsFile="$s/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5 -p "$SSH_PORT"
}

ssh_works() {
  local opts
  mapfile -t opts < <(ssh_opts)
  ssh "${opts[@]}" root@127.0.0.1 true </dev/null >/dev/null 2>>"$DIR/ssh/client.log"
}

write_sshd_config() {
  local s=$DIR/ssh use_pam=no
  # Without PAM sshd refuses accounts whose password is locked ("!..."),
  # even for key logins; with PAM it does not look at that.
  if [[ $(getent shadow root | cut -d: -f2) == '!'* ]]; then use_pam=yes; fi
  cat >"$s/sshd_config" <<EOF
# Private sshd for imagegrid's ssh-transport tests (scripts/test-env.sh).
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $s/ssh_host_ed25519_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM $use_pam
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
# A remote "docker" (ssh://) talks to engine a.
SetEnv DOCKER_HOST=unix://$DIR/a/engine.sock
EOF
}

start_sshd() {
  local s=$DIR/ssh
  mkdir -p "$s" /run/sshd # /run/sshd: privilege separation dir sshd insists on
  ssh-keygen -q -t ed25519 -N '' -C imagegrid-test-host -f "$s/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C imagegrid-test-client -f "$s/id_ed25519"
  cp "$s/id_ed25519.pub" "$s/authorized_keys"
  pick_port SSH_PORT
  write_sshd_config
  /usr/sbin/sshd -t -f "$s/sshd_config" || die "sshd rejects $s/sshd_config"
  local hostkey
  hostkey=$(cut -d' ' -f1,2 "$s/ssh_host_ed25519_key.pub")
  printf '[127.0.0.1]:%s %s\n[localhost]:%s %s\n' "$SSH_PORT" "$hostkey" "$SSH_PORT" "$hostkey" >"$s/known_hosts"
  # sshd daemonizes itself and writes PidFile.
  /usr/sbin/sshd -f "$s/sshd_config" -E "$s/sshd.log" </dev/null >/dev/null 2>&1 ||
    die "sshd failed to start; end of $s/sshd.log:
$(log_tail "$s/sshd.log")"
  wait_until 10 ssh_works || die "ssh root@127.0.0.1 -p $SSH_PORT does not work; end of $s/client.log:
$(log_tail "$s/client.log")
  end of $s/sshd.log:
$(log_tail "$s/sshd.log")"
}

# ------------------------------------------------------- h. registry ---

registry_ready() { curl_ -f -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null; }

start_registry() {
  local r=$DIR/registry pid
  mkdir -p "$r/data"
  pick_port REGISTRY_PORT
  cat >"$r/config.yml" <<EOF
# Private registry for imagegrid's tests (scripts/test-env.sh).
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $r/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
  setsid /usr/bin/docker-registry serve "$r/config.yml" </dev/null >"$r/registry.log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$r/registry.pid"
  wait_until "$READY_TIMEOUT" registry_alive_and_ready "$pid" ||
    die "registry did not answer http://127.0.0.1:$REGISTRY_PORT/v2/; end of $r/registry.log:
$(log_tail "$r/registry.log")"
  # Debian's docker-registry service listens on :5000 when started; it must
  # not have been (policy-rc.d during our install prevents it).
  if port_in_use 5000; then warn "something listens on port 5000 (not ours; Debian's docker-registry service?)"; fi
}

registry_alive_and_ready() {
  pid_alive "$1" || die "registry exited; end of $DIR/registry/registry.log:
$(log_tail "$DIR/registry/registry.log")"
  registry_ready
}

# -------------------------------------------------------- i. env file ---

kv() { printf 'export %s=%q\n' "$1" "$2"; }

write_env() {
  local t=$DIR/tls s=$DIR/ssh
  {
    printf '# imagegrid real-engine test environment; written by scripts/test-env.sh up\n'
    kv IMAGEGRID_TEST_DIR "$DIR"
    kv IMAGEGRID_TEST_UNIX_HOST "unix://$DIR/a/engine.sock"
    kv IMAGEGRID_TEST_TLS_HOST "tcp://127.0.0.1:$TLS_PORT"
    kv IMAGEGRID_TEST_TLS_UNIX_HOST "unix://$DIR/b/engine.sock"
    kv IMAGEGRID_TEST_MODERN_HOST "unix://$DIR/m/engine.sock"
    kv IMAGEGRID_TEST_MODERN_DOCKERD "$MODERN_DOCKERD"
    kv IMAGEGRID_TEST_BUILDX "$MODERN_BUILDX"
    kv IMAGEGRID_TEST_TLS_DIR "$t"
    kv IMAGEGRID_TEST_TLS_CA "$t/ca.pem"
    kv IMAGEGRID_TEST_TLS_CERT "$t/cert.pem"
    kv IMAGEGRID_TEST_TLS_KEY "$t/key.pem"
    kv IMAGEGRID_TEST_WRONG_CA "$t/wrong-ca.pem"
    kv IMAGEGRID_TEST_WRONG_CERT "$t/wrong-cert.pem"
    kv IMAGEGRID_TEST_WRONG_KEY "$t/wrong-key.pem"
    kv IMAGEGRID_TEST_FIXTURE_IMAGE "$FIXTURE_REPO"
    kv IMAGEGRID_TEST_SSH_HOST 127.0.0.1
    kv IMAGEGRID_TEST_SSH_USER root
    kv IMAGEGRID_TEST_SSH_PORT "$SSH_PORT"
    kv IMAGEGRID_TEST_SSH_KEY "$s/id_ed25519"
    kv IMAGEGRID_TEST_SSH_KNOWN_HOSTS "$s/known_hosts"
    kv IMAGEGRID_TEST_SSH_REMOTE_SOCK "$DIR/a/engine.sock"
    kv IMAGEGRID_TEST_REGISTRY "127.0.0.1:$REGISTRY_PORT"
    kv IMAGEGRID_TEST_DOCKERD "$(command -v dockerd)"
    kv IMAGEGRID_TEST_BUSYBOX_AMD64 "$BUSYBOX_AMD64"
    kv IMAGEGRID_TEST_BUSYBOX_ARM64 "$BUSYBOX_ARM64"
  } >"$DIR/env.tmp"
  mv -f "$DIR/env.tmp" "$DIR/env"
}

# ------------------------------------------------------------ commands ---

need_root() { [[ $(id -u) == 0 ]] || die "must run as root (private dockerd engines, mounts, apt-get)"; }

cmd_up() {
  local t0
  t0=$(now_us)
  step "checking packages" ensure_packages
  step "checking docker $MODERN_SUITE (engine m)" ensure_modern_docker
  step "enabling binfmt (qemu-aarch64)" ensure_binfmt
  step "cleaning $DIR" teardown "$DIR"
  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
  step "making certificates" make_certs
  launch_engine_m
  step "starting engine a" start_engine_a
  step "starting engine b (tcp+tls)" start_engine_b
  step "starting engine m (docker $MODERN_SUITE)" start_engine_m
  step "building fixture images" make_fixtures
  step "starting sshd" start_sshd
  step "starting registry" start_registry
  write_env
  log "up in $(fmt_secs $(($(now_us) - t0))): engines a (unix), b (tls :$TLS_PORT), m (unix)," \
    "sshd :$SSH_PORT, registry :$REGISTRY_PORT"
  printf '%s\n' "$DIR/env"
}

cmd_down() {
  step "stopping $DIR" teardown "$DIR"
}

# Up = env file present and all three engines, sshd and registry answer.
cmd_env() {
  [[ -f $DIR/env ]] || exit 1
  (
    trap - ERR
    # shellcheck disable=SC1091
    . "$DIR/env"
    ping_unix "${IMAGEGRID_TEST_UNIX_HOST#unix://}" &&
      ping_tls "${IMAGEGRID_TEST_TLS_HOST##*:}" &&
      ping_unix "${IMAGEGRID_TEST_MODERN_HOST#unix://}" &&
      pid_is_ours "$(pid_from_file "$DIR/ssh/sshd.pid")" "$DIR" &&
      curl_ -f -o /dev/null "http://$IMAGEGRID_TEST_REGISTRY/v2/" 2>/dev/null
  ) || exit 1
  printf '%s\n' "$DIR/env"
}

usage() {
  printf 'usage: %s up|down|env [DIR]   (DIR defaults to %s)\n' "$0" "$DEFAULT_DIR" >&2
  exit 2
}

main() {
  (($# >= 1 && $# <= 2)) || usage
  local cmd=$1
  need_root
  set_dir "${2:-}"
  case $cmd in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  *) usage ;;
  esac
}

main "$@"
