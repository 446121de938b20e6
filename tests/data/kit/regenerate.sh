#!/usr/bin/env bash
# Rebuilds subset-kit-1.tar.zst (+ .minisig) from tests/data/sources with the committed TEST key.
# The golden test (kit-builder/tests/golden_kit.rs) fails when the output changes: rerun this
# script after an intended format change and commit the result.
set -euo pipefail
cd "$(dirname "$0")/../../.."
s=tests/data/sources
cargo run -q -p stella-kit-builder --bin stella-kit -- build \
  --channel stable --sequence 1 --created 2026-11-01T00:00:00Z --expires 2036-11-01T00:00:00Z \
  --key tests/data/kit/test-kit.key -o tests/data/kit/subset-kit-1.tar.zst \
  --source osv=$s/osv --source nodejs-security-wg=$s/nodejs --source nvd=$s/nvd/nvdcve-2.0-sample.json \
  --source debian-dsa=$s/debian/DSA/list --source debian-dla=$s/debian/DLA/list \
  --source debian-json=$s/debian-json/tracker-sample.json --source alpine-secdb=$s/alpine \
  --source kev=$s/kev/known_exploited_vulnerabilities.json --source epss=$s/epss/epss-semicolon.csv \
  --source openvex=$s/openvex --source csaf=$s/csaf --source cyclonedx-vex=$s/cyclonedx-vex
