//! The HTTP/1.1 exchange of the https check: one GET with
//! `Connection: close`, then the answer's status line, headers and body
//! (Content-Length, chunked, or up to the close). Only what a check needs,
//! over any byte stream, and every part read with a cap, so that a server
//! sending endless headers or body costs a bounded amount of memory.

use std::io::{self, BufRead, Read};

/// At most this much of status line and headers.
pub(crate) const HEAD_CAP: usize = 64 * 1024;
/// At most this much of the body is kept (and searched).
pub(crate) const BODY_CAP: usize = 1024 * 1024;
/// A chunk-size line is a hex number and maybe extensions.
const CHUNK_LINE_CAP: usize = 1024;
/// Informational (1xx) answers skipped before the final one.
const MAX_INTERIM: usize = 8;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The stream failed (the caller tells a timeout from the rest).
    Io(io::Error),
    /// The server's answer is not HTTP/1.x as read here.
    Bad(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// The final answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Response {
    /// `HTTP/1.1 200 OK`, as sent.
    pub(crate) status_line: String,
    pub(crate) code: u16,
    /// The body, at most `BODY_CAP` bytes of it.
    pub(crate) body: Vec<u8>,
    /// The body's size: `Content-Length`, else the bytes read; None when
    /// more than `BODY_CAP` came without a length (the rest is not read).
    pub(crate) size: Option<usize>,
    /// The body was longer than `BODY_CAP`: only its start is in `body`.
    pub(crate) cut: bool,
}

/// The GET request for `path` on `host` (`NAME` or `NAME:PORT`). The
/// path goes on the request line as given, so it must be one token.
pub(crate) fn request(path: &str, host: &str) -> Result<Vec<u8>, String> {
    if let Some(problem) = crate::check::http_target::path_problem(path) {
        return Err(problem);
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: picomon/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes())
}

/// Reads the answer to one request, skipping informational (1xx) ones.
pub(crate) fn read_response(stream: &mut impl BufRead) -> Result<Response, Failure> {
    for _ in 0..=MAX_INTERIM {
        let head = read_head(stream)?;
        if (100..200).contains(&head.code) && head.code != 101 {
            continue;
        }
        let (body, size, cut) = match body_framing(&head)? {
            Framing::None => (Vec::new(), Some(0), false),
            Framing::Length(n) => read_length(stream, n)?,
            Framing::Chunked => read_chunked(stream)?,
            Framing::Close => read_to_close(stream)?,
        };
        return Ok(Response {
            status_line: head.status_line,
            code: head.code,
            body,
            size,
            cut,
        });
    }
    Err(Failure::Bad(format!(
        "more than {MAX_INTERIM} informational answers"
    )))
}

struct Head {
    status_line: String,
    code: u16,
    /// Header names in lower case, values trimmed.
    headers: Vec<(String, String)>,
}

