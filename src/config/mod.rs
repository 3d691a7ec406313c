//! Configuration in three stages: `raw` (what users write, serde types that
//! reject unknown keys), `load` (the figment layers merged), and here the
//! validated, immutable `Config` the daemon runs from. Every error names
//! the key and the file or environment variable it came from.

mod load;
pub(crate) mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use regex::Regex;

pub use load::{fragment_dir, ENV_PREFIX};
pub use raw::SmtpSecurity;
use raw::{CheckType, CommandValue, RawCheck, RawConfig, RawEmails, RawHost};

use crate::check::{Family, Instance, Probe, Target, Tls};
use crate::host::{address_of, from_header};

/// Invalid configuration: one line per problem. Exits with EX_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: String) -> ConfigError {
        ConfigError {
            problems: vec![problem],
        }
    }

    /// Rewrites figment's errors as `WHERE: KEY: WHAT`, where WHERE is the
    /// file or the environment variable that set the key.
    fn from_figment(err: figment::Error) -> ConfigError {
        let problems = err
            .into_iter()
            .map(|e| {
                let key = e.path.join(".");
                let origin = origin(e.metadata.as_ref(), &key);
                let what = match &e.kind {
                    figment::error::Kind::UnknownField(found, known) => {
                        format!(
                            "unknown key `{found}`; known keys here: {}",
                            known.join(", ")
                        )
                    }
                    kind => kind.to_string().trim_end().replace('\n', "\n    "),
                };
                if key.is_empty() {
                    format!("{origin}: {what}")
                } else {
                    format!("{origin}: {key}: {what}")
                }
            })
            .collect();
        ConfigError { problems }
    }
}

/// Where the value of `key` came from, for an error message: the
/// environment variable that set it, or its file.
fn origin(metadata: Option<&figment::Metadata>, key: &str) -> String {
    match metadata {
        Some(md) if md.name.contains("environment") => {
            format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
        }
        Some(md) => md
            .source
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "built-in defaults".to_string()),
        None => "configuration".to_string(),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        for p in &self.problems {
            write!(f, "\n -> {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A validated host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

impl Host {
    fn addr(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::V4 => self.ipv4.map(IpAddr::V4),
            Family::V6 => self.ipv6.map(IpAddr::V6),
        }
    }

    fn families(&self) -> Vec<Family> {
        [Family::V4, Family::V6]
            .into_iter()
            .filter(|f| self.addr(*f).is_some())
            .collect()
    }
}

/// Where alerts go and how they are sent.
#[derive(Clone)]
pub struct Emails {
    /// Recipients; empty means that mails are only logged.
    pub to: Vec<String>,
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    /// Extra trusted CA certificates (PEM) for STARTTLS and TLS.
    pub smtp_ca_pem: Option<Vec<u8>>,
    pub keepalive: Duration,
    pub retry: Duration,
    pub subject_tpl: String,
    pub watchdog_subject: String,
    /// None when reports are off.
    pub report_every: Option<Duration>,
    pub report_subject: String,
}

impl fmt::Debug for Emails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emails")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_user", &self.smtp_user)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

/// The whole validated configuration. Never changed once built: a reload
/// builds a new one.
#[derive(Debug, Clone)]
pub struct Config {
    pub base_tick: Duration,
    pub max_parallel: usize,
    pub log_level: log::LevelFilter,
    pub plugin_dir: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub emails: Emails,
    pub hosts: BTreeMap<String, Host>,
    /// Every enabled check, expanded per host and family, sorted by id;
    /// shared with the scheduler rather than copied.
    pub instances: Vec<Arc<Instance>>,
    /// Names of the checks switched off with `enabled = false`.
    pub disabled: Vec<String>,
    /// The files read, in the order they were merged.
    pub files: Vec<PathBuf>,
    pub(crate) raw: RawConfig,
}

impl Config {
    /// Loads every layer for the main file `main`, then validates.
    pub fn load(main: &Path) -> Result<Config, ConfigError> {
        Config::load_with(main, true)
    }

    /// Like `load`; with `read_secrets` false, the password file and the
    /// CA file are not read and no password is required: for validating a
    /// configuration where it is built, before its secrets exist there.
    pub fn load_with(main: &Path, read_secrets: bool) -> Result<Config, ConfigError> {
        let layers = load::load(main)?;
        let mut validator = Validator::new(&layers.figment);
        validator.read_secrets = read_secrets;
        validator.config(layers.raw, layers.files)
    }

    /// The number of enabled checks (before expansion).
    pub fn check_count(&self) -> usize {
        let mut names: Vec<&str> = self.instances.iter().map(|i| i.check.as_str()).collect();
        names.dedup();
        names.len()
    }

    /// The merged configuration as TOML that picomon accepts again, with
    /// secrets left out.
    pub fn dump(&self) -> Result<String, toml::ser::Error> {
        let mut raw = self.raw.clone();
        if raw.emails.smtp_password.is_some() {
            raw.emails.smtp_password = Some("<hidden>".into());
        }
        toml::to_string(&raw)
    }

    /// `OK: N checks (M instances) on H hosts from: FILES`.
    pub fn summary(&self) -> String {
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        let mut s = format!(
            "OK: {} checks ({} instances) on {} hosts",
            self.check_count(),
            self.instances.len(),
            self.hosts.len()
        );
        if !self.disabled.is_empty() {
            s.push_str(&format!(", {} disabled", self.disabled.len()));
        }
        s.push_str(&format!(" from: {}", files.join(", ")));
        s
    }
}

/// Collects every problem instead of stopping at the first, so that one
/// `check-config` run shows them all.
struct Validator<'a> {
    figment: &'a Figment,
    problems: Vec<String>,
    read_secrets: bool,
    defaults: Defaults,
}

