//! Spawning: each plugin in a process group of its own (so that a
//! timeout, or picomon stopping, kills the whole tree with one `killpg`),
//! with stdin a copy of `/dev/null`, its output on two pipes, and SIGCHLD
//! let through in the spawning thread only.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::capture::Stream;
use super::running::Running;
use super::{RunError, Runner};
use crate::sys;

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
pub(super) fn give_up(runner: &Runner, pid: i32, handle: &duct::Handle, e: io::Error) -> RunError {
    sys::kill_group(pid);
    // Forgotten before it is reaped: once reaped, its group id may be
    // reused, and a concurrent stop must not kill a stranger's group.
    runner.register(pid, false);
    let _ = handle.wait();
    RunError::Wait(e)
}

impl Runner {
    /// Starts `argv` in a process group of its own, with its output on
    /// two pipes whose read ends are ready to watch.
    pub(super) fn start(
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
}
