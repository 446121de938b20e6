#!/usr/bin/env bash
# Runs the scan benchmark (see examples/scan_bench.rs): floor vs cold / warm / one-changed-layer
# scans of a ~200 MB, 6-layer image built from this machine's files, with peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec cargo run --release --quiet -p stella-scanner --example scan_bench -- "${1:-/tmp/stella-scan-bench}"
