//! The status socket, `state_dir/status.sock`: how `picomon status` gets
//! the running daemon's live view without a signal and without its
//! standard output.
//!
//! Why a socket and not a status file: a file the daemon keeps current
//! must be written when outputs change, which for a failing check is on
//! every run; a socket costs nothing until someone asks. The daemon's
//! socket thread only accepts; each client is served in a thread of its
//! own (up to `MAX_CLIENTS` at once) by a deadline for the whole request
//! and one for the whole answer, so neither an idle client nor twenty
//! can keep a real one waiting. The view is asked of the daemon loop
//! (built in memory, only then) and written as JSON; the loop never
//! waits on a client. The socket is 0600, created under another name and
//! renamed into place, so only the daemon's user (and root) may connect,
//! whatever the umask and the mode of `state_dir`.
//!
//! `picomon status` has one deadline for connecting, asking and reading,
//! and tells each way of failing apart: timed out (the daemon hangs),
//! permission denied (the user may not ask), and no answer at all, where
//! the lock of `state_dir` tells why: free, no picomon runs for it; held,
//! one runs that does not answer. The lock is looked up in /proc/locks,
//! never taken: taking it, even for an instant, could make a daemon
//! starting at that moment fail "state_dir is in use".
//!
//! `picomon ack` asks over the same socket (`ack {json}`): the daemon
//! loop owns the states, so an acknowledgement is noted there, saved at
//! once, and the answer says which instances it covers.

use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use crate::deadline_io::{left, write_by};
use crate::human::fmt_secs;
use crate::push::Report;
use crate::status::View;

const SOCKET_NAME: &str = "status.sock";
/// How long a client has to send its request: one that connects and says
/// nothing is cut then.
const REQUEST_LIMIT: Duration = Duration::from_secs(1);
/// The longest request read: `status`, an `ack` with its reason, or
/// `push` with a report whose output is at most `push::OUTPUT_CAP` bytes,
/// JSON-escaped.
const REQUEST_MAX: usize = 8 * crate::push::OUTPUT_CAP;
/// How `picomon ack`'s request starts; JSON follows.
const ACK_PREFIX: &str = "ack ";
/// How long writing the answer to a client may take.
const REPLY_LIMIT: Duration = Duration::from_secs(2);
/// How long a client's thread waits for the daemon loop's view: less than
/// `QUERY_LIMIT`, so that `picomon status` hears that the loop is late.
const VIEW_LIMIT: Duration = Duration::from_secs(3);
/// How long `picomon status` waits for the whole answer, connecting
/// included: well below the 10 s a Nagios check is commonly given.
const QUERY_LIMIT: Duration = Duration::from_secs(5);
/// The longest answer `picomon status` reads (a view of 10,000 checks
/// with long outputs is a few MiB).
const REPLY_MAX: u64 = 256 << 20;
/// Clients served at once; one more is told at once that the daemon is
/// busy, rather than queued behind idle ones.
const MAX_CLIENTS: usize = 64;
/// The status request; anything else but a push is refused.
const REQUEST: &str = "status";
/// A push check's report: `push ` and a `PushRequest` as JSON, one line.
const PUSH: &str = "push ";

/// What `picomon push` sends after `PUSH`.
#[derive(serde::Serialize, serde::Deserialize)]
struct PushRequest {
    check: String,
    report: Report,
}

/// How the socket thread hands requests to the daemon loop: each sends
/// the loop a channel to answer on (false: the loop is gone).
pub(crate) struct Asks {
    status: Box<dyn Fn(Sender<View>) -> bool + Send + Sync>,
    ack: Box<AckAsk>,
    push: Box<PushAsk>,
}

type AckAsk = dyn Fn(AckRequest, Sender<AckAnswer>) -> bool + Send + Sync;

