//! The few system calls std lacks, each wrapped once so that the rest of
//! picomon holds no `unsafe`: descriptors (flags, locks, polling, epoll,
//! eventfd), starting plugins (`spawn`), process groups and pidfds, the
//! child subreaper, the allocator, host names.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

mod spawn;

pub use spawn::{hold_signals, release_signals, spawn, wait_child, Child, Exec, CAUGHT_SIGNALS};

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    match rc {
        -1 => Err(io::Error::last_os_error()),
        rc => Ok(rc),
    }
}

/// Makes the read end of a fresh pipe non-blocking. Its only status flag
/// is O_RDONLY, so there is nothing to read back first (a syscall saved
/// on every plugin run).
pub fn set_pipe_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns, with integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_RDONLY | libc::O_NONBLOCK) }).map(drop)
}

/// Takes over an inherited descriptor (the watchdog's heartbeat pipe):
/// non-blocking, closed on exec so plugins never hold it.
pub fn claim_inherited_fd(fd: RawFd) -> io::Result<File> {
    if fd < 3 {
        return Err(io::Error::other("0, 1 and 2 are standard streams"));
    }
    // SAFETY: F_GETFL only reads the flags; it fails with EBADF when `fd`
    // is not open, which is what is being asked.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above, setting flags of the same descriptor.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open, and the command line hands it to us;
    // it is claimed before anything else in picomon opens a descriptor.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Takes an exclusive lock on `file` without waiting; false when another
/// process holds it.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor `file` owns.
    match check(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes an exclusive lock on `file`, waiting for it.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor `file` owns.
        match check(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A pidfd for our own, unreaped child `pid`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the kernel just gave us this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// SIGKILLs process group `pgid`. Callers only pass the group of a child
/// they have not reaped yet, so the id cannot have been reused.
pub fn kill_group(pgid: i32) {
    // SAFETY: killpg with a positive group id and a valid signal.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

/// SIGKILLs `pid`, a child of ours that we have not reaped yet.
pub fn kill_child(pid: i32) {
    // SAFETY: kill with a positive pid (our unreaped child) and a valid signal.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Reaps our child `pid` if it has exited; true when it was reaped.
pub fn reap_child(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid for one specific child, with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

/// An epoll instance: the plugin loop waits on every running plugin's
/// pidfd and pipes with one call, whatever their number. Level-triggered,
/// so a descriptor read only in part is reported again.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// What one epoll wait reported: the key a descriptor was added with, and
/// its ready flags.
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    pub key: u64,
    pub flags: u32,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes flags and returns a new descriptor.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: the kernel just gave us this descriptor and nothing
            // else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for input (and hang-up) under `key`. Closing `fd` (the
    /// last descriptor of its file) removes it: no call needed for that.
    pub fn add(&self, fd: RawFd, key: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: key,
        };
        // SAFETY: epoll_ctl on our epoll descriptor with a valid event struct.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) })
            .map(drop)
    }

    /// Waits until a watched descriptor is ready or `timeout` passes (for
    /// ever with None), and puts in `ready` what is (at most 64; the rest
    /// is reported by the next wait). A signal's interruption is an empty
    /// answer.
    pub fn wait(&self, ready: &mut Vec<Ready>, timeout: Option<Duration>) -> io::Result<()> {
        ready.clear();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // Round up so that a deadline a few microseconds away is not a busy loop.
        let ms = timeout.map_or(-1, |t| {
            t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `events` is a valid array of as many entries as we pass.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        ready.extend(events[..n as usize].iter().map(|e| Ready {
            key: e.u64,
            flags: e.events,
        }));
        Ok(())
    }
}

/// Wakes a thread waiting in `Epoll::wait` from another thread: an
/// eventfd, written only when no wake-up is pending yet, so that a burst
/// of submissions costs one system call, not one each.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
    pending: std::sync::atomic::AtomicBool,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes an initial value and flags and returns a new descriptor.
        let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        Ok(Waker {
            // SAFETY: the kernel just gave us this descriptor and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            pending: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the descriptor readable, unless it already is.
    pub fn wake(&self) {
        use std::sync::atomic::Ordering;
        if !self.pending.swap(true, Ordering::AcqRel) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our eventfd. It
            // cannot fail short of a counter at u64::MAX - 1.
            unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Called by the woken thread before it looks at what it was woken
    /// for: anything sent before a later `wake` is then seen, or wakes it
    /// again.
    pub fn clear(&self) {
        use std::sync::atomic::Ordering;
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from our non-blocking
        // eventfd; nothing to read is EAGAIN, which is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
        // An exchange, not a store: it reads what `wake` wrote, so what was
        // sent before that `wake` is visible to this thread afterwards.
        self.pending.swap(false, Ordering::AcqRel);
    }
}

/// Makes picomon the reaper of every orphan its plugins leave, even those
/// that escaped with `setsid`: they become our children, so they can be
/// found and killed instead of piling up.
pub fn become_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// Blocks (or unblocks) SIGCHLD in the calling thread; a thread started
/// afterwards inherits the setting, and so does a process it spawns.
pub fn block_sigchld(block: bool) -> io::Result<()> {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    // SAFETY: sigemptyset and sigaddset write to a valid sigset_t;
    // pthread_sigmask reads it and takes a null pointer for the old mask.
    let rc = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    match rc {
        0 => Ok(()),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

/// Our children, living or not yet reaped, as the kernel lists them for
/// each of our threads.
pub fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// True when standard error is the journal stream that `JOURNAL_STREAM`
/// (`DEVICE:INODE`) names: the variable is inherited by everything systemd
/// starts, also when our stderr was redirected (the watchdog's pipe).
pub fn stderr_is(journal_stream: &str) -> bool {
    let Some((dev, ino)) = journal_stream.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat of standard error into a valid stat struct.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == dev && st.st_ino as u64 == ino
}

/// glibc gives each thread its own malloc arena, and each keeps freed
/// memory around: for a small daemon with a few threads (the loop, the
/// plugins' loop, mail, signals) two arenas are plenty; and what parsing
/// the configuration freed goes back to the system. Called once the
/// configuration is loaded, before those threads start.
pub fn settle_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt and malloc_trim only tune the allocator; called
    // before the other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::malloc_trim(0);
    }
}

/// Gives back to the system what the allocator keeps free, after a reload
/// dropped the previous configuration (the loading thread's arena too).
pub(crate) fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; glibc locks each arena.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This machine's host name, as `gethostname` gives it.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The canonical name the resolver gives `host` (`AI_CANONNAME`).
pub fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value; only the
    // flags are set.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C string and pointers; `res` is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, so `res` points to a valid list whose
    // `ai_canonname` is null or a C string; the list is freed once, here.
    let name = unsafe {
        let canon = (*res).ai_canonname;
        let name = (!canon.is_null()).then(|| CStr::from_ptr(canon).to_string_lossy().into_owned());
        libc::freeaddrinfo(res);
        name
    };
    name.filter(|n| !n.is_empty())
}

/// The type (magic number) of the filesystem `path` is on, to tell the
/// kernel's pseudo filesystems (proc, sysfs) from real ones.
#[cfg(target_os = "linux")]
// f_type is i64 here but another type on other targets.
#[allow(clippy::unnecessary_cast)]
pub fn filesystem_magic(path: &std::path::Path) -> io::Result<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path; statfs fills `st`, which is
    // read only when it succeeded.
    check(unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: statfs returned 0, so it initialised `st`.
    Ok(unsafe { st.assume_init() }.f_type as i64)
}

/// Whether this process may create files in the directory `path`.
pub fn may_write_in(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; access
    // only reads it.
    check(unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) }).map(drop)
}

/// Sets the mode of `path`, refusing a symbolic link there (EOPNOTSUPP)
/// instead of changing what it points to.
pub(crate) fn chmod_no_follow(path: &std::path::Path, mode: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call;
    // fchmodat only reads it.
    check(unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            c.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Sends `sig` to the process `pidfd` refers to: never to another process
/// that took its pid after it was reaped.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal on a descriptor we own, with no siginfo
    // (null) and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sig` to `pid`, a child of ours that we have not reaped yet.
pub fn signal_child(pid: i32, sig: i32) {
    // SAFETY: kill with a positive pid (our unreaped child) and a signal.
    unsafe { libc::kill(pid, sig) };
}

/// Blocks until our child `pid` has exited, leaving it unreaped (a zombie
/// whose pid stays ours) for its owner to reap.
pub fn wait_exit_unreaped(pid: i32) -> io::Result<()> {
    let id = libc::id_t::try_from(pid).map_err(io::Error::other)?;
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid siginfo_t for waitid to fill.
        let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        match check(rc) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Epoll {
    /// Like `add`, but edge-triggered: `fd` is reported when it becomes
    /// ready, not for as long as it stays so. For plugins' descriptors: a
    /// spawn in another thread holds a copy of every descriptor until its
    /// exec, which keeps one closed here in the epoll set; level-triggered,
    /// a pidfd or a pipe at its end would then be reported again and again
    /// (a busy loop while spawns follow each other). Whoever reads must
    /// read until the descriptor has nothing more.
    pub fn add_edge_triggered(&self, fd: RawFd, key: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: key,
        };
        // SAFETY: epoll_ctl on our epoll descriptor with a valid event struct.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) })
            .map(drop)
    }
}
