//! The supervision loop: the one place where the watchdog's decisions
//! (`policy.rs`) take effect. Every source — picomon's exit, standard error
//! and heartbeat (`child.rs`), and the watchdog's own signals — feeds one
//! channel; each event becomes an input of the policy, and its actions are
//! carried out here, in order.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use picomon::cli::WatchdogCli as Args;
use picomon::config::Config;
use picomon::courier::Outbox;
use picomon::mail::Mail;
use picomon::signals;

use crate::child::{Child, Event, HEARTBEAT_FD};
use crate::policy::{Action, Input, Notice, Policy, STOP_GRACE};
use crate::takeover;

struct Supervisor {
    args: Args,
    picomon: PathBuf,
    config: Option<Config>,
    outbox: Option<Outbox>,
    tx: Sender<Event>,
    /// The current picomon, until reaped.
    child: Option<Child>,
    generation: u64,
}

/// The picomon next to this program, else the one on PATH.
fn find_picomon(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("picomon")));
    match beside {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from("picomon"),
    }
}

/// Runs picomon again and again until told to stop.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let signal_tx = tx.clone();
    signals::spawn(move |s| {
        let _ = signal_tx.send(Event::Signal(s));
    })
    .context("cannot install signal handlers")?;
    let picomon = find_picomon(args.picomon.as_deref());
    let mut supervisor = Supervisor {
        args,
        picomon,
        config: None,
        outbox: None,
        tx,
        child: None,
        generation: 0,
    };
    let mut policy = Policy::new(supervisor.hang_timeout(), Instant::now());
    let mut actions: VecDeque<Action> = policy.begin().into();
    loop {
        while let Some(action) = actions.pop_front() {
            if action == Action::Exit {
                if let Some(outbox) = supervisor.outbox.take() {
                    outbox.stop(Duration::from_secs(5));
                }
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(input) = supervisor.carry_out(action, &mut policy) {
                actions.extend(policy.handle(input, Instant::now()));
            }
        }
        let input = supervisor.next_input(&rx, policy.deadline());
        actions.extend(policy.handle(input, Instant::now()));
    }
}

impl Supervisor {
    /// Reads the configuration for the mail settings; keeps the previous
    /// one when the new one is invalid (picomon will say why).
    fn load_config(&mut self) {
        match Config::load(&self.args.common.config) {
            Ok(config) => {
                picomon::set_log_level(config.log_level);
                match &mut self.outbox {
                    Some(outbox) => outbox.reconfigure(config.emails.clone()),
                    None => {
                        let spool = config.state_dir.as_ref().map(|d| d.join("watchdog-outbox"));
                        match Outbox::start(config.emails.clone(), spool.as_deref()) {
                            Ok(outbox) => self.outbox = Some(outbox),
                            Err(e) => log::error!("cannot start mail delivery: {e:#}"),
                        }
                    }
                }
                self.config = Some(config);
            }
            Err(e) => match self.config {
                Some(_) => log::error!("{e}; mailing with the previous configuration"),
                None => self.mail_with_emails_alone(&e),
            },
        }
    }

    /// With no valid configuration yet, mails with its `[emails]` section
    /// validated alone, if that holds: the invalid configuration picomon
    /// is about to refuse (exit 78) is mailed too.
    fn mail_with_emails_alone(&mut self, e: &picomon::config::ConfigError) {
        match picomon::config::load_emails(&self.args.common.config) {
            Ok(mail) => {
                let spool = mail.state_dir.map(|d| d.join("watchdog-outbox"));
                match &mut self.outbox {
                    Some(outbox) => outbox.reconfigure(mail.emails),
                    None => match Outbox::start(mail.emails, spool.as_deref()) {
                        Ok(outbox) => self.outbox = Some(outbox),
                        Err(start) => log::error!("cannot start mail delivery: {start:#}"),
                    },
                }
                log::error!("{e}; mailing with its [emails] section, which is valid");
            }
            Err(emails) => log::error!(
                "{e}; no mail can be sent until it is fixed: [emails] itself cannot be used: {emails}"
            ),
        }
    }

