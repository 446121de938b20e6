# The appliance host (nixosConfigurations.appliance): services.stella on a hardened, read-only
# system whose only state is the data partition. Installed layout (docs/install.md):
#   STELLA-ROOT  ext4, mounted read-only at /      (the system; changed only by an image update)
#   STELLA-DATA  ext4, mounted at /var/lib/stella  (every store and key of the daemon)
#   STELLA-LOG   ext4, mounted at /var/log         (journal and audit log)
# The live ISO (./iso.nix) replaces the root with the image's read-only store.
{ config, lib, pkgs, ... }:

let
  defaults = builtins.fromJSON (builtins.readFile ./appliance.json);
  data = {
    device = "/dev/disk/by-label/${defaults.dataLabel}";
    fsType = "ext4";
    options = [ "nosuid" "nodev" "noexec" "x-systemd.device-timeout=30s" ];
  };
in
{
  imports = [ ./module.nix ];

  system.stateVersion = "25.11";
  networking.hostName = lib.mkDefault "stella";

  services.stella.enable = true;

  # --- Read-only root, state on the data partition -------------------------------------------------
  fileSystems."/" = {
    device = "/dev/disk/by-label/STELLA-ROOT";
    fsType = "ext4";
    options = [ "ro" "nodev" ];
  };
  fileSystems.${config.services.stella.dataDir} = data;
  fileSystems."/var/log" = {
    device = "/dev/disk/by-label/STELLA-LOG";
    fsType = "ext4";
    options = [ "nosuid" "nodev" "noexec" "nofail" "x-systemd.device-timeout=30s" ];
  };
  # /etc as an immutable overlay and users from the configuration: nothing writes to the root.
  boot.initrd.systemd.enable = true;
  system.etc.overlay = {
    enable = true;
    mutable = false;
  };
  services.userborn.enable = true;
  boot.tmp.useTmpfs = true;
  fileSystems."/var" = lib.mkDefault {
    device = "none";
    fsType = "tmpfs";
    options = [ "mode=0755" "nosuid" "nodev" ];
  };
  boot.loader.grub = {
    enable = lib.mkDefault true;
    device = lib.mkDefault "nodev";
    efiSupport = lib.mkDefault true;
    efiInstallAsRemovable = lib.mkDefault true;
  };
  fileSystems."/boot" = lib.mkDefault {
    device = "/dev/disk/by-label/STELLA-EFI";
    fsType = "vfat";
    options = [ "umask=0077" ];
  };
  nix.enable = false;

  # --- Remote access: the console port only ---------------------------------------------------------
  services.openssh.enable = lib.mkDefault false;
  networking.firewall = {
    enable = true;
    allowPing = false;
    logRefusedConnections = true;
  };
  networking.useDHCP = lib.mkDefault true;

  # --- Kernel and system hardening ------------------------------------------------------------------
  boot.kernel.sysctl = defaults.sysctl;
  boot.kernelParams = [
    "slab_nomerge"
    "init_on_alloc=1"
    "init_on_free=1"
    "page_alloc.shuffle=1"
    "randomize_kstack_offset=on"
    "vsyscall=none"
    "debugfs=off"
    "lockdown=integrity"
  ];
  boot.blacklistedKernelModules = [ "dccp" "sctp" "rds" "tipc" "firewire-core" "thunderbolt" "bluetooth" ];
  security.protectKernelImage = true;
  security.sudo.enable = false;
  users.mutableUsers = false;
  # No local login by default: the appliance is run from its console (HTTPS). A site that wants
  # a recovery shell on the local console sets users.users.root.hashedPassword in its own module.
  users.users.root.hashedPassword = lib.mkDefault "!";
  environment.defaultPackages = lib.mkForce [ ];
  documentation.enable = false;

  # --- Audit ----------------------------------------------------------------------------------------
  security.auditd.enable = true;
  security.audit = {
    enable = true;
    failureMode = "printk";
    rules = [
      "-w /etc/stella/ -p wa -k stella-config"
      "-w ${config.services.stella.dataDir}/tls/ -p wa -k stella-keys"
      "-w ${config.services.stella.dataDir}/authority/ -p wa -k stella-keys"
      "-a always,exit -F arch=b64 -S execve -F euid=0 -k root-exec"
      "-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules"
      "-a always,exit -F arch=b64 -S mount,umount2 -k mounts"
    ];
  };
  services.journald.extraConfig = ''
    Storage=auto
    ForwardToConsole=no
  '';
}
