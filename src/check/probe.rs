//! What each check type runs: the plugin's argv for a target (SPEC 3),
//! never a shell, and how its output is to be read.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::{Family, Reading, Target};

/// The validated, type-specific part of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
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
    /// Nothing runs: results are pushed (`crate::push`).
    Push,
}

/// How an https check judges the certificate (`picomon plugin https`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
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
pub(crate) enum OpenvpnKey {
    /// `tls-auth`: an HMAC on every control packet; `direction` is the
    /// client's `key-direction` (None: the key is used both ways).
    TlsAuth {
        file: PathBuf,
        direction: Option<u8>,
    },
    /// `tls-crypt`: control packets are encrypted and authenticated.
    TlsCrypt { file: PathBuf },
}

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
pub(super) fn seconds_within(timeout: Duration) -> u64 {
    ceil_secs(timeout).saturating_sub(1).max(1)
}

impl Probe {
    /// The plugin command line, an argv that is never given to a shell.
    pub(crate) fn argv(
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
                ssl: false,
                port,
                status,
                vhost,
                string,
                url,
                tls: _,
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
            }
            Probe::Http {
                ssl: true,
                port,
                status,
                vhost,
                string,
                url,
                tls,
            } => {
                // Built in: check_http cannot verify a certificate, and
                // check_curl is missing where there is no libcurl (NixOS).
                // `--key=value`, so that a value starting with '-' is not
                // taken for an option.
                argv.push(picomon_exe());
                let mut push = |s: &str| argv.push(OsString::from(s));
                for a in ["plugin", "https", "-H", &addr, "-t", &exact] {
                    push(a);
                }
                push_port(&mut push, *port);
                if let Some(vhost) = vhost {
                    push(&format!("--vhost={vhost}"));
                }
                if let Some(url) = url {
                    push(&format!("--url={url}"));
                }
                if let Some(status) = status {
                    push(&format!("--status={status}"));
                }
                if let Some(string) = string {
                    push(&format!("--string={string}"));
                }
                match (tls.verify, &tls.ca_file) {
                    (false, _) => push("--no-verify"),
                    (true, Some(ca)) => {
                        let mut arg = OsString::from("--ca-file=");
                        arg.push(ca);
                        argv.push(arg);
                    }
                    (true, None) => {}
                }
                if let Some((warn, crit)) = tls.certificate_days {
                    argv.push(OsString::from(format!("--certificate-days={warn},{crit}")));
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
            Probe::Push => {}
            Probe::Command { argv: words } => {
                let host = target.map(|t| t.host.as_str()).unwrap_or_default();
                for word in words {
                    push(&word.replace("{addr}", &addr).replace("{host}", host));
                }
            }
        }
        // Kept for as long as the check is configured: no spare capacity
        // (half the vector, with 10,000 checks 0.5 MiB).
        argv.shrink_to_fit();
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
    pub(crate) fn reading(&self, target: Option<&Target>) -> Reading {
        let addr = target.map(|t| t.addr.to_string()).unwrap_or_default();
        match self {
            Probe::Ping => Reading::Ping { addr },
            Probe::DnsRec { query } => Reading::Dig {
                query: query.clone(),
                server: addr,
            },
            _ => Reading::Nagios,
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
            words(&p.argv(Some(&v6()), T, Path::new(DIR)))[1..],
            [
                "plugin",
                "https",
                "-H",
                "2001:db8::10",
                "-t",
                "2.5",
                "-p",
                "8443",
                "--vhost=www.example.org",
                "--url=/login",
                "--status=302",
                "--string=Welcome",
                "--ca-file=/etc/ca.pem",
                "--certificate-days=30,7"
            ]
        );
        let Probe::Http { tls, .. } = &mut p else {
            unreachable!()
        };
        tls.verify = false;
        let argv = words(&p.argv(Some(&v4()), T, Path::new(DIR)));
        // The CA file goes with verification only.
        assert!(argv.contains(&"--no-verify".to_string()), "{argv:?}");
        assert!(!argv.iter().any(|a| a.starts_with("--ca-file")), "{argv:?}");
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
}
