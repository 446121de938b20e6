# The live ISO of the appliance (packages.x86_64-linux.iso): nixosConfigurations.appliance booted
# from a hybrid ISO (BIOS and UEFI, CD or USB stick). The system is the image's read-only Nix store
# (squashfs) under an in-memory root; the daemon's state lives only on the STELLA-DATA partition,
# which the operator creates on a disk of the machine (docs/install.md) and without which the
# daemon does not start.
{ config, lib, pkgs, modulesPath, ... }:

let
  defaults = builtins.fromJSON (builtins.readFile ./appliance.json);
in
{
  imports = [ "${modulesPath}/installer/cd-dvd/iso-image.nix" ];

  isoImage = {
    isoName = lib.mkForce "stella-appliance-${config.services.stella.package.version}-x86_64-linux.iso";
    volumeID = "STELLA";
    makeEfiBootable = true;
    makeUsbBootable = true;
    appendToMenuLabel = " Stella Ops appliance";
  };

  # The ISO brings its own root (squashfs store + tmpfs overlay) and boot loader; keep the data
  # and log partitions of the installed layout on top of it.
  fileSystems = lib.mkOverride 50 (config.lib.isoFileSystems // {
    ${config.services.stella.dataDir} = {
      device = "/dev/disk/by-label/${defaults.dataLabel}";
      fsType = "ext4";
      options = [ "nosuid" "nodev" "noexec" "x-systemd.device-timeout=30s" ];
    };
    "/var/log" = {
      device = "/dev/disk/by-label/STELLA-LOG";
      fsType = "ext4";
      options = [ "nosuid" "nodev" "noexec" "nofail" "x-systemd.device-timeout=30s" ];
    };
  });
  boot.loader.grub.enable = lib.mkForce false;
  # The live system's /etc and users come from the ISO's activation (its root is in memory).
  system.etc.overlay.enable = lib.mkForce false;
  services.userborn.enable = lib.mkForce false;
  boot.initrd.systemd.enable = lib.mkForce false;
}
