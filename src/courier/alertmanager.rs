//! `type = "alertmanager"`: a switch is an alert POSTed to
//! `/api/v2/alerts` of every configured URL. Alertmanager's HA contract is
//! that clients send to every peer (peers share silences and what they
//! notified, not alerts), so each one is sent to all; a delivery counts
//! once one peer took it, so a peer that is down holds back neither the
//! queue nor the others.
//!
//! Alertmanager keeps alerts in memory only and ends one it has not heard
//! of for `resolve_timeout`: so the alerts still firing are kept here (and
//! in `firing.alerts` beside the queue, for a restart) and sent again to
//! every peer every `resend_every`. The resolved alert is the firing one
//! with `endsAt`, so that its labels, and Alertmanager's fingerprint, are
//! the same.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::channel::{Channel, Try};
use super::note::{logged, Note};
use super::retry::Outcome;
use crate::config::{Alertmanager as Settings, HttpAuth, Notifier, NotifierKind};
use crate::files::{self, Links, Refused};

/// An Alertmanager notifier, in its courier's thread.
pub(crate) struct Alertmanager {
    pub(crate) name: String,
    pub(crate) settings: Settings,
    pub(crate) retry: Duration,
    pub(crate) firing: Firing,
}

impl Channel for Alertmanager {
    type Entry = Note;
    type Settings = Notifier;

    fn retry(&self) -> Duration {
        self.retry
    }

    fn deliver(&mut self, note: &mut Note, attempt: Try) -> Outcome {
        let posted = self.firing.deliver(&self.settings, note);
        logged(&self.name, note, posted, self.retry, attempt)
    }

    fn reconfigure(&mut self, notifier: Notifier) {
        // Another kind under this name is another courier (see
        // `Notifiers::reconfigure`): only Alertmanager settings here.
        if let NotifierKind::Alertmanager(settings) = notifier.kind {
            self.settings = settings;
        }
        self.retry = notifier.retry_every;
    }

    fn wake_at(&self) -> Option<Instant> {
        self.firing.next_resend(&self.settings)
    }

    fn wake(&mut self, _now: Instant) {
        self.firing.resend(&self.name, &self.settings);
    }
}

/// The name of the file of alerts still firing, in the queue's directory
/// (not a queue file: those end in `.json` or `.pending`).
const FIRING_FILE: &str = "firing.alerts";
/// Largest `firing.alerts` read: an alert is some hundred bytes.
const FIRING_CAP: u64 = 64 * 1024 * 1024;

/// One alert as Alertmanager's API v2 takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Alert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none", default)]
    ends_at: Option<String>,
}

/// A firing alert, with the outage it tells (to match a restart's state).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Open {
    since: SystemTime,
    alert: Alert,
}

/// The alerts still firing, by instance id, and when they go again.
pub(crate) struct Firing {
    open: BTreeMap<String, Open>,
    /// `firing.alerts`, with a state directory.
    file: Option<PathBuf>,
    next_resend: Instant,
}

impl Firing {
    /// What `dir/firing.alerts` holds, keeping only the alerts whose
    /// outage `still(id, since)` says is still on (the saved state): one
    /// that recovered meanwhile has its resolved alert queued anyway.
    pub(crate) fn load(
        dir: Option<&std::path::Path>,
        still: impl Fn(&str, SystemTime) -> bool,
    ) -> Firing {
        let file = dir.map(|d| d.join(FIRING_FILE));
        let mut open: BTreeMap<String, Open> = file
            .as_ref()
            .and_then(
                |f| match files::read_regular(f, FIRING_CAP, Links::Refuse) {
                    Ok((bytes, _)) => serde_json::from_slice(&bytes)
                        .map_err(|e| {
                            log::error!("{}: unreadable, starting without it: {e}", f.display())
                        })
                        .ok(),
                    Err(Refused::Missing) => None,
                    Err(e) => {
                        log::error!("{}: cannot read it: {e}", f.display());
                        None
                    }
                },
            )
            .unwrap_or_default();
        open.retain(|id, o| still(id, o.since));
        Firing {
            open,
            file,
            next_resend: Instant::now(),
        }
    }

    /// When the firing alerts go again, if any is firing (the watchdog
    /// alert always is).
    pub(crate) fn next_resend(&self, settings: &Settings) -> Option<Instant> {
        (settings.watchdog || !self.open.is_empty()).then_some(self.next_resend)
    }

    fn save(&self) {
        let Some(file) = &self.file else { return };
        let written = serde_json::to_vec_pretty(&self.open)
            .map_err(std::io::Error::other)
            .and_then(|json| files::write_atomic(file, &json));
        if let Err(e) = written {
            log::error!(
                "{}: cannot save the firing alerts (a restart would not send them again): {e}",
                file.display()
            );
        }
    }

