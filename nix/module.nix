# services.picomon: picomon (under its watchdog by default) as a hardened
# systemd service, configured from free-form `settings` that are checked
# with `picomon check-config` when the system is built.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.picomon;
  settingsFormat = pkgs.formats.toml { };

  mainFile = settingsFormat.generate "picomon.toml" cfg.settings;

  # /etc/picomon.toml and /etc/picomon.d/, validated at build time. Secrets
  # (smtp_password_file, environmentFile) only exist at run time.
  configDir =
    pkgs.runCommand "picomon-config"
      {
        nativeBuildInputs = [ cfg.package ];
      }
      ''
        mkdir -p $out/picomon.d
        cp ${mainFile} $out/picomon.toml
        ${lib.concatImapStringsSep "\n" (
          i: file: "cp ${file} $out/picomon.d/${lib.fixedWidthNumber 3 i}-${baseNameOf (toString file)}"
        ) cfg.extraConfigFiles}
        picomon check-config --no-secrets -c $out/picomon.toml
      '';

  program = if cfg.watchdog then "picomon-watchdog" else "picomon";
in
{
  options.services.picomon = {
    enable = lib.mkEnableOption "picomon, a very small alerting daemon";

    package = lib.mkPackageOption pkgs "picomon" { };

    settings = lib.mkOption {
      type = settingsFormat.type;
      default = { };
      description = ''
        picomon's configuration, written to /etc/picomon.toml: every key of
        picomon.toml(5). It ends up in the Nix store, readable by everyone:
        give passwords with `environmentFile` or `emails.smtp_password_file`.
      '';
      example = lib.literalExpression ''
        {
          base_tick = 60;
          emails.to = [ "ops@example.org" ];
          emails.smtp_host = "mail.example.org:587";
          emails.smtp_security = "starttls";
          emails.smtp_user = "picomon";
          hosts.web = { ipv4 = "192.0.2.10"; name = "front web server"; };
          checks.homepage = { type = "https"; hosts = [ "web" ]; vhost = "www.example.org"; };
        }
      '';
    };

    extraConfigFiles = lib.mkOption {
      type = lib.types.listOf lib.types.path;
      default = [ ];
      description = ''
        More TOML fragments, merged after `settings` in this order (as
        /etc/picomon.d/NNN-NAME), e.g. checks contributed by other modules.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/picomon.env";
      description = ''
        A file of `NAME=value` lines for the service's environment, for
        secrets such as `PICOMON_EMAILS__SMTP_PASSWORD`. Must not be in the
        Nix store.
      '';
    };

    watchdog = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Run picomon under picomon-watchdog, which mails when picomon exits
        or hangs and starts it again.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion =
          cfg.environmentFile == null || !(lib.hasPrefix builtins.storeDir (toString cfg.environmentFile));
        message = "services.picomon.environmentFile must not be in the Nix store, where everyone can read it.";
      }
      {
        assertion = !(cfg.settings ? emails && cfg.settings.emails ? smtp_password);
        message = "services.picomon.settings.emails.smtp_password would be readable by everyone in the Nix store: use environmentFile (PICOMON_EMAILS__SMTP_PASSWORD) or emails.smtp_password_file.";
      }
    ];

    services.picomon.settings = {
      plugin_dir = lib.mkDefault "${pkgs.monitoring-plugins}/bin";
      state_dir = lib.mkDefault "/var/lib/picomon";
    };

    environment.etc."picomon.toml".source = "${configDir}/picomon.toml";
    environment.etc."picomon.d".source = "${configDir}/picomon.d";

    environment.systemPackages = [ cfg.package ];

    systemd.services.picomon = {
      description = "picomon alerting daemon";
      documentation = [
        "man:picomon(1)"
        "man:picomon.toml(5)"
      ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      path = [
        pkgs.monitoring-plugins
        pkgs.iputils
        pkgs.dnsutils
      ];
      # A new configuration is a reload (SIGHUP), not a restart: state and
      # queued mail stay in memory as well as on disk.
      reloadTriggers = [ configDir ];

      serviceConfig = {
        ExecStart = "${cfg.package}/bin/${program} -c /etc/picomon.toml";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "on-failure";
        RestartSec = 5;
        # SIGTERM to the main process only: the watchdog stops picomon.
        KillMode = "mixed";
        TimeoutStopSec = 30;
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;

        DynamicUser = true;
        StateDirectory = "picomon";
        ReadWritePaths = lib.optional (
          cfg.settings.state_dir != "/var/lib/picomon"
        ) cfg.settings.state_dir;

        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        UMask = "0077";
        # ping needs raw sockets; nothing else is granted.
        CapabilityBoundingSet = [ "CAP_NET_RAW" ];
        AmbientCapabilities = [ "CAP_NET_RAW" ];
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
          "AF_NETLINK"
        ];
      };
    };
  };
}
