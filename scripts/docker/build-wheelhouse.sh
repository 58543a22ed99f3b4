#!/usr/bin/env bash
# Build a wheelhouse on the host so images can `pip install --no-index
# --find-links /wheels ...` with no network inside the container.
#
# Usage: build-wheelhouse.sh [pip-wheel requirement args...]
#   e.g. build-wheelhouse.sh ./shared ./services/sender 'uvicorn[standard]' -r requirements.txt
#
# Produces, in the wheelhouse dir (default <repo>/wheelhouse):
#   - wheels of the given local package dirs,
#   - wheels of all their (transitive) dependencies and of the other requirements,
#   - wheels of the local packages' build-system requirements (setuptools,
#     wheel, hatchling, ...), needed when the image pip-installs a *source* dir
#     with build isolation and --no-index.
# Quick when already done: first tries a fully offline resolve against the
# wheelhouse; goes to the index only if something is missing.
#
# Wheels are built with the host's Python, which must be the image's minor
# version (3.11: Debian bookworm's python3, python:3.11-slim).
#
# Env overrides:
#   OBM_WHEELHOUSE       output dir (default <repo>/wheelhouse)
#   OBM_WHEEL_PYTHON     python to build with (default: python3 if 3.11, else python3.11)
#   OBM_PY_MINOR         required python minor version (default 3.11)
set -euo pipefail

NAME="build-wheelhouse"
log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
WHEELHOUSE="${OBM_WHEELHOUSE:-$REPO_ROOT/wheelhouse}"
PY_MINOR="${OBM_PY_MINOR:-3.11}"

[ "$#" -gt 0 ] || die "usage: $0 <local-pkg-dir|requirement|-r file>..."

py_minor_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }
PY="${OBM_WHEEL_PYTHON:-}"
if [ -z "$PY" ]; then
    for cand in python3 "python$PY_MINOR"; do
        if command -v "$cand" >/dev/null 2>&1 && [ "$(py_minor_of "$cand")" = "$PY_MINOR" ]; then
            PY="$cand"; break
        fi
    done
fi
[ -n "$PY" ] || die "no Python $PY_MINOR on the host (set OBM_WHEEL_PYTHON); wheels must match the image's python"
[ "$(py_minor_of "$PY")" = "$PY_MINOR" ] || die "$PY is not Python $PY_MINOR"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip"

mkdir -p "$WHEELHOUSE"

# Build-system requirements of the local package dirs among the arguments.
BUILD_REQS=()
while IFS= read -r req; do
    [ -n "$req" ] && BUILD_REQS+=("$req")
done < <("$PY" - "$@" <<'PYEOF'
import os, sys, tomllib
reqs = {"wheel"}                    # older setuptools asks for it at build time
skip_next = False
for a in sys.argv[1:]:
    if skip_next:
        skip_next = False
        continue
    if a in ("-r", "-c", "--requirement", "--constraint", "-e", "--editable"):
        skip_next = True
        continue
    if a.startswith("-") or not os.path.isdir(a):
        continue
    pp = os.path.join(a, "pyproject.toml")
    if os.path.isfile(pp):
        with open(pp, "rb") as f:
            bs = tomllib.load(f).get("build-system", {})
        reqs.update(bs.get("requires", ["setuptools>=40.8.0"]))
    else:
        reqs.add("setuptools>=40.8.0")
for r in sorted(reqs):
    print(r)
PYEOF
)

# setuptools builds in-tree and reuses <pkg>/build/lib: a module deleted from
# the source would still end up in the wheel. Drop those build outputs first.
skip_next=0
for a in "$@"; do
    if [ "$skip_next" -eq 1 ]; then skip_next=0; continue; fi
    case "$a" in -r|-c|--requirement|--constraint|-e|--editable) skip_next=1; continue ;; -*) continue ;; esac
    if [ -d "$a" ] && [ -d "$a/build" ]; then
        rm -rf "$a"/build/lib "$a"/build/lib.* "$a"/build/bdist.*
    fi
done

PIP_COMMON=(--disable-pip-version-check --no-input --wheel-dir "$WHEELHOUSE" --find-links "$WHEELHOUSE" --prefer-binary)

log "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'); wheelhouse: $WHEELHOUSE"
log "requirements: $* (+ build requirements: ${BUILD_REQS[*]})"

OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT

# Fast path: everything already there? (offline; rebuilds only the local pkgs)
if "$PY" -m pip wheel "${PIP_COMMON[@]}" --no-index "$@" "${BUILD_REQS[@]}" >"$OUT" 2>&1; then
    log "wheelhouse complete (offline resolve ok); local packages rebuilt"
else
    log "wheelhouse incomplete; fetching/building from the index"
    if ! "$PY" -m pip wheel "${PIP_COMMON[@]}" "$@" "${BUILD_REQS[@]}" >"$OUT" 2>&1; then
        tail -n 40 "$OUT" >&2
        die "pip wheel failed"
    fi
    # Prove the result resolves with no index, as it will inside the image.
    if ! "$PY" -m pip wheel "${PIP_COMMON[@]}" --no-index "$@" "${BUILD_REQS[@]}" >"$OUT" 2>&1; then
        tail -n 40 "$OUT" >&2
        die "wheelhouse does not resolve offline"
    fi
fi

NONPORTABLE=()
for w in "$WHEELHOUSE"/*-linux_*.whl; do
    [ -e "$w" ] && NONPORTABLE+=("$(basename "$w")")
done
if [ "${#NONPORTABLE[@]}" -gt 0 ]; then
    log "note: built from sdist on this host (fine for bookworm-based images with the same arch):"
    printf '    %s\n' "${NONPORTABLE[@]}" >&2
fi
log "ok: $(find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
