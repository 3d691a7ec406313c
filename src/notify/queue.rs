//! A notifier's queue on disk: one JSON file per notification in
//! `state_dir/notify/NAME/`, named so that lexical order is queueing
//! order, written atomically, removed once delivered. As with the mail
//! spool, a notification is first written `.pending` and becomes `.json`
//! once the switch it tells is saved: a crash in between leaves a pending
//! file that the next start keeps or drops by what the saved state says,
//! so that a switch is neither lost nor told twice.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use super::Note;
use crate::queue_dir::QueueDir;

/// One notifier's directory of queued notifications.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    queue: QueueDir,
}

impl Queue {
    /// Opens (creates) `dir`, removing what interrupted writes left. The
    /// caller holds the state directory's lock.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Queue> {
        QueueDir::open(dir)
            .map(|queue| Queue { queue })
            .with_context(|| format!("cannot create the notification queue {}", dir.display()))
    }

    /// The queue's directory, for messages.
    pub(crate) fn dir(&self) -> &Path {
        &self.queue.dir
    }

    /// Writes `note` as pending: not delivered, now or after a restart,
    /// unless `commit` follows or the saved state tells its switch.
    pub(crate) fn save_pending(&self, note: &Note) -> std::io::Result<PathBuf> {
        self.queue.write(note, None, true, SystemTime::now())
    }

    /// Makes a pending notification a queued one, durably.
    pub(crate) fn commit(&self, pending: &Path) -> std::io::Result<PathBuf> {
        self.queue.commit(pending)
    }

    /// Everything queued, oldest first. A pending notification is kept
    /// when `told(note)` (the saved state has its switch) and dropped
    /// otherwise (the check tells it again); an unreadable file is renamed
    /// `.bad` and logged, never retried forever nor silently lost.
    pub(crate) fn load(&self, told: impl Fn(&Note) -> bool) -> Vec<(Note, PathBuf)> {
        let entries = match self.queue.load(told) {
            Ok(entries) => entries,
            Err(e) => {
                log::error!(
                    "{}: cannot list the notification queue: {e}",
                    self.queue.dir.display()
                );
                return Vec::new();
            }
        };
        let mut notes = Vec::new();
        for (path, entry) in entries {
            match entry {
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
        if let Err(e) = self.queue.remove(path) {
            log::error!(
                "{}: cannot remove a delivered notification (it will be delivered again after a restart): {e}",
                path.display()
            );
        }
    }
}
