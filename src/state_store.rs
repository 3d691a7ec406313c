//! The store that keeps per-instance states across restarts, in
//! `state_dir`. Only what a restart needs is saved (failing since when,
//! failed runs), never a run's output, so that checks that keep their
//! state write nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::files;
use crate::state::CheckState;

/// The state file's format version; another version is set aside, not
/// misread.
const STATE_VERSION: u32 = 2;
/// Version 1 had no `mailed`: every switch was mailed then, so what was
/// last mailed is what the state says.
const STATE_VERSION_WITHOUT_MAILED: u32 = 1;

#[derive(Deserialize)]
struct StateFile {
    version: u32,
    instances: BTreeMap<String, CheckState>,
}

/// The same file, as written: borrowed, not copied.
#[derive(Serialize)]
struct SavedStates<'a> {
    version: u32,
    instances: BTreeMap<&'a str, &'a CheckState>,
}

/// Per-instance state on disk in `state_dir`, guarded by a lock so that
/// two picomons never share (and fight over) one directory.
pub(crate) struct StateStore {
    dir: PathBuf,
    /// Held (flock) for as long as the store lives.
    _lock: File,
}

impl StateStore {
    /// Creates `dir` if needed and takes its lock.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<StateStore> {
        files::create_private_dir(dir)
            .with_context(|| format!("state_dir {}: cannot create it", dir.display()))?;
        let path = dir.join("picomon.lock");
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
        let locked = crate::sys::try_lock_exclusive(&lock)
            .with_context(|| format!("{}: cannot lock it", path.display()))?;
        if !locked {
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
        // A crash inside an atomic write leaves its temporary file; only
        // the holder of the lock may clear them.
        if let Err(e) = files::remove_leftovers(dir) {
            log::warn!(
                "{}: cannot clear leftovers of interrupted writes: {e}",
                dir.display()
            );
        }
        Ok(StateStore {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The state directory this store holds the lock of.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The saved states. A missing file is a first start; an unreadable
    /// or corrupt one is logged and set aside, and picomon starts afresh.
    pub(crate) fn load(&self) -> BTreeMap<String, CheckState> {
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
            Ok(mut file) if file.version == STATE_VERSION_WITHOUT_MAILED => {
                for state in file.instances.values_mut() {
                    state.mailed = state.since.filter(|_| state.failing);
                }
                file.instances
            }
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
    pub(crate) fn save<'a>(
        &self,
        states: impl IntoIterator<Item = (&'a str, &'a CheckState)>,
    ) -> io::Result<()> {
        // A check with nothing to remember (OK, no failed run) is left out:
        // the file holds only what a restart needs, and stays small.
        let file = SavedStates {
            version: STATE_VERSION,
            instances: states
                .into_iter()
                .filter(|(_, state)| state.durable() != CheckState::default().durable())
                .collect(),
        };
        let json = serde_json::to_vec(&file).map_err(io::Error::other)?;
        files::write_atomic(&self.path(), &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn state_survives_a_save_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(dir.path()).expect("open");
        let mut s = CheckState {
            failed_runs: 1,
            since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(7)),
            failing: true,
            ..CheckState::default()
        };
        let quiet = CheckState::default();
        store
            .save([("c/h/ipv4", &s), ("c/h/ipv6", &quiet)])
            .expect("save");
        let loaded = store.load();
        // The output is not saved; everything else is.
        s.last = None;
        assert_eq!(loaded.get("c/h/ipv4"), Some(&s));
        // Nothing to remember, nothing written.
        assert_eq!(loaded.len(), 1);
    }

    #[test]
    fn a_crash_inside_a_save_leaves_nothing_after_the_next_start_and_the_lock_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".state.json.tmp"), b"{half").expect("write");
        let _store = StateStore::open(dir.path()).expect("open");
        assert!(!dir.path().join(".state.json.tmp").exists());
        let mode = std::fs::metadata(dir.path().join("picomon.lock"))
            .expect("lock")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "lock mode {mode:o}");
    }

    #[test]
    fn an_outage_saved_before_silences_existed_is_not_mailed_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("state.json"),
            br#"{"version":1,"instances":{"c/h/ipv4":{"failed_runs":3,"since":{"secs_since_epoch":100,"nanos_since_epoch":0},"failing":true}}}"#,
        )
        .expect("write");
        let store = StateStore::open(dir.path()).expect("open");
        let loaded = store.load();
        let state = loaded.get("c/h/ipv4").expect("kept");
        assert!(state.failing);
        assert_eq!(
            state.mailed,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(100))
        );
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
