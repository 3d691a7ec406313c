//! Runs plugins: each spawned through duct in a process group of its own,
//! so that a timeout (or picomon stopping) kills the whole tree with one
//! `killpg`, and all of them watched from one thread (`Watch`: one epoll
//! over every run's pidfd and pipes), so that a run costs neither a thread
//! of its own nor hand-offs between threads. Output is read as it comes
//! and capped.
//!
//! Plugins get a clean environment (no `PICOMON_*` configuration or
//! secret reaches them), and picomon is the subreaper of what they leave
//! behind: a process that escaped the group with `setsid` becomes a child
//! of picomon's main thread (the kernel hands orphans to the first thread
//! of the reaper), where plugins themselves never are, since the watching
//! thread starts them; that thread kills and reaps it after the run.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sys;

/// How much of each output stream is kept; the rest is read and dropped so
/// that a chatty plugin never blocks on a full pipe.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// How long pipes may stay open after the plugin's group was killed; only a
/// process that escaped the group (`setsid`) can hold them longer.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum RunError {
    /// The plugin could not be started (missing, not executable, …).
    Spawn(io::Error),
    /// The plugin started but could not be watched or reaped.
    Wait(io::Error),
}

/// A plugin run that ended, by itself or killed at its timeout.
#[derive(Debug, Clone)]
pub struct Finished {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
    /// Processes that escaped the plugin's group and outlived it, killed
    /// after the run: `PID (NAME)` each.
    pub escaped: Vec<String>,
    /// A process outside the group kept the output pipes open after the
    /// plugin exited; picomon stopped reading them.
    pub output_held_open: bool,
}

/// Runs plugins and remembers their process groups, so that stopping
/// picomon can kill every plugin still running.
#[derive(Debug, Default)]
pub struct Runner {
    groups: Mutex<HashSet<i32>>,
    stopping: AtomicBool,
    /// The environment every plugin gets, before its check's own `env`.
    base_env: Vec<(OsString, OsString)>,
    /// `/dev/null`, opened once: each plugin's stdin is a copy of it (a
    /// `dup`), where opening it again for every run was the dearest
    /// system call of a spawn after the spawn itself.
    null: Option<std::fs::File>,
}

