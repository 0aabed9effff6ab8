#!/usr/bin/env bash
# The whole test suite: installs what is missing, tests the setup checks, checks
# formatting and lints, runs every test (unit, property, and integration tests against a
# real nats-server and RocksDB), then drives the API from its OpenAPI document
# (scripts/api-contract.sh, schemathesis). Release profile, like the demo and the bench, so the three
# share one RocksDB build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/cargo.sh
bash scripts/tests/setup_checks.sh
bash scripts/setup.sh
bash scripts/validate-deploy.sh
cargo fmt --all -- --check
announce_first_build
cargo clippy --release --workspace --all-targets --locked -- -D warnings
cargo test --release --workspace --locked
bash scripts/api-contract.sh
