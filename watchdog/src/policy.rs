//! What the watchdog decides, kept apart from what it does: what happened
//! to picomon goes in (`Input`), what to do comes out (`Action`: start,
//! signal, mail, exit). Nothing here touches a clock, a process or a
//! channel, so every rule — back-off, mail throttle, hang, stop — is
//! unit-tested in milliseconds; `supervisor.rs` carries the actions out.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use log::Level;

use picomon::human::human_duration;
use picomon::signals::Signal;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A run this long resets the back-off.
const STEADY: Duration = Duration::from_secs(600);
/// The same kind of ending is mailed at most this often.
const MAIL_INTERVAL: Duration = Duration::from_secs(900);
/// How long picomon gets to stop after SIGTERM before SIGKILL. picomon
/// itself may take about 5 s to end its plugins, 5 s to flush queued mail
/// and one more SMTP step (up to 15 s) on the way out: killing it in its
/// flush would send an accepted mail again after the restart.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long a hung picomon gets after SIGTERM before SIGKILL.
const HANG_KILL_GRACE: Duration = Duration::from_secs(5);
/// How long a SIGKILLed picomon may take to disappear (a process stuck in
/// the kernel) before the watchdog goes on without it.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long picomon's standard error may stay open after it exited: its
/// last words are wanted in the mail, but a plugin that inherited it must
/// not hold the restart up.
const STDERR_WAIT: Duration = Duration::from_secs(2);

/// What happened, as the supervisor saw it.
#[derive(Debug)]
pub(crate) enum Input {
    /// A new picomon runs.
    Started { pid: u32 },
    /// picomon could not be started (the reason).
    StartFailed(String),
    /// The current picomon finished a tick.
    Beat,
    /// The current picomon's standard error closed; its last lines.
    StderrClosed(Vec<String>),
    /// The current picomon exited and was reaped.
    Exited(ExitStatus),
    /// A signal to the watchdog.
    Signal(Signal),
    /// The time given by `Policy::deadline` came.
    Timeout,
}

/// What to do, in order.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Read the configuration again (mail settings, hang timeout).
    LoadConfig,
    /// Start picomon; the supervisor answers `Started` or `StartFailed`.
    Start,
    /// Send this signal to the current picomon, which is not yet reaped.
    Signal(i32),
    /// Mail how picomon ended.
    Mail(Notice),
    Log(Level, String),
    /// Stop the watchdog.
    Exit,
}

/// How one run of picomon ended, told apart for the mail throttle: the
/// same kind again within `MAIL_INTERVAL` is not mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// It exited or was killed by a signal, other than below.
    Exited(ExitStatus),
    /// It exited 78: its configuration is invalid.
    Config,
    /// It stopped reporting ticks and was killed.
    Hung,
    /// It could not be started.
    StartFailure,
}

/// The facts of one mail about picomon's end; `body` words them.
#[derive(Debug, PartialEq)]
pub(crate) struct Notice {
    /// "was killed by SIGKILL (9)", "hung: …", …
    pub(crate) what: String,
    /// How long it ran, when it ran at all.
    pub(crate) ran: Option<Duration>,
    /// When it is started again.
    pub(crate) next: Duration,
    /// Endings not mailed since the previous mail.
    pub(crate) unmailed: u32,
    /// The last lines of its standard error.
    pub(crate) tail: Vec<String>,
}

impl Notice {
    /// The mail body, for picomon on `host`.
    pub(crate) fn body(&self, host: &str) -> String {
        let mut body = format!("picomon on {host} {}", self.what);
        if let Some(ran) = self.ran {
            body.push_str(&format!(", after running {}", human_duration(ran)));
        }
        body.push_str(&format!(
            ".\nIt is started again in {}.\n",
            human_duration(self.next)
        ));
        if self.unmailed > 0 {
            body.push_str(&format!(
                "({} earlier stops were not mailed, to avoid a storm.)\n",
                self.unmailed
            ));
        }
        body.push_str("\nLast lines of its standard error:\n");
        for line in &self.tail {
            body.push_str(&format!("    {line}\n"));
        }
        body
    }
}

