#!/usr/bin/env bash
# Make this machine able to build and run our images:
#   - docker.io (engine 20.10 from Debian bookworm) and debootstrap
#   - Compose v2 and buildx as docker CLI plugins (Debian trixie's
#     docker-compose and docker-buildx .debs, which depend only on libc;
#     trixie is used through a private apt dir and is never added to the
#     system's sources)
#   - a running dockerd (started in the background if `docker info` does not
#     answer; stale pid files / containerd sockets of killed daemons are
#     cleaned up first)
# Idempotent: every step is skipped when already done.
#
# Env overrides:
#   OBM_DOCKERD_LOG          dockerd log file   (default /var/log/obm-dockerd.log)
#   OBM_DOCKERD_WAIT         seconds to wait for the daemon (default 60)
#   OBM_DEBIAN_MIRROR        Debian mirror URL  (default: this machine's apt sources' Debian archive)
#   OBM_COMPOSE_SUITE        suite to take docker-compose v2 / buildx from (default trixie)
#   OBM_SKIP_BUILDX=1        do not install the buildx plugin
set -euo pipefail

NAME="ensure-engine"
log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=debian-mirror.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh"

DOCKERD_LOG="${OBM_DOCKERD_LOG:-/var/log/obm-dockerd.log}"
DOCKERD_WAIT="${OBM_DOCKERD_WAIT:-60}"
COMPOSE_SUITE="${OBM_COMPOSE_SUITE:-trixie}"
PIDFILE=/var/run/docker.pid

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "must run as root (or have sudo)"
    SUDO="sudo"
fi

CLEANUP=()
cleanup() {
    local c
    for c in "${CLEANUP[@]+"${CLEANUP[@]}"}"; do eval "$c" || true; done
}
trap cleanup EXIT

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# ---------------------------------------------------------------- 1. packages
ensure_packages() {
    local missing=() p
    for p in docker.io debootstrap; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "packages present: docker.io debootstrap"
        return
    fi
    log "installing: ${missing[*]}"
    # Keep the package scripts from starting the daemon themselves (we start
    # it below, with our own log file); only if no policy-rc.d exists yet.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        CLEANUP+=("$SUDO rm -f /usr/sbin/policy-rc.d")
    fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    log "installed: ${missing[*]}"
}

# ---------------------------------------------------------------- 2. compose v2
compose_v2_ok() {
    local v
    v="$(docker compose version --short 2>/dev/null || true)"
    case "$v" in v2.*|2.*|v3.*|3.*) return 0 ;; *) return 1 ;; esac
}

buildx_ok() { docker buildx version >/dev/null 2>&1; }

