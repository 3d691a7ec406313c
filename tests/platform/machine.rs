//! A Debian bookworm machine booted under its own systemd: a copy of a
//! pristine debootstrap root (built once, cached under /var/tmp, keyed by
//! what it holds), booted with `systemd-nspawn -b` on a private network,
//! commands run inside with `nsenter` into its PID 1's namespaces (no
//! machined needed, nothing registered on the host). Dropping it kills
//! the container and removes the copy, on panic too, after printing the
//! container's journal and the units' status so that a CI log explains
//! the failure.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::sources;

/// What the test needs inside, besides minbase: systemd as PID 1, the
/// SMTP server, the plugins the shipped configuration runs, ping, and
/// sudo for the README's commands.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "sudo",
    "python3-aiosmtpd",
    "monitoring-plugins-basic",
    "iputils-ping",
];

/// Where pristine roots and the work copies live: /var/tmp, kept across
/// reboots and large enough, unlike a tmpfs /tmp.
const CACHE: &str = "/var/tmp/picomon-platform";

/// The programs the test runs on the host, and the package each is in.
const TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("systemd-nspawn", "systemd-container"),
    ("nsenter", "util-linux"),
    ("lintian", "lintian"),
    ("dpkg-deb", "dpkg"),
];

/// Panics, naming the package, when a tool the test runs is missing or
/// the test does not run as root: a platform test never skips.
#[track_caller]
pub(crate) fn require_tools(names: &[&str]) {
    for (tool, package) in TOOLS.iter().filter(|(t, _)| names.contains(t)) {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).is_file());
        assert!(
            found,
            "{tool} is missing: install {package} (scripts/deps installs debootstrap, systemd-container and lintian)"
        );
    }
}

/// A booted container; see the module's comment.
pub(crate) struct Machine {
    nspawn: Child,
    /// The container's PID 1 (systemd), as the host sees it.
    leader: Option<u32>,
    root: PathBuf,
    console: PathBuf,
    work: Option<tempfile::TempDir>,
}

