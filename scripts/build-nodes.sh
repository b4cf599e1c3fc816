#!/usr/bin/env bash
# Build the example nodes (and test-only guests) in nodes/ for wasm32-wasip2,
# installing the target first when this machine does not have it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
fi
CARGO_TARGET_DIR="$FLOWSTUDIO_NODES_TARGET" \
    cargo build --release --manifest-path nodes/Cargo.toml --target wasm32-wasip2
echo "nodes built in $FLOWSTUDIO_NODES_DIR" >&2
