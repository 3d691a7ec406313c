//! The daemon loop driven by a script instead of plugins (`Plugins`): what
//! it starts at each tick, and what it does with the results it is given,
//! tested in milliseconds without spawning anything.

use std::sync::Mutex;

use super::*;
use crate::check::State;

/// Plugins that never run: the loop's submissions are written down, and
/// the test hands back the results it wants.
#[derive(Default)]
struct Script {
    started: Arc<Mutex<Vec<String>>>,
    /// What `queued` says: set by the test.
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl Plugins for Script {
    fn submit(&self, instance: Arc<Instance>, _reply: &Sender<Msg>) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        started.push(instance.id.clone());
    }

    fn set_parallel(&mut self, _max: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn queued(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct Scripted {
    daemon: Daemon,
    started: Arc<Mutex<Vec<String>>>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Scripted {
    #[track_caller]
    fn new(toml: &str) -> Scripted {
        let dir = tempfile::tempdir().expect("temp dir");
        let main = dir.path().join("picomon.toml");
        std::fs::write(&main, toml).expect("write config");
        let config = Config::load(&main).unwrap_or_else(|e| panic!("config: {e}"));
        let script = Script::default();
        let started = Arc::clone(&script.started);
        let queued = Arc::clone(&script.queued);
        let daemon = Daemon::with_plugins(
            config,
            main,
            Arc::new(Runner::default()),
            crossbeam_channel::unbounded(),
            None,
            Box::new(script),
        )
        .unwrap_or_else(|e| panic!("daemon: {e}"));
        Scripted {
            daemon,
            started,
            queued,
            _dir: dir,
        }
    }

    /// Runs one tick; returns the instances it started, in the order the
    /// plugin loop gets them.
    fn tick(&mut self) -> Vec<String> {
        self.daemon.tick();
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *started)
    }

    fn ok(&mut self, id: &str) {
        let result = RunResult {
            state: State::Ok,
            exit_code: Some(0),
            summary: "OK".into(),
            perfdata: String::new(),
            details: String::new(),
            duration: Duration::from_millis(1),
            started: SystemTime::now(),
        };
        self.daemon.finished(id, result, Leftovers::default());
    }
}

const THREE: &str = r#"
base_tick = 1

[checks.a]
type = "command"
command = ["/bin/true"]

[checks.b]
type = "command"
command = ["/bin/true"]

[checks.c]
type = "command"
command = ["/bin/true"]
every = 2
"#;

#[test]
fn each_check_runs_at_its_own_interval_and_never_twice_at_once() {
    let mut s = Scripted::new(THREE);
    assert_eq!(s.tick(), ["a", "b", "c"]);
    s.ok("a");
    s.ok("c");
    // b is still running: not started again; c runs every other tick.
    assert_eq!(s.tick(), ["a"]);
    s.ok("a");
    s.ok("b");
    // The one whose last run ended first goes first.
    assert_eq!(s.tick(), ["c", "a", "b"]);
}

#[test]
fn an_overloaded_daemon_runs_every_check_at_the_same_reduced_rate() {
    let mut toml = String::from("base_tick = 1\n");
    // A fifth of them run every other tick when the machine keeps up.
    for n in 0..50 {
        let every = if n % 5 == 0 { 2 } else { 1 };
        // At the margin, as THREE is: the text is the file's.
        toml.push_str(&format!(
            r#"
[checks.c{n:02}]
type = "command"
command = ["/bin/true"]
every = {every}
"#
        ));
    }
    let mut s = Scripted::new(&toml);
    // A plugin loop that can run 12 a second, in the order runs came in.
    let mut queue: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut runs: BTreeMap<String, u32> = BTreeMap::new();
    for _second in 0..100 {
        s.queued
            .store(queue.len(), std::sync::atomic::Ordering::Relaxed);
        for id in s.tick() {
            assert!(!queue.contains(&id), "{id} started twice at once");
            queue.push_back(id);
        }
        for _ in 0..12 {
            let Some(id) = queue.pop_front() else { break };
            *runs.entry(id.clone()).or_default() += 1;
            s.ok(&id);
        }
    }
    assert_eq!(runs.len(), 50, "a check was starved: {runs:?}");
    let (least, most) = (runs.values().min(), runs.values().max());
    assert!(
        most.zip(least).is_some_and(|(m, l)| m - l <= 1),
        "uneven: {runs:?}"
    );
}

#[test]
fn a_push_check_never_reaches_the_plugin_loop_and_a_missed_period_is_a_failed_run() {
    let mut s = Scripted::new(
        "base_tick = 1\n[checks.a]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n\
         [checks.backup]\ntype = \"push\"\nperiod = 3600\n",
    );
    assert_eq!(s.tick(), ["a"]);
    s.ok("a");
    assert!(s
        .daemon
        .slots
        .get("backup")
        .expect("the backup slot")
        .state
        .push
        .as_ref()
        .is_some_and(|p| p.watched.is_some()));
    // Watched an hour and a half ago, never pushed: missed at its next
    // evaluation, failing at once (retry 0 for push checks).
    let long_ago = SystemTime::now() - Duration::from_secs(5400);
    if let Some(slot) = s.daemon.slots.get_mut("backup") {
        slot.state.push.get_or_insert_with(Default::default).watched = Some(long_ago);
    }
    assert_eq!(s.tick(), ["a"]);
    let state = &s.daemon.slots.get("backup").expect("the backup slot").state;
    assert!(state.failing, "{state:?}");
    let said = state.last.as_ref().map(|r| r.summary.clone());
    assert!(
        said.as_deref()
            .is_some_and(|t| t.starts_with("no push for 1h 30m (none since")),
        "{said:?}"
    );
    // A push recovers it; a push for another name is refused.
    let got = s.daemon.pushed(
        "backup",
        crate::push::Report::Done {
            exit: 0,
            output: "BACKUP OK".into(),
        },
    );
    assert_eq!(got, Ok("OK recorded: BACKUP OK".to_string()));
    assert!(
        !s.daemon
            .slots
            .get("backup")
            .expect("the backup slot")
            .state
            .failing
    );
    assert!(s.daemon.pushed("a", crate::push::Report::Start).is_err());
    assert!(s
        .daemon
        .pushed("nightly", crate::push::Report::Start)
        .is_err());
}

/// The mails queued in `state_dir/outbox` (the SMTP server is never
/// reached): each one's recipients and body.
fn spooled(state_dir: &std::path::Path) -> Vec<(Vec<String>, String)> {
    let mut mails = Vec::new();
    for entry in std::fs::read_dir(state_dir.join("outbox")).expect("the spool") {
        let path = entry.expect("a spool entry").path();
        if path.extension() != Some(std::ffi::OsStr::new("json")) {
            continue;
        }
        let mail: Mail = serde_json::from_slice(&std::fs::read(&path).expect("read a mail"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        mails.push((mail.to, mail.body));
    }
    mails
}

#[test]
fn a_check_removed_while_failing_closes_its_thread_to_its_own_contacts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let config = |checks: &str| {
        format!(
            "base_tick = 1\ndefault_retry = 0\nstate_dir = \"{}\"\n\
             [emails]\nto = [\"ops@example.org\"]\nfrom = \"picomon@example.org\"\n\
             smtp_host = \"127.0.0.1:9\"\nsmtp_retry_timeout = 3600\n\
             [contacts.web]\nto = [\"web@example.org\"]\n\
             [checks.b]\ntype = \"command\"\ncommand = [\"/bin/true\"]\n{checks}",
            state.display()
        )
    };
    let mut s = Scripted::new(&config(
        "[checks.a]\ntype = \"command\"\ncommand = [\"/bin/true\"]\ncontacts = [\"web\"]\n",
    ));
    assert_eq!(s.tick(), ["a", "b"]);
    s.ok("b");
    let failed = RunResult {
        state: State::Critical,
        exit_code: Some(2),
        summary: "down".into(),
        perfdata: String::new(),
        details: String::new(),
        duration: Duration::from_millis(1),
        started: SystemTime::now(),
    };
    s.daemon.finished("a", failed, Leftovers::default());
    let problem = spooled(&state);
    assert_eq!(problem.len(), 1, "{problem:?}");
    assert_eq!(problem[0].0, ["web@example.org"], "{problem:?}");
    // Check a leaves the configuration while failing: its thread is
    // closed where its Problem went, not to emails.to.
    let main = s.daemon.main_file.clone();
    std::fs::write(&main, config("")).expect("write config");
    s.daemon.reload(Config::load(&main));
    let closed: Vec<_> = spooled(&state)
        .into_iter()
        .filter(|(_, body)| body.contains("no longer monitored"))
        .collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].0, ["web@example.org"], "{closed:?}");
}

#[test]
fn a_push_to_a_push_check_switched_off_says_it_is_switched_off() {
    let mut s = Scripted::new(
        "base_tick = 1\n[checks.backup]\ntype = \"push\"\nperiod = 3600\nenabled = false\n",
    );
    let got = s.daemon.pushed("backup", crate::push::Report::Start);
    assert_eq!(
        got,
        Err("backup is switched off (enabled = false)".to_string())
    );
}
