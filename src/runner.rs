//! Runs one plugin: spawned through duct in a process group of its own, so
//! that a timeout (or picomon stopping) kills the whole tree with one
//! `killpg`, and watched with a pidfd and `poll` in the calling thread, so a
//! run costs no helper threads. Output is read as it comes and capped.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}

/// Runs plugins and remembers their process groups, so that stopping
/// picomon can kill every plugin still running.
#[derive(Debug, Default)]
pub struct Runner {
    groups: Mutex<HashSet<i32>>,
    stopping: AtomicBool,
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
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Stream {
            fd: Some(fd),
            kept: Vec::new(),
            dropped: 0,
        })
    }

    /// Reads what is available now; closes the stream at end of file.
    fn drain(&mut self) {
        let Some(fd) = self.fd.as_mut() else { return };
        // Small: every worker thread's stack keeps whatever it touched.
        let mut buf = [0u8; 4096];
        loop {
            match fd.read(&mut buf) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.kept.len()).min(n);
                    self.kept.extend_from_slice(&buf[..room]);
                    self.dropped += n - room;
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

/// Makes the read end of a fresh pipe non-blocking. Its only status flag
/// is O_RDONLY, so there is nothing to read back first.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with plain integer arguments.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_RDONLY | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the kernel just gave us this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn kill_group(pgid: i32) {
    // SAFETY: killpg with a positive process group id and a valid signal.
    // The group leader is our unreaped child, so the id cannot be reused.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

/// Waits until one of `fds` is readable or `timeout` passes; returns the
/// `revents` of each.
fn poll(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<i16>> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so that a deadline a few microseconds away is not a busy loop.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs.
    let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(polls.iter().map(|p| p.revents).collect())
}

impl Runner {
    pub fn new() -> Runner {
        Runner::default()
    }

    /// Kills every running plugin group and refuses new runs.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter() {
            kill_group(pgid);
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

    /// Runs `argv` (no shell) with stdin closed, kills its process group
    /// when it exits or at `timeout`, and returns what it printed.
    pub fn run(&self, argv: &[OsString], timeout: Duration) -> Result<Finished, RunError> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| RunError::Spawn(io::Error::other("empty command")))?;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(RunError::Spawn(io::Error::other("picomon is stopping")));
        }
        let (out_r, out_w) = os_pipe::pipe().map_err(RunError::Spawn)?;
        let (err_r, err_w) = os_pipe::pipe().map_err(RunError::Spawn)?;
        let started = Instant::now();
        let handle = {
            // The expression owns the write ends: dropping it at the end of
            // this block leaves them open only in the child.
            let expr = duct::cmd(program, args)
                .stdin_null()
                .stdout_file(out_w)
                .stderr_file(err_w)
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
            kill_group(pid);
        }
        let watched = self.watch(pid, started, timeout, out_r, err_r);
        if watched.is_err() {
            // watch() kills the group itself, except when it could not watch.
            kill_group(pid);
        }
        let reaped = handle.wait().map(|o| o.status);
        self.register(pid, false);
        let (timed_out, out, err, duration) = watched.map_err(RunError::Wait)?;
        let status = reaped.map_err(RunError::Wait)?;
        Ok(Finished {
            exit_code: if timed_out { None } else { status.code() },
            signal: status.signal(),
            timed_out,
            stdout: out.into_bytes(),
            stderr: err.into_bytes(),
            duration,
        })
    }

    /// Reads output until the plugin has exited and its pipes are closed,
    /// killing the group at the deadline. The child is never reaped here.
    fn watch(
        &self,
        pid: i32,
        started: Instant,
        timeout: Duration,
        out_r: os_pipe::PipeReader,
        err_r: os_pipe::PipeReader,
    ) -> io::Result<(bool, Stream, Stream, Duration)> {
        let pidfd = pidfd_open(pid)?;
        let mut out = Stream::new(out_r)?;
        let mut err = Stream::new(err_r)?;
        let deadline = started + timeout;
        let mut exited_at: Option<Instant> = None;
        let mut timed_out = false;
        loop {
            let now = Instant::now();
            let wait = match exited_at {
                None if now >= deadline && !timed_out => {
                    timed_out = true;
                    kill_group(pid);
                    continue;
                }
                None if timed_out => Duration::from_millis(100),
                None => deadline - now,
                Some(at) => {
                    if out.fd.is_none() && err.fd.is_none() {
                        break;
                    }
                    match (at + DRAIN_GRACE).checked_duration_since(now) {
                        Some(left) if !left.is_zero() => left,
                        _ => {
                            log::warn!(
                                "plugin {pid} exited but a process outside its group keeps its output open; not waiting for it"
                            );
                            break;
                        }
                    }
                }
            };
            let mut fds = Vec::with_capacity(3);
            if exited_at.is_none() {
                fds.push(pidfd.as_raw_fd());
            }
            fds.extend(out.fd.as_ref().map(|f| f.as_raw_fd()));
            fds.extend(err.fd.as_ref().map(|f| f.as_raw_fd()));
            let revents = poll(&fds, wait)?;
            if exited_at.is_none() && revents.first().is_some_and(|r| *r != 0) {
                exited_at = Some(Instant::now());
                // Whatever the plugin left behind goes with it.
                kill_group(pid);
            }
            out.drain();
            err.drain();
        }
        let duration = exited_at.unwrap_or_else(Instant::now) - started;
        Ok((timed_out, out, err, duration))
    }
}
