#!/usr/bin/env bash
# `make dev`: run the API locally on http://127.0.0.1:9000 against the emulator.
#
# 1. Use the emulator AWS_ENDPOINT_URL names, or the one `make emulator-start`
#    left running, or start one on 127.0.0.1:$PORT (default 4566) that is
#    stopped again when this script ends.
# 2. Provision the table, bucket and keys (idempotent: `--name dev`).
# 3. Write .dev/env (everything the functions read) for this and other tools;
#    the dev JWT secret is generated once per .dev/ and then reused.
# 4. Start the local API Gateway (gateway/, artifacts-gateway) on
#    127.0.0.1:9000: routes from infra/template.yaml, events as API Gateway
#    builds them, the JWT authorizer emulated with the dev secret.
# 5. Print a dev token and a sample request, then run `cargo lambda watch` on
#    127.0.0.1:$WATCH_PORT (default 9001): the gateway invokes the functions
#    through its Invoke API, which builds them on first use and rebuilds them
#    when the code changes. (Its own HTTP front is not used: it drops large
#    responses, see issue 10, and does not decode paths as API Gateway does.)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${VENV:-.venv}
# DEV_DIR: where env, secret and logs go (make soak keeps its own).
dev_dir=${DEV_DIR:-.dev}
env_file=$dev_dir/env
secret_file=$dev_dir/jwt-secret
api_port=${API_PORT:-9000}
watch_port=${WATCH_PORT:-9001}
api=http://127.0.0.1:$api_port
mkdir -p "$dev_dir"

# Whatever this script started is stopped again however it ends.
started_emulator=
gateway_pid=
poller_pid=
cleanup() {
    [[ -n $poller_pid ]] && kill "$poller_pid" 2>/dev/null
    [[ -n $gateway_pid ]] && kill "$gateway_pid" 2>/dev/null
    [[ -n $started_emulator ]] && bash scripts/emulator.sh stop
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
    echo "dev: using the emulator at $AWS_ENDPOINT_URL" >&2
elif AWS_ENDPOINT_URL=$(bash scripts/emulator.sh url 2>/dev/null); then
    echo "dev: using the emulator already running at $AWS_ENDPOINT_URL (make emulator-stop ends it)" >&2
else
    started_emulator=1
    AWS_ENDPOINT_URL=$(bash scripts/emulator.sh start --port "${PORT:-4566}" --parent-pid $$)
    echo "dev: started the emulator at $AWS_ENDPOINT_URL (log: $dev_dir/emulator.log)" >&2
fi

# Emulator credentials only: never let a real profile or session leak in.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

echo "dev: provisioning the table, bucket and keys ..." >&2
resources=$(cargo run -q -p artifacts-tests --bin artifacts-provision -- --name dev)
for var in ARTIFACTS_TABLE ARTIFACTS_BUCKET ARTIFACTS_KMS_KEY_ID ARTIFACTS_LINK_KEY_ID ARTIFACTS_SIGNING_KEY_ID; do
    grep -q "^$var=." <<<"$resources" || { echo "dev: artifacts-provision did not print $var" >&2; exit 1; }
done

umask 077
if [[ ! -s $secret_file ]]; then
    python3 -c 'import secrets; print(secrets.token_hex(32))' >"$secret_file"
fi

{
    echo "# Written by \`make dev\`; rewritten on every run. Local emulator only."
    echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
    echo "AWS_REGION=$AWS_REGION"
    echo "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"
    echo "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"
    grep '^ARTIFACTS_[A-Z0-9_]*=' <<<"$resources"
    echo "ARTIFACTS_PUBLIC_BASE_URL=$api"
    # The functions run their deployed auth path (claims from the
    # authorizer): the gateway verifies dev tokens with this secret, and
    # `make token` signs with it.
    echo "ARTIFACTS_DEV_JWT_SECRET=$(<"$secret_file")"
    # Optional tuning, passed through when set.
    for var in ARTIFACTS_INLINE_MAX_BYTES ARTIFACTS_DIRECT_MAX_BYTES RUST_LOG; do
        [[ -n ${!var:-} ]] && echo "$var=${!var}"
    done
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"
umask 022

token=$(python3 scripts/dev_token.py --env-file "$env_file" --org acme --sub dev-user \
    --scopes "artifacts:read artifacts:write")

echo "dev: building the local gateway ..." >&2
cargo build -q -p artifacts-gateway
target_dir=$(cargo metadata --no-deps --format-version 1 \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
ARTIFACTS_DEV_JWT_SECRET=$(<"$secret_file") RUST_LOG=${RUST_LOG:-info} \
    "$target_dir/debug/artifacts-gateway" --listen "127.0.0.1:$api_port" \
    --template infra/template.yaml --invoke-url "http://127.0.0.1:$watch_port" \
    2>>"$dev_dir/gateway.log" &
gateway_pid=$!

cat >&2 <<EOF

  Environment:  $env_file  (AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL)
  API:          $api/v1/...  (the local API Gateway; log: $dev_dir/gateway.log)
                The first request to a function waits for cargo lambda to build it.

  Console:      $api/#token=$token
                (the web console, signed in as below; the token rides in the
                fragment, which never reaches a server, and the console moves
                it to sessionStorage and out of the address bar at once)

  Dev token (org acme, sub dev-user, read+write, 12 h; more with \`make token\`):

export TOKEN=$token

  For the command-line client (cargo install --path cli):

export ARTIFACTS_API=$api
export ARTIFACTS_TOKEN=$token

  Try:

curl -sS -X PUT "$api/v1/workflows/wf-1/artifacts/docs/prd.md?artifactType=prd" \\
  -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/octet-stream' \\
  -H 'x-artifact-content-type: text/markdown' --data-binary '# PRD'
curl -sS "$api/v1/artifacts/<artifactId>/download" -H "Authorization: Bearer \$TOKEN"

EOF

# --- Upload delivery (issue 10 item 7; SPEC §11, §19) ------------------------
# Deployed, S3 → EventBridge rule on incoming/ → SQS → Lambda's event source
# mapping → artifacts-ingest. artifacts-provision made the same bucket → rule
# → queue (+ dead-letter queue) in the emulator; artifacts-poller plays the
# event source mapping: it polls the queue and invokes artifacts-ingest through
# `cargo lambda watch`'s Invoke API (POST <url>/2015-03-31/functions/
# artifacts-ingest/invocations), deleting only the records ingest did not
# report as failed. It waits until that API answers and stops with this script.
invoke_api=http://127.0.0.1:$watch_port
cargo build -q -p artifacts-tests --bin artifacts-poller
"$target_dir/debug/artifacts-poller" --name dev --invoke-url "$invoke_api" &
poller_pid=$!
echo "dev: upload events: queue artifacts-dev-ingest → artifacts-ingest at $invoke_api (artifacts-poller, pid $poller_pid)" >&2
# --- end of upload delivery ----------------------------------------------------

# `cargo lambda watch` runs cargo, so CARGO_TARGET_DIR and friends still apply.
"$venv/bin/cargo-lambda" lambda watch -A 127.0.0.1 -P "$watch_port" --env-file "$env_file"
