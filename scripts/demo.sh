#!/usr/bin/env bash
# Plays one lockdown day in Tianlun Jincheng (3,314 households) on a simulated clock.
# Starts a local nats-server when none listens on 127.0.0.1:4222. Extra arguments go to
# `lifeline demo`, for example: scripts/demo.sh --households 500
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/cargo.sh
bash scripts/setup.sh demo
announce_first_build
cargo run --quiet --locked --release -p lifeline-cli --bin lifeline -- demo "$@"
