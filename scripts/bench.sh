#!/usr/bin/env bash
# Throughput of lifeline against raw JetStream and RocksDB, measured in the same run on
# this machine (a nats-server is started on a random port), and the size of the release
# binary users ship. Same release build as the demo and the tests.
# Extra arguments go to lifeline-bench, e.g. scripts/bench.sh --events 100000
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/cargo.sh
bash scripts/setup.sh demo
announce_first_build
cargo build --quiet --locked --release -p lifeline-cli --bin lifeline
cargo run --quiet --locked --release -p lifeline-bench -- \
    --binary "$CARGO_TARGET_DIR/release/lifeline" "$@"
