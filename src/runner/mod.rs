//! Runs plugins, each in a process group of its own (`spawn`), all of
//! them watched from one thread (`watch`: one epoll over every run's
//! pidfd and pipes), their output read as it comes and capped
//! (`capture`), and what they leave behind killed (`leftovers`).
//!
//! Plugins get a clean environment: no `PICOMON_*` configuration or
//! secret reaches them.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sys;

mod capture;
mod leftovers;
mod order;
mod running;
mod spawn;
mod spawners;
mod watch;

pub(crate) use watch::Watch;

/// How much of each output stream is kept; the rest is read and dropped so
/// that a chatty plugin never blocks on a full pipe.
pub(crate) const OUTPUT_CAP: usize = 64 * 1024;

#[derive(Debug)]
pub enum RunError {
    /// The plugin could not be started (missing, not executable, …).
    Spawn(io::Error),
    /// The plugin started but could not be watched or reaped.
    Wait(io::Error),
}

/// What to run: a watch's payload says it, so that a spawner thread
/// reads it where it lies, and hands it back with the run.
pub(crate) trait Launch: Send + 'static {
    fn argv(&self) -> &[OsString];
    /// Added to the plugin environment.
    fn env(&self) -> &[(OsString, OsString)];
    fn timeout(&self) -> Duration;
}

