#!/usr/bin/env bash
# `make test` (and CI): format, lints, unit and integration tests, template lint.
#
# The integration tests run against a fresh emulator started here on a free
# port and stopped again however this script ends -- unless AWS_ENDPOINT_URL
# already names one (e.g. LocalStack), which is then used and nothing started.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=${VENV:-.venv}

step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

if [[ -n ${AWS_ENDPOINT_URL:-} ]]; then
    step "using the emulator at $AWS_ENDPOINT_URL"
else
    name="test-$$"
    cleanup() {
        local status=$?
        bash scripts/emulator.sh stop --name "$name"
        if [[ $status -eq 0 ]]; then
            rm -f ".dev/$name.log"
        else
            echo "emulator log kept in .dev/$name.log" >&2
        fi
    }
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    AWS_ENDPOINT_URL=$(bash scripts/emulator.sh start --name "$name" --port 0 --parent-pid $$)
    step "started a fresh emulator at $AWS_ENDPOINT_URL (log: .dev/$name.log)"
fi
# Emulator credentials only: never let a real profile or session leak in.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION
export AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

step "cargo test --workspace"
cargo test --workspace

step "make conformance (schemathesis on infra/openapi.yaml, generated client)"
bash scripts/conformance.sh

if [[ -f infra/template.yaml ]]; then
    step "cfn-lint infra/template.yaml"
    "$venv/bin/cfn-lint" infra/template.yaml
fi

step "all checks passed"