/// At most one mail per kind of ending and `MAIL_INTERVAL`, so a crash
/// loop is one mail, not a storm; an invalid configuration is mailed once
/// until picomon runs again.
#[derive(Debug, Default)]
struct Throttle {
    /// The kind of the last mailed ending, and when.
    last: Option<(Kind, Instant)>,
    /// Endings not mailed since the last mail.
    unmailed: u32,
}

impl Throttle {
    /// Whether an ending of `kind` is mailed at `now`; when it is, the
    /// number of endings not mailed before it.
    fn admit(&mut self, kind: Kind, now: Instant) -> Option<u32> {
        let repeated = match self.last {
            Some((last, at)) if last == kind => {
                kind == Kind::Config || now.duration_since(at) < MAIL_INTERVAL
            }
            _ => false,
        };
        if repeated {
            self.unmailed += 1;
            return None;
        }
        self.last = Some((kind, now));
        Some(std::mem::take(&mut self.unmailed))
    }

    /// picomon ticks: a broken configuration is fixed, and its next
    /// breakage deserves a mail again.
    fn ran_fine(&mut self) {
        if matches!(self.last, Some((Kind::Config, _))) {
            self.last = None;
        }
    }
}

/// Why the watchdog signalled picomon to end.
#[derive(Debug, Clone, Copy)]
enum Why {
    Stop,
    Hung(Duration),
}

/// How one run ended.
#[derive(Debug)]
enum Ending {
    Exited(ExitStatus),
    Hung(Duration),
    /// The watchdog was told to stop; the status, unless picomon could not
    /// be made to exit.
    Stopped(Option<ExitStatus>),
    StartFailed(String),
}

impl Ending {
    fn describe(&self) -> String {
        match self {
            Ending::Exited(status) | Ending::Stopped(Some(status)) => describe(status),
            Ending::Stopped(None) => "did not exit".to_string(),
            Ending::Hung(silence) => format!("hung (no tick for {})", human_duration(*silence)),
            Ending::StartFailed(reason) => format!("could not be started: {reason}"),
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// `Start` was asked for; waiting for `Started` or `StartFailed`.
    Starting,
    Running {
        last_beat: Instant,
        ticked: bool,
    },
    /// A signal was sent to end picomon; waiting for its exit.
    Ending {
        why: Why,
        deadline: Instant,
        killed: bool,
    },
    /// picomon exited; waiting for its standard error to close.
    Draining {
        ending: Ending,
        deadline: Instant,
    },
    BackingOff {
        until: Instant,
        wait: Duration,
    },
    Done,
}

/// The watchdog's decisions, one picomon at a time.
#[derive(Debug)]
pub(crate) struct Policy {
    phase: Phase,
    /// SIGTERM or SIGINT came while the watchdog could not act on it at
    /// once (picomon starting, being killed, or its last words awaited):
    /// honoured as soon as the current picomon is gone, never dropped.
    stop: bool,
    backoff: Duration,
    throttle: Throttle,
    hang_timeout: Duration,
    /// The current (or last) picomon.
    pid: u32,
    started: Instant,
    stderr_open: bool,
    tail: Vec<String>,
}

impl Policy {
    /// A policy that starts picomon at once: carry out `begin()` first.
    pub(crate) fn new(hang_timeout: Duration, now: Instant) -> Policy {
        Policy {
            phase: Phase::Starting,
            stop: false,
            backoff: FIRST_BACKOFF,
            throttle: Throttle::default(),
            hang_timeout,
            pid: 0,
            started: now,
            stderr_open: false,
            tail: Vec::new(),
        }
    }

    /// The first actions: read the configuration, start picomon.
    pub(crate) fn begin(&mut self) -> Vec<Action> {
        self.phase = Phase::Starting;
        vec![Action::LoadConfig, Action::Start]
    }

    /// A picomon silent this long is hung (from the configuration).
    pub(crate) fn set_hang_timeout(&mut self, timeout: Duration) {
        self.hang_timeout = timeout;
    }

    /// When to hand in `Input::Timeout` if nothing happens before.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Running { last_beat, .. } => Some(*last_beat + self.hang_timeout),
            Phase::Ending { deadline, .. } | Phase::Draining { deadline, .. } => Some(*deadline),
            Phase::BackingOff { until, .. } => Some(*until),
            Phase::Starting | Phase::Done => None,
        }
    }

