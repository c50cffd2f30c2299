#!/usr/bin/env bash
# Peak resident memory of ingest for one large presigned upload (issue: must
# stay under 64 MiB for 200 MiB). The upload is prepared and PUT by other
# processes; the ingest runs in a fresh process that cold-starts a store from
# the environment like the Lambda, and reports its own peak RSS (VmHWM) next
# to the peak right after cold start (the baseline).
#
#   bench/ingest-memory.sh            # 200 MiB, limit 64 MiB
#   SIZE_MIB=1024 LIMIT_MIB=64 bench/ingest-memory.sh
#
# Uses AWS_ENDPOINT_URL when set, else starts (and stops) its own emulator.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE_MIB=${SIZE_MIB:-200}
LIMIT_MIB=${LIMIT_MIB:-64}

make -s venv
if [[ -z ${AWS_ENDPOINT_URL:-} ]]; then
    trap 'bash scripts/emulator.sh stop --name bench' EXIT
    AWS_ENDPOINT_URL=$(bash scripts/emulator.sh start --name bench --port 0 --parent-pid $$)
fi
unset AWS_PROFILE AWS_SESSION_TOKEN
export AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

cargo build -q -p artifacts-tests --bin artifacts-bench-ingest
bin=${CARGO_TARGET_DIR:-target}/debug/artifacts-bench-ingest

work=$(mktemp -d)
trap 'rm -rf "$work"; bash scripts/emulator.sh stop --name bench 2>/dev/null || true' EXIT
"$bin" prepare --size-mib "$SIZE_MIB" --curl-config "$work/put.curl" > "$work/session"
# shellcheck disable=SC1091
. "$work/session"
head -c "$SIZE_BYTES" /dev/urandom > "$work/payload"
curl -sSf -X PUT -T "$work/payload" -K "$work/put.curl" > /dev/null
rm -f "$work/payload"

result=$("$bin" ingest --key "$KEY" --size-bytes "$SIZE_BYTES")
echo "$result"
python3 - "$result" "$LIMIT_MIB" <<'PY'
import json, sys
r, limit = json.loads(sys.argv[1]), float(sys.argv[2])
peak, base = r["peakRssKiB"] / 1024, r["peakRssAfterColdStartKiB"] / 1024
print(f"ingest of {r['sizeMiB']:.0f} MiB: {r['outcome']}, {r['MiBPerSecond']:.1f} MiB/s; "
      f"peak RSS {peak:.1f} MiB (cold start alone: {base:.1f} MiB, ratio {peak / base:.2f}); limit {limit:.0f} MiB")
sys.exit(0 if r["outcome"] == "committed" and peak < limit else 1)
PY
