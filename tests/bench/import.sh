#!/usr/bin/env bash
# Benchmark of the importer on the full ../shared/data corpus (issue "Importer", item 9):
# import time and peak RSS of `stella import`, against a floor measured in the same run (zstd
# decompression + SHA-256 of the same kit), then search latency (p50/p99) over the result.
# Usage: tests/bench/import.sh [PROFILE]   (PROFILE: release (default) or debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-release}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stella-ops/target}"
flag=""; [ "$profile" = release ] && flag="--release"
cargo build $flag -q -p stella-appliance -p stella-kit-builder
cargo build $flag -q -p stella-feeds --example search_latency
bin="$CARGO_TARGET_DIR/$profile"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tests/full-corpus-kits "$work/kits" "$bin/stella-kit"
printf '[kits]\ntrusted_keys = ["%s"]\n' "$work/kits/kit.pub" > "$work/stella.toml"
"$bin/stella" import "$work/kits/kit-1.tar.zst" --config "$work/stella.toml" --data-dir "$work/data" >/dev/null
floor_start=$(date +%s.%N)
zstd -dc "$work/kits/kit-2.tar.zst" | sha256sum >/dev/null
floor=$(echo "$(date +%s.%N) - $floor_start" | bc)
/usr/bin/time -f "%e %M" -o "$work/time" "$bin/stella" import "$work/kits/kit-2.tar.zst" \
  --config "$work/stella.toml" --data-dir "$work/data" >/dev/null
read -r secs rss_kb < "$work/time"
echo "kit: $(stat -c %s "$work/kits/kit-2.tar.zst") bytes"
echo "floor (zstd -d + sha256 of the kit): ${floor}s"
echo "import: ${secs}s ($(echo "scale=1; $secs / $floor" | bc)x floor), peak RSS $((rss_kb / 1024)) MiB (targets: <= 15 s, <= 512 MiB)"
"$bin/examples/search_latency" "$work/data"
