//! Every courier of the daemon at once: the outbox and each notifier. An
//! alert is held on all of them together (the mail, and a notification
//! of each switch it tells to every notifier), released together once its
//! switch is saved, and every courier is stopped against one deadline.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::email::{HeldMail, Outbox};
use super::notifiers::{HeldNotes, Notifiers};
use crate::config::{Emails, Notifier};
use crate::mail::Mail;
use crate::runner::Runner;
use crate::state::Event;

pub(crate) struct Post {
    outbox: Outbox,
    notifiers: Notifiers,
}

/// An alert held on every channel (see `Post::hold`).
#[must_use = "a held alert is delivered only once released"]
pub(crate) struct Held {
    mail: HeldMail,
    notes: Vec<HeldNotes>,
}

/// What the saved state says was told, for the queues of an earlier run.
pub(crate) struct Told<'a> {
    /// The threads told and still open (by Message-ID).
    pub(crate) open: &'a [String],
    /// The outages whose Problem was told.
    pub(crate) mailed: &'a [(String, SystemTime)],
    /// The outages saved failing.
    pub(crate) failing: &'a [(String, SystemTime)],
}

impl Post {
    /// Starts every courier, each with what an earlier run left queued
    /// under `state_dir` (kept or dropped by what `told` says).
    pub(crate) fn resume(
        emails: &Emails,
        notifiers: &[Notifier],
        state_dir: Option<&Path>,
        runner: &Arc<Runner>,
        told: Told<'_>,
    ) -> anyhow::Result<Post> {
        let spool = state_dir.map(|d| d.join("outbox"));
        Ok(Post {
            outbox: Outbox::resume(emails.clone(), spool.as_deref(), told.open)?,
            notifiers: Notifiers::resume(notifiers, state_dir, runner, told.mailed, told.failing)?,
        })
    }

    /// Writes `mail` (None: its contacts have no mailbox) and the
    /// notification of each of `events` (the switches it tells) to the
    /// queues of the notifiers named in `notify`, pending, until `release`.
    pub(crate) fn hold(
        &self,
        emails: &Emails,
        mail: Option<Mail>,
        events: &[&Event],
        notify: &[String],
    ) -> Held {
        Held {
            mail: self.outbox.hold(mail),
            notes: events
                .iter()
                .map(|event| self.notifiers.hold(emails, event, notify))
                .collect(),
        }
    }

    /// Queues a held alert on every channel.
    pub(crate) fn release(&self, held: Held) {
        self.outbox.release(held.mail);
        held.notes
            .into_iter()
            .for_each(|notes| self.notifiers.release(notes));
    }

    /// The global report, by mail.
    pub(crate) fn report(&self, body: String) {
        self.outbox.report(body);
    }

    /// A mail that tells no switch (a contact's report): queued at once.
    pub(crate) fn send(&self, mail: Mail) {
        self.outbox.send(mail);
    }

    /// After a reload: every courier gets its new settings.
    pub(crate) fn reconfigure(&mut self, emails: &Emails, notifiers: &[Notifier]) {
        self.outbox.reconfigure(emails.clone());
        self.notifiers.reconfigure(notifiers);
    }

    /// Delivers what can be delivered within `grace`, on every channel at
    /// once, then stops; what is left stays queued on disk.
    pub(crate) fn stop(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.outbox.ask_stop(deadline);
        self.notifiers.ask_stop(deadline);
        self.outbox.join(deadline);
        self.notifiers.join(deadline);
    }
}
