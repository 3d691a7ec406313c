//! What a check is once configured: the plugin command line each check type
//! runs, and how a plugin's exit code and output become a `State`. Pure
//! functions only, so every type's argv and every exit code is unit-tested.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::human::fmt_secs;
use crate::runner::{Finished, RunError};

/// A plugin result, after the Nagios plugin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl State {
    /// Exit 0 is OK, 1 WARNING, 2 CRITICAL; 3 and anything else UNKNOWN.
    pub fn from_exit_code(code: i32) -> State {
        match code {
            0 => State::Ok,
            1 => State::Warning,
            2 => State::Critical,
            _ => State::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// IPv4 or IPv6, as a check instance runs over one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn id(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    pub(crate) fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }
}

/// Where one instance of a host-based check points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host's key in `[hosts.KEY]`.
    pub host: String,
    pub addr: IpAddr,
    pub family: Family,
}

/// The validated, type-specific part of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Ping,
    Http {
        ssl: bool,
        port: Option<u16>,
        status: Option<u16>,
        vhost: Option<String>,
        string: Option<String>,
        url: Option<String>,
        /// https only: how the server's certificate is judged.
        tls: Tls,
    },
    Smtp {
        port: Option<u16>,
        from_addr: String,
        command: Option<String>,
        response: Option<String>,
    },
    DnsRec {
        query: String,
    },
    DnsZone {
        zone: String,
        family: Option<Family>,
        /// The nameservers to ask (the check's `hosts`), by display name;
        /// empty: the zone's NS records.
        servers: Vec<(String, IpAddr)>,
    },
    Openvpn {
        port: u16,
        key: Option<OpenvpnKey>,
    },
    Jabber {
        port: Option<u16>,
    },
    Command {
        argv: Vec<String>,
    },
}

/// How an https check judges the certificate (check_curl does the work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Chain, name and dates must be valid (`verify`, default true).
    pub verify: bool,
    /// Trust this CA file instead of the system's (`ca_file`).
    pub ca_file: Option<PathBuf>,
    /// Warn / critical this many days before expiry (`certificate_days`).
    pub certificate_days: Option<(u32, u32)>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            verify: true,
            ca_file: None,
            certificate_days: None,
        }
    }
}

/// The static key that an OpenVPN server wraps its control channel with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenvpnKey {
    /// `tls-auth`: an HMAC on every control packet; `direction` is the
    /// client's `key-direction` (None: the key is used both ways).
    TlsAuth {
        file: PathBuf,
        direction: Option<u8>,
    },
    /// `tls-crypt`: control packets are encrypted and authenticated.
    TlsCrypt { file: PathBuf },
}

/// How a run's exit code and output become a state and the text an
/// operator reads. Most plugins follow the Nagios API; `ping` and `dig`
/// are plain programs with exit codes of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Nagios,
    /// ping exits 1 when no reply came: that is CRITICAL, not WARNING.
    Ping {
        addr: String,
    },
    /// dig exits 0 for any answer (NXDOMAIN too) and 9 when no server
    /// answered; OK needs `status: NOERROR`.
    Dig {
        query: String,
        server: String,
    },
    /// check_curl with `-C … --continue-after-certificate` exits with the
    /// HTTP result only; its first line tells the certificate's state.
    Curl,
}

/// This very executable, for the built-in plugins (`picomon plugin …`).
/// Looked up once: after an upgrade replaces the file, the path that was
/// started is still the one to run.
fn picomon_exe() -> OsString {
    static EXE: OnceLock<OsString> = OnceLock::new();
    EXE.get_or_init(|| {
        std::env::current_exe()
            .map(PathBuf::into_os_string)
            .unwrap_or_else(|_| OsString::from("picomon"))
    })
    .clone()
}

/// Whole seconds for plugins' `-t`/`-W`, rounded up, at least one.
fn whole_seconds(timeout: Duration) -> String {
    ceil_secs(timeout).max(1).to_string()
}

fn ceil_secs(timeout: Duration) -> u64 {
    timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)
}

/// Whole seconds for a program's own deadline, below the check's timeout
/// (so the program reports, rather than being killed), at least one.
fn seconds_within(timeout: Duration) -> u64 {
    ceil_secs(timeout).saturating_sub(1).max(1)
}

