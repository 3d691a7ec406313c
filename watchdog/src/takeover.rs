//! Taking over from a picomon whose watchdog was killed (SIGKILL, OOM).
//! Such a picomon keeps monitoring, on purpose, and holds `state_dir`'s
//! lock, so a new watchdog's picomon would fail "state_dir is in use"
//! again and again. Before each start, the holder of the lock is asked to
//! stop — unless a watchdog runs it, so that two watchdogs given one
//! `state_dir` do not take turns killing each other's picomon. The holder
//! is signalled through a pidfd, so that a pid freed meanwhile cannot
//! pass the signal to another process (no pidfd before Linux 5.3: no
//! takeover there).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use picomon::{files, sys};

/// How long the old picomon gets after SIGKILL to let go of the lock.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often the lock is tried while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Stops the picomon holding `state_dir`'s lock when no watchdog runs it,
/// waiting up to `grace` (then SIGKILL) for the lock to be free. Anything
/// else is left to the new picomon, whose start fails with the reason.
pub(crate) fn stop_orphan(state_dir: &Path, grace: Duration) {
    let path = state_dir.join("picomon.lock");
    if is_free(&path) {
        return;
    }
    let mut text = String::new();
    if let Some(file) = open_lock(&path) {
        // A pid is a few bytes; the file is not ours to read whole.
        let _ = file.take(64).read_to_string(&mut text);
    }
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let Ok(pidfd) = sys::pidfd_open(pid) else {
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
    signal(&pidfd, libc::SIGTERM);
    if wait_free(&path, grace) {
        log::info!("picomon (pid {pid}) let go of state_dir: taking over");
        return;
    }
    log::warn!(
        "picomon (pid {pid}) still holds state_dir after {} s: SIGKILL",
        grace.as_secs()
    );
    signal(&pidfd, libc::SIGKILL);
    if !wait_free(&path, KILL_WAIT) {
        log::error!("picomon (pid {pid}) still holds state_dir after SIGKILL; starting anyway");
    }
}

fn signal(pidfd: &OwnedFd, sig: i32) {
    if let Err(e) = sys::pidfd_send_signal(pidfd, sig) {
        // ESRCH: it is already gone, which is what is wanted.
        if e.raw_os_error() != Some(libc::ESRCH) {
            log::warn!("cannot signal the old picomon: {e}");
        }
    }
}

/// Whether nobody holds the lock at `path` (a missing file is free). It is
/// taken for an instant to know, and let go when the file is closed.
fn is_free(path: &Path) -> bool {
    match open_lock(path) {
        Some(file) => sys::try_lock_exclusive(&file).unwrap_or(true),
        None => true,
    }
}

/// The lock file, opened as picomon opens it: never through a link nor
/// anything but a regular file (a FIFO would block the watchdog). None
/// when there is none to open; what is wrong with it is left to picomon,
/// whose start then fails naming it.
fn open_lock(path: &Path) -> Option<std::fs::File> {
    files::open_regular(path, files::Access::Read, files::Links::Refuse).ok()
}

fn wait_free(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if is_free(path) {
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
fn program(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    argv0.rsplit('/').next().unwrap_or_default().to_string()
}

/// The parent of `pid`, from /proc/PID/stat ("pid (comm) state ppid …";
/// the command name may hold spaces and parentheses, hence the last ')').
fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}
