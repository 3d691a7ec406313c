# picomon migrate: stand-ins for picomon.py's `picomon` and
# `picomon.checks`, and a driver that evaluates a picomon.py config file
# against them and writes what it built as JSON.
#
# The config file is Python, so it is run, not parsed: whatever it
# computes (loops over hosts, `86400 / config.base_tick`, its own Check
# subclasses) comes out as picomon.py would have seen it. Nothing here
# runs a check: `exec_with_timeout` only records the command a check
# would have run. Usage: python3 -I -S -B THIS CONFIG.py OUT.json

import json
import os
import socket
import sys
import traceback
import types
from collections.abc import Iterable

CONFIG_PATH = os.path.abspath(sys.argv[1])
OUT_PATH = sys.argv[2]
WARNINGS = []


def _line():
    """The line of the config file (or a file it imports) that is running."""
    # The outermost frame in the config: the statement of the config
    # itself, not a line inside a class it defines.
    for frame in traceback.extract_stack():
        if frame.filename == CONFIG_PATH:
            return frame.lineno
    for frame in reversed(traceback.extract_stack()):
        if frame.filename != __file__ and not frame.filename.startswith("<"):
            return frame.lineno
    return 0


def _warn(message):
    WARNINGS.append({"line": _line(), "message": message})


class AttrTree(object):
    """picomon.py's settings tree: only installed keys may be set."""

    def __init__(self):
        object.__setattr__(self, "_attrs", {})
        object.__setattr__(self, "_lines", {})

    def install_attr(self, key, default):
        if key in self._attrs:
            raise KeyError('Key "%s" already exists' % key)
        stems = key.split(".", 1)
        if len(stems) < 2:
            self._attrs[key] = default
        elif stems[0] in self._attrs:
            self._attrs[stems[0]].install_attr(stems[1], default)
        else:
            sub = AttrTree()
            sub.install_attr(stems[1], default)
            self._attrs[stems[0]] = sub

    def __getitem__(self, key):
        return self._attrs[key]

    def __setitem__(self, key, value):
        if key not in self._attrs:
            raise KeyError('Key "%s" does not exist' % key)
        elif isinstance(self._attrs[key], AttrTree):
            raise KeyError('Key "%s" is not settable' % key)
        self._attrs[key] = value
        self._lines[key] = _line()

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key)

    def __setattr__(self, key, value):
        self[key] = value


_DEFAULT = object()


class Host(object):
    def __init__(self, ipv4=_DEFAULT, ipv6=_DEFAULT, name=None, **extra):
        # picomon.py's defaults are documentation addresses: which ones a
        # config gave tells the addresses it meant from those it got.
        self._given = [k for k, v in (("ipv4", ipv4), ("ipv6", ipv6)) if v is not _DEFAULT]
        ipv4 = "192.0.2.1" if ipv4 is _DEFAULT else ipv4
        ipv6 = "2001:db8::1" if ipv6 is _DEFAULT else ipv6
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.name = name if name is not None else "%s/%s" % (ipv4, ipv6)
        self._name_given = name is not None
        self._line = _line()
        if extra:
            raise TypeError("Host() got unexpected keyword arguments: %s" % ", ".join(sorted(extra)))
        HOSTS.append(self)

    def __repr__(self):
        return '<Host ipv4="%s" ipv6="%s">' % (self.ipv4, self.ipv6)


HOSTS = []


class Checks(list):
    def add(self, checks, dests, **options):
        if not isinstance(checks, Iterable):
            checks = [checks]
        if isinstance(dests, str):
            # picomon.py iterated the characters of a lone string; taken
            # as the one zone it was meant to be.
            _warn("a lone string %r as dests: taken as [%r]" % (dests, dests))
            dests = [dests]
        elif not isinstance(dests, Iterable):
            dests = [dests]
        for check in checks:
            self += [check(d, **options) for d in dests]


class Check(object):
    _picomon_type = None

    def __init__(self, **options):
        self._options = options
        self.retry = options.get("retry", 1)
        self.retry_count = 0
        self.every = options.get("every", config.default_every)
        self.error_every = options.get("error_every", config.default_error_every)
        if self.error_every < 0:
            self.error_every = self.every
        self.run_count = 0
        self.errmsg = ""
        self.ok = True
        self.target_name = options.get("target_name", "Unknown")
        self.timeout = options.get("timeout", 2)
        self._line = _line()

    def __repr__(self):
        return "<%s>" % self.__class__.__name__

    def setup(self):
        pass

    def teardown(self):
        pass

    def check(self):
        return None

    def exec_with_timeout(self, command, timeout=None, pattern=""):
        # Replaced while probing; a check run outside of a probe (at load
        # time, by the config itself) learns nothing and runs nothing.
        return False