type PushAsk = dyn Fn(String, Report, Sender<Result<String, String>>) -> bool + Send + Sync;

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
    ask: impl Fn(Sender<View>) -> bool + Send + Sync + 'static,
    ack: impl Fn(AckRequest, Sender<AckAnswer>) -> bool + Send + Sync + 'static,
    push: impl Fn(String, Report, Sender<Result<String, String>>) -> bool + Send + Sync + 'static,
) -> io::Result<StatusSocket> {
    let path = dir.join(SOCKET_NAME);
    // `.NAME.tmp`: a leftover after a crash is cleared at the next start.
    let tmp = dir.join(format!(".{SOCKET_NAME}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    crate::files::make_private(&tmp)?;
    // Over a stale socket of a picomon that died: it holds no lock any more.
    std::fs::rename(&tmp, &path)?;
    let ask = Arc::new(Asks {
        status: Box::new(ask),
        ack: Box::new(ack),
        push: Box::new(push),
    });
    let served = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => admit(conn, &ask, &served),
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

/// A client being served; counted down when its thread ends (or could
/// not start).
struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `conn` in a thread of its own, or tells it the daemon is busy
/// when `MAX_CLIENTS` are being served already.
fn admit(conn: UnixStream, ask: &Arc<Asks>, served: &Arc<AtomicUsize>) {
    let seat = Seat(Arc::clone(served));
    if served.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        drop(seat);
        // Never waits: the reply fits the socket's buffer, or is lost.
        let _ = conn.set_nonblocking(true);
        let reply = error_reply(&format!(
            "{MAX_CLIENTS} clients are being served at once; try again"
        ));
        let _ = (&conn).write_all(format!("{reply}\n").as_bytes());
        return;
    }
    let ask = Arc::clone(ask);
    let spawned = std::thread::Builder::new()
        .name("status client".into())
        .spawn(move || {
            let _seat = seat;
            answer(&conn, &ask);
        });
    if let Err(e) = spawned {
        log::warn!("status socket: cannot start a thread for a client: {e}");
    }
}

/// Answers one client: reads its request line, writes the view as JSON;
/// a client that has not asked by `REQUEST_LIMIT` is cut off unanswered.
fn answer(conn: &UnixStream, ask: &Asks) {
    let Ok(request) = read_request(conn, Instant::now() + REQUEST_LIMIT) else {
        return;
    };
    let reply = if let Some(push) = request.strip_prefix(PUSH) {
        answer_push(push, ask)
    } else if let Some(json) = request.strip_prefix(ACK_PREFIX) {
        match serde_json::from_str::<AckRequest>(json) {
            Ok(request) => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                match (ask.ack)(request, tx)
                    .then(|| rx.recv_timeout(VIEW_LIMIT).ok())
                    .flatten()
                {
                    Some(Ok(done)) => serde_json::to_string(&done)
                        .unwrap_or_else(|e| error_reply(&format!("cannot encode: {e}"))),
                    Some(Err(why)) => error_reply(&why),
                    None => error_reply(&format!(
                        "the daemon loop did not answer within {} s",
                        fmt_secs(VIEW_LIMIT)
                    )),
                }
            }
            Err(e) => error_reply(&format!("a bad ack request: {e}")),
        }
    } else if request == REQUEST {
        let (tx, rx) = crossbeam_channel::bounded(1);
        // The loop gone (stopping) or late: the client is told so.
        match (ask.status)(tx)
            .then(|| rx.recv_timeout(VIEW_LIMIT).ok())
            .flatten()
        {
            Some(view) => serde_json::to_string(&view)
                .unwrap_or_else(|e| error_reply(&format!("cannot encode the view: {e}"))),
            None => error_reply(&format!(
                "the daemon loop did not answer within {} s",
                fmt_secs(VIEW_LIMIT)
            )),
        }
    } else {
        error_reply(&format!("unknown request {request:?}"))
    };
    let _ = write_by(
        conn,
        format!("{reply}\n").as_bytes(),
        Instant::now() + REPLY_LIMIT,
    );
}

/// The answer to a push: what the loop recorded, or why nothing was.
fn answer_push(json: &str, ask: &Asks) -> String {
    let request: PushRequest = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => return error_reply(&format!("not a push request: {e}")),
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    match (ask.push)(request.check, request.report, tx)
        .then(|| rx.recv_timeout(VIEW_LIMIT).ok())
        .flatten()
    {
        Some(Ok(said)) => serde_json::json!({ "recorded": said }).to_string(),
        Some(Err(why)) => error_reply(&why),
        None => error_reply(&format!(
            "the daemon loop did not answer within {} s",
            fmt_secs(VIEW_LIMIT)
        )),
    }
}

/// The first line a client sends (at most `REQUEST_MAX` bytes), read by
/// `deadline`.
fn read_request(mut conn: &UnixStream, deadline: Instant) -> io::Result<String> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.contains(&b'\n') && got.len() < REQUEST_MAX {
        conn.set_read_timeout(Some(left(deadline)?))?;
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let line = got.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).trim().to_string())
}