impl Probe {
    /// The plugin command line, an argv that is never given to a shell.
    pub fn argv(
        &self,
        target: Option<&Target>,
        timeout: Duration,
        plugin_dir: &Path,
    ) -> Vec<OsString> {
        let plugin = |name: &str| plugin_dir.join(name).into_os_string();
        let addr = target.map(|t| t.addr.to_string()).unwrap_or_default();
        let t = whole_seconds(timeout);
        // Built-ins take fractions: they keep inside the check's timeout.
        let exact = timeout.as_secs_f64().to_string();
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |s: &str| argv.push(OsString::from(s));
        match self {
            Probe::Ping => {
                push("ping");
                if let Some(target) = target {
                    push(target.family.flag());
                }
                // -w: ping's own deadline, inside the check's timeout, so
                // that a silent host is reported by ping (exit 1) and not
                // by a kill racing with it.
                let deadline = seconds_within(timeout).to_string();
                for a in ["-n", "-c", "1", "-w", &deadline, &addr] {
                    push(a);
                }
            }
            Probe::Http {
                ssl,
                port,
                status,
                vhost,
                string,
                url,
                tls,
            } => {
                // check_http cannot verify a certificate chain or name;
                // check_curl (same options) can.
                argv.push(plugin(if *ssl { "check_curl" } else { "check_http" }));
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["-I", &addr, "-t", &t] {
                    push(a);
                }
                push_port(&mut push, *port);
                if let Some(status) = status {
                    push("-e");
                    push(&status.to_string());
                }
                for (flag, value) in [("-H", vhost), ("-s", string), ("-u", url)] {
                    if let Some(value) = value {
                        push(flag);
                        push(value);
                    }
                }
                if *ssl {
                    push("--ssl");
                    push("--sni");
                    if tls.verify {
                        push("--verify-cert");
                        // check_curl checks against a CA file whenever it
                        // has one, so it goes with verification only.
                        if let Some(ca) = &tls.ca_file {
                            argv.push(OsString::from("--ca-cert"));
                            argv.push(ca.clone().into_os_string());
                        }
                    }
                    if let Some((warn, crit)) = tls.certificate_days {
                        let mut push = |s: &str| argv.push(OsString::from(s));
                        push("-C");
                        push(&format!("{warn},{crit}"));
                        push("--continue-after-certificate");
                    }
                }
            }
            Probe::Smtp {
                port,
                from_addr,
                command,
                response,
            } => {
                argv.push(plugin("check_smtp"));
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["-H", &addr, "-f", from_addr, "-t", &t] {
                    push(a);
                }
                push_port(&mut push, *port);
                for (flag, value) in [("-C", command), ("-R", response)] {
                    if let Some(value) = value {
                        push(flag);
                        push(value);
                    }
                }
            }
            Probe::DnsRec { query } => {
                // -r: no ~/.digrc (a `+short` there hides the status line).
                // dig's own time limit fits inside the check's timeout, so
                // a silent server is dig's "no servers could be reached".
                let budget = seconds_within(timeout);
                let tries = if budget >= 4 { 2 } else { 1 };
                let time = format!("+time={}", budget / tries);
                let tries = format!("+tries={tries}");
                for a in ["dig", "-r", &time, &tries, query, &format!("@{addr}")] {
                    push(a);
                }
            }
            Probe::DnsZone {
                zone,
                family,
                servers,
            } => {
                argv.push(picomon_exe());
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["plugin", "dns-zone", "-t", &exact] {
                    push(a);
                }
                if let Some(family) = family {
                    push(family.flag());
                }
                for (name, addr) in servers {
                    push("-s");
                    push(&format!("{name}={addr}"));
                }
                push(zone);
            }
            Probe::Openvpn { port, key } => {
                argv.push(picomon_exe());
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["plugin", "openvpn", "-H", &addr, "-p", &port.to_string()] {
                    push(a);
                }
                push("-t");
                push(&exact);
                match key {
                    None => {}
                    Some(OpenvpnKey::TlsAuth { file, direction }) => {
                        argv.push(OsString::from("--tls-auth"));
                        argv.push(file.clone().into_os_string());
                        if let Some(d) = direction {
                            argv.push(OsString::from("--key-direction"));
                            argv.push(OsString::from(d.to_string()));
                        }
                    }
                    Some(OpenvpnKey::TlsCrypt { file }) => {
                        argv.push(OsString::from("--tls-crypt"));
                        argv.push(file.clone().into_os_string());
                    }
                }
            }
            Probe::Jabber { port } => {
                argv.push(plugin("check_jabber"));
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["-H", &addr, "-t", &t] {
                    push(a);
                }
                push_port(&mut push, *port);
            }
            Probe::Command { argv: words } => {
                let host = target.map(|t| t.host.as_str()).unwrap_or_default();
                for word in words {
                    push(&word.replace("{addr}", &addr).replace("{host}", host));
                }
            }
        }
        argv
    }
}

