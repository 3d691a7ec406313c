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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use anyhow::Context;

use super::message::Mail;
use crate::files;

/// The extension of a queued mail's file.
const QUEUED: &str = "json";
/// The extension of an alert's file until its switch is saved.
const PENDING: &str = "pending";

/// Spooled messages, one JSON file each, named so that lexical order is
/// queueing order.
#[derive(Clone)]
pub(crate) struct Spool {
    pub(crate) dir: PathBuf,
}

impl Spool {
    /// Opens (creates) the spool in `dir` and removes what interrupted
    /// writes left there. The caller holds the state directory's lock.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Spool> {
        files::create_private_dir(&dir.join("rejected"))
            .with_context(|| format!("cannot create the mail spool {}", dir.display()))?;
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
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes `mail` to `path`, or to a new file (`.pending` if `pending`,
    /// else `.json`) named after its queueing time.
    pub(crate) fn save(&self, mail: &Mail, path: Option<&Path>) -> std::io::Result<PathBuf> {
        self.write(mail, path, QUEUED)
    }

    /// Writes `mail` as pending: not to be sent, now or after a restart,
    /// unless `commit` follows or the saved state tells its switch.
    pub(crate) fn save_pending(&self, mail: &Mail) -> std::io::Result<PathBuf> {
        self.write(mail, None, PENDING)
    }

    fn write(&self, mail: &Mail, path: Option<&Path>, kind: &str) -> std::io::Result<PathBuf> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let nanos = mail
                    .queued_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let n = COUNT.fetch_add(1, Ordering::Relaxed);
                self.dir.join(format!("{nanos:024}-{n:06}.{kind}"))
            }
        };
        let json = serde_json::to_vec_pretty(mail).map_err(std::io::Error::other)?;
        files::write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Makes a pending mail an ordinary queued one, durably.
    pub(crate) fn commit(&self, pending: &Path) -> std::io::Result<PathBuf> {
        let queued = pending.with_extension(QUEUED);
        std::fs::rename(pending, &queued)?;
        files::sync_dir(&self.dir)?;
        Ok(queued)
    }

    /// Everything still queued, oldest first; unreadable files set aside.
    /// A pending mail (its writer stopped before the switch was saved, or
    /// just after) is kept when `told(mail)`, the saved state having its
    /// switch, and dropped otherwise: the check tells it again.
    pub(crate) fn load(&self, told: impl Fn(&Mail) -> bool) -> Vec<(Mail, Option<PathBuf>)> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == QUEUED || e == PENDING))
                .collect(),
            Err(e) => {
                log::error!("{}: cannot list the mail spool: {e}", self.dir.display());
                return Vec::new();
            }
        };
        paths.sort();
        let mut mails = Vec::new();
        for path in paths {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Mail>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(mail) if path.extension().is_some_and(|e| e == PENDING) && !told(&mail) => {
                    log::info!(
                        "{}: dropped, picomon stopped before saving the switch it tells (the check will tell it again): {}",
                        path.display(),
                        mail.subject
                    );
                    if let Err(e) =
                        std::fs::remove_file(&path).and_then(|_| files::sync_dir(&self.dir))
                    {
                        log::error!("{}: cannot remove it: {e}", path.display());
                    }
                }
                Ok(mail) => {
                    if let Err(e) = files::make_private(&path) {
                        log::warn!("{}: cannot make it private (0600): {e}", path.display());
                    }
                    let path = match path.extension().is_some_and(|e| e == PENDING) {
                        true => self.commit(&path).unwrap_or_else(|e| {
                            log::warn!("{}: cannot mark it queued: {e}", path.display());
                            path
                        }),
                        false => path,
                    };
                    mails.push((mail, Some(path)));
                }
                Err(e) => self.set_aside(&path, &format!("unreadable spooled mail: {e}")),
            }
        }
        mails
    }

    pub(crate) fn remove(&self, path: &Path) {
        if let Err(e) = std::fs::remove_file(path).and_then(|_| files::sync_dir(&self.dir)) {
            log::error!(
                "{}: cannot remove a sent mail from the spool: {e}",
                path.display()
            );
        }
    }

    /// Moves a mail that can never be sent to `rejected/`, saying why.
    pub(crate) fn set_aside(&self, path: &Path, why: &str) {
        let Some(name) = path.file_name() else { return };
        let to = self.dir.join("rejected").join(name);
        match std::fs::rename(path, &to).and_then(|_| files::make_private(&to)) {
            Ok(()) => log::error!("{}: {why}; moved to {}", path.display(), to.display()),
            Err(e) => log::error!(
                "{}: {why}; cannot move it to {}: {e}",
                path.display(),
                to.display()
            ),
        }
    }
}
