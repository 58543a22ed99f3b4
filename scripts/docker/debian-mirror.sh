#!/usr/bin/env bash
# debian_mirror: the Debian archive this machine's apt already uses, so the repository names no mirror host.
# Sourced by the scripts that fetch Debian packages; run alone, it prints the mirror.
#   OBM_DEBIAN_MIRROR    mirror URL to use instead

# The URIs of the enabled binary sources in one apt file: one-line `deb [opts] URI suite...` or deb822 stanzas.
apt_source_uris() {
    case "$1" in
        *.sources)
            awk 'BEGIN { RS = ""; FS = "\n" }
            {
                enabled = 1; binary = 0; uris = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^[Ee]nabled:[[:space:]]*[Nn]o/) enabled = 0
                    if ($i ~ /^[Tt]ypes:/ && $i ~ /[[:space:]]deb([[:space:]]|$)/) binary = 1
                    if ($i ~ /^URIs:/) uris = uris " " substr($i, 6)
                }
                if (enabled && binary) {
                    n = split(uris, uri, /[[:space:]]+/)
                    for (j = 1; j <= n; j++) if (uri[j] != "") print uri[j]
                }
            }' "$1"
            ;;
        *)
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }' "$1"
            ;;
    esac
}

# The first source whose path is the main archive's (.../debian: not .../debian-security, nor a third party's).
debian_mirror() {
    if [ -n "${OBM_DEBIAN_MIRROR:-}" ]; then
        echo "${OBM_DEBIAN_MIRROR%/}"
        return
    fi
    local file uri
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -r "$file" ] || continue
        uri="$(apt_source_uris "$file" | grep -E '^https?://[^[:space:]]+/debian/?$' | head -n1 || true)"
        if [ -n "$uri" ]; then
            echo "${uri%/}"
            return
        fi
    done
    echo "[debian-mirror] ERROR: no Debian archive in this machine's apt sources (/etc/apt/sources.list," \
        "sources.list.d/*.list or *.sources): set OBM_DEBIAN_MIRROR to a mirror's URL" >&2
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    debian_mirror
fi
