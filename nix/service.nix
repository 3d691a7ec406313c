# The [Service] settings every picomon unit shares: how it stops, how it
# restarts, and its sandbox. nix/module.nix uses this set as it is, and
# nix/tests/eval.nix fails when dist/systemd/picomon.service or
# picomon@.service (the units for other distributions, which cannot import
# it) say anything else for one of these keys, or add a key of their own
# that is not here: one list, two renderings that cannot drift apart.
# A list is written in a unit as one line per element, as NixOS does.
{
  Restart = "on-failure";
  RestartSec = 5;

  # A stop is SIGTERM to the main process only (picomon-watchdog, or picomon
  # when it runs alone); the watchdog stops picomon, which kills its plugins'
  # process groups and flushes queued mail. KillMode=control-group would
  # SIGTERM picomon and every plugin at once behind the watchdog's back.
  # "mixed" still SIGKILLs the whole group if TimeoutStopSec runs out.
  KillMode = "mixed";
  # The watchdog gives picomon about 30 s to stop (5 s for running plugins,
  # 5 s of mail, one SMTP step); systemd must not SIGKILL before that.
  TimeoutStopSec = 45;

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
  RemoveIPC = true;
  UMask = "0077";
  SystemCallArchitectures = "native";
  # What a service needs, less what neither picomon nor a plugin ever does:
  # change scheduling or resource limits, or file ownership. @privileged
  # stays: ping drops its capabilities with capset and setuid(getuid()),
  # and fails when either is refused. A refused call fails with EPERM
  # rather than killing a plugin, so its output says what went wrong.
  SystemCallFilter = [
    "@system-service"
    "~@resources @chown"
  ];
  SystemCallErrorNumber = "EPERM";
  # ping needs raw sockets; nothing else is granted.
  CapabilityBoundingSet = [ "CAP_NET_RAW" ];
  AmbientCapabilities = [ "CAP_NET_RAW" ];
  RestrictAddressFamilies = [
    "AF_INET"
    "AF_INET6"
    "AF_UNIX"
    "AF_NETLINK"
  ];
  # Not set, on purpose:
  # - ProtectProc=invisible (or ptraceable) hides other users' processes,
  #   so check_procs would count only picomon's own and report a system
  #   full of zombies as OK; ProcSubset=pid hides /proc/loadavg and
  #   /proc/meminfo, which check_load and check_swap read.
  # - PrivateUsers: in a user namespace CAP_NET_RAW no longer applies to
  #   the host's network, so ping could not open its raw socket.
}
