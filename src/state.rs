//! The per-instance state machine of SPEC section 4: consecutive failed
//! runs, the switch to failing after `retry + 1` of them, recovery at the
//! first OK run. Each switch is an `Event`, the one place where alerting
//! (logs now, email later) plugs in.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::check::{Instance, RunResult, State};
use crate::files;
use crate::human::{human_duration, human_time};

/// What is remembered about one check instance between runs (and, with
/// `state_dir`, across restarts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckState {
    /// Failed runs in a row, the current one included.
    pub failed_runs: u32,
    /// When the first of those failed runs started.
    pub since: Option<SystemTime>,
    /// True from the `retry + 1`-th failed run to the next OK one.
    pub failing: bool,
    pub last: Option<RunResult>,
    /// The Message-ID of the Problem mail, for the recovery to reply to.
    pub thread: Option<String>,
}

/// A switch of a check instance, to be told to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The instance is now failing.
    Failing,
    /// The instance was failing and its last run was OK.
    Recovered {
        /// From the first failed run to the OK one.
        after: Duration,
        /// How many runs failed in between.
        failed_runs: u32,
    },
}

/// A transition with everything needed to describe it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub check: String,
    pub dest: String,
    pub transition: Transition,
    pub since: SystemTime,
    pub result: RunResult,
}

impl CheckState {
    /// Records a run; returns the switch it causes, if any.
    pub fn record(&mut self, result: RunResult, retry: u32) -> Option<Transition> {
        let ok = result.state == State::Ok;
        let at = result.started;
        self.last = Some(result);
        if ok {
            let was_failing = self.failing;
            let failed_runs = self.failed_runs;
            let since = self.since.take();
            self.failed_runs = 0;
            self.failing = false;
            return was_failing.then(|| Transition::Recovered {
                after: since
                    .and_then(|s| at.duration_since(s).ok())
                    .unwrap_or_default(),
                failed_runs,
            });
        }
        self.failed_runs = self.failed_runs.saturating_add(1);
        self.since.get_or_insert(at);
        if !self.failing && self.failed_runs > retry {
            self.failing = true;
            return Some(Transition::Failing);
        }
        None
    }

    /// Ticks until the next run: `error_every` while failing, else `every`.
    pub fn interval(&self, instance: &Instance) -> u32 {
        if self.failing {
            instance.error_every
        } else {
            instance.every
        }
    }
}

/// The state file's format version; another version is set aside, not
/// misread.
const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    instances: BTreeMap<String, CheckState>,
}

/// Per-instance state on disk in `state_dir`, guarded by a lock so that
/// two picomons never share (and fight over) one directory.
pub struct StateStore {
    dir: PathBuf,
    /// Held (flock) for as long as the store lives.
    _lock: File,
}

impl StateStore {
    /// Creates `dir` if needed and takes its lock.
    pub fn open(dir: &Path) -> anyhow::Result<StateStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("state_dir {}: cannot create it", dir.display()))?;
        let path = dir.join("picomon.lock");
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            anyhow::bail!(
                "state_dir {} is in use by another picomon (pid {}); give each instance its own state_dir",
                dir.display(),
                holder.trim()
            );
        }
        use std::io::Write;
        let _ = lock.set_len(0);
        let _ = writeln!(lock, "{}", std::process::id());
        Ok(StateStore {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The state directory this store holds the lock of.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved states. A missing file is a first start; an unreadable
    /// or corrupt one is logged and set aside, and picomon starts afresh.
    pub fn load(&self) -> BTreeMap<String, CheckState> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                log::error!(
                    "{}: cannot read saved state, starting afresh: {e}",
                    path.display()
                );
                self.set_aside(&path);
                return BTreeMap::new();
            }
        };
        match serde_json::from_slice::<StateFile>(&bytes) {
            Ok(file) if file.version == STATE_VERSION => file.instances,
            Ok(file) => {
                log::error!(
                    "{}: saved state has version {}, this picomon reads {STATE_VERSION}; set aside, starting afresh",
                    path.display(),
                    file.version
                );
                self.set_aside(&path);
                BTreeMap::new()
            }
            Err(e) => {
                log::error!(
                    "{}: corrupt saved state, set aside, starting afresh: {e}",
                    path.display()
                );
                self.set_aside(&path);
                BTreeMap::new()
            }
        }
    }

    fn set_aside(&self, path: &Path) {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let aside = self.dir.join(format!("state.json.bad-{stamp}"));
        match std::fs::rename(path, &aside) {
            Ok(()) => log::warn!("bad state file kept as {}", aside.display()),
            Err(e) => log::error!("{}: cannot set it aside: {e}", path.display()),
        }
    }

    /// Saves every state atomically (write, fsync, rename).
    pub fn save<'a>(
        &self,
        states: impl IntoIterator<Item = (&'a str, &'a CheckState)>,
    ) -> io::Result<()> {
        let file = StateFile {
            version: STATE_VERSION,
            instances: states
                .into_iter()
                .map(|(id, state)| (id.to_string(), state.clone()))
                .collect(),
        };
        let json = serde_json::to_vec(&file).map_err(io::Error::other)?;
        files::write_atomic(&self.path(), &json)
    }
}