/// The validated `default_*` keys, for checks that do not set their own.
#[derive(Clone, Copy)]
struct Defaults {
    every: u32,
    error_every: Option<u32>,
    retry: u32,
    timeout: Duration,
}

impl<'a> Validator<'a> {
    fn new(figment: &'a Figment) -> Validator<'a> {
        Validator {
            figment,
            problems: Vec::new(),
            read_secrets: true,
            defaults: Defaults {
                every: 1,
                error_every: None,
                retry: 1,
                timeout: Duration::from_secs(2),
            },
        }
    }

    /// Records a problem with `key`, naming the layer that set it.
    fn bad(&mut self, key: &str, what: impl fmt::Display) {
        let origin = origin(self.figment.find_metadata(key), key);
        self.problems.push(format!("{origin}: {key}: {what}"));
    }

    fn positive_secs(&mut self, key: &str, value: f64) -> Duration {
        if value.is_finite() && value > 0.0 && value < 1e9 {
            Duration::from_secs_f64(value)
        } else {
            self.bad(
                key,
                format!("must be a positive number of seconds, not {value}"),
            );
            Duration::from_secs(1)
        }
    }

    fn count(&mut self, key: &str, value: i64, min: i64) -> u32 {
        match u32::try_from(value) {
            Ok(v) if value >= min => v,
            _ => {
                self.bad(
                    key,
                    format!("must be a whole number of at least {min}, not {value}"),
                );
                1
            }
        }
    }

    fn name(&mut self, key: &str, name: &str) {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            self.bad(
                key,
                "a name must be non-empty, without '/' or control characters",
            );
        }
    }

    fn config(mut self, raw: RawConfig, files: Vec<PathBuf>) -> Result<Config, ConfigError> {
        let base_tick = self.positive_secs("base_tick", raw.base_tick);
        let max_parallel = self.count("max_parallel", raw.max_parallel, 1) as usize;
        self.defaults = Defaults {
            every: self.count("default_every", raw.default_every, 1),
            error_every: raw
                .default_error_every
                .map(|v| self.count("default_error_every", v, 1)),
            retry: self.count("default_retry", raw.default_retry, 0),
            timeout: self.positive_secs("default_timeout", raw.default_timeout),
        };
        let emails = self.emails(&raw.emails);
        let mut hosts = BTreeMap::new();
        for (key, host) in &raw.hosts {
            if let Some(host) = self.host(key, host) {
                hosts.insert(key.clone(), host);
            }
        }
        let mut instances = Vec::new();
        let mut disabled = Vec::new();
        for (name, check) in &raw.checks {
            if check.enabled == Some(false) {
                disabled.push(name.clone());
                continue;
            }
            instances.extend(self.check(&raw, &hosts, name, check));
        }
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        if !self.problems.is_empty() {
            return Err(ConfigError {
                problems: self.problems,
            });
        }
        Ok(Config {
            base_tick,
            max_parallel,
            log_level: raw.log_level.filter(),
            plugin_dir: raw.plugin_dir.clone(),
            state_dir: raw.state_dir.clone(),
            emails,
            hosts,
            instances,
            disabled,
            files,
            raw,
        })
    }

