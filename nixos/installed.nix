# The appliance installed on a disk (nixosConfigurations.appliance): the system partition is
# mounted read-only, /etc is an immutable overlay, users come from the configuration, and /var is
# in memory but for the data and log partitions of ./appliance.nix. Layout:
#   STELLA-EFI   vfat, /boot                      (boot loader, kernels)
#   STELLA-ROOT  ext4, / read-only                (the system; changed only by an update)
#   STELLA-DATA  ext4, /var/lib/stella            (see ./appliance.nix)
#   STELLA-LOG   ext4, /var/log                   (see ./appliance.nix)
{ lib, ... }:

{
  imports = [ ./appliance.nix ];

  fileSystems."/" = {
    device = "/dev/disk/by-label/STELLA-ROOT";
    fsType = "ext4";
    options = [ "ro" "nodev" ];
  };
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/STELLA-EFI";
    fsType = "vfat";
    options = [ "umask=0077" "nosuid" "nodev" "noexec" ];
  };
  fileSystems."/var" = {
    device = "none";
    fsType = "tmpfs";
    options = [ "mode=0755" "nosuid" "nodev" ];
  };
  boot.loader.grub = {
    enable = true;
    device = "nodev";
    efiSupport = true;
    efiInstallAsRemovable = true;
  };

  # Nothing writes to the root: /etc is an overlay built from the configuration, users are made
  # from it at boot (userborn), and the initrd is systemd's (which the overlay needs).
  boot.initrd.systemd.enable = true;
  system.etc.overlay = {
    enable = true;
    mutable = false;
  };
  services.userborn.enable = true;
}
