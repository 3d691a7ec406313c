//! What a check is once configured: an `Instance` (a check expanded for one
//! target) and how a plugin's run becomes a `RunResult` and its `State`.
//! What each type runs lives in `probe`, how each type's program is read
//! in `reading`. Pure functions only, so every type's argv and every exit
//! code is unit-tested.

pub(crate) mod http_target;
mod probe;
mod reading;
pub(crate) mod static_key;

pub(crate) use probe::{OpenvpnKey, Probe, Tls};
pub(crate) use reading::Reading;

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
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
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn id(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    pub(crate) fn label(self) -> &'static str {
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
pub(crate) struct Target {
    /// The host's key in `[hosts.KEY]`.
    pub host: String,
    pub addr: IpAddr,
    pub family: Family,
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
    /// When its switches count as flapping (`flap_switches`, `flap_window`).
    pub flap: crate::flapping::Limits,
    /// `renotify_every`: a reminder while it stays failing, unacknowledged
    /// (None: never).
    pub renotify_every: Option<Duration>,
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

/// Splits plugin output into its summary (first line, before `|`), the
/// performance data (after `|` on that line) and the remaining lines.
pub(crate) fn split_output(text: &str) -> (String, String, String) {
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
            flap: crate::flapping::Limits::default(),
            renotify_every: None,
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
}
