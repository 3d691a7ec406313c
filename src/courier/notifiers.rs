//! Notifiers beyond email (`[notify.NAME]`): every switch that is mailed
//! is also handed to every notifier, each with a courier of its own and a
//! queue of its own (`state_dir/notify/NAME/`), so a slow or failing
//! notifier holds back neither a check nor another notifier. A
//! notification is delivered in queueing order (so, per check, in the
//! order of its switches), tried again every `retry_every`, never dropped.

use std::collections::BTreeMap;
use std::mem::discriminant;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::alertmanager::{self, Alertmanager};
use super::channel::Words;
use super::command::Command;
use super::front::{Courier, Pending};
use super::note::Note;
use super::queue::Queue;
use crate::config::{Emails, Notifier, NotifierKind};
use crate::runner::Runner;
use crate::state::Event;

/// A running notifier: its courier, and the kind it was started as.
struct Running {
    courier: Courier<Note, Notifier>,
    kind: NotifierKind,
}

/// Every configured notifier.
pub(crate) struct Notifiers {
    running: BTreeMap<String, Running>,
    /// `state_dir/notify`, with a state directory.
    dir: Option<PathBuf>,
    runner: Arc<Runner>,
}

/// Notifications written pending, not yet queued (see `Notifiers::hold`).
#[must_use = "held notifications are delivered only once released"]
pub(crate) struct HeldNotes(Vec<(String, Pending<Note>)>);

impl Notifiers {
    /// Starts `notifiers`, each with what an earlier run left queued (a
    /// pending one kept when the saved state says its switch was told:
    /// `mailed`, the outages whose Problem was told) and its alerts firing
    /// (those of the outages saved `failing`).
    pub(crate) fn resume(
        notifiers: &[Notifier],
        state_dir: Option<&Path>,
        runner: &Arc<Runner>,
        mailed: &[(String, SystemTime)],
        failing: &[(String, SystemTime)],
    ) -> anyhow::Result<Notifiers> {
        let mut all = Notifiers {
            running: BTreeMap::new(),
            dir: state_dir.map(|d| d.join("notify")),
            runner: Arc::clone(runner),
        };
        for notifier in notifiers {
            all.start(
                notifier,
                |note| note.told(mailed),
                |id, since| failing.iter().any(|(i, s)| i == id && *s == since),
            )?;
        }
        Ok(all)
    }

    /// Starts `notifier` with what its queue holds (a pending note kept
    /// when `told`) and its alerts firing (kept when `still` firing).
    fn start(
        &mut self,
        notifier: &Notifier,
        told: impl Fn(&Note) -> bool,
        still: impl Fn(&str, SystemTime) -> bool,
    ) -> anyhow::Result<()> {
        let queue = self
            .dir
            .as_ref()
            .map(|d| Queue::open(&d.join(&notifier.name), "notification queue"))
            .transpose()?;
        let name = notifier.name.clone();
        let words = Words {
            prefix: format!("notify.{name}: "),
            one: "notification",
            many: "notifications",
        };
        let thread = format!("notify-{name}");
        let courier = match &notifier.kind {
            NotifierKind::Command { argv, timeout } => Courier::start(
                Command {
                    name: name.clone(),
                    argv: argv.clone(),
                    timeout: *timeout,
                    retry: notifier.retry_every,
                    runner: Arc::clone(&self.runner),
                },
                queue,
                told,
                words,
                thread,
            )?,
            NotifierKind::Alertmanager(settings) => {
                let firing = alertmanager::Firing::load(queue.as_ref().map(|q| q.dir()), still);
                Courier::start(
                    Alertmanager {
                        name: name.clone(),
                        settings: settings.clone(),
                        retry: notifier.retry_every,
                        firing,
                    },
                    queue,
                    told,
                    words,
                    thread,
                )?
            }
        };
        self.running.insert(
            name,
            Running {
                courier,
                kind: notifier.kind.clone(),
            },
        );
        Ok(())
    }

    /// Writes the notification of `event` (a switch about to be mailed) to
    /// the queue of each notifier named in `only` (the instance's
    /// contacts say which), pending: nothing is attempted before
    /// `release`, which comes once the switch is saved.
    pub(crate) fn hold(&self, emails: &Emails, event: &Event, only: &[String]) -> HeldNotes {
        let told = |name: &String| only.contains(name);
        if !self.running.keys().any(told) {
            return HeldNotes(Vec::new());
        }
        let note = Note::new(emails, event);
        HeldNotes(
            self.running
                .iter()
                .filter(|(name, _)| told(name))
                .map(|(name, r)| (name.clone(), r.courier.hold(note.clone())))
                .collect(),
        )
    }

    /// Queues held notifications for delivery.
    pub(crate) fn release(&self, held: HeldNotes) {
        for (name, pending) in held.0 {
            // One removed by a reload meanwhile: its file stays queued on
            // disk for when it comes back.
            if let Some(r) = self.running.get(&name) {
                r.courier.release(pending);
            }
        }
    }

    /// After a reload: notifiers kept get their new settings (and try
    /// their queue again at once), new ones start, removed ones stop; what
    /// a removed one had queued stays on disk for when it comes back. One
    /// whose type changed is stopped and started again as the new type,
    /// with its queue.
    pub(crate) fn reconfigure(&mut self, notifiers: &[Notifier]) {
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| {
                !notifiers
                    .iter()
                    .any(|n| &n.name == *name && discriminant(&n.kind) == discriminant(&r.kind))
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(r) = self.running.remove(&name) {
                match notifiers.iter().any(|n| n.name == name) {
                    true => log::info!("notify.{name}: its type changed, starting it again"),
                    false => {
                        log::info!("notify.{name}: removed from the configuration, stopping it")
                    }
                }
                r.courier.stop(Duration::ZERO);
            }
        }
        for notifier in notifiers {
            match self.running.get_mut(&notifier.name) {
                Some(r) => {
                    r.kind = notifier.kind.clone();
                    r.courier.reconfigure(notifier.clone());
                }
                // Pending files of an earlier run were kept or dropped at
                // start; any left now are kept rather than lost.
                // The daemon's failing set is not at hand here: alerts
                // firing from an earlier run are dropped, not resent stale.
                None => {
                    if let Err(e) = self.start(notifier, |_| true, |_, _| false) {
                        log::error!("notify.{}: cannot start it: {e:#}", notifier.name);
                    }
                }
            }
        }
    }

    /// Asks every notifier to stop at `deadline`.
    pub(crate) fn ask_stop(&self, deadline: Instant) {
        for r in self.running.values() {
            r.courier.ask_stop(deadline);
        }
    }

    /// Waits for every notifier asked to stop (see `Courier::join`).
    pub(crate) fn join(self, deadline: Instant) {
        for (_, r) in self.running {
            r.courier.join(deadline);
        }
    }
}