    /// Decides what `input`, arriving at `now`, calls for.
    pub(crate) fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let pid = self.pid;
        match (&mut self.phase, input) {
            (Phase::Done, _) => Vec::new(),
            (_, Input::StderrClosed(tail)) => {
                self.tail = tail;
                self.stderr_open = false;
                match std::mem::replace(&mut self.phase, Phase::Done) {
                    Phase::Draining { ending, .. } => self.finish(ending, now),
                    phase => {
                        self.phase = phase;
                        Vec::new()
                    }
                }
            }
            (Phase::Starting, Input::Started { pid }) => {
                self.pid = pid;
                self.started = now;
                self.stderr_open = true;
                self.tail.clear();
                self.phase = Phase::Running {
                    last_beat: now,
                    ticked: false,
                };
                if self.stop {
                    return self.handle(Input::Signal(Signal::Stop), now);
                }
                Vec::new()
            }
            (Phase::Starting, Input::StartFailed(reason)) => {
                let log = Action::Log(Level::Error, format!("cannot start picomon: {reason}"));
                let mut actions = vec![log];
                actions.extend(self.finish(Ending::StartFailed(reason), now));
                actions
            }
            (Phase::Running { last_beat, ticked }, Input::Beat) => {
                *last_beat = now;
                if !*ticked {
                    *ticked = true;
                    self.throttle.ran_fine();
                }
                Vec::new()
            }
            (Phase::Running { .. }, Input::Signal(Signal::Reload)) => {
                vec![Action::Signal(libc::SIGHUP), Action::LoadConfig]
            }
            (Phase::Running { .. }, Input::Signal(Signal::Status)) => {
                vec![Action::Signal(libc::SIGUSR1)]
            }
            (Phase::Running { .. }, Input::Signal(Signal::Stop)) => {
                self.phase = Phase::Ending {
                    why: Why::Stop,
                    deadline: now + STOP_GRACE,
                    killed: false,
                };
                vec![
                    info(format!("stopping picomon (pid {pid})")),
                    Action::Signal(libc::SIGTERM),
                ]
            }
            (Phase::Running { last_beat, .. }, Input::Timeout) => {
                let silence = now.saturating_duration_since(*last_beat);
                if silence < self.hang_timeout {
                    return Vec::new();
                }
                self.phase = Phase::Ending {
                    why: Why::Hung(silence),
                    deadline: now + HANG_KILL_GRACE,
                    killed: false,
                };
                vec![
                    Action::Log(
                        Level::Error,
                        format!(
                            "picomon (pid {pid}) reported no tick for {}: killing it",
                            human_duration(silence)
                        ),
                    ),
                    Action::Signal(libc::SIGTERM),
                ]
            }
            (Phase::Running { .. }, Input::Exited(status)) => {
                self.drain(Ending::Exited(status), now)
            }
            (Phase::Ending { why, .. }, Input::Exited(status)) => {
                let ending = match why {
                    Why::Stop => Ending::Stopped(Some(status)),
                    Why::Hung(silence) => Ending::Hung(*silence),
                };
                self.drain(ending, now)
            }
            (
                Phase::Ending {
                    killed: killed @ false,
                    deadline,
                    why,
                },
                Input::Timeout,
            ) => {
                if now < *deadline {
                    return Vec::new();
                }
                let grace = match why {
                    Why::Stop => STOP_GRACE,
                    Why::Hung(_) => HANG_KILL_GRACE,
                };
                *killed = true;
                *deadline = now + KILL_WAIT;
                vec![
                    Action::Log(
                        Level::Warn,
                        format!(
                            "picomon (pid {pid}) still running after {}: SIGKILL",
                            human_duration(grace)
                        ),
                    ),
                    Action::Signal(libc::SIGKILL),
                ]
            }
            (Phase::Ending { why, deadline, .. }, Input::Timeout) => {
                if now < *deadline {
                    return Vec::new();
                }
                let ending = match why {
                    Why::Stop => Ending::Stopped(None),
                    Why::Hung(silence) => Ending::Hung(*silence),
                };
                let mut actions = vec![Action::Log(
                    Level::Error,
                    format!(
                        "picomon (pid {pid}) did not exit within {} of SIGKILL; going on without it",
                        human_duration(KILL_WAIT)
                    ),
                )];
                actions.extend(self.finish(ending, now));
                actions
            }
            (Phase::Draining { .. }, Input::Timeout) => {
                match std::mem::replace(&mut self.phase, Phase::Done) {
                    Phase::Draining { ending, .. } => self.finish(ending, now),
                    _ => Vec::new(),
                }
            }
            (
                Phase::Starting
                | Phase::Ending {
                    why: Why::Hung(_), ..
                }
                | Phase::Draining { .. },
                Input::Signal(Signal::Stop),
            ) => {
                self.stop = true;
                vec![info(format!(
                    "stop requested: the watchdog stops once picomon (pid {pid}) is gone"
                ))]
            }
            (Phase::BackingOff { .. }, Input::Signal(Signal::Stop)) => {
                self.phase = Phase::Done;
                vec![Action::Exit]
            }
            // SIGHUP restarts at once: a fixed configuration should not wait.
            (Phase::BackingOff { wait, .. }, Input::Signal(Signal::Reload) | Input::Timeout) => {
                self.backoff = (*wait * 2).min(MAX_BACKOFF);
                self.begin()
            }
            _ => Vec::new(),
        }
    }

    /// picomon exited: wait for the end of its standard error, if open.
    fn drain(&mut self, ending: Ending, now: Instant) -> Vec<Action> {
        if !self.stderr_open {
            return self.finish(ending, now);
        }
        self.phase = Phase::Draining {
            ending,
            deadline: now + STDERR_WAIT,
        };
        Vec::new()
    }

    /// One run is over: stop, or mail it and back off.
    fn finish(&mut self, ending: Ending, now: Instant) -> Vec<Action> {
        let pid = self.pid;
        let ran = match ending {
            Ending::StartFailed(_) => None,
            _ => Some(now.saturating_duration_since(self.started)),
        };
        if ran.is_some_and(|ran| ran >= STEADY) {
            self.backoff = FIRST_BACKOFF;
        }
        let mut actions = Vec::new();
        let (kind, what, wait) = match ending {
            Ending::Stopped(status) => {
                let how = match status {
                    Some(status) => describe(&status),
                    None => "did not exit".to_string(),
                };
                self.phase = Phase::Done;
                return vec![
                    info(format!("picomon {how}; watchdog stopping")),
                    Action::Exit,
                ];
            }
            // picomon exits 0 only when told to stop (SIGTERM, or Ctrl-C
            // reaching the whole process group): that is no crash.
            Ending::Exited(status) if status.success() => {
                self.phase = Phase::Done;
                return vec![
                    info("picomon stopped on request (status 0); watchdog stopping".to_string()),
                    Action::Exit,
                ];
            }
            // Asked to stop meanwhile: no restart, and no mail saying
            // picomon is started again.
            ending if self.stop => {
                self.phase = Phase::Done;
                return vec![
                    Action::Log(
                        Level::Error,
                        format!(
                            "picomon (pid {pid}) {}; watchdog stopping as asked, without restart",
                            ending.describe()
                        ),
                    ),
                    Action::Exit,
                ];
            }
            Ending::Exited(status) => {
                actions.push(Action::Log(
                    Level::Error,
                    format!("picomon (pid {pid}) {}", describe(&status)),
                ));
                if status.code() == Some(i32::from(picomon::EX_CONFIG)) {
                    let what = "exited with status 78: its configuration is invalid (see the lines below); \
                                it is tried again every 5 minutes, and this is not mailed again until it runs";
                    (Kind::Config, what.to_string(), MAX_BACKOFF)
                } else {
                    (Kind::Exited(status), describe(&status), self.backoff)
                }
            }
            Ending::Hung(silence) => {
                let what = format!(
                    "hung: no tick reported for {}, so it was killed",
                    human_duration(silence)
                );
                (Kind::Hung, what, self.backoff)
            }
            Ending::StartFailed(reason) => (
                Kind::StartFailure,
                format!("could not be started: {reason}"),
                self.backoff,
            ),
        };
        match self.throttle.admit(kind, now) {
            Some(unmailed) => actions.push(Action::Mail(Notice {
                what,
                ran,
                next: wait,
                unmailed,
                tail: std::mem::take(&mut self.tail),
            })),
            None => actions.push(info(format!(
                "not mailing this again so soon ({} not mailed)",
                self.throttle.unmailed
            ))),
        }
        actions.push(Action::Log(
            Level::Warn,
            format!("restarting picomon in {}", human_duration(wait)),
        ));
        self.phase = Phase::BackingOff {
            until: now + wait,
            wait,
        };
        actions
    }
}

