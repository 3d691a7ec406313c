//! The paths a configuration names, checked before the daemon relies on
//! them: `state_dir` must be a directory picomon can write (or create), so
//! that whatever `check-config` accepts also starts. Checked here, at
//! validation, because `check-config` and the daemon share that path.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

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
    let c = CString::new(at.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; access
    // only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let e = io::Error::last_os_error();
        return Some(format!("{what} not writable by picomon: {e}"));
    }
    None
}

/// The name of the pseudo filesystem `at` is on (proc, sys, …), where
/// even root's writes fail although `access` allows them.
#[cfg(target_os = "linux")]
// f_type and the magic numbers are i64 here but other types elsewhere.
#[allow(clippy::unnecessary_cast)]
fn kernel_filesystem(at: &Path) -> Option<&'static str> {
    let c = CString::new(at.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path; statfs fills `st`, which is
    // read only when it succeeded.
    if unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statfs returned 0, so it initialised `st`.
    let kind = unsafe { st.assume_init() }.f_type as i64;
    [
        (libc::PROC_SUPER_MAGIC as i64, "proc"),
        (libc::SYSFS_MAGIC as i64, "sysfs"),
        (libc::CGROUP_SUPER_MAGIC as i64, "cgroup"),
        (libc::CGROUP2_SUPER_MAGIC as i64, "cgroup2"),
        (libc::DEBUGFS_MAGIC as i64, "debugfs"),
        (libc::SECURITYFS_MAGIC as i64, "securityfs"),
        (libc::DEVPTS_SUPER_MAGIC as i64, "devpts"),
    ]
    .into_iter()
    .find(|(magic, _)| *magic == kind)
    .map(|(_, name)| name)
}

#[cfg(not(target_os = "linux"))]
fn kernel_filesystem(_at: &Path) -> Option<&'static str> {
    None
}
