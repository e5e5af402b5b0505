#!/usr/bin/env bash
# Quick start 2: set up and run every test: unit tests, the DPDK wrapper tests, and the
# integration suite that drives the real switch over DPDK vdevs, pcap files and network
# namespaces (needs root for the namespace tests). Lints run first when clippy is there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy -q --workspace --all-targets -- -D warnings
fi
# The integration tests run the sluice binary, which `cargo test` does not build.
cargo build -q -p sluice
cargo test --workspace -- --test-threads=2 "$@"
