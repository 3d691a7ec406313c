//! `[heartbeat]`: a ping to an outside dead man's switch (Healthchecks.io,
//! Dead Man's Snitch, an Uptime Kuma push monitor), every `every`, only
//! while picomon is healthy: its ticks run on time and its plugin loop
//! answers. A dead machine, a lost network, a hung or frozen picomon then
//! all look the same from outside: the pings stop, and the service pages.
//!
//! Not the watchdog's `--heartbeat-fd` (a byte per tick on a pipe to
//! picomon-watchdog, in `scheduler`): that one tells a local supervisor
//! the loop is alive; this one tells the world that monitoring works.
//!
//! Whether to ping is decided by `due` (pure); the ping itself is sent
//! from a thread of its own, so a slow or unreachable service never holds
//! up the daemon loop, and a ping still going makes the next one wait
//! rather than pile up. Failures are logged at most once a minute and
//! never mailed: a network down would otherwise mail in a loop, through
//! the very path that may be down.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::runner::{RunError, Runner};
use crate::throttle::Throttle;

/// The longest one ping may take; a shorter `every` bounds it further.
const PING_LIMIT: Duration = Duration::from_secs(10);

/// The longest body of a ping's answer read (and thrown away).
const ANSWER_CAP: u64 = 4096;

/// The validated `[heartbeat]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heartbeat {
    pub(crate) ping: Ping,
    pub(crate) every: Duration,
}

/// How a ping is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ping {
    /// GET this URL (http or https); a 2xx answer is a ping taken.
    Url(String),
    /// Run this argv (no shell) under the runner's timeout; exit 0 is a
    /// ping taken.
    Command(Vec<String>),
}

impl Heartbeat {
    /// For `check-config` and the start line: the URL's host only, since
    /// the rest of a ping URL is often its secret.
    pub(crate) fn summary(&self) -> String {
        let to = match &self.ping {
            Ping::Url(url) => format!("GET {}", host_of(url)),
            Ping::Command(argv) => argv.first().cloned().unwrap_or_default(),
        };
        format!(
            "heartbeat every {} ({to})",
            crate::human::human_duration(self.every)
        )
    }

    fn limit(&self) -> Duration {
        self.every.min(PING_LIMIT)
    }
}

/// What the daemon loop knows of its own health at a tick.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Health {
    /// How late this tick started after its time.
    pub(crate) late: Duration,
    /// The tick's length.
    pub(crate) tick: Duration,
    /// Runs handed to the plugin loop that have not ended: waiting for
    /// it or running.
    pub(crate) in_flight: usize,
    /// How long ago the plugin loop last answered (a run ended); None
    /// when no run has ended yet.
    pub(crate) last_answer: Option<Duration>,
    /// The longest a run may take (the longest check timeout): a loop
    /// that answers ends every run by then.
    pub(crate) longest_run: Duration,
}

/// Whether a ping is due at `now`: its time came (`next`), and picomon is
/// healthy, i.e. this tick started within one tick of its time (a frozen
/// or starved loop starts them late) and the plugin loop answers: it has
/// no run in hand, or one ended within `every` and the longest a run may
/// take (a hung loop holds its runs for ever, and ends none).
pub(crate) fn due(next: Instant, now: Instant, every: Duration, health: Health) -> bool {
    let on_time = health.late <= health.tick;
    let within = every.max(health.tick) + health.longest_run;
    let answering = health.in_flight == 0 || health.last_answer.is_some_and(|ago| ago <= within);
    now >= next && on_time && answering
}

/// The sender: the settings, when the next ping is due, and the thread
/// that sends it.
pub(crate) struct Switch {
    settings: Heartbeat,
    next: Instant,
    pings: Sender<Heartbeat>,
    /// Pings skipped because picomon was not healthy, held to a line a minute.
    throttle: Throttle,
}

impl Switch {
    /// Starts the sending thread; the first ping goes at the first
    /// healthy tick.
    pub(crate) fn start(settings: Heartbeat, runner: &Arc<Runner>) -> std::io::Result<Switch> {
        // One ping in hand at most: a ping still going makes the next wait.
        let (tx, rx) = crossbeam_channel::bounded::<Heartbeat>(1);
        let runner = Arc::clone(runner);
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                let mut throttle = Throttle::new(Duration::from_secs(60));
                for settings in rx {
                    log::debug!("heartbeat: pinging");
                    if let Err(why) = send(&settings, &runner) {
                        if let Some(note) = throttle.admit("heartbeat", Instant::now()) {
                            log::warn!("heartbeat not taken: {why}{note}");
                        }
                    }
                }
            })?;
        Ok(Switch {
            settings,
            next: Instant::now(),
            pings: tx,
            throttle: Throttle::new(Duration::from_secs(60)),
        })
    }

    /// A reload's settings; the next ping keeps its time.
    pub(crate) fn reconfigure(&mut self, settings: Heartbeat) {
        self.settings = settings;
    }

    /// Called at every tick: pings when due and healthy.
    pub(crate) fn tick(&mut self, now: Instant, health: Health) {
        if now < self.next {
            return;
        }
        if !due(self.next, now, self.settings.every, health) {
            if let Some(note) = self.throttle.admit("unhealthy", now) {
                log::warn!(
                    "heartbeat held back: picomon is not healthy (tick {} late, {} runs in the plugin loop, the last ended {} ago){note}",
                    crate::human::human_duration(health.late),
                    health.in_flight,
                    health
                        .last_answer
                        .map_or("never".to_string(), crate::human::human_duration)
                );
            }
            return;
        }
        // Half a tick early: the tick `every` from now starts a little
        // before `now + every`, and must not wait for the one after.
        self.next = now + self.settings.every.saturating_sub(health.tick / 2);
        match self.pings.try_send(self.settings.clone()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if let Some(note) = self.throttle.admit("busy", now) {
                    log::warn!(
                        "heartbeat: the previous ping is still going, this one is skipped{note}"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                if let Some(note) = self.throttle.admit("gone", now) {
                    log::error!("heartbeat: the sending thread is gone{note}");
                }
            }
        }
    }
}

