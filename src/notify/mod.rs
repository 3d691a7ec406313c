//! Notifiers beyond email (`[notify.NAME]`): every switch that is mailed
//! is also handed to every notifier, with the queue semantics of mail.
//! Each notifier has a thread of its own and a queue of its own (on disk
//! under `state_dir/notify/NAME/`): a notification is written before it
//! is attempted, tried again every `retry_every` until it is delivered,
//! never dropped, and delivered in queueing order (so, per check, in the
//! order of its switches). The daemon loop only writes files and sends on
//! a channel, so a slow or failing notifier never holds back a check.
//!
//! As a mail, a notification is `hold`en (written pending) until the
//! switch it tells is saved, then `release`d; see `queue`.

mod alertmanager;
mod command;
mod queue;

pub(crate) use alertmanager::OWN_LABELS;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};

use crate::config::{Emails, Notifier, NotifierKind};
use crate::mail::Mail;
use crate::runner::Runner;
use crate::state::{Event, Transition};
use queue::Queue;

/// The prefix of the variables that carry the event to a command.
const ENV_PREFIX: &str = "NOTIFY_";

/// One notification: a switch told to one notifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Note {
    /// The instance whose switch this tells.
    id: String,
    /// A Problem (the instance went failing), or its end (OK, removed).
    problem: bool,
    /// When the outage began, as saved in the state: with `problem`, what
    /// a restart compares with the saved state (see `told`).
    since: SystemTime,
    /// The mail subject, for the log.
    subject: String,
    /// The event, as the command's environment.
    env: Vec<(String, String)>,
}

impl Note {
    /// The value of the event's variable `name` (without the prefix).
    fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k.strip_prefix(ENV_PREFIX) == Some(name))
            .map_or("", |(_, v)| v.as_str())
    }

    fn new(emails: &Emails, event: &Event) -> Note {
        let (state, severity) = Mail::state_words(event);
        let subject = Mail::alert(emails, event).subject;
        let result = &event.result;
        let (problem, duration) = match event.transition {
            Transition::Failing => (
                true,
                result
                    .started
                    .duration_since(event.since)
                    .unwrap_or_default(),
            ),
            Transition::Recovered { after, .. } | Transition::Unmonitored { after } => {
                (false, after)
            }
        };
        let vars = [
            ("STATE", state.to_string()),
            ("SEVERITY", severity.to_string()),
            ("CHECK", event.check.clone()),
            ("INSTANCE", event.id.clone()),
            ("TARGET", event.dest.clone()),
            ("SINCE", crate::human::human_time(event.since)),
            ("DURATION", duration.as_secs().to_string()),
            ("OUTPUT", result.output()),
            ("SUBJECT", subject.clone()),
        ];
        Note {
            id: event.id.clone(),
            problem,
            since: event.since,
            subject,
            env: vars
                .into_iter()
                .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), v))
                .collect(),
        }
    }

    /// Whether the saved state has the switch this tells: a Problem when
    /// it says the Problem of the outage since `since` was told (`mailed`),
    /// its end when not.
    fn told(&self, mailed: &[(String, SystemTime)]) -> bool {
        let open = mailed
            .iter()
            .any(|(id, since)| *id == self.id && *since == self.since);
        open == self.problem
    }
}

enum Order {
    Send(Box<Note>, Option<PathBuf>),
    Reconfigure(Box<Notifier>),
    Stop,
}

