//! `[push] listen`: pushes over HTTP from other machines, `POST
//! /push/NAME[?exit=N]` with the output as body and `Authorization:
//! Bearer TOKEN`, the token checked against the check's `token_file`.
//!
//! Shaped to be left on a network: off unless `listen` is set; one
//! request per connection, each with a deadline for all of it, a bound
//! on the head's size and its number of headers (httparse parses into a
//! fixed array of them) and on the body; at most `MAX_CLIENTS` served at
//! once, one more is answered 503 at once. A wrong or missing token is
//! refused before the body is read, and records nothing. TLS is left to a
//! reverse proxy (README: nginx), which does it better than a monitor.
//!
//! The parsing is httparse's (hyper's parser, already in the build for
//! ureq): tiny_http was weighed and left, since it has no deadline per
//! connection (a client that sends a byte a minute holds a thread for
//! ever) and no bound on the number of headers.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use sha2::{Digest, Sha256};

use super::{Report, Rule, OUTPUT_CAP};
use crate::deadline_io::{left, write_by};

/// How long one connection may take, request and answer.
const CONNECTION_LIMIT: Duration = Duration::from_secs(5);
/// The longest request head (request line and headers).
const HEAD_MAX: usize = 8 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 32;
/// The longest body: the output a push keeps.
const BODY_MAX: usize = OUTPUT_CAP;
/// Connections served at once.
const MAX_CLIENTS: usize = 32;
/// How long a connection's thread waits for the daemon loop's answer.
const LOOP_LIMIT: Duration = Duration::from_secs(3);

/// How a push reaches the daemon loop (false: the loop is gone).
type Ask = dyn Fn(String, Report, Sender<Result<String, String>>) -> bool + Send + Sync;

/// The push checks a request may name, with their token files; replaced
/// at a reload.
type Tokens = Arc<RwLock<BTreeMap<String, Option<PathBuf>>>>;

/// The running listener: its thread accepts until the process ends.
pub(crate) struct Listener {
    tokens: Tokens,
}

impl Listener {
    /// Listens on `addr`; pushes go to the loop through `ask`.
    pub(crate) fn start(
        addr: SocketAddr,
        rules: &BTreeMap<String, Rule>,
        ask: impl Fn(String, Report, Sender<Result<String, String>>) -> bool + Send + Sync + 'static,
    ) -> anyhow::Result<Listener> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            anyhow::anyhow!(
                "[push] listen = {:?}: cannot listen there: {e}",
                addr.to_string()
            )
        })?;
        let tokens: Tokens = Arc::new(RwLock::new(token_files(rules)));
        let shared = Arc::clone(&tokens);
        let ask: Arc<Ask> = Arc::new(ask);
        let served = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("push listener".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    match conn {
                        Ok(conn) => admit(conn, &shared, &ask, &served),
                        Err(e) => {
                            log::warn!("[push] listen: cannot accept a connection: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        log::info!("taking pushes over HTTP on {addr}");
        Ok(Listener { tokens })
    }

    /// A reload's push checks.
    pub(crate) fn reconfigure(&self, rules: &BTreeMap<String, Rule>) {
        if let Ok(mut tokens) = self.tokens.write() {
            *tokens = token_files(rules);
        }
    }
}

fn token_files(rules: &BTreeMap<String, Rule>) -> BTreeMap<String, Option<PathBuf>> {
    rules
        .iter()
        .map(|(name, rule)| (name.clone(), rule.token_file.clone()))
        .collect()
}

/// A client being served; counted down when its thread ends.
struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(conn: TcpStream, tokens: &Tokens, ask: &Arc<Ask>, served: &Arc<AtomicUsize>) {
    let seat = Seat(Arc::clone(served));
    if served.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        drop(seat);
        let _ = conn.set_nonblocking(true);
        let _ = (&conn).write_all(&reply(503, "too many connections; try again\n"));
        return;
    }
    let (tokens, ask) = (Arc::clone(tokens), Arc::clone(ask));
    let spawned = std::thread::Builder::new()
        .name("push client".into())
        .spawn(move || {
            let _seat = seat;
            serve(&conn, &tokens, &*ask);
        });
    if let Err(e) = spawned {
        log::warn!("[push] listen: cannot start a thread for a client: {e}");
    }
}

/// Serves one connection: one request, one answer, by `CONNECTION_LIMIT`.
fn serve(conn: &TcpStream, tokens: &Tokens, ask: &Ask) {
    let deadline = Instant::now() + CONNECTION_LIMIT;
    let (status, text) = match handle(conn, tokens, ask, deadline) {
        Ok(answer) => answer,
        // Timed out or cut: nobody to answer.
        Err(_) => return,
    };
    let _ = write_by(conn, &reply(status, &text), deadline);
}

/// A request in, an answer (status and text) out; Err when the client is
/// gone or too slow to be answered.
fn handle(
    conn: &TcpStream,
    tokens: &Tokens,
    ask: &Ask,
    deadline: Instant,
) -> io::Result<(u16, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                break Head::of(&request, len);
            }
            Ok(httparse::Status::Partial) if buf.len() >= HEAD_MAX => {
                return Ok((431, format!("request head over {HEAD_MAX} bytes\n")));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Ok((431, format!("more than {MAX_HEADERS} headers\n")));
            }
            Err(e) => return Ok((400, format!("not an HTTP request: {e}\n"))),
        }
        let n = read_by(conn, &mut chunk, deadline)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = match head {
        Ok(head) => head,
        Err(answer) => return Ok(answer),
    };
    let token_file = {
        let tokens = tokens.read().map_err(|_| io::Error::other("poisoned"))?;
        match tokens.get(&head.check) {
            Some(file) => file.clone(),
            None => return Ok((404, format!("no push check named {:?}\n", head.check))),
        }
    };
    if let Err(answer) = authorize(head.bearer.as_deref(), token_file.as_ref()) {
        log::debug!(
            "push over HTTP for {} refused: {}",
            head.check,
            answer.1.trim()
        );
        return Ok(answer);
    }
    if head.length > BODY_MAX {
        return Ok((413, format!("the output may be at most {BODY_MAX} bytes\n")));
    }
    let mut body = buf.split_off(head.len.min(buf.len()));
    body.truncate(head.length);
    while body.len() < head.length {
        let n = read_by(conn, &mut chunk, deadline)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let want = head.length - body.len();
        body.extend_from_slice(&chunk[..n.min(want)]);
    }
    let output = String::from_utf8_lossy(&body).into_owned();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let report = Report::Done {
        exit: head.exit,
        output,
    };
    Ok(
        match ask(head.check.clone(), report, tx)
            .then(|| rx.recv_timeout(LOOP_LIMIT).ok())
            .flatten()
        {
            Some(Ok(said)) => (200, format!("{said}\n")),
            Some(Err(why)) => (404, format!("{why}\n")),
            None => (503, "the daemon loop did not answer in time\n".to_string()),
        },
    )
}

