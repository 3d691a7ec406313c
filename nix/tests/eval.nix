# Evaluates nix/module.nix with nixpkgs' lib.evalModules, the way a NixOS
# system would, but against stand-ins for the few NixOS options it sets
# and the few packages it names, so that it runs without nixpkgs itself:
#
#   nix-instantiate --eval --strict nix/tests/eval.nix --arg lib 'import /path/to/nixpkgs/lib'
#
# It returns the checked facts, or throws naming the first that failed.
{ lib }:

let
  storePath = name: "/nix/store/00000000000000000000000000000000-${name}";

  # What nixpkgs' pkgs.formats.toml gives: a type of TOML values and a
  # generator (JSON is a subset of the TOML picomon would get, enough here).
  tomlFormat = _: {
    type =
      let
        valueType =
          with lib.types;
          nullOr (oneOf [
            bool
            int
            float
            str
            path
            (attrsOf valueType)
            (listOf valueType)
          ])
          // {
            description = "TOML value";
          };
      in
      lib.types.attrsOf valueType;
    generate = name: value: builtins.toFile name (builtins.toJSON value);
  };

  pkgs = {
    formats.toml = tomlFormat;
    runCommand = name: _env: _script: storePath name;
    monitoring-plugins = storePath "monitoring-plugins";
    iputils = storePath "iputils";
    dnsutils = storePath "dnsutils";
    coreutils = storePath "coreutils";
    picomon = storePath "picomon";
  };

  # The NixOS options the module defines values for.
  nixosOptions =
    { lib, ... }:
    with lib;
    {
      options = {
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        environment.etc = mkOption {
          type = types.attrsOf (types.submodule { options.source = mkOption { type = types.str; }; });
          default = { };
        };
        environment.systemPackages = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        systemd.services = mkOption {
          type = types.attrsOf (
            types.submodule {
              freeformType = types.attrsOf types.anything;
              options.serviceConfig = mkOption {
                type = types.attrsOf types.anything;
                default = { };
              };
            }
          );
          default = { };
        };
      };
    };

  eval =
    picomon:
    (lib.evalModules {
      modules = [
        nixosOptions
        ../module.nix
        { _module.args.pkgs = pkgs; }
        { services.picomon = picomon; }
      ];
    }).config;

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  settings = {
    emails.to = [ "ops@example.org" ];
    hosts.web.ipv4 = "192.0.2.10";
    checks.homepage = {
      type = "https";
      hosts = [ "web" ];
    };
  };

  basic = eval {
    enable = true;
    inherit settings;
  };
  service = basic.systemd.services.picomon;
  sc = service.serviceConfig;

  noWatchdog = eval {
    enable = true;
    watchdog = false;
    inherit settings;
    environmentFile = "/run/secrets/picomon.env";
  };

  storeSecret = eval {
    enable = true;
    inherit settings;
    environmentFile = "${storePath "secrets"}/picomon.env";
  };

  passwordInSettings = eval {
    enable = true;
    settings = settings // {
      emails = settings.emails // {
        smtp_password = "s3cret";
      };
    };
  };

  disabled = eval { enable = false; };

  facts = {
    "ExecStart runs the watchdog by default" =
      sc.ExecStart == "${storePath "picomon"}/bin/picomon-watchdog -c /etc/picomon.toml";
    "watchdog = false runs picomon itself" =
      noWatchdog.systemd.services.picomon.serviceConfig.ExecStart
      == "${storePath "picomon"}/bin/picomon -c /etc/picomon.toml";
    "ExecReload sends SIGHUP" = lib.hasSuffix "kill -HUP $MAINPID" sc.ExecReload;
    "Restart on failure" = sc.Restart == "on-failure";
    "state directory" = sc.StateDirectory == "picomon" && sc.ReadWritePaths == [ ];
    "hardening" =
      sc.DynamicUser
      && sc.NoNewPrivileges
      && sc.ProtectSystem == "strict"
      && sc.ProtectHome
      && sc.PrivateTmp
      && sc.CapabilityBoundingSet == [ "CAP_NET_RAW" ]
      && sc.AmbientCapabilities == [ "CAP_NET_RAW" ]
      && sc.RestrictAddressFamilies == [
        "AF_INET"
        "AF_INET6"
        "AF_UNIX"
        "AF_NETLINK"
      ];
    "plugins on the path" = service.path == [
      pkgs.monitoring-plugins
      pkgs.iputils
      pkgs.dnsutils
    ];
    "defaults for plugin_dir and state_dir" =
      basic.services.picomon.settings.plugin_dir == "${storePath "monitoring-plugins"}/bin"
      && basic.services.picomon.settings.state_dir == "/var/lib/picomon";
    "config in /etc" =
      basic.environment.etc."picomon.toml".source == "${storePath "picomon-config"}/picomon.toml";
    "no environment file unless given" = !(sc ? EnvironmentFile);
    "environment file passed" =
      noWatchdog.systemd.services.picomon.serviceConfig.EnvironmentFile == "/run/secrets/picomon.env";
    "valid configurations pass every assertion" =
      failedAssertions basic == [ ] && failedAssertions noWatchdog == [ ];
    "an environment file in the store is refused" = lib.any (lib.hasInfix "environmentFile must not be in the Nix store") (
      failedAssertions storeSecret
    );
    "a password in settings is refused" = lib.any (lib.hasInfix "smtp_password would be readable") (
      failedAssertions passwordInSettings
    );
    "disabled means no service" = disabled.systemd.services == { };
  };

  # The flake's outputs, with a stand-in nixpkgs input.
  flake =
    let
      fakeNixpkgs = {
        inherit lib;
        legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: {
          stdenv.hostPlatform.system = system;
          callPackage = file: _: {
            inherit file;
            name = "picomon";
          };
          testers.runNixOSTest = test: { nixosTest = test; };
          mkShell = _: "shell";
          clippy = "clippy";
          rustfmt = "rustfmt";
          monitoring-plugins = "monitoring-plugins";
          openssl = "openssl";
          python3.withPackages = _: "python3";
          nixfmt-rfc-style = "nixfmt";
        });
      };
      self = (import ../../flake.nix).outputs {
        inherit self;
        nixpkgs = fakeNixpkgs;
      };
    in
    self;

  flakeFacts = {
    "flake: packages" = lib.all (
      s: flake.packages.${s}.default == flake.packages.${s}.picomon
    ) [ "x86_64-linux" "aarch64-linux" ];
    "flake: package built from nix/package.nix" =
      baseNameOf (toString flake.packages.x86_64-linux.default.file) == "package.nix";
    "flake: modules, overlay, checks, shell, formatter" =
      flake.nixosModules ? default
      && flake.nixosModules ? picomon
      && flake.overlays ? default
      && flake.checks.x86_64-linux ? package
      && flake.checks.x86_64-linux.vm ? nixosTest
      && flake.devShells.x86_64-linux ? default
      && flake.formatter.x86_64-linux == "nixfmt";
    "flake: the VM test is a function of pkgs" = builtins.isFunction flake.checks.x86_64-linux.vm.nixosTest;
  };

  allFacts = facts // flakeFacts;
  failed = lib.attrNames (lib.filterAttrs (_: ok: !ok) allFacts);
in
if failed == [ ] then
  lib.attrNames allFacts
else
  throw "nix/module.nix: failed: ${lib.concatStringsSep "; " failed}"
