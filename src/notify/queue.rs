//! A notifier's queue on disk: one JSON file per notification in
//! `state_dir/notify/NAME/`, named so that lexical order is queueing
//! order, written atomically, removed once delivered. As with the mail
//! spool, a notification is first written `.pending` and becomes `.json`
//! once the switch it tells is saved: a crash in between leaves a pending
//! file that the next start keeps or drops by what the saved state says,
//! so that a switch is neither lost nor told twice.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::Note;
use crate::files;

/// The extension of a queued notification's file.
const QUEUED: &str = "json";
/// The extension of a notification's file until its switch is saved.
const PENDING: &str = "pending";

/// One notifier's directory of queued notifications.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) dir: PathBuf,
}

impl Queue {
    /// Opens (creates) `dir`, removing what interrupted writes left. The
    /// caller holds the state directory's lock.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Queue> {
        files::create_private_dir(dir)
            .with_context(|| format!("cannot create the notification queue {}", dir.display()))?;
        if let Err(e) = files::remove_leftovers(dir) {
            log::warn!(
                "{}: cannot clean leftover temporary files: {e}",
                dir.display()
            );
        }
        Ok(Queue {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes `note` as pending: not delivered, now or after a restart,
    /// unless `commit` follows or the saved state tells its switch.
    pub(crate) fn save_pending(&self, note: &Note) -> std::io::Result<PathBuf> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{nanos:024}-{n:06}.{PENDING}"));
        let json = serde_json::to_vec_pretty(note).map_err(std::io::Error::other)?;
        files::write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Makes a pending notification a queued one, durably.
    pub(crate) fn commit(&self, pending: &Path) -> std::io::Result<PathBuf> {
        let queued = pending.with_extension(QUEUED);
        std::fs::rename(pending, &queued)?;
        files::sync_dir(&self.dir)?;
        Ok(queued)
    }

    /// Everything queued, oldest first. A pending notification is kept
    /// when `told(note)` (the saved state has its switch) and dropped
    /// otherwise (the check tells it again); an unreadable file is renamed
    /// `.bad` and logged, never retried forever nor silently lost.
    pub(crate) fn load(&self, told: impl Fn(&Note) -> bool) -> Vec<(Note, PathBuf)> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == QUEUED || e == PENDING))
                .collect(),
            Err(e) => {
                log::error!(
                    "{}: cannot list the notification queue: {e}",
                    self.dir.display()
                );
                return Vec::new();
            }
        };
        paths.sort();
        let mut notes = Vec::new();
        for path in paths {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Note>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(note) if path.extension().is_some_and(|e| e == PENDING) => {
                    if told(&note) {
                        match self.commit(&path) {
                            Ok(queued) => notes.push((note, queued)),
                            Err(e) => {
                                log::warn!("{}: cannot mark it queued: {e}", path.display());
                                notes.push((note, path));
                            }
                        }
                    } else {
                        log::info!(
                            "{}: dropped, picomon stopped before saving the switch it tells (the check will tell it again)",
                            path.display()
                        );
                        self.remove(&path);
                    }
                }
                Ok(note) => notes.push((note, path)),
                Err(e) => {
                    let bad = path.with_extension("bad");
                    log::error!(
                        "{}: unreadable notification set aside as {}: {e}",
                        path.display(),
                        bad.display()
                    );
                    let _ = std::fs::rename(&path, &bad);
                }
            }
        }
        notes
    }

    /// Removes a delivered (or dropped) notification's file.
    pub(crate) fn remove(&self, path: &Path) {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::error!(
                    "{}: cannot remove a delivered notification (it will be delivered again after a restart): {e}",
                    path.display()
                );
            }
        }
    }
}