    fn mailbox(&mut self, key: &str, mailbox: &str) -> String {
        if let Err(e) = mailbox.parse::<lettre::message::Mailbox>() {
            self.bad(key, format!("{mailbox:?} is not an email address: {e}"));
        }
        mailbox.to_string()
    }

    fn emails(&mut self, raw: &RawEmails) -> Emails {
        let to = raw
            .to
            .iter()
            .map(|m| self.mailbox("emails.to", m))
            .collect();
        let from = from_header(raw.from.as_deref());
        let from = self.mailbox("emails.from", &from);
        let (smtp_host, smtp_port) = match split_host_port(&raw.smtp_host) {
            Some((host, port)) => (
                host,
                port.unwrap_or(match raw.smtp_security {
                    SmtpSecurity::Tls => 465,
                    SmtpSecurity::None | SmtpSecurity::Starttls => 25,
                }),
            ),
            None => {
                self.bad(
                    "emails.smtp_host",
                    format!("{:?} is not host or host:port", raw.smtp_host),
                );
                (String::new(), 25)
            }
        };
        let smtp_password = match (&raw.smtp_password, &raw.smtp_password_file) {
            (Some(_), Some(_)) => {
                self.bad(
                    "emails.smtp_password_file",
                    "set either smtp_password or smtp_password_file, not both",
                );
                None
            }
            (Some(p), None) => {
                self.warn_if_world_readable("emails.smtp_password");
                Some(p.clone())
            }
            (None, Some(_)) if !self.read_secrets => None,
            (None, Some(file)) => match std::fs::read_to_string(file) {
                Ok(p) => Some(p.trim_end_matches(['\r', '\n']).to_string()),
                Err(e) => {
                    self.bad(
                        "emails.smtp_password_file",
                        format!("cannot read {}: {e}", file.display()),
                    );
                    None
                }
            },
            (None, None) => None,
        };
        if self.read_secrets && raw.smtp_user.is_some() != smtp_password.is_some() {
            let key = match (&raw.smtp_user, &raw.smtp_password_file) {
                (Some(_), _) => "emails.smtp_user",
                (None, Some(_)) => "emails.smtp_password_file",
                (None, None) => "emails.smtp_password",
            };
            self.bad(key, "smtp_user and a password (smtp_password_file or PICOMON_EMAILS__SMTP_PASSWORD) go together");
        }
        let smtp_ca_pem = raw
            .smtp_ca_file
            .as_ref()
            .filter(|_| self.read_secrets)
            .and_then(|file| match std::fs::read(file) {
                Ok(pem) => match lettre::transport::smtp::client::Certificate::from_pem(&pem) {
                    Ok(_) => Some(pem),
                    Err(e) => {
                        self.bad(
                            "emails.smtp_ca_file",
                            format!("{}: not a PEM certificate: {e}", file.display()),
                        );
                        None
                    }
                },
                Err(e) => {
                    self.bad(
                        "emails.smtp_ca_file",
                        format!("cannot read {}: {e}", file.display()),
                    );
                    None
                }
            });
        let keepalive =
            self.positive_secs("emails.smtp_keepalive_timeout", raw.smtp_keepalive_timeout);
        let retry = self.positive_secs("emails.smtp_retry_timeout", raw.smtp_retry_timeout);
        let every = raw.report.every;
        let report_every = if every == 0.0 {
            None
        } else {
            Some(self.positive_secs("emails.report.every", every))
        };
        for (key, value) in [
            ("emails.subject_tpl", &raw.subject_tpl),
            ("emails.watchdog_subject", &raw.watchdog_subject),
            ("emails.report.subject", &raw.report.subject),
        ] {
            if value.chars().any(char::is_control) {
                self.bad(key, "must be one line, without control characters");
            }
        }
        Emails {
            to,
            from,
            smtp_host,
            smtp_port,
            smtp_security: raw.smtp_security,
            smtp_user: raw.smtp_user.clone(),
            smtp_password,
            smtp_ca_pem,
            keepalive,
            retry,
            subject_tpl: raw.subject_tpl.clone(),
            watchdog_subject: raw.watchdog_subject.clone(),
            report_every,
            report_subject: raw.report.subject.clone(),
        }
    }

