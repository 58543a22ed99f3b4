#!/usr/bin/env bash
# The .env docker compose reads: the API token the three services share and the sender's live gateway key,
# made at random the first time and kept (never committed: .env is ignored by git). `env-file.sh url` also
# prints the UI's address with the token.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! grep -qs '^OBM_API_TOKEN=' .env; then
    token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    (umask 077 && printf 'OBM_API_TOKEN=%s\n' "$token" >>.env)
    echo "env-file: a new random API token is in .env" >&2
fi
if ! grep -qs '^SENDER_GATEWAY_API_KEYS=' .env; then
    # Databento's key format, so that Databento's clients take it unchanged
    key="$(python3 -c 'import secrets, string; print("db-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(29)))')"
    (umask 077 && printf 'SENDER_GATEWAY_API_KEYS=%s\n' "$key" >>.env)
    echo "env-file: a new random live gateway API key is in .env (SENDER_GATEWAY_API_KEYS)" >&2
fi
if [ "${1:-}" = url ]; then
    # A token set in the environment wins over .env, as it does for compose.
    token="${OBM_API_TOKEN:-$(sed -n 's/^OBM_API_TOKEN=//p' .env | tail -n 1)}"
    host="${OBM_BIND:-127.0.0.1}"
    [ "$host" = 0.0.0.0 ] && host=127.0.0.1
    echo "The UI, with the API token: http://$host:8000/#token=$token"
fi
