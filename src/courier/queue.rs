//! One channel's durable queue: `state_dir/outbox/` for mail,
//! `state_dir/notify/NAME/` for a notifier, one JSON file per entry, named
//! so that lexical order is queueing order, written atomically and
//! privately (see `files`). What can never be delivered (unreadable, or a
//! mail that cannot be built) is moved to `rejected/` beside the entries,
//! and the log says why: never retried forever, never silently lost.
//!
//! An entry that tells a switch is first written `.pending`, and becomes
//! `.json` only once the switch is saved in the state: at the next start a
//! pending entry is kept when the saved state has its switch (`told`) and
//! dropped otherwise (the check tells it again), so that a switch is
//! neither lost nor told twice. `QueueDir` is the directory and its files;
//! `Queue` is what a courier asks of it.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::channel::Entry;
use crate::files::{self, Links};

/// The extension of a queued entry's file.
const QUEUED: &str = "json";
/// The extension of an entry's file until its switch is saved.
const PENDING: &str = "pending";
/// Largest entry read. A mail holds at most 8 KiB of plugin output, a
/// digest one line per check; and servers refuse mails over some 10 MB
/// (Postfix's default), so a larger entry could never be sent anyway.
/// Above it, an entry is set aside unread: a 30 MB one used to hold the
/// others back for a minute of CPU.
const ENTRY_CAP: u64 = 16 * 1024 * 1024;

/// A queue's directory.
#[derive(Clone, Debug)]
struct QueueDir {
    dir: PathBuf,
}

impl QueueDir {
    /// Opens (creates, 0700) `dir` and removes what interrupted writes
    /// left there. The caller holds the state directory's lock.
    fn open(dir: &Path) -> io::Result<QueueDir> {
        files::create_own_dir(dir)?;
        match files::remove_leftovers(dir) {
            Ok(0) => {}
            Ok(n) => log::info!(
                "{}: removed {n} leftover temporary files of interrupted writes",
                dir.display()
            ),
            Err(e) => log::warn!(
                "{}: cannot clean leftover temporary files: {e}",
                dir.display()
            ),
        }
        Ok(QueueDir {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes `entry` over `path`, or to a new file named after `queued`
    /// (when the entry entered the queue, so that one written late, after
    /// a full disk, still sorts in its place), `.pending` if `pending`.
    fn write<T: Serialize>(
        &self,
        entry: &T,
        path: Option<&Path>,
        pending: bool,
        queued: SystemTime,
    ) -> io::Result<PathBuf> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let nanos = queued
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let n = COUNT.fetch_add(1, Ordering::Relaxed);
                let kind = if pending { PENDING } else { QUEUED };
                self.dir.join(format!("{nanos:024}-{n:06}.{kind}"))
            }
        };
        let json = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        files::write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Makes a pending entry a queued one, durably.
    fn commit(&self, pending: &Path) -> io::Result<PathBuf> {
        let queued = pending.with_extension(QUEUED);
        std::fs::rename(pending, &queued)?;
        files::sync_dir(&self.dir)?;
        Ok(queued)
    }

    /// Every entry, oldest first. A pending one is committed when `told`
    /// and removed otherwise; an unreadable one comes back as `Err(why)`,
    /// for the caller to set aside: garbage, but also a link, a FIFO, a
    /// device or an entry over `ENTRY_CAP`, none of which is opened
    /// through, waited on or read whole.
    fn load<T: DeserializeOwned>(
        &self,
        told: impl Fn(&T) -> bool,
    ) -> io::Result<Vec<(PathBuf, Result<T, String>)>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == QUEUED || e == PENDING))
            .collect();
        paths.sort();
        let mut entries = Vec::new();
        for path in paths {
            let read = files::read_regular(&path, ENTRY_CAP, Links::Refuse);
            let parsed = read.map_err(|e| e.to_string()).and_then(|(bytes, file)| {
                let entry = serde_json::from_slice::<T>(&bytes).map_err(|e| e.to_string())?;
                Ok((entry, file))
            });
            let pending = path.extension().is_some_and(|e| e == PENDING);
            match parsed {
                Ok((entry, _)) if pending && !told(&entry) => {
                    log::info!(
                        "{}: dropped, picomon stopped before saving the switch it tells (the check will tell it again)",
                        path.display()
                    );
                    if let Err(e) = self.remove(&path) {
                        log::error!("{}: cannot remove it: {e}", path.display());
                    }
                }
                Ok((entry, file)) => {
                    // Written by an older picomon under a looser umask, say;
                    // through the file read, not its name again.
                    if let Err(e) = file.set_permissions(Permissions::from_mode(files::FILE_MODE)) {
                        log::warn!("{}: cannot make it private (0600): {e}", path.display());
                    }
                    let path = match pending {
                        true => self.commit(&path).unwrap_or_else(|e| {
                            log::warn!("{}: cannot mark it queued: {e}", path.display());
                            path
                        }),
                        false => path,
                    };
                    entries.push((path, Ok(entry)));
                }
                Err(why) => entries.push((path, Err(why))),
            }
        }
        Ok(entries)
    }

    /// Removes a delivered (or dropped) entry, durably; one already gone
    /// is no error.
    fn remove(&self, path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(()) => files::sync_dir(&self.dir),
        }
    }
}

