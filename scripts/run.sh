#!/usr/bin/env bash
# Quick start 1: set up, build, and run sluice. With no arguments it runs the embedded
# default (pcap replay -> L2 learning bridge -> null sink, no NIC or hugepages needed)
# and prints live Mpps until Ctrl-C. Arguments go to `sluice run` (e.g. --config X).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -q -p sluice
exec target/release/sluice run "$@"
