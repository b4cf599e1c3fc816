#!/usr/bin/env bash
# The main job (README command 1): build what it needs, start the host on
# embedded defaults, and play the seed over the REST admin API for real —
# register the managed identity and its secret, upload the payroll node,
# create the workflow and the seed's schedule, show its next fire times,
# trigger it now — against a payroll service that accepts only bearer JWTs
# verified with the passport's JWKS. Prints the execution and its audit trail.
#
#   scripts/main-job.sh                    leaves the host running and says where (Ctrl-C stops it)
#   scripts/main-job.sh --non-interactive  stops the host and exits with a JSON summary on stdout
#                                          (also FLOWSTUDIO_NON_INTERACTIVE=1)
# Environment: FLOWSTUDIO_DATA_DIR (default .flowstudio), FLOWSTUDIO_LISTEN (default
# 127.0.0.1:8080; 127.0.0.1:0 when non-interactive), FLOWSTUDIO_SKIP_BUILD=1 to use
# binaries already built in $CARGO_TARGET_DIR/debug.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

interactive=1
[ "${FLOWSTUDIO_NON_INTERACTIVE:-}" = 1 ] && interactive=0
for arg in "$@"; do
    case "$arg" in
        --non-interactive) interactive=0 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "error: unknown argument \`$arg\` (try --help)" >&2; exit 2 ;;
    esac
