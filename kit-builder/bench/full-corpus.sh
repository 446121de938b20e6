#!/usr/bin/env bash
# Benchmark: full-corpus kit build (time, peak RSS, kit size) against a baseline measured in the
# same run: reading and SHA-256-hashing the same input files (EPSS gunzipped, as the build does).
# Usage: kit-builder/bench/full-corpus.sh [SHARED_DATA_DIR]   (needs /usr/bin/time: apt-get install time)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${1:-$repo/../shared/data}"
[ -f "$data/SOURCES.md" ] || { echo "SKIP: $data is not the shared data corpus"; exit 0; }
data="$(cd "$data" && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release -q -p stella-kit-builder --manifest-path "$repo/Cargo.toml"
bin="$target/release/stella-kit"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sources=(
  osv="$data/osv/pypa-advisory-database/vulns"
  osv="$data/osv/rustsec-advisory-db/crates"
  osv="$data/osv/rustsec-advisory-db/rust"
  osv="$data/osv/golang-vulndb/data/osv"
  osv="$data/osv/ubuntu-security-notices/osv"
  nodejs-security-wg="$data/osv/nodejs-security-wg/vuln/npm"
  nodejs-security-wg="$data/osv/nodejs-security-wg/vuln/core"
  debian-dsa="$data/distro/debian-security-tracker/data/DSA/list"
  debian-dla="$data/distro/debian-security-tracker/data/DLA/list"
  alpine-secdb="$data/distro/alpine-secdb"
  kev="$data/kev/known_exploited_vulnerabilities.json"
  epss="$data/epss/emba-epss-data/EPSS_CVE_data"
  openvex="$data/osv/nodejs-security-wg/tools/vex/node.openvex.json"
  csaf="$data/vex/redhat-csaf-vex"
  cyclonedx-vex="$data/vex/cyclonedx-bom-examples/VEX"
)
args=()
inputs=()
for s in "${sources[@]}"; do args+=(--source "$s"); inputs+=("${s#*=}"); done

"$bin" keygen -o "$work/keys" --unencrypted >/dev/null

measure() { # label, command...
  local label="$1"; shift
  /usr/bin/time -v "$@" 2> "$work/$label.time" >/dev/null
  local wall rss cpu
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$label.time")
  wall=$(grep "Elapsed (wall clock)" "$work/$label.time" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$work/$label.time" | awk '{print $NF}')
  # m:ss.ss -> seconds
  wall=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  echo "$label $wall $rss $cpu"
}

# The baseline reads every input byte once and hashes it (gunzipping the EPSS files).
{
  echo 'set -euo pipefail'
  printf 'find'; printf ' %q' "${inputs[@]}"; echo " -type f ! -name '*.gz' -print0 | sort -z | xargs -0 cat | sha256sum"
  printf 'find'; printf ' %q' "${inputs[@]}"; echo " -type f -name '*.gz' -print0 | sort -z | xargs -0 zcat | sha256sum"
} > "$work/baseline.sh"

read -r _ base_s base_kb base_cpu < <(measure baseline bash "$work/baseline.sh")
read -r _ build_s build_kb build_cpu < <(measure build "$bin" build "${args[@]}" --channel stable --sequence 1 --expires 30d \
  --key "$work/keys/kit.key" -o "$work/kit.tar.zst" --created 2026-11-01T00:00:00Z)
read -r _ verify_s verify_kb verify_cpu < <(measure verify "$bin" inspect "$work/kit.tar.zst" --key "$work/keys/kit.pub")
input_bytes=$(find "${inputs[@]}" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
kit_bytes=$(stat -c %s "$work/kit.tar.zst")

awk -v b="$base_s" -v bk="$base_kb" -v t="$build_s" -v tk="$build_kb" -v v="$verify_s" -v vk="$verify_kb" \
    -v bc="$base_cpu" -v tc="$build_cpu" -v vc="$verify_cpu" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
    -v ib="$input_bytes" -v kb="$kit_bytes" 'BEGIN {
  printf "load average at the end: %s (other jobs inflate wall times; CPU times are steadier)\n", load
  printf "baseline (read + sha256 inputs, gunzip EPSS): %.2f s wall, %.2f s CPU, peak RSS %.1f MiB\n", b, bc, bk/1024
  printf "stella-kit build (full corpus):             %.2f s wall, %.2f s CPU, peak RSS %.1f MiB  (%.1fx baseline wall, %.1fx baseline CPU)\n", t, tc, tk/1024, (b > 0 ? t/b : 0), (bc > 0 ? tc/bc : 0)
  printf "stella-kit inspect (verify_kit):           %.2f s wall, %.2f s CPU, peak RSS %.1f MiB  (%.1fx baseline wall, %.1fx baseline CPU)\n", v, vc, vk/1024, (b > 0 ? v/b : 0), (bc > 0 ? vc/bc : 0)
  printf "inputs %.1f MiB on disk -> kit %.2f MiB (%.1f%% of inputs)\n", ib/1048576, kb/1048576, 100*kb/ib
  printf "targets: build <= 30 s: %s; peak RSS <= 512 MiB: %s\n", (t <= 30 ? "met" : "MISSED"), (tk/1024 <= 512 ? "met" : "MISSED")
}'