/// The state of every instance, failing ones first with since-when and
/// their last output, then the others: shared by SIGUSR1 and the reports.
pub fn render_states<'a>(
    entries: impl IntoIterator<Item = (&'a Instance, &'a CheckState)>,
    now: SystemTime,
) -> String {
    let entries: Vec<_> = entries.into_iter().collect();
    let (failing, others): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, s)| s.failing);
    let mut out = String::new();
    let _ = writeln!(out, "Failing checks: {}", failing.len());
    for (inst, state) in &failing {
        let since = state.since.unwrap_or(now);
        let for_how_long = human_duration(now.duration_since(since).unwrap_or_default());
        let severity = state
            .last
            .as_ref()
            .map(|r| r.state)
            .unwrap_or(State::Unknown);
        let _ = writeln!(
            out,
            "  {severity:<8} {} on {}: failing since {} ({for_how_long}, {} failed runs)",
            inst.check,
            inst.dest,
            human_time(since),
            state.failed_runs
        );
        if let Some(last) = &state.last {
            for line in last.output().lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let _ = writeln!(out, "Other checks: {}", others.len());
    for (inst, state) in &others {
        let status = match (&state.last, state.failed_runs) {
            (None, _) => "PENDING".to_string(),
            (Some(_), 0) => "OK".to_string(),
            (Some(last), n) => format!("{} (retrying, {n} failed runs)", last.state),
        };
        let _ = writeln!(out, "  {status:<8} {} on {}", inst.check, inst.dest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: State, at_secs: u64) -> RunResult {
        RunResult {
            state,
            exit_code: Some(0),
            summary: String::new(),
            perfdata: String::new(),
            details: String::new(),
            duration: Duration::ZERO,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(at_secs),
        }
    }

    #[test]
    fn failing_from_the_retry_plus_one_th_failed_run() {
        let mut s = CheckState::default();
        assert_eq!(s.record(result(State::Critical, 0), 2), None);
        assert_eq!(s.record(result(State::Warning, 60), 2), None);
        assert!(!s.failing);
        assert_eq!(
            s.record(result(State::Unknown, 120), 2),
            Some(Transition::Failing)
        );
        assert!(s.failing);
        // Staying down says nothing more.
        assert_eq!(s.record(result(State::Critical, 180), 2), None);
        assert_eq!(
            s.record(result(State::Ok, 3723), 2),
            Some(Transition::Recovered {
                after: Duration::from_secs(3723),
                failed_runs: 4
            })
        );
        assert!(!s.failing);
        assert_eq!(s.failed_runs, 0);
    }

    #[test]
    fn retry_zero_fails_at_once_and_a_blip_below_retry_is_silent() {
        let mut s = CheckState::default();
        assert_eq!(
            s.record(result(State::Critical, 0), 0),
            Some(Transition::Failing)
        );
        let mut s = CheckState::default();
        assert_eq!(s.record(result(State::Critical, 0), 1), None);
        assert_eq!(s.record(result(State::Ok, 60), 1), None);
        assert_eq!(s.record(result(State::Critical, 120), 1), None);
        assert_eq!(
            s.since,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(120))
        );
    }

    #[test]
    fn state_survives_a_save_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(dir.path()).expect("open");
        let mut s = CheckState::default();
        s.record(result(State::Critical, 7), 0);
        s.thread = Some("<a@b>".into());
        store.save([("c/h/ipv4", &s)]).expect("save");
        let loaded = store.load();
        assert_eq!(loaded.get("c/h/ipv4"), Some(&s));
    }

    #[test]
    fn a_corrupt_state_file_is_set_aside_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("state.json"), b"{ not json").expect("write");
        let store = StateStore::open(dir.path()).expect("open");
        assert!(store.load().is_empty());
        assert!(!dir.path().join("state.json").exists());
        let aside = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("state.json.bad-")
            });
        assert!(aside);
    }

    #[test]
    fn a_second_store_on_one_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = StateStore::open(dir.path()).expect("open");
        let second = StateStore::open(dir.path());
        let err = second.err().expect("second open refused").to_string();
        assert!(err.contains("in use by another picomon"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
