//! The configuration exactly as users write it: serde types that reject
//! unknown keys, so that a typo is an error instead of a silently ignored
//! (and therefore never alerting) setting.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    pub base_tick: f64,
    pub default_every: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_error_every: Option<i64>,
    pub default_retry: i64,
    pub default_timeout: f64,
    pub max_parallel: i64,
    /// Flapping: more switches than this within `flap_window` runs.
    pub flap_switches: i64,
    pub flap_window: i64,
    /// Seconds between reminders of an outage; 0: none.
    pub renotify_every: f64,
    pub plugin_dir: PathBuf,
    pub log_level: LogLevel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    pub emails: RawEmails,
    pub hosts: BTreeMap<String, RawHost>,
    /// Boxed: a `RawCheck` is about 600 bytes of mostly empty options, and
    /// a map node holds 11 of them however few it uses; with 1,000 checks
    /// the boxes take half the memory while the configuration loads.
    pub checks: BTreeMap<String, Box<RawCheck>>,
    /// Notifiers beyond email, by name (`[notify.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub notify: BTreeMap<String, RawNotify>,
    /// The IANA time zone cron lines are read in (else the system's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Recurring maintenance windows, by name (`[maintenance.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub maintenance: BTreeMap<String, RawMaintenance>,
    /// Who is told about which checks, by name (`[contacts.NAME]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contacts: BTreeMap<String, RawContact>,
    /// `[push]`: the HTTP listener for push checks (off without `listen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<RawPush>,
    /// `[heartbeat]`: what picomon pings while healthy (a dead man's switch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<RawHeartbeat>,
}

/// The `[push]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPush {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// The `[heartbeat]` table: `url` or `command`, and `every`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeartbeat {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<f64>,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            base_tick: 60.0,
            default_every: 1,
            default_error_every: None,
            default_retry: 1,
            default_timeout: 2.0,
            max_parallel: 32,
            flap_switches: 4,
            flap_window: 10,
            renotify_every: 0.0,
            plugin_dir: PathBuf::from("/usr/lib/nagios/plugins"),
            log_level: LogLevel::Info,
            state_dir: None,
            emails: RawEmails::default(),
            hosts: BTreeMap::new(),
            checks: BTreeMap::new(),
            notify: BTreeMap::new(),
            time_zone: None,
            maintenance: BTreeMap::new(),
            contacts: BTreeMap::new(),
            push: None,
            heartbeat: None,
        }
    }
}

/// A `[contacts.NAME]` table: mailboxes and notifiers told about the
/// checks that name it (or the instances its patterns match).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawContact {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
    /// Instance-id patterns (as silences) this contact is told about, on
    /// top of the checks that name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
}

/// A `[maintenance.NAME]` table: a silence that comes back on a cron line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawMaintenance {
    pub pattern: String,
    pub cron: String,
    /// Seconds.
    pub duration: f64,
    pub reason: String,
}

/// A `[notify.NAME]` table: `type` says which of the other keys apply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_every: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resend_every: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// alertmanager: an always-firing PicomonWatchdog alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub(crate) fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEmails {
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub smtp_host: String,
    pub smtp_security: SmtpSecurity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_ca_file: Option<PathBuf>,
    pub smtp_keepalive_timeout: f64,
    pub smtp_retry_timeout: f64,
    pub subject_tpl: String,
    pub watchdog_subject: String,
    /// More switches than this in one tick go out as one digest; 0: never.
    pub digest_over: i64,
    pub report: RawReport,
}

