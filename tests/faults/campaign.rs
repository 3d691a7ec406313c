//! The pieces of a kill campaign: a site of `CHECKS` checks, each failing
//! while its own flag file exists; picomon run alone or under the
//! watchdog and killed (SIGKILL) on demand; an SMTP server that goes away
//! and comes back on the same port; and the tally of what arrived.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{alive, dedent, mail_config, signal, wait_for, Daemon, Site};
use crate::held_port::HeldPort;
use crate::smtp::{read_maildir, Received, Security, SmtpServer};

/// Checks that switch together: the size of each burst of mail.
pub const CHECKS: usize = 12;
/// Every wait: far beyond what a round needs on a busy machine.
pub const LONG: Duration = Duration::from_secs(90);

const PROBLEM: &str = "[picomon] Problem: ";
const OK: &str = "[picomon] OK: ";

/// A site with `CHECKS` checks `c00`, `c01`, …, each run every 0.2 s and
/// failing from its first failed run while `flags/down-NN` exists (its
/// output is that file), state in `state/`, mail to 127.0.0.1:`port`.
pub fn site(port: u16) -> Site {
    let site = Site::new("");
    let flags = site.path("flags");
    std::fs::create_dir_all(&flags).expect("mkdir flags");
    let plugin = site.plugin(
        "flag",
        &format!(
            "if [ -e {0}/down-$1 ]; then cat {0}/down-$1; exit 2; fi\necho \"FLAG OK - c$1 fine\"",
            flags.display()
        ),
    );
    let mut config = mail_config(
        port,
        &site.path("state"),
        r#"
            digest_over = 0
            from = "Picomon <picomon@monitor.example.org>"
            smtp_retry_timeout = 0.5
        "#,
        "",
    );
    for i in 0..CHECKS {
        config.push_str(&dedent(&format!(
            r#"
                [checks.c{i:02}]
                type = "command"
                command = ["{plugin}", "{i:02}"]
            "#
        )));
    }
    site.write("site.toml", &config);
    site
}

/// What the Problem mail of check `i` in round `round` says.
pub fn outage(i: usize, round: usize) -> String {
    format!("FLAG CRITICAL - c{i:02} down in round {round}")
}

/// Makes every check fail, saying which round it is. Each flag appears
/// whole (written aside, then renamed): a plugin must never read it empty.
pub fn all_down(site: &Site, round: usize) {
    for i in 0..CHECKS {
        site.write("flags/.next", &outage(i, round));
        std::fs::rename(
            site.path("flags/.next"),
            site.path(&format!("flags/down-{i:02}")),
        )
        .expect("rename a flag");
    }
}

/// Makes every check pass again.
pub fn all_up(site: &Site) {
    for i in 0..CHECKS {
        std::fs::remove_file(site.path(&format!("flags/down-{i:02}"))).expect("remove a flag");
    }
}

/// Mails waiting in the spool (`state_dir/outbox`).
pub fn spooled(site: &Site) -> usize {
    json_files(&site.path("state/outbox"))
}

fn json_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// When a kill came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checks switching and their mails spooled, the server down.
    Switching,
    /// The server back, the backlog going out.
    Burst,
    /// Checks recovering, the server up: recoveries mailed at once.
    Recovering,
}

pub struct Kill {
    pub phase: Phase,
    /// Whether mail was still spooled, so maybe one in flight.
    pub mail_queued: bool,
}

/// picomon run directly, or by picomon-watchdog: killed on demand and
/// started again (by the test, or by the watchdog).
pub struct Monitor<'a> {
    site: &'a Site,
    watchdog: bool,
    daemon: Daemon,
    /// The picomon process now running.
    pid: u32,
    /// The logs of the processes killed so far.
    log: String,
    kills: Vec<Kill>,
}