/// One run of `Runner::run`.
struct OneRun {
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl Launch for OneRun {
    fn argv(&self) -> &[OsString] {
        &self.argv
    }
    fn env(&self) -> &[(OsString, OsString)] {
        &self.env
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A plugin run that ended, by itself or killed at its timeout.
#[derive(Debug, Clone)]
pub struct Finished {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub duration: Duration,
    /// Processes that escaped the plugin's group and outlived it, killed
    /// after the run: `PID (NAME)` each.
    pub escaped: Vec<String>,
    /// A process outside the group kept the output pipes open after the
    /// plugin exited; picomon stopped reading them.
    pub output_held_open: bool,
}

/// Runs plugins and remembers their process groups, so that stopping
/// picomon can kill every plugin still running.
#[derive(Debug, Default)]
pub(crate) struct Runner {
    groups: Mutex<HashSet<i32>>,
    stopping: AtomicBool,
    /// The environment every plugin gets, before its check's own `env`.
    base_env: Vec<(OsString, OsString)>,
    /// `/dev/null`, opened once: each plugin's stdin is a copy of it (a
    /// `dup`), where opening it again for every run was the dearest
    /// system call of a spawn after the spawn itself.
    null: Option<std::fs::File>,
}

/// What of picomon's own environment a plugin sees: where programs are,
/// the language and time zone of their messages, and the CAs to trust
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`: the built-in https check trusts what
/// picomon's Alertmanager notifier does). Nothing else, above all no
/// `PICOMON_*` variable (configuration and secrets).
fn plugin_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            ["PATH", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR"].contains(&name.as_ref())
                || name.starts_with("LC_")
        })
        .collect()
}

impl Runner {
    /// A runner for this process, which becomes the subreaper of every
    /// plugin's leftovers.
    ///
    /// Made on the main thread before any other thread starts, it blocks
    /// SIGCHLD there, so that every thread started afterwards has it
    /// blocked but those that start plugins (`spawn`).
    /// SIGCHLD is ignored, and the kernel drops an ignored signal unless
    /// the thread it is sent to (the plugin's parent) blocks it; but a spawn
    /// blocks every signal for a moment, and a plugin that ended just
    /// then had its SIGCHLD handed to some idle thread, waking it for
    /// nothing: about once per run. Now it waits for the plugins' thread,
    /// which drops it as soon as its spawn is over.
    pub(crate) fn new() -> Runner {
        if let Err(e) = sys::become_child_subreaper() {
            log::warn!("cannot become the reaper of plugins' leftovers: {e}");
        }
        if let Err(e) = sys::block_sigchld(true) {
            log::warn!("cannot block SIGCHLD (idle threads will wake as plugins end): {e}");
        }
        let null = match std::fs::File::open("/dev/null") {
            Ok(null) => Some(null),
            Err(e) => {
                log::warn!("cannot open /dev/null once for all plugins (each run opens it): {e}");
                None
            }
        };
        Runner {
            base_env: plugin_env(),
            null,
            ..Runner::default()
        }
    }

    /// Kills every running plugin group and refuses new runs.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        for &pgid in groups.iter() {
            sys::kill_group(pgid);
        }
    }

    fn register(&self, pgid: i32, on: bool) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            groups.insert(pgid);
        } else {
            groups.remove(&pgid);
        }
    }

    /// Runs `argv` (no shell) with stdin closed and the plugin environment
    /// plus `env`, kills its process group when it exits or at `timeout`,
    /// and returns what it printed. Blocks; many runs at once go through a
    /// `Watch`.
    pub(crate) fn run(
        self: &Arc<Self>,
        argv: &[OsString],
        timeout: Duration,
        env: &[(OsString, OsString)],
    ) -> Result<Finished, RunError> {
        let mut watch = Watch::new(Arc::clone(self)).map_err(RunError::Wait)?;
        watch.start(OneRun {
            argv: argv.to_vec(),
            env: env.to_vec(),
            timeout,
        });
        let mut done = Vec::with_capacity(1);
        loop {
            watch.turn(&mut done).map_err(RunError::Wait)?;
            if let Some((_, finished)) = done.pop() {
                return finished;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Orphans go to the process's main thread and every run's leftovers
    /// scan kills them: runs of concurrent tests would kill each other's.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_plugin_starts_with_no_signal_blocked_though_picomon_blocks_sigchld() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let run = runner.run(
            &argv(&["/bin/grep", "^SigBlk", "/proc/self/status"]),
            Duration::from_secs(10),
            &[],
        );
        let run = run.map_err(|e| format!("{e:?}"));
        let out = run.map(|f| String::from_utf8_lossy(&f.stdout).into_owned());
        assert_eq!(out.as_deref(), Ok("SigBlk:\t0000000000000000\n"));
    }

    fn stdout_of(run: Result<Finished, RunError>) -> Result<String, String> {
        run.map(|f| String::from_utf8_lossy(&f.stdout).into_owned())
            .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn a_plugin_gets_sigpipe_back_though_picomon_ignores_it() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let run = runner.run(
            &argv(&["/bin/grep", "^SigIgn", "/proc/self/status"]),
            Duration::from_secs(10),
            &[],
        );
        let out = stdout_of(run).expect("grep runs");
        let ignored = out.trim().trim_start_matches("SigIgn:").trim();
        let ignored = u64::from_str_radix(ignored, 16).expect("a hex mask");
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn a_plugin_runs_as_leader_of_its_own_group_with_stdin_from_dev_null() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let run = runner.run(
            &argv(&[
                "/bin/sh",
                "-c",
                "echo $$ $(cut -d' ' -f5 /proc/$$/stat) $(readlink /proc/$$/fd/0)",
            ]),
            Duration::from_secs(10),
            &[],
        );
        let out = stdout_of(run).expect("sh runs");
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words.len(), 3, "{out}");
        assert_eq!(words[0], words[1], "pid and process group: {out}");
        assert_eq!(words[2], "/dev/null", "{out}");
    }

    #[test]
    fn a_program_is_looked_for_in_the_plugin_path_and_the_last_value_of_a_variable_wins() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("temp dir");
        let (first, second) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&first, &second] {
            std::fs::create_dir(d).expect("mkdir");
        }
        // Found first but not executable: skipped, as execvp does.
        std::fs::write(first.join("hello"), "#!/bin/sh\necho wrong\n").expect("write");
        let script = second.join("hello");
        std::fs::write(&script, "#!/bin/sh\necho \"$GREETING\"\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let path = format!("/nonexistent:{}:{}", first.display(), second.display());
        let env = [
            (OsString::from("GREETING"), OsString::from("first")),
            (OsString::from("PATH"), OsString::from(path)),
            (OsString::from("GREETING"), OsString::from("hello")),
        ];
        let runner = Arc::new(Runner::new());
        let run = runner.run(&argv(&["hello"]), Duration::from_secs(10), &env);
        assert_eq!(stdout_of(run), Ok("hello\n".to_string()));
    }

    #[test]
    fn a_missing_or_unexecutable_program_is_an_error_that_says_which() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").expect("write");
        let runner = Arc::new(Runner::new());
        let timeout = Duration::from_secs(10);
        let missing = runner.run(&argv(&["/nonexistent/check_x"]), timeout, &[]);
        assert!(
            matches!(&missing, Err(RunError::Spawn(e)) if e.kind() == io::ErrorKind::NotFound),
            "{missing:?}"
        );
        let plain = runner.run(&[plain.into_os_string()], timeout, &[]);
        assert!(
            matches!(&plain, Err(RunError::Spawn(e)) if e.kind() == io::ErrorKind::PermissionDenied),
            "{plain:?}"
        );
        let nul = runner.run(&argv(&["/bin/echo", "a\0b"]), timeout, &[]);
        assert!(matches!(&nul, Err(RunError::Spawn(_))), "{nul:?}");
        // Nothing was left unreaped by the failures.
        assert_eq!(
            stdout_of(runner.run(&argv(&["/bin/echo", "ok"]), timeout, &[])),
            Ok("ok\n".to_string())
        );
    }

    #[test]
    fn a_process_outside_the_group_holding_the_output_is_given_up_on_and_killed() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        let started = Instant::now();
        let run = runner.run(
            // The plugin waits until its child has left the group (its
            // session id is its own pid), or killing the group at its
            // exit could catch it before it escapes.
            &argv(&[
                "/bin/sh",
                "-c",
                "setsid sleep 30 & until [ \"$(cut -d' ' -f6 /proc/$!/stat)\" = $! ]; do :; done; echo held",
            ]),
            Duration::from_secs(20),
            &[],
        );
        let took = started.elapsed();
        let Ok(finished) = run else {
            panic!("run failed: {run:?}")
        };
        assert!(finished.output_held_open, "{finished:?}");
        assert_eq!(finished.stdout, b"held\n");
        assert_eq!(finished.exit_code, Some(0));
        assert!(took < Duration::from_secs(10), "waited {took:?}");
        assert!(
            finished.escaped.iter().any(|p| p.ends_with("(sleep)")),
            "{finished:?}"
        );
    }

    /// A run of the tests, numbered to tell which came back.
    struct Numbered(i32, OneRun);

    impl Launch for Numbered {
        fn argv(&self) -> &[OsString] {
            &self.1.argv
        }
        fn env(&self) -> &[(OsString, OsString)] {
            &self.1.env
        }
        fn timeout(&self) -> Duration {
            self.1.timeout
        }
    }

    fn numbered(n: i32, words: &[&str], timeout: Duration) -> Numbered {
        Numbered(
            n,
            OneRun {
                argv: argv(words),
                env: Vec::new(),
                timeout,
            },
        )
    }

    #[test]
    fn runs_in_one_watch_end_each_with_their_own_output_and_timeout() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        runs_in_one_watch(Watch::new(Arc::clone(&runner)));
    }

    #[test]
    fn runs_spawned_by_spawner_threads_end_each_with_their_own_output_and_timeout() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let runner = Arc::new(Runner::new());
        runs_in_one_watch(Watch::with_spawners(runner, 3));
    }

    fn runs_in_one_watch(watch: io::Result<Watch<Numbered>>) {
        let mut watch = watch.unwrap_or_else(|e| panic!("epoll: {e}"));
        for n in 0..20 {
            let script = format!("echo out {n}; echo err {n} >&2; exit {}", n % 4);
            let words = ["/bin/sh", "-c", &script];
            watch.start(numbered(n, &words, Duration::from_secs(20)));
        }
        let slow = ["/bin/sh", "-c", "echo slow; exec sleep 30"];
        watch.start(numbered(99, &slow, Duration::from_millis(300)));
        let missing = ["/nonexistent/plugin"];
        watch.start(numbered(100, &missing, Duration::from_secs(1)));
        // Whichever thread spawned it, a plugin starts with no signal blocked.
        let mask = ["/bin/grep", "^SigBlk", "/proc/self/status"];
        watch.start(numbered(101, &mask, Duration::from_secs(20)));
        let started = Instant::now();
        let mut done = Vec::new();
        while !watch.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(20), "stuck");
            watch
                .turn(&mut done)
                .unwrap_or_else(|e| panic!("epoll_wait: {e}"));
        }
        assert_eq!(done.len(), 23);
        for (Numbered(n, _), run) in done {
            match (n, run) {
                (100, Err(RunError::Spawn(_))) => {}
                (101, Ok(f)) => assert_eq!(f.stdout, b"SigBlk:\t0000000000000000\n"),
                (99, Ok(f)) => {
                    assert!(f.timed_out && f.exit_code.is_none(), "{f:?}");
                    assert_eq!(f.stdout, b"slow\n");
                    assert!(f.duration < Duration::from_secs(10), "{f:?}");
                }
                (n, Ok(f)) if n < 20 => {
                    assert_eq!(f.stdout, format!("out {n}\n").as_bytes());
                    assert_eq!(f.stderr, format!("err {n}\n").as_bytes());
                    assert_eq!(f.exit_code, Some(n % 4));
                    assert!(!f.timed_out && !f.output_held_open, "{f:?}");
                }
                (n, run) => panic!("run {n}: {run:?}"),
            }
        }
    }
}