impl Default for RawEmails {
    fn default() -> Self {
        RawEmails {
            to: Vec::new(),
            from: None,
            smtp_host: "localhost:25".into(),
            smtp_security: SmtpSecurity::None,
            smtp_user: None,
            smtp_password: None,
            smtp_password_file: None,
            smtp_ca_file: None,
            smtp_keepalive_timeout: 60.0,
            smtp_retry_timeout: 60.0,
            subject_tpl: "[picomon] {state}: {check} on {dest}".into(),
            watchdog_subject: "[picomon] picomon stopped".into(),
            digest_over: 5,
            report: RawReport::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawReport {
    pub every: f64,
    pub subject: String,
}

impl Default for RawReport {
    fn default() -> Self {
        RawReport {
            every: 0.0,
            subject: "[picomon] error report".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CheckType {
    #[serde(rename = "ping")]
    Ping,
    #[serde(rename = "http")]
    Http,
    #[serde(rename = "https")]
    Https,
    #[serde(rename = "smtp")]
    Smtp,
    #[serde(rename = "dns-rec")]
    DnsRec,
    #[serde(rename = "dns-zone")]
    DnsZone,
    #[serde(rename = "openvpn")]
    Openvpn,
    #[serde(rename = "jabber")]
    Jabber,
    #[serde(rename = "command")]
    Command,
    #[serde(rename = "push")]
    Push,
}

impl CheckType {
    /// The name users write in `type = "…"`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CheckType::Ping => "ping",
            CheckType::Http => "http",
            CheckType::Https => "https",
            CheckType::Smtp => "smtp",
            CheckType::DnsRec => "dns-rec",
            CheckType::DnsZone => "dns-zone",
            CheckType::Openvpn => "openvpn",
            CheckType::Jabber => "jabber",
            CheckType::Command => "command",
            CheckType::Push => "push",
        }
    }

    /// The type-specific keys this type accepts (beyond the common ones).
    pub(crate) fn options(self) -> &'static [&'static str] {
        match self {
            CheckType::Ping => &[],
            CheckType::Jabber => &["port"],
            CheckType::Http => &["port", "status", "vhost", "string", "url"],
            CheckType::Https => &[
                "port",
                "status",
                "vhost",
                "string",
                "url",
                "verify",
                "ca_file",
                "certificate_days",
            ],
            CheckType::Smtp => &["port", "from_addr", "command", "response"],
            CheckType::DnsRec => &["query"],
            CheckType::DnsZone => &["zones", "ip_version"],
            CheckType::Openvpn => &["port", "tls_auth", "key_direction", "tls_crypt"],
            CheckType::Command => &["command"],
            CheckType::Push => &["period", "grace", "token_file"],
        }
    }
}

/// One `[checks.NAME]` table. Type-specific keys are all optional here;
/// validation rejects those that do not belong to the check's type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    #[serde(rename = "type")]
    pub kind: CheckType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_every: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Variables for the plugin, on top of its minimal environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap_switches: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flap_window: Option<i64>,
    /// Checks (or instance ids) whose failure holds this one's mails back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renotify_every: Option<f64>,
    /// Names of `[contacts.NAME]` told about this check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    // http, https
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    // smtp (`command` is shared with the command type, as a different shape)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandValue>,
    // dns-rec
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    // dns-zone
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<i64>,
    // openvpn (default 1194), http, https, smtp, jabber (plugin's default)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    // https
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_days: Option<Vec<i64>>,
    // openvpn
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_auth: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_direction: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_crypt: Option<PathBuf>,
    // push
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// `command` is an argv list for `type = "command"` and an SMTP command
/// string for `type = "smtp"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum CommandValue {
    Argv(Vec<String>),
    Line(String),
}

impl RawCheck {
    /// The type-specific keys that are set, by name.
    pub(crate) fn options_set(&self) -> Vec<&'static str> {
        let set = [
            ("status", self.status.is_some()),
            ("vhost", self.vhost.is_some()),
            ("string", self.string.is_some()),
            ("url", self.url.is_some()),
            ("from_addr", self.from_addr.is_some()),
            ("response", self.response.is_some()),
            ("command", self.command.is_some()),
            ("query", self.query.is_some()),
            ("zones", self.zones.is_some()),
            ("ip_version", self.ip_version.is_some()),
            ("port", self.port.is_some()),
            ("verify", self.verify.is_some()),
            ("ca_file", self.ca_file.is_some()),
            ("certificate_days", self.certificate_days.is_some()),
            ("tls_auth", self.tls_auth.is_some()),
            ("key_direction", self.key_direction.is_some()),
            ("tls_crypt", self.tls_crypt.is_some()),
            ("period", self.period.is_some()),
            ("grace", self.grace.is_some()),
            ("token_file", self.token_file.is_some()),
        ];
        set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
    }
}