    /// A password in a file anyone may read deserves a warning.
    fn warn_if_world_readable(&self, key: &str) {
        use std::os::unix::fs::PermissionsExt;
        let Some(figment::Source::File(path)) = self
            .figment
            .find_metadata(key)
            .and_then(|m| m.source.as_ref())
        else {
            return;
        };
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o004 != 0 {
                log::warn!(
                    "{}: {key} is set in a file anyone on this machine can read; use smtp_password_file or PICOMON_EMAILS__SMTP_PASSWORD",
                    path.display()
                );
            }
        }
    }

    fn host(&mut self, key: &str, raw: &RawHost) -> Option<Host> {
        let at = format!("hosts.{key}");
        self.name(&at, key);
        let ipv4 = raw.ipv4.as_ref().and_then(|a| match a.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.bad(
                    &format!("{at}.ipv4"),
                    format!("{a:?} is not an IPv4 address"),
                );
                None
            }
        });
        let ipv6 = raw.ipv6.as_ref().and_then(|a| match a.parse::<Ipv6Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.bad(
                    &format!("{at}.ipv6"),
                    format!("{a:?} is not an IPv6 address"),
                );
                None
            }
        });
        if raw.ipv4.is_none() && raw.ipv6.is_none() {
            self.bad(&at, "a host needs ipv4, ipv6 or both");
            return None;
        }
        let name = raw.name.clone().unwrap_or_else(|| key.to_string());
        if name.chars().any(char::is_control) {
            self.bad(&format!("{at}.name"), "must not contain control characters");
        }
        Some(Host { name, ipv4, ipv6 })
    }

    /// Validates one check and expands it into its instances.
    fn check(
        &mut self,
        raw: &RawConfig,
        hosts: &BTreeMap<String, Host>,
        name: &str,
        check: &RawCheck,
    ) -> Vec<Arc<Instance>> {
        let at = format!("checks.{name}");
        self.name(&at, name);
        let kind = check.kind;
        for option in check.options_set() {
            if !kind.options().contains(&option) {
                self.bad(
                    &format!("{at}.{option}"),
                    format!("is not an option of checks of type {:?}", kind.as_str()),
                );
            }
        }
        let defaults = &self.defaults;
        let (d_every, d_error_every, d_retry, d_timeout) = (
            defaults.every,
            defaults.error_every,
            defaults.retry,
            defaults.timeout,
        );
        let every = match check.every {
            Some(v) => self.count(&format!("{at}.every"), v, 1),
            None => d_every,
        };
        let error_every = match (check.error_every, d_error_every) {
            (Some(v), _) => self.count(&format!("{at}.error_every"), v, 1),
            (None, Some(v)) => v,
            (None, None) => every,
        };
        let retry = match check.retry {
            Some(v) => self.count(&format!("{at}.retry"), v, 0),
            None => d_retry,
        };
        let timeout = match check.timeout {
            Some(v) => self.positive_secs(&format!("{at}.timeout"), v),
            None => d_timeout,
        };
        let pattern = match (&check.pattern, kind) {
            (Some(p), _) => match Regex::new(p) {
                Ok(re) => Some(re),
                Err(e) => {
                    self.bad(
                        &format!("{at}.pattern"),
                        format!("invalid regular expression: {e}"),
                    );
                    None
                }
            },
            (None, _) => None,
        };

        let Some(probes) = self.probes(raw, name, check) else {
            return Vec::new();
        };
        let targets = self.targets(hosts, name, check);
        let mut out = Vec::new();
        for (probe, label) in probes {
            let mut push = |id: String, dest: String, target: Option<&Target>| {
                out.push(Arc::new(Instance {
                    id,
                    check: name.to_string(),
                    dest,
                    argv: probe.argv(target, timeout, &raw.plugin_dir),
                    reading: probe.reading(target),
                    pattern: pattern.clone(),
                    every,
                    error_every,
                    retry,
                    timeout,
                    env: Vec::new(),
                }));
            };
            match (&targets, label) {
                (Some(targets), _) => {
                    for (target, dest) in targets {
                        let id = format!("{name}/{}/{}", target.host, target.family.id());
                        push(id, dest.clone(), Some(target));
                    }
                }
                (None, Some(label)) => push(format!("{name}/{label}"), label, None),
                (None, None) => push(name.to_string(), name.to_string(), None),
            }
        }
        out
    }

    /// The type-specific part: one probe, or one per zone for `dns-zone`
    /// (with the zone as label).
    fn probes(
        &mut self,
        raw: &RawConfig,
        name: &str,
        check: &RawCheck,
    ) -> Option<Vec<(Probe, Option<String>)>> {
        let at = format!("checks.{name}");
        let one = |p: Probe| Some(vec![(p, None)]);
        let port = match check.port {
            None => None,
            Some(port) => match u16::try_from(port) {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    self.bad(
                        &format!("{at}.port"),
                        format!("{port} is not a port (1 to 65535)"),
                    );
                    return None;
                }
            },
        };
        match check.kind {
            CheckType::Ping => one(Probe::Ping),
            CheckType::Jabber => one(Probe::Jabber { port }),
            CheckType::Http | CheckType::Https => {
                let status = match check.status {
                    Some(s) if (100..=599).contains(&s) => Some(s as u16),
                    Some(s) => {
                        self.bad(
                            &format!("{at}.status"),
                            format!("{s} is not an HTTP status (100 to 599)"),
                        );
                        None
                    }
                    None => None,
                };
                one(Probe::Http {
                    ssl: check.kind == CheckType::Https,
                    port,
                    status,
                    vhost: check.vhost.clone(),
                    string: check.string.clone(),
                    url: check.url.clone(),
                    tls: Tls::default(),
                })
            }
            CheckType::Smtp => {
                let command = match &check.command {
                    Some(CommandValue::Line(c)) => Some(c.clone()),
                    Some(CommandValue::Argv(_)) => {
                        self.bad(
                            &format!("{at}.command"),
                            "for smtp checks this is one SMTP command, a string",
                        );
                        None
                    }
                    None => None,
                };
                let from_addr = check
                    .from_addr
                    .clone()
                    .unwrap_or_else(|| address_of(&from_header(raw.emails.from.as_deref())));
                one(Probe::Smtp {
                    port,
                    from_addr,
                    command,
                    response: check.response.clone(),
                })
            }
            CheckType::DnsRec => one(Probe::DnsRec {
                query: check
                    .query
                    .clone()
                    .unwrap_or_else(|| "www.example.org".into()),
            }),
            CheckType::Openvpn => one(Probe::Openvpn {
                port: port.unwrap_or(1194),
                key: None,
            }),
            CheckType::DnsZone => {
                let family = match check.ip_version {
                    None => None,
                    Some(4) => Some(Family::V4),
                    Some(6) => Some(Family::V6),
                    Some(v) => {
                        self.bad(
                            &format!("{at}.ip_version"),
                            format!("must be 4 or 6, not {v}"),
                        );
                        None
                    }
                };
                let zones = check.zones.clone().unwrap_or_default();
                if zones.is_empty() {
                    self.bad(
                        &format!("{at}.zones"),
                        "a dns-zone check needs at least one zone",
                    );
                    return None;
                }
                let mut probes = Vec::new();
                for zone in zones {
                    self.name(&format!("{at}.zones"), &zone);
                    probes.push((
                        Probe::DnsZone {
                            zone: zone.clone(),
                            family,
                            servers: Vec::new(),
                        },
                        Some(zone),
                    ));
                }
                Some(probes)
            }
            CheckType::Command => match &check.command {
                Some(CommandValue::Argv(argv)) if argv.first().is_some_and(|a| !a.is_empty()) => {
                    let uses_target = argv
                        .iter()
                        .any(|a| a.contains("{addr}") || a.contains("{host}"));
                    if uses_target && check.hosts.is_none() {
                        self.bad(
                            &format!("{at}.command"),
                            "uses {addr} or {host} but the check has no hosts",
                        );
                    }
                    one(Probe::Command { argv: argv.clone() })
                }
                Some(CommandValue::Argv(_)) => {
                    self.bad(
                        &format!("{at}.command"),
                        "must not be empty: give the program and its arguments",
                    );
                    None
                }
                Some(CommandValue::Line(_)) => {
                    self.bad(
                        &format!("{at}.command"),
                        "must be a list: [\"program\", \"argument\", …] (no shell is used)",
                    );
                    None
                }
                None => {
                    self.bad(&at, "a command check needs `command = [\"program\", …]`");
                    None
                }
            },
        }
    }

    /// The hosts and families a check runs against, each with its `{dest}`,
    /// or None for checks without hosts.
    fn targets(
        &mut self,
        hosts: &BTreeMap<String, Host>,
        name: &str,
        check: &RawCheck,
    ) -> Option<Vec<(Target, String)>> {
        let at = format!("checks.{name}");
        let needs_hosts = !matches!(check.kind, CheckType::Command | CheckType::DnsZone);
        let Some(keys) = &check.hosts else {
            if needs_hosts {
                self.bad(
                    &format!("{at}.hosts"),
                    format!("a {} check needs hosts = [\"…\"]", check.kind.as_str()),
                );
            }
            if check.ip.is_some() {
                self.bad(&format!("{at}.ip"), "only applies to checks with hosts");
            }
            return None;
        };
        if check.kind == CheckType::DnsZone {
            self.bad(
                &format!("{at}.hosts"),
                "dns-zone checks take zones, not hosts",
            );
            return None;
        }
        if keys.is_empty() {
            self.bad(
                &format!("{at}.hosts"),
                "must name at least one host (or set enabled = false)",
            );
        }
        let wanted: Option<Vec<Family>> = check.ip.as_ref().map(|ip| {
            let mut families = Vec::new();
            for v in ip {
                match v {
                    4 => families.push(Family::V4),
                    6 => families.push(Family::V6),
                    _ => self.bad(
                        &format!("{at}.ip"),
                        format!("address families are 4 and 6, not {v}"),
                    ),
                }
            }
            families.sort();
            families.dedup();
            if families.is_empty() {
                self.bad(
                    &format!("{at}.ip"),
                    "must name at least one family: [4], [6] or [4, 6]",
                );
            }
            families
        });
        let mut targets = Vec::new();
        for key in keys {
            let Some(host) = hosts.get(key) else {
                self.bad(
                    &format!("{at}.hosts"),
                    format!("unknown host {key:?}: no [hosts.{key}] table"),
                );
                continue;
            };
            let families = match &wanted {
                Some(w) => w.clone(),
                None => host.families(),
            };
            for family in &families {
                match host.addr(*family) {
                    Some(addr) => {
                        let dest = if families.len() > 1 {
                            format!("{} ({})", host.name, family.label())
                        } else {
                            host.name.clone()
                        };
                        targets.push((
                            Target {
                                host: key.clone(),
                                addr,
                                family: *family,
                            },
                            dest,
                        ));
                    }
                    None => self.bad(
                        &format!("{at}.ip"),
                        format!(
                            "host {key:?} has no {} address (hosts.{key}.{})",
                            family.label(),
                            family.id()
                        ),
                    ),
                }
            }
        }
        Some(targets)
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            Some(_) => return None,
            None => (s, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests;
