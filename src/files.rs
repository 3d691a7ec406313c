//! Durable, private small files: written whole or not at all (temporary
//! file, fsync, rename, fsync of the directory), so that a crash or power
//! loss leaves either the old content or the new one, never half of
//! either; and readable by picomon's user only (alerts and state name
//! hosts and carry plugin output), whatever the umask.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file picomon writes.
const FILE_MODE: u32 = 0o600;
/// Mode of every directory picomon creates.
const DIR_MODE: u32 = 0o700;

/// Replaces `path` with `bytes` atomically and durably; the file is 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_owned(path, bytes, None)
}

/// Like `write_atomic`, and the file belongs to `owner` (uid, gid) from
/// the start: root writing for a daemon that runs as another user.
pub(crate) fn write_atomic_owned(
    path: &Path,
    bytes: &[u8],
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: not a file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        // The mode given at creation passes through the umask, and an old
        // temporary file keeps its own: set it outright.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `name` is the temporary file of an atomic write (`.NAME.tmp`),
/// which only a crash in the middle of `write_atomic` leaves behind.
pub(crate) fn is_leftover(name: &str) -> bool {
    name.len() > ".tmp".len() + 1 && name.starts_with('.') && name.ends_with(".tmp")
}

/// Removes the leftovers of interrupted atomic writes in `dir`; returns
/// how many there were. Call it only while holding the directory's lock.
pub(crate) fn remove_leftovers(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_leftover) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Creates `dir` and its missing parents. Those it creates are 0700 (an
/// existing directory is left as the operator made it: it may be shared).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        // The umask may have taken bits away from the mode.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes an existing file 0600 (one written by an older picomon under a
/// looser umask, say).
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
}

/// Makes a rename or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn files_are_0600_and_created_directories_0700() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).expect("mkdir");
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        let path = nested.join("f.json");
        // A world-readable file of an older picomon becomes private.
        fs::write(&path, b"old").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        write_atomic(&path, b"new").expect("write");
        assert_eq!(mode(&path), 0o600);
        // An existing directory is not changed.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(dir.path()).expect("exists");
        assert_eq!(mode(dir.path()), 0o755);
    }

    #[test]
    fn leftovers_of_interrupted_writes_are_recognised_and_removed() {
        assert!(is_leftover(".0001-000001.json.tmp"));
        assert!(!is_leftover("0001.json"));
        assert!(!is_leftover(".tmp"));
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(".x.json.tmp"), b"half").expect("write");
        fs::write(dir.path().join("x.json"), b"{}").expect("write");
        assert_eq!(remove_leftovers(dir.path()).expect("clean"), 1);
        assert!(dir.path().join("x.json").exists());
        assert!(!dir.path().join(".x.json.tmp").exists());
    }
}
