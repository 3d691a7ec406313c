//! Spawning: each plugin in a process group of its own (so that a
//! timeout, or picomon stopping, kills the whole tree with one `killpg`),
//! with stdin `/dev/null`, its output on two pipes, and SIGCHLD let
//! through in the spawning thread only; the clone itself is `sys::spawn`.

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::capture::Stream;
use super::running::Running;
use super::{RunError, Runner};
use crate::sys;

/// The stack a child runs on until its exec (see `sys::spawn`): a few
/// system calls, well within this.
const CHILD_STACK: usize = 64 * 1024;

thread_local! {
    /// Whether this thread keeps every signal but SIGCHLD blocked for good
    /// (`hold_signals_here`), so a spawn needs not set and restore it.
    static SIGNALS_HELD: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread unblocked SIGCHLD already.
    static SIGCHLD_THROUGH: Cell<bool> = const { Cell::new(false) };
    /// This thread's stack for the children it starts, made once: room
    /// only, never written by us (zeroing it would make all of it
    /// resident, where a child touches a page or two).
    static CHILD_STACK_HERE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(CHILD_STACK));
}

/// For a thread that does nothing but start plugins (a spawner): blocks
/// every signal but SIGCHLD for good, as a spawn needs (signals go to the
/// other threads), instead of around every spawn, two system calls a run.
/// SIGCHLD stays open here: plugins are this thread's children, and the
/// kernel drops their ignored SIGCHLD at once only where it is not
/// blocked (see `Runner::new`).
pub(super) fn hold_signals_here() {
    match sys::hold_signals() {
        Ok(_) => SIGNALS_HELD.with(|held| held.set(true)),
        Err(e) => log::warn!("cannot block signals in a spawner thread (each spawn will): {e}"),
    }
}

/// Starts `exec` from this thread, its signals held for the moment if
/// they are not held for good.
fn spawn_here(exec: &sys::Exec, fds: [i32; 3]) -> io::Result<sys::Child> {
    let spawn = || {
        CHILD_STACK_HERE
            .with(|stack| sys::spawn(exec, fds, stack.borrow_mut().spare_capacity_mut()))
    };
    if SIGNALS_HELD.with(Cell::get) {
        return spawn();
    }
    let old = sys::hold_signals()?;
    let child = spawn();
    sys::release_signals(&old);
    let_sigchld_through();
    child
}

/// Unblocks SIGCHLD for good in a thread that starts plugins now and then
/// (see `Runner::new`): their parent is the thread that should receive
/// (and drop) it.
fn let_sigchld_through() {
    if !SIGCHLD_THROUGH.with(|through| through.replace(true)) {
        if let Err(e) = sys::block_sigchld(false) {
            log::warn!("cannot unblock SIGCHLD for plugins: {e}");
        }
    }
}

/// Gives up on a plugin that was started but cannot be watched: its group
/// is killed, forgotten, and it is reaped (at once: it was just killed).
pub(super) fn give_up(runner: &Runner, pid: i32, e: io::Error) -> RunError {
    sys::kill_group(pid);
    // Forgotten before it is reaped: once reaped, its group id may be
    // reused, and a concurrent stop must not kill a stranger's group.
    runner.register(pid, false);
    let _ = sys::wait_child(pid);
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
        let exec = sys::Exec::new(program, args, self.base_env.iter().chain(env))
            .map_err(RunError::Spawn)?;
        let (out_r, out_w) = os_pipe::pipe().map_err(RunError::Spawn)?;
        let (err_r, err_w) = os_pipe::pipe().map_err(RunError::Spawn)?;
        // Opened for this run only when /dev/null could not be kept open.
        let own_null;
        let null = match &self.null {
            Some(null) => null,
            None => {
                own_null = std::fs::File::open("/dev/null").map_err(RunError::Spawn)?;
                &own_null
            }
        };
        let started = Instant::now();
        let child = spawn_here(
            &exec,
            [null.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        )
        .map_err(RunError::Spawn)?;
        // The write ends stay open only in the child.
        drop((out_w, err_w));
        let pid = child.pid;
        self.register(pid, true);
        if self.stopping.load(Ordering::SeqCst) {
            sys::kill_group(pid);
        }
        let streams = Stream::new(out_r).and_then(|out| Ok((out, Stream::new(err_r)?)));
        let (out, err) = match streams {
            Ok(streams) => streams,
            Err(e) => return Err(give_up(self, pid, e)),
        };
        Ok(Running {
            pid,
            pidfd: Some(child.pidfd),
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
