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

  # Every extraConfigFiles entry becomes /etc/picomon.d/NNN-NAME.toml: NNN
  # keeps the order given (picomon reads the directory in lexical order),
  # NAME is the file's own name without its store hash, so an operator
  # reading /etc sees where a fragment came from, and ".toml" is added when
  # missing because picomon only reads *.toml there: a listed file is never
  # skipped.
  fragmentName =
    i: file:
    let
      base = baseNameOf (toString file);
      unhashed = builtins.match "[0-9a-df-np-sv-z]{32}-(.+)" base;
      readable = if unhashed == null then base else builtins.head unhashed;
      width = builtins.stringLength (toString (builtins.length cfg.extraConfigFiles));
    in
    "${lib.fixedWidthNumber width i}-${lib.removeSuffix ".toml" readable}.toml";
  fragments = lib.imap1 (i: file: {
    name = fragmentName i file;
    source = file;
  }) cfg.extraConfigFiles;

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
        ${lib.concatMapStringsSep "\n" (
          f: "cp ${lib.escapeShellArg "${f.source}"} $out/picomon.d/${lib.escapeShellArg f.name}"
        ) fragments}
        picomon check-config --no-secrets -c $out/picomon.toml
      '';

  program = if cfg.watchdog then "picomon-watchdog" else "picomon";
in
{
  options.services.picomon = {
    enable = lib.mkEnableOption "picomon, a very small alerting daemon";

    # Defaults to pkgs.picomon (the flake's overlay, or nixpkgs); the
    # flake's nixosModules.default sets it to the flake's own package, so
    # a system needs no overlay.
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
        More TOML fragments, merged after `settings` in this order, e.g.
        checks contributed by other modules. Each is copied to
        /etc/picomon.d/NNN-NAME.toml (NNN: its position; NAME: its file
        name without store hash, ".toml" added if missing).
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
      {
        # An Alertmanager notifier's secrets are files picomon reads at
        # start; a path into the store would publish them.
        assertion = builtins.all (
          n:
          builtins.all (k: !(n ? ${k}) || !(lib.hasPrefix builtins.storeDir (toString n.${k}))) [
            "password_file"
            "bearer_token_file"
          ]
        ) (builtins.attrValues (cfg.settings.notify or { }));
        message = "services.picomon.settings.notify.<name>.password_file and bearer_token_file must not be in the Nix store, where everyone can read them.";
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

      # Stop, restart and sandbox: nix/service.nix, shared with dist/systemd.
      serviceConfig = import ./service.nix // {
        ExecStart = "${cfg.package}/bin/${program} -c /etc/picomon.toml";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;

        DynamicUser = true;
        StateDirectory = "picomon";
        ReadWritePaths = lib.optional (
          cfg.settings.state_dir != "/var/lib/picomon"
        ) cfg.settings.state_dir;
      };
    };
  };
}
