//! Taking over from a picomon whose watchdog was killed (SIGKILL, OOM).
//! Such a picomon keeps monitoring, on purpose, and holds `state_dir`'s
//! lock, so a new watchdog's picomon would fail "state_dir is in use"
//! again and again. Before each start, the holder of the lock is asked to
//! stop — unless a watchdog runs it, so that two watchdogs given one
//! `state_dir` do not take turns killing each other's picomon. The holder
//! is signalled through a pidfd, so that a pid freed meanwhile cannot
//! pass the signal to another process.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the old picomon gets after SIGKILL to let go of the lock.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often the lock is tried while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Stops the picomon holding `state_dir`'s lock when no watchdog runs it,
/// waiting up to `grace` (then SIGKILL) for the lock to be free. Anything
/// else is left to the new picomon, whose start fails with the reason.
pub(crate) fn stop_orphan(state_dir: &Path, grace: Duration) {
    let path = state_dir.join("picomon.lock");
    let Ok(lock) = File::open(&path) else {
        return;
    };
    if is_free(&lock) {
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let Some(process) = Process::open(pid) else {
        return;
    };
    // Looked at after the pidfd pinned the process: the pid is not
    // reused between this look and the signal.
    let name = program(pid);
    if !name.contains("picomon") || name.contains("watchdog") {
        return;
    }
    if let Some(ppid) = parent(pid).filter(|&ppid| program(ppid).contains("picomon-watchdog")) {
        log::warn!(
            "state_dir {} is held by picomon (pid {pid}) of another watchdog (pid {ppid}): not taking over",
            state_dir.display()
        );
        return;
    }
    log::warn!(
        "state_dir {} is held by picomon (pid {pid}), left running by a previous watchdog: stopping it to take over",
        state_dir.display()
    );
    process.signal(libc::SIGTERM);
    if wait_free(&lock, grace) {
        log::info!("picomon (pid {pid}) let go of state_dir: taking over");
        return;
    }
    log::warn!(
        "picomon (pid {pid}) still holds state_dir after {} s: SIGKILL",
        grace.as_secs()
    );
    process.signal(libc::SIGKILL);
    if !wait_free(&lock, KILL_WAIT) {
        log::error!("picomon (pid {pid}) still holds state_dir after SIGKILL; starting anyway");
    }
}

/// Whether nobody holds the lock; takes it for an instant to know.
fn is_free(lock: &File) -> bool {
    // SAFETY: flock on a descriptor this function borrows.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    // SAFETY: as above; gives the lock back at once for picomon to take.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
    true
}

fn wait_free(lock: &File, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if is_free(lock) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The file name of the program `pid` runs, from its first argument
/// ("" when gone). Not /proc/PID/comm, which cuts "picomon-watchdog" to
/// 15 bytes.
fn program(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    argv0.rsplit('/').next().unwrap_or_default().to_string()
}

/// The parent of `pid`, from /proc/PID/stat ("pid (comm) state ppid …";
/// the command name may hold spaces and parentheses, hence the last ')').
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// A process pinned by a pidfd; by pid alone where the kernel has no
/// pidfds (before Linux 5.3).
struct Process {
    pid: u32,
    fd: Option<OwnedFd>,
}

impl Process {
    fn open(pid: u32) -> Option<Process> {
        let id = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new
        // descriptor or -1; no memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, id, 0) };
        if fd >= 0 {
            let fd = i32::try_from(fd).ok()?;
            // SAFETY: the kernel just gave us this descriptor; we own it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            return Some(Process { pid, fd: Some(fd) });
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS) => Some(Process { pid, fd: None }),
            _ => None,
        }
    }

    fn signal(&self, sig: i32) {
        match &self.fd {
            // SAFETY: pidfd_send_signal on a descriptor we own, with no
            // siginfo (null) and no flags.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            },
            None => {
                if let Ok(pid) = libc::pid_t::try_from(self.pid) {
                    // SAFETY: kill has no memory effects.
                    unsafe { libc::kill(pid, sig) };
                }
            }
        }
    }
}
