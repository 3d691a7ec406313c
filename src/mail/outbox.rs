//! Delivery: the `Outbox` hands mails to a thread of its own that sends
//! them in queueing order, retries each until every recipient has it (or
//! refused it for good), and, with a spool, keeps it on disk meanwhile.
//! The thread reads its orders between any two sends, so a stop or a
//! reload is never stuck behind a backlog. An alert is `hold`en (on disk,
//! pending) until the caller has saved the switch, then `release`d: a mail
//! the server may have is always one the saved state knows was told.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::message::Mail;
use super::smtp::{Answers, Attempt, Failure, Session};
use super::spool::Spool;
use crate::config::Emails;
use crate::human::human_duration;
use crate::state::Event;

/// One SMTP step (a command and its reply) may take this long before it
/// is a failure. While stopping, a step gets at most the time left before
/// the stop's deadline (and at least `STOP_STEP`).
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);
/// While stopping: the least a step is given, and how long past the
/// deadline `stop` waits for a step already under way.
const STOP_STEP: Duration = Duration::from_secs(1);
/// A message refused as a whole for good (5xx) is tried again after ten
/// retry intervals, at most an hour (and never sooner than one interval):
/// the operator may fix the server, and alerts must arrive after the fix.
fn refused_backoff(retry: Duration) -> Duration {
    retry
        .saturating_mul(10)
        .min(Duration::from_secs(3600))
        .max(retry)
}

enum Command {
    Send(Box<Mail>, Option<PathBuf>),
    Reconfigure(Box<Emails>),
    Stop(Instant),
}

/// What the delivery thread shares with the `Outbox`.
#[derive(Default)]
struct Shared {
    /// Recipients refused for good since the last report: address → reply.
    refused: Mutex<BTreeMap<String, String>>,
    /// What is queued, for a stop that cannot wait for the thread.
    backlog: Mutex<Backlog>,
}

