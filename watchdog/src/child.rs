//! One run of picomon as a child process: started with a heartbeat pipe on
//! fd 3 and its standard error piped (passed on as it is, and its last
//! lines kept readable for the mail), and turned into events on the
//! supervisor's channel by three threads (heartbeat, standard error, exit),
//! so that the supervisor waits on one channel and shares no state with
//! them: the last lines of standard error travel in the event. The exit
//! thread only *sees* the exit (`waitid` with `WNOWAIT`); the supervisor
//! reaps, in its own loop, so that a signal it sends always reaches its
//! own child (at worst a zombie), never a process that took a reaped pid.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::SystemTime;

use crossbeam_channel::Sender;

use picomon::signals::Signal;
use picomon::sys;

/// The descriptor picomon finds its heartbeat pipe on.
pub(crate) const HEARTBEAT_FD: i32 = 3;
/// Lines of picomon's standard error kept for the mail.
const STDERR_LINES: usize = 20;

/// Everything the supervisor waits for. Child events carry the generation
/// of the run they come from, so that a late event of a previous run is
/// told apart.
#[derive(Debug)]
pub(crate) enum Event {
    /// The child finished a tick.
    Beat(u64),
    /// The child's standard error closed; its last lines.
    StderrClosed(u64, Vec<String>),
    /// The child exited; it is not reaped yet (`Child::reap`).
    Exited(u64),
    /// A signal to the watchdog.
    Signal(Signal),
}

/// A child not yet reaped: its pid is its own for as long as this lives.
#[derive(Debug)]
pub(crate) struct Child {
    process: std::process::Child,
}

impl Child {
    /// Starts `cmd` with the write end of a heartbeat pipe on
    /// `HEARTBEAT_FD` and its standard error piped, and the threads that
    /// report on it as `generation`.
    pub(crate) fn spawn(
        mut cmd: Command,
        generation: u64,
        tx: &Sender<Event>,
    ) -> std::io::Result<Child> {
        let (beat_r, beat_w) = os_pipe::pipe()?;
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        let w = beat_w.as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork
        // and exec.
        unsafe {
            cmd.pre_exec(move || {
                if w == HEARTBEAT_FD {
                    if libc::fcntl(w, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(w, HEARTBEAT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut process = cmd.spawn()?;
        // Only the child may hold the write end: its death closes the pipe.
        drop(beat_w);
        drop(cmd);
        let pid = process.id();

        let stderr = process.stderr.take();
        let events = tx.clone();
        std::thread::spawn(move || {
            let mut tail = VecDeque::with_capacity(STDERR_LINES);
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                    let line = String::from_utf8_lossy(&line);
                    // As it is: a journal line's priority is journald's
                    // to read (SyslogLevelPrefix).
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(picomon::readable_line(&line, SystemTime::now()));
                }
            }
            let _ = events.send(Event::StderrClosed(generation, tail.into()));
        });
        let events = tx.clone();
        std::thread::spawn(move || {
            let mut beat_r = beat_r;
            let mut buf = [0u8; 64];
            while let Ok(n) = beat_r.read(&mut buf) {
                if n == 0 || events.send(Event::Beat(generation)).is_err() {
                    break;
                }
            }
        });
        let events = tx.clone();
        std::thread::spawn(move || {
            if let Ok(pid) = i32::try_from(pid) {
                // On error (none is expected for our own child), the exit
                // is reported at once and reaping tells the rest.
                let _ = sys::wait_exit_unreaped(pid);
            }
            let _ = events.send(Event::Exited(generation));
        });
        Ok(Child { process })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends `sig` to the child, which is not reaped (only `reap`, which
    /// takes the child, reaps it), so its pid cannot belong to another
    /// process.
    pub(crate) fn signal(&self, sig: i32) {
        if let Ok(pid) = i32::try_from(self.process.id()) {
            sys::signal_child(pid, sig);
        }
    }

    /// Collects the exit status, once `Event::Exited` came.
    pub(crate) fn reap(mut self) -> std::io::Result<ExitStatus> {
        self.process.wait()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn an_exited_picomon_stays_unreaped_until_the_supervisor_reaps_it() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo beat >&3; echo 'last words' >&2; exit 3"]);
        let child = Child::spawn(cmd, 7, &tx).expect("spawn sh");
        let pid = child.pid();
        let (mut beat, mut tail, mut exited) = (false, None, false);
        let deadline = Instant::now() + Duration::from_secs(20);
        // The heartbeat on fd 3, the tail and the exit, in any order.
        while !(beat && exited && tail.is_some()) {
            match rx
                .recv_deadline(deadline)
                .expect("events before the deadline")
            {
                Event::Beat(7) => beat = true,
                Event::StderrClosed(7, lines) => tail = Some(lines),
                Event::Exited(7) => exited = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(tail.expect("tail"), ["last words"]);
        // The exit was reported, yet the pid is still this child's: a
        // zombie that nothing else can have taken.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        assert_eq!(state, Some('Z'), "{stat}");
        child.signal(libc::SIGTERM);
        assert_eq!(child.reap().expect("reap").code(), Some(3));
    }
}