/// Everything `conn` sends until it closes, by `deadline`, at most
/// `REPLY_MAX` bytes.
fn read_by(mut conn: &UnixStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        conn.set_read_timeout(Some(left(deadline)?))?;
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if got.len() as u64 > REPLY_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an answer longer than {REPLY_MAX} bytes"),
            ));
        }
    }
}

/// Connects to the socket at `path` by `deadline`: a hung daemon whose
/// backlog is full would otherwise keep connect() waiting for ever.
fn connect_by(path: &Path, deadline: Instant) -> io::Result<UnixStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    // On a unix socket, the send timeout bounds a blocking connect too.
    socket.set_write_timeout(Some(left(deadline)?))?;
    socket.connect(&SockAddr::unix(path)?)?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(socket)))
}

fn error_reply(what: &str) -> String {
    serde_json::json!({ "error": what }).to_string()
}

/// Why `picomon status` has no view.
#[derive(Debug)]
pub(crate) enum NoView {
    /// The lock of `state_dir` is free.
    NotRunning(PathBuf),
    /// The socket (or `state_dir`) may not be opened by this user.
    Denied { socket: PathBuf, why: io::Error },
    /// Connected (or connecting), but no answer by the deadline.
    TimedOut {
        socket: PathBuf,
        pid: Option<u32>,
        after: Duration,
    },
    /// A picomon holds the lock but does not answer.
    NoAnswer {
        dir: PathBuf,
        pid: Option<u32>,
        why: String,
    },
}

impl std::fmt::Display for NoView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let of = |pid: &Option<u32>| pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        match self {
            NoView::NotRunning(dir) => write!(
                f,
                "no picomon is running with state_dir {} (its lock is free)",
                dir.display()
            ),
            NoView::Denied { socket, why } => write!(
                f,
                "you may not ask the picomon at {}: {why}; only picomon's user and root may (run picomon status as one of them)",
                socket.display()
            ),
            NoView::TimedOut { socket, pid, after } => write!(
                f,
                "timed out after {} s: the picomon{} at {} is not answering",
                fmt_secs(*after),
                of(pid),
                socket.display()
            ),
            NoView::NoAnswer { dir, pid, why } => write!(
                f,
                "the picomon holding {}{} does not answer on {}: {why}",
                dir.join("picomon.lock").display(),
                of(pid),
                dir.join(SOCKET_NAME).display()
            ),
        }
    }
}

/// `picomon ack`: acknowledge the failing instances matching `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AckRequest {
    pub pattern: String,
    pub reason: String,
    /// Who asks: the user running `picomon ack`.
    pub by: String,
}

/// What an ack covered: the failing instances acknowledged, and those
/// the pattern matched that were not failing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AckReply {
    pub acked: Vec<String>,
    pub not_failing: Vec<String>,
}

/// The daemon loop's answer to an ack: what it covered, or why not.
pub(crate) type AckAnswer = Result<AckReply, String>;

