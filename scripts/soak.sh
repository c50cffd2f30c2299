#!/usr/bin/env bash
# `make soak` (issue 10, item 0): drive `make dev`'s real listener -- the local
# API Gateway in front of `cargo lambda watch`'s Invoke API -- with curl, the
# way a user does, and count answers that never come.
#
#   200 sequential downloads of a 1 MiB artifact, 200 of a 4 MiB artifact,
#   100 sequential 1 MiB uploads; every request bounded by curl --max-time.
#
# It starts its own emulator (free port) and its own `scripts/dev.sh` on
# 127.0.0.1:$API_PORT / $WATCH_PORT (default 19000 / 19001, so a `make dev`
# already running elsewhere is not disturbed), and stops both however it ends.
# The first request waits for cargo lambda to build the functions.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
downloads=${DOWNLOADS:-200}
uploads=${UPLOADS:-100}
max_time=${MAX_TIME:-60}
api_port=${API_PORT:-19000}
watch_port=${WATCH_PORT:-19001}
api=http://127.0.0.1:$api_port
work=$(mktemp -d)
dev_pid=
name="soak-$$"

cleanup() {
    [[ -n $dev_pid ]] && kill -- "-$dev_pid" 2>/dev/null
    bash scripts/emulator.sh stop --name "$name" || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

AWS_ENDPOINT_URL=$(bash scripts/emulator.sh start --name "$name" --port 0 --parent-pid $$)
export AWS_ENDPOINT_URL
# Its own .dev/soak/ (env, secret, logs): a developer's .dev/env is left alone.
dev_dir=.dev/soak
mkdir -p "$dev_dir"
rm -f "$dev_dir/env"
echo "soak: emulator at $AWS_ENDPOINT_URL; make dev on $api (log $dev_dir/dev.log)" >&2
DEV_DIR=$dev_dir API_PORT=$api_port WATCH_PORT=$watch_port \
    setsid bash scripts/dev.sh >"$dev_dir/dev.log" 2>&1 &
dev_pid=$!

# Its env (and secret) exist once dev.sh has provisioned.
for _ in $(seq 600); do
    grep -q '^ARTIFACTS_DEV_JWT_SECRET=' "$dev_dir/env" 2>/dev/null && break
    sleep 1
done
token=$(python3 scripts/dev_token.py --env-file "$dev_dir/env" --org soak --sub soak \
    --scopes "artifacts:read artifacts:write")
auth="Authorization: Bearer $token"

echo "soak: waiting for the functions to build ..." >&2
start=$(date +%s)
until [[ $(curl -s -o /dev/null --max-time 900 -w '%{http_code}' -H "$auth" "$api/v1/artifacts") == 200 ]]; do
    (( $(date +%s) - start < 1800 )) || { echo "soak: the API never answered" >&2; exit 1; }
    sleep 2
done

head -c $((1024 * 1024)) /dev/urandom >"$work/1m"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$work/4m"

put() { # path file [max-time] -> prints "status"; the body lands in $work/put.json
    curl -sS --max-time "${3:-$max_time}" -o "$work/put.json" -w '%{http_code}' -X PUT \
        -H "$auth" -H 'Content-Type: application/octet-stream' \
        -H 'x-artifact-content-type: application/octet-stream' \
        --data-binary "@$2" "$api/v1/workflows/soak/artifacts/$1"
}
id_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["artifact"]["artifactId"])' "$work/put.json"; }

# Warm the upload and download functions (their first build is not a hang).
[[ $(put 1m.bin "$work/1m" 900) == 201 ]] || { echo "soak: upload failed: $(cat "$work/put.json")" >&2; exit 1; }
id_1m=$(id_of)
[[ $(put 4m.bin "$work/4m") == 201 ]] || { echo "soak: upload failed: $(cat "$work/put.json")" >&2; exit 1; }
id_4m=$(id_of)
curl -s -o /dev/null --max-time 900 -H "$auth" "$api/v1/artifacts/$id_1m/download"

failed=0
download_round() { # label id file
    local label=$1 id=$2 file=$3 ok=0 hung=0 bad=0 t0=$SECONDS rc status
    for _ in $(seq "$downloads"); do
        rc=0
        status=$(curl -sS --max-time "$max_time" -o "$work/got" -w '%{http_code}' \
            -H "$auth" "$api/v1/artifacts/$id/download" 2>/dev/null) || rc=$?
        if (( rc == 28 )); then
            hung=$((hung + 1))
        elif (( rc != 0 )) || [[ $status != 200 ]] || ! cmp -s "$work/got" "$file"; then
            bad=$((bad + 1))
        else
            ok=$((ok + 1))
        fi
    done
    printf 'soak: %s downloads of %s: %d ok, %d hung (no answer in %ss), %d wrong; %d s\n' \
        "$downloads" "$label" "$ok" "$hung" "$max_time" "$bad" $((SECONDS - t0))
    (( hung + bad == 0 )) || failed=1
}
download_round "1 MiB" "$id_1m" "$work/1m"
download_round "4 MiB" "$id_4m" "$work/4m"

ok=0 hung=0 bad=0 t0=$SECONDS
for i in $(seq "$uploads"); do
    rc=0
    status=$(put "up/$i.bin" "$work/1m" 2>/dev/null) || rc=$?
    if (( rc == 28 )); then hung=$((hung + 1))
    elif (( rc != 0 )) || [[ $status != 201 ]]; then bad=$((bad + 1))
    else ok=$((ok + 1)); fi
done
printf 'soak: %s uploads of 1 MiB: %d ok, %d hung (no answer in %ss), %d wrong; %d s\n' \
    "$uploads" "$ok" "$hung" "$max_time" "$bad" $((SECONDS - t0))
(( hung + bad == 0 )) || failed=1

if (( failed )); then
    echo "soak: FAILED" >&2
    exit 1
fi
echo "soak: every request answered" >&2
