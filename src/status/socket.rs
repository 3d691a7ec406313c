//! The status socket, `state_dir/status.sock`: how `picomon status` gets
//! the running daemon's live view without a signal and without its
//! standard output.
//!
//! Why a socket and not a status file: a file the daemon keeps current
//! must be written when outputs change, which for a failing check is on
//! every run; a socket costs nothing until someone asks. The daemon's own
//! thread accepts one connection at a time (with timeouts, so a client
//! that says nothing cannot hold it), asks the daemon loop for a view
//! (built in memory, only then) and writes it as JSON; the loop never
//! waits on a client. The socket is 0600, created under another name and
//! renamed into place, so only the daemon's user (and root) may connect,
//! whatever the umask and the mode of `state_dir`.
//!
//! When nothing answers, the lock of `state_dir` tells why: free, no
//! picomon runs for it; held, one runs that does not answer. The lock is
//! looked up in /proc/locks, never taken: taking it, even for an instant,
//! could make a daemon starting at that moment fail "state_dir is in use".

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::status::View;

const SOCKET_NAME: &str = "status.sock";
/// How long one client may take to ask and to read the answer.
const CLIENT_LIMIT: Duration = Duration::from_secs(2);
/// How long the socket thread waits for the daemon loop's view.
const VIEW_LIMIT: Duration = Duration::from_secs(10);
/// How long `picomon status` waits for the whole answer.
const QUERY_LIMIT: Duration = Duration::from_secs(15);
/// The only request there is; anything else is refused.
const REQUEST: &str = "status";

/// The listening socket; its file is removed when this is dropped, which
/// the daemon does before it lets go of the lock of `state_dir`.
pub(crate) struct StatusSocket {
    path: PathBuf,
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `dir/status.sock` in a thread of its own; each query is
/// answered with a view the daemon loop sends back on the channel that
/// `ask` hands it (false: the loop is gone). Call it while holding the
/// lock of `dir`.
pub(crate) fn serve(
    dir: &Path,
    ask: impl Fn(Sender<View>) -> bool + Send + 'static,
) -> io::Result<StatusSocket> {
    let path = dir.join(SOCKET_NAME);
    // `.NAME.tmp`: a leftover after a crash is cleared at the next start.
    let tmp = dir.join(format!(".{SOCKET_NAME}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    crate::files::make_private(&tmp)?;
    // Over a stale socket of a picomon that died: it holds no lock any more.
    std::fs::rename(&tmp, &path)?;
    std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => answer(conn, &ask),
                    Err(e) => {
                        log::warn!("status socket: cannot accept a connection: {e}");
                        // Out of descriptors, say: no busy loop meanwhile.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(StatusSocket { path })
}

/// Answers one client: reads its request line, writes the view as JSON.
fn answer(conn: UnixStream, ask: &impl Fn(Sender<View>) -> bool) {
    let _ = conn.set_read_timeout(Some(CLIENT_LIMIT));
    let _ = conn.set_write_timeout(Some(CLIENT_LIMIT));
    let mut request = String::new();
    let read = BufReader::new(&conn).take(64).read_line(&mut request);
    let reply = match read {
        Ok(_) if request.trim() == REQUEST => {
            let (tx, rx) = crossbeam_channel::bounded(1);
            // The loop gone (stopping) or late: the client is told so.
            match ask(tx).then(|| rx.recv_timeout(VIEW_LIMIT).ok()).flatten() {
                Some(view) => serde_json::to_string(&view)
                    .unwrap_or_else(|e| error_reply(&format!("cannot encode the view: {e}"))),
                None => error_reply("the daemon loop did not answer"),
            }
        }
        Ok(_) => error_reply(&format!("unknown request {:?}", request.trim())),
        Err(_) => return,
    };
    let mut conn = &conn;
    let _ = conn.write_all(reply.as_bytes());
    let _ = conn.write_all(b"\n");
}

fn error_reply(what: &str) -> String {
    serde_json::json!({ "error": what }).to_string()
}

/// Why `picomon status` has no view.
#[derive(Debug)]
pub(crate) enum NoView {
    /// The lock of `state_dir` is free.
    NotRunning(PathBuf),
    /// A picomon holds the lock but does not answer.
    NoAnswer {
        dir: PathBuf,
        pid: Option<u32>,
        why: String,
    },
}

impl std::fmt::Display for NoView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoView::NotRunning(dir) => write!(
                f,
                "no picomon is running with state_dir {} (its lock is free)",
                dir.display()
            ),
            NoView::NoAnswer { dir, pid, why } => {
                let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                write!(
                    f,
                    "the picomon holding {}{pid} does not answer on {}: {why}",
                    dir.join("picomon.lock").display(),
                    dir.join(SOCKET_NAME).display()
                )
            }
        }
    }
}

/// The view of the daemon running with `state_dir` `dir`.
pub(crate) fn query(dir: &Path) -> Result<View, NoView> {
    let no_answer = |why: String| match lock_holder(dir) {
        Some(pid) => NoView::NoAnswer {
            dir: dir.to_path_buf(),
            pid: Some(pid).filter(|p| *p != 0),
            why,
        },
        None => NoView::NotRunning(dir.to_path_buf()),
    };
    let ask = || -> io::Result<String> {
        let mut conn = UnixStream::connect(dir.join(SOCKET_NAME))?;
        conn.set_read_timeout(Some(QUERY_LIMIT))?;
        conn.set_write_timeout(Some(QUERY_LIMIT))?;
        conn.write_all(format!("{REQUEST}\n").as_bytes())?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply)?;
        Ok(reply)
    };
    let reply = ask().map_err(|e| no_answer(e.to_string()))?;
    match serde_json::from_str::<View>(&reply) {
        Ok(view) => Ok(view),
        Err(e) => {
            let why = serde_json::from_str::<serde_json::Value>(&reply)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| format!("an answer that is not a status view: {e}"));
            Err(no_answer(why))
        }
    }
}

/// The pid of the process holding the flock of `dir/picomon.lock`, from
/// /proc/locks (0 when the lock is held but the pid unknown); None when
/// the lock is free or the file missing.
fn lock_holder(dir: &Path) -> Option<u32> {
    let meta = std::fs::metadata(dir.join("picomon.lock")).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let dev = meta.dev();
    let wanted = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    holder_in(&locks, &wanted)
}

/// In /proc/locks text, the pid holding a FLOCK on the file `wanted`
/// (`MAJOR:MINOR:INODE`, as /proc/locks writes it).
fn holder_in(locks: &str, wanted: &str) -> Option<u32> {
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2d:5678 0 EOF"; a waiter's
        // line has "->" after the number, and is not a holder.
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == wanted => Some(pid.parse().unwrap_or(0)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_of_a_flock_is_read_from_proc_locks_and_waiters_are_not_holders() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 00:2d:42 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 1234 00:2d:42 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 77 00:2d:43 0 EOF\n";
        assert_eq!(holder_in(locks, "00:2d:42"), Some(1234));
        assert_eq!(holder_in(locks, "00:2d:43"), None);
        assert_eq!(holder_in(locks, "fd:01:42"), None);
    }

    #[test]
    fn a_lock_held_by_this_process_is_found_and_a_free_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::state_store::StateStore::open(dir.path()).expect("open");
        assert_eq!(lock_holder(dir.path()), Some(std::process::id()));
        drop(store);
        assert_eq!(lock_holder(dir.path()), None);
        match query(dir.path()) {
            Err(NoView::NotRunning(_)) => {}
            other => panic!("expected NotRunning, got {other:?}"),
        }
    }
}
