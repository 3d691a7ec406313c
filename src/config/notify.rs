//! `[notify.NAME]` tables validated: notifiers beyond email, each with its
//! `type` and the options of that type. An unknown type or a key of
//! another type is an error naming the key, so that a notifier never
//! silently does nothing.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use super::raw::RawNotify;
use super::validate::{Seconds, Validator};

/// How long a notifier command may run, unless `timeout` says otherwise.
const DEFAULT_TIMEOUT: f64 = 10.0;
/// How long after a failed attempt the next one comes, unless
/// `retry_every` says otherwise.
const DEFAULT_RETRY: f64 = 60.0;
/// How often firing alerts are sent again to Alertmanager, unless
/// `resend_every` says otherwise: below its default `resolve_timeout`
/// (5 minutes), so that an alert stays firing, and soon after an
/// Alertmanager restart (it keeps no alerts on disk) it is firing again.
const DEFAULT_RESEND: f64 = 60.0;
/// The keys only a command notifier takes.
const COMMAND_KEYS: &[&str] = &["command"];
/// The keys only an Alertmanager notifier takes.
const ALERTMANAGER_KEYS: &[&str] = &[
    "urls",
    "labels",
    "resend_every",
    "username",
    "password_file",
    "bearer_token_file",
    "ca_file",
    "watchdog",
];

/// The labels picomon sets on every Alertmanager alert; `labels` cannot
/// override them.
pub(crate) const OWN_LABELS: &[&str] = &["alertname", "instance", "target", "severity"];

/// One validated notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    /// The NAME of `[notify.NAME]`; also its queue's directory name.
    pub name: String,
    pub kind: NotifierKind,
    /// A failed delivery is tried again this long after it ended.
    pub retry_every: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifierKind {
    /// `type = "command"`: `argv` run with no shell, the event in its
    /// environment, killed with its process group at `timeout`.
    Command {
        argv: Vec<OsString>,
        timeout: Duration,
    },
    /// `type = "alertmanager"`: each switch POSTed as an alert to
    /// `/api/v2/alerts` of every URL, firing ones again every
    /// `resend_every`.
    Alertmanager(Alertmanager),
}

/// An Alertmanager notifier's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alertmanager {
    /// Base URLs (`http://am1:9093`), every peer of the cluster.
    pub urls: Vec<String>,
    /// Static labels added to every alert (`site = "paris"`).
    pub labels: BTreeMap<String, String>,
    pub resend_every: Duration,
    /// For one HTTP request, connecting included.
    pub timeout: Duration,
    pub auth: Option<HttpAuth>,
    /// Extra CA certificates (PEM) for `https` URLs.
    pub ca_pem: Option<Vec<u8>>,
    /// An always-firing `PicomonWatchdog` alert, sent every
    /// `resend_every`: a dead man's switch receiver pages when it stops.
    pub watchdog: bool,
}

/// How picomon authenticates to Alertmanager (or the proxy before it);
/// the secrets come from files, so the configuration never holds them.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpAuth::Basic { username, .. } => write!(f, "Basic({username}, <hidden>)"),
            HttpAuth::Bearer(_) => write!(f, "Bearer(<hidden>)"),
        }
    }
}

impl Validator {
    pub(super) fn notifier(&mut self, name: &str, raw: &RawNotify) -> Option<Notifier> {
        let key = |k: &str| format!("notify.{name}.{k}");
        let before = self.problems.len();
        // The name is a directory under state_dir: no "." or "..".
        if name.starts_with('.') {
            self.bad(&format!("notify.{name}"), "a name must not start with '.'");
        }
        self.name(&format!("notify.{name}"), name);
        let retry_every = self.secs(
            &key("retry_every"),
            raw.retry_every.unwrap_or(DEFAULT_RETRY),
            Seconds::DAY,
        );
        let kind = match raw.kind.as_str() {
            "command" => {
                self.not_of_type(name, raw, "command", ALERTMANAGER_KEYS);
                let argv: Vec<OsString> =
                    raw.command.iter().flatten().map(OsString::from).collect();
                if !argv.first().is_some_and(|program| !program.is_empty()) {
                    self.bad(
                        &key("command"),
                        "a command notifier needs command = [\"program\", \"argument\", …] with a program",
                    );
                }
                let timeout = self.secs(
                    &key("timeout"),
                    raw.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    Seconds::DAY,
                );
                NotifierKind::Command { argv, timeout }
            }
            "alertmanager" => {
                self.not_of_type(name, raw, "alertmanager", COMMAND_KEYS);
                NotifierKind::Alertmanager(self.alertmanager(name, raw))
            }
            other => {
                self.bad(
                    &key("type"),
                    format!(
                        "unknown notifier type {other:?}; known types: \"command\", \"alertmanager\""
                    ),
                );
                return None;
            }
        };
        (self.problems.len() == before).then(|| Notifier {
            name: name.to_string(),
            kind,
            retry_every,
        })
    }
}

