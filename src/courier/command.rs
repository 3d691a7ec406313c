//! `type = "command"`: one delivery is one run of the configured argv, with
//! no shell, under the runner's timeout and process-group kill (so a hung
//! `curl` neither blocks the queue forever nor leaves children behind).
//! The event is in the environment, under `NOTIFY_*`: never `PICOMON_*`,
//! which is configuration and may carry secrets.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::{Channel, Try};
use super::note::{logged, Note};
use super::retry::{self, Outcome, STOP_STEP};
use crate::config::{Notifier, NotifierKind};
use crate::runner::{RunError, Runner};

/// A command notifier, in its courier's thread.
pub(crate) struct Command {
    pub(crate) name: String,
    pub(crate) argv: Vec<OsString>,
    pub(crate) timeout: Duration,
    pub(crate) retry: Duration,
    pub(crate) runner: Arc<Runner>,
}

impl Channel for Command {
    type Entry = Note;
    type Settings = Notifier;

    fn retry(&self) -> Duration {
        self.retry
    }

    fn deliver(&mut self, note: &mut Note, attempt: Try) -> Outcome {
        // While stopping, a run is killed at the stop's deadline rather
        // than hold the stop: the notification stays queued on disk.
        let timeout = retry::step_timeout(Instant::now(), attempt.stop_at, self.timeout, STOP_STEP);
        let ran = run(&self.runner, &self.argv, timeout, note);
        logged(&self.name, note, ran, self.retry, attempt)
    }

    fn reconfigure(&mut self, notifier: Notifier) {
        // Another kind of notifier under this name is another courier
        // (see `Notifiers::reconfigure`): only a command's settings here.
        if let NotifierKind::Command { argv, timeout } = notifier.kind {
            self.argv = argv;
            self.timeout = timeout;
        }
        self.retry = notifier.retry_every;
    }
}

/// Runs `argv` for `note`; Ok when it exited 0, else why not, for the log.
fn run(
    runner: &Arc<Runner>,
    argv: &[OsString],
    timeout: Duration,
    note: &Note,
) -> Result<(), String> {
    let env: Vec<(OsString, OsString)> = note
        .env
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    let program = argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let done = runner.run(argv, timeout, &env).map_err(|e| match e {
        RunError::Spawn(e) => format!("{program}: cannot start: {e}"),
        RunError::Wait(e) => format!("{program}: cannot wait for it: {e}"),
    })?;
    if done.timed_out {
        return Err(format!(
            "{program}: killed after the timeout of {}",
            crate::human::human_duration(timeout)
        ));
    }
    match done.exit_code {
        Some(0) => Ok(()),
        code => {
            let said = String::from_utf8_lossy(&done.stderr);
            let said = said.trim();
            let how = match (code, done.signal) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "no exit code".to_string(),
            };
            Err(match said.is_empty() {
                true => format!("{program}: {how}"),
                false => format!("{program}: {how}: {}", said.lines().last().unwrap_or("")),
            })
        }
    }
}