class CheckIP(Check):
    def __init__(self, host, **options):
        super().__init__(**options)
        self._host = host
        self.target_name = host.name


class Check4(CheckIP):
    _family = 4

    def __init__(self, host, **options):
        super().__init__(host, **options)
        self.addr = host.ipv4


class Check6(CheckIP):
    _family = 6

    def __init__(self, host, **options):
        super().__init__(host, **options)
        self.addr = host.ipv6


PLUGINS = "/usr/lib/nagios/plugins/"


class CheckPing(Check):
    _picomon_type = "ping"


class CheckPing4(CheckPing, Check4):
    def check(self):
        command = ["/bin/ping", "-c", "1", "-W", str(self.timeout), self.addr]
        return self.exec_with_timeout(command, timeout=self.timeout + 1)


class CheckPing6(CheckPing, Check6):
    def check(self):
        command = ["/bin/ping6", "-c", "1", "-W", str(self.timeout), self.addr]
        return self.exec_with_timeout(command, timeout=self.timeout + 1)


class CheckDNSZone(Check):
    _picomon_type = "dns-zone"
    _uses = ("ip_version",)

    def __init__(self, zone, **options):
        super().__init__(**options)
        self.zone = zone
        self.target_name = "zone '%s'" % zone

    def check(self):
        command = ["check_dns_soa", "-H", self.zone]
        if self._options.get("ip_version", 0) in [4, 6]:
            command.append("-" + str(self._options["ip_version"]))
        return self.exec_with_timeout(command)


class CheckDNSRec(Check):
    _picomon_type = "dns-rec"

    def check(self):
        command = ["dig", "www.google.com", "@" + self.addr]
        return self.exec_with_timeout(command, pattern="status: NOERROR")


class CheckDNSRec4(CheckDNSRec, Check4):
    pass


class CheckDNSRec6(CheckDNSRec, Check6):
    pass


class CheckDNSAut(Check):
    def check(self, host, addr):
        self.errmsg = "Unimplemented"
        return False


class CheckHTTP(Check):
    _picomon_type = "http"
    _uses = ("status", "vhost", "string", "url")

    def build_command(self):
        command = [PLUGINS + "check_http", "-I", self.addr, "-t", str(self.timeout)]
        for option, flag in (("status", "-e"), ("vhost", "-H"), ("string", "-s"), ("url", "-u")):
            if option in self._options:
                command += [flag, str(self._options[option])]
        return command

    def check(self):
        return self.exec_with_timeout(self.build_command(), timeout=self.timeout + 1)


class CheckHTTPS(CheckHTTP):
    _picomon_type = "https"

    def check(self):
        command = self.build_command() + ["--ssl", "--sni"]
        return self.exec_with_timeout(command, timeout=self.timeout + 1)


class CheckHTTP4(CheckHTTP, Check4):
    pass


class CheckHTTP6(CheckHTTP, Check6):
    pass


class CheckHTTPS4(CheckHTTPS, Check4):
    pass


class CheckHTTPS6(CheckHTTPS, Check6):
    pass


class CheckSMTP(Check):
    _picomon_type = "smtp"
    _uses = ("from_addr", "command", "response")

    def build_command(self):
        command = [PLUGINS + "check_smtp", "-H", self.addr,
                   "-f", self._options.get("from_addr", "picomon@localhost.local"),
                   "-t", str(self.timeout)]
        if "command" in self._options:
            command += ["-C", str(self._options["command"])]
        if "response" in self._options:
            command += ["-R", str(self._options["response"])]
        return command

    def check(self):
        return self.exec_with_timeout(self.build_command(), timeout=self.timeout + 1)


class CheckSMTP4(CheckSMTP, Check4):
    pass


class CheckSMTP6(CheckSMTP, Check6):
    pass


