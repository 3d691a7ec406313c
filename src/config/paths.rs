//! The paths a configuration names, checked before the daemon relies on
//! them: `state_dir` must be a directory picomon can write (or create), so
//! that whatever `check-config` accepts also starts. Checked here, at
//! validation, because `check-config` and the daemon share that path.
//! The default `state_dir` of the packaged configurations is here too.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The `state_dir` of a configuration that sets none, from where its main
/// file is: the state directories of the packaged units, so that
/// `picomon status -c /etc/picomon/site.toml` asks the daemon of
/// `picomon@site.service` even when the operator made site.toml by
/// copying /etc/picomon.toml. A file anywhere else keeps no state.
///
/// - `/etc/picomon.toml` → `/var/lib/picomon` (`picomon.service`);
/// - `/etc/picomon/NAME.toml` → `/var/lib/picomon/NAME` (`picomon@NAME`).
pub(super) fn default_state_dir(main: &Path) -> Option<PathBuf> {
    // `-c site.toml` run in /etc/picomon names the same file; `..` is
    // left alone, as a link may stand before it.
    let main = std::path::absolute(main).ok()?;
    let parts: Vec<Component> = main.components().collect();
    fn name<'a>(c: &Component<'a>) -> Option<&'a str> {
        match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        }
    }
    match parts.as_slice() {
        [Component::RootDir, etc, file] if name(etc) == Some("etc") => {
            (name(file) == Some("picomon.toml")).then(|| PathBuf::from("/var/lib/picomon"))
        }
        [Component::RootDir, etc, dir, file]
            if name(etc) == Some("etc") && name(dir) == Some("picomon") =>
        {
            let stem = name(file)?.strip_suffix(".toml")?;
            // A hidden or empty name is no instance systemd would run.
            (!stem.is_empty() && !stem.starts_with('.'))
                .then(|| Path::new("/var/lib/picomon").join(stem))
        }
        _ => None,
    }
}

/// Longest path the kernel takes (PATH_MAX, with its NUL).
const PATH_MAX: usize = 4095;
/// Longest file name in a path (NAME_MAX).
const NAME_MAX: usize = 255;

/// Why `dir` cannot be a state directory, or None when it can. With
/// `on_disk` false only the text of the path is checked: the
/// configuration is validated where it is built, not where it runs.
pub(super) fn state_dir_problem(dir: &Path, on_disk: bool) -> Option<String> {
    let bytes = dir.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Some(
            "must not be empty: give an absolute path such as /var/lib/picomon, \
             or leave the key out to keep no state"
                .into(),
        );
    }
    if bytes.contains(&0) {
        return Some("must not contain a NUL byte".into());
    }
    if !dir.is_absolute() {
        return Some(format!(
            "{:?} must be an absolute path, not one relative to where picomon starts",
            dir
        ));
    }
    if bytes.len() > PATH_MAX || dir.iter().any(|c| c.len() > NAME_MAX) {
        return Some(format!(
            "is too long for a path ({} bytes; at most {PATH_MAX}, {NAME_MAX} per name)",
            bytes.len()
        ));
    }
    if !on_disk {
        return None;
    }
    // The directory itself, or the nearest ancestor it would be created in.
    for at in dir.ancestors() {
        match std::fs::metadata(at) {
            Ok(meta) if meta.is_dir() => return writable_dir(at, at != dir),
            Ok(_) if at == dir => return Some(format!("{} is not a directory", at.display())),
            Ok(_) => {
                return Some(format!(
                    "cannot be created: {} is not a directory",
                    at.display()
                ))
            }
            Err(e) if missing(&e) => continue,
            Err(e) => return Some(format!("cannot look at {}: {e}", at.display())),
        }
    }
    None
}

/// A path that does not exist (yet), or one under a file: keep going up.
fn missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Whether picomon may create files in the existing directory `at`
/// (`create` when the state directory is still to be made inside it).
fn writable_dir(at: &Path, create: bool) -> Option<String> {
    let what = match create {
        true => format!("cannot be created: {} is", at.display()),
        false => format!("{} is", at.display()),
    };
    if let Some(fs) = kernel_filesystem(at) {
        return Some(format!(
            "{what} on the kernel's {fs} filesystem, where picomon cannot keep files"
        ));
    }
    if let Err(e) = crate::sys::may_write_in(at) {
        return Some(format!("{what} not writable by picomon: {e}"));
    }
    match create {
        true => None,
        false => others_may_write(at),
    }
}

