//! What a check is once configured: the plugin command line each check type
//! runs, and how a plugin's exit code and output become a `State`. Pure
//! functions only, so every type's argv and every exit code is unit-tested.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
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

    fn flag(self) -> &'static str {
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
    },
    Openvpn {
        port: u16,
    },
    Jabber {
        port: Option<u16>,
    },
    Command {
        argv: Vec<String>,
    },
}

/// What OpenVPN's probe sends: a P_CONTROL_HARD_RESET_CLIENT_V2 opcode
/// (0x38) and a session id. An argv cannot carry the NUL bytes of a full
/// packet, so this is the longest NUL-free prefix; a server answers it
/// with a hard reset whose first byte is 0x40 ('@').
const OPENVPN_PROBE: &[u8] = b"\x38\x8d\xc1\x78\x01\xb8\x9b\xcb\x8f";

/// Whole seconds for plugins' `-t`/`-W`, rounded up, at least one.
fn whole_seconds(timeout: Duration) -> String {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    secs.max(1).to_string()
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
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |s: &str| argv.push(OsString::from(s));
        match self {
            Probe::Ping => {
                push("ping");
                if let Some(target) = target {
                    push(target.family.flag());
                }
                for a in ["-c", "1", "-W", &t, &addr] {
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
            } => {
                argv.push(plugin("check_http"));
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
                push("dig");
                push(query);
                push(&format!("@{addr}"));
            }
            Probe::DnsZone { zone, family } => {
                push("check_dns_soa");
                push("-H");
                push(zone);
                if let Some(family) = family {
                    push(family.flag());
                }
            }
            Probe::Openvpn { port } => {
                argv.push(plugin("check_udp"));
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["-H", &addr, "-p", &port.to_string(), "-t", &t] {
                    push(a);
                }
                push("-s");
                argv.push(probe_bytes(OPENVPN_PROBE));
                argv.push(OsString::from("-e"));
                argv.push(OsString::from("@"));
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

fn probe_bytes(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes.to_vec())
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
                match (done.timed_out, done.exit_code) {
                    (true, _) => {
                        let mut text = format!("timed out after {} s", fmt_secs(self.timeout));
                        if !stdout.trim().is_empty() {
                            text.push('\n');
                            text.push_str(&stdout);
                        }
                        (State::Critical, None, text, done.duration)
                    }
                    (false, Some(code)) => {
                        let mut state = State::from_exit_code(code);
                        let mut text = stdout;
                        if let Some(pattern) = &self.pattern {
                            if state == State::Ok && !pattern.is_match(&text) {
                                state = State::Critical;
                                text =
                                    format!("output does not match /{}/\n{text}", pattern.as_str());
                            }
                        }
                        if text.trim().is_empty() {
                            let stderr = String::from_utf8_lossy(&done.stderr);
                            text = match stderr.trim() {
                                "" => format!("no output (exit code {code})"),
                                err => err.to_string(),
                            };
                        }
                        (state, Some(code), text, done.duration)
                    }
                    (false, None) => {
                        let signal = done.signal.unwrap_or_default();
                        (
                            State::Unknown,
                            None,
                            format!("killed by signal {signal}\n{stdout}"),
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
            ["ping", "-4", "-c", "1", "-W", "3", "192.0.2.10"]
        );
        assert_eq!(
            words(&p.argv(Some(&v6()), T, Path::new(DIR))),
            ["ping", "-6", "-c", "1", "-W", "3", "2001:db8::10"]
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
        };
        assert_eq!(
            words(&p.argv(Some(&v6()), T, Path::new(DIR))),
            [
                "/plug/check_http",
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
                "--sni"
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
            ["dig", "www.example.org", "@192.0.2.10"]
        );
        let zone = Probe::DnsZone {
            zone: "example.org".into(),
            family: Some(Family::V6),
        };
        assert_eq!(
            words(&zone.argv(None, T, Path::new(DIR))),
            ["check_dns_soa", "-H", "example.org", "-6"]
        );
    }

    #[test]
    fn openvpn_and_jabber_argv() {
        let vpn = Probe::Openvpn { port: 1194 };
        let argv = vpn.argv(Some(&v4()), T, Path::new(DIR));
        let w = words(&argv);
        assert_eq!(
            &w[..7],
            [
                "/plug/check_udp",
                "-H",
                "192.0.2.10",
                "-p",
                "1194",
                "-t",
                "3"
            ]
        );
        assert_eq!(w[7], "-s");
        assert!(!OPENVPN_PROBE.contains(&0), "argv cannot carry NUL");
        assert_eq!(w[9..], ["-e", "@"]);
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
}