impl<'a> Monitor<'a> {
    pub fn start(site: &'a Site, watchdog: bool) -> Monitor<'a> {
        let daemon = match watchdog {
            true => site.spawn_daemon(site.command("picomon-watchdog"), &[]),
            false => site.daemon(&[]),
        };
        let mut monitor = Monitor {
            site,
            watchdog,
            pid: daemon.pid(),
            daemon,
            log: String::new(),
            kills: Vec::new(),
        };
        if watchdog {
            monitor.pid = monitor.next_picomon(None);
        }
        monitor
    }

    /// Waits for the watchdog to run a picomon other than `not`.
    #[track_caller]
    fn next_picomon(&self, not: Option<u32>) -> u32 {
        let mut pid = None;
        wait_for("a picomon started by the watchdog", LONG, || {
            pid = self
                .daemon
                .last_pid()
                .filter(|p| Some(*p) != not && alive(*p));
            pid.is_some()
        });
        pid.unwrap_or_default()
    }

    /// SIGKILL to picomon, then a new one: started here, or by the
    /// watchdog after its back-off.
    #[track_caller]
    pub fn kill(&mut self, phase: Phase) {
        let mail_queued = spooled(self.site) > 0;
        signal(self.pid, libc::SIGKILL);
        self.kills.push(Kill { phase, mail_queued });
        if self.watchdog {
            self.pid = self.next_picomon(Some(self.pid));
            return;
        }
        let status = self.daemon.wait_exit(LONG);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "picomon ended before the kill: {status}\n{}",
            self.daemon.stderr()
        );
        self.keep_log(&format!("killed in {phase:?}"));
        self.daemon = self.site.daemon(&[]);
        self.pid = self.daemon.pid();
    }

    /// Waits until the current picomon has said it started: its signal
    /// handlers are in place.
    #[track_caller]
    fn wait_started(&self) {
        let starts = match self.watchdog {
            true => self.kills.len() + 1,
            false => 1,
        };
        self.daemon.wait_log("picomon started: ", starts, LONG);
    }

    /// SIGTERM, and a clean exit; returns the kills.
    #[track_caller]
    pub fn stop(mut self) -> Vec<Kill> {
        self.wait_started();
        self.daemon.signal(libc::SIGTERM);
        let status = self.daemon.wait_exit(LONG);
        assert_eq!(status.code(), Some(0), "{}", self.daemon.stderr());
        self.keep_log("stopped");
        std::mem::take(&mut self.kills)
    }

    fn keep_log(&mut self, how: &str) {
        self.log.push_str(&self.daemon.stderr());
        self.log
            .push_str(&format!("--- pid {} {how} ---\n", self.daemon.pid()));
    }
}

impl Drop for Monitor<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.log.is_empty() {
            eprintln!("--- logs of the earlier processes ---\n{}", self.log);
        }
    }
}

/// An SMTP server on a port of its own that it can leave and come back
/// to: while it is away, connections are refused.
pub struct Mailroom {
    dir: PathBuf,
    held: HeldPort,
    server: Option<SmtpServer>,
}

