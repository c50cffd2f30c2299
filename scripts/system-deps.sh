#!/usr/bin/env bash
# System packages the tests need beyond Rust and the Python venv:
#   unzip             Info-ZIP `unzip`, one of the extractors bundles are checked with
#   libarchive-tools  `bsdtar`, another
#   nodejs, npm       build the console's front end (web/, `make console`)
#   chromium, chromium-driver  the console's browser tests (Playwright drives
#                     Debian's Chromium at /usr/bin/chromium; no browser download)
# Installs only what is missing, with one `apt-get update` first; does nothing
# (quietly) when every tool is already there. Called by `make venv`.
set -euo pipefail

# tool:package
needed=(unzip:unzip bsdtar:libarchive-tools node:nodejs npm:npm chromium:chromium chromedriver:chromium-driver)

missing=()
for pair in "${needed[@]}"; do
  tool=${pair%%:*}
  package=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: please install ${missing[*]} (needed by the tests and the console build); no apt-get here" >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "system-deps: please install ${missing[*]} as root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
