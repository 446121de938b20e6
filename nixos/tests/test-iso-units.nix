# The systemd units services.stella generates, for the test ISO (images/build-test-iso renders
# them into /etc/systemd/system): the daemon's unit and, with `--arg hsm true`, the first-boot
# unit for the development key backend that images/test-hsm-dev.toml configures.
{ hsm ? false }:
let
  inherit (import ./stub-eval.nix) evalModule;
  result = evalModule ({
    enable = true;
    package = { outPath = "/nix/store/00000000000000000000000000000000-stella"; version = "0.1.0"; };
  } // (if hsm then { hsm.backend = "file"; } else { }));
in
{
  stella = result.systemd.services.stella;
} // (if hsm then { stella-first-boot = result.systemd.services.stella-first-boot; } else { })