/// What of picomon's own environment a plugin sees: where programs are,
/// the language and time zone of their messages, and the CAs to trust
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`: the built-in https check trusts what
/// picomon's Alertmanager notifier does). Nothing else, above all no
/// `PICOMON_*` variable (configuration and secrets).
fn plugin_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            ["PATH", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"].contains(&name.as_ref())
                || name.starts_with("LC_")
        })
        .collect()
}

/// Output read so far from one pipe.
struct Stream {
    fd: Option<os_pipe::PipeReader>,
    kept: Vec<u8>,
    dropped: usize,
}

impl Stream {
    fn new(fd: os_pipe::PipeReader) -> io::Result<Stream> {
        // Only our end: the plugin's end stays blocking, as plugins expect.
        sys::set_pipe_nonblocking(fd.as_raw_fd())?;
        Ok(Stream {
            fd: Some(fd),
            kept: Vec::new(),
            dropped: 0,
        })
    }

    /// Reads what is available now; closes the stream at end of file.
    /// `hung_up`: every writer is gone, so reading to the end never waits.
    fn drain(&mut self, buf: &mut [u8], hung_up: bool) {
        let Some(fd) = self.fd.as_mut() else { return };
        loop {
            match fd.read(buf) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.kept.len()).min(n);
                    self.kept.extend_from_slice(&buf[..room]);
                    self.dropped += n - room;
                    // The pipe held less than the buffer: nothing is left,
                    // and asking again would only say so (epoll reports
                    // the end of file when it comes).
                    if n < buf.len() && !hung_up {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.fd = None;
                    return;
                }
            }
        }
    }

    fn into_bytes(mut self) -> Vec<u8> {
        if self.dropped > 0 {
            let note = format!("\n[{} more bytes of output dropped]\n", self.dropped);
            self.kept.extend_from_slice(note.as_bytes());
        }
        self.kept
    }
}

/// A plugin started and not yet reaped.
struct Running {
    handle: duct::Handle,
    pid: i32,
    /// Until the plugin exits: then it is closed, which also takes it out
    /// of the epoll set.
    pidfd: Option<OwnedFd>,
    out: Stream,
    err: Stream,
    started: Instant,
    deadline: Instant,
    exited_at: Option<Instant>,
    timed_out: bool,
    held_open: bool,
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

thread_local! {
    /// Whether this thread unblocked SIGCHLD already.
    static SIGCHLD_THROUGH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Unblocks SIGCHLD in a thread that starts plugins (see `Runner::new`):
/// they must not start with it blocked, and their parent is the thread
/// that should receive (and drop) it.
fn let_sigchld_through() {
    SIGCHLD_THROUGH.with(|through| {
        if !through.get() {
            if let Err(e) = sys::block_sigchld(false) {
                log::warn!("cannot unblock SIGCHLD for plugins: {e}");
            }
            through.set(true);
        }
    });
}

/// Gives up on a plugin that was started but cannot be watched: its group
/// is killed, forgotten, and it is reaped (at once: it was just killed).
fn give_up(runner: &Runner, pid: i32, handle: &duct::Handle, e: io::Error) -> RunError {
    sys::kill_group(pid);
    // Forgotten before it is reaped: once reaped, its group id may be
    // reused, and a concurrent stop must not kill a stranger's group.
    runner.register(pid, false);
    let _ = handle.wait();
    RunError::Wait(e)
}

impl Runner {
    /// A runner for this process, which becomes the subreaper of every
    /// plugin's leftovers.
    ///
    /// Made on the main thread before any other thread starts, it blocks
    /// SIGCHLD there, so that every thread started afterwards has it
    /// blocked but the one that starts plugins (`let_sigchld_through`).
    /// SIGCHLD is ignored, and the kernel drops an ignored signal unless
    /// the thread it is sent to (the plugin's parent) blocks it; but glibc's
    /// spawn blocks every signal for a moment, and a plugin that ended just
    /// then had its SIGCHLD handed to some idle thread, waking it for
    /// nothing: about once per run. Now it waits for the plugins' thread,
    /// which drops it as soon as its spawn is over.
    pub fn new() -> Runner {
        if let Err(e) = sys::become_child_subreaper() {
            log::warn!("cannot become the reaper of plugins' leftovers: {e}");
        }
        if let Err(e) = sys::block_sigchld(true) {
            log::warn!("cannot block SIGCHLD (idle threads will wake as plugins end): {e}");
        }
        let null = match std::fs::File::open("/dev/null") {
            Ok(null) => Some(null),
            Err(e) => {
                log::warn!("cannot open /dev/null once for all plugins (each run opens it): {e}");
                None
            }
        };
        Runner {
            base_env: plugin_env(),
            null,
            ..Runner::default()
        }
    }

    /// Kills every running plugin group and refuses new runs.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter() {
            sys::kill_group(pgid);
        }
    }

    fn register(&self, pgid: i32, on: bool) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            groups.insert(pgid);
        } else {
            groups.remove(&pgid);
        }
    }

    /// Runs `argv` (no shell) with stdin closed and the plugin environment
    /// plus `env`, kills its process group when it exits or at `timeout`,
    /// and returns what it printed. Blocks; many runs at once go through a
    /// `Watch`.
    pub fn run(
        self: &Arc<Self>,
        argv: &[OsString],
        timeout: Duration,
        env: &[(OsString, OsString)],
    ) -> Result<Finished, RunError> {
        let mut watch = Watch::new(Arc::clone(self)).map_err(RunError::Wait)?;
        watch.start(argv, timeout, env, ());
        let mut done = Vec::with_capacity(1);
        loop {
            watch.turn(&mut done).map_err(RunError::Wait)?;
            if let Some(((), finished)) = done.pop() {
                return finished;
            }
        }
    }

    /// Starts `argv` in a process group of its own, with its output on
    /// two pipes whose read ends are ready to watch.
    fn start(
        &self,
        argv: &[OsString],
        timeout: Duration,
        env: &[(OsString, OsString)],
    ) -> Result<Running, RunError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| RunError::Spawn(io::Error::other("empty command")))?;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(RunError::Spawn(io::Error::other("picomon is stopping")));
        }
        // A plugin inherits this thread's signal mask (std keeps it).
        let_sigchld_through();
        let (out_r, out_w) = os_pipe::pipe().map_err(RunError::Spawn)?;
        let (err_r, err_w) = os_pipe::pipe().map_err(RunError::Spawn)?;
        let started = Instant::now();
        let handle = {
            // The expression owns the write ends: dropping it at the end of
            // this block leaves them open only in the child.
            let cmd = duct::cmd(program, args);
            let cmd = match self.null.as_ref().map(std::fs::File::try_clone) {
                Some(Ok(null)) => cmd.stdin_file(null),
                _ => cmd.stdin_null(),
            };
            let expr = cmd
                .stdout_file(out_w)
                .stderr_file(err_w)
                .full_env(self.base_env.iter().chain(env).cloned())
                .unchecked()
                .before_spawn(|cmd| {
                    cmd.process_group(0);
                    Ok(())
                });
            expr.start().map_err(RunError::Spawn)?
        };
        let pid = handle
            .pids()
            .first()
            .copied()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| RunError::Wait(io::Error::other("no process id")))?;
        self.register(pid, true);
        if self.stopping.load(Ordering::SeqCst) {
            sys::kill_group(pid);
        }
        let watchable = sys::pidfd_open(pid)
            .and_then(|pidfd| Ok((pidfd, Stream::new(out_r)?, Stream::new(err_r)?)));
        let (pidfd, out, err) = match watchable {
            Ok(parts) => parts,
            Err(e) => return Err(give_up(self, pid, &handle, e)),
        };
        Ok(Running {
            handle,
            pid,
            pidfd: Some(pidfd),
            out,
            err,
            started,
            deadline: started + timeout,
            exited_at: None,
            timed_out: false,
            held_open: false,
        })
    }

    /// At stop: kills and reaps whatever plugins left behind that no run
    /// is watching any more.
    pub fn sweep(&self) {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for pid in sys::children() {
            if !groups.contains(&pid) {
                sys::kill_child(pid);
                sys::reap_child(pid);
            }
        }
    }

    /// Kills and reaps the main thread's children after the runs of
    /// plugins `leaders` (already reaped): orphans of plugins, which the
    /// subreaper setting handed to us. Those outside the plugins' groups
    /// had escaped them (`setsid`); they are returned for the log (with
    /// several plugins ending at once, one may be blamed for another's).
    /// Members of those groups were already killed with them and are only
    /// reaped; living members of a plugin still running are its own.
    fn kill_leftovers(&self, leaders: &[i32]) -> Vec<String> {
        // One scan at a time: two loops (the old and the new one, for a
        // moment after a reload) must not both kill and reap one pid (the
        // second kill could hit a reused one).
        static SCAN: Mutex<()> = Mutex::new(());
        let _scan = SCAN.lock().unwrap_or_else(|e| e.into_inner());
        let main_thread = std::process::id();
        let Ok(list) = std::fs::read_to_string(format!("/proc/self/task/{main_thread}/children"))
        else {
            return Vec::new();
        };
        let mut escaped = Vec::new();
        for pid in list
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `PID (COMM) STATE PPID PGRP …`; COMM may hold anything but
            // ends at the last ')'.
            let (comm, rest) = match (stat.find('('), stat.rfind(')')) {
                (Some(open), Some(close)) if open < close => {
                    (&stat[open + 1..close], &stat[close + 1..])
                }
                _ => ("?", ""),
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("");
            let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
            if state != "Z" {
                let running = {
                    let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
                    pgrp.is_some_and(|g| groups.contains(&g))
                };
                if running {
                    continue;
                }
                if !pgrp.is_some_and(|g| leaders.contains(&g)) {
                    escaped.push(format!("{pid} ({comm})"));
                }
            }
            sys::kill_child(pid);
            // A process just killed may take a moment to become a zombie;
            // what is not reaped now is reaped after a later run.
            sys::reap_child(pid);
        }
        escaped
    }
}

/// Where an epoll key points: a run's slot, the start count that tells
/// this run from a later one in the same slot, and which descriptor.
const KEY_PIDFD: u64 = 0;
const KEY_STDOUT: u64 = 1;
const KEY_STDERR: u64 = 2;
const KEY_WAKE: u64 = u64::MAX;

fn key(serial: u32, slot: usize, which: u64) -> u64 {
    (u64::from(serial) << 32) | ((slot as u64) << 2) | which
}

/// Every plugin run in progress in one thread: started here, watched with
/// one epoll over their pidfds and pipes, and handed back, with a payload
/// of the caller's, when they end. Nothing in it blocks but the wait for
/// the next event, so the thread that turns it does nothing else.
pub struct Watch<T> {
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
}

impl<T> Watch<T> {
    pub fn new(runner: Arc<Runner>) -> io::Result<Watch<T>> {
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
        })
    }

    /// Something another thread can wake this watch's turn with.
    pub fn waker(&mut self) -> io::Result<Arc<sys::Waker>> {
        if let Some(waker) = &self.waker {
            return Ok(Arc::clone(waker));
        }
        let waker = Arc::new(sys::Waker::new()?);
        self.epoll.add(waker.as_raw_fd(), KEY_WAKE)?;
        self.waker = Some(Arc::clone(&waker));
        Ok(waker)
    }

    /// Runs started and not handed back yet.
    pub fn len(&self) -> usize {
        self.running + self.failed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts `argv` as `Runner::run` does; the run comes back from a
    /// later `turn`, with `payload`, also when it could not start.
    pub fn start(
        &mut self,
        argv: &[OsString],
        timeout: Duration,
        env: &[(OsString, OsString)],
        payload: T,
    ) {
        let run = match self.runner.start(argv, timeout, env) {
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
            Some(fd) => self.epoll.add(fd, key(serial, slot, which)),
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
    pub fn turn(&mut self, done: &mut Vec<(T, Result<Finished, RunError>)>) -> io::Result<bool> {
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
        for ready in &self.ready {
            if ready.key == KEY_WAKE {
                woken = true;
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
        done.extend(self.failed.drain(..).map(|(payload, e)| (payload, Err(e))));
        Ok(woken)
    }
}

impl<T> Drop for Watch<T> {
    /// A watch given up on leaves no plugin running.
    fn drop(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Orphans go to the process's main thread and every run's leftovers
    /// scan kills them: runs of concurrent tests would kill each other's.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_plugin_starts_with_no_signal_blocked_though_picomon_blocks_sigchld() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let run = runner.run(
            &argv(&["/bin/grep", "^SigBlk", "/proc/self/status"]),
            Duration::from_secs(10),
            &[],
        );
        let run = run.map_err(|e| format!("{e:?}"));
        let out = run.map(|f| String::from_utf8_lossy(&f.stdout).into_owned());
        assert_eq!(out.as_deref(), Ok("SigBlk:\t0000000000000000\n"));
    }

    #[test]
    fn a_process_outside_the_group_holding_the_output_is_given_up_on_and_killed() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let started = Instant::now();
        let run = runner.run(
            // The plugin waits until its child has left the group (its
            // session id is its own pid), or killing the group at its
            // exit could catch it before it escapes.
            &argv(&[
                "/bin/sh",
                "-c",
                "setsid sleep 30 & until [ \"$(cut -d' ' -f6 /proc/$!/stat)\" = $! ]; do :; done; echo held",
            ]),
            Duration::from_secs(20),
            &[],
        );
        let took = started.elapsed();
        let Ok(finished) = run else {
            panic!("run failed: {run:?}")
        };
        assert!(finished.output_held_open, "{finished:?}");
        assert_eq!(finished.stdout, b"held\n");
        assert_eq!(finished.exit_code, Some(0));
        assert!(took < Duration::from_secs(10), "waited {took:?}");
        assert!(
            finished.escaped.iter().any(|p| p.ends_with("(sleep)")),
            "{finished:?}"
        );
    }

    #[test]
    fn runs_in_one_watch_end_each_with_their_own_output_and_timeout() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let mut watch = Watch::new(runner).unwrap_or_else(|e| panic!("epoll: {e}"));
        for n in 0..20 {
            let script = format!("echo out {n}; echo err {n} >&2; exit {}", n % 4);
            watch.start(
                &argv(&["/bin/sh", "-c", &script]),
                Duration::from_secs(20),
                &[],
                n,
            );
        }
        watch.start(
            &argv(&["/bin/sh", "-c", "echo slow; exec sleep 30"]),
            Duration::from_millis(300),
            &[],
            99,
        );
        watch.start(
            &argv(&["/nonexistent/plugin"]),
            Duration::from_secs(1),
            &[],
            100,
        );
        let started = Instant::now();
        let mut done = Vec::new();
        while !watch.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(20), "stuck");
            watch
                .turn(&mut done)
                .unwrap_or_else(|e| panic!("epoll_wait: {e}"));
        }
        assert_eq!(done.len(), 22);
        for (n, run) in done {
            match (n, run) {
                (100, Err(RunError::Spawn(_))) => {}
                (99, Ok(f)) => {
                    assert!(f.timed_out && f.exit_code.is_none(), "{f:?}");
                    assert_eq!(f.stdout, b"slow\n");
                    assert!(f.duration < Duration::from_secs(10), "{f:?}");
                }
                (n, Ok(f)) if n < 20 => {
                    assert_eq!(f.stdout, format!("out {n}\n").as_bytes());
                    assert_eq!(f.stderr, format!("err {n}\n").as_bytes());
                    assert_eq!(f.exit_code, Some(n % 4));
                    assert!(!f.timed_out && !f.output_held_open, "{f:?}");
                }
                (n, run) => panic!("run {n}: {run:?}"),
            }
        }
    }
}