done
say() { echo "== $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }
command -v curl >/dev/null || fail "curl is needed"
command -v python3 >/dev/null || fail "python3 is needed (JSON handling)"

if [ "${FLOWSTUDIO_SKIP_BUILD:-}" != 1 ]; then
    say "building the nodes and the host (debug build; shares its cache with the tests)"
    scripts/build-nodes.sh
    cargo build --bin flowstudio --example payroll_service
fi
bin="$CARGO_TARGET_DIR/debug/flowstudio"
payroll_bin="$CARGO_TARGET_DIR/debug/examples/payroll_service"
node_wasm="$FLOWSTUDIO_NODES_DIR/payroll_calculation.wasm"
for f in "$bin" "$payroll_bin" "$node_wasm"; do [ -e "$f" ] || fail "$f is missing (run without FLOWSTUDIO_SKIP_BUILD)"; done

data_dir="${FLOWSTUDIO_DATA_DIR:-.flowstudio}"
if [ $interactive = 1 ]; then listen="${FLOWSTUDIO_LISTEN:-127.0.0.1:8080}"; else listen="${FLOWSTUDIO_LISTEN:-127.0.0.1:0}"; fi
mkdir -p "$data_dir" && chmod 700 "$data_dir"
work=$(mktemp -d)
host_pid= payroll_pid=
cleanup() {
    [ -n "$payroll_pid" ] && kill "$payroll_pid" 2>/dev/null || true
    if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then kill -TERM "$host_pid"; wait "$host_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Development config: tokens may travel over plain http, but only to loopback
# (the payroll service below); everything else stays on the embedded defaults.
cat > "$work/flowstudio.toml" <<EOF
[egress]
allow-loopback-plain-http-tokens = true
EOF

wait_for_line() { # FILE PID WHAT
    for _ in $(seq 600); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || { cat "$work"/*.err >&2 || true; fail "$3 exited early"; }
        sleep 0.1
    done
    fail "$3 did not start within 60 s"
}
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }

say "starting the host: flowstudio serve --listen $listen --data-dir $data_dir"
"$bin" --config "$work/flowstudio.toml" --data-dir "$data_dir" serve --listen "$listen" > "$work/host.out" 2> "$work/host.err" &
host_pid=$!
wait_for_line "$work/host.out" "$host_pid" "flowstudio serve"
url=$(head -1 "$work/host.out" | json 'v["listening"]')
api="$url/flowstudio/api"
token=$("$bin" --config "$work/flowstudio.toml" --data-dir "$data_dir" admin token)
call() { # METHOD PATH [curl args...] -> body on stdout, fails on HTTP >= 400
    local method=$1 path=$2; shift 2
    local out status
    out=$(curl -sS -X "$method" -H "Authorization: Bearer $token" -w '\n%{http_code}' "$api$path" "$@")
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$status" -ge 400 ]; then echo "$out" >&2; return 1; fi
    printf '%s' "$out"
}
json_call() { local method=$1 path=$2; shift 2; call "$method" "$path" -H 'content-type: application/json' "$@"; }

say "starting the payroll service (accepts only JWTs that verify against $url/passport/jwks)"
"$payroll_bin" --jwks "$url/passport/jwks" --issuer flowstudio --audience flowstudio > "$work/payroll.out" 2> "$work/payroll.err" &
payroll_pid=$!
wait_for_line "$work/payroll.out" "$payroll_pid" "payroll service"
payroll=$(head -1 "$work/payroll.out" | json 'v["listening"]')
unauth=$(curl -s -o /dev/null -w '%{http_code}' "$payroll/employees")
[ "$unauth" = 401 ] || fail "the payroll service answered $unauth without a token"

identity=mi-guid-1234
say "registering managed identity $identity and its client secret"
# The secret lives where the schedule's secretReference points (the `file`
# provider of the embedded defaults); the passport keeps only a salted hash.
secret=$(python3 -c "import secrets; print(secrets.token_urlsafe(32))")
(umask 077; printf '%s' "$secret" > "$data_dir/secrets/payroll-scheduler-client-secret")
body=$(python3 -c "import json,sys; print(json.dumps({'id': '$identity', 'name': 'Payroll scheduler', 'clientId': 'payroll-scheduler', 'tenantId': 'contoso', 'roles': ['workflow-runner'], 'clientSecret': sys.argv[1]}))" "$secret")
if ! json_call POST /identities --data-binary "$body" > /dev/null 2> "$work/identity.err"; then
    grep -q '"conflict"' "$work/identity.err" || { cat "$work/identity.err" >&2; fail "could not register $identity"; }
    json_call PUT "/identities/$identity/secret" --data-binary "$(python3 -c "import json,sys; print(json.dumps({'clientSecret': sys.argv[1]}))" "$secret")" > /dev/null
    json_call POST "/identities/$identity/enable" > /dev/null
fi
call GET "/identities/$identity" | json 'json.dumps(v)' >&2

say "uploading the payroll node"
digest=$(call POST "/nodes?name=payroll-calculation" -H 'content-type: application/wasm' --data-binary "@$node_wasm" | json 'v["digest"]')
echo "payroll-calculation: $digest" >&2

say "creating workflow wf-monthly-payroll (its node may call $payroll with the identity's token)"
workflow=$(python3 -c "import json; print(json.dumps({'id': 'wf-monthly-payroll', 'name': 'Monthly payroll', 'nodes': [{'id': 'calculate', 'component': '$digest', 'config': {'employeesUrl': '$payroll/employees'}, 'grants': ['$payroll=managed-identity']}]}))")
json_call PUT /workflows/wf-monthly-payroll --data-binary "$workflow" > /dev/null

say "creating the seed's schedule (its secretReference points at the file provider: no Azure here)"
schedule=$(cat <<'EOF'
{ "workflowId": "wf-monthly-payroll", "name": "Monthly Payroll Run",
  "cronExpression": "0 6 25 * *", "timezone": "UTC", "managedIdentityId": "mi-guid-1234",
  "secretReference": { "provider": "file", "path": "payroll-scheduler-client-secret" },
  "inputData": { "payrollMonth": "{{schedule.triggerMonth}}" },
  "retryPolicy": { "maxAttempts": 3, "backoffSeconds": 60 } }
EOF
)
existing=$(call GET "/schedules?workflowId=wf-monthly-payroll" | json 'next((s["id"] for s in v["schedules"] if s["name"] == "Monthly Payroll Run"), "")')
if [ -n "$existing" ]; then
    created=$(json_call PUT "/schedules/$existing" --data-binary "$schedule")
else
    created=$(json_call POST /schedules --data-binary "$schedule")
fi
schedule_id=$(echo "$created" | json 'v["id"]')
say "next fire times of $schedule_id (0 6 25 * *, UTC)"
echo "$created" | json '"\n".join(v["nextFireTimes"])' >&2

say "triggering it now (manual, as the admin caller; the run acts as $identity)"
execution_id=$(json_call POST "/schedules/$schedule_id/trigger" | json 'v["execution"]["id"]')
status=pending
for _ in $(seq 600); do
    execution=$(call GET "/executions/$execution_id")
    status=$(echo "$execution" | json 'v["status"]')
    case "$status" in pending|running) sleep 0.1 ;; *) break ;; esac
done
say "execution $execution_id: $status"
echo "$execution" | json 'json.dumps({"status": v["status"], "error": v.get("error"), "output": v.get("output"), "nodes": [{k: n.get(k) for k in ("nodeId", "status", "durationMs", "error")} for n in v["nodes"]]}, indent=2)' >&2

say "audit trail of $identity (secret read, token, the execution and its calls)"
audit=$(call GET "/audit?identity=$identity")
python3 - "$audit" >&2 <<'EOF'
import json, sys
for e in json.loads(sys.argv[1])["events"]:
    reason = f" ({e['reason']})" if e.get("reason") else ""
    print(f"{e['seq']:>4} {e['time']} {e['action']:<22} actor={e['actorId']:<14} {e['outcome']:<8} {e['target']}{reason}")
EOF
seen=$(curl -sS "$payroll/seen")
verified=$(echo "$seen" | json 'len(v["verified"])')
say "payroll service: $verified verified token(s); first caller: $(echo "$seen" | json 'json.dumps(v["verified"][0]) if v["verified"] else None')"

summary=$(python3 - "$execution" "$audit" "$seen" "$url" <<'EOF'
import json, sys
execution, audit, seen, url = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
events = [e for e in audit["events"] if e.get("executionId") in (None, execution["id"])]
print(json.dumps({
    "host": url,
    "executionId": execution["id"],
    "status": execution["status"],
    "output": execution.get("output"),
    "auditActions": [e["action"] for e in events],
    "auditActors": sorted({e["actorId"] for e in events}),
    "payrollVerifiedTokens": len(seen["verified"]),
    "payrollCallers": seen["verified"],
}))
EOF
)
if [ $interactive = 0 ]; then
    echo "$summary"
    [ "$status" = succeeded ] && [ "$verified" -ge 1 ] || exit 1
    exit 0
fi
say "the host keeps running at $url (API $api/, metrics $url/metrics)"
echo "   admin token:  $bin --data-dir $data_dir admin token" >&2
echo "   e.g.          curl -H \"Authorization: Bearer \$($bin --data-dir $data_dir admin token)\" $api/executions" >&2
echo "   Ctrl-C stops the host (gracefully) and the payroll service." >&2
wait "$host_pid"
