//! Starting a plugin with as little work as Linux allows. std's `Command`
//! (through duct) cost a spawner thread about 47 µs a run on the 2-core
//! bench machine, against 29 µs for a whole run of the C capture floor: it
//! copied the parent's three standard descriptors and checked the file
//! limit six times a run, and glibc's `posix_spawn` under it maps a fresh
//! stack for each child and unmaps it after, which in a process with
//! several threads running costs an interrupt to every other core.
//!
//! Here the child is cloned like glibc does it (`CLONE_VM | CLONE_VFORK`:
//! no copy of the address space, and the parent resumes once the child has
//! exec'd), but on a stack the spawning thread keeps, with `CLONE_PIDFD`
//! (the pidfd comes with the child, not from one more call), and with
//! everything the child needs (where to look for the program, argv, the
//! environment) built before, because the child shares our memory until
//! its exec: it must not allocate or take a lock, and only makes system
//! calls.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals picomon catches (`signals.rs`): a child must not run their
/// handlers on our memory in the moment between unblocking signals and
/// its exec, so it puts them back to the default first.
pub const CAUGHT_SIGNALS: [libc::c_int; 4] =
    [libc::SIGUSR1, libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

/// What a child puts back to the default before its exec: the signals
/// picomon catches, SIGSEGV and SIGBUS (std's stack-overflow handlers),
/// and SIGPIPE, which std ignores in picomon and every plugin expects to
/// kill it.
const RESET_SIGNALS: [libc::c_int; 7] = [
    CAUGHT_SIGNALS[0],
    CAUGHT_SIGNALS[1],
    CAUGHT_SIGNALS[2],
    CAUGHT_SIGNALS[3],
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGPIPE,
];

/// Where to look for the program when neither the plugin's environment
/// nor picomon's has a PATH (what glibc's `execvp` uses then).
const DEFAULT_PATH: &str = "/usr/bin:/bin";

/// What to exec, built before the clone. Holds pointers into its own
/// strings, whose buffers do not move when the vectors that own them do.
pub struct Exec {
    /// The program's own path when it names one (has a '/'), else the
    /// program in each PATH directory, tried in order like `execvp`.
    candidates: Vec<CString>,
    /// Owned here for the pointers below, which are what the child reads.
    _argv: Vec<CString>,
    _env: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in the command or its environment",
        )
    })
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

impl Exec {
    /// `program` with `args`, in the environment `env` (for a name given
    /// twice, the last value, as `Command::env` does).
    pub fn new<'a>(
        program: &OsStr,
        args: &[OsString],
        env: impl Iterator<Item = &'a (OsString, OsString)>,
    ) -> io::Result<Exec> {
        let mut vars: Vec<(&OsStr, &OsStr)> = Vec::new();
        for (name, value) in env {
            match vars.iter_mut().find(|(n, _)| *n == name.as_os_str()) {
                Some(var) => var.1 = value,
                None => vars.push((name, value)),
            }
        }
        let env = vars
            .iter()
            .map(|(name, value)| {
                let mut var = Vec::with_capacity(name.len() + value.len() + 1);
                var.extend_from_slice(name.as_bytes());
                var.push(b'=');
                var.extend_from_slice(value.as_bytes());
                c_string(&var)
            })
            .collect::<io::Result<Vec<_>>>()?;
        let argv = std::iter::once(program)
            .chain(args.iter().map(OsString::as_os_str))
            .map(|arg| c_string(arg.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let candidates = if program.as_bytes().contains(&b'/') {
            vec![c_string(program.as_bytes())?]
        } else if program.is_empty() {
            Vec::new()
        } else {
            let path = match vars.iter().find(|(n, _)| *n == "PATH") {
                Some((_, path)) => path.as_bytes().to_vec(),
                None => std::env::var_os("PATH").map_or_else(
                    || DEFAULT_PATH.as_bytes().to_vec(),
                    |p| p.as_bytes().to_vec(),
                ),
            };
            path.split(|&b| b == b':')
                .map(|dir| {
                    // An empty entry is the current directory.
                    let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
                    let mut full = Vec::with_capacity(dir.len() + program.len() + 1);
                    full.extend_from_slice(dir);
                    full.push(b'/');
                    full.extend_from_slice(program.as_bytes());
                    c_string(&full)
                })
                .collect::<io::Result<Vec<_>>>()?
        };
        Ok(Exec {
            argv_ptrs: pointers(&argv),
            env_ptrs: pointers(&env),
            candidates,
            _argv: argv,
            _env: env,
        })
    }
}

/// A child started: it has exec'd its program.
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// What the child reads, and where it says why it could not exec.
struct ChildPlan<'a> {
    exec: &'a Exec,
    /// Its standard input, output and error.
    fds: [RawFd; 3],
    /// 0, or the errno that kept it from exec'ing.
    error: AtomicI32,
}