/// `-p PORT` when a port is set; plugins know their protocol's default.
fn push_port(push: &mut impl FnMut(&str), port: Option<u16>) {
    if let Some(port) = port {
        push("-p");
        push(&port.to_string());
    }
}

impl Probe {
    /// How this probe's runs are read.
    pub fn reading(&self, target: Option<&Target>) -> Reading {
        let addr = target.map(|t| t.addr.to_string()).unwrap_or_default();
        match self {
            Probe::Ping => Reading::Ping { addr },
            Probe::DnsRec { query } => Reading::Dig {
                query: query.clone(),
                server: addr,
            },
            Probe::Http { ssl: true, .. } => Reading::Curl,
            _ => Reading::Nagios,
        }
    }
}

/// One scheduled unit: a check expanded for one host and address family
/// (or a zone, or nothing at all for a plain command).
#[derive(Debug, Clone)]
pub struct Instance {
    /// `NAME/HOST/FAMILY`: the identity that state is kept under.
    pub id: String,
    /// The check's name, `{check}` in subjects.
    pub check: String,
    /// The target's display name, `{dest}` in subjects.
    pub dest: String,
    pub argv: Vec<OsString>,
    /// How the plugin's exit code and output are read.
    pub reading: Reading,
    pub pattern: Option<Regex>,
    pub every: u32,
    pub error_every: u32,
    pub retry: u32,
    pub timeout: Duration,
    /// Variables the operator set for this check's plugin (`env`), on top
    /// of the minimal environment every plugin gets.
    pub env: Vec<(OsString, OsString)>,
}

