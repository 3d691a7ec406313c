//! The store that keeps per-instance states across restarts, in
//! `state_dir`. Only what a restart needs is saved (failing since when,
//! failed runs), never a run's output, so that checks that keep their
//! state write nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::files::{self, Access, Links, Refused};
use crate::state::CheckState;

/// The state file's format version; another version is set aside, not
/// misread.
const STATE_VERSION: u32 = 2;
/// Version 1 had no `mailed`: every switch was mailed then, so what was
/// last mailed is what the state says.
const STATE_VERSION_WITHOUT_MAILED: u32 = 1;
/// The state file, and its copy written right after it: a damaged file
/// (a disk error, a truncation, an editor) would otherwise cost every
/// open outage its OK and bring a second Problem.
const FILE: &str = "state.json";
const COPY: &str = "state.json.backup";
/// The lock file, also the watchdog's way to find the picomon holding it.
pub(crate) const LOCK: &str = "picomon.lock";
/// Largest state file read: only failing instances are saved, some
/// hundred bytes each, so 10,000 of them stay below 4 MiB.
const CAP: u64 = 64 * 1024 * 1024;

#[derive(Deserialize)]
struct StateFile {
    version: u32,
    /// Counts saves, so that the newer of the two files is known; files
    /// of older picomons have none (0).
    #[serde(default)]
    generation: u64,
    instances: BTreeMap<String, CheckState>,
}

/// The same file, as written: borrowed, not copied.
#[derive(Serialize)]
struct SavedStates<'a> {
    version: u32,
    generation: u64,
    instances: BTreeMap<&'a str, &'a CheckState>,
}

/// What one of the two files held at the start.
enum Generation {
    Missing,
    /// Why it cannot be used.
    Damaged(String),
    Read(StateFile),
}

/// Which file a start uses: the newest readable one.
#[derive(Debug, PartialEq, Eq)]
enum Use {
    File,
    Copy,
    Neither,
}

/// The newest of the readable generations; the file when both are equal.
fn newest(file: &Generation, copy: &Generation) -> Use {
    match (file, copy) {
        (Generation::Read(f), Generation::Read(c)) if c.generation > f.generation => Use::Copy,
        (Generation::Read(_), _) => Use::File,
        (_, Generation::Read(_)) => Use::Copy,
        _ => Use::Neither,
    }
}

/// Per-instance state on disk in `state_dir`, guarded by a lock so that
/// two picomons never share (and fight over) one directory.
pub(crate) struct StateStore {
    dir: PathBuf,
    /// The generation the next save writes.
    next: AtomicU64,
    /// Held (flock) for as long as the store lives.
    _lock: File,
}

