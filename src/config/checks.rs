//! Hosts and checks validated, and each check expanded into its instances:
//! one per host and address family (or per zone), each with the plugin
//! argv it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use regex::Regex;

use super::error::ENV_PREFIX;
use super::paths;
use super::raw::{CheckType, CommandValue, RawCheck, RawConfig, RawHost};
use super::validate::{Seconds, Validator};
use crate::check::{Family, Instance, OpenvpnKey, Probe, Target, Tls};
use crate::depends::{resolve, Parents};
use crate::host::{address_of, from_header};

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

impl Validator {
    pub(super) fn host(&mut self, key: &str, raw: &RawHost) -> Option<Host> {
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
    pub(super) fn check(
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
            Some(v) => self.count(&format!("{at}.every"), v, 1, u32::MAX),
            None => d_every,
        };
        let error_every = match (check.error_every, d_error_every) {
            (Some(v), _) => self.count(&format!("{at}.error_every"), v, 1, u32::MAX),
            (None, Some(v)) => v,
            (None, None) => every,
        };
        let retry = match check.retry {
            Some(v) => self.count(&format!("{at}.retry"), v, 0, u32::MAX),
            // A push is a rare event (a nightly job): its first failure,
            // or its first missed period, is the one to mail.
            None if kind == CheckType::Push => 0,
            None => d_retry,
        };
        let timeout = match check.timeout {
            Some(v) => self.secs(&format!("{at}.timeout"), v, Seconds::DAY),
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

        let flap = self.flap_limits(
            &format!("{at}."),
            check
                .flap_switches
                .unwrap_or(i64::from(self.defaults.flap.switches)),
            check
                .flap_window
                .unwrap_or(i64::from(self.defaults.flap.window)),
        );
        let renotify_every = match check.renotify_every {
            Some(v) => self.renotify(&format!("{at}.renotify_every"), v),
            None => self.defaults.renotify_every,
        };
        let env = self.plugin_env(&at, check.env.as_ref());
        let Some(probes) = self.probes(raw, hosts, name, check) else {
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
                    flap,
                    renotify_every,
                    env: env.clone(),
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

    /// Every check's `depends`, resolved to parent instances; unknown
    /// names and cycles are problems of `checks.NAME.depends`.
    /// `depends`: each check's that has one; `names`: every check's.
    pub(super) fn depends(
        &mut self,
        depends: &BTreeMap<String, Vec<String>>,
        names: &BTreeSet<String>,
        instances: &[Arc<Instance>],
        disabled: &[String],
    ) -> Parents {
        let depends: BTreeMap<&str, &[String]> = depends
            .iter()
            .map(|(name, d)| (name.as_str(), d.as_slice()))
            .collect();
        // With other problems, instances may be missing: no guessing.
        if depends.is_empty() || !self.problems.is_empty() {
            return Parents::new();
        }
        let list: Vec<(&str, &str)> = instances
            .iter()
            .map(|i| (i.id.as_str(), i.check.as_str()))
            .collect();
        let checks: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let disabled: BTreeSet<&str> = disabled.iter().map(String::as_str).collect();
        match resolve(&list, &depends, &checks, &disabled) {
            Ok(parents) => parents,
            Err(problems) => {
                for (check, what) in problems {
                    self.bad(&format!("checks.{check}.depends"), what);
                }
                Parents::new()
            }
        }
    }

    /// The type-specific part: one probe, or one per zone for `dns-zone`
    /// (with the zone as label).
    fn probes(
        &mut self,
        raw: &RawConfig,
        hosts: &BTreeMap<String, Host>,
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
            CheckType::Push => one(Probe::Push),
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
                if check.kind == CheckType::Https {
                    self.https_target(&at, check);
                }
                one(Probe::Http {
                    ssl: check.kind == CheckType::Https,
                    port,
                    status,
                    vhost: check.vhost.clone(),
                    string: check.string.clone(),
                    url: check.url.clone(),
                    tls: self.tls(&at, check),
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
                key: self.openvpn_key(&at, check),
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
                // `hosts` names the nameservers to ask, each address of the
                // family (or both); without it the zone's NS records do.
                let mut servers = Vec::new();
                for key in check.hosts.iter().flatten() {
                    let Some(host) = hosts.get(key) else {
                        self.bad(
                            &format!("{at}.hosts"),
                            format!("unknown host {key:?}: no [hosts.{key}] table"),
                        );
                        continue;
                    };
                    for f in host.families() {
                        if family.unwrap_or(f) == f {
                            servers.extend(host.addr(f).map(|a| (host.name.clone(), a)));
                        }
                    }
                }
                if check.hosts.as_ref().is_some_and(|h| !h.is_empty()) && servers.is_empty() {
                    self.bad(
                        &format!("{at}.hosts"),
                        "none of these hosts has an address of ip_version",
                    );
                }
                let mut probes = Vec::new();
                for zone in zones {
                    self.name(&format!("{at}.zones"), &zone);
                    probes.push((
                        Probe::DnsZone {
                            zone: zone.clone(),
                            family,
                            servers: servers.clone(),
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

    /// The check's `env` table: variables its plugin gets on top of the
    /// minimal environment, sorted by name. `PICOMON_*` names are refused:
    /// that is picomon's own configuration (and secrets), which plugins
    /// never see.
    fn plugin_env(
        &mut self,
        at: &str,
        env: Option<&BTreeMap<String, String>>,
    ) -> Vec<(OsString, OsString)> {
        let mut out = Vec::new();
        for (name, value) in env.into_iter().flatten() {
            let key = format!("{at}.env.{name}");
            let problem = if name.is_empty() || name.contains(['=', '\0']) {
                Some("a variable name must be non-empty, without '=' or NUL")
            } else if name.to_ascii_uppercase().starts_with(ENV_PREFIX) {
                Some("PICOMON_* variables are picomon's configuration and never reach a plugin")
            } else if value.contains('\0') {
                Some("a value must not contain a NUL byte")
            } else {
                None
            };
            match problem {
                Some(problem) => self.bad(&key, problem),
                None => out.push((OsString::from(name), OsString::from(value))),
            }
        }
        out
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
        let needs_hosts = !matches!(
            check.kind,
            CheckType::Command | CheckType::DnsZone | CheckType::Push
        );
        if check.kind == CheckType::Push {
            if check.hosts.is_some() {
                self.bad(
                    &format!("{at}.hosts"),
                    "a push check has no hosts: it is told its results (picomon push NAME)",
                );
            }
            return None;
        }
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
            // The nameservers to ask, not targets: one instance per zone.
            if check.ip.is_some() {
                self.bad(
                    &format!("{at}.ip"),
                    "dns-zone checks choose a family with ip_version",
                );
            }
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

    /// An https check's `url` and `vhost`, checked as the probe will use
    /// them: a bad one is a configuration error, not a failure at every run.
    fn https_target(&mut self, at: &str, check: &RawCheck) {
        use crate::check::http_target::{path_problem, vhost_problem};
        if let Some(problem) = check.url.as_deref().and_then(path_problem) {
            self.bad(&format!("{at}.url"), problem);
        }
        if let Some(problem) = check.vhost.as_deref().and_then(vhost_problem) {
            self.bad(&format!("{at}.vhost"), problem);
        }
    }

    /// How an https check judges the certificate.
    fn tls(&mut self, at: &str, check: &RawCheck) -> Tls {
        let certificate_days = match check.certificate_days.as_deref() {
            None => None,
            Some(&[warn, crit]) if crit >= 0 && warn >= crit && warn <= 36_500 => {
                Some((warn as u32, crit as u32))
            }
            Some(other) => {
                self.bad(
                    &format!("{at}.certificate_days"),
                    format!(
                        "must be [WARN, CRIT]: days before expiry, WARN >= CRIT >= 0, not {other:?}"
                    ),
                );
                None
            }
        };
        // Only where picomon runs, as smtp_ca_file: a configuration built
        // elsewhere (a NixOS build) does not see the machine's files.
        if let Some(file) = check.ca_file.as_ref().filter(|_| self.on_this_machine) {
            // Never a plain open: a FIFO would block it for ever.
            if let Err(e) = crate::files::read_small_file(file, paths::CA_CAP) {
                self.bad(&format!("{at}.ca_file"), e);
            }
        }
        Tls {
            verify: check.verify.unwrap_or(true),
            ca_file: check.ca_file.clone(),
            certificate_days,
        }
    }

    /// The static key an OpenVPN check wraps its probe with, checked here
    /// so that a missing or broken key file is a configuration error.
    fn openvpn_key(&mut self, at: &str, check: &RawCheck) -> Option<OpenvpnKey> {
        let direction = match check.key_direction {
            None => None,
            Some(d @ (0 | 1)) if check.tls_auth.is_some() => Some(d as u8),
            Some(d @ (0 | 1)) => {
                self.bad(
                    &format!("{at}.key_direction"),
                    format!("{d} applies to tls_auth only, and tls_auth is not set"),
                );
                None
            }
            Some(d) => {
                self.bad(
                    &format!("{at}.key_direction"),
                    format!("must be 0 or 1 (the client's key-direction), not {d}"),
                );
                None
            }
        };
        let (key, file, name) = match (&check.tls_auth, &check.tls_crypt) {
            (None, None) => return None,
            (Some(_), Some(_)) => {
                self.bad(
                    &format!("{at}.tls_crypt"),
                    "set tls_auth or tls_crypt, as the server does, not both",
                );
                return None;
            }
            (Some(file), None) => (
                OpenvpnKey::TlsAuth {
                    file: file.clone(),
                    direction,
                },
                file,
                "tls_auth",
            ),
            (None, Some(file)) => (
                OpenvpnKey::TlsCrypt { file: file.clone() },
                file,
                "tls_crypt",
            ),
        };
        if self.on_this_machine {
            // A FIFO or /dev/zero must be refused before the key is parsed.
            if let Err(e) = crate::files::read_small_file(file, paths::PASSWORD_CAP) {
                self.bad(&format!("{at}.{name}"), e);
            } else if let Err(e) = crate::check::static_key::read_static_key(file) {
                self.bad(
                    &format!("{at}.{name}"),
                    format!("cannot use {} as a static key: {e}", file.display()),
                );
            }
        }
        Some(key)
    }
}
