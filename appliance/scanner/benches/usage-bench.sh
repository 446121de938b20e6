#!/usr/bin/env bash
# Runs the usage-view benchmark (see examples/usage_bench.rs): cold scan vs usage closure +
# BOM-Index build, and a diff of two images sharing 4 of 5 layers.
set -euo pipefail
cd "$(dirname "$0")/../../.."
exec cargo run --release --quiet -p stella-scanner --example usage_bench -- "${1:-/tmp/stella-usage-bench}"