    /// `--hang-timeout`, else 3 × base_tick and at least 30 s.
    fn hang_timeout(&self) -> Duration {
        self.args.hang_timeout.unwrap_or_else(|| {
            let tick = self
                .config
                .as_ref()
                .map(|c| c.base_tick)
                .unwrap_or(Duration::from_secs(60));
            (tick * 3).max(Duration::from_secs(30))
        })
    }

    /// The next event of the current picomon or signal, as an input of the
    /// policy; `Timeout` at `deadline`. Events of earlier runs are dropped.
    fn next_input(&mut self, rx: &Receiver<Event>, deadline: Option<Instant>) -> Input {
        loop {
            let event = match deadline {
                Some(deadline) => rx.recv_deadline(deadline),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let current = |g: u64| g == self.generation;
            match event {
                Ok(Event::Signal(s)) => return Input::Signal(s),
                Ok(Event::Beat(g)) if current(g) => return Input::Beat,
                Ok(Event::StderrClosed(g, tail)) if current(g) => return Input::StderrClosed(tail),
                Ok(Event::Exited(g)) if current(g) => {
                    if let Some(input) = self.reap() {
                        return input;
                    }
                }
                Ok(_) => {}
                // The supervisor holds a sender: the channel never closes.
                Err(_) => return Input::Timeout,
            }
        }
    }

    /// Reaps the current picomon, which exited.
    fn reap(&mut self) -> Option<Input> {
        let child = self.child.take()?;
        let pid = child.pid();
        match child.reap() {
            Ok(status) => Some(Input::Exited(status)),
            Err(e) => {
                log::error!("picomon (pid {pid}) exited, but its status is lost: {e}");
                Some(Input::Exited(ExitStatus::from_raw(255 << 8)))
            }
        }
    }

    /// Carries out one action; some answer with an input.
    fn carry_out(&mut self, action: Action, policy: &mut Policy) -> Option<Input> {
        match action {
            Action::LoadConfig => {
                self.load_config();
                policy.set_hang_timeout(self.hang_timeout());
            }
            Action::Start => return Some(self.start()),
            Action::Signal(sig) => {
                if let Some(child) = &self.child {
                    child.signal(sig);
                }
            }
            Action::Mail(notice) => self.mail(&notice),
            Action::Log(level, text) => log::log!(level, "{text}"),
            Action::Exit => {}
        }
        None
    }

    /// Starts picomon with the watchdog's arguments and a heartbeat pipe.
    fn start(&mut self) -> Input {
        if let Some(dir) = self.config.as_ref().and_then(|c| c.state_dir.as_deref()) {
            takeover::stop_orphan(dir, STOP_GRACE);
        }
        self.generation += 1;
        let mut cmd = Command::new(&self.picomon);
        cmd.arg("-c").arg(&self.args.common.config);
        if self.args.common.debug {
            cmd.arg("-D");
        }
        cmd.arg("--heartbeat-fd").arg(HEARTBEAT_FD.to_string());
        // Its lines reach the journal through `child.rs` as they are: they
        // need their priorities as much as the watchdog's own.
        if picomon::logs_to_journal() {
            cmd.arg("--log-priorities");
        }
        cmd.args(&self.args.rest);
        match Child::spawn(cmd, self.generation, &self.tx) {
            Ok(child) => {
                let pid = child.pid();
                log::info!("started {} (pid {pid})", self.picomon.display());
                self.child = Some(child);
                Input::Started { pid }
            }
            Err(e) => Input::StartFailed(format!("{}: {e}", self.picomon.display())),
        }
    }

    /// Mails how picomon ended to the configured addresses.
    fn mail(&self, notice: &Notice) {
        let Some(outbox) = &self.outbox else {
            log::error!(
                "picomon {}; no valid configuration to mail it with",
                notice.what
            );
            return;
        };
        let emails = outbox.emails();
        let body = notice.body(picomon::host::fqdn());
        let mail = Mail::new(
            emails,
            emails.watchdog_subject.clone(),
            body,
            SystemTime::now(),
        );
        outbox.send(mail);
    }
}
