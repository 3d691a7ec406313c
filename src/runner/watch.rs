//! The watch loop: every plugin run in progress in one thread, watched
//! with one epoll over their pidfds and pipes, with the clock for their
//! timeouts, so that a run costs neither a thread of its own nor hand-offs
//! between threads. A run has its slot from the moment it is ordered:
//! whoever spawns it adds its descriptors under that slot's key, so that
//! an event that comes before the run itself (from a spawner thread) is
//! kept in the slot until it does.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::order::{Order, KEY_PIDFD, KEY_STDOUT};
use super::running::Running;
use super::spawn::give_up;
use super::spawners::Spawners;
use super::{Finished, Launch, RunError, Runner};
use crate::sys;

/// What a slot holds: a run ordered and not back from its spawner yet,
/// with the events that came before it, or a run being watched.
// Unboxed: a slot is used run after run, and a box would be an
// allocation per run.
#[allow(clippy::large_enum_variant)]
enum Entry<T> {
    Spawning {
        serial: u32,
        /// By when the run times out at the latest, as far as the loop
        /// knows: it wakes then to take the run, should no event come.
        deadline: Instant,
        early: Early,
    },
    Running {
        serial: u32,
        run: Running,
        payload: T,
    },
}

/// Events for a run that was not back from its spawner yet.
#[derive(Default, Clone, Copy)]
struct Early {
    exited: bool,
    /// Output came (true: and every writer is gone).
    out: Option<bool>,
    err: Option<bool>,
}

impl Early {
    fn any(&self) -> bool {
        self.exited || self.out.is_some() || self.err.is_some()
    }
}

/// How soon the loop looks again for a run whose event came before it.
const EARLY_RECHECK: Duration = Duration::from_millis(1);

/// The keys of the loop's own descriptors (runs' keys: see `order`).
const KEY_WAKE: u64 = u64::MAX;
const KEY_SPAWNED: u64 = u64::MAX - 1;

/// Every plugin run in progress in one thread: started here (or by
/// spawner threads, see `with_spawners`), watched with one epoll over
/// their pidfds and pipes, and handed back, with a payload of the
/// caller's, when they end. Nothing in it blocks but the wait for the next
/// event, so the thread that turns it does nothing else.
pub(crate) struct Watch<T> {
    runner: Arc<Runner>,
    epoll: Arc<sys::Epoll>,
    slots: Vec<Option<Entry<T>>>,
    free: Vec<usize>,
    serial: u32,
    running: usize,
    /// Runs that could not start, handed back by the next turn.
    failed: Vec<(T, RunError)>,
    ready: Vec<sys::Ready>,
    /// One read buffer for every pipe (a pipe holds 64 KiB by default).
    buf: Box<[u8]>,
    waker: Option<Arc<sys::Waker>>,
    /// None: runs are spawned by the thread that turns the watch.
    spawners: Option<Spawners<T>>,
    /// Runs ordered and not back yet.
    spawning: usize,
    /// Runs ordered from the spawners that have not started yet: kept by
    /// the spawners as they go, for whoever asks how far behind they are.
    unstarted: Arc<AtomicUsize>,
}

impl<T: Launch> Watch<T> {
    /// A watch whose runs `count` threads spawn, several at once, while
    /// the thread that turns it only watches.
    pub(crate) fn with_spawners(runner: Arc<Runner>, count: usize) -> io::Result<Watch<T>> {
        let mut watch = Watch::new(Arc::clone(&runner))?;
        let spawners = Spawners::new(&runner, &watch.epoll, &watch.unstarted, count)?;
        watch.epoll.add(spawners.bell.as_raw_fd(), KEY_SPAWNED)?;
        watch.spawners = Some(spawners);
        Ok(watch)
    }

