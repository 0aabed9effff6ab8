#!/usr/bin/env bash
# The API against its own document: schemathesis generates requests from
# docs/openapi.json (valid and invalid ones) and sends them to a real `lifeline up` on a
# real nats-server, as each role would; it fails on any 5xx, any status the document does
# not list for the operation, and any body or content type that does not match it.
#
#   scripts/api-contract.sh [examples-per-operation]     (default 25)
#
# Needs: the release binary (CARGO_TARGET_DIR or target/), nats-server, and schemathesis
# (`st`, installed by scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-25}
target=${CARGO_TARGET_DIR:-target}
lifeline=${LIFELINE_BIN:-$target/release/lifeline}
st=${SCHEMATHESIS:-${LIFELINE_SCHEMATHESIS_VENV:-$HOME/.cache/lifeline-schemathesis}/bin/st}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" >"$work/nats.log" 2>&1 &
pids+=($!)
url="nats://127.0.0.1:$port"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

"$lifeline" seed --nats-url "$url" >/dev/null
RUST_LOG=warn,lifeline_gateway=info "$lifeline" up --nats-url "$url" --http 127.0.0.1:0 \
    --data-dir "$work/data" --access deploy/access.example.toml 2>"$work/up.log" &
pids+=($!)
api=""
for _ in $(seq 200); do
    api=$(grep -o 'address=[0-9.:]*' "$work/up.log" | head -1 | cut -d= -f2 || true)
    [ -n "$api" ] && break
    sleep 0.1
done
[ -n "$api" ] || { echo "api-contract: lifeline up did not listen"; cat "$work/up.log"; exit 1; }
for _ in $(seq 200); do
    curl -sf "http://$api/readyz" >/dev/null && break
    sleep 0.1
done

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
status=0
# One run per role: each token reaches different answers (403 for the others' commands).
for token in dev-staff-tianlun dev-partner-yonghui dev-courier-007 dev-resident-0301 dev-operator; do
    echo "api-contract: as $token"
    "$st" run docs/openapi.json --url "http://$api" \
        -H "Authorization: Bearer $token" \
        --checks "$checks" --max-examples "$examples" \
        --phases examples,coverage,fuzzing --seed 1 \
        --generation-database none --no-color \
        >"$work/st-$token.log" 2>&1 || { status=1; cat "$work/st-$token.log"; }
    tail -3 "$work/st-$token.log"
done
if [ "$status" -ne 0 ]; then
    echo "api-contract: the API answered outside its document (above); lifeline up's log tail:"
    tail -20 "$work/up.log"
fi
exit "$status"
