#!/usr/bin/env bash
# Run every test: builds the nodes, then the workspace's unit and integration tests,
# then compiles (does not run) the benches so they keep building.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/build-nodes.sh
scripts/install-peers.sh
cargo build --bin flowstudio --example payroll_service
cargo test --workspace "$@"
# Optimized build of the benches only; run them with `cargo bench -p flowstudio-host` (README).
cargo bench -p flowstudio-host --no-run
