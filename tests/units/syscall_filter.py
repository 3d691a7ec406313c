"""Runs a command under a unit's SystemCallFilter= as systemd applies it,
without systemd as PID 1 (test machines and CI have none).

    syscall_filter.py [--errno NAME] --filter VALUE [--filter VALUE ...] -- COMMAND...

Each --filter is one SystemCallFilter= line of the unit, in order. As in
systemd.exec(5): when the first line does not start with "~" it is an
allow list, later lines add to it, and "~" lines take away; a group
(@name) is expanded with systemd-analyze syscall-filter, the same tables
systemd uses. Calls outside the list fail with --errno (the unit's
SystemCallErrorNumber=) instead of killing the process. The filter is
loaded with no_new_privs set, then COMMAND is executed in its place.
"""

import errno
import os
import subprocess
import sys

import seccomp


def groups():
    """Every @group and its members, from systemd's own tables."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        check=True, capture_output=True, text=True,
    ).stdout
    table, current = {}, None
    for line in out.splitlines():
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if not line.startswith(" "):
            current = word
            table[current] = []
        elif current is not None:
            table[current].append(word)
    return table


def expand(name, table, seen=None):
    seen = set() if seen is None else seen
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    if name not in table:
        sys.exit(f"syscall_filter.py: unknown group {name}")
    calls = set()
    for member in table[name]:
        calls |= expand(member, table, seen)
    return calls


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    options, command = argv[: argv.index("--")], argv[argv.index("--") + 1:]
    err, lines = errno.EPERM, []
    while options:
        flag, value = options[0], options[1]
        options = options[2:]
        if flag == "--errno":
            err = getattr(errno, value)
        elif flag == "--filter":
            lines.append(value)
        else:
            sys.exit(f"syscall_filter.py: unknown option {flag}")
    if not lines or lines[0].startswith("~"):
        sys.exit("syscall_filter.py: only allow lists (a first line without ~) are modelled")

    table = groups()
    allowed = set()
    for line in lines:
        deny = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            names |= expand(word, table)
        allowed = allowed - names if deny else allowed | names

    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(err))
    for call in sorted(allowed):
        try:
            flt.add_rule(seccomp.ALLOW, call)
        except (RuntimeError, ValueError):
            pass  # not a system call of this architecture
    flt.load()
    os.execvp(command[0], command)


main(sys.argv[1:])