impl StateStore {
    /// Creates `dir` if needed and takes its lock.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<StateStore> {
        files::create_private_dir(dir)
            .with_context(|| format!("state_dir {}: cannot create it", dir.display()))?;
        // Checked again here, not only with the configuration: the
        // directory may have been made (by someone else) since.
        if let Some(problem) = crate::config::others_may_write(dir) {
            anyhow::bail!("state_dir: {problem}");
        }
        let path = dir.join(LOCK);
        let mut lock = files::open_regular(&path, Access::Lock, Links::Refuse)
            .map_err(|e| anyhow::anyhow!("{}: cannot open the lock file: {e}", path.display()))?;
        let locked = lock_within(&lock, LOCK_WAIT)
            .with_context(|| format!("{}: cannot lock it", path.display()))?;
        if !locked {
            // The pid its holder wrote, read through the file opened here.
            let mut holder = String::new();
            let _ = (&lock).take(64).read_to_string(&mut holder);
            anyhow::bail!(
                "state_dir {} is in use by another picomon (pid {}); give each instance its own state_dir",
                dir.display(),
                holder.trim()
            );
        }
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
            next: AtomicU64::new(1),
            _lock: lock,
        })
    }

    /// The state directory this store holds the lock of.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The saved states, from the newest readable of the two files. Both
    /// missing is a first start; a damaged one is logged and set aside,
    /// and only when neither can be read does picomon start afresh.
    pub(crate) fn load(&self) -> BTreeMap<String, CheckState> {
        let (file_path, copy_path) = (self.dir.join(FILE), self.dir.join(COPY));
        let file = read_generation(&file_path);
        let copy = read_generation(&copy_path);
        let chosen = newest(&file, &copy);
        for (path, generation, used) in [
            (&file_path, &file, chosen == Use::File),
            (&copy_path, &copy, chosen == Use::Copy),
        ] {
            if let Generation::Damaged(why) = generation {
                self.set_aside(path, why);
            } else if matches!(generation, Generation::Read(_)) && !used {
                log::warn!(
                    "{}: an older save than the other state file, which is used",
                    path.display()
                );
            }
        }
        let used = match chosen {
            Use::File => file,
            Use::Copy => copy,
            Use::Neither => {
                if !matches!((&file, &copy), (Generation::Missing, Generation::Missing)) {
                    log::error!(
                        "{}: no readable saved state (nor in {}), starting afresh",
                        file_path.display(),
                        copy_path.display()
                    );
                }
                return BTreeMap::new();
            }
        };
        let Generation::Read(mut saved) = used else {
            return BTreeMap::new();
        };
        if chosen == Use::Copy {
            log::warn!(
                "{}: saved state read from its copy {} (generation {})",
                file_path.display(),
                copy_path.display(),
                saved.generation
            );
        }
        self.next.store(saved.generation + 1, Ordering::Relaxed);
        if saved.version == STATE_VERSION_WITHOUT_MAILED {
            for state in saved.instances.values_mut() {
                state.mailed = state.since.filter(|_| state.failing);
            }
        }
        saved.instances
    }

    /// Moves a damaged state file out of the way (it may be a directory,
    /// which a save could not replace), keeping it for a look.
    fn set_aside(&self, path: &Path, why: &str) {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Never over an earlier one, which is kept for a look too.
        let mut aside = self.dir.join(format!("{name}.bad-{stamp}"));
        for n in 1.. {
            if std::fs::symlink_metadata(&aside).is_err() {
                break;
            }
            aside = self.dir.join(format!("{name}.bad-{stamp}-{n}"));
        }
        match std::fs::rename(path, &aside) {
            Ok(()) => log::error!(
                "{}: damaged saved state ({why}); set aside as {}",
                path.display(),
                aside.display()
            ),
            Err(e) => log::error!(
                "{}: damaged saved state ({why}); cannot set it aside: {e}",
                path.display()
            ),
        }
    }

    /// Saves every state atomically (write, fsync, rename), then its copy
    /// the same way: at every moment one of the two holds the last save
    /// or the one before it.
    pub(crate) fn save<'a>(
        &self,
        states: impl IntoIterator<Item = (&'a str, &'a CheckState)>,
    ) -> io::Result<()> {
        // A check with nothing to remember (OK, no failed run) is left out:
        // the file holds only what a restart needs, and stays small.
        let file = SavedStates {
            version: STATE_VERSION,
            generation: self.next.fetch_add(1, Ordering::Relaxed),
            instances: states
                .into_iter()
                .filter(|(_, state)| state.durable() != CheckState::default().durable())
                .collect(),
        };
        let json = serde_json::to_vec(&file).map_err(io::Error::other)?;
        files::write_atomic(&self.dir.join(FILE), &json)?;
        // The state is saved; its copy failing costs only the safety net.
        let copy = self.dir.join(COPY);
        if let Err(e) = files::write_atomic(&copy, &json) {
            log::warn!(
                "{}: cannot write the copy of the state: {e}",
                copy.display()
            );
        }
        Ok(())
    }
}

/// What the state file at `path` holds, read without following a link,
/// only when regular, and at most `CAP` bytes.
fn read_generation(path: &Path) -> Generation {
    let bytes = match files::read_regular(path, CAP, Links::Refuse) {
        Ok((bytes, _)) => bytes,
        Err(Refused::Missing) => return Generation::Missing,
        Err(e) => return Generation::Damaged(e.to_string()),
    };
    match serde_json::from_slice::<StateFile>(&bytes) {
        Ok(file)
            if file.version == STATE_VERSION || file.version == STATE_VERSION_WITHOUT_MAILED =>
        {
            Generation::Read(file)
        }
        Ok(file) => Generation::Damaged(format!(
            "version {}, this picomon reads {STATE_VERSION}",
            file.version
        )),
        Err(e) => Generation::Damaged(format!("not a state file: {e}")),
    }
}

