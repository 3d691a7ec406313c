//! Runs one plugin: spawned through duct in a process group of its own, so
//! that a timeout (or picomon stopping) kills the whole tree with one
//! `killpg`, and watched with a pidfd and `poll` in the calling thread, so a
//! run costs no helper threads. Output is read as it comes and capped.
//!
//! Plugins get a clean environment (no `PICOMON_*` configuration or
//! secret reaches them), and picomon is the subreaper of what they leave
//! behind: a process that escaped the group with `setsid` becomes a child
//! of picomon's main thread (the kernel hands orphans to the first thread
//! of the reaper), where plugins themselves never are, since workers
//! start them; the worker that ran the plugin kills and reaps it.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
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
}

/// What of picomon's own environment a plugin sees: where programs are,
/// and the language and time zone of their messages. Nothing else, above
/// all no `PICOMON_*` variable (configuration and secrets).
fn plugin_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            name == "PATH" || name == "LANG" || name == "TZ" || name.starts_with("LC_")
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

impl Runner {
    /// A runner for this process, which becomes the subreaper of every
    /// plugin's leftovers.
    pub fn new() -> Runner {
        if let Err(e) = sys::become_child_subreaper() {
            log::warn!("cannot become the reaper of plugins' leftovers: {e}");
        }
        Runner {
            base_env: plugin_env(),
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
    /// and returns what it printed.
    pub fn run(
        &self,
        argv: &[OsString],
        timeout: Duration,
        env: &[(OsString, OsString)],
    ) -> Result<Finished, RunError> {
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
        let watched = self.watch(pid, started, timeout, out_r, err_r);
        if watched.is_err() {
            // watch() kills the group itself, except when it could not watch.
            sys::kill_group(pid);
        }
        // Forgotten before it is reaped: once reaped, its group id may be
        // reused, and a concurrent stop must not kill a stranger's group.
        self.register(pid, false);
        let reaped = handle.wait().map(|o| o.status);
        let escaped = kill_leftovers(pid);
        let (timed_out, out, err, duration, output_held_open) = watched.map_err(RunError::Wait)?;
        let status = reaped.map_err(RunError::Wait)?;
        Ok(Finished {
            escaped,
            output_held_open,
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
    ) -> io::Result<(bool, Stream, Stream, Duration, bool)> {
        let pidfd = sys::pidfd_open(pid)?;
        let mut out = Stream::new(out_r)?;
        let mut err = Stream::new(err_r)?;
        let deadline = started + timeout;
        let mut exited_at: Option<Instant> = None;
        let mut timed_out = false;
        let mut held_open = false;
        loop {
            let now = Instant::now();
            let wait = match exited_at {
                None if now >= deadline && !timed_out => {
                    timed_out = true;
                    sys::kill_group(pid);
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
                            held_open = true;
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
            let revents = sys::poll(&fds, wait)?;
            if exited_at.is_none() && revents.first().is_some_and(|r| *r != 0) {
                exited_at = Some(Instant::now());
                // Whatever the plugin left behind goes with it.
                sys::kill_group(pid);
            }
            out.drain();
            err.drain();
        }
        let duration = exited_at.unwrap_or_else(Instant::now) - started;
        Ok((timed_out, out, err, duration, held_open))
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
}

/// Kills and reaps the main thread's children after the run of plugin
/// `leader` (already reaped): orphans of plugins, which the subreaper
/// setting handed to us. Those outside the plugin's group had escaped it
/// (`setsid`); they are returned for the log (with several plugins ending
/// at once, one may be blamed for another's). Members of the group were
/// already killed with it and are only reaped.
fn kill_leftovers(leader: i32) -> Vec<String> {
    // One scan at a time: two workers must not both kill and reap one pid
    // (the second kill could hit a reused one).
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
        // `PID (COMM) STATE PPID PGRP …`; COMM may hold anything but ends
        // at the last ')'.
        let (comm, rest) = match (stat.find('('), stat.rfind(')')) {
            (Some(open), Some(close)) if open < close => {
                (&stat[open + 1..close], &stat[close + 1..])
            }
            _ => ("?", ""),
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let pgrp = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        if state != "Z" && pgrp != Some(leader) {
            escaped.push(format!("{pid} ({comm})"));
        }
        sys::kill_child(pid);
        // A process just killed may take a moment to become a zombie; what
        // is not reaped now is reaped after this thread's next run.
        sys::reap_child(pid);
    }
    escaped
}