impl Instance {
    /// The command line as an operator would type it, for logs.
    pub fn command_line(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Turns a finished (or failed) plugin run into a result.
    pub fn interpret(&self, started: SystemTime, run: Result<Finished, RunError>) -> RunResult {
        let (state, exit_code, text, duration) = match run {
            Err(RunError::Spawn(e)) => (
                State::Unknown,
                None,
                format!("check not available: {}: {e}", self.argv_0()),
                Duration::ZERO,
            ),
            Err(RunError::Wait(e)) => (
                State::Unknown,
                None,
                format!("lost track of {}: {e}", self.argv_0()),
                Duration::ZERO,
            ),
            Ok(done) => {
                let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
                match (done.timed_out, done.exit_code) {
                    (true, _) => {
                        // What the plugin said before it was killed often
                        // tells where it hung.
                        let mut text = format!("timed out after {} s", fmt_secs(self.timeout));
                        for said in [&stdout, &stderr] {
                            if !said.trim().is_empty() {
                                text.push('\n');
                                text.push_str(said.trim_end());
                            }
                        }
                        (State::Critical, None, text, done.duration)
                    }
                    (false, Some(code)) => {
                        let (mut state, mut text) = self.reading.read(code, &stdout, self.timeout);
                        if let Some(pattern) = &self.pattern {
                            if state == State::Ok && !pattern.is_match(&stdout) {
                                state = State::Critical;
                                text =
                                    format!("output does not match /{}/\n{text}", pattern.as_str());
                            }
                        }
                        // A failed run shows all the plugin said: the
                        // reason is often on standard error only.
                        let err = stderr.trim();
                        if !err.is_empty() && (state != State::Ok || text.trim().is_empty()) {
                            if !text.trim().is_empty() {
                                text = text.trim_end().to_string();
                                text.push('\n');
                            }
                            text.push_str(err);
                        }
                        if text.trim().is_empty() {
                            text = format!("no output (exit code {code})");
                        }
                        (state, Some(code), text, done.duration)
                    }
                    (false, None) => {
                        let signal = done.signal.unwrap_or_default();
                        (
                            State::Unknown,
                            None,
                            format!("killed by signal {signal}\n{stdout}{stderr}"),
                            done.duration,
                        )
                    }
                }
            }
        };
        let (summary, perfdata, details) = split_output(&text);
        RunResult {
            state,
            exit_code,
            summary,
            perfdata,
            details,
            duration,
            started,
        }
    }

    fn argv_0(&self) -> String {
        self.argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Reading {
    /// The state and text of a run that exited with `code`.
    fn read(&self, code: i32, stdout: &str, timeout: Duration) -> (State, String) {
        match self {
            Reading::Nagios => (State::from_exit_code(code), stdout.to_string()),
            Reading::Curl => {
                let state = State::from_exit_code(code);
                let cert = if stdout.starts_with("CRITICAL - Certificate") {
                    State::Critical
                } else if stdout.starts_with("WARNING - Certificate") {
                    State::Warning
                } else {
                    State::Ok
                };
                let state = match state {
                    State::Ok | State::Warning => state.max(cert),
                    _ => state,
                };
                (state, stdout.to_string())
            }
            Reading::Ping { addr } => match code {
                0 => {
                    let rtt = Regex::new(r"time=(\S+ ms)")
                        .ok()
                        .and_then(|re| re.captures(stdout).map(|c| c[1].to_string()));
                    let summary = match rtt {
                        Some(rtt) => format!("PING OK - {addr} answered in {rtt}"),
                        None => format!("PING OK - {addr} answered"),
                    };
                    (State::Ok, format!("{summary}\n{stdout}"))
                }
                1 => (
                    State::Critical,
                    format!(
                        "PING CRITICAL - no reply from {addr} within {} s\n{stdout}",
                        seconds_within(timeout)
                    ),
                ),
                _ => (
                    State::Critical,
                    format!("PING CRITICAL - ping {addr} failed (exit code {code})\n{stdout}"),
                ),
            },
            Reading::Dig { query, server } => {
                let status = Regex::new(r"status: ([A-Z]+)")
                    .ok()
                    .and_then(|re| re.captures(stdout).map(|c| c[1].to_string()));
                match (code, status.as_deref()) {
                    (0, Some("NOERROR")) => {
                        let answers = Regex::new(r"ANSWER: (\d+)")
                            .ok()
                            .and_then(|re| re.captures(stdout).map(|c| c[1].to_string()))
                            .unwrap_or_else(|| "?".into());
                        (
                            State::Ok,
                            format!("DNS OK - {server} answered {query}: NOERROR, {answers} answer(s)\n{stdout}"),
                        )
                    }
                    (0, Some(status)) => (
                        State::Critical,
                        format!("DNS CRITICAL - {server} answered {query}: {status}\n{stdout}"),
                    ),
                    (9, _) => (
                        State::Critical,
                        format!("DNS CRITICAL - no answer from {server} for {query}\n{stdout}"),
                    ),
                    // Usage or internal errors: the check, not the server.
                    _ => (
                        State::Unknown,
                        format!(
                            "DNS UNKNOWN - dig {query} @{server} failed (exit code {code})\n{stdout}"
                        ),
                    ),
                }
            }
        }
    }
}

/// Splits plugin output into its summary (first line, before `|`), the
/// performance data (after `|` on that line) and the remaining lines.
pub fn split_output(text: &str) -> (String, String, String) {
    let text = text.trim_end();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (summary, perf) = first.split_once('|').unwrap_or((first, ""));
    (
        summary.trim().to_string(),
        perf.trim().to_string(),
        rest.trim_end().to_string(),
    )
}

/// The outcome of one plugin run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub state: State,
    /// None when the plugin timed out, was killed or never started.
    pub exit_code: Option<i32>,
    /// The first line of output, without performance data.
    pub summary: String,
    /// Performance data from the first line: never put in a subject.
    pub perfdata: String,
    /// Every line after the first.
    pub details: String,
    pub duration: Duration,
    pub started: SystemTime,
}

impl RunResult {
    /// Summary and the following lines, as shown to people.
    pub fn output(&self) -> String {
        if self.details.is_empty() {
            self.summary.clone()
        } else {
            format!("{}\n{}", self.summary, self.details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4() -> Target {
        Target {
            host: "web".into(),
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            family: Family::V4,
        }
    }

    fn v6() -> Target {
        Target {
            host: "web".into(),
            addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
            family: Family::V6,
        }
    }

    fn words(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    const T: Duration = Duration::from_millis(2500);
    const DIR: &str = "/plug";

    #[test]
    fn exit_codes_follow_the_plugin_api() {
        assert_eq!(State::from_exit_code(0), State::Ok);
        assert_eq!(State::from_exit_code(1), State::Warning);
        assert_eq!(State::from_exit_code(2), State::Critical);
        assert_eq!(State::from_exit_code(3), State::Unknown);
        assert_eq!(State::from_exit_code(4), State::Unknown);
        assert_eq!(State::from_exit_code(-1), State::Unknown);
        assert_eq!(State::from_exit_code(127), State::Unknown);
    }

    #[test]
    fn ping_argv_per_family() {
        let p = Probe::Ping;
        assert_eq!(
            words(&p.argv(Some(&v4()), T, Path::new(DIR))),
            ["ping", "-4", "-n", "-c", "1", "-w", "2", "192.0.2.10"]
        );
        assert_eq!(
            words(&p.argv(Some(&v6()), Duration::from_secs(1), Path::new(DIR))),
            ["ping", "-6", "-n", "-c", "1", "-w", "1", "2001:db8::10"]
        );
    }

    #[test]
    fn http_and_https_argv() {
        let mut p = Probe::Http {
            ssl: false,
            port: None,
            status: None,
            vhost: None,
            string: None,
            url: None,
            tls: Tls::default(),
        };
        assert_eq!(
            words(&p.argv(Some(&v4()), Duration::from_secs(10), Path::new(DIR))),
            ["/plug/check_http", "-I", "192.0.2.10", "-t", "10"]
        );
        p = Probe::Http {
            ssl: true,
            port: Some(8443),
            status: Some(302),
            vhost: Some("www.example.org".into()),
            string: Some("Welcome".into()),
            url: Some("/login".into()),
            tls: Tls {
                verify: true,
                ca_file: Some("/etc/ca.pem".into()),
                certificate_days: Some((30, 7)),
            },
        };
        assert_eq!(
            words(&p.argv(Some(&v6()), T, Path::new(DIR))),
            [
                "/plug/check_curl",
                "-I",
                "2001:db8::10",
                "-t",
                "3",
                "-p",
                "8443",
                "-e",
                "302",
                "-H",
                "www.example.org",
                "-s",
                "Welcome",
                "-u",
                "/login",
                "--ssl",
                "--sni",
                "--verify-cert",
                "--ca-cert",
                "/etc/ca.pem",
                "-C",
                "30,7",
                "--continue-after-certificate"
            ]
        );
    }

    #[test]
    fn smtp_argv() {
        let p = Probe::Smtp {
            port: None,
            from_addr: "picomon@example.org".into(),
            command: Some("EHLO picomon".into()),
            response: Some("250".into()),
        };
        assert_eq!(
            words(&p.argv(Some(&v4()), T, Path::new(DIR))),
            [
                "/plug/check_smtp",
                "-H",
                "192.0.2.10",
                "-f",
                "picomon@example.org",
                "-t",
                "3",
                "-C",
                "EHLO picomon",
                "-R",
                "250"
            ]
        );
    }

    #[test]
    fn dns_argv() {
        let rec = Probe::DnsRec {
            query: "www.example.org".into(),
        };
        assert_eq!(
            words(&rec.argv(Some(&v4()), T, Path::new(DIR))),
            [
                "dig",
                "-r",
                "+time=2",
                "+tries=1",
                "www.example.org",
                "@192.0.2.10"
            ]
        );
        assert_eq!(
            words(&rec.argv(Some(&v4()), Duration::from_secs(10), Path::new(DIR)))[1..4],
            ["-r", "+time=4", "+tries=2"]
        );
        let zone = Probe::DnsZone {
            zone: "example.org".into(),
            family: Some(Family::V6),
            servers: vec![("ns1".into(), v6().addr)],
        };
        assert_eq!(
            words(&zone.argv(None, T, Path::new(DIR)))[1..],
            [
                "plugin",
                "dns-zone",
                "-t",
                "2.5",
                "-6",
                "-s",
                "ns1=2001:db8::10",
                "example.org"
            ]
        );
    }

    #[test]
    fn openvpn_and_jabber_argv() {
        let vpn = Probe::Openvpn {
            port: 1194,
            key: Some(OpenvpnKey::TlsAuth {
                file: "/etc/ta.key".into(),
                direction: Some(1),
            }),
        };
        assert_eq!(
            words(&vpn.argv(Some(&v4()), T, Path::new(DIR)))[1..],
            [
                "plugin",
                "openvpn",
                "-H",
                "192.0.2.10",
                "-p",
                "1194",
                "-t",
                "2.5",
                "--tls-auth",
                "/etc/ta.key",
                "--key-direction",
                "1"
            ]
        );
        let jabber = Probe::Jabber { port: Some(5222) };
        assert_eq!(
            words(&jabber.argv(Some(&v6()), T, Path::new(DIR))),
            [
                "/plug/check_jabber",
                "-H",
                "2001:db8::10",
                "-t",
                "3",
                "-p",
                "5222"
            ]
        );
    }

    #[test]
    fn command_argv_substitutes_addr_and_host() {
        let p = Probe::Command {
            argv: vec!["/bin/probe".into(), "--to={addr}".into(), "{host}".into()],
        };
        assert_eq!(
            words(&p.argv(Some(&v6()), T, Path::new(DIR))),
            ["/bin/probe", "--to=2001:db8::10", "web"]
        );
    }

    #[test]
    fn output_splits_summary_perfdata_and_details() {
        let (s, p, d) = split_output("HTTP OK: 200 | time=0.1s size=10B\nline 2\nline 3\n");
        assert_eq!(s, "HTTP OK: 200");
        assert_eq!(p, "time=0.1s size=10B");
        assert_eq!(d, "line 2\nline 3");
        let (s, p, d) = split_output("");
        assert_eq!((s.as_str(), p.as_str(), d.as_str()), ("", "", ""));
    }

    fn instance(pattern: Option<&str>) -> Instance {
        Instance {
            id: "c".into(),
            check: "c".into(),
            dest: "c".into(),
            argv: vec!["/bin/x".into()],
            reading: Reading::Nagios,
            pattern: pattern.map(|p| Regex::new(p).expect("test pattern")),
            every: 1,
            error_every: 1,
            retry: 0,
            timeout: Duration::from_secs(2),
            env: Vec::new(),
        }
    }

    fn exited(code: i32, out: &str) -> Result<Finished, RunError> {
        Ok(Finished {
            exit_code: Some(code),
            signal: None,
            timed_out: false,
            stdout: out.as_bytes().to_vec(),
            stderr: Vec::new(),
            duration: Duration::from_millis(5),
            escaped: Vec::new(),
            output_held_open: false,
        })
    }

    #[test]
    fn pattern_turns_an_unmatched_ok_into_critical() {
        let now = SystemTime::now();
        let r = instance(Some("status: NOERROR")).interpret(now, exited(0, "status: SERVFAIL"));
        assert_eq!(r.state, State::Critical);
        let r = instance(Some("status: NOERROR")).interpret(now, exited(0, "x status: NOERROR y"));
        assert_eq!(r.state, State::Ok);
        let r = instance(Some("x")).interpret(now, exited(1, "WARN x"));
        assert_eq!(r.state, State::Warning);
    }

    #[test]
    fn spawn_failure_is_unknown_and_timeout_critical() {
        let now = SystemTime::now();
        let err = std::io::Error::from(std::io::ErrorKind::NotFound);
        let r = instance(None).interpret(now, Err(RunError::Spawn(err)));
        assert_eq!(r.state, State::Unknown);
        assert!(
            r.summary.starts_with("check not available: /bin/x"),
            "{}",
            r.summary
        );
        let timed_out = Ok(Finished {
            exit_code: None,
            signal: Some(9),
            timed_out: true,
            stdout: Vec::new(),
            stderr: Vec::new(),
            duration: Duration::from_secs(2),
            escaped: Vec::new(),
            output_held_open: false,
        });
        let r = instance(None).interpret(now, timed_out);
        assert_eq!(r.state, State::Critical);
        assert_eq!(r.summary, "timed out after 2 s");
    }

    fn run(code: Option<i32>, out: &str, err: &str) -> Result<Finished, RunError> {
        Ok(Finished {
            exit_code: code,
            signal: code.map_or(Some(9), |_| None),
            timed_out: code.is_none(),
            stdout: out.as_bytes().to_vec(),
            stderr: err.as_bytes().to_vec(),
            duration: Duration::from_millis(5),
            escaped: Vec::new(),
            output_held_open: false,
        })
    }

    #[test]
    fn a_failed_run_shows_stdout_and_stderr() {
        let now = SystemTime::now();
        let r = instance(None).interpret(
            now,
            run(Some(2), "CHECK CRITICAL - down\n", "detail on stderr\n"),
        );
        assert_eq!(r.output(), "CHECK CRITICAL - down\ndetail on stderr");
        // An OK run keeps to its standard output.
        let r = instance(None).interpret(now, run(Some(0), "CHECK OK\n", "noise\n"));
        assert_eq!(r.output(), "CHECK OK");
    }

    #[test]
    fn a_timed_out_run_shows_what_the_plugin_printed_before_it_was_killed() {
        let now = SystemTime::now();
        let r = instance(None).interpret(now, run(None, "connecting to db…\n", "slow\n"));
        assert_eq!(r.state, State::Critical);
        assert_eq!(r.output(), "timed out after 2 s\nconnecting to db…\nslow");
    }

    #[test]
    fn ping_without_reply_is_critical_not_warning() {
        let now = SystemTime::now();
        let mut i = instance(None);
        i.reading = Reading::Ping {
            addr: "192.0.2.10".into(),
        };
        let r = i.interpret(
            now,
            run(
                Some(1),
                "PING 192.0.2.10 …\n1 packets transmitted, 0 received\n",
                "",
            ),
        );
        assert_eq!(r.state, State::Critical);
        assert_eq!(
            r.summary,
            "PING CRITICAL - no reply from 192.0.2.10 within 1 s"
        );
        let r = i.interpret(
            now,
            run(
                Some(0),
                "64 bytes from 192.0.2.10: icmp_seq=1 ttl=64 time=0.04 ms\n",
                "",
            ),
        );
        assert_eq!(r.state, State::Ok);
        assert_eq!(r.summary, "PING OK - 192.0.2.10 answered in 0.04 ms");
    }

    #[test]
    fn dig_needs_noerror_and_pattern_is_an_extra_condition() {
        let now = SystemTime::now();
        let mut i = instance(Some("1\\.2\\.3\\.4"));
        i.reading = Reading::Dig {
            query: "www.example.org".into(),
            server: "192.0.2.10".into(),
        };
        let nx = ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1\n;www.example.org. IN A 1.2.3.4\n";
        let r = i.interpret(now, run(Some(0), nx, ""));
        assert_eq!(r.state, State::Critical);
        assert_eq!(
            r.summary,
            "DNS CRITICAL - 192.0.2.10 answered www.example.org: NXDOMAIN"
        );
        let ok = ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n;; flags: qr; QUERY: 1, ANSWER: 1\nwww.example.org. 60 IN A 1.2.3.5\n";
        let r = i.interpret(now, run(Some(0), ok, ""));
        assert_eq!(
            r.state,
            State::Critical,
            "NOERROR but the pattern does not match"
        );
        let r = i.interpret(now, run(Some(0), &ok.replace("1.2.3.5", "1.2.3.4"), ""));
        assert_eq!(r.state, State::Ok);
        assert_eq!(
            r.summary,
            "DNS OK - 192.0.2.10 answered www.example.org: NOERROR, 1 answer(s)"
        );
        let r = i.interpret(
            now,
            run(
                Some(9),
                ";; connection timed out; no servers could be reached\n",
                "",
            ),
        );
        assert_eq!(r.state, State::Critical);
        assert_eq!(
            r.summary,
            "DNS CRITICAL - no answer from 192.0.2.10 for www.example.org"
        );
    }

    #[test]
    fn an_expiring_certificate_warns_although_check_curl_exits_with_the_http_result() {
        let now = SystemTime::now();
        let mut i = instance(None);
        i.reading = Reading::Curl;
        let out = "WARNING - Certificate 'www' expires in 10 day(s).\nHTTP OK: HTTP/1.1 200 OK\n";
        assert_eq!(
            i.interpret(now, run(Some(0), out, "")).state,
            State::Warning
        );
        let out = "CRITICAL - Certificate 'www' expired on x.\nHTTP OK: HTTP/1.1 200 OK\n";
        assert_eq!(
            i.interpret(now, run(Some(0), out, "")).state,
            State::Critical
        );
        assert_eq!(
            i.interpret(now, run(Some(0), "HTTP OK\n", "")).state,
            State::Ok
        );
        assert_eq!(
            i.interpret(now, run(Some(2), "HTTP CRITICAL\n", "")).state,
            State::Critical
        );
    }
}
