#!/usr/bin/env bash
# Build the three service images and the scale profile's NATS server with `docker compose build`.
# On a normal machine (Docker running, registry reachable) this is a plain build on python:3.11-slim.
# On a machine without a registry (CI here), it installs and starts the engine, builds local Python base and
# build images with debootstrap (the build image adds a C compiler, for the receiver's compiled hot path) and a
# wheelhouse on the host, and builds offline from those.
#   OBM_BUILD_MODE=online|offline   force a mode (default: offline when python:3.11-slim cannot be had)
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { printf '[build-images] %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; then
    log "no Docker engine or Compose v2 answering: installing/starting them"
    scripts/docker/ensure-engine.sh
fi

mode="${OBM_BUILD_MODE:-}"
if [ -z "$mode" ]; then
    if docker image inspect python:3.11-slim >/dev/null 2>&1 || timeout 60 docker pull -q python:3.11-slim >/dev/null 2>&1; then
        mode=online
    else
        mode=offline
    fi
fi
log "build mode: $mode"

if [ "$mode" = offline ]; then
    scripts/docker/build-base-image.sh
    OBM_BASE_IMAGE=obm-python-build:bookworm OBM_BASE_PACKAGES=gcc,libc6-dev,python3-dev \
        scripts/docker/build-base-image.sh
    scripts/docker/build-wheelhouse.sh ./shared ./services/demo_market ./services/sender ./services/receiver ./services/orchestrator \
        -r ./services/nats/requirements.txt
    export BASE_IMAGE=obm-python-base:bookworm BUILD_IMAGE=obm-python-build:bookworm
    export PIP_INSTALL_ARGS="--no-index --find-links /wheels"
fi
docker compose --profile scale build
log "images built: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^orderbook-' | sort | tr '\n' ' ')"
