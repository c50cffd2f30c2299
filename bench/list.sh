#!/usr/bin/env bash
# Listing benchmark (issue 3, item 6): lists BENCH_ARTIFACTS (default 10000)
# artifacts page by page through the real `list` handler against the
# emulator and prints artifacts/second and DynamoDB items read per artifact.
# Not a test: nothing is asserted. See bench/list.rs.
#
#   bench/list.sh                      # fresh moto emulator, 10,000 artifacts
#   BENCH_ARTIFACTS=2000 bench/list.sh
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 bench/list.sh   # an emulator already running
#   BENCH_ARTIFACTS=100000 BENCH_FIRST_PAGE_ONLY=1 bench/list.sh  # first pages only (issue 10 item 8)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Emulator credentials only: never let a real profile or session leak in.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
# Without AWS_ENDPOINT_URL the harness starts moto from .venv (make venv) and
# stops it when the benchmark exits.
exec cargo run --quiet -p artifacts-tests --bin artifacts-bench-list
