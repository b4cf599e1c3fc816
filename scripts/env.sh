# Shared settings for the project's scripts (sourced, not run).
# One cargo target dir outside the clone keeps rebuilds warm across clones and CI runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flowstudio/target}"
export FLOWSTUDIO_NODES_TARGET="${FLOWSTUDIO_NODES_TARGET:-$HOME/.cache/flowstudio/nodes-target}"
export FLOWSTUDIO_NODES_DIR="$FLOWSTUDIO_NODES_TARGET/wasm32-wasip2/release"
