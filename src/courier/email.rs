//! The email channel: a mail is offered to the SMTP server recipient by
//! recipient over one kept session (closed after `keepalive` idle), and
//! remembers who has it (`delivered`) and who refused it for good
//! (`refused`), so that a retry goes only to those still owed it. The
//! `Outbox` is its courier as the daemon and the watchdog hold it, with
//! the global report of the recipients refused meanwhile.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::channel::{Channel, Entry, Try, Words};
use super::front::{Courier, Pending};
use super::queue::Queue;
use super::retry::{self, Outcome, STOP_STEP};
use super::smtp::{Answers, Attempt, Failure, Session};
use crate::config::Emails;
use crate::human::human_duration;
use crate::mail::Mail;

/// One SMTP step (a command and its reply) may take this long before it
/// is a failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

impl Entry for Mail {
    const QUEUED: &'static str = "spooled mail";
    fn subject(&self) -> &str {
        &self.subject
    }
    fn queued_at(&self) -> SystemTime {
        self.queued_at
    }
    fn record(&self) -> String {
        format!("its body:\n{}", self.body)
    }
}

/// Recipients refused for good since the last report: address → reply.
type Refusals = Arc<Mutex<BTreeMap<String, String>>>;

/// The email channel, in the courier's thread.
pub(crate) struct Email {
    emails: Emails,
    session: Option<Session>,
    hello: String,
    refused: Refusals,
    /// Why the server could not be reached, for the mails behind.
    down: Option<String>,
}

impl Email {
    fn host(&self) -> String {
        format!("{}:{}", self.emails.smtp_host, self.emails.smtp_port)
    }

    /// Sends over the kept session, or a new one.
    fn over_session(
        &mut self,
        timeout: Duration,
        from: &lettre::Address,
        to: &[lettre::Address],
        message: &[u8],
    ) -> Attempt {
        let mut session = match self.session.take() {
            Some(mut session) => match session.set_step_timeout(timeout) {
                Ok(()) => session,
                Err(f) => return Attempt::NoSession(f),
            },
            None => match Session::open(&self.emails, &self.hello, timeout) {
                Ok(session) => session,
                Err(f) => return Attempt::NoSession(f),
            },
        };
        let outcome = session.send(from, to, message);
        if !matches!(outcome, Attempt::NoSession(_)) {
            self.session = Some(session);
        }
        outcome
    }

    /// What the server's answer means for `mail`, logged.
    fn settle(&mut self, mail: &mut Mail, attempt: Attempt, queued: usize) -> Outcome {
        let host = self.host();
        let retry = self.emails.retry;
        let subject = mail.subject.clone();
        let answers = match attempt {
            Attempt::NoSession(Failure { why, credentials }) => {
                let outcome = Outcome::Down;
                let level = match credentials {
                    true => log::Level::Error,
                    false => log::Level::Warn,
                };
                log::log!(
                    level,
                    "mail delivery to {host} failed, retrying in {}: {why} ({queued} queued)",
                    human_duration(retry::wait(&outcome, retry))
                );
                mail.last_error = Some(why.clone());
                self.down = Some(why);
                return outcome;
            }
            Attempt::Refused { reply, permanent } => {
                let outcome = Outcome::Refused { permanent };
                let level = match permanent {
                    true => log::Level::Error,
                    false => log::Level::Warn,
                };
                log::log!(
                    level,
                    "mail refused by {host}, kept and tried again in {}: {subject}: {reply}",
                    human_duration(retry::wait(&outcome, retry))
                );
                mail.last_error = Some(reply);
                return outcome;
            }
            Attempt::Answered(answers) => answers,
        };
        let Answers {
            accepted,
            refused,
            deferred,
        } = answers;
        if accepted.is_empty() && deferred.is_empty() && mail.delivered.is_empty() {
            // Nobody would get it: a server refusing everyone is more
            // likely broken than every address wrong. Like a refused message.
            let reply = refused
                .iter()
                .map(|(rcpt, reply)| format!("{rcpt}: {reply}"))
                .collect::<Vec<_>>()
                .join("; ");
            let outcome = Outcome::Refused { permanent: true };
            log::error!(
                "mail refused by {host} for every recipient, kept and tried again in {}: {subject}: {reply}",
                human_duration(retry::wait(&outcome, retry))
            );
            self.refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(refused);
            mail.last_error = Some(reply);
            return outcome;
        }
        if !accepted.is_empty() {
            log::info!("mail sent to {}: {subject}", accepted.join(", "));
        }
        mail.delivered.extend(accepted);
        for (rcpt, reply) in refused {
            log::error!(
                "mail refused by {host} for {rcpt}, who will not get it: {subject}: {reply}"
            );
            mail.refused.push(rcpt.clone());
            self.refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(rcpt, reply);
        }
        if deferred.is_empty() {
            return Outcome::Delivered;
        }
        let outcome = Outcome::Partly;
        for (rcpt, reply) in &deferred {
            log::warn!(
                "mail deferred by {host} for {rcpt}, tried again for them in {}: {subject}: {reply}",
                human_duration(retry::wait(&outcome, retry))
            );
        }
        mail.last_error = deferred.first().map(|(_, reply)| reply.clone());
        outcome
    }
}

impl Channel for Email {
    type Entry = Mail;
    type Settings = Emails;

