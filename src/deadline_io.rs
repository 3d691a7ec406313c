//! Writing to a socket by a deadline, however slowly the other end reads:
//! the status socket (a Unix stream) and the push listener (TCP) both
//! answer clients they do not trust to read, so one loop serves both.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The time left until `deadline`; an error once it has passed, so that a
/// zero timeout (which would mean "block forever") is never set.
pub(crate) fn left(deadline: Instant) -> io::Result<Duration> {
    match deadline.saturating_duration_since(Instant::now()) {
        d if d.is_zero() => Err(io::ErrorKind::TimedOut.into()),
        d => Ok(d),
    }
}

/// A stream whose writes can be bounded in time.
pub(crate) trait Timed {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Timed for TcpStream {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

impl Timed for UnixStream {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }
}

/// Writes all of `bytes` to `conn` by `deadline`.
pub(crate) fn write_by<S>(conn: &S, bytes: &[u8], deadline: Instant) -> io::Result<()>
where
    S: Timed,
    for<'a> &'a S: Write,
{
    let mut conn = conn;
    let mut at = 0;
    while at < bytes.len() {
        conn.set_write_timeout(Some(left(deadline)?))?;
        match conn.write(&bytes[at..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