fn errno() -> libc::c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The child, on the spawning thread's stack and memory until its exec:
/// only system calls, no allocation, no lock.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildPlan` that `spawn` passed to clone, which
    // lives until the child has exec'd or exited (the parent waits for
    // that: CLONE_VFORK).
    let plan = unsafe { &*arg.cast::<ChildPlan<'_>>() };
    let fail = |e: libc::c_int| -> ! {
        plan.error.store(e, Ordering::SeqCst);
        // SAFETY: _exit ends the child at once, running nothing of ours.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: every call below takes valid pointers to local or plan data
    // (a zeroed sigaction with SIG_DFL, sigsets filled by sigemptyset, the
    // NUL-terminated strings and NULL-terminated arrays of `Exec`), and
    // none allocates or locks.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for sig in RESET_SIGNALS {
            libc::sigaction(sig, &default, std::ptr::null_mut());
        }
        if libc::setpgid(0, 0) != 0 {
            fail(errno());
        }
        for (target, &fd) in plan.fds.iter().enumerate() {
            let target = target as libc::c_int;
            // dup2 onto itself would leave close-on-exec set.
            let rc = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if rc < 0 {
                fail(errno());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // As execvp: a program found but not executable is remembered
        // while the rest of PATH is tried; a missing one is skipped.
        let mut error = libc::ENOENT;
        for path in &plan.exec.candidates {
            libc::execve(
                path.as_ptr(),
                plan.exec.argv_ptrs.as_ptr(),
                plan.exec.env_ptrs.as_ptr(),
            );
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => error = libc::EACCES,
                e => {
                    error = e;
                    break;
                }
            }
        }
        fail(error)
    }
}

/// Starts `exec` with `fds` as its standard input, output and error, in a
/// process group of its own, with no signal blocked, on `stack` (kept by
/// the calling thread: the child runs on it until its exec; uninitialised,
/// so that only the pages the child uses are ever touched). The calling
/// thread must have every signal blocked but SIGCHLD, which the child
/// inherits until it has put the handlers back to the default.
pub fn spawn(exec: &Exec, fds: [RawFd; 3], stack: &mut [MaybeUninit<u8>]) -> io::Result<Child> {
    let plan = ChildPlan {
        exec,
        fds,
        error: AtomicI32::new(0),
    };
    let base = stack.as_mut_ptr() as usize;
    // The stack grows down from its end, 16-byte aligned as the ABI wants.
    let top = (base + stack.len()) & !15;
    let mut pidfd: libc::c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    // SAFETY: `top` is the aligned end of a writable buffer that outlives
    // the child's use of it (CLONE_VFORK: clone returns once the child has
    // exec'd or exited); `plan` outlives it the same way; CLONE_PIDFD
    // writes the pidfd to `pidfd`, a valid int.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            flags,
            (&plan as *const ChildPlan<'_>).cast_mut().cast(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: CLONE_PIDFD gave us this descriptor and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    match plan.error.load(Ordering::SeqCst) {
        0 => Ok(Child { pid, pidfd }),
        e => {
            // It has exited already: this reaps it.
            let _ = wait_child(pid);
            Err(io::Error::from_raw_os_error(e))
        }
    }
}

/// Reaps our child `pid`, waiting for it to end, and returns its wait
/// status.
pub fn wait_child(pid: i32) -> io::Result<libc::c_int> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid writes the status to a valid int.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sets the calling thread's signal mask to every signal but SIGCHLD, as
/// `spawn` needs, and returns the mask it had.
pub fn hold_signals() -> io::Result<libc::sigset_t> {
    // SAFETY: all-zero sigset_t values are valid storage for sigfillset and
    // pthread_sigmask, which write them.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    // SAFETY: sigfillset and sigdelset write to a valid sigset_t;
    // pthread_sigmask reads one and writes the other.
    let rc = unsafe {
        libc::sigfillset(&mut all);
        libc::sigdelset(&mut all, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old)
    };
    match rc {
        0 => Ok(old),
        rc => Err(io::Error::from_raw_os_error(rc)),
    }
}

/// Gives the calling thread back the mask `hold_signals` returned.
pub fn release_signals(old: &libc::sigset_t) {
    // SAFETY: pthread_sigmask reads a valid sigset_t and takes a null
    // pointer for the old mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}
