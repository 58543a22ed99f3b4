#!/usr/bin/env bash
# `docker compose` for this project, making sure the engine answers first (it may have died with the last
# session). `compose.sh up` runs in the foreground: open http://localhost:8000, Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! docker info >/dev/null 2>&1; then
    scripts/docker/ensure-engine.sh
fi
mkdir -p data
exec docker compose "$@"