    /// A watch that spawns its runs itself, one at a time.
    pub(crate) fn new(runner: Arc<Runner>) -> io::Result<Watch<T>> {
        Ok(Watch {
            runner,
            epoll: Arc::new(sys::Epoll::new()?),
            slots: Vec::new(),
            free: Vec::new(),
            serial: 0,
            running: 0,
            failed: Vec::new(),
            ready: Vec::with_capacity(64),
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            waker: None,
            spawners: None,
            spawning: 0,
            unstarted: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Something another thread can wake this watch's turn with.
    pub(crate) fn waker(&mut self) -> io::Result<Arc<sys::Waker>> {
        if let Some(waker) = &self.waker {
            return Ok(Arc::clone(waker));
        }
        let waker = Arc::new(sys::Waker::new()?);
        self.epoll.add(waker.as_raw_fd(), KEY_WAKE)?;
        self.waker = Some(Arc::clone(&waker));
        Ok(waker)
    }

    /// Runs started and not handed back yet.
    pub(crate) fn len(&self) -> usize {
        self.running + self.spawning + self.failed.len()
    }

    /// The count of runs ordered from the spawners and not started yet,
    /// kept up to date as the spawners go (the
    /// thread that turns the watch may be asleep meanwhile).
    pub(crate) fn unstarted(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.unstarted)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts what `payload` says, as `Runner::run` does; the run comes
    /// back from a later `turn`, with `payload`, also when it could not
    /// start.
    pub(crate) fn start(&mut self, payload: T) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        self.slots[slot] = Some(Entry::Spawning {
            serial,
            deadline: Instant::now() + payload.timeout(),
            early: Early::default(),
        });
        self.spawning += 1;
        let order = Order {
            slot,
            serial,
            payload,
        };
        let order = match &self.spawners {
            Some(spawners) => {
                // Counted before the spawner can count it down.
                self.unstarted.fetch_add(1, Ordering::Relaxed);
                match spawners.order(order) {
                    Ok(()) => return,
                    // The threads are gone: spawned here then.
                    Err(order) => {
                        self.unstarted.fetch_sub(1, Ordering::Relaxed);
                        order
                    }
                }
            }
            None => order,
        };
        let run = order.launch(&self.runner, &self.epoll);
        self.arrive(order, run, Instant::now());
    }

    /// Takes the runs the spawners started since the last look.
    fn take_spawned(&mut self, rung: bool, now: Instant) {
        let Some(spawners) = &self.spawners else {
            return;
        };
        if rung {
            spawners.bell.clear();
        }
        let spawned: Vec<_> = spawners.spawned.try_iter().collect();
        for (order, run) in spawned {
            self.arrive(order, run, now);
        }
    }

    /// A run back from its spawner, its descriptors already in the epoll
    /// set: the events that came before it are applied.
    fn arrive(&mut self, order: Order<T>, run: Result<Running, RunError>, now: Instant) {
        let Order {
            slot,
            serial,
            payload,
        } = order;
        self.spawning -= 1;
        let early = match self.slots.get(slot) {
            Some(Some(Entry::Spawning {
                serial: s, early, ..
            })) if *s == serial => *early,
            // Not expected: every order keeps its slot until it is back.
            _ => Early::default(),
        };
        let mut run = match run {
            Ok(run) => run,
            Err(e) => {
                self.slots[slot] = None;
                self.free.push(slot);
                return self.failed.push((payload, e));
            }
        };
        if early.exited {
            run.exited(now);
        }
        if let Some(hung_up) = early.out {
            run.out.drain(&mut self.buf, hung_up);
        }
        if let Some(hung_up) = early.err {
            run.err.drain(&mut self.buf, hung_up);
        }
        self.slots[slot] = Some(Entry::Running {
            serial,
            run,
            payload,
        });
        self.running += 1;
    }

    /// Waits for something to happen (output, an exit, a timeout, a
    /// wake-up) and acts on it; the runs that ended are added to `done`.
    /// True when the waker was woken.
    pub(crate) fn turn(
        &mut self,
        done: &mut Vec<(T, Result<Finished, RunError>)>,
    ) -> io::Result<bool> {
        let now = Instant::now();
        let timeout = match self.failed.is_empty() {
            false => Some(Duration::ZERO),
            true => self
                .slots
                .iter()
                .flatten()
                .filter_map(|entry| match entry {
                    Entry::Running { run, .. } => run.next_timer(),
                    Entry::Spawning { early, .. } if early.any() => Some(now + EARLY_RECHECK),
                    Entry::Spawning { deadline, .. } => Some(*deadline),
                })
                .min()
                .map(|at| at.saturating_duration_since(now)),
        };
        self.epoll.wait(&mut self.ready, timeout)?;
        let now = Instant::now();
        let mut woken = false;
        let mut spawned = false;
        for ready in &self.ready {
            if ready.key == KEY_WAKE {
                woken = true;
                continue;
            }
            if ready.key == KEY_SPAWNED {
                spawned = true;
                continue;
            }
            let serial = (ready.key >> 32) as u32;
            let slot = ((ready.key & 0xffff_ffff) >> 2) as usize;
            let hung_up = ready.flags & (libc::EPOLLHUP as u32) != 0;
            // A descriptor that a forking thread still held for a moment
            // may report once more after its run ended: the serial tells.
            match self.slots.get_mut(slot) {
                Some(Some(Entry::Running { serial: s, run, .. })) if *s == serial => {
                    match ready.key & 3 {
                        KEY_PIDFD => run.exited(now),
                        KEY_STDOUT => run.out.drain(&mut self.buf, hung_up),
                        _ => run.err.drain(&mut self.buf, hung_up),
                    }
                }
                Some(Some(Entry::Spawning {
                    serial: s, early, ..
                })) if *s == serial => match ready.key & 3 {
                    KEY_PIDFD => early.exited = true,
                    KEY_STDOUT => early.out = Some(early.out.unwrap_or(false) | hung_up),
                    _ => early.err = Some(early.err.unwrap_or(false) | hung_up),
                },
                _ => {}
            }
        }
        self.take_spawned(spawned, now);
        let first = done.len();
        let mut leaders = Vec::new();
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            let Some(Entry::Running { run, .. }) = entry else {
                continue;
            };
            run.on_clock(now);
            if !run.is_done() {
                continue;
            }
            let Some(Entry::Running { run, payload, .. }) = entry.take() else {
                continue;
            };
            self.free.push(slot);
            self.running -= 1;
            leaders.push(run.pid);
            // Forgotten before it is reaped: once reaped, its group id may
            // be reused, and a concurrent stop must not kill a stranger's
            // group.
            self.runner.register(run.pid, false);
            done.push((payload, run.finish()));
        }
        if !leaders.is_empty() {
            let escaped = self.runner.kill_leftovers(&leaders);
            if !escaped.is_empty() {
                if let Some((_, Ok(finished))) = done[first..].iter_mut().find(|(_, r)| r.is_ok()) {
                    finished.escaped = escaped;
                }
            }
        }
        done.extend(self.failed.drain(..).map(|(payload, e)| (payload, Err(e))));
        Ok(woken)
    }
}

impl<T> Drop for Watch<T> {
    /// A watch given up on leaves no plugin running, nor one being spawned.
    fn drop(&mut self) {
        if let Some(mut spawners) = self.spawners.take() {
            for (_, run) in spawners.close() {
                if let Ok(run) = run {
                    give_up(&self.runner, run.pid, io::Error::other("no longer watched"));
                }
            }
        }
        for entry in self.slots.iter_mut().filter_map(Option::take) {
            let Entry::Running { run, .. } = entry else {
                continue;
            };
            give_up(&self.runner, run.pid, io::Error::other("no longer watched"));
        }
    }
}