/// A running notifier, as the daemon sees it.
struct Handle {
    tx: Sender<Order>,
    queue: Option<Queue>,
    /// Disconnected when the thread ends.
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// Every configured notifier.
pub struct Notifiers {
    running: BTreeMap<String, Handle>,
    /// `state_dir/notify`, with a state directory.
    dir: Option<PathBuf>,
    runner: Arc<Runner>,
}

/// Notifications written pending, not yet queued (see `Notifiers::hold`).
#[must_use = "held notifications are delivered only once released"]
pub struct Held {
    notes: Vec<(String, Note, Option<PathBuf>)>,
}

impl Notifiers {
    /// Starts `notifiers`, each with what an earlier run left queued (a
    /// pending one kept when the saved state says its switch was told:
    /// `mailed`, the outages whose Problem was told) and its alerts firing
    /// (those of the outages saved `failing`).
    pub fn resume(
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
            .map(|d| Queue::open(&d.join(&notifier.name)))
            .transpose()?;
        let queued: VecDeque<(Note, Option<PathBuf>)> = queue
            .as_ref()
            .map(|q| q.load(told))
            .unwrap_or_default()
            .into_iter()
            .map(|(note, path)| (note, Some(path)))
            .collect();
        if !queued.is_empty() {
            log::info!(
                "notify.{}: {} notifications still queued from before",
                notifier.name,
                queued.len()
            );
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let worker = Worker {
            notifier: notifier.clone(),
            queued,
            firing: alertmanager::Firing::load(queue.as_ref().map(|q| q.dir()), still),
            queue: queue.clone(),
            runner: Arc::clone(&self.runner),
            next_try: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("notify-{}", notifier.name))
            .spawn(move || {
                worker.run(rx);
                drop(done_tx);
            })?;
        self.running.insert(
            notifier.name.clone(),
            Handle {
                tx,
                queue,
                done,
                thread: Some(thread),
            },
        );
        Ok(())
    }

    /// Writes the notification of `event` (a switch about to be mailed) to
    /// every notifier's queue, pending: nothing is attempted before
    /// `release`, which comes once the switch is saved.
    pub fn hold(&self, emails: &Emails, event: &Event) -> Held {
        if self.running.is_empty() {
            return Held { notes: Vec::new() };
        }
        let note = Note::new(emails, event);
        let notes = self
            .running
            .iter()
            .map(|(name, handle)| {
                let path = handle.queue.as_ref().and_then(|q| {
                    q.save_pending(&note)
                        .map_err(|e| {
                            log::error!(
                                "notify.{name}: cannot queue {:?} in {}: {e}; keeping it in memory only",
                                note.subject,
                                q.dir().display()
                            )
                        })
                        .ok()
                });
                (name.clone(), note.clone(), path)
            })
            .collect();
        Held { notes }
    }

    /// Queues held notifications for delivery.
    pub fn release(&self, held: Held) {
        for (name, note, path) in held.notes {
            let Some(handle) = self.running.get(&name) else {
                continue;
            };
            let path = match (&handle.queue, path) {
                (Some(queue), Some(pending)) => Some(queue.commit(&pending).unwrap_or_else(|e| {
                    // Still delivered; a restart keeps it too, the switch
                    // being saved.
                    log::warn!("{}: cannot mark it queued: {e}", pending.display());
                    pending
                })),
                (_, path) => path,
            };
            if handle.tx.send(Order::Send(Box::new(note), path)).is_err() {
                log::error!("notify.{name}: its delivery thread is gone");
            }
        }
    }

    /// After a reload: notifiers kept get their new settings (and try
    /// their queue again at once), new ones start, removed ones stop; what
    /// a removed one had queued stays on disk for when it comes back.
    pub fn reconfigure(&mut self, notifiers: &[Notifier]) {
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|name| !notifiers.iter().any(|n| &n.name == *name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(handle) = self.running.remove(&name) {
                log::info!("notify.{name}: removed from the configuration, stopping it");
                handle.stop(Instant::now());
            }
        }
        for notifier in notifiers {
            match self.running.get(&notifier.name) {
                Some(handle) => {
                    let _ = handle
                        .tx
                        .send(Order::Reconfigure(Box::new(notifier.clone())));
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

    /// Stops every notifier, waiting at most `grace` for a delivery under
    /// way; what is queued stays on disk for the next start.
    pub fn stop(mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for handle in self.running.values() {
            let _ = handle.tx.send(Order::Stop);
        }
        for (_, handle) in std::mem::take(&mut self.running) {
            handle.stop(deadline);
        }
    }
}

impl Handle {
    fn stop(mut self, deadline: Instant) {
        let _ = self.tx.send(Order::Stop);
        match self.done.recv_deadline(deadline) {
            Err(RecvTimeoutError::Timeout) => {
                log::warn!("stopping while a notifier is still running; its queue stays on disk")
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    if thread.join().is_err() {
                        log::error!("a notifier's delivery thread panicked");
                    }
                }
            }
        }
    }
}

/// A notifier's delivery thread.
struct Worker {
    notifier: Notifier,
    /// Oldest first; the path is the file on disk, if any.
    queued: VecDeque<(Note, Option<PathBuf>)>,
    queue: Option<Queue>,
    runner: Arc<Runner>,
    /// No attempt before this (the last one failed).
    next_try: Instant,
    /// The alerts an Alertmanager notifier has firing.
    firing: alertmanager::Firing,
}

impl Worker {
    fn run(mut self, rx: Receiver<Order>) {
        loop {
            let retry = (!self.queued.is_empty()).then_some(self.next_try);
            let resend = match &self.notifier.kind {
                NotifierKind::Alertmanager(settings) => self.firing.next_resend(settings),
                NotifierKind::Command { .. } => None,
            };
            let order = match retry.into_iter().chain(resend).min() {
                None => match rx.recv() {
                    Ok(order) => Some(order),
                    Err(_) => return,
                },
                Some(wake) => match rx.recv_deadline(wake) {
                    Ok(order) => Some(order),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            };
            match order {
                Some(Order::Send(note, path)) => self.queued.push_back((*note, path)),
                Some(Order::Reconfigure(notifier)) => {
                    self.notifier = *notifier;
                    self.next_try = Instant::now();
                }
                Some(Order::Stop) => {
                    let in_memory = self.queued.iter().filter(|(_, p)| p.is_none()).count();
                    if in_memory > 0 {
                        log::warn!(
                            "notify.{}: stopping with {in_memory} notifications not delivered and kept in memory only (no state_dir): they are lost",
                            self.notifier.name
                        );
                    }
                    return;
                }
                None => {}
            }
            if Instant::now() >= self.next_try {
                self.attempt();
            }
            if let NotifierKind::Alertmanager(settings) = &self.notifier.kind {
                self.firing.resend(&self.notifier.name, settings);
            }
        }
    }

    /// Tries the oldest notification once.
    fn attempt(&mut self) {
        let Some((note, path)) = self.queued.front() else {
            return;
        };
        let outcome = match &self.notifier.kind {
            NotifierKind::Command { argv, timeout } => {
                command::deliver(&self.runner, argv, *timeout, note)
            }
            NotifierKind::Alertmanager(settings) => self.firing.deliver(settings, note),
        };
        let name = &self.notifier.name;
        match outcome {
            Ok(()) => {
                log::info!("notify.{name}: delivered {:?}", note.subject);
                if let (Some(queue), Some(path)) = (&self.queue, path) {
                    queue.remove(path);
                }
                self.queued.pop_front();
            }
            Err(why) => {
                log::warn!(
                    "notify.{name}: {:?} not delivered: {why}; trying again in {} ({} queued)",
                    note.subject,
                    crate::human::human_duration(self.notifier.retry_every),
                    self.queued.len()
                );
                self.next_try = Instant::now() + self.notifier.retry_every;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn note(problem: bool, since: u64) -> Note {
        Note {
            id: "web".into(),
            problem,
            since: UNIX_EPOCH + Duration::from_secs(since),
            subject: String::new(),
            env: Vec::new(),
        }
    }

    #[test]
    fn a_pending_notification_is_kept_only_when_the_saved_state_has_its_switch() {
        let failing = [("web".to_string(), UNIX_EPOCH + Duration::from_secs(100))];
        // Saved failing since 100: its Problem was told, its end was not.
        assert!(note(true, 100).told(&failing));
        assert!(!note(false, 100).told(&failing));
        // Another outage, or none saved failing: the reverse.
        assert!(!note(true, 50).told(&failing));
        assert!(note(false, 50).told(&failing));
        assert!(!note(true, 100).told(&[]));
        assert!(note(false, 100).told(&[]));
    }

    #[test]
    fn a_queue_after_a_crash_keeps_what_was_saved_and_drops_pending_switches_never_saved() {
        let dir = tempfile::tempdir().expect("temp dir");
        let queue = Queue::open(dir.path()).expect("queue");
        let first = queue.save_pending(&note(true, 100)).expect("write");
        queue.commit(&first).expect("commit");
        queue.save_pending(&note(false, 100)).expect("write");
        queue.save_pending(&note(true, 200)).expect("write");
        let failing = [("web".to_string(), UNIX_EPOCH + Duration::from_secs(100))];
        let loaded = queue.load(|n| n.told(&failing));
        let got: Vec<(bool, SystemTime)> =
            loaded.iter().map(|(n, _)| (n.problem, n.since)).collect();
        assert_eq!(got, [(true, UNIX_EPOCH + Duration::from_secs(100))]);
        // The one kept is queued for good; the dropped ones are gone.
        let left = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(left, 1);
    }
}
