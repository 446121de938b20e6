# services.stella: the Stella Ops appliance daemon as a hardened systemd service, its first-boot
# unit (appliance keys in the HSM) and the HSM plumbing (pcscd, yubihsm-connector, PKCS#11 module).
# Defaults come from ./appliance.json, which images/build-test-iso also reads, so the test ISO
# runs the daemon with the same port, data directory, user and kit folder.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types;
  defaults = builtins.fromJSON (builtins.readFile ./appliance.json);
  cfg = config.services.stella;
  hsm = cfg.hsm;

  # The [hsm] section, only with the keys that apply to the chosen backend (the daemon rejects
  # the others: docs/hsm.md).
  hsmSection =
    if hsm.backend == "pkcs11" then {
      backend = "pkcs11";
      module = toString hsm.pkcs11Module;
      token = hsm.token;
      pin_file = toString hsm.pinFile;
    } else if hsm.backend == "yubihsm" then {
      backend = "yubihsm";
      connector = "http";
      url = hsm.yubihsm.connectorUrl;
      auth_key_id = hsm.yubihsm.authKeyId;
      domain = hsm.yubihsm.domain;
      pin_file = toString hsm.pinFile;
    } else if hsm.backend == "file" then {
      backend = "file";
      mode = "dev";
      key_dir = "${cfg.dataDir}/dev-keys";
    } else null;

  generatedSettings = {
    server.listen = "${cfg.listenAddress}:${toString cfg.port}";
    storage.data_dir = cfg.dataDir;
    log.format = defaults.logFormat;
    kits = {
      watch_dir = cfg.kits.watchDir;
      trusted_keys = cfg.kits.trustedKeys;
    };
  } // lib.optionalAttrs (hsmSection != null) { hsm = hsmSection; };

  settings = lib.recursiveUpdate generatedSettings cfg.settings;
  configFile = (pkgs.formats.toml { }).generate "stella.toml" settings;

  firstBoot = pkgs.writeShellScript "stella-first-boot" ''
    export PATH=${lib.makeBinPath [ cfg.package pkgs.coreutils pkgs.gnugrep ]}
    exec ${pkgs.runtimeShell} ${./first-boot.sh} "$@"
  '';

  # The sandbox shared by the daemon and the first-boot unit.
  hardening = {
    User = cfg.user;
    Group = cfg.group;
    UMask = "0077";
    ProtectSystem = "strict";
    ReadWritePaths = [ cfg.dataDir ];
    ProtectHome = true;
    PrivateTmp = true;
    # No device nodes but the HSM's: with hsm.devices empty the HSM is reached through pcscd's
    # socket or yubihsm-connector on loopback, never directly.
    PrivateDevices = hsm.devices == [ ];
    DevicePolicy = "closed";
    DeviceAllow = map (device: "${device} rw") hsm.devices;
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    SystemCallFilter = [ "@system-service" "~@privileged" ];
    SystemCallArchitectures = "native";
    SystemCallErrorNumber = "EPERM";
    MemoryDenyWriteExecute = true;
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    RemoveIPC = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectControlGroups = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    KeyringMode = "private";
    LimitCORE = 0;
    # Network: nothing but loopback (pcscd, yubihsm-connector), the console's clients and the
    # configured registries; the only port the daemon may bind is the console port.
    IPAddressDeny = "any";
    IPAddressAllow = [ "localhost" ] ++ cfg.allowedClients ++ cfg.registries;
    SocketBindAllow = [ "tcp:${toString cfg.port}" ];
    SocketBindDeny = "any";
  };
