//! Test harness: a temporary site directory, the real `picomon` binary,
//! script plugins, a loopback HTTP server, and waiting on conditions with
//! a deadline. Every child is stopped when its guard is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The fixtures' helper, shared with the library's unit tests; not every
// binary that shares the harness writes fixtures.
#[path = "dedent.rs"]
mod dedent;
#[allow(unused_imports)]
pub use dedent::dedent;

pub const PLUGINS: &str = "/usr/lib/nagios/plugins";

/// A binary of this workspace. Cargo names a package's own binaries
/// (`CARGO_BIN_EXE_*`); the watchdog's tests also need `picomon`, of the
/// other package, which cargo names for nobody: that one is looked up in
/// the target directory the test runs from (`cargo test --workspace`
/// builds them all).
#[track_caller]
pub fn bin(name: &str) -> PathBuf {
    let own = match name {
        "picomon" => option_env!("CARGO_BIN_EXE_picomon"),
        "picomon-watchdog" => option_env!("CARGO_BIN_EXE_picomon-watchdog"),
        _ => None,
    };
    if let Some(path) = own {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo test --workspace`",
        path.display()
    );
    path
}

/// Waits until `cond` holds, polling, or panics after `limit` saying what
/// was awaited.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a child process of this test.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A temporary directory holding a site configuration and plugins.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new(config: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let site = Site { dir };
        site.write("site.toml", config);
        site
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("site.toml")
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write file");
    }

    /// Writes an executable shell script plugin and returns its path.
    pub fn plugin(&self, name: &str, body: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write plugin");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    }

    /// A plugin that fails (exit 2) while the file `down` exists, printing
    /// its content, and prints `FLAG OK - fine` otherwise. See `down()`.
    pub fn flag_plugin(&self) -> String {
        let flag = self.path("down");
        self.plugin(
            "flag",
            &format!(
                "if [ -e {0} ]; then cat {0}; exit 2; fi\necho 'FLAG OK - fine'",
                flag.display()
            ),
        )
    }

    /// Makes the flag plugin fail with `output`.
    pub fn down(&self, output: &str) {
        self.write("down", output);
    }

    /// Makes the flag plugin pass again.
    pub fn up(&self) {
        std::fs::remove_file(self.path("down")).expect("remove the flag");
    }

    /// `picomon` in the site's directory, with no `PICOMON_*` from the
    /// environment of the test run.
    pub fn picomon(&self) -> Command {
        self.command("picomon")
    }

    /// The workspace binary `name`, set up like `picomon()`.
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(bin(name));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PICOMON_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("JOURNAL_STREAM");
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs `picomon ARGS -c site.toml` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.picomon();
        cmd.args(args).arg("-c").arg(self.config());
        cmd.stdin(Stdio::null());
        cmd.output().expect("run picomon")
    }

    /// Starts the daemon; its standard output and error go to files.
    pub fn daemon(&self, args: &[&str]) -> Daemon {
        self.spawn_daemon(self.picomon(), args)
    }

    /// Starts `cmd` (from `picomon()`, maybe with more environment) as the
    /// daemon of this site.
    pub fn spawn_daemon(&self, mut cmd: Command, args: &[&str]) -> Daemon {
        let out = self.path("daemon.out");
        let err = self.path("daemon.err");
        cmd.args(args).arg("-c").arg(self.config());
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"));
        let child = cmd.spawn().expect("start picomon");
        Daemon { child, out, err }
    }
}

/// A running daemon, stopped (SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The pid in the last `(pid N)` of the log: the current picomon of a
    /// watchdog.
    pub fn last_pid(&self) -> Option<u32> {
        let log = self.stderr();
        let at = log.rfind("(pid ")?;
        log[at + 5..].split(')').next()?.parse().ok()
    }

    /// Waits until the log holds `needle` `times` times.
    #[track_caller]
    pub fn wait_log(&self, needle: &str, times: usize, limit: Duration) {
        wait_for(&format!("{times} × {needle:?} in the log"), limit, || {
            self.stderr().matches(needle).count() >= times
        });
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// Waits for the daemon to exit and returns its status.
    #[track_caller]
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "picomon did not exit within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- picomon's standard error ---\n{}", self.stderr());
        }
        // SIGTERM first, so that a watchdog stops its picomon too; SIGKILL
        // if that takes too long.
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.0 server on loopback answering every request with the
/// current status; stopped when dropped.
pub struct HttpServer {
    pub port: u16,
    pub status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind http");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&status), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                        let mut line = String::new();
                        while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                            line.clear();
                        }
                        let code = s.load(Ordering::Relaxed);
                        let body = format!("picomon test page {code}\n");
                        let _ = write!(
                            conn,
                            "HTTP/1.0 {code} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HttpServer { port, status, stop }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A loopback port nothing listens on (bound, then released), never
/// handed out before in this test binary: the kernel may give a port that
/// was free a moment ago to the next bind, and a test that kept its SMTP
/// server down on purpose (a full disk) then mailed another test's server,
/// which got a mail too many.
pub fn closed_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A site's configuration as most mail tests have it: a tick of 0.2 s, no
/// retry, the state in `state_dir`, mail to ops@example.org through the
/// loopback SMTP server on `port`; then `emails`, more of `[emails]`, and
/// `rest`, the hosts and checks, both as the test writes them (indented
/// raw strings: see `dedent`).
pub fn mail_config(port: u16, state_dir: &Path, emails: &str, rest: &str) -> String {
    let head = dedent(&format!(
        r#"
            base_tick = 0.2
            default_retry = 0
            state_dir = "{}"
            [emails]
            to = ["ops@example.org"]
            smtp_host = "127.0.0.1:{port}"
        "#,
        state_dir.display()
    ));
    head + &dedent(emails) + &dedent(rest)
}

/// The configuration of a mail backlog: `checks` checks failing on their
/// first run (`false`), each mailed on its own (`digest_over = 0`) to the
/// SMTP server on `port`, the state in `state_dir`.
pub fn backlog_config(checks: usize, port: u16, state_dir: &Path) -> String {
    let mut config = dedent(&format!(
        r#"
            base_tick = 3600
            default_retry = 0
            max_parallel = 50
            state_dir = "{}"
            [emails]
            digest_over = 0
            to = ["ops@example.org"]
            smtp_host = "127.0.0.1:{port}"
            smtp_retry_timeout = 0.5
        "#,
        state_dir.display()
    ));
    for i in 0..checks {
        config.push_str(&dedent(&format!(
            r#"
                [checks.c{i:03}]
                type = "command"
                command = ["false"]
            "#
        )));
    }
    config
}

/// A finished command's exit status and both its outputs, as an
/// assertion's message shows them.
pub fn shown(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Reads a pid written by a plugin into `path`, waiting for it to appear.
#[track_caller]
pub fn read_pid(path: &Path) -> u32 {
    let mut pid = None;
    wait_for(
        &format!("a pid in {}", path.display()),
        Duration::from_secs(10),
        || {
            let mut s = String::new();
            if let Ok(mut f) = std::fs::File::open(path) {
                let _ = f.read_to_string(&mut s);
            }
            pid = s.trim().parse().ok();
            pid.is_some()
        },
    );
    pid.unwrap_or_default()
}

/// Writes the test certificates into `dir` (tests/tls/make_certs.py): a
/// private CA (ca.pem) and the server certificates it signed.
#[track_caller]
pub fn make_certs(dir: &Path) {
    let made = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tls/make_certs.py"
        ))
        .arg(dir)
        .status()
        .expect("run python3 (python3-cryptography)");
    assert!(made.success(), "make_certs.py failed");
}