impl Validator {
    /// Refuses each of `keys` (those of another type) set in `raw`.
    fn not_of_type(&mut self, name: &str, raw: &RawNotify, kind: &str, keys: &[&str]) {
        let set = [
            ("command", raw.command.is_some()),
            ("urls", raw.urls.is_some()),
            ("labels", raw.labels.is_some()),
            ("resend_every", raw.resend_every.is_some()),
            ("username", raw.username.is_some()),
            ("password_file", raw.password_file.is_some()),
            ("bearer_token_file", raw.bearer_token_file.is_some()),
            ("ca_file", raw.ca_file.is_some()),
        ];
        for (k, _) in set.iter().filter(|(k, on)| *on && keys.contains(k)) {
            self.bad(
                &format!("notify.{name}.{k}"),
                format!("not a key of a notifier of type \"{kind}\""),
            );
        }
    }

    fn alertmanager(&mut self, name: &str, raw: &RawNotify) -> Alertmanager {
        let key = |k: &str| format!("notify.{name}.{k}");
        let urls: Vec<String> = raw.urls.clone().unwrap_or_default();
        if urls.is_empty() {
            self.bad(
                &key("urls"),
                "an alertmanager notifier needs urls = [\"http://alertmanager:9093\", …], every peer of the cluster",
            );
        }
        for url in &urls {
            if let Err(why) = base_url_problem(url) {
                self.bad(&key("urls"), format!("{url:?}: {why}"));
            }
        }
        let labels = raw.labels.clone().unwrap_or_default();
        for label in labels.keys() {
            if let Err(why) = label_name_problem(label) {
                self.bad(&key("labels"), format!("{label:?}: {why}"));
            }
        }
        let resend_every = self.secs(
            &key("resend_every"),
            raw.resend_every.unwrap_or(DEFAULT_RESEND),
            Seconds::DAY,
        );
        let timeout = self.secs(
            &key("timeout"),
            raw.timeout.unwrap_or(DEFAULT_TIMEOUT),
            Seconds::DAY,
        );
        let auth = match (&raw.username, &raw.password_file, &raw.bearer_token_file) {
            (_, Some(_), Some(_)) => {
                self.bad(
                    &key("bearer_token_file"),
                    "set either username and password_file or bearer_token_file, not both",
                );
                None
            }
            (Some(_), None, _) | (None, Some(_), _) => {
                let missing = match raw.username {
                    Some(_) => "password_file",
                    None => "username",
                };
                self.bad(&key(missing), "username and password_file go together");
                None
            }
            _ if !self.on_this_machine => None,
            (Some(username), Some(file), None) => self
                .password_file(&key("password_file"), file)
                .map(|password| HttpAuth::Basic {
                    username: username.clone(),
                    password,
                }),
            (None, None, Some(file)) => self
                .password_file(&key("bearer_token_file"), file)
                .map(HttpAuth::Bearer),
            (None, None, None) => None,
        };
        let ca_pem = match &raw.ca_file {
            Some(file) if self.on_this_machine => self.ca_file(&key("ca_file"), file),
            _ => None,
        };
        Alertmanager {
            urls,
            labels,
            resend_every,
            timeout,
            auth,
            ca_pem,
            watchdog: raw.watchdog.unwrap_or(false),
        }
    }
}

/// Why `url` cannot be an Alertmanager base URL, if it cannot.
fn base_url_problem(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the URL must start with http:// or https://".into()),
    }
    if !uri.host().is_some_and(|h| !h.is_empty()) {
        return Err("the URL has no host".into());
    }
    if uri.query().is_some() {
        return Err("a base URL takes no query (picomon adds /api/v2/alerts)".into());
    }
    Ok(())
}

/// Why `name` cannot be a Prometheus label name, if it cannot: the ones
/// picomon sets itself are refused too, so that none is silently lost.
fn label_name_problem(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("a label name is letters, digits and _, not starting with a digit".into());
    }
    if OWN_LABELS.contains(&name) {
        return Err("picomon sets this label itself".into());
    }
    Ok(())
}
