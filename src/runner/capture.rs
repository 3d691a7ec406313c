//! Output capture: what a plugin prints is read as it comes (the read
//! ends are non-blocking, watched by epoll) and kept up to `OUTPUT_CAP`
//! per stream; the rest is read and dropped, so a chatty plugin never
//! blocks on a full pipe, and a note says how much went.

use std::io::{self, Read};
use std::os::fd::AsRawFd;

use super::OUTPUT_CAP;
use crate::sys;

/// Output read so far from one pipe.
pub(super) struct Stream {
    pub(super) fd: Option<os_pipe::PipeReader>,
    kept: Vec<u8>,
    dropped: usize,
}

impl Stream {
    pub(super) fn new(fd: os_pipe::PipeReader) -> io::Result<Stream> {
        // Only our end: the plugin's end stays blocking, as plugins expect.
        sys::set_pipe_nonblocking(fd.as_raw_fd())?;
        Ok(Stream {
            fd: Some(fd),
            kept: Vec::new(),
            dropped: 0,
        })
    }

    /// Reads what is available now; closes the stream at end of file.
    /// `hung_up`: every writer is gone, so reading to the end never waits.
    pub(super) fn drain(&mut self, buf: &mut [u8], hung_up: bool) {
        let Some(fd) = self.fd.as_mut() else { return };
        loop {
            match fd.read(buf) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(self.kept.len()).min(n);
                    self.kept.extend_from_slice(&buf[..room]);
                    self.dropped += n - room;
                    // The pipe held less than the buffer: nothing is left,
                    // and asking again would only say so (epoll reports
                    // the end of file when it comes).
                    if n < buf.len() && !hung_up {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.fd = None;
                    return;
                }
            }
        }
    }

    pub(super) fn into_bytes(mut self) -> Vec<u8> {
        if self.dropped > 0 {
            let note = format!("\n[{} more bytes of output dropped]\n", self.dropped);
            self.kept.extend_from_slice(note.as_bytes());
        }
        self.kept
    }
}