#[derive(Default, Clone, Copy)]
struct Backlog {
    on_disk: usize,
    in_memory: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The delivery queue: mails go in from any thread and come out at the
/// SMTP server, however long that takes.
pub struct Outbox {
    tx: Sender<Command>,
    spool: Option<Spool>,
    emails: Emails,
    shared: Arc<Shared>,
    /// Disconnected when the delivery thread ends.
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Outbox {
    /// Starts delivery; with `spool_dir`, what an earlier run left queued
    /// there is sent first.
    pub fn start(emails: Emails, spool_dir: Option<&Path>) -> anyhow::Result<Outbox> {
        Outbox::resume(emails, spool_dir, &[])
    }

    /// Like `start`, for picomon after its saved state is loaded: `open`
    /// are the threads it says were told and are still open. An alert left
    /// pending by a stop before its telling was saved is dropped (the check
    /// tells it again), one whose telling was saved is sent.
    pub fn resume(
        emails: Emails,
        spool_dir: Option<&Path>,
        open: &[String],
    ) -> anyhow::Result<Outbox> {
        let spool = spool_dir.map(Spool::open).transpose()?;
        let queued = spool
            .as_ref()
            .map(|s| s.load(|mail| mail.told(open)))
            .unwrap_or_default();
        if !queued.is_empty() {
            log::info!("{} mails still queued from before", queued.len());
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let shared = Arc::new(Shared::default());
        let now = Instant::now();
        let delivery = Delivery {
            emails: emails.clone(),
            session: None,
            queue: queued
                .into_iter()
                .map(|(mail, path)| Queued {
                    mail,
                    path,
                    next_try: now,
                })
                .collect(),
            spool: spool.clone(),
            hello: crate::host::fqdn().to_string(),
            paused_until: now,
            next_disk_try: now,
            stop_at: None,
            last_send: Duration::ZERO,
            shared: Arc::clone(&shared),
        };
        delivery.publish();
        let thread = std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || {
                delivery.run(rx);
                drop(done_tx);
            })
            .context("cannot start the mail delivery thread")?;
        Ok(Outbox {
            tx,
            spool,
            emails,
            shared,
            done,
            thread: Some(thread),
        })
    }

    /// Queues `mail` (on disk first, with a spool). With no recipients
    /// configured, it is only logged.
    pub fn send(&self, mail: Mail) {
        let path = self.spool(&mail, false);
        self.queue(mail, path);
    }

    /// Writes the Problem or OK mail of a state switch (threaded by
    /// `Mail::alert`) to the spool, pending: nothing is sent before
    /// `release`, which comes once the switch is saved.
    pub fn hold(&self, event: &Event) -> Held {
        self.hold_mail(Mail::alert(&self.emails, event))
    }

    /// Like `hold`, for an alert composed elsewhere (a digest, a flapping
    /// mail).
    pub fn hold_mail(&self, mail: Mail) -> Held {
        let path = self.spool(&mail, true);
        Held { mail, path }
    }

    /// Queues a held alert for delivery.
    pub fn release(&self, held: Held) {
        let Held { mail, path } = held;
        let path = match (&self.spool, path) {
            (Some(spool), Some(pending)) => Some(spool.commit(&pending).unwrap_or_else(|e| {
                // Still sent; a restart keeps it too, the switch being saved.
                log::warn!("{}: cannot mark it queued: {e}", pending.display());
                pending
            })),
            (_, path) => path,
        };
        self.queue(mail, path);
    }

    /// The spool file of `mail`, if it has recipients and a spool takes it.
    fn spool(&self, mail: &Mail, pending: bool) -> Option<PathBuf> {
        let spool = self.spool.as_ref().filter(|_| !mail.to.is_empty())?;
        let saved = match pending {
            true => spool.save_pending(mail),
            false => spool.save(mail, None),
        };
        match saved {
            Ok(path) => Some(path),
            Err(e) => {
                log::error!(
                    "cannot spool mail {:?} in {}: {e}; keeping it in memory and trying the disk again at each retry",
                    mail.subject,
                    spool.dir().display()
                );
                None
            }
        }
    }

    /// Hands `mail` to the delivery thread; with no recipients configured,
    /// it is only logged.
    fn queue(&self, mail: Mail, path: Option<PathBuf>) {
        if mail.to.is_empty() {
            log::info!("mail not sent (emails.to is empty): {}", mail.subject);
            log::debug!("body of the mail not sent:\n{}", mail.body);
            return;
        }
        if self.tx.send(Command::Send(Box::new(mail), path)).is_err() {
            log::error!("the mail delivery thread is gone");
        }
    }

    /// Queues the global report with `body`, followed by the recipients
    /// the server refused for good since the last report.
    pub fn report(&self, mut body: String) {
        let refused = std::mem::take(&mut *lock(&self.shared.refused));
        if !refused.is_empty() {
            body.push_str(
                "\nRecipients refused for good by the SMTP server since the last report (they did not get those mails):\n",
            );
            for (address, reply) in &refused {
                body.push_str(&format!("  {address}: {reply}\n"));
            }
        }
        let mail = Mail::new(
            &self.emails,
            self.emails.report_subject.clone(),
            body,
            SystemTime::now(),
        );
        self.send(mail);
    }

    /// The email settings in use (the last reload's).
    pub fn emails(&self) -> &Emails {
        &self.emails
    }

    /// New SMTP settings and recipients, after a reload; every queued mail
    /// is tried again at once.
    pub fn reconfigure(&mut self, emails: Emails) {
        self.emails = emails.clone();
        let _ = self.tx.send(Command::Reconfigure(Box::new(emails)));
    }

    /// Sends what can be sent within `grace`, then stops; the rest stays
    /// in the spool (or is lost, without one), and the log says which.
    /// Returns at the latest `STOP_STEP` after `grace`, even if an SMTP
    /// step begun before the stop is still waiting for the server.
    pub fn stop(mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let _ = self.tx.send(Command::Stop(deadline));
        match self.done.recv_deadline(deadline + STOP_STEP) {
            Err(RecvTimeoutError::Timeout) => {
                let backlog = *lock(&self.shared.backlog);
                let kept = match &self.spool {
                    Some(spool) => format!(
                        "{} queued mails stay in {} for the next start",
                        backlog.on_disk,
                        spool.dir().display()
                    ),
                    None => "no state_dir keeps the queued mails".to_string(),
                };
                log::warn!(
                    "stopping while an SMTP step is still waiting for the server: {kept}, {} mails only in memory are lost",
                    backlog.in_memory
                );
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    if thread.join().is_err() {
                        log::error!("the mail delivery thread panicked");
                    }
                }
            }
        }
    }
}

/// An alert written to the spool but not yet queued for delivery (see
/// `Outbox::hold`).
#[must_use = "a held alert is sent only once released"]
pub struct Held {
    mail: Mail,
    /// Its pending spool file, if it has one.
    path: Option<PathBuf>,
}

/// A queued mail.
struct Queued {
    mail: Mail,
    /// Its spool file; none without a spool, or when it could not be
    /// written (disk full): then it is tried again.
    path: Option<PathBuf>,
    /// No attempt before this (a refusal of this very mail).
    next_try: Instant,
}

/// The delivery thread's state.
struct Delivery {
    emails: Emails,
    session: Option<Session>,
    queue: VecDeque<Queued>,
    spool: Option<Spool>,
    hello: String,
    /// No attempt at all before this: the server could not be reached.
    paused_until: Instant,
    /// When to try the disk again for mails held only in memory.
    next_disk_try: Instant,
    stop_at: Option<Instant>,
    /// How long the last send took: while stopping, no send starts that
    /// could not end before the deadline.
    last_send: Duration,
    shared: Arc<Shared>,
}

impl Delivery {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            // Orders first: a stop or a reload is seen between any two sends.
            loop {
                match rx.try_recv() {
                    Ok(cmd) => self.obey(cmd),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.stop_at.get_or_insert_with(Instant::now);
                        break;
                    }
                }
            }
            let now = Instant::now();
            let next = self.next_due();
            if let Some(deadline) = self.stop_at {
                let too_late = next.map_or(true, |due| due.max(now) + self.last_send >= deadline);
                if too_late {
                    self.finish();
                    return;
                }
            }
            self.close_if_idle(now);
            if next.is_some_and(|due| due <= now) {
                self.attempt(now);
                continue;
            }
            let idle_end = self
                .session
                .as_ref()
                .map(|s| s.idle_since() + self.emails.keepalive);
            let wake = [next, idle_end, self.stop_at].into_iter().flatten().min();
            let cmd = match wake {
                Some(at) => rx.recv_deadline(at),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match cmd {
                Ok(cmd) => self.obey(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop_at.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    fn obey(&mut self, cmd: Command) {
        match cmd {
            Command::Send(mail, path) => {
                self.queue.push_back(Queued {
                    mail: *mail,
                    path,
                    next_try: Instant::now(),
                });
                self.publish();
            }
            Command::Reconfigure(emails) => {
                self.emails = *emails;
                if let Some(session) = self.session.take() {
                    session.close();
                }
                let now = Instant::now();
                self.paused_until = now;
                for queued in &mut self.queue {
                    queued.next_try = now;
                }
            }
            Command::Stop(deadline) => {
                self.stop_at = Some(deadline);
            }
        }
    }

    /// When the next attempt is due, if anything is queued.
    fn next_due(&self) -> Option<Instant> {
        let first = self.queue.iter().map(|q| q.next_try).min()?;
        Some(first.max(self.paused_until))
    }

    fn close_if_idle(&mut self, now: Instant) {
        let idle = self
            .session
            .as_ref()
            .is_some_and(|s| now >= s.idle_since() + self.emails.keepalive);
        if idle {
            if let Some(session) = self.session.take() {
                log::debug!("closing the idle SMTP connection");
                session.close();
            }
        }
    }

    /// Tells the `Outbox` what is queued where.
    fn publish(&self) {
        let on_disk = self.queue.iter().filter(|q| q.path.is_some()).count();
        *lock(&self.shared.backlog) = Backlog {
            on_disk,
            in_memory: self.queue.len() - on_disk,
        };
    }

    /// Writes the mails held only in memory to the spool, if there is one
    /// and the disk takes them now.
    fn spool_stragglers(&mut self, now: Instant) {
        let Some(spool) = &self.spool else { return };
        if now < self.next_disk_try {
            return;
        }
        let mut failed = None;
        for queued in self.queue.iter_mut().filter(|q| q.path.is_none()) {
            match spool.save(&queued.mail, None) {
                Ok(path) => {
                    log::info!(
                        "mail {:?} spooled in {} at last",
                        queued.mail.subject,
                        spool.dir().display()
                    );
                    queued.path = Some(path);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            self.next_disk_try = now + self.emails.retry;
            log::error!(
                "still cannot spool mails in {}: {e}; {} kept in memory, trying again in {}",
                spool.dir().display(),
                self.queue.iter().filter(|q| q.path.is_none()).count(),
                human_duration(self.emails.retry)
            );
        }
        self.publish();
    }

    /// The timeout of each SMTP step now.
    fn step_timeout(&self, now: Instant) -> Duration {
        match self.stop_at {
            None => SMTP_TIMEOUT,
            Some(deadline) => deadline
                .saturating_duration_since(now)
                .clamp(STOP_STEP, SMTP_TIMEOUT),
        }
    }

    /// Tries to deliver the first mail that is due.
    fn attempt(&mut self, now: Instant) {
        self.spool_stragglers(now);
        let Some(i) = self.queue.iter().position(|q| q.next_try <= now) else {
            return;
        };
        let built = self.queue[i].mail.message(SystemTime::now()).and_then(|m| {
            let (from, to) = self.queue[i].mail.envelope()?;
            Ok((m.formatted(), from, to))
        });
        let (message, from, to) = match built {
            Ok(parts) => parts,
            Err(e) => return self.unbuildable(i, &e),
        };
        let started = Instant::now();
        let timeout = self.step_timeout(now);
        let reused = self.session.is_some();
        let mut outcome = self.send_over_session(timeout, &from, &to, &message);
        if let (Attempt::NoSession(_), true) = (&outcome, reused) {
            // A kept connection the server closed meanwhile: one fresh try.
            outcome = self.send_over_session(timeout, &from, &to, &message);
        }
        self.last_send = started.elapsed();
        self.settle(i, outcome);
        self.publish();
    }

    /// Sends over the kept session, or a new one.
    fn send_over_session(
        &mut self,
        timeout: Duration,
        from: &lettre::Address,
        to: &[lettre::Address],
        message: &[u8],
    ) -> Attempt {
        let session = match self.session.take() {
            Some(mut session) => match session.set_step_timeout(timeout) {
                Ok(()) => session,
                Err(f) => return Attempt::NoSession(f),
            },
            None => match Session::open(&self.emails, &self.hello, timeout) {
                Ok(session) => session,
                Err(f) => return Attempt::NoSession(f),
            },
        };
        let mut session = session;
        let outcome = session.send(from, to, message);
        if !matches!(outcome, Attempt::NoSession(_)) {
            self.session = Some(session);
        }
        outcome
    }

    /// A mail that can never be sent: set aside, with the reason.
    fn unbuildable(&mut self, i: usize, why: &str) {
        let Some(queued) = self.queue.remove(i) else {
            return;
        };
        let why = format!("mail {:?} cannot be built: {why}", queued.mail.subject);
        match (&self.spool, &queued.path) {
            (Some(spool), Some(path)) => spool.set_aside(path, &why),
            _ => log::error!(
                "{why}; dropped, its body for the record:\n{}",
                queued.mail.body
            ),
        }
        self.publish();
    }

    fn settle(&mut self, i: usize, outcome: Attempt) {
        let now = Instant::now();
        let host = format!("{}:{}", self.emails.smtp_host, self.emails.smtp_port);
        let retry = self.emails.retry;
        let queued_count = self.queue.len();
        let Some(queued) = self.queue.get_mut(i) else {
            return;
        };
        let subject = queued.mail.subject.clone();
        let answers = match outcome {
            Attempt::NoSession(Failure { why, credentials }) => {
                self.paused_until = now + retry;
                let level = match credentials {
                    true => log::Level::Error,
                    false => log::Level::Warn,
                };
                log::log!(
                    level,
                    "mail delivery to {host} failed, retrying in {}: {why} ({queued_count} queued)",
                    human_duration(retry)
                );
                queued.mail.last_error = Some(why.clone());
                self.respool(i);
                // Every mail queued behind it waits for the same reason:
                // each says so when it arrives, not only the first.
                for j in 0..self.queue.len() {
                    if self.queue[j].mail.last_error.is_none() {
                        self.queue[j].mail.last_error = Some(why.clone());
                        self.respool(j);
                    }
                }
                return;
            }
            Attempt::Refused { reply, permanent } => {
                let wait = match permanent {
                    true => refused_backoff(retry),
                    false => retry,
                };
                queued.next_try = now + wait;
                let level = match permanent {
                    true => log::Level::Error,
                    false => log::Level::Warn,
                };
                log::log!(
                    level,
                    "mail refused by {host}, kept and tried again in {}: {subject}: {reply}",
                    human_duration(wait)
                );
                queued.mail.last_error = Some(reply);
                self.respool(i);
                return;
            }
            Attempt::Answered(answers) => answers,
        };
        let Answers {
            accepted,
            refused,
            deferred,
        } = answers;
        if accepted.is_empty() && deferred.is_empty() && queued.mail.delivered.is_empty() {
            // Nobody would get it: a server refusing everyone is more
            // likely broken than every address wrong. Like a refused message.
            let reply = refused
                .iter()
                .map(|(rcpt, reply)| format!("{rcpt}: {reply}"))
                .collect::<Vec<_>>()
                .join("; ");
            let wait = refused_backoff(retry);
            queued.next_try = now + wait;
            log::error!(
                "mail refused by {host} for every recipient, kept and tried again in {}: {subject}: {reply}",
                human_duration(wait)
            );
            lock(&self.shared.refused).extend(refused);
            queued.mail.last_error = Some(reply);
            self.respool(i);
            return;
        }
        if !accepted.is_empty() {
            log::info!("mail sent to {}: {subject}", accepted.join(", "));
        }
        queued.mail.delivered.extend(accepted);
        for (rcpt, reply) in refused {
            log::error!(
                "mail refused by {host} for {rcpt}, who will not get it: {subject}: {reply}"
            );
            queued.mail.refused.push(rcpt.clone());
            lock(&self.shared.refused).insert(rcpt, reply);
        }
        if deferred.is_empty() {
            let done = self.queue.remove(i);
            if let (
                Some(spool),
                Some(Queued {
                    path: Some(path), ..
                }),
            ) = (&self.spool, done)
            {
                spool.remove(&path);
            }
            return;
        }
        for (rcpt, reply) in &deferred {
            log::warn!(
                "mail deferred by {host} for {rcpt}, tried again for them in {}: {subject}: {reply}",
                human_duration(retry)
            );
        }
        queued.next_try = now + retry;
        queued.mail.last_error = deferred.first().map(|(_, reply)| reply.clone());
        self.respool(i);
    }

    /// Writes the changed mail `i` back to its spool file.
    fn respool(&mut self, i: usize) {
        let (Some(spool), Some(queued)) = (&self.spool, self.queue.get_mut(i)) else {
            return;
        };
        if let Some(path) = &queued.path {
            if let Err(e) = spool.save(&queued.mail, Some(path)) {
                log::error!("{}: cannot update spooled mail: {e}", path.display());
            }
        }
    }

    /// At a stop: what is still queued stays in the spool (tried once more
    /// for mails held only in memory), and the log says exactly that.
    fn finish(&mut self) {
        if let Some(session) = self.session.take() {
            session.close();
        }
        if self.queue.is_empty() {
            return;
        }
        self.next_disk_try = Instant::now();
        self.spool_stragglers(Instant::now());
        let on_disk = self.queue.iter().filter(|q| q.path.is_some()).count();
        let lost: Vec<&Queued> = self.queue.iter().filter(|q| q.path.is_none()).collect();
        if let Some(spool) = &self.spool {
            if on_disk > 0 {
                log::warn!(
                    "stopping with {on_disk} mails unsent, kept in {} for the next start",
                    spool.dir().display()
                );
            }
        }
        let why = match &self.spool {
            Some(spool) => format!("it could not be written to {}", spool.dir().display()),
            None => "no state_dir to keep it".to_string(),
        };
        for queued in &lost {
            log::error!("stopping: mail lost ({why}): {}", queued.mail.subject);
        }
        if !lost.is_empty() {
            log::error!("stopping: {} mails lost in all", lost.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_message_waits_ten_retries_at_most_an_hour() {
        assert_eq!(
            refused_backoff(Duration::from_millis(500)),
            Duration::from_secs(5)
        );
        assert_eq!(
            refused_backoff(Duration::from_secs(60)),
            Duration::from_secs(600)
        );
        assert_eq!(
            refused_backoff(Duration::from_secs(900)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            refused_backoff(Duration::from_secs(7200)),
            Duration::from_secs(7200)
        );
    }
}
