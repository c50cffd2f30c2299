#!/usr/bin/env bash
# Bundle benchmark (issue 5, SPEC §7). Not part of `make test`: it moves
# about 7 GB through the disk and 2 GiB through the emulator.
#
#   bash bench/bundle.sh
#
# 1. ZIP64 over 4 GiB: the writer's ignored unit test (shared/src/zip.rs)
#    writes a 4 GiB + 1 MiB entry and two entries past the 4 GiB offset to a
#    temporary file, and the `zip` crate reads it all back (every CRC).
# 0. CPU only: the per-byte work of a bundle (decrypt, hash, CRC, deflate or
#    store, ZIP framing) on 64 MiB of text and 64 MiB of noise, no S3.
# 2. 1 GiB bundle: 256 artifacts of 4 MiB (half text that deflates, half
#    noise stored as application/zip) are written through the store; then a
#    fresh process runs the real bundle handler, which streams the ZIP to
#    deliveries/ and answers 303. Reported: wall time, and the bundle
#    process's peak RSS, both from /proc/self/status (VmHWM) and from
#    /usr/bin/time. The goal is a peak under 64 MiB.
# 3. The delivered archive is fetched through the presigned URL and checked
#    by two independent readers: Python's zipfile (every entry's SHA-256
#    against MANIFEST.json) and Info-ZIP's `unzip -t` (every CRC).
#
# Uses AWS_ENDPOINT_URL when set, else starts its own emulator.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# Optimised like a deployed function where it matters: AES-GCM, the ZIP
# writer and the reader are generic or live in artifacts-shared, and generic
# code is compiled at the opt-level of the crate that instantiates it, so the
# dev profile's opt-level 3 on the crypto crates alone leaves decryption at
# ~2 MiB/s. A separate target directory keeps the shared one untouched.
export CARGO_TARGET_DIR=${BENCH_TARGET_DIR:-$root/target/bench}
cargo_opt=(--config 'profile.dev.package.artifacts-shared.opt-level=3')
venv=${VENV:-.venv}
work=$(mktemp -d "${TMPDIR:-/tmp}/bundle-bench.XXXXXX")
step() { printf '\n==> %s\n' "$*" >&2; }

name="bench-$$"
started_emulator=
cleanup() {
    rm -rf "$work"
    if [[ -n $started_emulator ]]; then
        bash scripts/emulator.sh stop --name "$name" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "CPU only: open sealed segments, CRC, deflate/store, ZIP framing (no S3)"
cargo test "${cargo_opt[@]}" -p artifacts-shared --lib -- --ignored --exact bundle::tests::bench_cpu_throughput --nocapture |
    tee "$work/cpu.txt"

step "ZIP64 over 4 GiB (writer unit test, temporary file)"
start=$(date +%s)
cargo test "${cargo_opt[@]}" -p artifacts-shared --lib -- --ignored --exact zip::tests::over_4_gib_makes_a_valid_zip64_archive
echo "ZIP64 > 4 GiB test: $(( $(date +%s) - start )) s" >"$work/zip64.txt"

if [[ -z ${AWS_ENDPOINT_URL:-} ]]; then
    AWS_ENDPOINT_URL=$(bash scripts/emulator.sh start --name "$name" --port 0 --parent-pid $$)
    started_emulator=1
    step "started an emulator at $AWS_ENDPOINT_URL"
fi
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export BUNDLE_BENCH_NAME="b$(date +%s)$$"

step "building the bundle test binary"
bin=$(cargo test "${cargo_opt[@]}" -p artifacts-tests --test bundle --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "bundle" and .executable != null) | .executable' |
    tail -n1)
[[ -x $bin ]] || { echo "bench: test binary not found" >&2; exit 1; }

step "seeding 1 GiB (256 x 4 MiB)"
"$bin" --ignored --exact bench_seed_one_gib --nocapture

step "bundling 1 GiB in a fresh process"
BUNDLE_BENCH_OUT="$work/result.json" /usr/bin/time -v -o "$work/time.txt" \
    "$bin" --ignored --exact bench_bundle_one_gib --nocapture
url=$(jq -r .url "$work/result.json")

step "fetching the delivered archive and verifying it"
curl -sS --fail -o "$work/bundle.zip" "$url"
"$venv/bin/python" - "$work/bundle.zip" <<'PY'
import hashlib, json, sys, zipfile

path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    infos = z.infolist()
    manifest = json.loads(z.read(infos[0].filename))
    assert infos[0].filename == "MANIFEST.json", infos[0].filename
    files = {f["path"]: f for f in manifest["files"]}
    assert [i.filename for i in infos[1:]] == sorted(files), "entries in path order"
    total = 0
    for info in infos[1:]:
        expected = files[info.filename]
        digest = hashlib.sha256()
        with z.open(info) as f:  # checks the CRC-32 at the end
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == expected["sha256"], info.filename
        assert info.file_size == expected["size"], info.filename
        total += info.file_size
    stored = sum(1 for i in infos if i.compress_type == zipfile.ZIP_STORED)
    deflated = sum(1 for i in infos if i.compress_type == zipfile.ZIP_DEFLATED)
import os
print(f"python zipfile: {len(infos) - 1} files + manifest, {total >> 20} MiB of content, "
      f"every SHA-256 matches MANIFEST.json; {stored} stored, {deflated} deflated; "
      f"archive {os.path.getsize(path) >> 20} MiB")
PY
unzip -tqq "$work/bundle.zip" && echo "unzip -t: no errors"

step "results"
cat "$work/zip64.txt"
jq -r '"bundle: \(.count) x \(.size / 1048576) MiB in \(.elapsedSeconds * 10 | round / 10) s; " +
       "peak RSS (VmHWM) \(.peakKiB) KiB = \(.peakKiB / 1024 | floor) MiB"' "$work/result.json"
grep -h "^BENCH cpu" "$work/cpu.txt" || true
grep -E "Maximum resident set size|Elapsed \(wall clock\)|User time|System time" "$work/time.txt" | sed 's/^\s*/\/usr\/bin\/time: /'
peak=$(jq -r .peakKiB "$work/result.json")
if (( peak >= 64 * 1024 )); then
    echo "FAIL: peak RSS ${peak} KiB is not under 64 MiB" >&2
    exit 1
fi
echo "OK: peak RSS under 64 MiB"