impl Mailroom {
    /// Down, at first; the server writes in `dir` (the site's, where the
    /// test handler looks for its fault files).
    pub fn new(held: HeldPort, dir: &Path) -> Mailroom {
        Mailroom {
            dir: dir.to_path_buf(),
            held,
            server: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.held.port
    }

    /// Starts the server; with `slow`, each DATA takes that many seconds.
    pub fn up(&mut self, slow: Option<&str>) {
        let fault = self.dir.join("slow");
        match slow {
            Some(seconds) => std::fs::write(&fault, seconds).expect("write the slow fault"),
            None => {
                let _ = std::fs::remove_file(&fault);
            }
        }
        self.server = Some(SmtpServer::start(&self.dir, self.port(), Security::Plain));
    }

    pub fn down(&mut self) {
        self.server = None;
    }

    /// How many mails the server has written (alerts or not), cheaply.
    pub fn delivered(&self) -> usize {
        std::fs::read_dir(self.dir.join("Maildir/new"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The Problem and OK mails received.
    pub fn alerts(&self) -> Vec<Received> {
        read_maildir(&self.dir.join("Maildir"))
            .into_iter()
            .filter(|m| {
                let s = m.header("subject");
                s.starts_with(PROBLEM) || s.starts_with(OK)
            })
            .collect()
    }

    /// How many Problem mails and how many OK mails were received.
    pub fn counts(&self) -> (usize, usize) {
        let alerts = self.alerts();
        let problems = alerts
            .iter()
            .filter(|m| m.header("subject").starts_with(PROBLEM))
            .count();
        (problems, alerts.len() - problems)
    }

    /// Waits, polling every millisecond, until `n` mails have been written.
    #[track_caller]
    pub fn wait_delivered(&self, n: usize) {
        let deadline = Instant::now() + LONG;
        while self.delivered() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} mails at the SMTP server"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What arrived, outage by outage.
#[derive(Debug, Default)]
pub struct Tally {
    pub outages: usize,
    pub received: usize,
    /// Outages whose Problem or OK never arrived, described.
    pub lost: Vec<String>,
    /// OK mails that reply to no Problem of their check and round.
    pub wrong_threads: Vec<String>,
    /// The same mail again (same Message-ID): accepted by the server but
    /// killed before it was taken off the spool.
    pub resent: usize,
    /// A second Problem of one outage with a new Message-ID: killed after
    /// the Problem was spooled but before the switch was saved.
    pub new_problems: usize,
    /// A second OK (new Message-ID, same thread): likewise at recovery.
    pub new_oks: usize,
    /// Problem threads that never got their OK.
    pub unclosed: usize,
}

impl Tally {
    pub fn duplicates(&self) -> usize {
        self.resent + self.new_problems + self.new_oks
    }
}

/// Sorts the alerts of `rounds` rounds of `CHECKS` outages each.
pub fn tally(alerts: &[Received], rounds: usize) -> Tally {
    let mut t = Tally {
        outages: rounds * CHECKS,
        received: alerts.len(),
        ..Tally::default()
    };
    let oks: Vec<&Received> = alerts
        .iter()
        .filter(|m| m.header("subject").starts_with(OK))
        .collect();
    let mut threaded = 0;
    for round in 0..rounds {
        for i in 0..CHECKS {
            let what = outage(i, round);
            let problems: Vec<&Received> = alerts
                .iter()
                // The whole output line: "round 1" is also the start of
                // "round 12".
                .filter(|m| {
                    m.header("subject").starts_with(PROBLEM)
                        && m.body.contains(&format!("{what}\n"))
                })
                .collect();
            let ids: BTreeSet<&str> = problems.iter().map(|m| m.header("message-id")).collect();
            let replies: Vec<&Received> = oks
                .iter()
                .copied()
                .filter(|m| ids.contains(m.header("in-reply-to")))
                .collect();
            threaded += replies.len();
            if problems.is_empty() || replies.is_empty() {
                t.lost.push(format!(
                    "{what}: {} Problem and {} OK mails",
                    problems.len(),
                    replies.len()
                ));
                continue;
            }
            for ok in &replies {
                let check = format!("c{i:02}");
                if ok.header("references") != ok.header("in-reply-to")
                    || !ok.header("subject").contains(&check)
                {
                    t.wrong_threads.push(format!("{what}: {:?}", ok.headers));
                }
            }
            let ok_ids: BTreeMap<&str, usize> =
                replies.iter().fold(BTreeMap::new(), |mut m, ok| {
                    *m.entry(ok.header("message-id")).or_default() += 1;
                    m
                });
            let closed: BTreeSet<&str> = replies.iter().map(|m| m.header("in-reply-to")).collect();
            t.resent += problems.len() - ids.len() + replies.len() - ok_ids.len();
            t.new_problems += ids.len() - 1;
            t.new_oks += ok_ids.len() - 1;
            t.unclosed += ids.len() - closed.len();
        }
    }
    if threaded != oks.len() {
        t.wrong_threads.push(format!(
            "{} OK mails reply to no Problem of their check and round",
            oks.len() - threaded
        ));
    }
    t
}