# Compose v2 and buildx CLI plugins from $COMPOSE_SUITE (both depend only on
# libc). buildx makes `docker build` use the daemon's BuildKit (else the docker
# 28 CLI falls back to the deprecated classic builder, and DOCKER_BUILDKIT=1
# fails with "buildx component is missing").
ensure_cli_plugins() {
    local want=()
    if compose_v2_ok; then
        log "compose present: $(docker compose version 2>/dev/null)"
    else
        want+=(docker-compose)
    fi
    if [ "${OBM_SKIP_BUILDX:-0}" = 1 ]; then
        log "buildx: skipped (OBM_SKIP_BUILDX=1)"
    elif buildx_ok; then
        log "buildx present: $(docker buildx version 2>/dev/null)"
    else
        want+=(docker-buildx)
    fi
    [ "${#want[@]}" -gt 0 ] || return 0

    local mirror arch tmp aptopts
    mirror="$(debian_mirror)" || die "no Debian mirror to fetch ${want[*]} from"
    arch="$(dpkg --print-architecture)"
    tmp="$(mktemp -d /var/tmp/obm-plugins-apt.XXXXXX)"
    CLEANUP+=("rm -rf '$tmp'")
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/sources.list.d" "$tmp/preferences.d" "$tmp/debs"
    echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $COMPOSE_SUITE main" \
        > "$tmp/sources.list"
    aptopts=(
        -o "Dir::Etc::SourceList=$tmp/sources.list"
        -o "Dir::Etc::SourceParts=$tmp/sources.list.d"
        -o "Dir::Etc::Preferences=$tmp/preferences"
        -o "Dir::Etc::PreferencesParts=$tmp/preferences.d"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache=$tmp/cache"
        -o "APT::Sandbox::User=root"
    )
    log "fetching ${want[*]} from $mirror $COMPOSE_SUITE (private apt dir $tmp)"
    $SUDO apt-get "${aptopts[@]}" update -qq
    (cd "$tmp/debs" && $SUDO apt-get "${aptopts[@]}" download -qq "${want[@]}")
    local debs=("$tmp"/debs/*.deb)
    [ -e "${debs[0]}" ] || die "nothing downloaded for ${want[*]}"
    log "installing $(cd "$tmp/debs" && echo *.deb)"
    $SUDO dpkg -i "${debs[@]}" >/dev/null
    compose_v2_ok || die "docker compose is not v2 after install"
    if [ "${OBM_SKIP_BUILDX:-0}" != 1 ]; then
        buildx_ok || die "docker buildx not working after install"
        log "buildx installed: $(docker buildx version)"
    fi
    log "compose installed: $(docker compose version)"
}

# ---------------------------------------------------------------- 3. daemon
docker_answers() { timeout 15 docker info >/dev/null 2>&1; }

# Live (not zombie) process with the given comm name?
pid_is() {
    local pid="$1" name="$2" state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ] || return 1
    # field 3 of /proc/PID/stat is the state; Z/X = dead but not yet reaped
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
    case "$state" in Z|X|x|"") return 1 ;; esac
    return 0
}

# Wait until `docker info` answers. Returns 1 on timeout, 2 if pid died.
wait_for_daemon() {
    local pid="${1:-}" i
    for ((i = 0; i < DOCKERD_WAIT; i++)); do
        docker_answers && return 0
        if [ -n "$pid" ] && ! pid_is "$pid" dockerd; then
            return 2
        fi
        sleep 1
    done
    return 1
}

ensure_daemon() {
    if docker_answers; then
        log "dockerd answers"
        return
    fi
    local pid="" rc=0
    if [ -f "$PIDFILE" ]; then
        pid="$(tr -dc '0-9' < "$PIDFILE" || true)"
        if pid_is "$pid" dockerd; then
            log "dockerd pid $pid is alive but not answering yet; waiting up to ${DOCKERD_WAIT}s"
            wait_for_daemon "$pid" || rc=$?
            case "$rc" in
                0) log "dockerd answers"; return ;;
                1) die "dockerd pid $pid does not answer; see $DOCKERD_LOG" ;;
                *) log "dockerd pid $pid exited while waiting" ;;
            esac
        fi
        if [ -f "$PIDFILE" ]; then
            log "removing stale $PIDFILE (pid '${pid}' is not a live dockerd)"
            $SUDO rm -f "$PIDFILE"
        fi
    fi
    # dockerd's own (managed) containerd: a pid file whose pid is not a live
    # containerd (e.g. reused after a restart) would make dockerd wait on it.
    local cpidf=/var/run/docker/containerd/containerd.pid cpid
    if [ -f "$cpidf" ]; then
        cpid="$(tr -dc '0-9' < "$cpidf" || true)"
        if ! pid_is "$cpid" containerd; then
            log "removing stale $cpidf (pid '${cpid}' is not a live containerd)"
            $SUDO rm -f "$cpidf"
        fi
    fi
    # A system containerd socket left by a killed containerd would make dockerd
    # try (and fail) to use it instead of starting its own containerd.
    local csock=/run/containerd/containerd.sock
    if [ -S "$csock" ] && ! timeout 5 ctr --address "$csock" version >/dev/null 2>&1; then
        log "removing stale $csock"
        $SUDO rm -f "$csock"
    fi
    log "starting dockerd (log: $DOCKERD_LOG)"
    $SUDO mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: detach from this shell's process group / session so the daemon
    # outlives the script.
    # shellcheck disable=SC2016  # $1 is expanded by the inner sh
    $SUDO sh -c 'exec setsid -f dockerd >>"$1" 2>&1 </dev/null' sh "$DOCKERD_LOG"
    local i
    for ((i = 0; i < 10; i++)); do
        [ -s "$PIDFILE" ] && break
        sleep 0.5
    done
    pid="$(tr -dc '0-9' < "$PIDFILE" 2>/dev/null || true)"
    rc=0
    wait_for_daemon "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "last lines of $DOCKERD_LOG:"
        tail -n 30 "$DOCKERD_LOG" >&2 || true
        [ "$rc" -eq 2 ] && die "dockerd (pid $pid) exited during start-up"
        die "dockerd did not answer within ${DOCKERD_WAIT}s"
    fi
    log "dockerd started (pid ${pid:-?})"
}

ensure_packages
ensure_cli_plugins
ensure_daemon

log "server: $(docker info --format '{{.ServerVersion}} storage={{.Driver}} cgroup={{.CgroupDriver}}/{{.CgroupVersion}}')"
log "$(docker compose version)"
buildx_ok && log "buildx $(docker buildx version | awk '{print $2}') (docker build uses BuildKit)"
log "ok"
