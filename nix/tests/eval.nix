# Evaluates the flake, the NixOS module and the VM test's node the way
# NixOS does, without nixpkgs: `lib` is nix/tests/lib.nix (our own module
# system) unless the real nixpkgs lib is given, and the NixOS options the
# module touches are stand-ins written after nixpkgs' own definitions
# (types, read-only nixpkgs.* of test nodes, mkPackageOption). It also
# holds dist/systemd's units to nix/service.nix.
#
#   nix-instantiate --eval --strict nix/tests/eval.nix                       # as CI runs it
#   nix-instantiate --eval --strict nix/tests/eval.nix --arg lib 'import /path/to/nixpkgs/lib'
#
# It returns the names of the facts that hold, or throws naming those that
# do not; an error inside the module system (an option defined twice, a
# wrong type, an undeclared option) stops it with that error.
{
  lib ? import ./lib.nix,
}:

let
  inherit (lib) types mkOption;

  hash = "00000000000000000000000000000000";
  drv = name: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${hash}-${name}";
  };
  # A build's output path changes with what it is built from.
  built =
    name: from:
    drv name
    // {
      outPath = "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" from)}-${name}";
    };

  # Stand-in for the host's nixpkgs. It has no `picomon`: the module must
  # find its package without an overlay.
  hostPkgs = {
    _type = "pkgs";
    config = { };
    overlays = [ ];
    stdenv.hostPlatform.system = "x86_64-linux";
    stdenv.buildPlatform.system = "x86_64-linux";
    __splicedPackages = hostPkgs;

    # pkgs.formats.toml: TOML has no null, so its type has none either.
    formats.toml = _: {
      type =
        let
          valueType =
            types.oneOf [
              types.bool
              types.int
              types.float
              types.str
              types.path
              (types.attrsOf valueType)
              (types.listOf valueType)
            ]
            // {
              description = "TOML value";
            };
        in
        valueType;
      generate = name: value: built name (builtins.toJSON value) // { inherit value; };
    };
    # The build script and its environment are kept so the facts can read
    # what it does and with what.
    runCommand =
      name: env: script:
      built name (builtins.toJSON env + script) // { inherit env script; };
    writeText = name: text: built name text;
    monitoring-plugins = drv "monitoring-plugins";
    iputils = drv "iputils";
    dnsutils = drv "dnsutils";
    coreutils = drv "coreutils";
    python3.withPackages = _: drv "python3-with-aiosmtpd";
    testers.runNixOSTest = runNixOSTest;
    callPackage = file: _: drv "picomon" // { inherit file; };
    mkShell = _: drv "shell";
    clippy = drv "clippy";
    rustfmt = drv "rustfmt";
    openssl = drv "openssl";
    nixfmt-rfc-style = drv "nixfmt";
  };

  # systemd's unit values, merged as nixpkgs' unitOption does: lists (a
  # key written once per element) are concatenated, anything else must
  # agree, and a list and a non-list for one key are an error.
  unitOption = types.mkOptionType {
    name = "systemd option";
    check =
      x:
      builtins.isBool x
      || builtins.isInt x
      || builtins.isString x
      || builtins.isPath x
      || lib.isDerivation x
      || builtins.isList x;
    merge =
      loc: defs:
      if builtins.isList (builtins.head defs).value then
        lib.concatMap (
          d:
          if builtins.isList d.value then
            d.value
          else
            throw "The definitions for systemd unit options should be either all lists, representing repeatable options, or all non-lists, but for the option ${lib.showOption loc}, the definitions are a mix of list and non-list"
        ) defs
      else
        lib.mergeEqualOption loc defs;
  };
  opt =
    type: default:
    mkOption {
      inherit type default;
    };

  # The NixOS options the module and the VM node define, with nixpkgs'
  # types; a definition of anything else fails as "does not exist".
  nixosOptions = {
    _file = "nix/tests/eval.nix#nixosOptions";
    options = {
      assertions = opt (types.listOf types.unspecified) [ ];
      warnings = opt (types.listOf types.str) [ ];
      environment.etc = opt (types.attrsOf (
        types.submodule {
          options.source = mkOption { type = types.path; };
        }
      )) { };
      environment.systemPackages = opt (types.listOf types.package) [ ];
      systemd.tmpfiles.rules = opt (types.listOf types.str) [ ];
      systemd.services = opt (types.attrsOf (
        types.submodule {
          options = {
            enable = opt types.bool true;
            description = opt types.str "";
            documentation = opt (types.listOf types.str) [ ];
            wantedBy = opt (types.listOf types.str) [ ];
            wants = opt (types.listOf types.str) [ ];
            after = opt (types.listOf types.str) [ ];
            path = opt (types.listOf (types.either types.package types.str)) [ ];
            reloadTriggers = opt (types.listOf unitOption) [ ];
            restartTriggers = opt (types.listOf unitOption) [ ];
            serviceConfig = opt (types.attrsOf unitOption) { };
          };
        }
      )) { };
      services.nginx = {
        enable = opt types.bool false;
        virtualHosts = opt (types.attrsOf (
          types.submodule {
            options.locations = opt (types.attrsOf (
              types.submodule {
                options.return = opt (types.nullOr (types.either types.str types.int)) null;
                options.extraConfig = opt types.lines "";
              }
            )) { };
          }
        )) { };
      };
      specialisation = opt (types.attrsOf (
        types.submodule {
          options.configuration = opt types.deferredModule { };
        }
      )) { };
    };
  };

  # What runNixOSTest gives each node by default (node.pkgsReadOnly): the
  # host's pkgs, and nixpkgs.* that no module may set again.
  readOnlyNixpkgs =
    { config, ... }:
    let
      cfg = config.nixpkgs;
      readOnly = what: types.unique { message = "nixpkgs.${what} is set to read-only"; } types.anything;
    in
    {
      _file = "nix/tests/eval.nix#readOnlyNixpkgs";
      options.nixpkgs = {
        pkgs = mkOption {
          type = types.unique { message = "A Nixpkgs pkgs set can not be merged with another pkgs set."; } types.raw;
        };
        config = mkOption { type = readOnly "config"; };
        overlays = mkOption { type = readOnly "overlays"; };
        hostPlatform = mkOption { readOnly = true; };
      };
      config = {
        # Reading them first is what reports a module that sets them.
        _module.args.pkgs = builtins.seq cfg.config (
          builtins.seq cfg.overlays (builtins.seq cfg.hostPlatform cfg.pkgs.__splicedPackages)
        );
        nixpkgs.config = cfg.pkgs.config;
        nixpkgs.overlays = cfg.pkgs.overlays;
        nixpkgs.hostPlatform = cfg.pkgs.stdenv.hostPlatform;
      };
    };

  evalNixOS =
    modules:
    (lib.evalModules {
      modules = [
        nixosOptions
        readOnlyNixpkgs
        { nixpkgs.pkgs = hostPkgs; }
      ]
      ++ modules;
    }).config;

  # A test's nodes are evaluated as runNixOSTest does; a specialisation is
  # its node with one more module.
  runNixOSTest =
    test:
    let
      t = if builtins.isFunction test then test { pkgs = hostPkgs; } else test;
      evalNode = m: evalNixOS [ m ];
    in
    {
      inherit (t) name testScript;
      nodes = builtins.mapAttrs (_: evalNode) t.nodes;
      specialisations = builtins.mapAttrs (
        _: m:
        builtins.mapAttrs (_: s: evalNixOS [
          m
          s.configuration
        ]) (evalNode m).specialisation
      ) t.nodes;
    };

  flake =
    let
      self = (import ../../flake.nix).outputs {
        inherit self;
        nixpkgs = {
          inherit lib;
          legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
            system: hostPkgs // { stdenv.hostPlatform.system = system; }
          );
        };
      };
    in
    self;
  flakePackage = flake.packages.x86_64-linux.default;

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  fails = x: !(builtins.tryEval (builtins.deepSeq x x)).success;

  settings = {
    emails.to = [ "ops@example.org" ];
    hosts.web.ipv4 = "192.0.2.10";
    checks.homepage = {
      type = "https";
      hosts = [ "web" ];
    };
  };
  withPicomon = module: picomon: evalNixOS [
    module
    { services.picomon = picomon; }
  ];
  eval = withPicomon flake.nixosModules.default;

  basic = eval {
    enable = true;
    inherit settings;
  };
  service = basic.systemd.services.picomon;
  sc = service.serviceConfig;

  custom = eval {
    enable = true;
    inherit settings;
    package = drv "picomon-patched";
  };

  bare = withPicomon flake.nixosModules.picomon {
    enable = true;
    inherit settings;
  };

  noWatchdog = eval {
    enable = true;
    watchdog = false;
    inherit settings;
    environmentFile = "/run/secrets/picomon.env";
  };

  storeSecret = eval {
    enable = true;
    inherit settings;
    environmentFile = "${builtins.storeDir}/${hash}-secrets/picomon.env";
  };

  passwordInSettings = eval {
    enable = true;
    settings = settings // {
      emails = settings.emails // {
        smtp_password = "s3cret";
      };
    };
  };

  nullInSettings = eval {
    enable = true;
    settings = settings // {
      emails = settings.emails // {
        from = null;
      };
    };
  };

  fragments = eval {
    enable = true;
    inherit settings;
    extraConfigFiles = [
      "${builtins.storeDir}/${hash}-more-checks.conf"
      "/srv/picomon/site.toml"
      (drv "team-web.toml")
      "/srv/picomon/no-suffix"
    ];
  };
  # The names the build script gives the fragments, in its order.
  fragmentNames =
    config:
    let
      configDir = builtins.head config.systemd.services.picomon.reloadTriggers;
      lines = lib.filter builtins.isString (builtins.split "\n" configDir.script);
    in
    lib.concatMap (
      l:
      let
        m = builtins.match "cp .* [$]out/picomon.d/'?([^' ]*)'?" l;
      in
      if m == null then [ ] else m
    ) lines;

  disabled = eval { enable = false; };

  # The secret-file keys of picomon.toml(5) (src/config/), each where it
  # is written: every one must be refused in the store and passed as a
  # credential otherwise.
  secretKeys = [
    [
      "emails"
      "smtp_password_file"
    ]
    [
      "notify"
      "am"
      "password_file"
    ]
    [
      "notify"
      "am"
      "bearer_token_file"
    ]
    [
      "checks"
      "vpn"
      "tls_auth"
    ]
    [
      "checks"
      "vpn"
      "tls_crypt"
    ]
    [
      "checks"
      "backup"
      "token_file"
    ]
  ];
  secretSettings = lib.recursiveUpdate settings {
    notify.am = {
      type = "alertmanager";
      urls = [ "http://127.0.0.1:9093" ];
    };
    checks.vpn = {
      type = "openvpn";
      hosts = [ "web" ];
    };
    checks.backup = {
      type = "push";
      period = 86400;
    };
  };
  withSecret =
    loc: file:
    eval {
      enable = true;
      settings = lib.recursiveUpdate secretSettings (lib.setAttrByPath loc file);
    };
  # Where a secret can be that everyone reads: a path literal (copied to
  # the store with the TOML; this one does not exist, so a copy would
  # fail the evaluation), a string into the store, a package.
  inTheStore = {
    "a path literal" = ./no-such-secret;
    "a string in the store" = "${builtins.storeDir}/${hash}-secrets/picomon";
    "a package" = drv "picomon-secret";
  };
  refusedFor =
    loc: config:
    lib.any (lib.hasPrefix "services.picomon.settings.${lib.concatStringsSep "." loc} must not be in the Nix store") (
      failedAssertions config
    );
  mainSettings = config: (builtins.head config.systemd.services.picomon.reloadTriggers).env.main.value;
  secretFacts = lib.listToAttrs (
    lib.concatMap (
      loc:
      let
        key = lib.concatStringsSep "." loc;
        outside = withSecret loc "/run/secrets/picomon";
      in
      [
        {
          name = "${key}: refused in the store (${lib.concatStringsSep ", " (lib.attrNames inTheStore)})";
          value = lib.all (file: refusedFor loc (withSecret loc file)) (lib.attrValues inTheStore);
        }
        {
          name = "${key}: outside the store, a credential that picomon.toml names";
          value =
            failedAssertions outside == [ ]
            && (outside.systemd.services.picomon.serviceConfig.LoadCredential or [ ]) == [ "${key}:/run/secrets/picomon" ]
            && lib.attrByPath loc null (mainSettings outside) == "/run/credentials/picomon.service/${key}"
            && lib.attrByPath loc null outside.services.picomon.settings == "/run/secrets/picomon";
        }
      ]
    ) secretKeys
  );

  # A table name a credential's name cannot hold (':' and '/' are
  # refused by systemd) stands for itself by its hash.
  oddName = eval {
    enable = true;
    settings = lib.recursiveUpdate settings {
      checks."vpn: paris/2".tls_auth = "/run/secrets/ta.key";
      notify."am".password_file = "/run/secrets/am";
    };
  };
  switchedOff = eval {
    enable = true;
    settings = lib.recursiveUpdate settings {
      checks.vpn = {
        type = "openvpn";
        hosts = [ "web" ];
        enabled = false;
        tls_auth = "/run/secrets/not-there-yet";
      };
      checks.vpn2.tls_crypt = ./no-such-key;
      checks.vpn2.enabled = false;
    };
  };
  oddCredentials = oddName.systemd.services.picomon.serviceConfig.LoadCredential or [ ];
  oddCheck = builtins.head (lib.filter (lib.hasPrefix "checks.") oddCredentials);
  oddId = builtins.head (lib.filter builtins.isString (builtins.split ":" oddCheck));

  shared = import ../service.nix;

  # A unit file's sections: section -> key -> its values, one per line,
  # in order.
  unitSections =
    file:
    let
      lines = lib.filter builtins.isString (builtins.split "\n" (builtins.readFile file));
      step =
        acc: line:
        let
          section = builtins.match "[[](.*)[]]" line;
          kv = builtins.match "([A-Za-z]+)=(.*)" line;
        in
        if section != null then
          acc // { section = builtins.head section; }
        else if kv != null then
          let
            k = builtins.elemAt kv 0;
            here = acc.sections.${acc.section} or { };
          in
          acc
          // {
            sections = acc.sections // {
              ${acc.section} = here // {
                ${k} = (here.${k} or [ ]) ++ [ (builtins.elemAt kv 1) ];
              };
            };
          }
        else
          acc;
    in
    (builtins.foldl' step {
      section = "";
      sections = { };
    } lines).sections;
  unitService = file: (unitSections file).Service or { };
  render =
    v:
    if builtins.isBool v then
      (if v then "true" else "false")
    else
      toString v;
  # Keys a unit sets for itself: how it starts, as whom, and where it keeps state.
  ownKeys = [
    "Type"
    "ExecStartPre"
    "ExecStart"
    "ExecReload"
    "User"
    "Group"
    "StateDirectory"
    "Environment"
  ];
  unitMatches =
    file:
    let
      unit = unitService file;
      sharedOk = lib.all (
        k: (unit.${k} or [ ]) == map render (if builtins.isList shared.${k} then shared.${k} else [ shared.${k} ])
      ) (builtins.attrNames shared);
      extra = lib.filter (k: !(shared ? ${k}) && !(builtins.elem k ownKeys)) (builtins.attrNames unit);
    in
    if !sharedOk then
      throw "${toString file}: differs from nix/service.nix in: ${
        lib.concatStringsSep ", " (
          lib.filter (
            k: (unit.${k} or [ ]) != map render (if builtins.isList shared.${k} then shared.${k} else [ shared.${k} ])
          ) (builtins.attrNames shared)
        )
      }"
    else if extra != [ ] then
      throw "${toString file}: sets ${lib.concatStringsSep ", " extra}, which nix/service.nix does not: add it there"
    else
      true;

  distUnit = unitSections ../../dist/systemd/picomon.service;
  # A command without its program's directory: /usr/bin or /bin in
  # dist/, a store path in the module.
  command =
    c:
    let
      words = lib.filter builtins.isString (builtins.split " " c);
    in
    lib.concatStringsSep " " ([ (baseNameOf (builtins.head words)) ] ++ builtins.tail words);

  vm = flake.checks.x86_64-linux.vm;
  vmNode = vm.nodes.machine;
  vmChanged = vm.specialisations.machine.more-checks;

  facts = {
    "no overlay: the flake's own package runs" =
      sc.ExecStart == "${flakePackage}/bin/picomon-watchdog -c /etc/picomon.toml";
    "services.picomon.package overrides it" =
      custom.systemd.services.picomon.serviceConfig.ExecStart
      == "${drv "picomon-patched"}/bin/picomon-watchdog -c /etc/picomon.toml";
    "the bare module without pkgs.picomon fails (needs the overlay)" =
      fails bare.systemd.services.picomon.serviceConfig.ExecStart;
    "watchdog = false runs picomon itself" =
      noWatchdog.systemd.services.picomon.serviceConfig.ExecStart
      == "${flakePackage}/bin/picomon -c /etc/picomon.toml";
    "the configuration is checked with its secrets before start" =
      sc.ExecStartPre or null == "${flakePackage}/bin/picomon check-config -c /etc/picomon.toml";
    "a reload checks the configuration, then sends SIGHUP" =
      sc.ExecReload == [
        sc.ExecStartPre
        "${hostPkgs.coreutils}/bin/kill -HUP $MAINPID"
      ];
    "Documentation= names every man page" = service.documentation == [
      "man:picomon(1)"
      "man:picomon-watchdog(1)"
      "man:picomon.toml(5)"
    ];
    "state directory" = sc.StateDirectory == "picomon" && sc.ReadWritePaths == [ ] && sc.DynamicUser;
    "stop, restart and sandbox from nix/service.nix" = lib.all (k: sc.${k} == shared.${k}) (
      builtins.attrNames shared
    );
    "stop reaches picomon through the watchdog, with time to flush" =
      sc.KillMode == "mixed" && sc.TimeoutStopSec >= 40;
    "system calls filtered, only CAP_NET_RAW" =
      builtins.head sc.SystemCallFilter == "@system-service"
      && sc.CapabilityBoundingSet == [ "CAP_NET_RAW" ]
      && sc.AmbientCapabilities == [ "CAP_NET_RAW" ]
      && !(sc ? PrivateUsers)
      && !(sc ? ProtectProc)
      && !(sc ? ProcSubset);
    "plugins on the path" = service.path == [
      hostPkgs.monitoring-plugins
      hostPkgs.iputils
      hostPkgs.dnsutils
    ];
    "defaults for plugin_dir and state_dir" =
      basic.services.picomon.settings.plugin_dir == "${hostPkgs.monitoring-plugins}/bin"
      && basic.services.picomon.settings.state_dir == "/var/lib/picomon";
    "config in /etc, a new one reloads" =
      basic.environment.etc."picomon.toml".source == "${builtins.head service.reloadTriggers}/picomon.toml"
      && service.reloadTriggers == [ (builtins.head service.reloadTriggers) ]
      && service.restartTriggers == [ ];
    "every extra config file, in order, readable, .toml" =
      fragmentNames fragments == [
        "1-more-checks.conf.toml"
        "2-site.toml"
        "3-team-web.toml"
        "4-no-suffix.toml"
      ];
    "no environment file unless given" = !(sc ? EnvironmentFile);
    "environment file passed" =
      noWatchdog.systemd.services.picomon.serviceConfig.EnvironmentFile == "/run/secrets/picomon.env";
    "valid configurations pass every assertion" =
      failedAssertions basic == [ ] && failedAssertions noWatchdog == [ ];
    "an environment file in the store is refused (a string there, a path literal)" =
      lib.all
        (
          config:
          lib.any (lib.hasPrefix "services.picomon.environmentFile must not be in the Nix store") (
            failedAssertions config
          )
        )
        [
          storeSecret
          (eval {
            enable = true;
            inherit settings;
            environmentFile = ./no-such-picomon.env;
          })
        ];
    "no credentials without secret files" = !(sc ? LoadCredential);
    "with credentials, which ExecReload cannot see, the reload checks all but the secret files" =
      let
        withCredentials =
          (withSecret [ "emails" "smtp_password_file" ] "/run/secrets/picomon").systemd.services.picomon.serviceConfig;
      in
      withCredentials.ExecStartPre == sc.ExecStartPre
      && withCredentials.ExecReload == [
        "${flakePackage}/bin/picomon check-config --no-secrets -c /etc/picomon.toml"
        "${hostPkgs.coreutils}/bin/kill -HUP $MAINPID"
      ];
    "a check switched off needs no credential, but is refused in the store" =
      !(switchedOff.systemd.services.picomon.serviceConfig ? LoadCredential)
      && (mainSettings switchedOff).checks.vpn.tls_auth == "/run/secrets/not-there-yet"
      && failedAssertions switchedOff == [
        "services.picomon.settings.checks.vpn2.tls_crypt must not be in the Nix store, where everyone can read it (a path literal such as ./secret is copied there): give the path as a string, e.g. \"/run/secrets/picomon\"."
      ];
    # Credentials are loaded at start: a switch that adds one must restart
    # picomon, and it does as the unit itself changes (only a change of
    # the reload triggers alone is a reload).
    "a new secret file changes the unit" =
      (withSecret [ "emails" "smtp_password_file" ] "/run/secrets/picomon").systemd.services.picomon.serviceConfig
      != sc;
    "a table name unfit for a credential name is hashed" =
      builtins.length oddCredentials == 2
      && builtins.elem "notify.am.password_file:/run/secrets/am" oddCredentials
      && builtins.match "checks[.][+][0-9a-f]{16}[.]tls_auth:/run/secrets/ta.key" oddCheck != null
      && (mainSettings oddName).checks."vpn: paris/2".tls_auth == "/run/credentials/picomon.service/${oddId}"
      && failedAssertions oddName == [ ];
    "a password in settings is refused" = lib.any (lib.hasInfix "smtp_password would be readable") (
      failedAssertions passwordInSettings
    );
    "null in settings is refused (TOML has none)" = fails nullInSettings.services.picomon.settings;
    "disabled means no service" = disabled.systemd.services == { };

    "flake: packages" = lib.all (s: flake.packages.${s}.default == flake.packages.${s}.picomon) [
      "x86_64-linux"
      "aarch64-linux"
    ];
    "flake: package built from nix/package.nix" = baseNameOf (toString flakePackage.file) == "package.nix";
    "flake: overlay, shell, formatter" =
      flake.overlays ? default
      && flake.checks.x86_64-linux ? package
      && flake.devShells.x86_64-linux ? default
      && flake.formatter.x86_64-linux == drv "nixfmt";

    "VM test: the node evaluates with read-only nixpkgs.*" =
      vmNode.nixpkgs.overlays == [ ] && failedAssertions vmNode == [ ];
    "VM test: the node runs the flake's picomon under the watchdog" =
      vmNode.systemd.services.picomon.serviceConfig.ExecStart
      == "${flakePackage}/bin/picomon-watchdog -c /etc/picomon.toml";
    "VM test: the changed configuration is a reload, not a restart" =
      let
        before = vmNode.systemd.services.picomon;
        after = vmChanged.systemd.services.picomon;
      in
      before.serviceConfig == after.serviceConfig
      && before.reloadTriggers != after.reloadTriggers
      && after.restartTriggers == [ ]
      && vmChanged.services.picomon.settings.checks ? load;
    "VM test: the node's root-only secret is a credential" =
      vmNode.systemd.services.picomon.serviceConfig.LoadCredential or [ ] == [
        "notify.alertmanager.password_file:/run/secrets/alertmanager"
      ]
      && lib.any (lib.hasInfix "/run/secrets/alertmanager 0400 root root") vmNode.systemd.tmpfiles.rules;
    "VM test: a test script" =
      lib.hasInfix "In-Reply-To" vm.testScript && lib.hasInfix "POST /api/v2/alerts" vm.testScript;

    "dist/systemd/picomon.service carries nix/service.nix" = unitMatches ../../dist/systemd/picomon.service;
    "dist/systemd/picomon@.service carries nix/service.nix" = unitMatches (../../dist/systemd + "/picomon@.service");
    "dist/systemd/picomon.service: the same Documentation=" =
      lib.concatMap (l: lib.filter builtins.isString (builtins.split " " l)) distUnit.Unit.Documentation
      == service.documentation;
    "dist/systemd/picomon.service: the same ExecStartPre, ExecStart and ExecReload" = lib.all (
      k: map command distUnit.Service.${k} == map command (lib.toList sc.${k})
    ) [ "ExecStartPre" "ExecStart" "ExecReload" ];
  }
  // secretFacts;

  failed = lib.attrNames (lib.filterAttrs (_: ok: !ok) facts);
in
if failed == [ ] then
  lib.attrNames facts
else
  throw "nix/tests/eval.nix: failed: ${lib.concatStringsSep "; " failed}"
