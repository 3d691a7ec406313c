# services.picomon: picomon (under its watchdog by default) as a hardened
# systemd service, configured from free-form `settings` that are checked
# with `picomon check-config` when the system is built, and with their
# secrets before the service starts and before it reloads.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.picomon;
  settingsFormat = pkgs.formats.toml { };

  secrets = import ./secrets.nix { inherit lib; } cfg.settings;
  mainFile = settingsFormat.generate "picomon.toml" secrets.settings;

  # Validated again where the secrets are, before start and before a
  # reload (a configuration picomon would refuse is then refused by
  # systemctl, as dist/systemd's units do).
  checkConfig = "${cfg.package}/bin/picomon check-config -c /etc/picomon.toml";
  # systemd may hide credentials from ExecReload (252 does: tried, there
  # /run/credentials is an empty, inaccessible directory, even for a "+"
  # command), so with credentials the reload checks everything but the
  # secret files. It misses nothing of theirs: a reload cannot change
  # them (credentials are loaded at start, and picomon reads the same
  # copies again), and naming another one changes the unit, so the switch
  # restarts picomon, and ExecStartPre checks it with its secrets.
  checkConfigOnReload =
    if secrets.loadCredential == [ ] then
      checkConfig
    else
      "${cfg.package}/bin/picomon check-config --no-secrets -c /etc/picomon.toml";

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

  # /etc/picomon.toml and /etc/picomon.d/, validated at build time as far
  # as they can be without their secrets (secret files, environmentFile),
  # which only exist at run time: ExecStartPre checks them all.
  configDir =
    pkgs.runCommand "picomon-config"
      {
        nativeBuildInputs = [ cfg.package ];
        main = mainFile;
      }
      ''
        mkdir -p $out/picomon.d
        cp "$main" $out/picomon.toml
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
        give passwords with `environmentFile` or in files outside the
        store, named by `emails.smtp_password_file`,
        `notify.<name>.password_file`, `notify.<name>.bearer_token_file`,
        `checks.<name>.tls_auth`, `checks.<name>.tls_crypt` or
        `checks.<name>.token_file` (a push check's token) as strings
        such as `"/run/secrets/smtp"` (a path literal such as `./secret`
        would copy the secret into the store, and is refused). Each such
        file may be readable by root only: it is passed to the service as
        a systemd credential (LoadCredential=, loaded when the service
        starts, so a changed secret needs `systemctl restart picomon`), and
        /etc/picomon.toml names the credential's copy under
        /run/credentials/picomon.service/.
      '';
      example = lib.literalExpression ''
        {
          base_tick = 60;
          emails.to = [ "ops@example.org" ];
          emails.smtp_host = "mail.example.org:587";
          emails.smtp_security = "starttls";
          emails.smtp_user = "picomon";
          emails.smtp_password_file = "/run/secrets/smtp";
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
        name without store hash, ".toml" added if missing). They are in
        the store and read by the service's own user: secret files belong
        in `settings`, which passes them as credentials.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/secrets/picomon.env";
      description = ''
        A file of `NAME=value` lines for the service's environment, for
        secrets such as `PICOMON_EMAILS__SMTP_PASSWORD`, read by systemd
        (as root) when the service starts. Must not be in the Nix store:
        give it as a string, not a path literal.
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
        assertion = cfg.environmentFile == null || !(secrets.inStore cfg.environmentFile);
        message = "services.picomon.environmentFile must not be in the Nix store, where everyone can read it, nor a path literal such as ./picomon.env, which a flake puts there: give the path as a string, e.g. \"/run/secrets/picomon.env\".";
      }
      {
        assertion = !(cfg.settings ? emails && cfg.settings.emails ? smtp_password);
        message = "services.picomon.settings.emails.smtp_password would be readable by everyone in the Nix store: use environmentFile (PICOMON_EMAILS__SMTP_PASSWORD) or emails.smtp_password_file.";
      }
    ]
    # One per secret file in the store, naming its key.
    ++ map (option: {
      assertion = false;
      message = "${option} must not be in the Nix store, where everyone can read it (a path literal such as ./secret is copied there): give the path as a string, e.g. \"/run/secrets/picomon\".";
    }) secrets.published;

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
        "man:picomon-watchdog(1)"
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
        ExecStartPre = checkConfig;
        ExecStart = "${cfg.package}/bin/${program} -c /etc/picomon.toml";
        ExecReload = [
          checkConfigOnReload
          "${pkgs.coreutils}/bin/kill -HUP $MAINPID"
        ];
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;
        # A change of this list changes the unit, so switching to it
        # restarts picomon (credentials are loaded at start), where a
        # change of the configuration alone reloads it.
        LoadCredential = lib.mkIf (secrets.loadCredential != [ ]) secrets.loadCredential;

        DynamicUser = true;
        StateDirectory = "picomon";
        ReadWritePaths = lib.optional (
          cfg.settings.state_dir != "/var/lib/picomon"
        ) cfg.settings.state_dir;
      };
    };
  };
}
