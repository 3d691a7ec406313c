//! The watch loop: every plugin run in progress in one thread, watched
//! with one epoll over their pidfds and pipes, with the clock for their
//! timeouts, so that a run costs neither a thread of its own nor hand-offs
//! between threads.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::capture::Stream;
use super::spawn::give_up;
use super::spawners::Spawners;
use super::{Finished, Launch, RunError, Runner};
use crate::sys;

/// How long pipes may stay open after the plugin's group was killed; only a
/// process that escaped the group (`setsid`) can hold them longer.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A plugin started and not yet reaped.
pub(super) struct Running {
    pub(super) handle: duct::Handle,
    pub(super) pid: i32,
    /// Until the plugin exits: then it is closed, which also takes it out
    /// of the epoll set.
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) out: Stream,
    pub(super) err: Stream,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
    pub(super) exited_at: Option<Instant>,
    pub(super) timed_out: bool,
    pub(super) held_open: bool,
}

impl Running {
    /// The plugin exited: whatever it left in its group goes with it.
    fn exited(&mut self, now: Instant) {
        if self.exited_at.is_none() {
            self.exited_at = Some(now);
            sys::kill_group(self.pid);
            self.pidfd = None;
        }
    }

    /// When the clock alone has something to say about this run: its
    /// timeout, or how long its pipes may stay open after it exited.
    fn next_timer(&self) -> Option<Instant> {
        match self.exited_at {
            None if self.timed_out => None,
            None => Some(self.deadline),
            Some(_) if self.out.fd.is_none() && self.err.fd.is_none() => None,
            Some(at) => Some(at + DRAIN_GRACE),
        }
    }

    /// Kills the group at the timeout; after the plugin exited, stops
    /// reading pipes that only a process outside the group (`setsid`) can
    /// still hold open.
    fn on_clock(&mut self, now: Instant) {
        match self.exited_at {
            None if !self.timed_out && now >= self.deadline => {
                self.timed_out = true;
                sys::kill_group(self.pid);
            }
            Some(at)
                if now >= at + DRAIN_GRACE && (self.out.fd.is_some() || self.err.fd.is_some()) =>
            {
                self.held_open = true;
                self.out.fd = None;
                self.err.fd = None;
            }
            _ => {}
        }
    }

    fn is_done(&self) -> bool {
        self.exited_at.is_some() && self.out.fd.is_none() && self.err.fd.is_none()
    }

    /// Reaps the plugin, which has exited and whose group was forgotten.
    fn finish(self) -> Result<Finished, RunError> {
        // It has exited: a non-blocking wait is enough (and is one system
        // call where a blocking one is three).
        let status = match self.handle.try_wait() {
            Ok(Some(output)) => Ok(output.status),
            Ok(None) => self.handle.wait().map(|o| o.status),
            Err(e) => Err(e),
        }
        .map_err(RunError::Wait)?;
        let exited_at = self.exited_at.unwrap_or_else(Instant::now);
        Ok(Finished {
            escaped: Vec::new(),
            output_held_open: self.held_open,
            exit_code: if self.timed_out { None } else { status.code() },
            signal: status.signal(),
            timed_out: self.timed_out,
            stdout: self.out.into_bytes(),
            stderr: self.err.into_bytes(),
            duration: exited_at - self.started,
        })
    }
}

/// Where an epoll key points: a run's slot, the start count that tells
/// this run from a later one in the same slot, and which descriptor.
const KEY_PIDFD: u64 = 0;
const KEY_STDOUT: u64 = 1;
const KEY_STDERR: u64 = 2;
const KEY_WAKE: u64 = u64::MAX;
const KEY_SPAWNED: u64 = u64::MAX - 1;

fn key(serial: u32, slot: usize, which: u64) -> u64 {
    (u64::from(serial) << 32) | ((slot as u64) << 2) | which
}

/// Every plugin run in progress in one thread: started here (or by
/// spawner threads, see `with_spawners`), watched with one epoll over
/// their pidfds and pipes, and handed back, with a payload of the
/// caller's, when they end. Nothing in it blocks but the wait for the next
/// event, so the thread that turns it does nothing else.
pub(crate) struct Watch<T> {
    runner: Arc<Runner>,
    epoll: sys::Epoll,
    slots: Vec<Option<(u32, Running, T)>>,
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
    /// Runs ordered from the spawners and not back yet.
    spawning: usize,
}