    /// Sends every firing alert again to every peer, when it is time.
    pub(crate) fn resend(&mut self, name: &str, settings: &Settings) {
        if !self
            .next_resend(settings)
            .is_some_and(|at| Instant::now() >= at)
        {
            return;
        }
        let mut alerts: Vec<Alert> = self.open.values().map(|o| o.alert.clone()).collect();
        if settings.watchdog {
            alerts.push(Alert::watchdog(settings));
        }
        if let Err(why) = post_all(settings, &alerts) {
            log::warn!(
                "notify.{name}: the {} firing alerts not sent again: {why}",
                alerts.len()
            );
        }
        self.next_resend = Instant::now() + settings.resend_every;
    }

    /// Delivers `note`: its firing alert, or the end of the one firing.
    pub(crate) fn deliver(&mut self, settings: &Settings, note: &Note) -> Result<(), String> {
        if note.problem {
            let alert = Alert::firing(settings, note);
            post_all(settings, std::slice::from_ref(&alert))?;
            // Just sent: the next time is a full period away; but the
            // watchdog alert, firing all along, keeps its own time (put
            // off, Alertmanager could resolve it between two sends).
            if self.open.is_empty() && !settings.watchdog {
                self.next_resend = Instant::now() + settings.resend_every;
            }
            self.open.insert(
                note.id.clone(),
                Open {
                    since: note.since,
                    alert,
                },
            );
        } else {
            // The alert that fired, so that Alertmanager matches it; one
            // made from the note when picomon lost it (a severity label
            // may then differ, and Alertmanager ends the firing one at
            // its resolve_timeout).
            let mut alert = match self.open.get(&note.id) {
                Some(o) if o.since == note.since => o.alert.clone(),
                _ => Alert::firing(settings, note),
            };
            alert.ends_at = Some(rfc3339(SystemTime::now()));
            post_all(settings, std::slice::from_ref(&alert))?;
            if self
                .open
                .get(&note.id)
                .is_some_and(|o| o.since == note.since)
            {
                self.open.remove(&note.id);
            }
        }
        self.save();
        Ok(())
    }
}

impl Alert {
    /// `alertname="PicomonWatchdog"`, always firing while picomon runs,
    /// with the site's labels: the Prometheus convention that a dead
    /// man's switch receiver watches.
    fn watchdog(settings: &Settings) -> Alert {
        static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
        let mut labels = settings.labels.clone();
        labels.insert("alertname".into(), "PicomonWatchdog".into());
        labels.insert("severity".into(), "none".into());
        let summary = "picomon is running: this alert always fires, and its end means picomon, its machine or its network is down";
        Alert {
            labels,
            annotations: BTreeMap::from([("summary".to_string(), summary.to_string())]),
            starts_at: rfc3339(*STARTED.get_or_init(SystemTime::now)),
            ends_at: None,
        }
    }

    fn firing(settings: &Settings, note: &Note) -> Alert {
        let mut labels = settings.labels.clone();
        for (label, var) in [
            ("alertname", "CHECK"),
            ("instance", "INSTANCE"),
            ("target", "TARGET"),
            ("severity", "SEVERITY"),
        ] {
            labels.insert(label.to_string(), note.var(var).to_string());
        }
        // Alertmanager routes and Prometheus rules spell severities in
        // lower case ("critical", "warning").
        if let Some(severity) = labels.get_mut("severity") {
            severity.make_ascii_lowercase();
        }
        let output = note.var("OUTPUT");
        let annotations = BTreeMap::from([
            (
                "summary".to_string(),
                output.lines().next().unwrap_or("").to_string(),
            ),
            ("description".to_string(), output.to_string()),
        ]);
        Alert {
            labels,
            annotations,
            starts_at: rfc3339(note.since),
            ends_at: None,
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// POSTs `alerts` to every peer; Ok when at least one took them (the
/// others are logged), else every peer's error.
fn post_all(settings: &Settings, alerts: &[Alert]) -> Result<(), String> {
    let body = serde_json::to_vec(alerts).map_err(|e| e.to_string())?;
    let agent = agent(settings)?;
    let mut errors = Vec::new();
    for url in &settings.urls {
        if let Err(why) = post(&agent, settings, url, &body) {
            errors.push(why);
        }
    }
    match errors.len() == settings.urls.len() {
        true => Err(errors.join("; ")),
        false => {
            for why in &errors {
                log::warn!("{why} (another Alertmanager took it)");
            }
            Ok(())
        }
    }
}

fn agent(settings: &Settings) -> Result<ureq::Agent, String> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(settings.timeout))
        .http_status_as_error(false);
    let roots = match &settings.ca_pem {
        Some(pem) => Some(ureq::tls::RootCerts::new_with_certs(
            &ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the CA file: {e}"))?,
        )),
        // Shared, not copied: the system's list is read once per process.
        None => system_roots().clone(),
    };
    if let Some(roots) = roots {
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    Ok(config.build().into())
}

/// The system's trusted CAs (`crate::ca_certs`), as ureq takes them,
/// made once: what curl, the https checks and SMTP trust too. None when
/// the system has none, and ureq's built-in roots are used instead.
fn system_roots() -> &'static Option<ureq::tls::RootCerts> {
    static ROOTS: std::sync::OnceLock<Option<ureq::tls::RootCerts>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = crate::ca_certs::system();
        for e in found.errors.iter().take(3) {
            log::warn!("Alertmanager over https: reading the system's CA certificates: {e}");
        }
        let certs: Vec<_> = found
            .certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        match certs.is_empty() {
            true => None,
            false => Some(ureq::tls::RootCerts::new_with_certs(&certs)),
        }
    })
}