fn read_head(stream: &mut impl BufRead) -> Result<Head, Failure> {
    let mut budget = HEAD_CAP;
    let first = read_line(stream, &mut budget, "the status line")?;
    let (status_line, code) = parse_status_line(&first)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(stream, &mut budget, "the headers")?;
        if line.is_empty() {
            return Ok(Head {
                status_line,
                code,
                headers,
            });
        }
        // An obsolete folded line continues the previous header.
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Failure::Bad(format!("not a header line: {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// One line without its CRLF (or LF), taken from `budget`.
fn read_line(stream: &mut impl BufRead, budget: &mut usize, what: &str) -> Result<String, Failure> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    stream.take(limit).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(Failure::Bad(if line.len() >= *budget {
            format!("{what} go beyond {} KiB", HEAD_CAP / 1024)
        } else {
            format!("the connection was closed in {what}")
        }));
    }
    *budget -= line.len();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    // Header values may be Latin-1 (obsolete): shown, never trusted.
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// `HTTP/1.1 200 OK` → the line and 200.
fn parse_status_line(line: &str) -> Result<(String, u16), Failure> {
    let bad = || Failure::Bad(format!("not an HTTP status line: {line:?}"));
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(bad());
    }
    let code = code.parse::<u16>().map_err(|_| bad())?;
    if code < 100 {
        return Err(bad());
    }
    Ok((line.trim_end().to_string(), code))
}

#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

/// How the body is delimited (RFC 9112, 6.3).
fn body_framing(head: &Head) -> Result<Framing, Failure> {
    if head.code == 204 || head.code == 304 || head.code < 200 {
        return Ok(Framing::None);
    }
    let values = |name: &'static str| {
        head.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(codings) = values("transfer-encoding").next_back() {
        let last = codings.rsplit(',').next().unwrap_or_default().trim();
        return Ok(match last.eq_ignore_ascii_case("chunked") {
            true => Framing::Chunked,
            false => Framing::Close,
        });
    }
    let mut length = None;
    for value in values("content-length").flat_map(|v| v.split(',')) {
        let n = value
            .trim()
            .parse::<usize>()
            .map_err(|_| Failure::Bad(format!("a bad Content-Length: {value:?}")))?;
        if length.is_some_and(|l| l != n) {
            return Err(Failure::Bad("differing Content-Length headers".into()));
        }
        length = Some(n);
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// Keeps up to `BODY_CAP` bytes of `part` in `body`; true when some were
/// left out.
fn keep(body: &mut Vec<u8>, part: &[u8]) -> bool {
    let room = BODY_CAP.saturating_sub(body.len());
    body.extend_from_slice(&part[..part.len().min(room)]);
    part.len() > room
}

/// The body, its size, and whether it was cut at `BODY_CAP`.
type Body = (Vec<u8>, Option<usize>, bool);

fn read_length(stream: &mut impl BufRead, length: usize) -> Result<Body, Failure> {
    let mut body = Vec::new();
    let wanted = length.min(BODY_CAP);
    let got = stream
        .take(u64::try_from(wanted).unwrap_or(u64::MAX))
        .read_to_end(&mut body)
        .or_else(|e| closed_early(e, body.len()))?;
    if got < wanted {
        return Err(Failure::Bad(format!(
            "the connection was closed after {got} of {length} bytes of the body"
        )));
    }
    Ok((body, Some(length), length > wanted))
}

/// A TLS stream closed without close_notify reads as UnexpectedEof: for
/// a body, the caller judges whether enough came.
fn closed_early(e: io::Error, got: usize) -> Result<usize, io::Error> {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Ok(got),
        _ => Err(e),
    }
}

fn read_to_close(stream: &mut impl BufRead) -> Result<Body, Failure> {
    let mut body = Vec::new();
    let limit = u64::try_from(BODY_CAP).unwrap_or(u64::MAX) + 1;
    let got = stream
        .take(limit)
        .read_to_end(&mut body)
        .or_else(|e| closed_early(e, body.len()))?;
    if got > BODY_CAP {
        body.truncate(BODY_CAP);
        return Ok((body, None, true));
    }
    Ok((body, Some(got), false))
}

/// Past the cap nothing more is read: the body is cut, its size unknown.
fn read_chunked(stream: &mut impl BufRead) -> Result<Body, Failure> {
    let mut body = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut budget = CHUNK_LINE_CAP;
        let line = read_line(stream, &mut budget, "a chunk size")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let mut left = usize::from_str_radix(hex, 16)
            .map_err(|_| Failure::Bad(format!("not a chunk size: {line:?}")))?;
        if left == 0 {
            break;
        }
        while left > 0 {
            let n = stream.read(&mut buf[..left.min(16 * 1024)])?;
            if n == 0 {
                return Err(Failure::Bad(
                    "the connection was closed in a chunk of the body".into(),
                ));
            }
            if keep(&mut body, &buf[..n]) {
                return Ok((body, None, true));
            }
            left -= n;
        }
        let mut budget = 2;
        let end = read_line(stream, &mut budget, "the end of a chunk")?;
        if !end.is_empty() {
            return Err(Failure::Bad("a chunk longer than its size".into()));
        }
    }
    // Trailers: read and dropped, up to the empty line.
    let mut budget = HEAD_CAP;
    while !read_line(stream, &mut budget, "the trailers")?.is_empty() {}
    let size = body.len();
    Ok((body, Some(size), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(answer: &[u8]) -> Result<Response, Failure> {
        read_response(&mut io::BufReader::new(answer))
    }

    #[track_caller]
    fn bad(answer: &[u8]) -> String {
        match read(answer) {
            Err(Failure::Bad(why)) => why,
            other => panic!("not refused as bad: {other:?}"),
        }
    }

    #[test]
    fn a_body_with_content_length_is_read_to_its_length() {
        let r = read(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nServer: x\r\n\r\nhello\nand more")
            .expect("read");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.code, 200);
        assert_eq!(r.body, b"hello\n");
        assert_eq!((r.size, r.cut), (Some(6), false));
    }

    #[test]
    fn a_chunked_body_is_joined_and_its_trailers_skipped() {
        let r = read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: y\r\n\r\n",
        )
        .expect("read");
        assert_eq!(r.body, b"hello!");
        assert_eq!(r.size, Some(6));
    }

    #[test]
    fn a_body_without_length_is_read_to_the_close() {
        let r = read(b"HTTP/1.0 200 OK\nContent-Type: text/plain\n\nall of it").expect("read");
        assert_eq!(r.body, b"all of it");
        assert_eq!(r.size, Some(9));
    }

    #[test]
    fn informational_answers_are_skipped_and_304_has_no_body() {
        let r = read(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        )
        .expect("read");
        assert_eq!((r.code, r.body.len()), (304, 0));
    }

    #[test]
    fn bodies_are_kept_up_to_the_cap_and_their_size_told() {
        let big = BODY_CAP + 10;
        let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\n\r\n").into_bytes();
        answer.extend(std::iter::repeat_n(b'a', big));
        let r = read(&answer).expect("read");
        assert_eq!((r.body.len(), r.size, r.cut), (BODY_CAP, Some(big), true));

        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'a', big));
        let r = read(&answer).expect("read");
        assert_eq!((r.body.len(), r.size, r.cut), (BODY_CAP, None, true));

        let mut answer =
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{big:x}\r\n")
                .into_bytes();
        answer.extend(std::iter::repeat_n(b'a', big));
        answer.extend(b"\r\n0\r\n\r\n");
        let r = read(&answer).expect("read");
        assert_eq!((r.body.len(), r.size, r.cut), (BODY_CAP, None, true));
    }

    #[test]
    fn endless_headers_are_refused_at_the_cap() {
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        while answer.len() <= HEAD_CAP {
            answer.extend(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(bad(&answer).contains("64 KiB"), "{}", bad(&answer));
    }

    #[test]
    fn what_is_not_http_is_refused_saying_why() {
        assert!(bad(b"SSH-2.0-OpenSSH_9.2\r\n").contains("not an HTTP status line"));
        assert!(bad(b"HTTP/1.1 2000 OK\r\n\r\n").contains("not an HTTP status line"));
        assert!(bad(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").contains("not a header line"));
        assert!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
                .contains("differing Content-Length")
        );
        assert!(bad(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").contains("after 3 of 10"));
        assert!(
            bad(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                .contains("not a chunk size")
        );
        assert!(bad(b"").contains("closed in the status line"));
    }

    #[test]
    fn the_request_names_the_host_and_refuses_a_path_that_would_break_it() {
        let r = request("/status?x=1", "www.example.org:8443").expect("request");
        let r = String::from_utf8(r).expect("text");
        assert!(r.starts_with("GET /status?x=1 HTTP/1.1\r\nHost: www.example.org:8443\r\n"));
        assert!(r.ends_with("Connection: close\r\n\r\n"));
        for path in ["status", "/a b", "/a\r\nX: y", ""] {
            assert!(request(path, "h").is_err(), "{path:?} accepted");
        }
    }
}
