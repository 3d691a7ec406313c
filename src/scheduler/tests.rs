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
}

impl Plugins for Script {
    fn submit(&self, instance: Arc<Instance>, _reply: &Sender<Msg>) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        started.push(instance.id.clone());
    }

    fn set_parallel(&mut self, _max: usize) -> std::io::Result<()> {
        Ok(())
    }
}

struct Scripted {
    daemon: Daemon,
    started: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Scripted {
    fn new(toml: &str) -> Scripted {
        let dir = tempfile::tempdir().expect("temp dir");
        let main = dir.path().join("picomon.toml");
        std::fs::write(&main, toml).expect("write config");
        let config = Config::load(&main).unwrap_or_else(|e| panic!("config: {e}"));
        let script = Script::default();
        let started = Arc::clone(&script.started);
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
            _dir: dir,
        }
    }

    /// Runs one tick; returns the instances it started, in order.
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
    assert_eq!(s.tick(), ["a", "b", "c"]);
}