/// What a request's head says, once it is one this listener takes.
struct Head {
    /// The head's length in the buffer.
    len: usize,
    check: String,
    exit: i32,
    bearer: Option<String>,
    length: usize,
}

impl Head {
    /// The head of `request`, or the answer that refuses it.
    fn of(request: &httparse::Request, len: usize) -> Result<Head, (u16, String)> {
        let bad = |what: &str| Err((400, format!("{what}\n")));
        if request.method != Some("POST") {
            return Err((405, "only POST /push/NAME is taken here\n".into()));
        }
        let path = request.path.unwrap_or_default();
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let Some(check) = path.strip_prefix("/push/").filter(|c| !c.is_empty()) else {
            return Err((404, "not found: pushes go to POST /push/NAME\n".into()));
        };
        let mut exit = 0;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("exit", v)) => match v.parse::<i32>() {
                    Ok(code) => exit = code,
                    Err(_) => {
                        return bad(
                            "exit must be a number (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
                        )
                    }
                },
                _ => return bad("the only parameter is exit=N"),
            }
        }
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        };
        if header("transfer-encoding").is_some() {
            return Err((411, "send the output with a Content-Length\n".into()));
        }
        let length = match header("content-length") {
            None => 0,
            Some(v) => match v.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return bad("Content-Length is not a number"),
            },
        };
        let bearer = header("authorization").and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
        Ok(Head {
            len,
            check: check.to_string(),
            exit,
            bearer,
            length,
        })
    }
}

/// Whether `bearer` may push to a check whose token is in `token_file`:
/// 401 without a token, 403 with a wrong one or when the check takes no
/// pushes over HTTP (no `token_file`) or its file cannot be read.
fn authorize(bearer: Option<&str>, token_file: Option<&PathBuf>) -> Result<(), (u16, String)> {
    let Some(file) = token_file else {
        return Err((
            403,
            "this check has no token_file: it takes pushes over the status socket only\n".into(),
        ));
    };
    let Some(bearer) = bearer else {
        return Err((401, "Authorization: Bearer TOKEN is required\n".into()));
    };
    // Read at each request: a token replaced on disk is in force at once.
    let token = match crate::files::read_small_file(file, 64 * 1024) {
        // A bearer token holds no white space (RFC 6750): a space or tab an
        // editor left around it is not part of it, as check-config reads it.
        Ok((bytes, _)) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(e) => {
            log::warn!("push over HTTP refused: the token_file: {e}");
            return Err((403, "the token cannot be checked\n".into()));
        }
    };
    match !token.is_empty() && same(bearer.as_bytes(), token.as_bytes()) {
        true => Ok(()),
        false => Err((403, "wrong token\n".into())),
    }
}

/// Compares in constant time: both sides are hashed first, so neither
/// where they differ nor their lengths show in the time it takes.
fn same(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn reply(status: u16, text: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    if status == 401 {
        head.push_str("WWW-Authenticate: Bearer\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

fn read_by(mut conn: &TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        conn.set_read_timeout(Some(left(deadline)?))?;
        match conn.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal_whatever_their_lengths() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"", b"x"));
        assert!(!same(b"s3cret", b"S3cret"));
    }

    #[test]
    fn a_check_without_token_file_takes_no_push_over_http_and_no_token_is_401() {
        assert_eq!(authorize(Some("x"), None).map_err(|e| e.0), Err(403));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").expect("write");
        assert_eq!(authorize(None, Some(&file)).map_err(|e| e.0), Err(401));
        assert_eq!(
            authorize(Some("nope"), Some(&file)).map_err(|e| e.0),
            Err(403)
        );
        assert_eq!(authorize(Some("s3cret"), Some(&file)), Ok(()));
    }

    #[test]
    fn white_space_around_the_token_in_its_file_is_not_part_of_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, " s3cret \t\r\n").expect("write");
        assert_eq!(authorize(Some("s3cret"), Some(&file)), Ok(()));
        assert_eq!(
            authorize(Some(" s3cret"), Some(&file)).map_err(|e| e.0),
            Err(403)
        );
    }
}