/// Where entries that can never be delivered go, inside the queue's dir.
const REJECTED: &str = "rejected";

#[derive(Clone, Debug)]
pub(crate) struct Queue {
    dir: QueueDir,
}

impl Queue {
    /// Opens (creates) the queue in `dir` and removes what interrupted
    /// writes left there; `what` names it in an error ("mail spool"). The
    /// caller holds the state directory's lock.
    pub(crate) fn open(dir: &Path, what: &str) -> anyhow::Result<Queue> {
        QueueDir::open(dir)
            .and_then(|queue| files::create_own_dir(&dir.join(REJECTED)).map(|_| queue))
            .map(|dir| Queue { dir })
            .with_context(|| format!("cannot create the {what} {}", dir.display()))
    }

    /// The queue's directory, for messages.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir.dir
    }

    /// Writes `entry` over `path`, or to a new file named after the time
    /// it entered the queue.
    pub(crate) fn save<E: Entry>(
        &self,
        entry: &E,
        path: Option<&Path>,
    ) -> std::io::Result<PathBuf> {
        self.dir.write(entry, path, false, entry.queued_at())
    }

    /// Writes `entry` as pending: not delivered, now or after a restart,
    /// unless `commit` follows or the saved state tells its switch.
    pub(crate) fn save_pending<E: Entry>(&self, entry: &E) -> std::io::Result<PathBuf> {
        self.dir.write(entry, None, true, entry.queued_at())
    }

    /// Makes a pending entry an ordinary queued one, durably.
    pub(crate) fn commit(&self, pending: &Path) -> std::io::Result<PathBuf> {
        self.dir.commit(pending)
    }

    /// Everything still queued, oldest first; unreadable files set aside.
    /// A pending entry (its writer stopped before the switch was saved, or
    /// just after) is kept when `told(entry)`, the saved state having its
    /// switch, and dropped otherwise: the check tells it again.
    pub(crate) fn load<E: Entry>(&self, told: impl Fn(&E) -> bool) -> Vec<(E, PathBuf)> {
        let entries = match self.dir.load(told) {
            Ok(entries) => entries,
            Err(e) => {
                log::error!("{}: cannot list the queue: {e}", self.dir().display());
                return Vec::new();
            }
        };
        let mut loaded = Vec::new();
        for (path, entry) in entries {
            match entry {
                Ok(entry) => loaded.push((entry, path)),
                Err(e) => self.set_aside(&path, &format!("unreadable {}: {e}", E::QUEUED)),
            }
        }
        loaded
    }

    /// Removes a delivered entry's file.
    pub(crate) fn remove(&self, path: &Path) {
        if let Err(e) = self.dir.remove(path) {
            log::error!(
                "{}: cannot remove a delivered entry (it will be sent again after a restart): {e}",
                path.display()
            );
        }
    }

    /// Moves an entry that can never be delivered to `rejected/`, saying why.
    pub(crate) fn set_aside(&self, path: &Path, why: &str) {
        let Some(name) = path.file_name() else { return };
        let to = self.dir().join(REJECTED).join(name);
        match std::fs::rename(path, &to) {
            Ok(()) => {
                log::error!("{}: {why}; moved to {}", path.display(), to.display());
                // An entry of an older picomon, say; a link or a FIFO set
                // aside keeps its mode (what a link points to is not ours).
                let _ = files::make_private(&to);
            }
            Err(e) => log::error!(
                "{}: {why}; cannot move it to {}: {e}",
                path.display(),
                to.display()
            ),
        }
    }
}

/// An entry in a courier's queue.
#[derive(Debug)]
pub(crate) struct Queued<E> {
    pub(crate) entry: E,
    /// Its file; none without a state_dir, or when the disk did not take
    /// it (see `disk_full`).
    pub(crate) path: Option<PathBuf>,
    /// No attempt at it before this (a refusal of this very entry).
    pub(crate) next_try: std::time::Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_oversized_entries_come_back_unread_as_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let queue = QueueDir::open(dir.path()).expect("open");
        let good = queue
            .write(&"hello", None, false, SystemTime::now())
            .expect("write");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"\"not an entry\"").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join("1-link.json")).expect("symlink");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("2-zero.json")).expect("symlink");
        let made = std::process::Command::new("mkfifo")
            .arg(dir.path().join("3-fifo.json"))
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let big = std::fs::File::create(dir.path().join("4-big.pending")).expect("create");
        big.set_len(ENTRY_CAP + 1).expect("grow");
        let entries = queue.load::<String>(|_| true).expect("load");
        let why: Vec<(String, String)> = entries
            .iter()
            .map(|(path, entry)| {
                let name = path.file_name().unwrap_or_default();
                let what = match entry {
                    Ok(text) => format!("ok {text}"),
                    Err(e) => e.clone(),
                };
                (name.to_string_lossy().into_owned(), what)
            })
            .collect();
        let link = "a symbolic link, which picomon does not follow in its own directories";
        assert_eq!(
            why,
            [
                (
                    good.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into(),
                    "ok hello".into()
                ),
                ("1-link.json".into(), link.into()),
                ("2-zero.json".into(), link.into()),
                (
                    "3-fifo.json".into(),
                    "a FIFO (named pipe); it must be a regular file".into()
                ),
                ("4-big.pending".into(), "larger than 16384 KiB".into()),
            ]
        );
    }
}