/// How long a start waits for the lock: a picomon killed (-9) while it
/// was starting a plugin leaves the lock held by that plugin's process
/// until it has exec'd (the descriptor closes on exec), which on a busy
/// machine took long enough for a restart right after the kill to be
/// refused. Another picomon that really runs still refuses the start,
/// this much later.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Takes the lock on `lock`, trying again for up to `wait`; false when
/// someone still holds it then.
fn lock_within(lock: &std::fs::File, wait: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + wait;
    loop {
        if crate::sys::try_lock_exclusive(lock)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
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
    fn a_push_checks_last_push_is_saved_alone_and_files_without_pushes_load_unpushed() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file of a picomon without push checks: every state unpushed.
        std::fs::write(
            dir.path().join("state.json"),
            br#"{"version":1,"instances":{"c/h/ipv4":{"failed_runs":1,"since":{"secs_since_epoch":100,"nanos_since_epoch":0},"failing":false}}}"#,
        )
        .expect("write");
        let store = StateStore::open(dir.path()).expect("open");
        let loaded = store.load();
        assert_eq!(loaded["c/h/ipv4"].push, None);
        // An OK push check with nothing but its last push is still saved:
        // a restart must not forget when the last push came.
        let pushed = CheckState {
            push: Some(Box::new(crate::push::Pushed {
                last: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(500)),
                ..crate::push::Pushed::default()
            })),
            ..CheckState::default()
        };
        store.save([("backup", &pushed)]).expect("save");
        drop(store);
        let store = StateStore::open(dir.path()).expect("open again");
        assert_eq!(store.load().get("backup"), Some(&pushed));
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
    fn an_ack_and_the_reminders_timing_survive_a_restart_and_older_files_load_without_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(dir.path()).expect("open");
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let mut state = CheckState {
            failed_runs: 7,
            since: Some(at(100)),
            failing: true,
            mailed: Some(at(100)),
            ..CheckState::default()
        };
        state.note_reminded(at(500));
        assert!(state.acknowledge("alice", "on it", at(600)));
        store.save([("c/h/ipv4", &state)]).expect("save");
        drop(store);
        let store = StateStore::open(dir.path()).expect("open");
        let loaded = store.load();
        let back = loaded.get("c/h/ipv4").expect("kept");
        assert_eq!(back.last_told, Some(at(500)));
        assert_eq!(back.reminders, 1);
        let ack = back.acked().expect("the ack");
        assert_eq!(
            (ack.by.as_str(), ack.reason.as_str(), ack.at),
            ("alice", "on it", 600)
        );
        // A file of a picomon before reminders: none of it, and no error.
        drop(store);
        std::fs::remove_file(dir.path().join("state.json.backup")).ok();
        std::fs::write(
            dir.path().join("state.json"),
            br#"{"version":1,"instances":{"c/h/ipv4":{"failed_runs":3,"since":{"secs_since_epoch":100,"nanos_since_epoch":0},"failing":true,"mailed":{"secs_since_epoch":100,"nanos_since_epoch":0}}}}"#,
        )
        .expect("write");
        let store = StateStore::open(dir.path()).expect("open");
        let loaded = store.load();
        let old = loaded.get("c/h/ipv4").expect("kept");
        assert!(old.failing && old.ack.is_none() && old.last_told.is_none());
        assert_eq!(old.reminders, 0);
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
    fn a_lock_let_go_of_while_a_store_waits_is_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = StateStore::open(dir.path()).expect("open");
        let going = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        StateStore::open(dir.path()).expect("taken once the first let go");
        going.join().expect("join");
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

    /// An outage, saved: failing since 7 s after the epoch, mailed.
    fn outage() -> CheckState {
        let since = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(7));
        CheckState {
            failed_runs: 3,
            since,
            failing: true,
            mailed: since,
            ..CheckState::default()
        }
    }

    #[test]
    fn a_damaged_state_file_is_read_from_its_copy_and_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE);
        let damages: [(&str, &dyn Fn()); 4] = [
            ("half", &|| {
                let len = std::fs::metadata(&path).expect("stat").len();
                File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(len / 2))
                    .expect("truncate")
            }),
            ("empty", &|| std::fs::write(&path, b"").expect("write")),
            ("a directory", &|| {
                std::fs::remove_file(&path).expect("rm");
                std::fs::create_dir(&path).expect("mkdir")
            }),
            ("a link", &|| {
                std::fs::remove_file(&path).expect("rm");
                let other = dir.path().join("other.json");
                std::fs::write(&other, br#"{"version":2,"instances":{}}"#).expect("write");
                std::os::unix::fs::symlink(&other, &path).expect("symlink")
            }),
        ];
        for (what, damage) in damages {
            let store = StateStore::open(dir.path()).expect("open");
            let s = outage();
            store.save([("c/h/ipv4", &s)]).expect("save");
            drop(store);
            damage();
            let store = StateStore::open(dir.path()).expect("open");
            assert_eq!(store.load().get("c/h/ipv4"), Some(&s), "state.json {what}");
            assert!(!path.exists(), "state.json {what} is set aside");
            // The next save writes both again.
            store.save([("c/h/ipv4", &s)]).expect("save");
            assert!(path.is_file() && dir.path().join(COPY).is_file());
        }
    }

    #[test]
    fn the_newest_readable_generation_is_used() {
        let read = |generation| {
            Generation::Read(StateFile {
                version: STATE_VERSION,
                generation,
                instances: BTreeMap::new(),
            })
        };
        let bad = || Generation::Damaged("garbage".into());
        assert_eq!(newest(&read(2), &read(2)), Use::File);
        assert_eq!(newest(&read(2), &read(1)), Use::File);
        // Killed between the two writes of a save, then the file damaged
        // by hand with an older copy: the newer save wins.
        assert_eq!(newest(&read(1), &read(2)), Use::Copy);
        assert_eq!(newest(&bad(), &read(1)), Use::Copy);
        assert_eq!(newest(&Generation::Missing, &read(1)), Use::Copy);
        assert_eq!(newest(&read(1), &bad()), Use::File);
        assert_eq!(newest(&bad(), &bad()), Use::Neither);
        assert_eq!(
            newest(&Generation::Missing, &Generation::Missing),
            Use::Neither
        );
    }

    #[test]
    fn a_lock_file_that_is_a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join(LOCK)).expect("symlink");
        let err = StateStore::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("picomon.lock") && err.contains("symbolic link"),
            "{err}"
        );
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
    }
}
