# The appliance system shared by the disk install (./installed.nix, nixosConfigurations.appliance)
# and the live ISO (./iso.nix): services.stella, no SSH, a firewall with only the console port,
# kernel hardening, auditd, and the partitions that hold all state:
#   STELLA-DATA  ext4, mounted at /var/lib/stella  (every store and key of the daemon)
#   STELLA-LOG   ext4, mounted at /var/log         (journal and audit log; optional)
{ config, lib, pkgs, ... }:

let
  defaults = builtins.fromJSON (builtins.readFile ./appliance.json);
  data = {
    device = "/dev/disk/by-label/${defaults.dataLabel}";
    fsType = "ext4";
    options = [ "nosuid" "nodev" "noexec" "x-systemd.device-timeout=30s" ];
  };
  kitsLabel = defaults.kitsLabel;
  # systemd's name for the mount unit of the kit folder (/run/media/kits -> run-media-kits.mount).
  watchDir = config.services.stella.kits.watchDir;
  kitsMountUnit = builtins.replaceStrings [ "/" ] [ "-" ]
    (builtins.substring 1 (builtins.stringLength watchDir - 1) watchDir) + ".mount";
in
{
  imports = [ ./module.nix ];

  system.stateVersion = "25.11";
  networking.hostName = lib.mkDefault "stella";

  services.stella.enable = true;

  # --- State: the data partition (and the log partition) ------------------------------------------
  # The root filesystem comes from ./installed.nix (disk install) or ./iso.nix (live image).
  fileSystems.${config.services.stella.dataDir} = data;
  fileSystems."/var/log" = {
    device = "/dev/disk/by-label/STELLA-LOG";
    fsType = "ext4";
    options = [ "nosuid" "nodev" "noexec" "nofail" "x-systemd.device-timeout=30s" ];
  };
  boot.tmp.useTmpfs = true;
  nix.enable = false;

  # --- Kits on removable media ----------------------------------------------------------------------
  # A USB stick labelled STELLA-KITS is mounted read-only on the daemon's kit folder when it is
  # plugged in (udev asks systemd for the mount unit) and unmounted when it is pulled; the daemon
  # imports each new kit it finds there (docs/importing.md).
  fileSystems.${config.services.stella.kits.watchDir} = {
    device = "/dev/disk/by-label/${kitsLabel}";
    fsType = "auto";
    options = [ "ro" "nosuid" "nodev" "noexec" "noauto" "nofail" ];
  };
  services.udev.extraRules = ''
    ENV{ID_FS_LABEL}=="${kitsLabel}", ENV{SYSTEMD_WANTS}+="${kitsMountUnit}"
  '';

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
