//! The delivery thread of one channel: entries in queueing order, the
//! first one due tried, what the attempt ended in turned into the next
//! step (`retry::step`), and that step carried out here, on the queue and
//! on disk. Orders are read between any two attempts, so a stop or a
//! reload is never stuck behind a backlog.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::channel::{Channel, Entry, Try, Words};
use super::disk_full::{self, Backlog, DiskFull};
use super::queue::{Queue, Queued};
use super::retry::{self, Step};

/// What the front (`Courier`) tells its thread.
pub(crate) enum Order<E, S> {
    /// Queue `entry`, on disk at the path if it has one.
    Send(Box<E>, Option<PathBuf>),
    Reconfigure(Box<S>),
    /// Deliver what can be delivered before this, then end.
    Stop(Instant),
}

pub(crate) struct Worker<C: Channel> {
    pub(crate) channel: C,
    pub(crate) queued: VecDeque<Queued<C::Entry>>,
    pub(crate) queue: Option<Queue>,
    pub(crate) words: Words,
    /// No attempt at all before this: the channel was down.
    pub(crate) paused_until: Instant,
    pub(crate) disk: DiskFull,
    pub(crate) stop_at: Option<Instant>,
    /// How long the last attempt took: while stopping, none starts that
    /// could not end before the deadline.
    pub(crate) last_try: Duration,
    /// What is queued where, for a stop that cannot wait for the thread.
    pub(crate) backlog: Arc<Mutex<Backlog>>,
}