class CheckOpenVPN(Check):
    _picomon_type = "openvpn"

    def check(self):
        command = [PLUGINS + "check_udp", "-H", self.addr, "-p", "1194", "-m", "1",
                   "-M", "ok", "-s", "\x38\x01\x01\x01\x01\x01\x01\x01\x42", "-e", "@",
                   "-t", str(self.timeout)]
        return self.exec_with_timeout(command, timeout=self.timeout + 1)


class CheckOpenVPN4(CheckOpenVPN, Check4):
    pass


class CheckOpenVPN6(CheckOpenVPN, Check6):
    pass


class CheckJabber(Check):
    _picomon_type = "jabber"

    def check(self):
        command = [PLUGINS + "check_jabber", "-H", self.addr, "-t", str(self.timeout)]
        return self.exec_with_timeout(command, timeout=self.timeout + 1)


class CheckJabber4(CheckJabber, Check4):
    pass


class CheckJabber6(CheckJabber, Check6):
    pass


# The classes picomon translates to a type of its own: each leaf, by name.
NATIVE = {c.__name__: c for c in (
    CheckPing4, CheckPing6, CheckDNSZone, CheckDNSRec4, CheckDNSRec6,
    CheckHTTP4, CheckHTTP6, CheckHTTPS4, CheckHTTPS6, CheckSMTP4, CheckSMTP6,
    CheckOpenVPN4, CheckOpenVPN6, CheckJabber4, CheckJabber6)}

config = AttrTree()
config.install_attr("checks", Checks())
config.install_attr("base_tick", 60)
config.install_attr("default_every", 1)
config.install_attr("default_error_every", -1)
config.install_attr("verb_level", "INFO")
config.install_attr("emails.to", [])
DEFAULT_FROM = "Picomon <picomon@%s>" % socket.getfqdn()
config.install_attr("emails.addr_from", DEFAULT_FROM)
config.install_attr("emails.smtp_host", "localhost:25")
config.install_attr("emails.smtp_keepalive_timeout", 60)
config.install_attr("emails.smtp_retry_timeout", 60)
config.install_attr("emails.report.every", 0)
config.install_attr("emails.subject_tpl", "[DOMAIN] {state}: {check} on {dest}")
config.install_attr("emails.report.subject", "[DOMAIN] Picomon error report")
config.install_attr("emails.watchdog_subject", "[DOMAIN] Picomon stopped")
KNOWN_KEYS = set()


def _keys(tree, prefix=""):
    for key, value in tree._attrs.items():
        if isinstance(value, AttrTree):
            yield from _keys(value, prefix + key + ".")
        else:
            yield prefix + key, value, tree._lines.get(key, 0)


KNOWN_KEYS = {k for k, _, _ in _keys(config)}


class TimeoutExpired(Exception):
    pass


class Popen(object):
    """picomon.py's checks module exported Popen; a check of the config's
    own that spawns with it is not run here (its probe fails, and it is
    kept as a comment)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("Popen: picomon migrate runs no command")


def _modules():
    import datetime
    import logging
    import re

    package = types.ModuleType("picomon")
    package.__path__ = []
    package.config = config
    mails = types.ModuleType("picomon.mails")
    mails.send_email_for_check = lambda check: None
    mails.send_email_report = lambda report: None
    mails.quit = lambda: None
    checks = types.ModuleType("picomon.checks")
    for name, value in list(globals().items()):
        if isinstance(value, type) and issubclass(value, (Check, Host, Checks)) or value is AttrTree:
            setattr(checks, name, value)
    # What else `from picomon.checks import *` gave picomon.py's configs
    # (it has no __all__), which their own classes may use.
    for name, value in (("re", re), ("logging", logging), ("datetime", datetime.datetime),
                        ("Iterable", Iterable), ("mails", mails), ("Popen", Popen),
                        ("PIPE", -1), ("TimeoutExpired", TimeoutExpired)):
        setattr(checks, name, value)
    package.checks = checks
    package.mails = mails
    sys.modules["picomon"] = package
    sys.modules["picomon.checks"] = checks
    sys.modules["picomon.mails"] = mails


def _plain(value):
    """A JSON value for `value`, or its repr when it has none."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else {"repr": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    return {"repr": repr(value)}