/// Sends one ping; Ok when it was taken, else why not.
fn send(settings: &Heartbeat, runner: &Arc<Runner>) -> Result<(), String> {
    match &settings.ping {
        Ping::Url(url) => get(url, settings.limit()),
        Ping::Command(argv) => {
            let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
            let program = argv
                .first()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let done = runner
                .run(&argv, settings.limit(), &[])
                .map_err(|e| match e {
                    RunError::Spawn(e) => format!("{program}: cannot start: {e}"),
                    RunError::Wait(e) => format!("{program}: cannot wait for it: {e}"),
                })?;
            match (done.timed_out, done.exit_code) {
                (true, _) => Err(format!(
                    "{program}: killed after {}",
                    crate::human::human_duration(settings.limit())
                )),
                (false, Some(0)) => Ok(()),
                (false, Some(code)) => Err(format!("{program}: exit code {code}")),
                (false, None) => Err(format!("{program}: killed by a signal")),
            }
        }
    }
}

/// GETs `url` by `limit`, trusting the system's CAs over https (the
/// rustls client Alertmanager notifications use); a 2xx is a ping taken.
fn get(url: &str, limit: Duration) -> Result<(), String> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(limit))
        .http_status_as_error(false);
    if let Some(roots) = system_roots() {
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(roots.clone())
                .build(),
        );
    }
    let agent: ureq::Agent = config.build().into();
    // The URL is not logged whole: its path is often the check's secret.
    let shown = shown_url(url);
    let mut response = agent.get(url).call().map_err(|e| format!("{shown}: {e}"))?;
    let status = response.status();
    let _ = response
        .body_mut()
        .with_config()
        .limit(ANSWER_CAP)
        .read_to_vec();
    match status.is_success() {
        true => Ok(()),
        false => Err(format!("{shown}: HTTP {status}")),
    }
}

/// The host (and port) of `url`, without user, path or query.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    host.rsplit('@').next().unwrap_or(host)
}

/// `url` as logged: its scheme and host, the rest elided.
fn shown_url(url: &str) -> String {
    let scheme = url.split_once("://").map_or("http", |(s, _)| s);
    format!("{scheme}://{}/…", host_of(url))
}

/// The system's trusted CAs (`crate::ca_certs`), read once per process.
fn system_roots() -> &'static Option<ureq::tls::RootCerts> {
    static ROOTS: std::sync::OnceLock<Option<ureq::tls::RootCerts>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = crate::ca_certs::system();
        for e in found.errors.iter().take(3) {
            log::warn!("heartbeat over https: reading the system's CA certificates: {e}");
        }
        let certs: Vec<_> = found
            .certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        (!certs.is_empty()).then(|| ureq::tls::RootCerts::new_with_certs(&certs))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(late: u64, in_flight: usize, last_answer: Option<u64>) -> Health {
        Health {
            late: Duration::from_secs(late),
            tick: Duration::from_secs(1),
            in_flight,
            last_answer: last_answer.map(Duration::from_secs),
            longest_run: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_ping_goes_when_due_on_a_healthy_tick_only() {
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        assert!(due(t0, t0, every, health(0, 0, None)));
        assert!(!due(t0 + every, t0, every, health(0, 0, None)), "not yet");
        // A tick that started late: the loop was frozen or starved.
        assert!(!due(t0, t0, every, health(5, 0, None)));
        // Runs waiting and none ended for longer than `every`: the plugin
        // loop does not answer.
        assert!(due(t0, t0, every, health(0, 3, Some(70))));
        assert!(!due(t0, t0, every, health(0, 3, Some(71))));
        assert!(!due(t0, t0, every, health(0, 3, None)));
        // Behind but answering is healthy.
        assert!(due(t0, t0, every, health(0, 3, Some(2))));
    }

    #[test]
    fn the_summary_names_the_host_never_the_secret_path() {
        let hb = Heartbeat {
            ping: Ping::Url("https://user:pw@hc.example.org/ping/5b1c?x=1".into()),
            every: Duration::from_secs(60),
        };
        assert_eq!(hb.summary(), "heartbeat every 1m 00s (GET hc.example.org)");
    }
}
