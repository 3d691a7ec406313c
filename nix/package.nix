# picomon and picomon-watchdog, with their man pages and completions.
{
  lib,
  rustPlatform,
  installShellFiles,
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "picomon";
  inherit (cargoToml.workspace.package) version;

  src = lib.cleanSourceWith {
    src = ../.;
    filter =
      path: type:
      let
        base = baseNameOf path;
      in
      !(type == "directory" && (base == "target" || base == ".git" || base == "nix"))
      && !(lib.hasSuffix ".nix" base);
  };

  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ installShellFiles ];

  # The integration tests need an SMTP server, monitoring plugins and free
  # loopback ports; the sandbox runs the unit tests (config validation,
  # state machine, argv of every check type, stale man pages).
  cargoTestFlags = [ "--lib" ];

  postInstall = ''
    installManPage man/picomon.1 man/picomon-check-config.1 man/picomon-status.1 man/picomon-silence.1 man/picomon-watchdog.1 man/picomon.toml.5
    for cmd in picomon picomon-watchdog; do
      installShellCompletion --cmd $cmd \
        --bash completions/$cmd.bash \
        --zsh completions/_$cmd \
        --fish completions/$cmd.fish
    done
  '';

  meta = {
    description = "Very small alerting daemon: runs monitoring plugins and emails on failure and recovery";
    license = lib.licenses.gpl3Plus;
    mainProgram = "picomon";
    platforms = lib.platforms.linux;
  };
}
