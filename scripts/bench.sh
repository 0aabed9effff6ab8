#!/usr/bin/env bash
# Throughput of lifeline against raw JetStream and RocksDB, measured in the same run on
# this machine (a nats-server is started on a random port). Release build: the first run
# compiles RocksDB again with optimisations (20-30 minutes on two cores).
# Extra arguments go to lifeline-bench, e.g. scripts/bench.sh --events 100000
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lifeline-target}"
bash scripts/setup.sh demo
cargo run --quiet --locked --release -p lifeline-bench -- "$@"