/// Asks the daemon running with `state_dir` `dir` to acknowledge.
pub(crate) fn ack(dir: &Path, request: &AckRequest) -> Result<AckAnswer, NoView> {
    let json = serde_json::to_string(request).map_err(|e| NoView::NoAnswer {
        dir: dir.to_path_buf(),
        pid: None,
        why: format!("cannot encode the request: {e}"),
    })?;
    let reply = exchange(dir, &format!("{ACK_PREFIX}{json}"))?;
    if let Ok(done) = serde_json::from_slice::<AckReply>(&reply) {
        return Ok(Ok(done));
    }
    let why = serde_json::from_slice::<serde_json::Value>(&reply)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
        .unwrap_or_else(|| "an answer that is not an ack's".to_string());
    Ok(Err(why))
}

/// Sends `line` to the daemon running with `state_dir` `dir` and reads
/// its answer, by one deadline.
fn exchange(dir: &Path, line: &str) -> Result<Vec<u8>, NoView> {
    let socket = dir.join(SOCKET_NAME);
    let deadline = Instant::now() + QUERY_LIMIT;
    let ask = || -> io::Result<Vec<u8>> {
        let conn = connect_by(&socket, deadline)?;
        write_by(&conn, format!("{line}\n").as_bytes(), deadline)?;
        read_by(&conn, deadline)
    };
    ask().map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => NoView::Denied {
            socket: socket.clone(),
            why: e,
        },
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => NoView::TimedOut {
            socket: socket.clone(),
            pid: lock_holder(dir).filter(|p| *p != 0),
            after: QUERY_LIMIT,
        },
        _ => no_answer(dir, e.to_string()),
    })
}

/// Why no answer came from the daemon of `dir`: one holds its lock but
/// did not answer, or none runs.
fn no_answer(dir: &Path, why: String) -> NoView {
    match lock_holder(dir) {
        Some(pid) => NoView::NoAnswer {
            dir: dir.to_path_buf(),
            pid: Some(pid).filter(|p| *p != 0),
            why,
        },
        None => NoView::NotRunning(dir.to_path_buf()),
    }
}

/// The view of the daemon running with `state_dir` `dir`.
pub(crate) fn query(dir: &Path) -> Result<View, NoView> {
    let reply = exchange(dir, REQUEST)?;
    match serde_json::from_slice::<View>(&reply) {
        Ok(view) => Ok(view),
        Err(e) => {
            let why = serde_json::from_slice::<serde_json::Value>(&reply)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| format!("an answer that is not a status view: {e}"));
            Err(no_answer(dir, why))
        }
    }
}

/// Why a push was not recorded.
#[derive(Debug)]
pub(crate) enum NotPushed {
    /// No daemon answered (as for `picomon status`).
    NoAnswer(NoView),
    /// The daemon answered, and refused it (an unknown check).
    Refused(String),
}

impl std::fmt::Display for NotPushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotPushed::NoAnswer(e) => e.fmt(f),
            NotPushed::Refused(why) => f.write_str(why),
        }
    }
}

/// Tells the daemon running with `state_dir` `dir` a push check's report;
/// its answer says what it recorded.
pub(crate) fn push(dir: &Path, check: &str, report: Report) -> Result<String, NotPushed> {
    let request = serde_json::to_string(&PushRequest {
        check: check.to_string(),
        report,
    })
    .map_err(|e| NotPushed::Refused(format!("cannot encode the push: {e}")))?;
    let reply = exchange(dir, &format!("{PUSH}{request}")).map_err(NotPushed::NoAnswer)?;
    let value: serde_json::Value = serde_json::from_slice(&reply)
        .map_err(|e| NotPushed::Refused(format!("an answer that is not a push's: {e}")))?;
    match (value.get("recorded"), value.get("error")) {
        (Some(said), _) => Ok(said.as_str().unwrap_or_default().to_string()),
        (None, Some(why)) => Err(NotPushed::Refused(
            why.as_str().unwrap_or_default().to_string(),
        )),
        (None, None) => Err(NotPushed::Refused("an empty answer".into())),
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
