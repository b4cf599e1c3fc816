#!/usr/bin/env bash
# Run every test: builds the nodes, then the workspace's unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/build-nodes.sh
scripts/install-peers.sh
cargo build --bin flowstudio --example payroll_service
cargo test --workspace "$@"