fn post(agent: &ureq::Agent, settings: &Settings, url: &str, body: &[u8]) -> Result<(), String> {
    let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
    let mut request = agent
        .post(&endpoint)
        .header("Content-Type", "application/json");
    match &settings.auth {
        Some(HttpAuth::Basic { username, password }) => {
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            request = request.header("Authorization", format!("Basic {pair}"));
        }
        Some(HttpAuth::Bearer(token)) => {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        None => {}
    }
    let mut response = request.send(body).map_err(|e| format!("{endpoint}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let said = response
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    Err(format!("{endpoint}: HTTP {status}: {}", said.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn open(since: u64) -> Open {
        Open {
            since: UNIX_EPOCH + Duration::from_secs(since),
            alert: Alert {
                labels: BTreeMap::from([("alertname".to_string(), "web".to_string())]),
                annotations: BTreeMap::new(),
                starts_at: rfc3339(UNIX_EPOCH + Duration::from_secs(since)),
                ends_at: None,
            },
        }
    }

    #[test]
    fn after_a_restart_only_the_alerts_of_outages_still_saved_failing_are_sent_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let saved = BTreeMap::from([("web".to_string(), open(100)), ("db".to_string(), open(50))]);
        let json = serde_json::to_vec(&saved).expect("json");
        std::fs::write(dir.path().join(FIRING_FILE), json).expect("write");
        let firing = Firing::load(Some(dir.path()), |id, since| {
            id == "web" && since == UNIX_EPOCH + Duration::from_secs(100)
        });
        assert_eq!(firing.open.keys().collect::<Vec<_>>(), ["web"]);
        let mut settings = Settings {
            urls: vec!["http://127.0.0.1:9".into()],
            labels: BTreeMap::new(),
            resend_every: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            auth: None,
            ca_pem: None,
            watchdog: false,
        };
        assert!(firing
            .next_resend(&settings)
            .is_some_and(|at| at <= Instant::now()));
        // Nothing saved, or nothing firing: nothing to send again, but
        // for the watchdog alert, which always fires.
        let none = Firing::load(Some(&dir.path().join("none")), |_, _| true);
        assert!(none.next_resend(&settings).is_none());
        settings.watchdog = true;
        assert!(none.next_resend(&settings).is_some());
    }

    /// An Alertmanager on loopback that takes every POST with 200.
    fn taking_alertmanager() -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                // The whole request (head and body) before the answer.
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let text = String::from_utf8_lossy(&got).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        url
    }

    #[test]
    fn a_first_problem_does_not_put_off_the_watchdogs_next_resend() {
        let settings = Settings {
            urls: vec![taking_alertmanager()],
            labels: BTreeMap::new(),
            resend_every: Duration::from_secs(600),
            timeout: Duration::from_secs(5),
            auth: None,
            ca_pem: None,
            watchdog: true,
        };
        let mut firing = Firing::load(None, |_, _| true);
        // The watchdog went out just now: next due a period from now.
        firing.resend("am", &settings);
        let due = firing.next_resend(&settings).expect("the watchdog is due");
        let note = Note {
            id: "web".into(),
            problem: true,
            since: UNIX_EPOCH + Duration::from_secs(100),
            subject: String::new(),
            env: Vec::new(),
        };
        firing.deliver(&settings, &note).expect("delivered");
        // The Problem alone went: the watchdog is due when it was, not a
        // period after the Problem (a gap Alertmanager may resolve it in).
        assert_eq!(firing.next_resend(&settings), Some(due));
    }
}
