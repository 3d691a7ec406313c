//! The on-disk queue: one JSON file per mail in `outbox/`, named so that
//! lexical order is queueing order, written atomically, removed once the
//! server accepted the mail; what can never be sent goes to `rejected/`.
//! Files are 0600 and directories 0700 (see `files`): mails name hosts
//! and carry plugin output.
//!
//! An alert is first written `.pending`, and becomes `.json` only once the
//! switch it tells is saved in the state: a crash in between leaves a
//! pending mail that the next start keeps or drops by what the saved
//! state says, so that the check neither mails its switch twice (with a
//! second Message-ID) nor loses it.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::message::Mail;
use crate::files;
use crate::queue_dir::QueueDir;

/// Spooled messages, one JSON file each, named so that lexical order is
/// queueing order.
#[derive(Clone)]
pub(crate) struct Spool {
    queue: QueueDir,
}

impl Spool {
    /// Opens (creates) the spool in `dir` and removes what interrupted
    /// writes left there. The caller holds the state directory's lock.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Spool> {
        QueueDir::open(dir)
            .and_then(|queue| files::create_own_dir(&dir.join("rejected")).map(|_| queue))
            .map(|queue| Spool { queue })
            .with_context(|| format!("cannot create the mail spool {}", dir.display()))
    }

    /// The spool's directory, for messages.
    pub(crate) fn dir(&self) -> &Path {
        &self.queue.dir
    }

    /// Writes `mail` to `path`, or to a new file named after its queueing
    /// time.
    pub(crate) fn save(&self, mail: &Mail, path: Option<&Path>) -> std::io::Result<PathBuf> {
        self.queue.write(mail, path, false, mail.queued_at)
    }

    /// Writes `mail` as pending: not to be sent, now or after a restart,
    /// unless `commit` follows or the saved state tells its switch.
    pub(crate) fn save_pending(&self, mail: &Mail) -> std::io::Result<PathBuf> {
        self.queue.write(mail, None, true, mail.queued_at)
    }

    /// Makes a pending mail an ordinary queued one, durably.
    pub(crate) fn commit(&self, pending: &Path) -> std::io::Result<PathBuf> {
        self.queue.commit(pending)
    }

    /// Everything still queued, oldest first; unreadable files set aside.
    /// A pending mail (its writer stopped before the switch was saved, or
    /// just after) is kept when `told(mail)`, the saved state having its
    /// switch, and dropped otherwise: the check tells it again.
    pub(crate) fn load(&self, told: impl Fn(&Mail) -> bool) -> Vec<(Mail, Option<PathBuf>)> {
        let entries = match self.queue.load(told) {
            Ok(entries) => entries,
            Err(e) => {
                log::error!("{}: cannot list the mail spool: {e}", self.dir().display());
                return Vec::new();
            }
        };
        let mut mails = Vec::new();
        for (path, entry) in entries {
            match entry {
                Ok(mail) => mails.push((mail, Some(path))),
                Err(e) => self.set_aside(&path, &format!("unreadable spooled mail: {e}")),
            }
        }
        mails
    }

    pub(crate) fn remove(&self, path: &Path) {
        if let Err(e) = self.queue.remove(path) {
            log::error!(
                "{}: cannot remove a sent mail from the spool: {e}",
                path.display()
            );
        }
    }

    /// Moves a mail that can never be sent to `rejected/`, saying why.
    pub(crate) fn set_aside(&self, path: &Path, why: &str) {
        let Some(name) = path.file_name() else { return };
        let to = self.dir().join("rejected").join(name);
        match std::fs::rename(path, &to) {
            Ok(()) => {
                log::error!("{}: {why}; moved to {}", path.display(), to.display());
                // A mail of an older picomon, say; a link or a FIFO set
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
