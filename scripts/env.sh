# Shared settings for the project's scripts (sourced, not run).
# One cargo target dir outside the clone keeps rebuilds warm across clones and CI runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flowstudio/target}"
export FLOWSTUDIO_NODES_TARGET="${FLOWSTUDIO_NODES_TARGET:-$HOME/.cache/flowstudio/nodes-target}"
export FLOWSTUDIO_NODES_DIR="$FLOWSTUDIO_NODES_TARGET/wasm32-wasip2/release"
# Test peers (scripts/install-peers.sh): moto, OpenBao's `bao`, oauth2-mock-server.
export FLOWSTUDIO_PEERS="${FLOWSTUDIO_PEERS:-$HOME/.cache/flowstudio/peers}"
export FLOWSTUDIO_MOTO="$FLOWSTUDIO_PEERS/venv/bin/moto_server"
export FLOWSTUDIO_BAO="$FLOWSTUDIO_PEERS/bin/bao"
export FLOWSTUDIO_OAUTH2_MOCK_MODULES="$FLOWSTUDIO_PEERS/npm/node_modules"
