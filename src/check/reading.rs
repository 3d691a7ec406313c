//! How a check type's program is read: most plugins follow the Nagios
//! exit-code API; `ping` and `dig` have rules of their own.

use std::time::Duration;

use regex::Regex;

use super::probe::seconds_within;
use super::State;

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
}

/// This very executable, for the built-in plugins (`picomon plugin …`).
/// Looked up once: after an upgrade replaces the file, the path that was
/// started is still the one to run.
impl Reading {
    /// The state and text of a run that exited with `code`.
    pub(super) fn read(&self, code: i32, stdout: &str, timeout: Duration) -> (State, String) {
        match self {
            Reading::Nagios => (State::from_exit_code(code), stdout.to_string()),
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
