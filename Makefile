# Local development and CI. `make help` lists the targets.
#
# Tools that are not Rust (the moto emulator, cargo-lambda, cfn-lint) live in
# a project-local venv built from requirements-dev.txt; nothing needs
# activating. A CARGO_TARGET_DIR from the environment is honoured.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON3 ?= python3
VENV ?= .venv
export VENV
STAMP := $(VENV)/.installed

# make dev: emulator port (unless AWS_ENDPOINT_URL is set).
PORT ?= 4566
# make token
ORG ?= acme
SUB ?= dev-user
SCOPES ?= artifacts:read artifacts:write
TTL ?= 12h

.PHONY: help venv console dev token test conformance soak bench fmt lint emulator-start emulator-stop clean-dev

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) ## create/update the tools venv (.venv) from requirements-dev.txt, system tools (unzip, bsdtar, node, chromium), the console
	@bash scripts/system-deps.sh
	@$(MAKE) console

# Reinstalls only when requirements-dev.txt changes (or the venv is gone).
$(STAMP): requirements-dev.txt
	@test -x $(VENV)/bin/python || $(PYTHON3) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The web console's front end (SPEC §17): web/ built by Vite into web/dist,
# which functions/console embeds at compile time (its build.rs fails with a
# pointer here when dist/ is missing). `npm ci` installs exactly the
# lockfile; both steps rerun only when their inputs change.
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.js
console: web/dist/index.html ## build the console's front end (npm ci && npm run build in web/)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run --silent build
	@touch $@

dev: venv ## run the API on http://127.0.0.1:9000 against the emulator (writes .dev/env)
	@PORT=$(PORT) bash scripts/dev.sh

token: ## mint a dev token: make token ORG=acme SUB=dev-user SCOPES="artifacts:read" TTL=12h
	@$(PYTHON3) scripts/dev_token.py --env-file .dev/env --org "$(ORG)" --sub "$(SUB)" --scopes "$(SCOPES)" --ttl "$(TTL)"

test: venv ## fmt check, clippy, all tests against a fresh emulator, cfn-lint (what CI runs)
	@bash scripts/test.sh

conformance: venv ## schemathesis on infra/openapi.yaml against the real handlers + a generated client's round trip (part of make test)
	@bash scripts/conformance.sh

soak: venv ## make dev's real listener under load: 200+200 downloads (1, 4 MiB), 100 uploads, no hangs (minutes)
	@bash scripts/soak.sh

# Bench-only Python packages (the chart), installed on first use and when
# bench/requirements.txt changes; `make test` never installs them.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

bench: venv $(BENCH_STAMP) ## release build, every figure beside its baseline (SPEC §20): table, bench/results.{json,svg}
	@$(VENV)/bin/python bench/run.py

fmt: ## format the Rust code
	cargo fmt --all

lint: venv ## fmt check, clippy and cfn-lint, without the tests
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@if [[ -f infra/template.yaml ]]; then echo "$(VENV)/bin/cfn-lint infra/template.yaml"; $(VENV)/bin/cfn-lint infra/template.yaml; fi

emulator-start: venv ## start a long-lived emulator on 127.0.0.1:PORT (default 4566; make dev reuses it)
	@bash scripts/emulator.sh start --port $(PORT)

emulator-stop: ## stop the emulator started by emulator-start
	@bash scripts/emulator.sh stop

clean-dev: emulator-stop ## stop the emulator and delete .dev/ (env, dev JWT secret, logs)
	rm -rf .dev