    fn retry(&self) -> Duration {
        self.emails.retry
    }

    fn deliver(&mut self, mail: &mut Mail, attempt: Try) -> Outcome {
        let built = mail.message(SystemTime::now()).and_then(|m| {
            let (from, to) = mail.envelope()?;
            Ok((m.formatted(), from, to))
        });
        let (message, from, to) = match built {
            Ok(parts) => parts,
            Err(e) => {
                return Outcome::Unsendable(format!("mail {:?} cannot be built: {e}", mail.subject))
            }
        };
        let timeout = retry::step_timeout(Instant::now(), attempt.stop_at, SMTP_TIMEOUT, STOP_STEP);
        let reused = self.session.is_some();
        let mut sent = self.over_session(timeout, &from, &to, &message);
        if let (Attempt::NoSession(_), true) = (&sent, reused) {
            // A kept connection the server closed meanwhile: one fresh try.
            sent = self.over_session(timeout, &from, &to, &message);
        }
        self.settle(mail, sent, attempt.queued)
    }

    fn note_down(&self, mail: &mut Mail) -> bool {
        match (&mail.last_error, &self.down) {
            (None, Some(why)) => {
                mail.last_error = Some(why.clone());
                true
            }
            _ => false,
        }
    }

    fn keeps_notes(&self) -> bool {
        true
    }

    fn reconfigure(&mut self, emails: Emails) {
        self.emails = emails;
        if let Some(session) = self.session.take() {
            session.close();
        }
    }

    fn wake_at(&self) -> Option<Instant> {
        self.session
            .as_ref()
            .map(|s| s.idle_since() + self.emails.keepalive)
    }

    fn wake(&mut self, _now: Instant) {
        if let Some(session) = self.session.take() {
            log::debug!("closing the idle SMTP connection");
            session.close();
        }
    }

    fn close(&mut self) {
        if let Some(session) = self.session.take() {
            session.close();
        }
    }
}

/// The mail queue: mails go in from any thread and come out at the SMTP
/// server, however long that takes; with a spool, they wait on disk.
pub struct Outbox {
    courier: Courier<Mail, Emails>,
    emails: Emails,
    refused: Refusals,
}

/// An alert mail written to the spool but not yet queued (see `hold`).
#[must_use = "a held mail is sent only once released"]
pub(crate) struct HeldMail(Option<Pending<Mail>>);

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
    pub(crate) fn resume(
        emails: Emails,
        spool_dir: Option<&Path>,
        open: &[String],
    ) -> anyhow::Result<Outbox> {
        let queue = spool_dir
            .map(|dir| Queue::open(dir, "mail spool"))
            .transpose()?;
        let refused = Refusals::default();
        let channel = Email {
            emails: emails.clone(),
            session: None,
            hello: crate::host::fqdn().to_string(),
            refused: Arc::clone(&refused),
            down: None,
        };
        let words = Words {
            prefix: String::new(),
            one: "mail",
            many: "mails",
        };
        let courier = Courier::start(
            channel,
            queue,
            |mail: &Mail| mail.told(open),
            words,
            "outbox".into(),
        )?;
        Ok(Outbox {
            courier,
            emails,
            refused,
        })
    }

    /// Whether `mail` goes anywhere; with no recipients configured, it is
    /// only logged.
    fn addressed(mail: &Mail) -> bool {
        if mail.to.is_empty() {
            log::info!("mail not sent (emails.to is empty): {}", mail.subject);
            log::debug!("body of the mail not sent:\n{}", mail.body);
        }
        !mail.to.is_empty()
    }

    /// Queues `mail` (on disk first, with a spool).
    pub fn send(&self, mail: Mail) {
        if Outbox::addressed(&mail) {
            self.courier.send(mail);
        }
    }

    /// Writes an alert (a switch, a digest, a flapping mail) to the spool,
    /// pending: nothing is sent before `release`, which comes once the
    /// switch is saved.
    pub(crate) fn hold(&self, mail: Option<Mail>) -> HeldMail {
        HeldMail(
            mail.filter(Outbox::addressed)
                .map(|mail| self.courier.hold(mail)),
        )
    }

    /// Queues a held alert for delivery.
    pub(crate) fn release(&self, held: HeldMail) {
        if let Some(pending) = held.0 {
            self.courier.release(pending);
        }
    }

    /// Queues the global report with `body`, followed by the recipients
    /// the server refused for good since the last report.
    pub(crate) fn report(&self, mut body: String) {
        let refused = std::mem::take(&mut *self.refused.lock().unwrap_or_else(|e| e.into_inner()));
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
        self.courier.reconfigure(emails);
    }

    /// Sends what can be sent within `grace`, then stops; the rest stays
    /// in the spool (or is lost, without one), and the log says which.
    /// Returns at the latest a second after `grace`, even if an SMTP step
    /// begun before the stop is still waiting for the server.
    pub fn stop(self, grace: Duration) {
        self.courier.stop(grace);
    }

    /// Asks for a stop at `deadline`, for `Post` to wait on every courier
    /// at once (`join`).
    pub(crate) fn ask_stop(&self, deadline: Instant) {
        self.courier.ask_stop(deadline);
    }

    pub(crate) fn join(self, deadline: Instant) {
        self.courier.join(deadline);
    }
}
