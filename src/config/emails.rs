//! The `[emails]` section validated: recipients, sender, SMTP server and
//! its secrets (password, CA bundle). Secrets are read here, once, so the
//! mail code never touches a file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{origin, ConfigError};
use super::paths;
use super::raw::{RawEmails, SmtpSecurity};
use super::validate::{Seconds, Validator};
use crate::host::from_header;

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
    /// More problems (or recoveries) than this at once make one digest
    /// mail; 0 turns digests off.
    pub digest_over: u32,
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

/// What mailing needs of a configuration: `[emails]`, and `state_dir`
/// for a spool.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub emails: Emails,
    /// None when unset or not usable as it stands.
    pub state_dir: Option<PathBuf>,
}

/// The `[emails]` section of the configuration `main` (all its layers),
/// validated alone, as `Config::load` validates it: for the watchdog,
/// which must mail that picomon refuses a configuration even when what
/// is wrong in it is a check. Nothing can be read of a layer that is not
/// TOML, nor of a configuration whose files are refused.
pub fn load_emails(main: &Path) -> Result<MailSettings, ConfigError> {
    let files = super::load::layer_files(main)?;
    let figment = super::load::merge(&files);
    let raw: RawEmails = figment
        .extract_inner("emails")
        .map_err(|e| ConfigError::from_figment(&figment, e))?;
    let state_dir = figment
        .extract_inner::<PathBuf>("state_dir")
        .ok()
        .filter(|dir| paths::state_dir_problem(dir, true).is_none());
    let mut validator = Validator::new(files);
    let emails = validator.emails(&raw);
    match validator.problems.is_empty() {
        true => Ok(MailSettings { emails, state_dir }),
        false => Err(ConfigError {
            problems: validator.problems,
        }),
    }
}

impl Validator {
    /// A mailbox of `[contacts.NAME] to`.
    pub(super) fn contact_mailbox(&mut self, key: &str, mailbox: &str) -> String {
        self.mailbox(key, mailbox)
    }

    fn mailbox(&mut self, key: &str, mailbox: &str) -> String {
        if let Err(e) = mailbox.parse::<lettre::message::Mailbox>() {
            self.bad(key, format!("{mailbox:?} is not an email address: {e}"));
        }
        mailbox.to_string()
    }

    pub(super) fn emails(&mut self, raw: &RawEmails) -> Emails {
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
            (None, Some(_)) if !self.on_this_machine => None,
            (None, Some(file)) => self.password_file("emails.smtp_password_file", file),
            (None, None) => None,
        };
        // A password file that could not be read is its own error already.
        let password_set = raw.smtp_password.is_some() || raw.smtp_password_file.is_some();
        if self.on_this_machine && raw.smtp_user.is_some() != password_set {
            let key = match (&raw.smtp_user, &raw.smtp_password_file) {
                (Some(_), _) => "emails.smtp_user",
                (None, Some(_)) => "emails.smtp_password_file",
                (None, None) => "emails.smtp_password",
            };
            self.bad(key, "smtp_user and a password (smtp_password_file or PICOMON_EMAILS__SMTP_PASSWORD) go together");
        }
        if let Some(problem) = clear_text_auth(raw, &smtp_host) {
            self.bad("emails.smtp_security", problem);
        }
        let smtp_ca_pem = match &raw.smtp_ca_file {
            Some(file) if self.on_this_machine => self.ca_file("emails.smtp_ca_file", file),
            _ => None,
        };
        let keepalive = self.secs(
            "emails.smtp_keepalive_timeout",
            raw.smtp_keepalive_timeout,
            Seconds::DAY,
        );
        let retry = self.secs(
            "emails.smtp_retry_timeout",
            raw.smtp_retry_timeout,
            Seconds::DAY,
        );
        let every = raw.report.every;
        let report_every = if every == 0.0 {
            None
        } else {
            Some(self.secs("emails.report.every", every, Seconds::YEAR))
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
            digest_over: self.count("emails.digest_over", raw.digest_over, 0, u32::MAX),
            report_every,
            report_subject: raw.report.subject.clone(),
        }
    }

    /// The secret in a password or token file (`key`): its first line,
    /// from a small regular file.
    pub(super) fn password_file(&mut self, key: &str, file: &Path) -> Option<String> {
        let (bytes, mode) = match crate::files::read_small_file(file, paths::PASSWORD_CAP) {
            Ok(read) => read,
            Err(e) => {
                self.bad(key, e);
                return None;
            }
        };
        if mode & 0o004 != 0 {
            log::warn!(
                "{}: {key}: {} can be read by anyone on this machine (mode {mode:04o}); make it 0600 or 0640",
                origin(self.layers(), key),
                file.display()
            );
        }
        match String::from_utf8(bytes) {
            Ok(p) if p.contains('\0') => {
                self.bad(
                    key,
                    format!("{}: the password contains a NUL byte", file.display()),
                );
                None
            }
            Ok(p) => Some(p.trim_end_matches(['\r', '\n']).to_string()),
            Err(_) => {
                self.bad(key, format!("{}: not UTF-8 text", file.display()));
                None
            }
        }
    }

    /// The extra CA certificates of a CA file (`key`), checked to be PEM.
    pub(super) fn ca_file(&mut self, key: &str, file: &Path) -> Option<Vec<u8>> {
        let pem = match crate::files::read_small_file(file, paths::CA_CAP) {
            Ok((pem, _)) => pem,
            Err(e) => {
                self.bad(key, e);
                return None;
            }
        };
        // The parser takes a file without any certificate: not a CA file.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            self.bad(key, format!("{}: no PEM certificate in it", file.display()));
            return None;
        }
        match lettre::transport::smtp::client::Certificate::from_pem(&pem) {
            Ok(_) => Some(pem),
            Err(e) => {
                self.bad(
                    key,
                    format!("{}: not a PEM certificate: {e}", file.display()),
                );
                None
            }
        }
    }

    /// A password in a file anyone may read deserves a warning.
    fn warn_if_world_readable(&self, key: &str) {
        use std::os::unix::fs::PermissionsExt;
        let Some(figment::Source::File(path)) = self
            .layers()
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
}

/// Why the `[emails]` settings would send a password in clear text, or
/// None. AUTH over a plain connection is refused unless the server is on
/// this machine's loopback, where the password never leaves it: anyone
/// on the path could read it, and a warning is read too late.
fn clear_text_auth(raw: &RawEmails, host: &str) -> Option<String> {
    let authenticates =
        raw.smtp_user.is_some() || raw.smtp_password.is_some() || raw.smtp_password_file.is_some();
    // An smtp_host that is not host:port is an error of its own.
    if !authenticates
        || raw.smtp_security != SmtpSecurity::None
        || host.is_empty()
        || is_loopback(host)
    {
        return None;
    }
    Some(format!(
        "\"none\" with smtp_user and a password would send the password in clear text to {host}; \
         set smtp_security = \"starttls\" or \"tls\" (AUTH without TLS is only allowed to a server \
         on the loopback: 127.0.0.0/8, ::1, localhost)"
    ))
}

/// Whether `host` names this machine's loopback: 127.0.0.0/8, ::1 (or
/// ::ffff:127.x.y.z), `localhost`. Other names are not resolved here:
/// what they point to can change under a running daemon.
fn is_loopback(host: &str) -> bool {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`.
pub(super) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
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
mod tests {
    use super::*;

    #[test]
    fn only_the_loopback_may_be_sent_a_password_without_tls() {
        for host in [
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "::ffff:127.0.0.1",
            "localhost",
            "LOCALHOST.",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "mail.example.org",
            "10.0.0.1",
            "::2",
            "localhost.example.org",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
