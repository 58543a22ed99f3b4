#!/usr/bin/env bash
# Build the local Python base image (no registry needed):
#   debootstrap --variant=minbase bookworm  ->  tar | docker import
# Result: obm-python-base:bookworm with python3 (3.11), python3-venv,
# ca-certificates and passwd (useradd). Skipped if the image already exists.
#
# Usage: build-base-image.sh [--force]
# Env overrides:
#   OBM_BASE_IMAGE       image name   (default obm-python-base:bookworm)
#   OBM_BASE_SUITE       Debian suite (default bookworm)
#   OBM_BASE_PACKAGES    extra comma-separated packages to include
#   OBM_DEBIAN_MIRROR    mirror URL   (default: this machine's apt sources' Debian archive)
set -euo pipefail

NAME="build-base-image"
log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=debian-mirror.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh"

IMAGE="${OBM_BASE_IMAGE:-obm-python-base:bookworm}"
SUITE="${OBM_BASE_SUITE:-bookworm}"
INCLUDE="python3,python3-venv,ca-certificates,passwd${OBM_BASE_PACKAGES:+,$OBM_BASE_PACKAGES}"
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing: run scripts/docker/ensure-engine.sh first"
timeout 15 docker info >/dev/null 2>&1 || die "docker daemon not answering: run scripts/docker/ensure-engine.sh first"

if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE present ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19)); skipping"
    exit 0
fi

MIRROR="$(debian_mirror)" || die "no Debian mirror to debootstrap from"
ROOTFS="$(mktemp -d /var/tmp/obm-base-rootfs.XXXXXX)"
cleanup() { rm -rf --one-file-system "$ROOTFS" "$ROOTFS.log"; }
trap cleanup EXIT

log "debootstrap --variant=minbase $SUITE from $MIRROR into $ROOTFS (include: $INCLUDE)"
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$ROOTFS.log" 2>&1; then
    tail -n 30 "$ROOTFS.log" >&2
    rm -f "$ROOTFS.log"
    die "debootstrap failed"
fi
rm -f "$ROOTFS.log"

# Slim down: package caches and lists are not needed at run time.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/* 2>/dev/null || true
chroot "$ROOTFS" python3 --version >/dev/null 2>&1 || die "python3 missing in rootfs"

PYVER="$(chroot "$ROOTFS" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
log "importing rootfs as $IMAGE (python $PYVER)"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.opencontainers.image.title=obm-python-base org.opencontainers.image.version=$SUITE-python$PYVER" \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null

docker run --rm "$IMAGE" python3 -c 'import ssl, venv, sys; print(sys.version.split()[0])' >/dev/null \
    || die "smoke test of $IMAGE failed"
log "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