impl<C: Channel> Worker<C> {
    pub(crate) fn run(mut self, rx: Receiver<Order<C::Entry, C::Settings>>) {
        self.publish();
        loop {
            loop {
                match rx.try_recv() {
                    Ok(order) => self.obey(order),
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
                if retry::too_late(next, now, self.last_try, deadline) {
                    return self.finish();
                }
            }
            if self.channel.wake_at().is_some_and(|at| at <= now) {
                self.channel.wake(now);
            }
            if next.is_some_and(|due| due <= now) {
                self.attempt(now);
                continue;
            }
            let wake = [next, self.channel.wake_at(), self.stop_at]
                .into_iter()
                .flatten()
                .min();
            let order = match wake {
                Some(at) => rx.recv_deadline(at),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match order {
                Ok(order) => self.obey(order),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop_at.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    fn obey(&mut self, order: Order<C::Entry, C::Settings>) {
        match order {
            Order::Send(entry, path) => {
                self.queued.push_back(Queued {
                    entry: *entry,
                    path,
                    next_try: Instant::now(),
                });
                self.publish();
            }
            Order::Reconfigure(settings) => {
                self.channel.reconfigure(*settings);
                let now = Instant::now();
                self.paused_until = now;
                for q in &mut self.queued {
                    q.next_try = now;
                }
            }
            Order::Stop(deadline) => self.stop_at = Some(deadline),
        }
    }

    /// When the next attempt is due, if anything is queued.
    fn next_due(&self) -> Option<Instant> {
        let first = self.queued.iter().map(|q| q.next_try).min()?;
        Some(first.max(self.paused_until))
    }

    fn publish(&self) {
        *self.backlog.lock().unwrap_or_else(|e| e.into_inner()) = Backlog::of(&self.queued);
    }

    fn spool_stragglers(&mut self, now: Instant, force: bool) {
        let Some(queue) = &self.queue else { return };
        if self.disk.due(Backlog::of(&self.queued), now, force) {
            let retry = self.channel.retry();
            self.disk
                .retry(queue, &mut self.queued, now, retry, &self.words);
            self.publish();
        }
    }

    /// Tries the first entry that is due, and carries out the step its
    /// outcome leads to.
    fn attempt(&mut self, now: Instant) {
        self.spool_stragglers(now, false);
        let Some(i) = self.queued.iter().position(|q| q.next_try <= now) else {
            return;
        };
        let attempt = Try {
            stop_at: self.stop_at,
            queued: self.queued.len(),
        };
        let started = Instant::now();
        let Some(q) = self.queued.get_mut(i) else {
            return;
        };
        let outcome = self.channel.deliver(&mut q.entry, attempt);
        self.last_try = started.elapsed();
        let step = retry::step(outcome, Instant::now(), self.channel.retry());
        match step {
            Step::Done => {
                if let Some(Queued {
                    path: Some(path), ..
                }) = self.queued.remove(i)
                {
                    if let Some(queue) = &self.queue {
                        queue.remove(&path);
                    }
                }
            }
            Step::Retry(at) => {
                q.next_try = at;
                if self.channel.keeps_notes() {
                    self.respool(i);
                }
            }
            Step::Pause(until) => {
                self.paused_until = until;
                if self.channel.keeps_notes() {
                    self.respool(i);
                }
                // Every entry queued behind it waits for the same reason:
                // each says so when it arrives, not only the first.
                for j in 0..self.queued.len() {
                    if self.channel.note_down(&mut self.queued[j].entry) {
                        self.respool(j);
                    }
                }
            }
            Step::SetAside(why) => {
                if let Some(gone) = self.queued.remove(i) {
                    match (&self.queue, &gone.path) {
                        (Some(queue), Some(path)) => queue.set_aside(path, &why),
                        _ => log::error!(
                            "{}{why}; dropped, for the record:\n{}",
                            self.words.prefix,
                            gone.entry.record()
                        ),
                    }
                }
            }
        }
        self.publish();
    }

    /// Writes the changed entry `i` back to its file.
    fn respool(&self, i: usize) {
        let (Some(queue), Some(q)) = (&self.queue, self.queued.get(i)) else {
            return;
        };
        if let Some(path) = &q.path {
            if let Err(e) = queue.save(&q.entry, Some(path)) {
                log::error!("{}: cannot update the queued entry: {e}", path.display());
            }
        }
    }

    /// At a stop: what is still queued stays on disk (tried once more for
    /// entries held only in memory), and the log says exactly that.
    fn finish(&mut self) {
        self.channel.close();
        if self.queued.is_empty() {
            return;
        }
        self.spool_stragglers(Instant::now(), true);
        let on_disk = Backlog::of(&self.queued).on_disk;
        if let (Some(queue), true) = (&self.queue, on_disk > 0) {
            log::warn!(
                "{}stopping with {on_disk} {} unsent, kept in {} for the next start",
                self.words.prefix,
                self.words.many,
                queue.dir().display()
            );
        }
        disk_full::tell_lost(self.queue.as_ref(), &self.queued, &self.words);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::courier::retry::Outcome;

    use crate::courier::channel::tests::Text;

    /// A channel that answers each attempt with the next outcome given.
    struct Scripted {
        outcomes: VecDeque<Outcome>,
        tried: Vec<String>,
    }

    const RETRY: Duration = Duration::from_secs(10);

    impl Channel for Scripted {
        type Entry = Text;
        type Settings = ();
        fn retry(&self) -> Duration {
            RETRY
        }
        fn deliver(&mut self, entry: &mut Text, _attempt: Try) -> Outcome {
            self.tried.push(entry.0.clone());
            self.outcomes.pop_front().unwrap_or(Outcome::Delivered)
        }
        fn reconfigure(&mut self, _settings: ()) {}
    }

    fn worker(outcomes: Vec<Outcome>, entries: &[&str], now: Instant) -> Worker<Scripted> {
        Worker {
            channel: Scripted {
                outcomes: outcomes.into(),
                tried: Vec::new(),
            },
            queued: entries
                .iter()
                .map(|e| Queued {
                    entry: Text(e.to_string()),
                    path: None,
                    next_try: now,
                })
                .collect(),
            queue: None,
            words: Words {
                prefix: "test: ".into(),
                one: "text",
                many: "texts",
            },
            paused_until: now,
            disk: DiskFull::new(now),
            stop_at: None,
            last_try: Duration::ZERO,
            backlog: Arc::default(),
        }
    }

    fn left(w: &Worker<Scripted>) -> Vec<&str> {
        w.queued.iter().map(|q| q.entry.0.as_str()).collect()
    }

    #[test]
    fn an_entry_refused_for_good_waits_while_the_ones_behind_it_go() {
        let now = Instant::now();
        let mut w = worker(vec![Outcome::Refused { permanent: true }], &["a", "b"], now);
        w.attempt(now);
        w.attempt(now);
        assert_eq!(w.channel.tried, ["a", "b"]);
        assert_eq!(left(&w), ["a"]);
        // Ten retry intervals, not one: only the operator can fix a 5xx.
        assert!(w.next_due().is_some_and(|at| at >= now + 10 * RETRY));
        assert_eq!(
            *w.backlog.lock().unwrap_or_else(|e| e.into_inner()),
            Backlog {
                on_disk: 0,
                in_memory: 1
            }
        );
    }

    #[test]
    fn a_channel_down_holds_back_every_entry_in_queueing_order() {
        let now = Instant::now();
        let mut w = worker(vec![Outcome::Down], &["a", "b"], now);
        w.attempt(now);
        assert_eq!(left(&w), ["a", "b"]);
        assert!(w.next_due().is_some_and(|at| at >= now + RETRY));
        // Due again: the first one first, so notifications keep their order.
        let later = now + RETRY + Duration::from_millis(1);
        w.attempt(later);
        w.attempt(later);
        assert_eq!(w.channel.tried, ["a", "a", "b"]);
        assert!(w.queued.is_empty());
    }

    #[test]
    fn an_entry_that_can_never_be_sent_is_dropped_and_holds_back_no_other() {
        let now = Instant::now();
        let mut w = worker(
            vec![Outcome::Unsendable("no sender".into())],
            &["a", "b"],
            now,
        );
        w.attempt(now);
        assert_eq!(left(&w), ["b"]);
        assert_eq!(w.next_due(), Some(now));
    }

    #[test]
    fn a_reload_tries_every_waiting_entry_again_at_once() {
        let now = Instant::now();
        let mut w = worker(vec![Outcome::Down], &["a"], now);
        w.attempt(now);
        assert!(w.next_due().is_some_and(|at| at > now));
        w.obey(Order::Reconfigure(Box::new(())));
        assert!(w.next_due().is_some_and(|at| at <= Instant::now()));
    }
}