fn info(text: String) -> Action {
    Action::Log(Level::Info, text)
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

/// "exited with status 1", "was killed by SIGKILL (9)".
fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by {}", signal_name(sig)),
        (None, None) => "ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy on a clock of its own: `at(s)` is `s` seconds after start.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, secs: f64) -> Instant {
            self.0 + Duration::from_secs_f64(secs)
        }
    }

    fn exit(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed(sig: i32) -> ExitStatus {
        ExitStatus::from_raw(sig)
    }

    /// A policy whose picomon (pid 42) was started at 0 s.
    #[track_caller]
    fn running() -> (Policy, Clock) {
        let clock = Clock(Instant::now());
        let mut policy = Policy::new(Duration::from_secs(30), clock.at(0.0));
        assert_eq!(policy.begin(), [Action::LoadConfig, Action::Start]);
        assert_eq!(policy.handle(Input::Started { pid: 42 }, clock.at(0.0)), []);
        (policy, clock)
    }

    /// Has picomon exit with `status` at `secs`, its standard error closing
    /// with the line "last words"; the actions.
    #[track_caller]
    fn end(policy: &mut Policy, clock: &Clock, status: ExitStatus, secs: f64) -> Vec<Action> {
        assert_eq!(policy.handle(Input::Exited(status), clock.at(secs)), []);
        assert_eq!(policy.deadline(), Some(clock.at(secs) + STDERR_WAIT));
        policy.handle(
            Input::StderrClosed(vec!["last words".to_string()]),
            clock.at(secs),
        )
    }

    fn mails(actions: &[Action]) -> Vec<&Notice> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Mail(notice) => Some(notice),
                _ => None,
            })
            .collect()
    }

    #[track_caller]
    fn logged(actions: &[Action], text: &str) -> bool {
        actions
            .iter()
            .any(|a| matches!(a, Action::Log(_, line) if line.contains(text)))
    }

    /// Waits out the back-off: the actions that start picomon again, at
    /// the deadline, and its start.
    #[track_caller]
    fn restart(policy: &mut Policy, pid: u32) -> Instant {
        let at = policy.deadline().expect("a back-off deadline");
        assert_eq!(
            policy.handle(Input::Timeout, at),
            [Action::LoadConfig, Action::Start]
        );
        assert_eq!(policy.handle(Input::Started { pid }, at), []);
        at
    }

    #[test]
    fn a_crash_is_mailed_with_the_last_lines_and_restarted_after_1_s() {
        let (mut policy, clock) = running();
        let actions = end(&mut policy, &clock, killed(libc::SIGKILL), 12.0);
        assert_eq!(
            mails(&actions),
            [&Notice {
                what: "was killed by SIGKILL (9)".to_string(),
                ran: Some(Duration::from_secs(12)),
                next: Duration::from_secs(1),
                unmailed: 0,
                tail: vec!["last words".to_string()],
            }]
        );
        assert!(logged(
            &actions,
            "picomon (pid 42) was killed by SIGKILL (9)"
        ));
        assert!(logged(&actions, "restarting picomon in 1s"));
        assert_eq!(policy.deadline(), Some(clock.at(13.0)));
    }

    #[test]
    fn the_end_of_stderr_before_the_exit_is_not_waited_for_again() {
        let (mut policy, clock) = running();
        let tail = vec!["bye".to_string()];
        assert_eq!(policy.handle(Input::StderrClosed(tail), clock.at(1.0)), []);
        let actions = policy.handle(Input::Exited(exit(1)), clock.at(1.0));
        assert_eq!(mails(&actions)[0].tail, ["bye"]);
    }

    #[test]
    fn a_stderr_held_open_delays_the_mail_by_2_s_at_most() {
        let (mut policy, clock) = running();
        assert_eq!(policy.handle(Input::Exited(exit(1)), clock.at(1.0)), []);
        let actions = policy.handle(Input::Timeout, clock.at(3.0));
        assert_eq!(mails(&actions).len(), 1);
    }

    #[test]
    fn a_crash_loop_backs_off_1_2_4_8_up_to_5_minutes_and_is_mailed_once() {
        let (mut policy, clock) = running();
        let mut waits = Vec::new();
        let mut mailed = 0;
        let mut now = 0.0;
        for pid in 43..54 {
            let actions = end(&mut policy, &clock, exit(1), now + 0.5);
            mailed += mails(&actions).len();
            let at = restart(&mut policy, pid);
            waits.push((at - clock.at(now + 0.5)).as_secs());
            now = (at - clock.at(0.0)).as_secs_f64();
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(mailed, 1);
        // 15 minutes after the first mail, the loop is mailed again, with
        // the count of endings not mailed meanwhile.
        let actions = end(&mut policy, &clock, exit(1), now + 0.5);
        assert_eq!(mails(&actions)[0].unmailed, 10);
    }

    #[test]
    fn a_different_ending_is_mailed_even_within_15_minutes() {
        let (mut policy, clock) = running();
        assert_eq!(mails(&end(&mut policy, &clock, exit(1), 1.0)).len(), 1);
        restart(&mut policy, 43);
        let actions = end(&mut policy, &clock, killed(libc::SIGSEGV), 3.0);
        assert_eq!(mails(&actions)[0].what, "was killed by SIGSEGV (11)");
    }

    #[test]
    fn ten_minutes_of_steady_running_resets_the_back_off() {
        let (mut policy, clock) = running();
        end(&mut policy, &clock, exit(1), 0.5);
        restart(&mut policy, 43);
        end(&mut policy, &clock, exit(1), 2.0);
        let at = restart(&mut policy, 44);
        let later = (at - clock.at(0.0)).as_secs_f64() + 600.0;
        let actions = end(&mut policy, &clock, exit(1), later);
        assert!(logged(&actions, "restarting picomon in 1s"), "{actions:?}");
    }

    #[test]
    fn an_invalid_configuration_is_mailed_once_until_picomon_runs_and_retried_every_5_minutes() {
        let (mut policy, clock) = running();
        let actions = end(&mut policy, &clock, exit(78), 0.1);
        assert!(mails(&actions)[0].what.starts_with("exited with status 78"));
        assert_eq!(mails(&actions)[0].next, MAX_BACKOFF);
        let at = restart(&mut policy, 43);
        // Even after 15 minutes, the same broken configuration is not
        // mailed again...
        let later = (at - clock.at(0.0)).as_secs_f64() + 1000.0;
        assert_eq!(
            mails(&end(&mut policy, &clock, exit(78), later)),
            [] as [&Notice; 0]
        );
        // ...until picomon has run a tick.
        let at = restart(&mut policy, 44);
        assert_eq!(policy.handle(Input::Beat, at), []);
        let actions = end(
            &mut policy,
            &clock,
            exit(78),
            (at - clock.at(0.0)).as_secs_f64(),
        );
        assert_eq!(mails(&actions).len(), 1);
    }

    #[test]
    fn a_silent_picomon_is_terminated_then_killed_and_mailed_as_hung() {
        let (mut policy, clock) = running();
        assert_eq!(policy.handle(Input::Beat, clock.at(10.0)), []);
        assert_eq!(policy.deadline(), Some(clock.at(40.0)));
        // An early wake-up is no hang.
        assert_eq!(policy.handle(Input::Timeout, clock.at(39.0)), []);
        let actions = policy.handle(Input::Timeout, clock.at(40.0));
        assert!(logged(&actions, "reported no tick for 30s: killing it"));
        assert_eq!(actions.last(), Some(&Action::Signal(libc::SIGTERM)));
        assert_eq!(policy.deadline(), Some(clock.at(45.0)));
        let actions = policy.handle(Input::Timeout, clock.at(45.0));
        assert_eq!(actions.last(), Some(&Action::Signal(libc::SIGKILL)));
        let actions = end(&mut policy, &clock, killed(libc::SIGKILL), 45.1);
        assert_eq!(
            mails(&actions)[0].what,
            "hung: no tick reported for 30s, so it was killed"
        );
        assert!(logged(&actions, "restarting picomon in 1s"));
    }

    #[test]
    fn sigterm_stops_picomon_and_the_watchdog_without_mail() {
        let (mut policy, clock) = running();
        let actions = policy.handle(Input::Signal(Signal::Stop), clock.at(5.0));
        assert_eq!(actions.last(), Some(&Action::Signal(libc::SIGTERM)));
        let actions = end(&mut policy, &clock, exit(0), 5.5);
        assert_eq!(actions.last(), Some(&Action::Exit));
        assert_eq!(mails(&actions), [] as [&Notice; 0]);
    }

    #[test]
    fn picomon_exiting_0_by_itself_stops_the_watchdog() {
        let (mut policy, clock) = running();
        let actions = end(&mut policy, &clock, exit(0), 5.0);
        assert_eq!(actions.last(), Some(&Action::Exit));
        assert_eq!(mails(&actions), [] as [&Notice; 0]);
    }

    #[test]
    fn sighup_and_sigusr1_are_forwarded_and_sighup_reloads() {
        let (mut policy, clock) = running();
        assert_eq!(
            policy.handle(Input::Signal(Signal::Reload), clock.at(1.0)),
            [Action::Signal(libc::SIGHUP), Action::LoadConfig]
        );
        assert_eq!(
            policy.handle(Input::Signal(Signal::Status), clock.at(1.0)),
            [Action::Signal(libc::SIGUSR1)]
        );
    }

    #[test]
    fn sighup_during_the_back_off_restarts_at_once() {
        let (mut policy, clock) = running();
        end(&mut policy, &clock, exit(78), 1.0);
        assert_eq!(
            policy.handle(Input::Signal(Signal::Reload), clock.at(2.0)),
            [Action::LoadConfig, Action::Start]
        );
    }

    #[test]
    fn sigterm_during_the_back_off_stops_the_watchdog() {
        let (mut policy, clock) = running();
        end(&mut policy, &clock, exit(1), 1.0);
        assert_eq!(
            policy.handle(Input::Signal(Signal::Stop), clock.at(1.5)),
            [Action::Exit]
        );
    }

    #[test]
    fn a_start_failure_is_mailed_and_retried() {
        let clock = Clock(Instant::now());
        let mut policy = Policy::new(Duration::from_secs(30), clock.at(0.0));
        policy.begin();
        let actions = policy.handle(
            Input::StartFailed("picomon: No such file or directory".to_string()),
            clock.at(0.0),
        );
        let notice = mails(&actions)[0];
        assert_eq!(
            notice.what,
            "could not be started: picomon: No such file or directory"
        );
        assert_eq!(notice.ran, None);
        assert_eq!(policy.deadline(), Some(clock.at(1.0)));
    }

    #[test]
    fn sigterm_while_a_hung_picomon_is_killed_stops_the_watchdog_without_restart_or_mail() {
        let (mut policy, clock) = running();
        policy.handle(Input::Timeout, clock.at(30.0));
        let actions = policy.handle(Input::Signal(Signal::Stop), clock.at(31.0));
        assert!(logged(&actions, "stop requested"), "{actions:?}");
        let actions = policy.handle(Input::Timeout, clock.at(35.0));
        assert_eq!(actions.last(), Some(&Action::Signal(libc::SIGKILL)));
        let actions = end(&mut policy, &clock, killed(libc::SIGKILL), 35.1);
        assert_eq!(actions.last(), Some(&Action::Exit), "{actions:?}");
        assert_eq!(mails(&actions), [] as [&Notice; 0]);
    }

    #[test]
    fn sigterm_while_waiting_for_the_last_words_of_a_crashed_picomon_stops_the_watchdog() {
        let (mut policy, clock) = running();
        assert_eq!(policy.handle(Input::Exited(exit(1)), clock.at(1.0)), []);
        policy.handle(Input::Signal(Signal::Stop), clock.at(1.5));
        let actions = policy.handle(Input::Timeout, clock.at(3.0));
        assert_eq!(actions.last(), Some(&Action::Exit), "{actions:?}");
    }

    #[test]
    fn sigterm_while_picomon_starts_stops_it_once_started() {
        let clock = Clock(Instant::now());
        let mut policy = Policy::new(Duration::from_secs(30), clock.at(0.0));
        policy.begin();
        policy.handle(Input::Signal(Signal::Stop), clock.at(0.0));
        let actions = policy.handle(Input::Started { pid: 42 }, clock.at(0.1));
        assert_eq!(actions.last(), Some(&Action::Signal(libc::SIGTERM)));
    }

    #[test]
    fn a_stopping_picomon_gets_30_s_to_flush_its_mail_before_sigkill() {
        let (mut policy, clock) = running();
        policy.handle(Input::Signal(Signal::Stop), clock.at(5.0));
        assert_eq!(policy.deadline(), Some(clock.at(35.0)));
        assert_eq!(policy.handle(Input::Timeout, clock.at(34.9)), []);
        let actions = policy.handle(Input::Timeout, clock.at(35.0));
        assert!(logged(&actions, "still running after 30s: SIGKILL"));
        assert_eq!(actions.last(), Some(&Action::Signal(libc::SIGKILL)));
    }

    #[test]
    fn the_mail_says_what_ended_how_long_it_ran_and_quotes_stderr() {
        let notice = Notice {
            what: "exited with status 1".to_string(),
            ran: Some(Duration::from_secs(185)),
            next: Duration::from_secs(4),
            unmailed: 2,
            tail: vec!["picomon: error: boom".to_string()],
        };
        assert_eq!(
            notice.body("mon.example.org"),
            "picomon on mon.example.org exited with status 1, after running 3m 05s.\n\
             It is started again in 4s.\n\
             (2 earlier stops were not mailed, to avoid a storm.)\n\
             \n\
             Last lines of its standard error:\n    picomon: error: boom\n"
        );
    }
}
