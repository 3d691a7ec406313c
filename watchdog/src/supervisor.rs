//! The supervision loop: one picomon child at a time, watched through its
//! exit, its standard error (passed through, last lines kept for the mail)
//! and a heartbeat pipe it writes to after every tick. Every source feeds
//! one channel, so the loop is a plain state machine with no shared state.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use picomon::config::Config;
use picomon::human::human_duration;
use picomon::mail::{Mail, Outbox};
use picomon::signals::{self, Signal};

use picomon::cli::WatchdogCli as Args;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A run this long resets the back-off.
const STEADY: Duration = Duration::from_secs(600);
/// The same kind of exit is mailed at most this often.
const MAIL_INTERVAL: Duration = Duration::from_secs(900);
/// How long picomon gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long a hung picomon gets after SIGTERM before SIGKILL.
const HANG_KILL_GRACE: Duration = Duration::from_secs(5);
/// Lines of picomon's standard error quoted in a mail.
const STDERR_LINES: usize = 20;
/// The descriptor picomon finds its heartbeat pipe on.
const HEARTBEAT_FD: i32 = 3;

enum Event {
    /// The child of generation `.0` exited.
    Exited(u64, ExitStatus),
    /// The child of generation `.0` finished a tick.
    Beat(u64),
    /// The child's standard error closed.
    StderrClosed(u64),
    Signal(Signal),
}

/// How one run of picomon ended.
enum Ending {
    Exited(ExitStatus),
    Hung(Duration),
    /// The watchdog was told to stop.
    Stopped(ExitStatus),
}

struct Supervisor {
    args: Args,
    picomon: PathBuf,
    config: Option<Config>,
    outbox: Option<Outbox>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    generation: u64,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The kind of the last mailed ending, and when.
    last_mail: Option<(String, Instant)>,
    /// Endings not mailed since the last mail.
    unmailed: u32,
    /// The current child reported at least one tick.
    ticked: bool,
    /// The last generation whose standard error reached its end.
    stderr_closed: u64,
}

/// The picomon next to this program, else the one on PATH.
fn find_picomon(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("picomon")));
    match beside {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from("picomon"),
    }
}

/// SIGKILL rather than 9, for people.
fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return format!("signal {sig}"),
    };
    format!("{name} ({sig})")
}

fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by {}", signal_name(sig)),
        (None, None) => "ended".to_string(),
    }
}

fn kill(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: a signal to our own, not yet reaped, child.
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let signal_tx = tx.clone();
    signals::spawn(move |s| {
        let _ = signal_tx.send(Event::Signal(s));
    })
    .context("cannot install signal handlers")?;
    let picomon = find_picomon(args.picomon.as_deref());
    let mut supervisor = Supervisor {
        args,
        picomon,
        config: None,
        outbox: None,
        tx,
        rx,
        generation: 0,
        stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
        last_mail: None,
        unmailed: 0,
        ticked: false,
        stderr_closed: 0,
    };
    supervisor.load_config();
    let code = supervisor.supervise();
    if let Some(outbox) = supervisor.outbox.take() {
        outbox.stop(Duration::from_secs(5));
    }
    Ok(code)
}

impl Supervisor {
    /// Reads the configuration for the mail settings; keeps the previous
    /// one when the new one is invalid (picomon will say why).
    fn load_config(&mut self) {
        match Config::load(&self.args.common.config) {
            Ok(config) => {
                picomon::set_log_level(config.log_level);
                match &mut self.outbox {
                    Some(outbox) => outbox.reconfigure(config.emails.clone()),
                    None => {
                        let spool = config.state_dir.as_ref().map(|d| d.join("watchdog-outbox"));
                        match Outbox::start(config.emails.clone(), spool.as_deref()) {
                            Ok(outbox) => self.outbox = Some(outbox),
                            Err(e) => log::error!("cannot start mail delivery: {e:#}"),
                        }
                    }
                }
                self.config = Some(config);
            }
            Err(e) => match self.config {
                Some(_) => log::error!("{e}; mailing with the previous configuration"),
                None => log::error!("{e}; no mail can be sent until it is fixed"),
            },
        }
    }

    /// The next event before `deadline`; the end of a child's standard
    /// error is recorded here rather than returned, wherever it arrives.
    fn next_event(&mut self, deadline: Instant) -> Result<Event, RecvTimeoutError> {
        loop {
            match self.rx.recv_deadline(deadline)? {
                Event::StderrClosed(g) => self.stderr_closed = self.stderr_closed.max(g),
                event => return Ok(event),
            }
        }
    }

