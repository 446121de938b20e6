#!/bin/sh
# First boot of the appliance (systemd unit stella-first-boot in nixos/module.nix, and the test
# ISO's init): when the configured HSM lacks any appliance key, make the keys inside it with
# `stella hsm init` (idempotent: existing keys are reused, never replaced). Prints the key
# inventory on the console either way. Usage: first-boot CONFIG_FILE
set -u
config=${1:?usage: first-boot CONFIG_FILE}
status=$(stella hsm status --config "$config" 2>&1)
code=$?
if [ "$code" -eq 0 ] && ! printf '%s\n' "$status" | grep -q MISSING; then
  echo "stella-first-boot: appliance keys present"
  printf '%s\n' "$status"
  exit 0
fi
echo "stella-first-boot: appliance keys missing: running stella hsm init"
stella hsm init --config "$config"
