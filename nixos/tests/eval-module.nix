# Evaluates ../module.nix and ../appliance.nix with the stub lib and pkgs (no nixpkgs needed) and
# checks what they generate: the hardening of the unit, the firewall, the HSM plumbing per
# backend, the first-boot unit, the stella.toml settings. `nixos/check` runs
#   nix-instantiate --eval --strict --json nixos/tests/eval-module.nix
# and fails when `failed` is not empty. `settings` is compared with the test ISO's configuration.
let
  lib = import ./stub-lib.nix;
  pkgs = import ./stub-pkgs.nix;
  defaults = builtins.fromJSON (builtins.readFile ../appliance.json);
  stellaPackage = { outPath = "/nix/store/00000000000000000000000000000000-stella"; version = "0.1.0"; };
  # The public key of tests/data/kit (its base64 line), as the boot test's ISO trusts it.
  testKey = builtins.elemAt (builtins.filter (line: line != "" && builtins.substring 0 9 line != "untrusted")
    (builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile ../../tests/data/kit/test-kit.pub)))) 0;

  inherit (import ./stub-eval.nix) evalModule;

  enabled = extra: evalModule ({ enable = true; package = stellaPackage; } // extra);
  plain = enabled { kits.trustedKeys = [ testKey ]; };
  pkcs11 = enabled { hsm = { backend = "pkcs11"; pkcs11Module = "/run/current-system/sw/lib/opensc-pkcs11.so"; pinFile = "/var/lib/stella/hsm.pin"; }; };
  pkcs11Direct = enabled { hsm = { backend = "pkcs11"; pkcs11Module = "/lib/x.so"; pinFile = "/x"; devices = [ "char-usb_device" ]; }; };
  pkcs11Incomplete = enabled { hsm.backend = "pkcs11"; };
  yubihsm = enabled { hsm = { backend = "yubihsm"; pinFile = "/var/lib/stella/yubihsm.password"; }; registries = [ "192.0.2.10" ]; };
  disabled = evalModule { };

  unit = result: result.systemd.services.stella.serviceConfig;
  settingsOf = result: (builtins.head (builtins.filter (p: p ? value) [ result._options.configFile ])).value;
  allTrue = builtins.all (assertion: assertion.assertion);

  appliance = import ../appliance.nix {
    config = { services.stella = { dataDir = defaults.dataDir; kits.watchDir = defaults.kitWatchDir; }; };
    inherit lib pkgs;
  };
  installed = import ../installed.nix { inherit lib; };

  checks = {
    "defaults come from appliance.json" =
      plain._options.port == defaults.port && plain._options.dataDir == defaults.dataDir
      && plain._options.user == defaults.user && plain._options.kits.watchDir == defaults.kitWatchDir;
    "disabled module configures nothing" = builtins.removeAttrs disabled [ "_options" ] == { };
    "dedicated system user" = plain.users.users.stella.isSystemUser && unit plain ? User && (unit plain).User == "stella";
    "fixed uid and gid (the data partition outlives the image)" =
      plain.users.users.stella.uid == defaults.uid && plain.users.groups.stella.gid == defaults.gid;
    "ProtectSystem=strict, data dir writable" = (unit plain).ProtectSystem == "strict" && (unit plain).ReadWritePaths == [ defaults.dataDir ];
    "ProtectHome, PrivateTmp, NoNewPrivileges" = (unit plain).ProtectHome && (unit plain).PrivateTmp && (unit plain).NoNewPrivileges;
    "PrivateDevices without HSM devices" = (unit plain).PrivateDevices && (unit plain).DeviceAllow == [ ];
    "HSM devices allowed, nothing else" = !(unit pkcs11Direct).PrivateDevices && (unit pkcs11Direct).DevicePolicy == "closed"
      && (unit pkcs11Direct).DeviceAllow == [ "char-usb_device rw" ];
    "empty capability bounding set" = (unit plain).CapabilityBoundingSet == "" && (unit plain).AmbientCapabilities == "";
    "SystemCallFilter @system-service" = builtins.elem "@system-service" (unit plain).SystemCallFilter;
    "MemoryDenyWriteExecute" = (unit plain).MemoryDenyWriteExecute;
    "RestrictAddressFamilies" = (unit plain).RestrictAddressFamilies == [ "AF_UNIX" "AF_INET" "AF_INET6" ];
    "IPAddressDeny=any, allow loopback and clients" = (unit plain).IPAddressDeny == "any"
      && builtins.elem "localhost" (unit plain).IPAddressAllow && builtins.elem "192.168.0.0/16" (unit plain).IPAddressAllow;
    "configured registries allowed" = builtins.elem "192.0.2.10" (unit yubihsm).IPAddressAllow
      && !(builtins.elem "192.0.2.10" (unit plain).IPAddressAllow);
    "binds only the console port" = (unit plain).SocketBindAllow == [ "tcp:${toString defaults.port}" ] && (unit plain).SocketBindDeny == "any";
    "firewall opens only the console port" = plain.networking.firewall.allowedTCPPorts == [ defaults.port ];
    "daemon stdout on the console" = (unit plain).StandardOutput == "journal+console";
    "no [hsm] section without a backend" = !(settingsOf plain ? hsm) && plain.systemd.services.stella-first-boot == { };
    "pkcs11: [hsm] section" = settingsOf pkcs11 ? hsm && (settingsOf pkcs11).hsm == {
      backend = "pkcs11"; module = "/run/current-system/sw/lib/opensc-pkcs11.so"; token = "stella"; pin_file = "/var/lib/stella/hsm.pin";
    };
    "pkcs11: pcscd on, no connector" = pkcs11.services.pcscd.enable && pkcs11.systemd.services.yubihsm-connector == { };
    "pkcs11 without module or PIN file is refused" = allTrue pkcs11.assertions && !(allTrue pkcs11Incomplete.assertions);
    "yubihsm: [hsm] section" = (settingsOf yubihsm).hsm == {
      backend = "yubihsm"; connector = "http"; url = "http://127.0.0.1:12345"; auth_key_id = 1; domain = 1; pin_file = "/var/lib/stella/yubihsm.password";
    };
    "yubihsm: connector on loopback, no pcscd" = yubihsm.systemd.services ? yubihsm-connector
      && (yubihsm.systemd.services.yubihsm-connector.serviceConfig.IPAddressAllow == [ "localhost" ])
      && yubihsm.services.pcscd.enable == { };
    "first-boot unit before the daemon, same sandbox" =
      let unitOf = pkcs11.systemd.services.stella-first-boot; in
      unitOf.before == [ "stella.service" ] && builtins.elem "stella.service" unitOf.wantedBy
      && unitOf.serviceConfig.Type == "oneshot" && unitOf.serviceConfig.CapabilityBoundingSet == ""
      && unitOf.serviceConfig.User == "stella" && unitOf.serviceConfig.StandardOutput == "journal+console";
    "first-boot runs stella hsm init through first-boot.sh" =
      let script = pkcs11.systemd.services.stella-first-boot.serviceConfig.ExecStart; in
      builtins.match ".*stella-first-boot .*stella.toml" script != null;
    "daemon needs its data partition mounted, not the kit media" =
      plain.systemd.services.stella.unitConfig.RequiresMountsFor == [ defaults.dataDir ];
    "appliance: a STELLA-KITS stick is mounted read-only on the kit folder when plugged in" =
      let kits = appliance.fileSystems.${defaults.kitWatchDir}; in
      kits.device == "/dev/disk/by-label/STELLA-KITS" && builtins.elem "ro" kits.options && builtins.elem "noauto" kits.options
      && builtins.match ".*ENV[{]SYSTEMD_WANTS[}][+]=\"run-media-kits[.]mount\".*" appliance.services.udev.extraRules != null;
    "appliance: SSH off" = appliance.services.openssh.enable == false;
    "appliance: firewall on" = appliance.networking.firewall.enable;
    "appliance: kernel sysctls from appliance.json" = appliance.boot.kernel.sysctl == defaults.sysctl;
    "appliance: data partition on the data dir" = appliance.fileSystems.${defaults.dataDir}.device == "/dev/disk/by-label/${defaults.dataLabel}";
    "appliance: no root filesystem of its own (installed.nix or iso.nix)" = !(appliance.fileSystems ? "/");
    "appliance: imports the module" = appliance.imports == [ ../module.nix ];
    "installed: read-only root" = builtins.elem "ro" installed.fileSystems."/".options && installed.imports == [ ../appliance.nix ];
    "installed: immutable /etc, users from the configuration" = installed.system.etc.overlay.enable
      && !installed.system.etc.overlay.mutable && installed.services.userborn.enable && installed.boot.initrd.systemd.enable;
    "appliance: auditd" = appliance.security.auditd.enable && appliance.security.audit.enable;
  };
in
{
  failed = builtins.filter (name: !checks.${name}) (builtins.attrNames checks);
  passed = builtins.length (builtins.filter (name: checks.${name}) (builtins.attrNames checks));
  # The daemon's settings with the test kit key trusted: nixos/check compares them with the
  # configuration images/build-test-iso writes into the test ISO.
  settings = settingsOf plain;
}