impl<T: Launch> Watch<T> {
    /// A watch whose runs `count` threads spawn, several at once, while
    /// the thread that turns it only watches.
    pub(crate) fn with_spawners(runner: Arc<Runner>, count: usize) -> io::Result<Watch<T>> {
        let mut watch = Watch::new(Arc::clone(&runner))?;
        let spawners = Spawners::new(&runner, count)?;
        watch.epoll.add(spawners.bell.as_raw_fd(), KEY_SPAWNED)?;
        watch.spawners = Some(spawners);
        Ok(watch)
    }

    /// A watch that spawns its runs itself, one at a time.
    pub(crate) fn new(runner: Arc<Runner>) -> io::Result<Watch<T>> {
        Ok(Watch {
            runner,
            epoll: sys::Epoll::new()?,
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

    /// Runs ordered from the spawners that have not started yet.
    pub(crate) fn spawning(&self) -> usize {
        self.spawning
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts what `payload` says, as `Runner::run` does; the run comes
    /// back from a later `turn`, with `payload`, also when it could not
    /// start.
    pub(crate) fn start(&mut self, payload: T) {
        let payload = match &self.spawners {
            Some(spawners) => match spawners.order(payload) {
                Ok(()) => {
                    self.spawning += 1;
                    return;
                }
                // The threads are gone: spawned here then.
                Err(payload) => payload,
            },
            None => payload,
        };
        let run = self
            .runner
            .start(payload.argv(), payload.timeout(), payload.env());
        self.watch(payload, run);
    }

    /// Takes the runs the spawners started since the last look.
    fn take_spawned(&mut self) {
        let Some(spawners) = &self.spawners else {
            return;
        };
        spawners.bell.clear();
        let spawned: Vec<_> = spawners.spawned.try_iter().collect();
        for (payload, run) in spawned {
            self.spawning -= 1;
            self.watch(payload, run);
        }
    }

    /// Adds a run just started to the epoll set.
    fn watch(&mut self, payload: T, run: Result<Running, RunError>) {
        let run = match run {
            Ok(run) => run,
            Err(e) => return self.failed.push((payload, e)),
        };
        let slot = self.free.pop().unwrap_or(self.slots.len());
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        let mut fds = [
            (run.pidfd.as_ref().map(AsRawFd::as_raw_fd), KEY_PIDFD),
            (run.out.fd.as_ref().map(AsRawFd::as_raw_fd), KEY_STDOUT),
            (run.err.fd.as_ref().map(AsRawFd::as_raw_fd), KEY_STDERR),
        ]
        .into_iter();
        let added = fds.try_for_each(|(fd, which)| match fd {
            Some(fd) => self.epoll.add_edge_triggered(fd, key(serial, slot, which)),
            None => Ok(()),
        });
        if let Err(e) = added {
            if slot < self.slots.len() {
                self.free.push(slot);
            }
            // Its descriptors close with it, which takes them out of epoll.
            let e = give_up(&self.runner, run.pid, &run.handle, e);
            return self.failed.push((payload, e));
        }
        if slot == self.slots.len() {
            self.slots.push(None);
        }
        self.slots[slot] = Some((serial, run, payload));
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
                .filter_map(|(_, run, _)| run.next_timer())
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
            // A descriptor that a forking thread still held for a moment
            // may report once more after its run ended: the serial tells.
            let Some(Some((s, run, _))) = self.slots.get_mut(slot) else {
                continue;
            };
            if *s != serial {
                continue;
            }
            let hung_up = ready.flags & (libc::EPOLLHUP as u32) != 0;
            match ready.key & 3 {
                KEY_PIDFD => run.exited(now),
                KEY_STDOUT => run.out.drain(&mut self.buf, hung_up),
                _ => run.err.drain(&mut self.buf, hung_up),
            }
        }
        let first = done.len();
        let mut leaders = Vec::new();
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            let Some((_, run, _)) = entry else { continue };
            run.on_clock(now);
            if !run.is_done() {
                continue;
            }
            let Some((_, run, payload)) = entry.take() else {
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
        if spawned {
            self.take_spawned();
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
                    give_up(
                        &self.runner,
                        run.pid,
                        &run.handle,
                        io::Error::other("no longer watched"),
                    );
                }
            }
        }
        for (_, run, _) in self.slots.iter_mut().filter_map(Option::take) {
            give_up(
                &self.runner,
                run.pid,
                &run.handle,
                io::Error::other("no longer watched"),
            );
        }
    }
}
