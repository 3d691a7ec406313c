//! One channel's courier as its callers see it (`Courier`): an entry is
//! written to the channel's queue (pending while `hold`en), handed to the
//! channel's thread (`worker`), and a stop waits for that thread no longer
//! than its deadline allows.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::channel::{Channel, Entry, Words};
use super::disk_full::{self, Backlog, DiskFull};
use super::queue::{Queue, Queued};
use super::retry::STOP_STEP;
use super::worker::{Order, Worker};

/// One channel's courier, as its callers see it: entries go in from any
/// thread and come out at the channel, however long that takes.
pub(crate) struct Courier<E, S> {
    tx: Sender<Order<E, S>>,
    queue: Option<Queue>,
    words: Words,
    backlog: Arc<Mutex<Backlog>>,
    /// Disconnected when the thread ends.
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// An entry written pending, not yet queued for delivery (see `hold`).
#[must_use = "a held entry is delivered only once released"]
pub(crate) struct Pending<E> {
    entry: E,
    path: Option<PathBuf>,
}

impl<E: Entry, S: Send + 'static> Courier<E, S> {
    /// Starts `channel`'s thread with what `queue` holds from an earlier
    /// run (a pending entry kept when `told`, the saved state having its
    /// switch).
    pub(crate) fn start<C>(
        channel: C,
        queue: Option<Queue>,
        told: impl Fn(&E) -> bool,
        words: Words,
        thread_name: String,
    ) -> anyhow::Result<Courier<E, S>>
    where
        C: Channel<Entry = E, Settings = S>,
    {
        let now = Instant::now();
        let queued: VecDeque<Queued<E>> = queue
            .as_ref()
            .map(|q| q.load(told))
            .unwrap_or_default()
            .into_iter()
            .map(|(entry, path)| Queued {
                entry,
                path: Some(path),
                next_try: now,
            })
            .collect();
        if !queued.is_empty() {
            log::info!(
                "{}{} {} still queued from before",
                words.prefix,
                queued.len(),
                words.many
            );
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let backlog = Arc::new(Mutex::new(Backlog::of(&queued)));
        let worker = Worker {
            channel,
            queued,
            queue: queue.clone(),
            words: words.clone(),
            paused_until: now,
            disk: DiskFull::new(now),
            stop_at: None,
            last_try: Duration::ZERO,
            backlog: Arc::clone(&backlog),
        };
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                worker.run(rx);
                drop(done_tx);
            })
            .map_err(|e| {
                anyhow::anyhow!("{}cannot start its delivery thread: {e}", words.prefix)
            })?;
        Ok(Courier {
            tx,
            queue,
            words,
            backlog,
            done,
            thread: Some(thread),
        })
    }

    /// Queues `entry` (on disk first, with a queue there).
    pub(crate) fn send(&self, entry: E) {
        let path = disk_full::write(self.queue.as_ref(), &entry, false, &self.words);
        self.queue_it(entry, path);
    }

    /// Writes `entry` to the queue, pending: nothing is attempted before
    /// `release`, which comes once its switch is saved.
    pub(crate) fn hold(&self, entry: E) -> Pending<E> {
        let path = disk_full::write(self.queue.as_ref(), &entry, true, &self.words);
        Pending { entry, path }
    }

    /// Queues a held entry for delivery.
    pub(crate) fn release(&self, pending: Pending<E>) {
        let Pending { entry, path } = pending;
        let path = match (&self.queue, path) {
            (Some(queue), Some(pending)) => Some(queue.commit(&pending).unwrap_or_else(|e| {
                // Still delivered; a restart keeps it too, the switch
                // being saved.
                log::warn!("{}: cannot mark it queued: {e}", pending.display());
                pending
            })),
            (_, path) => path,
        };
        self.queue_it(entry, path);
    }

    fn queue_it(&self, entry: E, path: Option<PathBuf>) {
        if self.tx.send(Order::Send(Box::new(entry), path)).is_err() {
            log::error!("{}the delivery thread is gone", self.words.prefix);
        }
    }

    /// New settings after a reload; every queued entry is tried again.
    pub(crate) fn reconfigure(&self, settings: S) {
        let _ = self.tx.send(Order::Reconfigure(Box::new(settings)));
    }

    /// Tells the thread to deliver what it can before `deadline`, then
    /// end; `join` waits for that.
    pub(crate) fn ask_stop(&self, deadline: Instant) {
        let _ = self.tx.send(Order::Stop(deadline));
    }

    /// Waits for the thread asked to stop at `deadline`, at most
    /// `STOP_STEP` past it, even if a step begun before the stop is still
    /// waiting for the other end; the log then says what stays queued.
    pub(crate) fn join(mut self, deadline: Instant) {
        match self.done.recv_deadline(deadline + STOP_STEP) {
            Err(RecvTimeoutError::Timeout) => {
                let backlog = *self.backlog.lock().unwrap_or_else(|e| e.into_inner());
                let kept = match &self.queue {
                    Some(queue) => format!(
                        "{} queued {} stay in {} for the next start",
                        backlog.on_disk,
                        self.words.many,
                        queue.dir().display()
                    ),
                    None => format!("no state_dir keeps the queued {}", self.words.many),
                };
                log::warn!(
                    "{}stopping while a delivery is still waiting for the other end: {kept}, {} {} only in memory are lost",
                    self.words.prefix,
                    backlog.in_memory,
                    self.words.many
                );
            }
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(thread) = self.thread.take() {
                    if thread.join().is_err() {
                        log::error!("{}the delivery thread panicked", self.words.prefix);
                    }
                }
            }
        }
    }

    /// Delivers what can be delivered within `grace`, then stops; the rest
    /// stays on disk (or is lost, without one), and the log says which.
    pub(crate) fn stop(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.ask_stop(deadline);
        self.join(deadline);
    }
}
