//! What the Python stand-in (`standin.py`) writes about a picomon.py
//! config file it evaluated: its settings, hosts and check instances, as
//! picomon.py would have held them. Values stay JSON, since a Python
//! config may put anything anywhere and translation judges each one.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Description {
    /// The config file's name (no directory), for comments and warnings.
    pub file: String,
    pub settings: Vec<Setting>,
    /// picomon.py's default `emails.addr_from` on this machine.
    pub default_from: String,
    pub hosts: Vec<Host>,
    pub checks: Vec<Instance>,
    /// `repr()` of what was in `config.checks` without being a check.
    #[serde(default)]
    pub not_checks: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

/// One key of picomon.py's settings tree (`emails.report.every`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Setting {
    pub key: String,
    pub value: Value,
    /// Where it was last set; 0: left at its default.
    pub line: u32,
    /// One picomon.py installs itself (else the config installed it).
    pub known: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Host {
    /// The config's variable holding it, if any.
    pub var: Option<String>,
    pub ipv4: Value,
    pub ipv6: Value,
    /// The addresses the config gave (the others are picomon.py's
    /// documentation defaults, 192.0.2.1 and 2001:db8::1).
    pub given: Vec<String>,
    pub name: Value,
    pub line: u32,
}

/// One check instance: a check class on one host (or zone, or nothing).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Instance {
    pub line: u32,
    pub class: String,
    /// picomon's type, when the class is (or only renames) a built-in one.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The keyword options it was made with.
    pub options: Value,
    pub every: Value,
    pub retry: Value,
    pub error_every: Value,
    pub timeout: Value,
    pub target_name: Value,
    /// Index into `hosts`.
    pub host: Option<usize>,
    pub family: Option<u8>,
    pub zone: Value,
    /// The type-specific options the built-in class reads.
    #[serde(default)]
    pub uses: Vec<String>,
    /// For other classes: the one command its `check()` runs.
    pub probe: Option<Probe>,
    /// Why it has no probe.
    pub unprobed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Probe {
    /// With `{addr}` where the check's address goes.
    pub argv: Vec<String>,
    pub timeout: Value,
    pub pattern: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Warning {
    pub line: u32,
    pub message: String,
}
