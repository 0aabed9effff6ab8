#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting and lints, runs every
# test (unit, property, and integration tests against a real nats-server and RocksDB).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeline-target}"
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