in
{
  options.services.stella = {
    enable = mkEnableOption "the Stella Ops appliance daemon (stella serve)";

    package = mkOption {
      type = types.package;
      description = "The package providing bin/stella.";
    };

    user = mkOption {
      type = types.str;
      default = defaults.user;
      description = "Dedicated system user the daemon runs as.";
    };

    group = mkOption {
      type = types.str;
      default = defaults.group;
      description = "Group of the daemon's user.";
    };

    uid = mkOption {
      type = types.ints.u16;
      default = defaults.uid;
      description = "Fixed uid of the daemon's user: the data partition outlives every image, so its owner must not change between releases.";
    };

    gid = mkOption {
      type = types.ints.u16;
      default = defaults.gid;
      description = "Fixed gid of the daemon's group.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "0.0.0.0";
      description = "Address of the console and API (HTTPS only off loopback).";
    };

    port = mkOption {
      type = types.port;
      default = defaults.port;
      description = "Port of the console and API; the only port the firewall opens.";
    };

    dataDir = mkOption {
      type = types.str;
      default = defaults.dataDir;
      description = "Data directory: every store, the TLS and token-signing keys. The appliance mounts its data partition here.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = true;
      description = "Open the console port (and nothing else) in the firewall.";
    };

    allowedClients = mkOption {
      type = types.listOf types.str;
      default = [ "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" "fc00::/7" "fe80::/10" ];
      example = [ "192.0.2.0/24" ];
      description = "Addresses (IPAddressAllow syntax) that may talk to the console port; every other address is denied to the daemon in both directions.";
    };

    registries = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "192.0.2.10" ];
      description = "Addresses of the container registries the daemon may pull images from (IPAddressAllow). Empty: the appliance reaches no registry (offline).";
    };

    kits = {
      trustedKeys = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Minisign public keys trusted to sign offline kits ([kits] trusted_keys): the base64 line or a path to a .pub file.";
      };
      watchDir = mkOption {
        type = types.str;
        default = defaults.kitWatchDir;
        description = "Folder the daemon imports new kits from (the mount point of removable media).";
      };
    };

    hsm = {
      backend = mkOption {
        type = types.nullOr (types.enum [ "pkcs11" "yubihsm" "file" ]);
        default = null;
        description = "Where the appliance keys live ([hsm] backend). null: no [hsm] section; the appliance signs nothing. \"file\" is for development only (every signature is marked dev-signed).";
      };
      pkcs11Module = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = lib.literalExpression ''"''${pkgs.opensc}/lib/opensc-pkcs11.so"'';
        description = "Path of the PKCS#11 module ([hsm] module) for backend pkcs11.";
      };
      token = mkOption {
        type = types.str;
        default = "stella";
        description = "PKCS#11 token label ([hsm] token).";
      };
      pinFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/var/lib/stella/hsm.pin";
        description = "File holding the PKCS#11 user PIN or the YubiHSM authentication-key password ([hsm] pin_file); readable by the daemon's user only. Keep it off the Nix store.";
      };
      pcscd.enable = mkOption {
        type = types.bool;
        default = hsm.backend == "pkcs11";
        defaultText = lib.literalExpression ''config.services.stella.hsm.backend == "pkcs11"'';
        description = "Run pcscd for smart-card HSMs (the PKCS#11 module talks to it over its socket).";
      };
      yubihsm = {
        connector.enable = mkOption {
          type = types.bool;
          default = hsm.backend == "yubihsm";
          defaultText = lib.literalExpression ''config.services.stella.hsm.backend == "yubihsm"'';
          description = "Run yubihsm-connector on loopback, with access to the YubiHSM 2 over USB.";
        };
        connectorUrl = mkOption {
          type = types.str;
          default = "http://127.0.0.1:12345";
          description = "URL of yubihsm-connector ([hsm] url).";
        };
        authKeyId = mkOption {
          type = types.ints.u16;
          default = 1;
          description = "Object id of the YubiHSM authentication key ([hsm] auth_key_id).";
        };
        domain = mkOption {
          type = types.ints.between 1 16;
          default = 1;
          description = "YubiHSM domain of the appliance keys ([hsm] domain).";
        };
      };
      devices = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "char-usb_device" ];
        description = "Device nodes or classes (DeviceAllow syntax) the daemon may open directly, for an HSM its PKCS#11 module drives without pcscd. Non-empty turns PrivateDevices off and allows exactly these.";
      };
    };

    firstBoot.enable = mkOption {
      type = types.bool;
      default = hsm.backend != null;
      defaultText = lib.literalExpression "config.services.stella.hsm.backend != null";
      description = "Before the daemon starts, run `stella hsm init` when the HSM lacks any appliance key, and show the key inventory on the console.";
    };

    settings = mkOption {
      type = (pkgs.formats.toml { }).type;
      default = { };
      example = { auth.token_lifetime_secs = 120; kits.stale_after_days = 3; };
      description = "More stella.toml settings (docs/configuration.md), merged over the generated ones.";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = "the generated stella.toml";
      description = "The configuration file the daemon runs with.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = hsm.backend != "pkcs11" || (hsm.pkcs11Module != null && hsm.pinFile != null);
        message = "services.stella.hsm: backend pkcs11 needs pkcs11Module and pinFile";
      }
      {
        assertion = hsm.backend != "yubihsm" || hsm.pinFile != null;
        message = "services.stella.hsm: backend yubihsm needs pinFile";
      }
    ];

    users.users.${cfg.user} = {
      isSystemUser = true;
      uid = cfg.uid;
      group = cfg.group;
      home = cfg.dataDir;
      description = "Stella Ops appliance daemon";
    };
    users.groups.${cfg.group}.gid = cfg.gid;

    environment.etc."stella/stella.toml".source = configFile;
    environment.systemPackages = [ cfg.package ];

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ cfg.port ];

    systemd.tmpfiles.rules = [
      "d ${cfg.dataDir} 0750 ${cfg.user} ${cfg.group} -"
      "d ${cfg.kits.watchDir} 0755 root root -"
    ];

    services.pcscd.enable = mkIf hsm.pcscd.enable true;

    services.udev.extraRules = mkIf hsm.yubihsm.connector.enable ''
      # YubiHSM 2: only yubihsm-connector may open it.
      SUBSYSTEM=="usb", ATTRS{idVendor}=="1050", ATTRS{idProduct}=="0030", OWNER="yubihsm-connector", MODE="0600"
    '';
    users.users.yubihsm-connector = mkIf hsm.yubihsm.connector.enable {
      isSystemUser = true;
      group = "yubihsm-connector";
    };
    users.groups.yubihsm-connector = mkIf hsm.yubihsm.connector.enable { };
    systemd.services.yubihsm-connector = mkIf hsm.yubihsm.connector.enable {
      description = "YubiHSM 2 connector (loopback only)";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {
        ExecStart = "${pkgs.yubihsm-connector}/bin/yubihsm-connector --listen 127.0.0.1:12345";
        User = "yubihsm-connector";
        Group = "yubihsm-connector";
        DevicePolicy = "closed";
        DeviceAllow = [ "char-usb_device rw" ];
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        IPAddressDeny = "any";
        IPAddressAllow = [ "localhost" ];
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        SystemCallFilter = [ "@system-service" ];
        MemoryDenyWriteExecute = true;
        Restart = "on-failure";
      };
    };

    systemd.services.stella-first-boot = mkIf cfg.firstBoot.enable {
      description = "Stella Ops appliance keys (stella hsm init when missing)";
      # Ordered before the daemon, not required by it: without its HSM the daemon still scans
      # and imports, and /readyz says what is missing (docs/hsm.md).
      wantedBy = [ "multi-user.target" "stella.service" ];
      before = [ "stella.service" ];
      after = [ "pcscd.service" "yubihsm-connector.service" ];
      unitConfig.RequiresMountsFor = [ cfg.dataDir ];
      serviceConfig = hardening // {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${firstBoot} ${configFile}";
        StandardOutput = "journal+console";
        # Creating keys may take minutes on a slow token.
        TimeoutStartSec = "10min";
      };
    };

    systemd.services.stella = {
      description = "Stella Ops appliance daemon";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" "pcscd.service" "yubihsm-connector.service" ];
      # Not the kit folder: removable media come and go while the daemon runs.
      unitConfig.RequiresMountsFor = [ cfg.dataDir ];
      # No STELLA_* variables: the configuration file alone decides.
      environment = { };
      serviceConfig = hardening // {
        ExecStart = "${cfg.package}/bin/stella serve --config ${configFile}";
        WorkingDirectory = cfg.dataDir;
        # stdout carries the listening line, the TLS fingerprint and, on first start, the
        # bootstrap admin password: the operator reads them on the console.
        StandardOutput = "journal+console";
        StandardError = "journal";
        Restart = "on-failure";
        RestartSec = "5s";
        TimeoutStopSec = "60s";
      };
    };
  };
}