    fn hang_timeout(&self) -> Duration {
        self.args.hang_timeout.unwrap_or_else(|| {
            let tick = self
                .config
                .as_ref()
                .map(|c| c.base_tick)
                .unwrap_or(Duration::from_secs(60));
            (tick * 3).max(Duration::from_secs(30))
        })
    }

    /// Runs picomon again and again until told to stop; returns the exit
    /// code of the watchdog.
    fn supervise(&mut self) -> ExitCode {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            let ending = match self.spawn() {
                Ok(pid) => self.watch(pid),
                Err(e) => {
                    log::error!("cannot start {}: {e}", self.picomon.display());
                    self.mail_ending(
                        "start failure",
                        &format!("could not be started: {e}"),
                        None,
                        backoff,
                    );
                    None
                }
            };
            let ran = started.elapsed();
            if ran >= STEADY {
                backoff = FIRST_BACKOFF;
            }
            let wait = match ending {
                Some(Ending::Stopped(status)) => {
                    log::info!("picomon {}; watchdog stopping", describe(&status));
                    return ExitCode::SUCCESS;
                }
                // picomon exits 0 only when told to stop (SIGTERM, or Ctrl-C
                // reaching the whole process group): that is no crash.
                Some(Ending::Exited(status)) if status.success() => {
                    log::info!("picomon stopped on request (status 0); watchdog stopping");
                    return ExitCode::SUCCESS;
                }
                Some(Ending::Exited(status))
                    if status.code() == Some(i32::from(picomon::EX_CONFIG)) =>
                {
                    let text = "exited with status 78: its configuration is invalid (see the lines below); \
                                it is tried again every 5 minutes, and this is not mailed again until it runs";
                    self.mail_ending("config", text, Some(ran), MAX_BACKOFF);
                    MAX_BACKOFF
                }
                Some(Ending::Exited(status)) => {
                    let text = describe(&status);
                    let kind = text.clone();
                    self.mail_ending(&kind, &text, Some(ran), backoff);
                    backoff
                }
                Some(Ending::Hung(silence)) => {
                    let text = format!(
                        "hung: no tick reported for {}, so it was killed",
                        human_duration(silence)
                    );
                    self.mail_ending("hung", &text, Some(ran), backoff);
                    backoff
                }
                None => backoff,
            };
            log::warn!("restarting picomon in {}", human_duration(wait));
            if self.pause(wait) {
                return ExitCode::SUCCESS;
            }
            backoff = (wait * 2).min(MAX_BACKOFF);
            self.load_config();
        }
    }

    /// Starts picomon with the watchdog's arguments and a heartbeat pipe.
    fn spawn(&mut self) -> std::io::Result<u32> {
        self.generation += 1;
        self.ticked = false;
        let generation = self.generation;
        let (beat_r, beat_w) = os_pipe::pipe()?;
        let mut cmd = Command::new(&self.picomon);
        cmd.arg("-c").arg(&self.args.common.config);
        if self.args.common.debug {
            cmd.arg("-D");
        }
        cmd.arg("--heartbeat-fd").arg(HEARTBEAT_FD.to_string());
        cmd.args(&self.args.rest);
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
        let mut child = cmd.spawn()?;
        drop(beat_w);
        drop(cmd);
        let pid = child.id();
        log::info!("started {} (pid {pid})", self.picomon.display());

        let stderr = child.stderr.take();
        let tail = Arc::clone(&self.stderr_tail);
        if let Ok(mut t) = tail.lock() {
            t.clear();
        }
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(err, "{line}");
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == STDERR_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            }
            let _ = tx.send(Event::StderrClosed(generation));
        });
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let mut beat_r = beat_r;
            let mut buf = [0u8; 64];
            while let Ok(n) = beat_r.read(&mut buf) {
                if n == 0 || tx.send(Event::Beat(generation)).is_err() {
                    break;
                }
            }
        });
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(Event::Exited(generation, status));
            }
        });
        Ok(pid)
    }

    /// Waits for the current child to exit, hang, or be stopped.
    fn watch(&mut self, pid: u32) -> Option<Ending> {
        let generation = self.generation;
        let mut last_beat = Instant::now();
        loop {
            let hang_at = last_beat + self.hang_timeout();
            match self.next_event(hang_at) {
                Ok(Event::Exited(g, status)) if g == generation => {
                    self.wait_stderr(generation);
                    log::error!("picomon (pid {pid}) {}", describe(&status));
                    return Some(Ending::Exited(status));
                }
                Ok(Event::Beat(g)) if g == generation => {
                    last_beat = Instant::now();
                    if !self.ticked {
                        self.ticked = true;
                        // It runs: a broken configuration is fixed, and its
                        // next breakage deserves a mail again.
                        if self
                            .last_mail
                            .as_ref()
                            .is_some_and(|(kind, _)| kind == "config")
                        {
                            self.last_mail = None;
                        }
                    }
                }
                Ok(Event::Signal(Signal::Reload)) => {
                    kill(pid, libc::SIGHUP);
                    self.load_config();
                }
                Ok(Event::Signal(Signal::Status)) => kill(pid, libc::SIGUSR1),
                Ok(Event::Signal(Signal::Stop)) => {
                    log::info!("stopping picomon (pid {pid})");
                    kill(pid, libc::SIGTERM);
                    let status = self.reap(pid, STOP_GRACE);
                    return status.map(Ending::Stopped);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    let silence = last_beat.elapsed();
                    log::error!(
                        "picomon (pid {pid}) reported no tick for {}: killing it",
                        human_duration(silence)
                    );
                    kill(pid, libc::SIGTERM);
                    self.reap(pid, HANG_KILL_GRACE);
                    return Some(Ending::Hung(silence));
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for the child to exit after a signal, SIGKILL after `grace`.
    fn reap(&mut self, pid: u32, grace: Duration) -> Option<ExitStatus> {
        let generation = self.generation;
        let mut deadline = Instant::now() + grace;
        let mut killed = false;
        loop {
            match self.next_event(deadline) {
                Ok(Event::Exited(g, status)) if g == generation => {
                    self.wait_stderr(generation);
                    return Some(status);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) if !killed => {
                    log::warn!(
                        "picomon (pid {pid}) still running after {}: SIGKILL",
                        human_duration(grace)
                    );
                    kill(pid, libc::SIGKILL);
                    killed = true;
                    deadline = Instant::now() + Duration::from_secs(10);
                }
                Err(_) => return None,
            }
        }
    }

    /// Gives the stderr reader a moment to take picomon's last words.
    /// Other events in the meantime are of no use to a child that exited.
    fn wait_stderr(&mut self, generation: u64) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.stderr_closed < generation {
            match self.rx.recv_deadline(deadline) {
                Ok(Event::StderrClosed(g)) => self.stderr_closed = self.stderr_closed.max(g),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Sleeps `wait` before the next start; returns true when told to stop.
    /// SIGHUP restarts at once (a fixed configuration should not wait).
    fn pause(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        loop {
            match self.next_event(until) {
                Ok(Event::Signal(Signal::Stop)) => return true,
                Ok(Event::Signal(Signal::Reload)) => return false,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Mails how picomon ended, at most once per `MAIL_INTERVAL` for the
    /// same kind of ending (a crash loop is one mail, not a storm).
    fn mail_ending(&mut self, kind: &str, what: &str, ran: Option<Duration>, next: Duration) {
        let now = Instant::now();
        let repeated = match &self.last_mail {
            Some((last_kind, at)) if last_kind == kind => {
                kind == "config" || now.duration_since(*at) < MAIL_INTERVAL
            }
            _ => false,
        };
        if repeated {
            self.unmailed += 1;
            log::info!(
                "not mailing this again so soon ({} not mailed)",
                self.unmailed
            );
            return;
        }
        let Some(outbox) = &self.outbox else {
            log::error!("picomon {what}; no valid configuration to mail it with");
            return;
        };
        let host = picomon::host::fqdn();
        let mut body = format!("picomon on {host} {what}");
        if let Some(ran) = ran {
            body.push_str(&format!(", after running {}", human_duration(ran)));
        }
        body.push_str(&format!(
            ".\nIt is started again in {}.\n",
            human_duration(next)
        ));
        if self.unmailed > 0 {
            body.push_str(&format!(
                "({} earlier stops were not mailed, to avoid a storm.)\n",
                self.unmailed
            ));
        }
        body.push_str("\nLast lines of its standard error:\n");
        if let Ok(tail) = self.stderr_tail.lock() {
            for line in tail.iter() {
                body.push_str(&format!("    {line}\n"));
            }
        }
        let emails = outbox.emails();
        let mail = Mail::new(
            emails,
            emails.watchdog_subject.clone(),
            body,
            SystemTime::now(),
        );
        outbox.send(mail);
        self.last_mail = Some((kind.to_string(), now));
        self.unmailed = 0;
    }
}