/// Why the existing state directory `dir` is not picomon's alone, or None
/// when it is. Whoever may write in it can replace the state, or queue a
/// mail for picomon to send: one writable by anyone is refused, like such
/// a configuration file, and so is one owned by another user than
/// picomon's (or root's). root itself may use a directory its daemon's
/// user owns (a systemd DynamicUser's), as `picomon silence` does.
pub(crate) fn others_may_write(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot look at {shown}: {e}")),
    };
    let mode = meta.mode() & 0o7777;
    let me = crate::sys::euid();
    if mode & 0o002 != 0 {
        return Some(format!(
            "{shown} is writable by anyone (mode {mode:04o}), who could replace picomon's state or queue mail for it to send: chmod o-w {shown}, or give picomon a directory of its own"
        ));
    }
    if me != 0 && meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "{shown} belongs to another user (uid {}), who could replace picomon's state or queue mail for it to send: give picomon (uid {me}) a directory of its own",
            meta.uid()
        ));
    }
    None
}

/// The warning for a state directory its group may write in, or None. A
/// shared admin group may be deliberate, so it is said, not refused; it is
/// said where the configuration is validated, once, and not again when the
/// state store opens the directory.
pub(crate) fn group_may_write(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(dir).ok()?.mode() & 0o7777;
    (mode & 0o020 != 0).then(|| {
        format!(
            "state_dir {}: writable by its group (mode {mode:04o}), whose members can replace picomon's state or queue mail for it to send",
            dir.display()
        )
    })
}

/// The name of the pseudo filesystem `at` is on (proc, sys, …), where
/// even root's writes fail although `access` allows them.
#[cfg(target_os = "linux")]
fn kernel_filesystem(at: &Path) -> Option<&'static str> {
    let kind = crate::sys::filesystem_magic(at).ok()?;
    // The constants' type differs between targets.
    #[allow(clippy::unnecessary_cast)]
    let known = [
        (libc::PROC_SUPER_MAGIC as i64, "proc"),
        (libc::SYSFS_MAGIC as i64, "sysfs"),
        (libc::CGROUP_SUPER_MAGIC as i64, "cgroup"),
        (libc::CGROUP2_SUPER_MAGIC as i64, "cgroup2"),
        (libc::DEBUGFS_MAGIC as i64, "debugfs"),
        (libc::SECURITYFS_MAGIC as i64, "securityfs"),
        (libc::DEVPTS_SUPER_MAGIC as i64, "devpts"),
    ];
    known
        .into_iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, name)| name)
}

#[cfg(not(target_os = "linux"))]
fn kernel_filesystem(_at: &Path) -> Option<&'static str> {
    None
}

/// How large a password file may be.
pub(super) const PASSWORD_CAP: u64 = 64 * 1024;
/// How large a CA bundle may be (the system's whole bundle is ~200 KiB).
pub(crate) const CA_CAP: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_configurations_default_to_their_units_state_directories() {
        let default = |main: &str| default_state_dir(Path::new(main));
        assert_eq!(
            default("/etc/picomon.toml"),
            Some(PathBuf::from("/var/lib/picomon"))
        );
        assert_eq!(
            default("/etc/picomon/site.toml"),
            Some(PathBuf::from("/var/lib/picomon/site"))
        );
        assert_eq!(
            default("/etc//picomon/./site.toml"),
            Some(PathBuf::from("/var/lib/picomon/site"))
        );
        for elsewhere in [
            "/etc/picomon/site.conf",
            "/etc/picomon/.toml",
            "/etc/picomon/.site.toml",
            "/etc/picomon/site.d/10-mail.toml",
            "/etc/picomon.d/10-mail.toml",
            "/etc/other.toml",
            "/srv/etc/picomon.toml",
            "/etc/picomon/../picomon.toml",
        ] {
            assert_eq!(default(elsewhere), None, "{elsewhere}");
        }
    }
}
