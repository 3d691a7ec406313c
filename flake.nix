{
  description = "picomon: a very small alerting daemon";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # Optional: for systems that want pkgs.picomon; the module needs none.
      overlays.default = final: _prev: { picomon = final.callPackage ./nix/package.nix { }; };

      packages = forAllSystems (pkgs: rec {
        picomon = pkgs.callPackage ./nix/package.nix { };
        default = picomon;
      });

      # The bare module: its package defaults to pkgs.picomon (overlay).
      nixosModules.picomon = ./nix/module.nix;
      # The module with this flake's own package as its default, so that a
      # system imports it and nothing else: no overlay is pushed onto the
      # user's whole package set (and a test node's read-only nixpkgs.* is
      # left alone). services.picomon.package still overrides it.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          _file = "${toString ./flake.nix}#nixosModules.default";
          imports = [ ./nix/module.nix ];
          services.picomon.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        vm = pkgs.testers.runNixOSTest (import ./nix/tests/vm.nix { inherit self; });
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = [
            pkgs.clippy
            pkgs.rustfmt
            pkgs.monitoring-plugins
            pkgs.openssl
            (pkgs.python3.withPackages (p: [ p.aiosmtpd ]))
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
