//! Every file picomon opens, in one place. Its own files (state, spool,
//! queues, silences, locks) are written whole or not at all (temporary
//! file, fsync, rename, fsync of the directory), so that a crash or power
//! loss leaves either the old content or the new one, never half of
//! either; readable by picomon's user only (alerts and state name hosts
//! and carry plugin output), whatever the umask; and opened without
//! following a link, only when they are regular files, and read with a
//! bound, so that whoever can put a name in those directories can make
//! picomon neither write elsewhere (a link to /etc/shadow, run as root)
//! nor hang (a FIFO) nor eat memory (a link to /dev/zero). The operator's
//! own files (configuration, secrets) go through the same reader, which
//! follows links there: NixOS links them into its store.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file picomon writes.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of every directory picomon creates.
const DIR_MODE: u32 = 0o700;

/// Why a file was not opened or read. A typed enum: a missing file is a
/// first start to some callers, everything else a file to set aside.
#[derive(Debug)]
pub enum Refused {
    /// Nothing at the path.
    Missing,
    /// A symbolic link where picomon follows none.
    Link,
    /// Something other than a regular file: what it is.
    NotRegular(&'static str),
    /// Longer than the bound its reader gave, in bytes.
    TooLarge(u64),
    /// The system refused (permissions, I/O error).
    Io(io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Missing => write!(f, "no such file"),
            Refused::Link => write!(
                f,
                "a symbolic link, which picomon does not follow in its own directories"
            ),
            Refused::NotRegular(what) => write!(f, "{what}; it must be a regular file"),
            Refused::TooLarge(cap) => write!(f, "larger than {} KiB", cap / 1024),
            Refused::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<Refused> for io::Error {
    fn from(refused: Refused) -> io::Error {
        match refused {
            Refused::Io(e) => e,
            Refused::Missing => io::Error::from(io::ErrorKind::NotFound),
            other => io::Error::other(other.to_string()),
        }
    }
}

/// Whether a symbolic link at the end of a path is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// The operator's files, which may be links (NixOS, /etc/alternatives).
    Follow,
    /// picomon's own directories: a link there is refused.
    Refuse,
}

/// What a file is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    /// A lock file: read and written, created (0600) when missing.
    Lock,
}

/// Opens the regular file `path`, never blocking (O_NONBLOCK: a FIFO
/// neither waits for a writer at the open nor at a read) and never
/// becoming its controlling terminal; with `Links::Refuse`, a link at the
/// end of the path is refused (O_NOFOLLOW) rather than followed.
pub fn open_regular(path: &Path, access: Access, links: Links) -> Result<File, Refused> {
    // Looked at before opening too: opening a device may already do
    // something (rewind a tape, hang up a modem).
    let before = match links {
        Links::Follow => fs::metadata(path),
        Links::Refuse => fs::symlink_metadata(path),
    };
    match before {
        Ok(meta) => regular(&meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound && access == Access::Lock => {}
        Err(e) => return Err(refused(e)),
    }
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let mut options = fs::OpenOptions::new();
    options.read(true).custom_flags(flags);
    if access == Access::Lock {
        options
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE);
    }
    let file = options.open(path).map_err(refused)?;
    // What was opened, which may not be what was looked at.
    regular(&file.metadata().map_err(Refused::Io)?)?;
    Ok(file)
}

/// Reads the regular file `path` whole, at most `cap` bytes (a longer one
/// is refused, not cut), without blocking; returns the bytes and the file,
/// still open (for its mode, or to make it private without a second
/// lookup of its name).
pub(crate) fn read_regular(
    path: &Path,
    cap: u64,
    links: Links,
) -> Result<(Vec<u8>, File), Refused> {
    let file = open_regular(path, Access::Read, links)?;
    let len = file.metadata().map_err(Refused::Io)?.len();
    if len > cap {
        return Err(Refused::TooLarge(cap));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    (&file)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(Refused::Io)?;
    if bytes.len() as u64 > cap {
        return Err(Refused::TooLarge(cap));
    }
    Ok((bytes, file))
}

/// Refuses anything but a regular file, saying what it is instead.
fn regular(meta: &fs::Metadata) -> Result<(), Refused> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_symlink() {
        return Err(Refused::Link);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(Refused::NotRegular(what))
}

/// The error of an open or a look, in the terms of `Refused`.
fn refused(e: io::Error) -> Refused {
    match e.raw_os_error() {
        // O_NOFOLLOW on a link.
        Some(libc::ELOOP) => Refused::Link,
        Some(libc::ENOENT) => Refused::Missing,
        _ => Refused::Io(e),
    }
}

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
    // A stale temporary file (or a link planted in its name) is removed,
    // never opened: unlink takes the name away, not what a link points to.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        // O_EXCL: created here or not at all, so a name planted between
        // the unlink and the open is never written through.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        // The mode given at creation passes through the umask.
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if let Err(e) = &result {
        // Not a file of ours when it was already there.
        if e.kind() != io::ErrorKind::AlreadyExists {
            let _ = fs::remove_file(&tmp);
        }
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

/// Creates `dir` like `create_private_dir`, for a directory picomon keeps
/// inside `state_dir` (the spool, a queue): one that is a link is
/// refused, since a link planted there would take picomon's files, and
/// its set-aside entries, elsewhere. (`state_dir` itself may be a link:
/// systemd's DynamicUser makes it one.)
pub(crate) fn create_own_dir(dir: &Path) -> io::Result<()> {
    create_private_dir(dir)?;
    match fs::symlink_metadata(dir)?.file_type().is_symlink() {
        true => Err(io::Error::other(format!(
            "{}: {}",
            dir.display(),
            Refused::Link
        ))),
        false => Ok(()),
    }
}

/// Makes an existing file 0600 (one written by an older picomon under a
/// looser umask, say), and never what a link at `path` points to.
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    crate::sys::chmod_no_follow(path, FILE_MODE)
}

/// Makes a rename or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A small secret or certificate file, read whole: only a regular file
/// (a link to one is followed: the operator's files may be links), at
/// most `cap` bytes, and never a blocking read. A FIFO used to block
/// `check-config` forever (and a reload, the daemon), `/dev/zero` to eat
/// memory until the machine ran out. Returns the bytes and the file's
/// permission bits.
pub(crate) fn read_small_file(path: &Path, cap: u64) -> Result<(Vec<u8>, u32), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let read = read_regular(path, cap, Links::Follow).and_then(|(bytes, file)| {
        let meta = file.metadata().map_err(Refused::Io)?;
        Ok((bytes, meta.mode() & 0o7777))
    });
    read.map_err(|e| match e {
        Refused::NotRegular(_) | Refused::TooLarge(_) => format!("{shown} is {e}"),
        _ => format!("cannot read {shown}: {e}"),
    })
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

    #[test]
    fn a_planted_link_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("write");
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).expect("chmod");
        let link = dir.path().join("state.json");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        assert!(matches!(
            read_regular(&link, 1024, Links::Refuse),
            Err(Refused::Link)
        ));
        assert_eq!(
            read_regular(&link, 1024, Links::Follow).expect("read").0,
            b"precious"
        );
        assert!(matches!(
            open_regular(&link, Access::Lock, Links::Refuse),
            Err(Refused::Link)
        ));
        assert!(make_private(&link).is_err(), "a link's target is not ours");
        // The temporary file of an atomic write, planted as a link.
        std::os::unix::fs::symlink(&victim, dir.path().join(".out.json.tmp")).expect("symlink");
        write_atomic(&dir.path().join("out.json"), b"new").expect("write");
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        assert_eq!(mode(&victim), 0o644);
        assert_eq!(fs::read(dir.path().join("out.json")).expect("read"), b"new");
    }

    #[test]
    fn fifos_devices_and_long_files_are_refused_without_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        for links in [Links::Follow, Links::Refuse] {
            let err = read_regular(&fifo, 1024, links).expect_err("a FIFO");
            assert!(
                matches!(err, Refused::NotRegular("a FIFO (named pipe)")),
                "{err}"
            );
        }
        let err = read_regular(Path::new("/dev/zero"), 1024, Links::Follow).expect_err("a device");
        assert!(matches!(err, Refused::NotRegular("a device")), "{err}");
        let long = dir.path().join("long");
        fs::write(&long, vec![b'x'; 2049]).expect("write");
        let err = read_regular(&long, 2048, Links::Refuse).expect_err("too long");
        assert_eq!(err.to_string(), "larger than 2 KiB");
        assert!(matches!(
            read_regular(&dir.path().join("none"), 1, Links::Refuse),
            Err(Refused::Missing)
        ));
    }

    #[test]
    fn a_directory_of_picomon_planted_as_a_link_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("mkdir");
        let outbox = dir.path().join("outbox");
        std::os::unix::fs::symlink(&elsewhere, &outbox).expect("symlink");
        let err = create_own_dir(&outbox).expect_err("a link");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        create_own_dir(&dir.path().join("queue")).expect("a new directory");
        create_own_dir(&dir.path().join("queue")).expect("an existing one");
    }
}
