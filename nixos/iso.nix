# The live ISO of the appliance (packages.x86_64-linux.iso): ./appliance.nix booted from a hybrid
# ISO (BIOS and UEFI, CD or USB stick). The system is the image's read-only Nix store (squashfs)
# under an in-memory root, both from iso-image.nix; the daemon's state lives only on the
# STELLA-DATA partition of ./appliance.nix, which the operator creates on a disk of the machine
# (docs/install.md) and without which the daemon does not start.
{ config, modulesPath, ... }:

{
  imports = [
    "${modulesPath}/installer/cd-dvd/iso-image.nix"
    ./appliance.nix
  ];

  isoImage = {
    isoName = "stella-appliance-${config.services.stella.package.version}-x86_64-linux.iso";
    volumeID = "STELLA";
    makeEfiBootable = true;
    makeUsbBootable = true;
    appendToMenuLabel = " Stella Ops appliance";
  };
}