def _probe(check):
    """The one command `check.check()` runs, when it runs exactly one and
    its verdict is that command's; else why not."""
    runs = []
    for verdict in (True, False):
        calls = []

        def record(command, timeout=None, pattern="", _calls=calls, _verdict=verdict):
            _calls.append({
                "argv": [str(a) for a in command] if not isinstance(command, (str, bytes)) else [str(command)],
                "timeout": _plain(check.timeout if timeout is None else timeout),
                "pattern": str(pattern),
            })
            return _verdict

        check.exec_with_timeout = record
        try:
            check.setup()
            result = check.check()
        except Exception as e:
            return None, "its check() raised %s: %s" % (type(e).__name__, e)
        finally:
            del check.exec_with_timeout
        runs.append((bool(result), calls))
    (ok_when_ok, first), (ok_when_failed, second) = runs
    if len(first) != 1 or first != second:
        return None, "its check() runs %d commands, not one through exec_with_timeout" % len(first)
    if not ok_when_ok or ok_when_failed:
        return None, "its check() does not return what exec_with_timeout says"
    return first[0], None


def _describe(check):
    cls = type(check)
    d = {
        "line": getattr(check, "_line", 0),
        "class": cls.__name__,
        "type": None,
        "options": _plain(getattr(check, "_options", {})),
        "every": _plain(check.every),
        "retry": _plain(check.retry),
        "error_every": _plain(check.error_every),
        "timeout": _plain(check.timeout),
        "target_name": _plain(check.target_name),
        "host": None,
        "family": None,
        "zone": None,
        "uses": [],
        "probe": None,
        "unprobed": None,
    }
    host = getattr(check, "_host", None)
    if isinstance(host, Host):
        d["host"] = HOSTS.index(host) if host in HOSTS else None
        family = getattr(check, "_family", None)
        addr = getattr(check, "addr", None)
        if family is None:
            family = 4 if addr == host.ipv4 else 6 if addr == host.ipv6 else None
        d["family"] = family
    if isinstance(check, CheckDNSZone):
        d["zone"] = _plain(check.zone)
    native = next((c for c in cls.__mro__ if c.__name__ in NATIVE and NATIVE[c.__name__] is c), None)
    same = native is not None and all(
        getattr(cls, m, None) is getattr(native, m, None) for m in ("check", "build_command", "setup"))
    if same:
        d["type"] = native._picomon_type
        d["uses"] = list(getattr(native, "_uses", ()))
        d["native_class"] = native.__name__
        return d
    if d["host"] is not None and d["family"] is not None:
        check.addr = "{addr}"
    elif d["host"] is not None:
        d["unprobed"] = "its address is neither its host's ipv4 nor its ipv6"
        return d
    d["probe"], d["unprobed"] = _probe(check)
    return d


def main():
    _modules()
    config_dir = os.path.dirname(CONFIG_PATH)
    # As picomon.py did: the config's own directory is importable.
    sys.path.append(config_dir)
    name = os.path.splitext(os.path.basename(CONFIG_PATH))[0]
    with open(CONFIG_PATH, "rb") as f:
        source = f.read()
    code = compile(source, CONFIG_PATH, "exec")
    scope = {"__name__": name, "__file__": CONFIG_PATH, "__builtins__": __builtins__}
    real_stdout = sys.stdout
    # What the config prints is not the description.
    sys.stdout = sys.stderr
    exec(code, scope)
    host_names = {}
    for var, value in scope.items():
        if isinstance(value, Host) and id(value) not in host_names:
            host_names[id(value)] = var
    checks = []
    others = []
    for item in config.checks:
        if isinstance(item, Check):
            checks.append(_describe(item))
        else:
            others.append(repr(item)[:200])
    settings = []
    for key, value, line in _keys(config):
        if key == "checks":
            continue
        settings.append({"key": key, "value": _plain(value), "line": line, "known": key in KNOWN_KEYS})
    description = {
        "file": os.path.basename(CONFIG_PATH),
        "settings": settings,
        "default_from": DEFAULT_FROM,
        "hosts": [{
            "var": host_names.get(id(h)),
            "ipv4": _plain(h.ipv4),
            "ipv6": _plain(h.ipv6),
            "given": h._given,
            "name": _plain(h.name),
            "name_given": h._name_given,
            "line": h._line,
        } for h in HOSTS],
        "checks": checks,
        "not_checks": others,
        "warnings": WARNINGS,
    }
    sys.stdout = real_stdout
    with open(OUT_PATH, "x") as out:
        json.dump(description, out)


main()
