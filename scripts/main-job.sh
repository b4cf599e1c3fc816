#!/usr/bin/env bash
# The main job on embedded defaults: build the host and nodes, start a small
# payroll service on 127.0.0.1 that requires a bearer token, and run the seed's
# payroll node as the dev managed identity through the host's egress pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/build-nodes.sh
# The debug build shares its cache with the tests; speed is not the point here.
cargo build --bin flowstudio
bin="$CARGO_TARGET_DIR/debug/flowstudio"
data_dir="${FLOWSTUDIO_DATA_DIR:-.flowstudio}"

port_file=$(mktemp)
python3 scripts/payroll-service.py "$port_file" &
service=$!
trap 'kill $service 2>/dev/null || true; rm -f "$port_file"' EXIT
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")

echo "== next fire times of the seed's schedule (0 6 25 * *, UTC)"
"$bin" cron next "0 6 25 * *" --tz UTC -n 3
echo "== payroll node, granted http://127.0.0.1:$port with the managed identity's token"
"$bin" --data-dir "$data_dir" node run "$FLOWSTUDIO_NODES_DIR/payroll_calculation.wasm" \
    --input "{\"payrollMonth\":\"$(date -u +%Y-%m)\",\"employeesUrl\":\"http://127.0.0.1:$port/employees\"}" \
    --grant "http://127.0.0.1:$port=managed-identity"
echo "== the same node without a grant: the host refuses the call"
if "$bin" --data-dir "$data_dir" node run "$FLOWSTUDIO_NODES_DIR/payroll_calculation.wasm" \
    --input "{\"payrollMonth\":\"$(date -u +%Y-%m)\",\"employeesUrl\":\"http://127.0.0.1:$port/employees\"}"; then
    echo "unexpected: an ungranted call succeeded" >&2
    exit 1
fi
echo "== done"
