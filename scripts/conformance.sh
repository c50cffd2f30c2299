#!/usr/bin/env bash
# `make conformance` (and a step of `make test`): schema-driven testing of the
# API against its own OpenAPI document (SPEC §16).
#
# 1. starts artifacts-conformance: the local gateway on 127.0.0.1:<free port>
#    in front of the real handlers, on a freshly provisioned table, bucket and
#    keys of the emulator (AWS_ENDPOINT_URL, or a moto server it starts);
# 2. runs schemathesis (pinned in requirements-dev.txt) on the document that
#    listener serves at GET /v1/openapi.json: every operation, positive and
#    negative data, seeded, CONFORMANCE_EXAMPLES examples per operation and
#    phase, stateful chains along the document's links; checks: no 5xx,
#    response schema, status code and content type conform, problem+json on
#    every 4xx (scripts/conformance_hooks.py, which also rotates dev tokens of
#    two orgs and prints the requests per operation);
# 3. generates a Python client from the same document with
#    openapi-python-client (pinned) and round-trips upload -> download with it
#    (scripts/client_roundtrip.py).
#
# CONFORMANCE_SEED (default 16) and CONFORMANCE_EXAMPLES (default 40) tune it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${VENV:-.venv}
seed=${CONFORMANCE_SEED:-16}
examples=${CONFORMANCE_EXAMPLES:-40}
work=.dev/conformance
target=${CARGO_TARGET_DIR:-target}

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo build -p artifacts-tests --bin artifacts-conformance"
cargo build --quiet -p artifacts-tests --bin artifacts-conformance

mkdir -p "$work"
rm -f "$work/info.json"
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} \
    AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
"$target/debug/artifacts-conformance" --info-file "$work/info.json" --max-secs 1200 \
    >"$work/server.log" 2>&1 &
server=$!
cleanup() {
    local status=$?
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    if [[ $status -ne 0 ]]; then
        echo "conformance: handler log kept in $work/server.log" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 240); do
    [[ -s $work/info.json ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; echo "conformance: the listener died" >&2; exit 1; }
    sleep 0.5
done
[[ -s $work/info.json ]] || { echo "conformance: the listener did not start in 120 s" >&2; exit 1; }
url=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/info.json")
token=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"]["conf-a"])' "$work/info.json")
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1

# The document exactly as served (a file: schemathesis then tests the
# document's own route too).
"$venv/bin/python" -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1]).read())' \
    "$url/v1/openapi.json" "$work/openapi.json"

step "schemathesis on $url (seed $seed, $examples examples per operation)"
start=$(date +%s)
CONFORMANCE_INFO="$root/$work/info.json" SCHEMATHESIS_HOOKS=conformance_hooks \
PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}" \
    "$venv/bin/schemathesis" run "$work/openapi.json" --url "$url" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,problem_json_on_4xx,scope_before_input \
    --mode all --phases examples,coverage,fuzzing,stateful \
    --seed "$seed" --max-examples "$examples" --workers 1 \
    --request-timeout 60 --continue-on-failure --no-color \
    --report junit --report-junit-path "$work/junit.xml"
echo "conformance: schemathesis wall time $(($(date +%s) - start)) s" >&2

step "openapi-python-client: a client from the document, round trip upload -> download"
rm -rf "$work/artifacts_client"
PATH="$root/$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate --path "$work/openapi.json" \
    --output-path "$work/artifacts_client" --meta none >"$work/client-generate.log" 2>&1 ||
    { cat "$work/client-generate.log" >&2; exit 1; }
"$venv/bin/python" scripts/client_roundtrip.py "$work" "$url" "$token"