impl Machine {
    /// Copies the pristine root, boots it and waits until its systemd
    /// has finished starting up.
    pub(crate) fn boot() -> Machine {
        require_tools(&["debootstrap", "systemd-nspawn", "nsenter"]);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the platform test boots a container: run it as root (scripts/test and CI do)"
        );
        let pristine = pristine_root();
        let work = tempfile::Builder::new()
            .prefix("work-")
            .tempdir_in(CACHE)
            .expect("a work directory in /var/tmp/picomon-platform");
        let root = work.path().join("root");
        let started = Instant::now();
        run_host(
            Command::new("cp")
                .arg("-a")
                .arg("--reflink=auto")
                .arg(&pristine)
                .arg(&root),
        );
        println!("platform: root copied in {:.1?}", started.elapsed());
        let console = work.path().join("console.log");
        let log = fs::File::create(&console).expect("console log");
        let nspawn = Command::new("systemd-nspawn")
            .args(["--quiet", "--boot", "--directory"])
            .arg(&root)
            .args([
                "--private-network",
                "--register=no",
                "--keep-unit",
                "--machine=picomon-platform",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("console log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start systemd-nspawn: {e}"));
        let mut machine = Machine {
            nspawn,
            leader: None,
            root,
            console,
            work: Some(work),
        };
        let started = Instant::now();
        let nspawn_pid = machine.nspawn.id();
        let leader = loop {
            if let Some(leader) = container_init(nspawn_pid) {
                break leader;
            }
            if let Ok(Some(status)) = machine.nspawn.try_wait() {
                panic!("systemd-nspawn exited at boot: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "gave up after 60 s waiting for the container's PID 1"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        machine.leader = Some(leader);
        let state = machine.wait_for(
            "systemctl is-system-running: running or degraded",
            Duration::from_secs(180),
            |m| {
                let out = m.sh("systemctl is-system-running");
                let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                matches!(state.as_str(), "running" | "degraded").then_some(state)
            },
        );
        if state == "degraded" {
            println!(
                "platform: booted degraded:\n{}",
                machine.ok("systemctl --failed --no-pager")
            );
        }
        println!("platform: booted in {:.1?}", started.elapsed());
        machine
    }

    /// A path inside the container, as the host sees it.
    pub(crate) fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Runs `script` with /bin/sh inside the container, as root, with a
    /// clean environment and at most two minutes.
    #[track_caller]
    pub(crate) fn sh(&self, script: &str) -> Output {
        let leader = self.leader.expect("the container has booted");
        Command::new("nsenter")
            .args(["-t", &leader.to_string(), "-a", "--"])
            .args([
                "/usr/bin/env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
                "HOME=/root",
                "/usr/bin/timeout",
                "120",
                "/bin/sh",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter: {e}"))
    }

    /// Runs `script` inside and returns its standard output; a failure
    /// panics with both outputs.
    #[track_caller]
    pub(crate) fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the container: {script}\n{}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `found` until it returns something or `deadline` passes,
    /// then panics naming `what`.
    #[track_caller]
    pub(crate) fn wait_for<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut found: impl FnMut(&Machine) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(value) = found(self) {
                return value;
            }
            assert!(
                start.elapsed() < deadline,
                "gave up after {deadline:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// What a CI log needs to explain a failure: the journal's tail and
    /// the units' status.
    fn diagnostics(&self) -> String {
        if self.leader.is_none() {
            let console = fs::read_to_string(&self.console).unwrap_or_default();
            let tail: Vec<&str> = console.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return format!("the container's console:\n{}", tail.join("\n"));
        }
        let out = self.sh("systemctl status --no-pager --full 'picomon*' 2>&1; \
             echo '--- journal (last 150 lines)'; journalctl --no-pager -n 150 2>&1");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the container: its PID 1 first (which takes every process
    /// of its PID namespace along), then systemd-nspawn, each waited for.
    fn tear_down(&mut self) {
        if let Some(leader) = self.leader.take() {
            // SAFETY: kill has no memory preconditions; leader is the
            // container's init, a child of our own systemd-nspawn.
            unsafe { libc::kill(leader as libc::pid_t, libc::SIGKILL) };
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("platform: the test failed; {}", self.diagnostics());
        }
        let started = Instant::now();
        self.tear_down();
        println!("platform: container stopped in {:.1?}", started.elapsed());
        if let Some(work) = self.work.take() {
            let path = work.path().to_path_buf();
            if let Err(e) = work.close() {
                eprintln!("platform: cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// The container's init: the descendant of `nspawn` that is PID 1 of
/// its own PID namespace.
fn container_init(nspawn: u32) -> Option<u32> {
    let mut parents = vec![nspawn];
    // nspawn's children, then theirs: the init is at most two levels down.
    for _ in 0..3 {
        let mut children = Vec::new();
        for entry in fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.split_whitespace().collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            let ppid: Option<u32> = field("PPid:").first().and_then(|p| p.parse().ok());
            if !ppid.is_some_and(|p| parents.contains(&p)) {
                continue;
            }
            let nspid = field("NSpid:");
            if nspid.len() > 1 && nspid.last() == Some(&"1") {
                return Some(pid);
            }
            children.push(pid);
        }
        parents = children;
    }
    None
}

/// The pristine root for `PACKAGES`, built by debootstrap when it is not
/// cached yet. A lock keeps two test runs from building it at once; the
/// root is built aside and renamed into place only once complete.
fn pristine_root() -> PathBuf {
    fs::create_dir_all(CACHE).expect("/var/tmp/picomon-platform");
    let mirror = sources::mirror();
    let key = format!(
        "{} {} minbase {}",
        sources::SUITE,
        mirror,
        PACKAGES.join(",")
    );
    let root = Path::new(CACHE).join(format!("{}-{:016x}", sources::SUITE, fnv1a(&key)));
    let lock = fs::File::create(Path::new(CACHE).join("lock")).expect("the cache's lock file");
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `lock`
    // is dropped at the end of this function.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "cannot lock the root cache");
    if root.join("etc/os-release").is_file() {
        return root;
    }
    let building = root.with_extension("building");
    let _ = fs::remove_dir_all(&building);
    println!("platform: debootstrap {key} (the first run only)");
    let started = Instant::now();
    let log = root.with_extension("log");
    let out = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(sources::SUITE)
        .arg(&building)
        .arg(&mirror)
        .output()
        .unwrap_or_else(|e| panic!("cannot run debootstrap: {e}"));
    let _ = fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat());
    assert!(
        out.status.success(),
        "debootstrap {key}: {} (signal {:?}); its log, {}:\n{}",
        out.status,
        out.status.signal(),
        log.display(),
        tail(&String::from_utf8_lossy(&out.stdout), 40)
    );
    // The .debs debootstrap downloaded would only make every copy larger.
    let _ = fs::remove_dir_all(building.join("var/cache/apt/archives"));
    fs::rename(&building, &root).expect("rename the built root into place");
    println!("platform: debootstrap took {:.1?}", started.elapsed());
    root
}

/// A stable 64-bit hash (FNV-1a) for the cache key: unlike std's
/// hasher, it does not change between Rust versions.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a command on the host; a failure panics with its output.
#[track_caller]
pub(crate) fn run_host(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
